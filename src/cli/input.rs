//! Answers typed by the operator in plain mode: lines of standard input,
//! read on a thread so that waiting for an answer never blocks signals or
//! a running step. Works the same from a terminal or a pipe (tests and
//! scheduled drills feed answers through a pipe).

use std::io::{BufRead, IsTerminal, Write};

use tokio::sync::mpsc;

use crate::runbook::VarDef;

pub struct Input {
    /// Started on the first question, so a full-screen interface that never
    /// asks one keeps standard input to itself.
    lines: Option<mpsc::UnboundedReceiver<String>>,
    pub is_terminal: bool,
}

impl Input {
    pub fn stdin() -> Self {
        Input { lines: None, is_terminal: std::io::stdin().is_terminal() }
    }

    /// Answers given in advance, then the end of input (tests, scripts).
    pub fn scripted<S: Into<String>>(lines: impl IntoIterator<Item = S>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        for line in lines {
            let _ = sender.send(line.into());
        }
        Input { lines: Some(receiver), is_terminal: false }
    }

    fn lines(&mut self) -> &mut mpsc::UnboundedReceiver<String> {
        self.lines.get_or_insert_with(|| {
            let (sender, lines) = mpsc::unbounded_channel();
            std::thread::spawn(move || {
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
            lines
        })
    }

    /// Next line, waiting outside the async runtime. `None` at end of input.
    pub fn blocking_line(&mut self) -> Option<String> {
        self.lines().blocking_recv()
    }

    /// Next line. `None` at end of input.
    pub async fn line(&mut self) -> Option<String> {
        self.lines().recv().await
    }

    /// Asks for a variable's value (before the drill runs).
    pub fn ask(&mut self, var: &VarDef, secret: bool) -> Result<Option<String>, String> {
        let question = var.prompt.clone().unwrap_or_else(|| format!("Value for `{}`", var.name));
        let mut stderr = std::io::stderr();
        if let Some(help) = &var.help {
            let _ = writeln!(stderr, "{help}");
        }
        if !var.choices.is_empty() {
            let _ = writeln!(stderr, "  choices: {}", var.choices.join(", "));
        }
        let _ = write!(stderr, "{question}{}: ", if secret { " (hidden)" } else { "" });
        let _ = stderr.flush();
        let echo = (secret && self.is_terminal).then(EchoOff::new).flatten();
        let answer = self.blocking_line();
        drop(echo);
        if secret && self.is_terminal {
            let _ = writeln!(stderr);
        }
        Ok(answer.map(|a| a.trim().to_string()))
    }
}

/// Turns terminal echo off while a secret is typed; restores it on drop.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> Option<Self> {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return None;
            }
            Some(EchoOff { saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}
