//! The one way the integration tests start a server on loopback: [`Launch`] a child process
//! on a free port and wait until it listens (and, if it has one, its readiness probe passes),
//! or [`serve`] connections from threads of the test process. Both stop when dropped.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::wait::{poll_until, wait_for};

/// A port that was free a moment ago: another process may take it before the caller binds
/// it (a [`Launch`]ed server then gets another one).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("the local address of the port probe").port()
}

/// The Python venv the test servers (moto, the Kubernetes emulator) run from:
/// `$DRILLBOOK_TEST_VENV`, else `<crate>/target/test-venv` (both made by `./scripts/test`).
pub fn test_venv() -> PathBuf {
    match std::env::var_os("DRILLBOOK_TEST_VENV") {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-venv"),
    }
}

// --- a child process --------------------------------------------------------------------------

/// The exit code of a server whose port is taken (EADDRINUSE), as the Kubernetes emulator
/// reports it.
const EXIT_ADDRESS_IN_USE: i32 = 98;
/// How many free ports a start tries before giving up.
const PORT_TRIES: usize = 5;
/// How long a server stopped with its own signal may take before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run one server: the command for a port, where its output goes, when it counts as
/// up. [`Launch::start`] runs it.
pub struct Launch {
    name: String,
    log: PathBuf,
    command: Box<dyn Fn(u16) -> Command>,
    ready: Option<Box<dyn Fn(u16) -> bool>>,
    timeout: Duration,
    stop_signal: i32,
}

impl Launch {
    /// A server called `name` in messages, run by `command(port)` with its stdout and stderr
    /// appended to `log` (which it shows when it does not come up). It must listen on
    /// 127.0.0.1:PORT; when that port is taken it should exit with code 98 or say "Address
    /// already in use", and another port is tried.
    pub fn new(name: &str, log: &Path, command: impl Fn(u16) -> Command + 'static) -> Launch {
        Launch {
            name: name.to_owned(),
            log: log.to_owned(),
            command: Box::new(command),
            ready: None,
            timeout: Duration::from_secs(15),
            stop_signal: libc::SIGKILL,
        }
    }

    /// Up only once `probe(port)` also says so (it is asked after the port listens).
    pub fn ready_when(mut self, probe: impl Fn(u16) -> bool + 'static) -> Launch {
        self.ready = Some(Box::new(probe));
        self
    }

    /// How long it may take to come up (15 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Launch {
        self.timeout = timeout;
        self
    }

    /// Stops it with this signal, then SIGKILL if it is still there after 10 s (SIGKILL at
    /// once unless set, like a crash).
    pub fn stop_signal(mut self, signal: i32) -> Launch {
        self.stop_signal = signal;
        self
    }

    /// Runs the server on a free port and waits until it is up; panics with its output when
    /// it exits or does not come up in time.
    pub fn start(self) -> Server {
        let mut server = Server { launch: self, port: 0, child: None };
        for _ in 0..PORT_TRIES {
            server.port = free_port();
            if server.spawn_and_wait().is_ok() {
                return server;
            }
        }
        panic!("{} found no free port in {PORT_TRIES} tries; its output:\n{}", server.launch.name, server.log_tail());
    }
}

/// A running server process, killed on drop.
pub struct Server {
    launch: Launch,
    port: u16,
    child: Option<Child>,
}

/// The port was taken by someone else before the server bound it.
struct PortInUse;

impl Server {
    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id while it runs, e.g. to `SIGSTOP` it for a "server hangs" test (drop
    /// still kills a stopped process).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it runs (false after [`Server::stop`], or once it died).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Stops it (see [`Launch::stop_signal`]) and waits for it; nothing when it is stopped.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if self.launch.stop_signal != libc::SIGKILL {
            // SAFETY: a signal to our own child, which is not reaped yet.
            unsafe { libc::kill(child.id() as i32, self.launch.stop_signal) };
            let _ = poll_until(STOP_TIMEOUT, || child.try_wait().ok().flatten());
        }
        // kill fails only when the process already exited, which wait reaps just the same.
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops it and starts it again on the same port, for "the server died, then came back"
    /// tests. The port is normally free at once, but a chance taker gets 5 s to go away.
    pub fn restart(&mut self) {
        self.stop();
        let what = format!("port {} to be free again, to restart {}", self.port, self.launch.name);
        wait_for(&what, Duration::from_secs(5), || self.spawn_and_wait().ok());
    }

    /// The last 40 lines of its output, over all its starts.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read(&self.launch.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn spawn_and_wait(&mut self) -> Result<(), PortInUse> {
        let (name, port) = (self.launch.name.clone(), self.port);
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&self.launch.log)
            .unwrap_or_else(|err| panic!("open {}'s log {}: {err}", name, self.launch.log.display()));
        let output = Output { log: self.launch.log.clone(), from: log.seek(SeekFrom::End(0)).unwrap_or(0) };
        let mut command = (self.launch.command)(port);
        command.stdin(Stdio::null()).stdout(log.try_clone().expect("clone the log's handle")).stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {name} ({}): {err}", command.get_program().display()));
        let pid = child.id();
        self.child = Some(child);
        wait_for(&format!("{name} to listen on 127.0.0.1:{port}"), self.launch.timeout, || {
            let child = self.child.as_mut().expect("the child is set above");
            if let Some(status) = child.try_wait().expect("poll the server's process") {
                self.child = None;
                let text = output.to_string();
                if status.code() == Some(EXIT_ADDRESS_IN_USE)
                    || text.contains("Address already in use")
                    || text.contains("is in use by another program")
                {
                    return Ok(Err(PortInUse));
                }
                panic!("{name} exited with {status} while starting on port {port}; {text}");
            }
            // Only trust the port once this process holds the listening socket: otherwise
            // the answer might come from another test's server that took the port.
            let listening = match owns_listening_socket(pid, port) {
                Some(owned) => owned,
                None => TcpStream::connect(("127.0.0.1", port)).is_ok(),
            };
            if listening && self.launch.ready.as_ref().is_none_or(|ready| ready(port)) {
                Ok(Ok(()))
            } else {
                Err(&output)
            }
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a server wrote to its log since it was last started.
struct Output {
    log: PathBuf,
    from: u64,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let from = usize::try_from(self.from).unwrap_or(usize::MAX).min(text.len());
        write!(f, "its output:\n{}", String::from_utf8_lossy(&text[from..]))
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`, from /proc;
/// `None` where /proc cannot tell (not Linux).
fn owns_listening_socket(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!(":{port:04X}");
    // Columns: sl local_address rem_address st … inode; st 0A is LISTEN.
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A")
                .then(|| format!("socket:[{}]", fields[9]))
        })
        .collect();
    if inodes.is_empty() {
        return Some(false);
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|inode| target.as_os_str() == inode.as_str()))
    }))
}

// --- threads of the test process ----------------------------------------------------------

/// Connections served by [`serve`]: a thread accepts them, and each is handled in a thread
/// of its own. Dropping it stops accepting and cuts every connection still open.
pub struct Serving {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// One accepted connection, as its handler sees it.
pub struct Connection {
    id: u64,
    shared: Arc<Shared>,
}

struct Shared {
    stopping: AtomicBool,
    /// The sockets of every connection in progress, so drop can cut them.
    open: Mutex<HashMap<u64, Vec<TcpStream>>>,
}

/// Serves connections on a free loopback port: `handler` gets each one, with its
/// [`Connection`], in a thread of its own; the connection closes when the handler is done.
pub fn serve(handler: impl Fn(TcpStream, &Connection) + Send + Sync + 'static) -> Serving {
    serve_on(TcpListener::bind("127.0.0.1:0").expect("bind a test server on 127.0.0.1"), handler)
}

/// [`serve`] on a listener of the caller's (e.g. bound to a port chosen before).
pub fn serve_on(listener: TcpListener, handler: impl Fn(TcpStream, &Connection) + Send + Sync + 'static) -> Serving {
    let address = listener.local_addr().expect("the test server's address");
    let shared = Arc::new(Shared { stopping: AtomicBool::new(false), open: Mutex::new(HashMap::new()) });
    let handler = Arc::new(handler);
    let accepting = Arc::clone(&shared);
    let acceptor = std::thread::Builder::new()
        .name(format!("test-server-{}", address.port()))
        .spawn(move || {
            let mut next_id = 0;
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = next_id;
                next_id += 1;
                let connection = Connection { id, shared: Arc::clone(&accepting) };
                connection.track(&stream);
                let handler = Arc::clone(&handler);
                let spawned = std::thread::Builder::new().name(format!("test-server-{id}")).spawn(move || {
                    handler(stream, &connection);
                    connection.shared.open().remove(&connection.id);
                });
                // Out of threads: the connection is dropped, which the client sees as a reset.
                if spawned.is_err() {
                    accepting.open().remove(&id);
                }
            }
        })
        .expect("spawn the test server's accept thread");
    Serving { address, shared, acceptor: Some(acceptor) }
}

impl Serving {
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // accept() blocks; a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for streams in self.shared.open().values() {
            for stream in streams {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Connection {
    /// Which connection this is: 0 for the first accepted, then 1, 2…
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the server is being dropped (a handler that waits should stop).
    pub fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// Cuts `stream` too when the server is dropped (e.g. the handler's own connection to
    /// an upstream server).
    pub fn track(&self, stream: &TcpStream) {
        if let Ok(clone) = stream.try_clone() {
            self.shared.open().entry(self.id).or_default().push(clone);
        }
    }
}

impl Shared {
    // A test that panicked while holding the lock must not hide its own message behind a
    // poisoned-lock panic here, so poisoning is ignored.
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Vec<TcpStream>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
