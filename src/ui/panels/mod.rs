//! One module per panel; each draws from `&App` into a buffer area.

pub mod detail;
pub mod dialog;
pub mod help;
pub mod log;
pub mod start;
pub mod status_bar;
pub mod step_list;

use std::time::Duration;

use jiff::Timestamp;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The spinner frame for a moment (changes every 100 ms).
pub fn spinner(now: Timestamp) -> &'static str {
    let tenths = (now.as_millisecond() / 100).rem_euclid(SPINNER.len() as i64) as usize;
    SPINNER[tenths]
}

pub fn since(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// `1:02:03` or `2:03`.
pub fn clock(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}
