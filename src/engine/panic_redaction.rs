//! Secrets never reach a panic message. A panic prints its message on the
//! operator's terminal, which a scheduled drill captures into CI logs; if a
//! bug ever formats a secret into one, the hook masks it the way command
//! output is masked. The secrets of the open drill are remembered here when
//! the session gets them, because a panic hook cannot reach the session.

use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::{Mutex, PoisonError};

use crate::engine::redact::redact_lines;

/// Every secret value this process has been given.
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds secret values to those masked in panic messages.
pub fn remember<'a>(secrets: impl IntoIterator<Item = &'a String>) {
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    for secret in secrets.into_iter().filter(|secret| !secret.is_empty()) {
        // `unwrap` and `expect` print errors with `{:?}`, which escapes quotes,
        // backslashes and control characters: mask that spelling too.
        let debug = format!("{secret:?}");
        let escaped = debug.get(1..debug.len() - 1).unwrap_or_default().to_string();
        for form in [secret.clone(), escaped] {
            if !form.is_empty() && !known.contains(&form) {
                known.push(form);
            }
        }
    }
}

/// The secrets remembered (debug builds' forced panic formats them into its
/// message, to prove panic messages are masked).
#[cfg(debug_assertions)]
pub fn held() -> Vec<String> {
    KNOWN.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Wraps the installed panic hook: a message that holds a secret is printed
/// masked by this hook (after `restore_terminal`), any other goes to the
/// wrapped hook unchanged. Install it last, over hooks that print.
pub fn install(restore_terminal: fn()) {
    let next = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match masked_message(info) {
        None => next(info),
        Some(message) => {
            restore_terminal();
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            // Not eprintln!: it panics when stderr is gone, and a panic in the hook aborts.
            let _ = writeln!(
                std::io::stderr().lock(),
                "\ndrillbook panicked{location}:\n{message}\n(a secret in the message was replaced by ***)"
            );
        }
    }));
}

/// The panic's message with every known secret masked, or `None` when it
/// holds none (the wrapped hook prints it as it is).
fn masked_message(info: &PanicHookInfo<'_>) -> Option<String> {
    let payload = info.payload();
    let message =
        payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str))?;
    // try_lock: a panic while `remember` holds the lock must not deadlock here.
    let known = match KNOWN.try_lock() {
        Ok(known) => known.clone(),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner().clone(),
        Err(std::sync::TryLockError::WouldBlock) => {
            return Some("(message withheld: the list of secrets to mask was in use)".into());
        }
    };
    mask(&known, message)
}

fn mask(secrets: &[String], message: &str) -> Option<String> {
    let mut lines = vec![message.to_string()];
    redact_lines(secrets, &mut lines);
    let masked = lines.pop()?;
    (masked != message).then_some(masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_a_secret_is_masked_and_one_without_is_left_alone() {
        let secrets = vec!["hunter2-x".to_string(), "line one\nline two".to_string()];
        assert_eq!(mask(&secrets, "password hunter2-x rejected").as_deref(), Some("password *** rejected"));
        assert_eq!(mask(&secrets, "got line two here").as_deref(), Some("got *** here"));
        assert_eq!(mask(&secrets, "index out of bounds"), None);
        assert_eq!(mask(&[], "hunter2-x"), None);
    }

    #[test]
    fn a_secret_in_an_error_printed_with_debug_is_masked_too() {
        let secret = r#"pa"ss\word"#.to_string();
        remember([&secret]);
        let known = KNOWN.lock().unwrap().clone();
        let message = format!("called `Result::unwrap()` on an `Err` value: Auth({:?})", secret);
        assert_eq!(
            mask(&known, &message).as_deref(),
            Some("called `Result::unwrap()` on an `Err` value: Auth(\"***\")")
        );
    }

    #[test]
    fn remembered_secrets_are_kept_once_and_empty_ones_ignored() {
        let value = "remember-me-7f3a".to_string();
        remember([&value, &value, &String::new()]);
        let known = KNOWN.lock().unwrap().clone();
        assert_eq!(known.iter().filter(|k| **k == value).count(), 1);
        assert!(!known.iter().any(String::is_empty));
    }
}
