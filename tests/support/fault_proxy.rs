//! An HTTP-aware TCP proxy on 127.0.0.1 that injects faults between a client (the AWS SDK
//! in the crate under test) and an upstream server (moto), for retry and resume tests.
//!
//! Each connection carries exactly one request: the proxy forces `Connection: close` both
//! ways, which every HTTP/1.1 client (hyper included) honours by opening a new connection
//! for the next request. That keeps the proxy simple and makes "the next N requests" well
//! defined. It answers `Expect: 100-continue` itself and strips it before forwarding.
//!
//! Include it with `#[path = "support/fault_proxy.rs"] mod fault_proxy;` next to
//! `mod support;`: it serves with `support/server.rs` (a thread a connection) and reads
//! message heads with `support/http.rs`.
// Each test uses only some helpers. `unused` rather than `dead_code`: a test that includes
// this file with `#[allow(dead_code)] mod fault_proxy;` would otherwise trip
// clippy::duplicated_attributes.
#![allow(unused)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::support::http::{self, Head, read_head};
use crate::support::server::{Connection, Serving, serve};

/// Long enough for any test transfer, short enough that a stuck connection thread ends.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// What the proxy does to the requests that come next. Counted faults revert to
/// [`Fault::None`] once used up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything untouched.
    None,
    /// Answer the next `times` requests with `503 SlowDown` and an S3-style XML error body,
    /// without forwarding them (as S3 does when throttling).
    ServiceUnavailable { times: usize },
    /// Answer every request with `403 AccessDenied` (an S3-style XML error body), without
    /// forwarding it, until changed: credentials that are not allowed to read the bucket.
    Forbidden,
    /// Forward the request, relay the response head and the first `bytes` bytes of its body,
    /// then close the connection: the client sees a body shorter than its `Content-Length`.
    /// Applies to the next `times` responses whose body is longer than `bytes` (bodiless
    /// responses such as HEAD pass and do not count). For a chunked body the bytes count
    /// the chunk framing too.
    CutAfterBytes { bytes: u64, times: usize },
    /// Close every new connection at once, without reading or answering, until changed.
    Refuse,
    /// Forward everything, and add `header: value` to the answer of every HEAD request whose
    /// path contains `path_contains`: what S3 says that moto does not (e.g.
    /// `x-amz-replication-status: FAILED`).
    HeadHeader { path_contains: String, header: String, value: String },
}

/// A running proxy; dropping it stops it and cuts its open connections.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give this to the client instead of the upstream endpoint.
    pub endpoint: String,
    shared: Arc<Shared>,
    _serving: Serving,
}

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    requests: AtomicUsize,
    connections: AtomicUsize,
    injected: AtomicUsize,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) with no fault.
    pub fn start(upstream: &str) -> FaultProxy {
        let shared = Arc::new(Shared {
            upstream: http::authority(upstream).to_owned(),
            fault: Mutex::new(Fault::None),
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            injected: AtomicUsize::new(0),
        });
        let proxying = Arc::clone(&shared);
        let serving = serve(move |stream, connection| {
            proxying.connections.fetch_add(1, Ordering::SeqCst);
            if *proxying.fault() == Fault::Refuse {
                return;
            }
            // An I/O error here is the client or upstream going away, which is what the
            // tests provoke; the connection just ends.
            let _ = handle_connection(&stream, &proxying, connection);
            let _ = stream.shutdown(Shutdown::Both);
        });
        FaultProxy { endpoint: serving.endpoint(), shared, _serving: serving }
    }

    /// Replaces the current fault (and whatever count it had left).
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault() = fault;
    }

    /// The fault now in force, with its remaining count.
    pub fn fault(&self) -> Fault {
        self.shared.fault().clone()
    }

    /// How many requests arrived (forwarded, answered 503, or cut), to assert retries.
    /// Connections closed by [`Fault::Refuse`] carry no request and are not counted.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// How many TCP connections were accepted, refused ones included.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many 503s were sent and bodies cut so far.
    pub fn faults_injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }
}

impl Shared {
    // A test that panicked while holding a lock must not hide its own message behind a
    // poisoned-lock panic here, so poisoning is ignored.
    fn fault(&self) -> MutexGuard<'_, Fault> {
        self.fault.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one use of a cut, if one is left.
    fn take_cut(&self) -> Option<u64> {
        let mut fault = self.fault();
        let Fault::CutAfterBytes { bytes, times } = *fault else { return None };
        *fault = if times > 1 { Fault::CutAfterBytes { bytes, times: times - 1 } } else { Fault::None };
        self.injected.fetch_add(1, Ordering::SeqCst);
        Some(bytes)
    }
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyLength {
    None,
    Exactly(u64),
    Chunked,
    UntilClose,
}

/// The head with hop-by-hop headers that would keep the connection open (or ask for a
/// `100 Continue` from upstream) replaced by `Connection: close`.
fn closing(head: &Head) -> Vec<u8> {
    let mut out = format!("{}\r\n", head.start);
    for (name, value) in &head.headers {
        let hop_by_hop = ["connection", "keep-alive", "proxy-connection", "expect", "upgrade"]
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop));
        if !hop_by_hop {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Copies one body from `reader` to `out` as it is framed, chunk framing included.
fn copy_body(reader: &mut impl BufRead, length: BodyLength, out: &mut impl Write) -> io::Result<()> {
    match length {
        BodyLength::None => Ok(()),
        BodyLength::Exactly(len) => {
            let copied = io::copy(&mut reader.take(len), out)?;
            if copied < len {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body shorter than its Content-Length"));
            }
            Ok(())
        }
        BodyLength::UntilClose => io::copy(reader, out).map(drop),
        BodyLength::Chunked => loop {
            let mut size_line = Vec::new();
            if reader.read_until(b'\n', &mut size_line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended without its last chunk"));
            }
            out.write_all(&size_line)?;
            let size_text = String::from_utf8_lossy(&size_line);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailer fields, then the empty line that ends the body.
                loop {
                    let mut line = Vec::new();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended in its trailer"));
                    }
                    out.write_all(&line)?;
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(());
                    }
                }
            }
            // The chunk's data and its CRLF.
            copy_body(reader, BodyLength::Exactly(size), out)?;
            let mut crlf = Vec::new();
            reader.read_until(b'\n', &mut crlf)?;
            out.write_all(&crlf)?;
        },
    }
}

fn request_body_length(request: &Head) -> BodyLength {
    if request.is_chunked() {
        BodyLength::Chunked
    } else {
        request.content_length().map_or(BodyLength::None, BodyLength::Exactly)
    }
}

fn response_body_length(is_head: bool, status: u16, response: &Head) -> BodyLength {
    if is_head || (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLength::None
    } else if response.is_chunked() {
        BodyLength::Chunked
    } else {
        response.content_length().map_or(BodyLength::UntilClose, BodyLength::Exactly)
    }
}

fn handle_connection(client: &TcpStream, shared: &Shared, connection: &Connection) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    client.set_nodelay(true)?;
    let mut from_client = BufReader::new(client);
    let mut to_client = client;
    let Some(request) = read_head(&mut from_client)? else { return Ok(()) };
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let is_head = request.start.split_whitespace().next().is_some_and(|method| method.eq_ignore_ascii_case("HEAD"));
    let body_length = request_body_length(&request);

    let answer_error = {
        let mut fault = shared.fault();
        match *fault {
            // Set after this connection was accepted: refuse it too.
            Fault::Refuse => return Ok(()),
            Fault::ServiceUnavailable { times } if times > 0 => {
                *fault = if times > 1 { Fault::ServiceUnavailable { times: times - 1 } } else { Fault::None };
                shared.injected.fetch_add(1, Ordering::SeqCst);
                Some(SLOW_DOWN)
            }
            Fault::Forbidden => {
                shared.injected.fetch_add(1, Ordering::SeqCst);
                Some(ACCESS_DENIED)
            }
            _ => None,
        }
    };

    // The client may wait for this before sending its body; upstream never sees the
    // Expect header, so it will not send one.
    if request.header("expect").is_some_and(|expect| expect.eq_ignore_ascii_case("100-continue")) {
        to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }

    if let Some(error) = answer_error {
        // Read the whole request first: closing a socket with unread input sends a reset,
        // which could destroy the answer before the client reads it.
        copy_body(&mut from_client, body_length, &mut io::sink())?;
        return write_error(&mut to_client, error, is_head);
    }

    let upstream = match TcpStream::connect(&shared.upstream) {
        Ok(upstream) => upstream,
        Err(err) => {
            copy_body(&mut from_client, body_length, &mut io::sink())?;
            let body = format!("fault proxy: cannot reach upstream {}: {err}\n", shared.upstream);
            let head = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            to_client.write_all(head.as_bytes())?;
            return to_client.write_all(if is_head { b"" } else { body.as_bytes() });
        }
    };
    connection.track(&upstream);
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    upstream.set_nodelay(true)?;

    let mut to_upstream = io::BufWriter::new(&upstream);
    to_upstream.write_all(&closing(&request))?;
    copy_body(&mut from_client, body_length, &mut to_upstream)?;
    to_upstream.flush()?;
    drop(to_upstream);

    let mut from_upstream = BufReader::new(&upstream);
    let (response, status) = loop {
        let response = read_head(&mut from_upstream)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed without answering"))?;
        let status = response.status().unwrap_or(0);
        // An interim response (none expected, since Expect was stripped) is not relayed.
        if !(100..200).contains(&status) || status == 101 {
            break (response, status);
        }
    };
    let length = response_body_length(is_head, status, &response);
    let longer_than = |bytes: u64| match length {
        BodyLength::None => false,
        BodyLength::Exactly(len) => len > bytes,
        BodyLength::Chunked | BodyLength::UntilClose => true,
    };
    // Bound first: a guard in the match scrutinee would stay locked through take_cut.
    let fault = shared.fault().clone();
    let cut = match fault {
        Fault::CutAfterBytes { bytes, .. } if longer_than(bytes) => shared.take_cut(),
        _ => None,
    };

    let mut response = response;
    if let Fault::HeadHeader { path_contains, header, value } = &fault
        && is_head
        && request.start.split_whitespace().nth(1).is_some_and(|path| path.contains(path_contains.as_str()))
    {
        response.headers.push((header.clone(), value.clone()));
        shared.injected.fetch_add(1, Ordering::SeqCst);
    }
    let mut out = io::BufWriter::new(to_client);
    out.write_all(&closing(&response))?;
    match cut {
        Some(bytes) => {
            io::copy(&mut (&mut from_upstream).take(bytes), &mut out)?;
            out.flush()?;
            // The connection ends here, mid-body.
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        None => {
            copy_body(&mut from_upstream, length, &mut out)?;
            out.flush()
        }
    }
}

/// An S3-style error answer: status line, error code, message.
struct S3Error(&'static str, &'static str, &'static str);

const SLOW_DOWN: S3Error = S3Error("503 Slow Down", "SlowDown", "Please reduce your request rate.");
const ACCESS_DENIED: S3Error = S3Error("403 Forbidden", "AccessDenied", "Access Denied");

fn write_error(client: &mut impl Write, S3Error(status, code, message): S3Error, is_head: bool) -> io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message} (injected by the test fault proxy)</Message>\
         <RequestId>FAULTPROXY0000001</RequestId><HostId>fault-proxy</HostId></Error>"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         x-amz-request-id: FAULTPROXY0000001\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    if !is_head {
        client.write_all(body.as_bytes())?;
    }
    client.flush()
}
