//! The one HTTP/1.1 client of the integration tests, over `std::net::TcpStream`: one request
//! a connection (`Connection: close` unless the request says otherwise); request bodies from
//! bytes, written while they go out, or chunked; response bodies framed by `Content-Length`,
//! chunked encoding or the end of the connection, read whole, piece by piece into a function,
//! or as a stream.
//!
//! The servers' harnesses (moto, the Kubernetes emulator) seed and inspect their servers
//! through it on purpose: the crate's own S3 and Kubernetes clients are what the tests
//! exercise, so fixtures must not be written through them. The fault proxy reads message
//! heads with [`read_head`].

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Generous, so a slow machine never fails a test, but a hung server still ends it.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Bodies are written and read in pieces this big, never held whole on the way.
const PIECE: usize = 64 * 1024;
/// A message head larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;

/// Writes a request body to the connection.
pub type BodyWriter<'a> = &'a mut dyn FnMut(&mut dyn Write) -> io::Result<()>;

enum Body<'a> {
    Bytes(&'a [u8]),
    /// This many bytes, written by the function while the request goes out.
    Written(u64, BodyWriter<'a>),
    /// Sent with `Transfer-Encoding: chunked`, a chunk each.
    Chunks(&'a [&'a [u8]]),
}

/// One request, built up and then sent to an endpoint (`http://HOST:PORT`).
///
/// Headers it adds unless the request has them: `Host`, `Content-Length` (or
/// `Transfer-Encoding: chunked` for a chunked body) and `Connection: close`. With
/// `Expect: 100-continue` the body waits for the server's `100 Continue`, and is not sent
/// when a final answer comes first.
pub struct Request<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Body<'a>,
    timeout: Duration,
}

impl<'a> Request<'a> {
    /// `method` to `target` (a path and query), no body, [`TIMEOUT`] for every read and write.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Request { method, target, headers: Vec::new(), body: Body::Bytes(b""), timeout: TIMEOUT }
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn headers(mut self, headers: &[(&'a str, &'a str)]) -> Self {
        self.headers.extend_from_slice(headers);
        self
    }

    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Body::Bytes(body);
        self
    }

    /// A body of `len` bytes that `write` writes exactly, while the request goes out (so a
    /// large one never has to be in memory).
    pub fn body_from(mut self, len: u64, write: BodyWriter<'a>) -> Self {
        self.body = Body::Written(len, write);
        self
    }

    /// A chunked body: one chunk a slice, then the last, empty chunk.
    pub fn chunked(mut self, chunks: &'a [&'a [u8]]) -> Self {
        self.body = Body::Chunks(chunks);
        self
    }

    /// How long any one read or write may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the request has a header of that name (ignoring case).
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Whether the request sends a body of at least one byte.
    pub fn has_body(&self) -> bool {
        match &self.body {
            Body::Bytes(bytes) => !bytes.is_empty(),
            Body::Written(len, _) => *len > 0,
            Body::Chunks(chunks) => chunks.iter().any(|chunk| !chunk.is_empty()),
        }
    }

    /// Sends the request and reads the whole response.
    ///
    /// `Err` only when no response head arrived (connection refused or reset, timeout); a
    /// body cut short comes back with `complete: false`.
    pub fn send(self, endpoint: &str) -> io::Result<Response> {
        let mut body = Vec::new();
        let mut response = self.send_to(endpoint, &mut |piece| body.extend_from_slice(piece))?;
        response.body = body;
        Ok(response)
    }

    /// [`Request::send`], handing the response body to `on_body` piece by piece instead of
    /// keeping it (the returned `body` is empty).
    pub fn send_to(self, endpoint: &str, on_body: &mut dyn FnMut(&[u8])) -> io::Result<Response> {
        let mut stream = self.open(endpoint)?;
        let complete = loop {
            match stream.next_piece() {
                Ok(Some(piece)) => on_body(&piece),
                Ok(None) => break true,
                // A cut, not a failure: that is what the fault tests look for.
                Err(_) => break false,
            }
        };
        let closed = complete && stream.closes();
        let _ = stream.reader.get_ref().shutdown(Shutdown::Both);
        let ResponseStream { status, headers, interim, .. } = stream;
        Ok(Response { status, headers, body: Vec::new(), complete, interim, closed })
    }

    /// Sends the request and reads the response head; the body is left to read as it comes
    /// (a watch, a followed log).
    pub fn open(mut self, endpoint: &str) -> io::Result<ResponseStream> {
        let host = authority(endpoint);
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;

        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        if !self.has_header("host") {
            head.push_str(&format!("Host: {host}\r\n"));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !self.has_header("content-length") && !self.has_header("transfer-encoding") {
            match &self.body {
                Body::Chunks(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
                Body::Bytes(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
                Body::Written(len, _) => head.push_str(&format!("Content-Length: {len}\r\n")),
            }
        }
        if !self.has_header("connection") {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let expect_continue = self
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));

        let mut reader = BufReader::with_capacity(PIECE, stream.try_clone()?);
        let mut writer = BufWriter::with_capacity(PIECE, &stream);
        writer.write_all(head.as_bytes())?;
        let mut interim = Vec::new();
        // A final answer that came before the body was sent (which it then is not).
        let mut early = None;
        if expect_continue {
            writer.flush()?;
            let answer = read_head(&mut reader)?.ok_or_else(closed_before_answering)?;
            match answer.status() {
                Some(100..=199) => interim.push(answer.start),
                _ => early = Some(answer),
            }
        }
        // A server may answer (an error) and close before taking the whole body; its answer
        // still matters more than the failed write, so it is read either way.
        let sent = match early {
            Some(_) => Ok(()),
            None => write_body(&mut self.body, &mut writer).and_then(|()| writer.flush()),
        };
        drop(writer);
        let answer = match early {
            Some(answer) => answer,
            None => loop {
                match read_head(&mut reader) {
                    Ok(Some(answer)) if answer.status().is_some_and(|s| (100..200).contains(&s)) => {
                        interim.push(answer.start)
                    }
                    Ok(Some(answer)) => break answer,
                    Ok(None) => return Err(sent.err().unwrap_or_else(closed_before_answering)),
                    Err(err) => return Err(sent.err().unwrap_or(err)),
                }
            },
        };
        let status = answer
            .status()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {:?}", answer.start)))?;
        let framing = if self.method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
            Framing::Done
        } else if answer.is_chunked() {
            Framing::Chunked(Chunk::Size)
        } else {
            answer.content_length().map_or(Framing::UntilClose, Framing::Length)
        };
        Ok(ResponseStream { status, headers: answer.headers, interim, reader, framing, line: Vec::new() })
    }
}

fn write_body(body: &mut Body<'_>, out: &mut dyn Write) -> io::Result<()> {
    match body {
        Body::Bytes(bytes) => out.write_all(bytes),
        Body::Written(_, write) => write(out),
        Body::Chunks(chunks) => {
            for chunk in chunks.iter().filter(|chunk| !chunk.is_empty()) {
                write!(out, "{:x}\r\n", chunk.len())?;
                out.write_all(chunk)?;
                out.write_all(b"\r\n")?;
            }
            out.write_all(b"0\r\n\r\n")
        }
    }
}

fn closed_before_answering() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response")
}

/// A response read whole by [`Request::send`].
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended (or a read failed) before the body did: shorter than
    /// its `Content-Length`, or a chunked body without its last chunk.
    pub complete: bool,
    /// The status lines of the interim (1xx) responses before this one, such as
    /// `HTTP/1.1 100 Continue`.
    pub interim: Vec<String>,
    /// Whether the server closed the connection after the response.
    pub closed: bool,
}

impl Response {
    /// The first header of that name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A response whose body is read as it comes, from [`Request::open`].
pub struct ResponseStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub interim: Vec<String>,
    reader: BufReader<TcpStream>,
    framing: Framing,
    /// A line of chunk framing read in part when a read timed out.
    line: Vec<u8>,
}

/// How much of the body is still to come.
#[derive(Clone, Copy)]
enum Framing {
    Done,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Clone, Copy)]
enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailer,
}

impl ResponseStream {
    /// The first header of that name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// How long the next reads may wait.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))
    }

    /// The next piece of the (decoded) body, `Ok(None)` once all of it came. An error when
    /// the connection ends before the body does (`UnexpectedEof`) or a read fails; after a
    /// read that timed out (`WouldBlock` or `TimedOut`), reading can go on.
    pub fn next_piece(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.framing {
                Framing::Done => return Ok(None),
                Framing::Length(0) => self.framing = Framing::Done,
                Framing::Length(left) => {
                    let piece = self.take(left)?;
                    self.framing = Framing::Length(left - piece.len() as u64);
                    return Ok(Some(piece));
                }
                Framing::UntilClose => {
                    let available = self.reader.fill_buf()?;
                    if available.is_empty() {
                        self.framing = Framing::Done;
                        continue;
                    }
                    let piece = available.to_vec();
                    self.reader.consume(piece.len());
                    return Ok(Some(piece));
                }
                Framing::Chunked(Chunk::Size) => {
                    let line = self.line()?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(hex, 16)
                        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
                    self.framing = Framing::Chunked(if size == 0 { Chunk::Trailer } else { Chunk::Data(size) });
                }
                Framing::Chunked(Chunk::Data(0)) => self.framing = Framing::Chunked(Chunk::DataEnd),
                Framing::Chunked(Chunk::Data(left)) => {
                    let piece = self.take(left)?;
                    self.framing = Framing::Chunked(Chunk::Data(left - piece.len() as u64));
                    return Ok(Some(piece));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if !self.line()?.is_empty() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "a chunk longer than its size"));
                    }
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer) => {
                    if self.line()?.is_empty() {
                        self.framing = Framing::Done;
                    }
                }
            }
        }
    }

    /// Whether the server closes the connection after the body (waiting for it at most the
    /// read timeout).
    fn closes(&mut self) -> bool {
        matches!(self.reader.fill_buf(), Ok([]))
    }

    /// Up to `left` bytes of what has arrived, at least one.
    fn take(&mut self, left: u64) -> io::Result<Vec<u8>> {
        let available = self.reader.fill_buf()?;
        if available.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection ended inside the body"));
        }
        let piece = available[..available.len().min(usize::try_from(left).unwrap_or(usize::MAX))].to_vec();
        self.reader.consume(piece.len());
        Ok(piece)
    }

    /// One line of chunk framing without its CRLF.
    fn line(&mut self) -> io::Result<String> {
        self.reader.read_until(b'\n', &mut self.line)?;
        if self.line.last() != Some(&b'\n') {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the connection ended inside the body"));
        }
        let line = String::from_utf8_lossy(&self.line).trim_end_matches(['\r', '\n']).to_owned();
        self.line.clear();
        Ok(line)
    }
}

/// A message head: the request or status line, and the header fields.
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The status code of a status line (`HTTP/1.1 200 OK`).
    pub fn status(&self) -> Option<u16> {
        self.start.split_whitespace().nth(1).and_then(|code| code.parse().ok())
    }

    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|len| len.trim().parse().ok())
    }
}

/// Reads a message head; `None` when the connection closed before any of it. An empty line
/// before the start line is skipped (allowed between messages); a head of more than 64 KiB
/// is an error.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = None;
    let mut headers = vec![];
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        total += n;
        if n == 0 {
            return match start {
                None => Ok(None),
                Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a message head")),
            };
        }
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "message head too large"));
        }
        let line = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
        match &start {
            None if line.is_empty() => continue,
            None => start = Some(line),
            Some(_) if line.is_empty() => break,
            Some(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
            }
        }
    }
    Ok(start.map(|start| Head { start, headers }))
}

fn find_header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The `host:port` of `http://host:port[/…]`.
pub fn authority(endpoint: &str) -> &str {
    let rest = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    rest.split('/').next().unwrap_or(rest)
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` if `keep_slash`), for
/// paths and query values.
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
