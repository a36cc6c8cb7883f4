//! A real terminal for end-to-end tests: a private tmux server with one
//! 120x40 session, keys in, screen text out. Included with
//! `#[path = "support/tmux.rs"] mod tmux;` next to `mod support;`.
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use crate::support::wait_for;

pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn new(name: &str) -> Self {
        let tmux = Command::new("tmux").arg("-V").output();
        assert!(
            tmux.is_ok_and(|o| o.status.success()),
            "these tests need tmux: install it with `apt-get install tmux` (./scripts/test does this when run as root)"
        );
        Tmux { socket: format!("drillbook-test-{name}-{}", std::process::id()) }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn start(&self, command: &str) {
        self.run(&["new-session", "-d", "-s", "main", "-x", "120", "-y", "40", command]);
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            self.run(&["send-keys", "-t", "main", key]);
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    pub fn text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
        std::thread::sleep(Duration::from_millis(120));
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    /// The whole pane: its scrollback and the screen.
    pub fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "main"])
    }

    /// Waits until the screen shows `what` (30 s at most), and returns the screen.
    pub fn wait_for(&self, what: &str) -> String {
        wait_for(&format!("{what:?} on the screen"), Duration::from_secs(30), || {
            let screen = self.screen();
            if screen.contains(what) { Ok(screen) } else { Err(screen) }
        })
    }

    pub fn alternate_screen(&self) -> bool {
        self.flag("alternate_on")
    }

    pub fn cursor_visible(&self) -> bool {
        self.flag("cursor_flag")
    }

    /// Any mouse reporting mode on.
    pub fn mouse_reporting(&self) -> bool {
        self.flag("mouse_any_flag")
    }

    fn flag(&self, name: &str) -> bool {
        self.run(&["display-message", "-p", "-t", "main", &format!("#{{{name}}}")]).trim() == "1"
    }

    /// Waits for the `STTY=` line the shell prints after drillbook exits;
    /// true when the terminal echoes input again.
    pub fn echo_on(&self) -> bool {
        let screen = self.wait_for("STTY=");
        let state = screen.lines().find_map(|line| line.trim().strip_prefix("STTY=")).unwrap_or("");
        state == "echo"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

/// A shell line running `drillbook ARGS` with `home` as DRILLBOOK_HOME that
/// prints `EXITED=<code>`, then `STTY=echo` or `STTY=-echo` (the terminal's
/// echo setting once drillbook is gone), each at the start of a line even in
/// a terminal left in raw mode, and stays open, so the last screen can be
/// read.
pub fn drillbook_in_shell(home: &std::path::Path, args: &str) -> String {
    drillbook_in_shell_with(home, &[], args)
}

/// Like [`drillbook_in_shell`], with extra environment variables for drillbook
/// (single-quoted for the shell).
pub fn drillbook_in_shell_with(home: &std::path::Path, env: &[(String, String)], args: &str) -> String {
    let assignments: Vec<String> =
        env.iter().map(|(name, value)| format!("{name}='{}'", value.replace('\'', r"'\''"))).collect();
    format!(
        "env -u CI DRILLBOOK_HOME={} TERM=xterm-256color {} {} {args}; code=$?; \
         printf '\\r\\nEXITED=%s\\r\\n' $code; \
         printf '\\rSTTY=%s\\r\\n' \"$(stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e -echo)\"; sleep 600",
        home.display(),
        assignments.join(" "),
        assert_cmd::cargo::cargo_bin("drillbook").display()
    )
}
