//! drillbook: a terminal wizard for disaster-recovery drills.
//!
//! Layers, each depending only on the ones below it:
//! `runbook` (format, validation, templating) → `drill` (journal, replay,
//! store, evidence) → `engine` (runs one thing: a command, S3, Kubernetes,
//! HTTP) → `drive` (the one conductor of a drill) → `report` and `ui` (the
//! TUI front-end) → `cli` (commands and the plain front-end). `fleet` (the
//! register of every project's drills) sits beside `report`: it reads drill
//! summaries from the archive (`engine::s3`) and the local store. `config`
//! (who operates, the shared archive, notifications) sits beside `runbook`
//! at the bottom: an input read once, used by the layers above.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod buffers;
pub mod cli;
pub mod config;
pub mod digest;
pub mod drill;
pub mod drive;
pub mod engine;
pub mod fleet;
pub mod pack;
pub mod project;
pub mod report;
pub mod runbook;
pub mod ui;
