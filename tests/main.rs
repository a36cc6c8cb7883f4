//! Every integration test, in one binary: one link of the crate and its
//! dependencies instead of one per file (43 of them cost CI minutes). Each
//! file is a module named as before, so `-E 'test(/^s3_access::/)'` picks
//! one file's tests; every test still runs in its own process (nextest).
//!
//! The shared helpers are [`support`]; the servers' harnesses sit beside it
//! at the root so they can name each other (`crate::k8s`).

mod support;

#[path = "support/dns.rs"]
mod dns;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/k8s_cases.rs"]
mod k8s_cases;
#[path = "support/k8s_dr.rs"]
mod k8s_dr;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
mod process;
#[path = "support/s3_drill.rs"]
mod s3_drill;
#[path = "support/tmux.rs"]
mod tmux;

mod archive;
mod attach;
mod browser;
mod check;
mod conductor;
mod config;
mod dns_check;
mod drill;
mod drill_journal;
mod engine_command;
mod fleet;
mod http_check;
mod k8s_cluster;
mod k8s_drill;
mod k8s_emulator;
mod k8s_isolation;
mod k8s_sandbox_drill;
mod k8s_sim_cluster;
mod leftovers;
mod notify;
mod older_journals;
mod pack;
mod parity;
mod projects;
mod reliability_crash;
mod reliability_faults_command;
mod reliability_faults_k8s;
mod reliability_faults_s3;
mod reliability_fuzz;
mod reliability_injection;
mod reliability_lock;
mod reliability_secrets;
mod reliability_storage;
mod reliability_terminal;
mod restore_drill_e2e;
mod s3;
mod s3_access;
mod s3_infra;
mod signals;
mod sql_check;
mod training;
mod tui_decisions;
mod tui_e2e;
mod verdicts;
mod watch_e2e;
