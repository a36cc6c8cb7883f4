//! Self-contained widgets with their own state, reused by several panels.

pub mod fit;
pub mod log_pane;
pub mod picker;
