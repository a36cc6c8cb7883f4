//! The runbook format: TOML model with spans, validation with
//! `file:line:col` errors, templating, and the JSON schema.

pub mod diagnostic;
pub mod duration;
pub mod expect;
pub mod model;
pub mod template;
pub mod types;
mod validate;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use types::*;
pub use validate::{DEFAULT_DNS_TIMEOUT, DEFAULT_MIN_DAYS, parse, parse_point_in_time};

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read runbook {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Reads and validates a runbook file.
pub fn load(path: &Path) -> Result<Runbook, LoadError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: display.clone(), source })?;
    parse(&display, &text).map_err(LoadError::Invalid)
}

/// The JSON schema of the runbook format, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(model::RawDocument);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
