//! HTTP/1.1 wire helpers shared by the test servers' harnesses (moto, the
//! Kubernetes emulator): a free port, and reading a response head line by
//! line. Included with `#[path = "wire.rs"] mod wire;` from each harness.

use std::io::{self, BufRead};
use std::net::TcpListener;

/// A port that was free a moment ago (the caller retries if it is taken).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of the port probe").port()
}

/// Reads a status line and headers, skipping interim 1xx responses.
pub fn read_response_head(reader: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    loop {
        let status_line = read_line(reader)?;
        if status_line.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response"));
        }
        let status =
            status_line.split_whitespace().nth(1).and_then(|code| code.parse::<u16>().ok()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}"))
            })?;
        let mut headers = vec![];
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        if !(100..200).contains(&status) {
            return Ok((status, headers));
        }
    }
}

/// One line without its CRLF; empty at the end of the stream or on an empty line.
pub fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    while line.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}
