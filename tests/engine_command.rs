//! Integration tests for the `command` step executor. They run real `sh`
//! processes; timings are generous because CI machines are small and busy.

use crate::process;
use crate::support;

use std::path::Path;
use std::time::Duration;

use drillbook::engine::command::{
    CaptureRule, CaptureStream, CommandError, CommandOutcome, CommandRequest, CommandStatus, MAX_LINE, run_command,
};
use drillbook::engine::{EngineEvent, OutputStream};
use sha2::{Digest, Sha256};
use support::wait_for_async;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single run, so a bug hangs a test for a while, not forever.
const LIMIT: Duration = Duration::from_secs(120);

struct Run {
    outcome: CommandOutcome,
    stdout: Vec<String>,
    stderr: Vec<String>,
    log: Vec<u8>,
    err_log: Vec<u8>,
}

fn request(dir: &TempDir, script: &str) -> CommandRequest {
    let mut req = CommandRequest::new("step-1", script, dir.path().join("combined.log"), dir.path().join("stderr.log"));
    req.kill_grace = Duration::from_millis(500);
    req
}

/// Collects every event line while the command runs.
async fn collect(mut rx: mpsc::Receiver<EngineEvent>) -> (Vec<String>, Vec<String>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(event) = rx.recv().await {
        match event {
            EngineEvent::Output { step_id, stream, lines } => {
                assert_eq!(step_id, "step-1");
                match stream {
                    OutputStream::Stdout => out.extend(lines),
                    OutputStream::Stderr => err.extend(lines),
                }
            }
            EngineEvent::Progress { .. }
            | EngineEvent::Pods { .. }
            | EngineEvent::Evidence { .. }
            | EngineEvent::FileSaved { .. } => {}
        }
    }
    (out, err)
}

async fn run_ok(req: CommandRequest) -> Run {
    let log_path = req.log_path.clone();
    let err_path = req.stderr_log_path.clone();
    let (tx, rx) = mpsc::channel(16);
    let collector = tokio::spawn(collect(rx));
    let outcome = tokio::time::timeout(LIMIT, run_command(req, tx, CancellationToken::new()))
        .await
        .expect("run_command hung")
        .expect("run_command failed");
    let (stdout, stderr) = collector.await.expect("collector panicked");
    Run {
        outcome,
        stdout,
        stderr,
        log: std::fs::read(log_path).expect("combined log"),
        err_log: std::fs::read(err_path).expect("stderr log"),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until `pid` (`what`) no longer exists (a zombie waiting for init counts as gone):
/// reaping by init is asynchronous.
async fn wait_gone(pid: i32, what: &str) {
    wait_for_async(&format!("{what} {pid} to be gone"), Duration::from_secs(10), async || {
        process::gone(pid).then_some(())
    })
    .await
}

fn kill_quietly(pid: i32) {
    if pid > 1 {
        // SAFETY: plain kill(2) of a pid this test started.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_takes_first_group_of_first_matching_line() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "echo noise; echo rows=42; echo rows=7");
    req.capture = Some(CaptureRule::new("rows", regex::Regex::new(r"rows=(\d+)").unwrap()));
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status, CommandStatus::Succeeded);
    assert_eq!(run.outcome.captured.as_deref(), Some("42"));
    assert_eq!(run.outcome.exit_code, Some(0));
    assert_eq!(run.outcome.signal, None);
    assert_eq!(run.stdout, ["noise", "rows=42", "rows=7"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_without_group_takes_whole_match() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "echo 'snapshot id: snap-0042 created'");
    req.capture = Some(CaptureRule::new("snap", regex::Regex::new(r"snap-\d+").unwrap()));
    let run = run_ok(req).await;
    assert_eq!(run.outcome.captured.as_deref(), Some("snap-0042"));
    assert!(run.outcome.status.is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_ignores_stderr_by_default() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "echo rows=1 >&2; echo nothing here");
    req.capture = Some(CaptureRule::new("rows", regex::Regex::new(r"rows=(\d+)").unwrap()));
    let run = run_ok(req).await;
    assert_eq!(run.outcome.captured, None);
    assert_eq!(
        run.outcome.status,
        CommandStatus::Failed { reason: r"capture `rows`: /rows=(\d+)/ matched no line of stdout".to_owned() }
    );
    assert_eq!(run.outcome.exit_code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn capture_on_both_and_on_stderr() {
    let rows = regex::Regex::new(r"rows=(\d+)").unwrap();
    for stream in [CaptureStream::Both, CaptureStream::Stderr] {
        let dir = TempDir::new().unwrap();
        let mut req = request(&dir, "echo unrelated; echo 'rows=5' >&2");
        req.capture = Some(CaptureRule { name: "rows".to_owned(), regex: rows.clone(), stream });
        let run = run_ok(req).await;
        assert_eq!(run.outcome.captured.as_deref(), Some("5"), "{stream:?}");
        assert_eq!(run.outcome.status, CommandStatus::Succeeded);
    }
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "echo rows=9");
    req.capture = Some(CaptureRule {
        name: "rows".to_owned(),
        regex: regex::Regex::new(r"rows=(\d+)").unwrap(),
        stream: CaptureStream::Stderr,
    });
    let run = run_ok(req).await;
    assert_eq!(run.outcome.captured, None);
    assert_eq!(run.outcome.status.describe(), r"capture `rows`: /rows=(\d+)/ matched no line of stderr");
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_exit_list_accepts_listed_codes() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "exit 3");
    req.expect_exit = vec![0, 3];
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status, CommandStatus::Succeeded);
    assert_eq!(run.outcome.exit_code, Some(3));

    let mut req = request(&dir, "exit 0");
    req.expect_exit = vec![1];
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status.describe(), "exit code 0 (expected 1)", "exit 0 must fail when only 1 is expected");
}

#[tokio::test(flavor = "multi_thread")]
async fn nonzero_exit_is_failed_with_reason() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "echo oops >&2; exit 3")).await;
    assert_eq!(run.outcome.status, CommandStatus::Failed { reason: "exit code 3 (expected 0)".to_owned() });
    assert_eq!(run.outcome.exit_code, Some(3));
    assert_eq!(run.outcome.last_lines, ["oops"]);

    let mut req = request(&dir, "exit 3");
    req.expect_exit = vec![0, 1];
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status.describe(), "exit code 3 (expected one of 0, 1)");
}

#[tokio::test(flavor = "multi_thread")]
async fn death_by_foreign_signal_is_failed() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "kill -9 $$")).await;
    assert_eq!(run.outcome.exit_code, None);
    assert_eq!(run.outcome.signal, Some(9));
    assert_eq!(run.outcome.status.describe(), "killed by signal 9 (SIGKILL)");
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_whole_group() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "sleep 1000 & echo $!; sleep 1000");
    req.timeout = Some(Duration::from_secs(1));
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status, CommandStatus::TimedOut { after: Duration::from_secs(1) });
    assert_eq!(run.outcome.status.describe(), "timed out after 1s");
    assert_eq!(run.outcome.exit_code, None);
    assert!(run.outcome.signal.is_some());
    assert!(run.outcome.duration >= Duration::from_secs(1));
    let pid: i32 = run.stdout[0].parse().unwrap();
    wait_gone(pid, "background sleep").await;
}

/// Starts `script`, waits for its first stdout line (a pid), cancels, and
/// returns the outcome with that pid.
async fn cancel_after_first_line(req: CommandRequest) -> (CommandOutcome, i32) {
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(run_command(req, tx, cancel.clone()));
    let mut pid = None;
    while let Some(event) = tokio::time::timeout(LIMIT, rx.recv()).await.unwrap() {
        if let EngineEvent::Output { stream: OutputStream::Stdout, lines, .. } = event
            && pid.is_none()
        {
            pid = Some(lines[0].parse::<i32>().unwrap());
            cancel.cancel();
        }
    }
    let outcome = tokio::time::timeout(LIMIT, handle).await.unwrap().unwrap().unwrap();
    (outcome, pid.expect("no pid printed"))
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_kills_grandchild() {
    let dir = TempDir::new().unwrap();
    let req = request(&dir, "sleep 1000 & echo $!; sleep 1000; wait");
    let (outcome, pid) = cancel_after_first_line(req).await;
    assert_eq!(outcome.status, CommandStatus::Cancelled);
    assert_eq!(outcome.status.describe(), "cancelled");
    assert_eq!(outcome.exit_code, None);
    assert!(outcome.signal.is_some());
    wait_gone(pid, "grandchild (after cancel)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_escalates_to_sigkill_when_term_is_ignored() {
    let dir = TempDir::new().unwrap();
    // The trap makes TERM ignored in the shell and in the sleeps it starts.
    let mut req = request(&dir, "trap '' TERM; sleep 1000 & echo $!; sleep 1000; wait");
    req.kill_grace = Duration::from_millis(300);
    let (outcome, pid) = cancel_after_first_line(req).await;
    assert_eq!(outcome.status, CommandStatus::Cancelled);
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    wait_gone(pid, "TERM-immune").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_before_start_runs_nothing() {
    let dir = TempDir::new().unwrap();
    let marker = dir.path().join("ran");
    let req = request(&dir, &format!("touch '{}'", marker.display()));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (tx, _rx) = mpsc::channel(4);
    let outcome = run_command(req, tx, cancel).await.unwrap();
    assert_eq!(outcome.status, CommandStatus::Cancelled);
    assert!(!marker.exists());
    assert_eq!(outcome.log_sha256, sha_hex(b""));
}

#[tokio::test(flavor = "multi_thread")]
async fn ansi_escapes_are_kept_verbatim() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, r"printf '\033[31mred\033[0m plain\n'; printf '\033[1mbold\033[0m\n' >&2")).await;
    assert!(contains(&run.log, b"\x1b[31mred\x1b[0m plain\n"));
    assert!(contains(&run.log, b"\x1b[1mbold\x1b[0m\n"));
    assert_eq!(run.err_log, b"\x1b[1mbold\x1b[0m\n");
    assert_eq!(run.stdout, ["\x1b[31mred\x1b[0m plain"]);
    assert_eq!(run.stderr, ["\x1b[1mbold\x1b[0m"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_bytes_are_logged_raw_and_sent_lossy() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, r"printf '\377\376abc\n'")).await;
    assert_eq!(run.log, b"\xff\xfeabc\n");
    assert_eq!(run.stdout, ["\u{FFFD}\u{FFFD}abc"]);
    assert_eq!(run.outcome.log_sha256, sha_hex(&run.log));
}

#[tokio::test(flavor = "multi_thread")]
async fn final_line_without_newline_and_crlf() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, r"printf 'a\r\nb\n\nlast'")).await;
    assert_eq!(run.stdout, ["a", "b", "", "last"]);
    assert_eq!(run.outcome.stdout_lines, 4);
    // Raw bytes kept; the unterminated last line is terminated in the log.
    assert_eq!(run.log, b"a\r\nb\n\nlast\n");
    assert_eq!(run.outcome.last_lines, ["a", "b", "", "last"]);

    let run = run_ok(request(&dir, r"printf 'only' >&2")).await;
    assert_eq!(run.stderr, ["only"]);
    assert_eq!(run.err_log, b"only\n");
    assert_eq!(run.outcome.stderr_lines, 1);
    assert_eq!(run.outcome.stdout_lines, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn large_output_arrives_complete_in_log_and_events() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "seq 1 200000")).await;
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(run.log.len(), expected.len());
    assert!(run.log == expected.as_bytes(), "combined log differs");
    assert_eq!(run.stdout.len(), 200_000);
    assert!(run.stdout.iter().enumerate().all(|(i, l)| *l == (i + 1).to_string()), "events out of order or altered");
    assert_eq!(run.outcome.stdout_lines, 200_000);
    assert_eq!(run.outcome.log_sha256, sha_hex(&run.log));
    let tail: Vec<String> = (199_981..=200_000).map(|i| i.to_string()).collect();
    assert_eq!(run.outcome.last_lines, tail);
    assert!(run.err_log.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_receiver_does_not_stop_logging() {
    let dir = TempDir::new().unwrap();
    let req = request(&dir, "seq 1 50000; seq 1 1000 >&2");
    let log_path = req.log_path.clone();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let outcome = tokio::time::timeout(LIMIT, run_command(req, tx, CancellationToken::new())).await.unwrap().unwrap();
    assert_eq!(outcome.status, CommandStatus::Succeeded);
    assert_eq!(outcome.stdout_lines, 50_000);
    assert_eq!(outcome.stderr_lines, 1_000);
    let log = std::fs::read(log_path).unwrap();
    assert_eq!(log.iter().filter(|&&b| b == b'\n').count(), 51_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn very_long_line_is_split_and_logged_completely() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "head -c 1048576 /dev/zero | tr '\\0' x; echo tail >&2")).await;
    let pieces = 1_048_576 / MAX_LINE;
    assert_eq!(run.stdout.len(), pieces);
    assert!(run.stdout.iter().all(|l| l.len() == MAX_LINE && l.bytes().all(|b| b == b'x')));
    assert_eq!(run.log.iter().filter(|&&b| b == b'x').count(), 1_048_576);
    assert_eq!(run.log.len(), 1_048_576 + pieces + "tail\n".len());
    assert_eq!(run.outcome.stdout_lines, pieces as u64);
    assert_eq!(run.outcome.log_sha256, sha_hex(&run.log));
}

#[tokio::test(flavor = "multi_thread")]
async fn long_line_ending_in_newline_is_not_followed_by_empty_line() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, &format!("head -c {} /dev/zero | tr '\\0' y; echo", MAX_LINE))).await;
    assert_eq!(run.stdout.len(), 1);
    assert_eq!(run.stdout[0].len(), MAX_LINE);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_redacted_everywhere() {
    let dir = TempDir::new().unwrap();
    let secret = "hunter2-s3cr3t";
    let mut req =
        request(&dir, r#"echo "pw=$DB_PASSWORD"; echo "stderr has $DB_PASSWORD too" >&2; echo "token=$DB_PASSWORD""#);
    req.env = vec![("DB_PASSWORD".to_owned(), secret.to_owned())];
    req.redact = vec![String::new(), secret.to_owned()];
    req.capture = Some(CaptureRule::new("token", regex::Regex::new("token=(.*)").unwrap()));
    let run = run_ok(req).await;
    assert_eq!(run.outcome.status, CommandStatus::Succeeded);
    assert!(!contains(&run.log, secret.as_bytes()));
    assert!(!contains(&run.err_log, secret.as_bytes()));
    assert!(contains(&run.log, b"pw=***\n"));
    assert_eq!(run.err_log, b"stderr has *** too\n");
    assert_eq!(run.outcome.captured.as_deref(), Some("***"));
    for line in run.stdout.iter().chain(&run.stderr).chain(&run.outcome.last_lines) {
        assert!(!line.contains(secret), "leaked in {line:?}");
    }
    assert_eq!(run.stdout, ["pw=***", "token=***"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_straddling_a_long_line_cut_is_redacted() {
    let dir = TempDir::new().unwrap();
    let secret = "S3CRET-VALUE-0123456789";
    // The secret starts a few bytes before the MAX_LINE cut.
    let script = format!(
        "head -c {} /dev/zero | tr '\\0' a; printf '%s' \"$TOKEN\"; head -c 100000 /dev/zero | tr '\\0' b",
        MAX_LINE - 5
    );
    let mut req = request(&dir, &script);
    req.env = vec![("TOKEN".to_owned(), secret.to_owned())];
    req.redact = vec![secret.to_owned()];
    let run = run_ok(req).await;
    assert!(!contains(&run.log, secret.as_bytes()));
    assert!(!contains(&run.log, b"S3CRET"));
    assert!(contains(&run.log, b"***"));
    assert!(run.stdout.iter().all(|l| l.len() <= MAX_LINE));
    assert!(run.stdout.iter().all(|l| !l.contains("S3CRET")));
    let a = run.log.iter().filter(|&&b| b == b'a').count();
    let b = run.log.iter().filter(|&&b| b == b'b').count();
    assert_eq!((a, b), (MAX_LINE - 5, 100_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn multiline_secret_is_redacted_per_line() {
    let dir = TempDir::new().unwrap();
    let key = "-----BEGIN KEY-----\nAAAAsecretbody\n-----END KEY-----\n";
    let mut req = request(&dir, r#"printf '%s' "$KEY""#);
    req.env = vec![("KEY".to_owned(), key.to_owned())];
    req.redact = vec![key.to_owned()];
    let run = run_ok(req).await;
    assert!(!contains(&run.log, b"AAAAsecretbody"));
    assert_eq!(run.stdout, ["***", "***", "***"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn env_and_cwd_are_honoured() {
    let dir = TempDir::new().unwrap();
    let work = dir.path().join("work dir");
    std::fs::create_dir(&work).unwrap();
    let mut req = request(&dir, r#"echo "$DRILL_GREETING"; pwd -P; echo "$HOME""#);
    req.cwd = Some(work.clone());
    req.env = vec![("DRILL_GREETING".to_owned(), "hello drill".to_owned())];
    let run = run_ok(req).await;
    assert_eq!(run.stdout[0], "hello drill");
    assert_eq!(Path::new(&run.stdout[1]), work.canonicalize().unwrap().as_path());
    // The rest of the environment is inherited.
    if let Ok(home) = std::env::var("HOME") {
        assert_eq!(run.stdout[2], home);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_cwd_is_an_error_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no-such-dir");
    let mut req = request(&dir, "echo hi");
    req.cwd = Some(missing.clone());
    let (tx, _rx) = mpsc::channel(4);
    let err = run_command(req, tx, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, CommandError::Cwd { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unwritable_log_is_an_error_naming_the_path() {
    let dir = TempDir::new().unwrap();
    let bad = dir.path().join("missing-dir").join("combined.log");
    let mut req = request(&dir, "echo hi");
    req.log_path = bad.clone();
    let (tx, _rx) = mpsc::channel(4);
    let err = run_command(req, tx, CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, CommandError::Log { .. }), "{err:?}");
    assert!(err.to_string().contains(&bad.display().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn line_counts_and_log_split() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "echo a; echo b; echo c >&2; echo d")).await;
    assert_eq!(run.outcome.stdout_lines, 3);
    assert_eq!(run.outcome.stderr_lines, 1);
    assert_eq!(run.stdout, ["a", "b", "d"]);
    assert_eq!(run.stderr, ["c"]);
    assert_eq!(run.err_log, b"c\n");
    let mut log_lines: Vec<&[u8]> = run.log.split(|&b| b == b'\n').collect();
    assert_eq!(log_lines.pop(), Some(&b""[..]));
    log_lines.sort();
    assert_eq!(log_lines, [&b"a"[..], b"b", b"c", b"d"]);
    assert_eq!(run.outcome.last_lines.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_lines_keeps_the_last_twenty() {
    let dir = TempDir::new().unwrap();
    let run = run_ok(request(&dir, "seq 1 100; exit 1")).await;
    let tail: Vec<String> = (81..=100).map(|i| i.to_string()).collect();
    assert_eq!(run.outcome.last_lines, tail);
    assert!(!run.outcome.status.is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn background_process_holding_stdout_does_not_hang_the_step() {
    let dir = TempDir::new().unwrap();
    // `sleep` inherits stdout, so the pipe stays open after the shell exits.
    let run = run_ok(request(&dir, "sleep 1000 & echo $!")).await;
    let pid: i32 = run.stdout[0].parse().unwrap();
    kill_quietly(pid);
    assert_eq!(run.outcome.status, CommandStatus::Succeeded);
    assert_eq!(run.outcome.exit_code, Some(0));
}

#[test]
fn status_describe_formats_durations() {
    let timed_out = |ms| CommandStatus::TimedOut { after: Duration::from_millis(ms) };
    assert_eq!(timed_out(30_000).describe(), "timed out after 30s");
    assert_eq!(timed_out(1_500).describe(), "timed out after 1.5s");
    assert_eq!(timed_out(250).describe(), "timed out after 250ms");
    assert_eq!(timed_out(150_000).describe(), "timed out after 2m30s");
    assert_eq!(timed_out(3_600_000).describe(), "timed out after 1h");
    assert_eq!(CommandStatus::Succeeded.to_string(), "succeeded");
}

#[test]
fn debug_of_request_hides_env_values_and_secrets() {
    let mut req = CommandRequest::new("s", "true", "/tmp/a", "/tmp/b");
    req.env = vec![("API_KEY".to_owned(), "topsecretvalue".to_owned())];
    req.redact = vec!["topsecretvalue".to_owned()];
    let shown = format!("{req:?}");
    assert!(shown.contains("API_KEY"));
    assert!(!shown.contains("topsecretvalue"));
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_receiver_still_gets_every_line_after_exit() {
    let dir = TempDir::new().unwrap();
    // The whole output fits in the pipe, so the shell exits at once and the
    // events trickle out for longer than EXIT_DRAIN.
    let req = request(&dir, "seq 1 20000");
    let (tx, mut rx) = mpsc::channel(1);
    let slow = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(EngineEvent::Output { lines: batch, .. }) = rx.recv().await {
            lines.extend(batch);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        lines
    });
    let outcome = tokio::time::timeout(LIMIT, run_command(req, tx, CancellationToken::new())).await.unwrap().unwrap();
    let lines = slow.await.unwrap();
    assert_eq!(outcome.status, CommandStatus::Succeeded);
    assert_eq!(lines.len(), 20_000);
    assert_eq!(lines.last().map(String::as_str), Some("20000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_receiver_does_not_block_timeout() {
    let dir = TempDir::new().unwrap();
    let mut req = request(&dir, "seq 1 10000000");
    req.timeout = Some(Duration::from_secs(1));
    let log_path = req.log_path.clone();
    // Kept alive but never read: the pipe fills and the command blocks.
    let (tx, _stalled) = mpsc::channel(1);
    let outcome = tokio::time::timeout(LIMIT, run_command(req, tx, CancellationToken::new()))
        .await
        .expect("a stuck receiver must not defeat the timeout")
        .unwrap();
    assert!(matches!(outcome.status, CommandStatus::TimedOut { .. }));
    let log = std::fs::read(log_path).unwrap();
    assert_eq!(sha_hex(&log), outcome.log_sha256);
    assert!(log.starts_with(b"1\n2\n3\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_while_a_background_process_holds_the_pipe() {
    let dir = TempDir::new().unwrap();
    // The shell exits at once; the sleep keeps stdout open.
    let req = request(&dir, "sleep 1000 & echo $!");
    let (outcome, pid) = cancel_after_first_line(req).await;
    assert_eq!(outcome.status, CommandStatus::Cancelled);
    wait_gone(pid, "background (after cancel)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_future_kills_the_group() {
    let dir = TempDir::new().unwrap();
    let req = request(&dir, "sleep 1000 & echo $!; sleep 1000");
    let (tx, mut rx) = mpsc::channel(16);
    let handle = tokio::spawn(run_command(req, tx, CancellationToken::new()));
    let pid: i32 = loop {
        match tokio::time::timeout(LIMIT, rx.recv()).await.unwrap() {
            Some(EngineEvent::Output { lines, .. }) => break lines[0].parse().unwrap(),
            Some(_) => {}
            None => panic!("no pid printed"),
        }
    };
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    wait_gone(pid, "grandchild (after drop)").await;
}
