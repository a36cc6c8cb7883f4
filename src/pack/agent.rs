//! A minimal ssh-agent client (draft-miller-ssh-agent): list the agent's
//! keys and ask it to sign. Enough to sign a manifest with a key that never
//! leaves the agent (a hardware token, a key unlocked once in the morning).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SSH_AGENT_FAILURE: u8 = 5;
const SSH2_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH2_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH2_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH2_AGENT_SIGN_RESPONSE: u8 = 14;

/// An answer bigger than this is not from an ssh-agent.
const MAX_MESSAGE: u32 = 256 * 1024;

/// An agent on a unix socket.
#[derive(Debug, Clone)]
pub struct Agent {
    socket: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("ssh-agent at {}: {message}", .socket.display())]
pub struct AgentError {
    pub socket: PathBuf,
    pub message: String,
}

impl Agent {
    pub fn new(socket: &Path) -> Self {
        Agent { socket: socket.to_path_buf() }
    }

    fn error(&self, message: impl Into<String>) -> AgentError {
        AgentError { socket: self.socket.clone(), message: message.into() }
    }

    /// The public key blobs the agent holds.
    pub fn identities(&self) -> Result<Vec<Vec<u8>>, AgentError> {
        let answer = self.request(&[SSH2_AGENTC_REQUEST_IDENTITIES])?;
        let mut reader = Reader(&answer);
        match reader.byte() {
            Some(SSH2_AGENT_IDENTITIES_ANSWER) => {}
            Some(SSH_AGENT_FAILURE) => return Err(self.error("refused to list its keys")),
            other => return Err(self.error(format!("unexpected answer {other:?} to a request for its keys"))),
        }
        let count = reader.u32().ok_or_else(|| self.error("truncated list of keys"))?;
        let mut keys = Vec::new();
        for _ in 0..count {
            let blob = reader.string().ok_or_else(|| self.error("truncated list of keys"))?;
            let _comment = reader.string().ok_or_else(|| self.error("truncated list of keys"))?;
            keys.push(blob.to_vec());
        }
        Ok(keys)
    }

    /// The agent's signature of `data` with the key `key_blob`: the encoded
    /// signature (algorithm name and signature bytes, as SSH writes them).
    pub fn sign(&self, key_blob: &[u8], data: &[u8]) -> Result<Vec<u8>, AgentError> {
        let mut message = vec![SSH2_AGENTC_SIGN_REQUEST];
        put_string(&mut message, key_blob);
        put_string(&mut message, data);
        // Flags 0: Ed25519 and ECDSA have one signature algorithm each.
        message.extend_from_slice(&0u32.to_be_bytes());
        let answer = self.request(&message)?;
        let mut reader = Reader(&answer);
        match reader.byte() {
            Some(SSH2_AGENT_SIGN_RESPONSE) => {}
            Some(SSH_AGENT_FAILURE) => {
                return Err(
                    self.error("refused to sign (the key may need confirmation, or was removed: check `ssh-add -l`)")
                );
            }
            other => return Err(self.error(format!("unexpected answer {other:?} to a sign request"))),
        }
        let signature = reader.string().ok_or_else(|| self.error("truncated signature"))?;
        Ok(signature.to_vec())
    }

    /// One request, one answer, on a fresh connection.
    fn request(&self, message: &[u8]) -> Result<Vec<u8>, AgentError> {
        let mut stream = UnixStream::connect(&self.socket)
            .map_err(|e| self.error(format!("cannot connect ({e}); is ssh-agent running and SSH_AUTH_SOCK right?")))?;
        // An agent asking for confirmation waits for a human; a dead one would hang forever.
        let timeout = Some(Duration::from_secs(120));
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        let length = u32::try_from(message.len()).map_err(|_| self.error("request too big"))?;
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        stream.write_all(&framed).map_err(|e| self.error(format!("cannot send a request: {e}")))?;
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).map_err(|e| self.error(format!("no answer: {e}")))?;
        let length = u32::from_be_bytes(length);
        if length == 0 || length > MAX_MESSAGE {
            return Err(self.error(format!("an answer of {length} bytes is not an agent's")));
        }
        let mut answer = vec![0u8; length as usize];
        stream.read_exact(&mut answer).map_err(|e| self.error(format!("truncated answer: {e}")))?;
        Ok(answer)
    }
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Reads SSH wire types; `None` when the data ends early.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let bytes = self.0.get(..4)?;
        self.0 = self.0.get(4..)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    pub fn string(&mut self) -> Option<&'a [u8]> {
        let length = self.u32()? as usize;
        let bytes = self.0.get(..length)?;
        self.0 = self.0.get(length..)?;
        Some(bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_truncated_data_without_panicking() {
        let mut reader = Reader(&[0, 0, 0, 9, 1, 2]);
        assert_eq!(reader.string(), None);
        let mut reader = Reader(&[0, 0, 0, 2, 1, 2, 7]);
        assert_eq!(reader.string(), Some(&[1u8, 2][..]));
        assert_eq!(reader.byte(), Some(7));
        assert!(reader.is_empty());
        assert_eq!(reader.u32(), None);
    }

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let error = Agent::new(Path::new("/nonexistent/agent.sock")).identities().unwrap_err();
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }
}
