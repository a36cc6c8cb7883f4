//! The one way the integration tests wait for something: poll a probe until it gives a
//! value, and panic naming what was awaited, and what was last seen instead, when it does
//! not come in time. Waits are polls against a generous deadline, never fixed sleeps, so a
//! loaded machine makes a test slower, not flaky.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// The first pause between two polls; each pause is half as long again as the one before,
/// up to [`LONGEST_PAUSE`], so a quick answer is seen at once and a slow one is not
/// hammered.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// What a probe returns: `Option<T>` (`None`: not yet), or `Result<T, E>` (`Err`: not yet,
/// and what was seen instead, which the panic shows if the wait times out; it is only
/// formatted then).
pub trait Probe {
    type Output;
    type Seen: Display;
    fn into_result(self) -> Result<Self::Output, Option<Self::Seen>>;
}

impl<T> Probe for Option<T> {
    type Output = T;
    type Seen = &'static str;

    fn into_result(self) -> Result<T, Option<&'static str>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Probe for Result<T, E> {
    type Output = T;
    type Seen = E;

    fn into_result(self) -> Result<T, Option<E>> {
        self.map_err(Some)
    }
}

/// Calls `probe` until it gives a value, and returns that; after `timeout`, panics with
/// "timed out after TIMEOUT waiting for WHAT" and the last thing the probe saw.
pub fn wait_for<P: Probe>(what: &str, timeout: Duration, probe: impl FnMut() -> P) -> P::Output {
    poll_until(timeout, probe).unwrap_or_else(|seen| timed_out(what, timeout, seen))
}

/// [`wait_for`] for async code: the probe is awaited, and the pauses do not block the
/// runtime (which may have work to do meanwhile, e.g. closing connections).
pub async fn wait_for_async<P: Probe>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> P) -> P::Output {
    let mut pauses = Pauses::new(timeout);
    loop {
        match probe().await.into_result() {
            Ok(value) => return value,
            Err(seen) => match pauses.next() {
                Some(pause) => tokio::time::sleep(pause).await,
                None => timed_out(what, timeout, seen),
            },
        }
    }
}

/// [`wait_for`] without the panic, for what has a way out (e.g. killing a process that
/// does not stop when asked): the value, or what the probe saw last when time ran out.
pub fn poll_until<P: Probe>(timeout: Duration, mut probe: impl FnMut() -> P) -> Result<P::Output, Option<P::Seen>> {
    let mut pauses = Pauses::new(timeout);
    loop {
        match probe().into_result() {
            Ok(value) => return Ok(value),
            Err(seen) => match pauses.next() {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(seen),
            },
        }
    }
}

fn timed_out(what: &str, timeout: Duration, seen: Option<impl Display>) -> ! {
    let seen = seen.map(|seen| format!("; last seen:\n{seen}")).unwrap_or_default();
    panic!("timed out after {timeout:?} waiting for {what}{seen}")
}

/// The pauses between the polls of one wait, until its time is up.
struct Pauses {
    deadline: Instant,
    next: Duration,
}

impl Pauses {
    fn new(timeout: Duration) -> Self {
        Pauses { deadline: Instant::now() + timeout, next: FIRST_PAUSE }
    }
}

impl Iterator for Pauses {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let pause = self.next;
        self.next = (pause * 3 / 2).min(LONGEST_PAUSE);
        Some(pause)
    }
}
