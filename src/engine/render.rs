//! Why a step's templates could not be filled in, naming the key of the
//! step that failed as the runbook spells it (`namespace`, `env.DB_URL`).

use crate::runbook::HttpUrlError;
use crate::runbook::template::TemplateError;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The template of `key` failed.
    #[error("`{key}`: {source}")]
    Template {
        key: String,
        #[source]
        source: TemplateError,
    },
    /// A template failed; its key is not named (`s3-check`).
    #[error(transparent)]
    Unnamed(TemplateError),
    /// `key` rendered to nothing where a value is needed.
    #[error("`{0}` renders to an empty string")]
    Empty(&'static str),
    /// The rendered `url` cannot be checked.
    #[error("`url`: {0}")]
    Url(#[source] HttpUrlError),
    /// The rendered value of `key` is not what the key takes.
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    /// The rendered `before` is not a point in time.
    #[error("`before`: {0}")]
    PointInTime(String),
    /// The rendered `pattern` is not a regex.
    #[error("`pattern` is not a valid regex: {0}")]
    Pattern(#[source] regex::Error),
    /// The script cannot be quoted for the shell (it holds a NUL byte).
    #[error(transparent)]
    Quote(#[from] shlex::QuoteError),
}

impl RenderError {
    /// For `map_err`: the template of `key` failed.
    pub fn at(key: impl Into<String>) -> impl FnOnce(TemplateError) -> RenderError {
        let key = key.into();
        move |source| RenderError::Template { key, source }
    }
}
