//! drillbook: a terminal wizard for disaster-recovery drills.
//!
//! Layers, each depending only on the ones below it:
//! `runbook` (format, validation, templating) → `drill` (journal, replay,
//! store) → `engine` (runs steps) → `cli` (commands, plain runner).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod drill;
pub mod engine;
pub mod report;
pub mod runbook;
pub mod ui;
