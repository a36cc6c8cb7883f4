//! SIGINT, SIGTERM and SIGHUP stop a drill cleanly: the running attempt is
//! cancelled and journaled as interrupted, and the drill can be resumed (in
//! plain mode a first Ctrl-C stops only the running step). One more signal
//! than that leaves at once (the journal is durable at every line), through
//! the front-end's `on_second_signal` so it can restore the terminal.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Internal;

/// A stop signal could not be listened for (the drill would not stop cleanly).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for {signal}: {source}")]
pub struct SignalError {
    signal: &'static str,
    #[source]
    source: std::io::Error,
}

pub(super) fn listen(
    conductor: mpsc::UnboundedSender<Internal>,
    on_second_signal: fn(),
    hard_exit_after: usize,
) -> Result<(), SignalError> {
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for (kind, name) in
        [(SignalKind::interrupt(), "SIGINT"), (SignalKind::terminate(), "SIGTERM"), (SignalKind::hangup(), "SIGHUP")]
    {
        let mut stream = signal(kind).map_err(|source| SignalError { signal: name, source })?;
        let (conductor, heard) = (conductor.clone(), heard.clone());
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if heard.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= hard_exit_after {
                    on_second_signal();
                }
                if conductor.send(Internal::Signal(name)).is_err() {
                    return;
                }
            }
        });
    }
    Ok(())
}
