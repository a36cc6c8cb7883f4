//! Drill notifications (Slack or a generic webhook), sent in the background:
//! whoever notifies hands a [`Notification`] to the [`Notifier`] and goes on
//! at once. Each target has its own queue, delivered in order by a task of
//! its own, so a target that hangs delays neither the drill nor the other
//! targets. A notification that could not be delivered is handed to the
//! `on_failure` callback (the conductor journals it); nothing here fails or
//! waits for anyone else.
//!
//! A question that stays unanswered is notified once per target, after that
//! target's `waiting_minutes`: [`Notifier::waiting`] starts (or restarts)
//! the clock of a question, [`Notifier::answered`] stops it.

mod deliver;
mod message;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use deliver::Delivery;
pub use message::{DrillInfo, Notification, ObjectiveLine, What};

use crate::config::{NotifyKind, masked_url};
use crate::runbook::{HttpUrl, parse_http_url};

/// Where notifications go.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: NotifyKind,
    endpoint: HttpUrl,
    /// `https://host/…`: the URL as messages and the journal may show it.
    pub shown: String,
    /// How long a question waits before this target hears of it.
    pub waiting: Duration,
}

/// Why a configured URL cannot be notified. Never holds the URL itself.
#[derive(Debug, thiserror::Error)]
#[error("{shown} is not a URL drillbook can post to ({why})")]
pub struct TargetError {
    shown: String,
    why: &'static str,
}

impl Target {
    pub fn new(kind: NotifyKind, url: &str, waiting: Duration) -> Result<Target, TargetError> {
        let shown = masked_url(url);
        let endpoint = parse_http_url(url).map_err(|error| {
            use crate::runbook::HttpUrlError as E;
            let why = match error {
                E::NotAbsolute(_) | E::NoHost(_) => "it needs http:// or https:// and a host",
                E::Scheme { .. } => "only http and https are supported",
                E::Credentials(_) => "it holds credentials",
                E::Invalid { .. } => "it is not a valid URL",
            };
            TargetError { shown: shown.clone(), why }
        })?;
        Ok(Target { kind, endpoint, shown, waiting })
    }
}

/// A notification that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// The target as shown (`https://host/…`).
    pub target: String,
    /// The notification's event (`drill_finished`).
    pub what: &'static str,
    pub error: String,
}

/// Told of every notification that finally failed, from a notifier's task.
pub type OnFailure = Arc<dyn Fn(DeliveryFailure) + Send + Sync>;

/// The handle to the background tasks; they stop when every handle is gone.
#[derive(Clone)]
pub struct Notifier {
    commands: mpsc::UnboundedSender<Command>,
    in_flight: InFlight,
}

enum Command {
    Send(Notification),
    Waiting {
        question: u64,
        notification: Notification,
    },
    Answered {
        question: u64,
    },
    /// Answered once every queue is empty.
    Flush(oneshot::Sender<()>),
}

impl Notifier {
    /// Starts the tasks on the current tokio runtime.
    pub fn start(targets: Vec<Target>, delivery: Delivery, on_failure: OnFailure) -> Notifier {
        let in_flight = InFlight::default();
        let tls = deliver::tls();
        let queues = targets
            .into_iter()
            .map(|target| {
                let target = Arc::new(target);
                let (jobs, queue) = mpsc::unbounded_channel();
                let worker = Worker {
                    target: target.clone(),
                    delivery,
                    tls: tls.clone(),
                    in_flight: in_flight.clone(),
                    on_failure: on_failure.clone(),
                };
                tokio::spawn(worker.run(queue));
                Queue { target, jobs }
            })
            .collect();
        let (commands, received) = mpsc::unbounded_channel();
        tokio::spawn(dispatch(received, queues, in_flight.clone()));
        Notifier { commands, in_flight }
    }

    /// Sends to every target, in the background.
    pub fn send(&self, notification: Notification) {
        let _ = self.commands.send(Command::Send(notification));
    }

    /// Question `question` waits for an answer from now on: each target
    /// hears `notification` (its `waited` filled in) once the question has
    /// waited that target's time, at most once per question.
    pub fn waiting(&self, question: u64, notification: Notification) {
        let _ = self.commands.send(Command::Waiting { question, notification });
    }

    /// Question `question` got an answer: its clock stops (a checklist asks
    /// again, with the same id, after each tick: the clock starts over).
    pub fn answered(&self, question: u64) {
        let _ = self.commands.send(Command::Answered { question });
    }

    /// Waits up to `within` for every notification sent so far to be
    /// delivered or to fail (failures go to `on_failure` as usual). Returns
    /// the ones still on their way then, which are given up on: nothing
    /// reports them afterwards.
    pub async fn settle(&self, within: Duration) -> Vec<DeliveryFailure> {
        let (done, flushed) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(within, flushed).await;
        }
        self.in_flight
            .take_all()
            .into_iter()
            .map(|(target, what)| DeliveryFailure {
                target,
                what,
                error: format!(
                    "not delivered yet {} after the drill ended, when drillbook exited",
                    crate::runbook::duration::format_duration(within)
                ),
            })
            .collect()
    }
}

/// Notifications queued or being delivered, by a number of their own, so
/// each is reported once: by its worker, or by [`Notifier::settle`].
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<Numbered>>);

#[derive(Default)]
struct Numbered {
    last: u64,
    /// Number → (the target as shown, the notification's event).
    open: BTreeMap<u64, (String, &'static str)>,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, Numbered> {
        // A poisoned lock still holds a consistent map: entries are only added and removed.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn add(&self, target: &Target, notification: &Notification) -> u64 {
        let mut numbered = self.lock();
        numbered.last += 1;
        let number = numbered.last;
        numbered.open.insert(number, (target.shown.clone(), notification.event()));
        number
    }

    /// Whether it was still in flight (not given up on by `settle`).
    fn done(&self, number: u64) -> bool {
        self.lock().open.remove(&number).is_some()
    }

    fn take_all(&self) -> Vec<(String, &'static str)> {
        std::mem::take(&mut self.lock().open).into_values().collect()
    }
}

/// One target's queue.
struct Queue {
    target: Arc<Target>,
    jobs: mpsc::UnboundedSender<Job>,
}

enum Job {
    Deliver { number: u64, notification: Notification },
    Flush(oneshot::Sender<()>),
}

impl Queue {
    fn push(&self, notification: Notification, in_flight: &InFlight) {
        let number = in_flight.add(&self.target, &notification);
        if self.jobs.send(Job::Deliver { number, notification }).is_err() {
            in_flight.done(number);
        }
    }
}

/// The question whose clock runs (the conductor asks one at a time).
struct Waiting {
    question: u64,
    notification: Notification,
    /// `None` while it is answered (a checklist between two ticks).
    since: Option<Instant>,
    /// By target: already notified about this question.
    notified: Vec<bool>,
}

impl Waiting {
    /// When the next target is due to hear of it.
    fn next_due(&self, queues: &[Queue]) -> Option<Instant> {
        let since = self.since?;
        // A wait too long to add to a clock (`waiting_minutes` in the billions) is never due.
        queues
            .iter()
            .zip(&self.notified)
            .filter(|(_, notified)| !**notified)
            .filter_map(|(queue, _)| since.checked_add(queue.target.waiting))
            .min()
    }
}

/// Routes commands to the targets' queues and keeps the waiting clock.
async fn dispatch(mut commands: mpsc::UnboundedReceiver<Command>, queues: Vec<Queue>, in_flight: InFlight) {
    let mut waiting: Option<Waiting> = None;
    loop {
        let due = waiting.as_ref().and_then(|w| w.next_due(&queues));
        let command = tokio::select! {
            command = commands.recv() => command,
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some(waiting) = waiting.as_mut() {
                    notify_waited(waiting, &queues, &in_flight);
                }
                continue;
            }
        };
        match command {
            None => return,
            Some(Command::Send(notification)) => {
                for queue in &queues {
                    queue.push(notification.clone(), &in_flight);
                }
            }
            Some(Command::Waiting { question, notification }) => match waiting.as_mut() {
                Some(open) if open.question == question => {
                    open.since = Some(Instant::now());
                    open.notification = notification;
                }
                _ => {
                    let notified = vec![false; queues.len()];
                    waiting = Some(Waiting { question, notification, since: Some(Instant::now()), notified });
                }
            },
            Some(Command::Answered { question }) => {
                if let Some(open) = waiting.as_mut().filter(|w| w.question == question) {
                    open.since = None;
                }
            }
            Some(Command::Flush(done)) => {
                // The drill is ending: no question is left to wait on.
                waiting = None;
                let flushed: Vec<_> = queues
                    .iter()
                    .filter_map(|queue| {
                        let (ack, flushed) = oneshot::channel();
                        queue.jobs.send(Job::Flush(ack)).ok().map(|()| flushed)
                    })
                    .collect();
                tokio::spawn(async move {
                    for queue in flushed {
                        let _ = queue.await;
                    }
                    let _ = done.send(());
                });
            }
        }
    }
}

/// Queues the waiting notification for each target whose time has come.
fn notify_waited(waiting: &mut Waiting, queues: &[Queue], in_flight: &InFlight) {
    let Some(since) = waiting.since else { return };
    let waited = since.elapsed();
    for (queue, notified) in queues.iter().zip(waiting.notified.iter_mut()) {
        if *notified || waited < queue.target.waiting {
            continue;
        }
        *notified = true;
        let mut notification = waiting.notification.clone();
        if let What::Waiting { waited: how_long, .. } = &mut notification.what {
            *how_long = waited;
        }
        queue.push(notification, in_flight);
    }
}

/// Delivers one target's notifications, one after the other.
struct Worker {
    target: Arc<Target>,
    delivery: Delivery,
    tls: deliver::Tls,
    in_flight: InFlight,
    on_failure: OnFailure,
}

impl Worker {
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = queue.recv().await {
            let (number, notification) = match job {
                Job::Deliver { number, notification } => (number, notification),
                Job::Flush(ack) => {
                    let _ = ack.send(());
                    continue;
                }
            };
            let body = Bytes::from(notification.body(self.target.kind));
            let result = deliver::deliver(&self.target, body, self.delivery, &self.tls).await;
            // Given up on by `settle`: reported there already.
            if !self.in_flight.done(number) {
                continue;
            }
            if let Err(error) = result {
                let failure = DeliveryFailure {
                    target: self.target.shown.clone(),
                    what: notification.event(),
                    error: hide_path(&error, &self.target.endpoint.path_and_query),
                };
                (self.on_failure)(failure);
            }
        }
    }
}

/// An error never names the URL's path, but a library's message might: the
/// path is the webhook's secret.
fn hide_path(error: &str, path: &str) -> String {
    let secret = path.trim_start_matches('/');
    if secret.is_empty() { error.to_string() } else { error.replace(secret, "…") }
}
