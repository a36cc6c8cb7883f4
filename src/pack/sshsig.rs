//! OpenSSH `sshsig` signatures of a manifest (PROTOCOL.sshsig): made with a
//! private key file or by ssh-agent, checked against an `allowed_signers`
//! file (ssh-keygen(1), ALLOWED SIGNERS) as `ssh-keygen -Y verify` does.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, EcdsaCurve, HashAlg, LineEnding, PrivateKey, PublicKey, Signature, SshSig};
use zeroize::Zeroizing;

use super::NAMESPACE;
use super::agent::{Agent, Reader};

/// ssh-keygen's default for `-Y sign`; what `-Y verify` expects to see.
const HASH: HashAlg = HashAlg::Sha512;

/// A key file bigger than this is not a key.
const MAX_KEY_FILE: u64 = 1 << 20;

/// Who signs a manifest.
pub enum Signer {
    /// A private key read (and decrypted) from a file; zeroed when dropped.
    Key(Box<PrivateKey>),
    /// A key held by ssh-agent, named by its public key.
    Agent { agent: Agent, public: PublicKey },
}

impl std::fmt::Debug for Signer {
    // Never the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.describe())
    }
}

/// Asks for the passphrase of an encrypted key; an error when nobody can answer.
pub type AskPassphrase<'a> = dyn FnMut(&Path) -> Result<Zeroizing<String>, String> + 'a;

impl Signer {
    /// The signer `--sign KEY` names. A private key file signs itself (its
    /// passphrase asked through `ask` when it is encrypted); a public key file
    /// (`.pub`) names a key of the ssh-agent at `agent_socket`.
    pub fn load(key: &Path, agent_socket: Option<&Path>, ask: &mut AskPassphrase<'_>) -> Result<Signer, String> {
        let shown = key.display();
        let size = std::fs::metadata(key).map_err(|e| format!("cannot read the signing key {shown}: {e}"))?.len();
        if size > MAX_KEY_FILE {
            return Err(format!("{shown} is {size} bytes: not an SSH key"));
        }
        let text = std::fs::read_to_string(key).map_err(|e| format!("cannot read the signing key {shown}: {e}"))?;
        let text = Zeroizing::new(text);
        let trimmed = text.trim_start();
        if trimmed.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let private = PrivateKey::from_openssh(trimmed.as_bytes())
                .map_err(|e| format!("{shown} is not a readable OpenSSH private key: {e}"))?;
            check_algorithm(private.algorithm(), key)?;
            let private = if private.is_encrypted() {
                let passphrase = ask(key)?;
                private.decrypt(passphrase.as_bytes()).map_err(|e| match e {
                    ssh_key::Error::Crypto => format!("wrong passphrase for {shown}"),
                    other => format!("cannot decrypt {shown}: {other}"),
                })?
            } else {
                private
            };
            return Ok(Signer::Key(Box::new(private)));
        }
        if trimmed.starts_with("-----BEGIN") {
            return Err(format!(
                "{shown} is a PEM private key; drillbook reads OpenSSH's own format: convert a copy with \
                 `ssh-keygen -p -f COPY` (it rewrites the key in the OpenSSH format)"
            ));
        }
        let line = trimmed.lines().next().unwrap_or_default();
        let public = PublicKey::from_openssh(line)
            .map_err(|e| format!("{shown} is neither an OpenSSH private key nor a public key: {e}"))?;
        check_algorithm(public.algorithm(), key)?;
        let Some(socket) = agent_socket else {
            return Err(format!(
                "{shown} is a public key: signing with it needs ssh-agent, and SSH_AUTH_SOCK is not set; \
                 start ssh-agent and `ssh-add` the key, or give the private key file to --sign"
            ));
        };
        let agent = Agent::new(socket);
        let blob = public.to_bytes().map_err(|e| format!("{shown}: {e}"))?;
        if !agent.identities().map_err(|e| e.to_string())?.contains(&blob) {
            return Err(format!(
                "the ssh-agent at {} does not hold the key of {shown} ({}): `ssh-add` its private key",
                socket.display(),
                public.fingerprint(HashAlg::Sha256)
            ));
        }
        Ok(Signer::Agent { agent, public })
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            Signer::Key(private) => private.public_key().clone(),
            Signer::Agent { public, .. } => public.clone(),
        }
    }

    /// Algorithm and SHA-256 fingerprint, as `ssh-keygen -l` shows them.
    pub fn describe(&self) -> String {
        describe_key(&self.public_key())
    }

    /// The armored `sshsig` signature of `message` in [`NAMESPACE`],
    /// checked against the public key before it is returned (an agent's
    /// answer is not taken on trust).
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        let signature = match self {
            Signer::Key(private) => {
                private.sign(NAMESPACE, HASH, message).map_err(|e| format!("cannot sign the manifest: {e}"))?
            }
            Signer::Agent { agent, public } => {
                let data = SshSig::signed_data(NAMESPACE, HASH, message).map_err(|e| e.to_string())?;
                let blob = public.to_bytes().map_err(|e| e.to_string())?;
                let encoded = agent.sign(&blob, &data).map_err(|e| e.to_string())?;
                let signature = decode_signature(&encoded)
                    .ok_or_else(|| "ssh-agent answered with a signature drillbook cannot read".to_string())?;
                SshSig::new(public.key_data().clone(), NAMESPACE, HASH, signature)
                    .map_err(|e| format!("ssh-agent's signature: {e}"))?
            }
        };
        self.public_key()
            .verify(NAMESPACE, message, &signature)
            .map_err(|e| format!("the signature just made does not verify ({e}); nothing was written"))?;
        signature.to_pem(LineEnding::LF).map_err(|e| e.to_string())
    }
}

/// `string algorithm, string signature` as an agent returns it.
fn decode_signature(encoded: &[u8]) -> Option<Signature> {
    let mut reader = Reader(encoded);
    let algorithm = std::str::from_utf8(reader.string()?).ok()?;
    let data = reader.string()?;
    if !reader.is_empty() {
        return None;
    }
    Signature::new(Algorithm::new(algorithm).ok()?, data.to_vec()).ok()
}

/// The key types this build signs and verifies: Ed25519 and ECDSA P-256.
fn check_algorithm(algorithm: Algorithm, key: &Path) -> Result<(), String> {
    match algorithm {
        Algorithm::Ed25519 | Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 } => Ok(()),
        other => Err(format!(
            "{} is a {} key; drillbook signs with Ed25519 or ECDSA P-256 keys \
             (`ssh-keygen -t ed25519` makes one)",
            key.display(),
            other.as_str()
        )),
    }
}

pub fn describe_key(key: &PublicKey) -> String {
    let kind = match key.algorithm() {
        Algorithm::Ed25519 => "ED25519".to_string(),
        Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 } => "ECDSA-P256".to_string(),
        other => other.as_str().to_string(),
    };
    format!("{kind} {}", key.fingerprint(HashAlg::Sha256))
}

/// A checked signature: the key that made it and, when an allowed_signers
/// file was given, the principals it lists for that key.
#[derive(Debug, Clone)]
pub struct SignedBy {
    pub key: String,
    pub principals: Option<String>,
}

/// Checks the armored `signature` of `message`: well-formed, in
/// [`NAMESPACE`], made by the key it names; and, with `allowed`, by a key
/// that file allows for this namespace now.
pub fn verify(message: &[u8], signature: &[u8], allowed: Option<&AllowedSigners>) -> Result<SignedBy, String> {
    let sig = SshSig::from_pem(signature).map_err(|e| format!("it is not an armored SSH signature ({e})"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "it was made for the namespace `{}`, not `{NAMESPACE}`: it is not a signature of an evidence manifest",
            sig.namespace()
        ));
    }
    let public = PublicKey::new(sig.public_key().clone(), "");
    public.verify(NAMESPACE, message, &sig).map_err(|_| {
        format!(
            "it does not verify with the key it names ({}): the manifest was changed after it was signed, or the \
             signature belongs to another manifest",
            describe_key(&public)
        )
    })?;
    let key = describe_key(&public);
    let Some(allowed) = allowed else {
        return Ok(SignedBy { key, principals: None });
    };
    let principals = allowed.principals_for(&public, jiff::Timestamp::now())?;
    Ok(SignedBy { key, principals: Some(principals) })
}

/// An OpenSSH allowed_signers file.
#[derive(Debug)]
pub struct AllowedSigners {
    path: PathBuf,
    entries: Vec<AllowedSigner>,
}

#[derive(Debug)]
struct AllowedSigner {
    line: usize,
    principals: String,
    cert_authority: bool,
    namespaces: Option<Vec<String>>,
    valid_after: Option<jiff::Timestamp>,
    valid_before: Option<jiff::Timestamp>,
    key: PublicKey,
}

impl AllowedSigners {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(path, &text)
    }

    /// `principals [options] keytype base64 [comment]` per line; `#` comments.
    pub fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let at = |problem: String| format!("{}:{line}: {problem}", path.display());
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let tokens = tokens(trimmed).ok_or_else(|| at("an unterminated quote".into()))?;
            let Some(key_at) = tokens.iter().skip(1).position(|t| is_key_type(t)).map(|i| i + 1) else {
                return Err(at("no key (`ssh-ed25519 AAAA...` after the principals)".into()));
            };
            let principals = tokens.first().map(|p| p.trim_matches('"').to_string()).unwrap_or_default();
            let mut entry = AllowedSigner {
                line,
                principals,
                cert_authority: false,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key: {
                    let key_text = format!(
                        "{} {}",
                        tokens.get(key_at).map(String::as_str).unwrap_or_default(),
                        tokens.get(key_at + 1).map(String::as_str).unwrap_or_default()
                    );
                    PublicKey::from_openssh(&key_text).map_err(|e| at(format!("the key cannot be read: {e}")))?
                },
            };
            for option in tokens.get(1..key_at).unwrap_or_default().iter().flat_map(|t| split_options(t)) {
                let (name, value) = match option.split_once('=') {
                    Some((name, value)) => (name.to_ascii_lowercase(), Some(value.trim_matches('"').to_string())),
                    None => (option.to_ascii_lowercase(), None),
                };
                match (name.as_str(), value) {
                    ("cert-authority", None) => entry.cert_authority = true,
                    ("namespaces", Some(list)) => {
                        entry.namespaces = Some(list.split(',').map(|s| s.trim().to_string()).collect());
                    }
                    ("valid-after", Some(time)) => {
                        entry.valid_after =
                            Some(parse_time(&time).ok_or_else(|| at(format!("valid-after=\"{time}\" is not a time")))?);
                    }
                    ("valid-before", Some(time)) => {
                        entry.valid_before = Some(
                            parse_time(&time).ok_or_else(|| at(format!("valid-before=\"{time}\" is not a time")))?,
                        );
                    }
                    (other, _) => return Err(at(format!("unknown option `{other}`"))),
                }
            }
            entries.push(entry);
        }
        Ok(AllowedSigners { path: path.to_path_buf(), entries })
    }

    /// The principals allowed to sign evidence manifests with `key` at `now`.
    fn principals_for(&self, key: &PublicKey, now: jiff::Timestamp) -> Result<String, String> {
        let mut refusals = Vec::new();
        let mut allowed = Vec::new();
        for entry in self.entries.iter().filter(|e| e.key.key_data() == key.key_data()) {
            let at = format!("{}:{}", self.path.display(), entry.line);
            if entry.cert_authority {
                refusals.push(format!("{at} makes it a certificate authority (certificates are not supported)"));
            } else if entry.namespaces.as_ref().is_some_and(|list| !list.iter().any(|ns| matches(ns, NAMESPACE))) {
                refusals.push(format!("{at} does not allow the namespace {NAMESPACE}"));
            } else if entry.valid_after.is_some_and(|t| now < t) {
                refusals.push(format!("{at} allows it only from {}", entry.valid_after.unwrap_or(now)));
            } else if entry.valid_before.is_some_and(|t| now >= t) {
                refusals.push(format!("{at} allowed it only until {}", entry.valid_before.unwrap_or(now)));
            } else {
                allowed.push(entry.principals.clone());
            }
        }
        if !allowed.is_empty() {
            return Ok(allowed.join(", "));
        }
        if refusals.is_empty() {
            return Err(format!(
                "it was made by {}, a key {} does not list: not one of the allowed signers",
                describe_key(key),
                self.path.display()
            ));
        }
        Err(format!("it was made by {}, but {}", describe_key(key), refusals.join("; ")))
    }
}

/// Whitespace-separated tokens; double quotes keep spaces inside one token.
fn tokens(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return None;
    }
    if !current.is_empty() {
        out.push(current);
    }
    Some(out)
}

/// `a,b="x,y",c` into its options; commas inside quotes stay.
fn split_options(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn is_key_type(token: &str) -> bool {
    Algorithm::new(token).is_ok() || token.starts_with("ssh-") || token.starts_with("ecdsa-sha2-")
}

/// `YYYYMMDD[HHMM[SS]][Z]`: UTC with `Z`, the system's time zone without.
fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(digits) => (digits, true),
        None => (text, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<i16>().ok());
    // `Date::new`, not `civil::date`, which panics on a day like 20241399.
    let date = jiff::civil::Date::new(number(0..4)?, number(4..6)? as i8, number(6..8)? as i8).ok()?;
    let hour = if digits.len() >= 12 { number(8..10)? } else { 0 };
    let minute = if digits.len() >= 12 { number(10..12)? } else { 0 };
    let second = if digits.len() == 14 { number(12..14)? } else { 0 };
    let time = jiff::civil::Time::new(hour as i8, minute as i8, second as i8, 0).ok()?;
    let zone = if utc { jiff::tz::TimeZone::UTC } else { jiff::tz::TimeZone::system() };
    zone.to_timestamp(date.to_datetime(time)).ok()
}

/// OpenSSH patterns: `*` any run, `?` one character.
fn matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.split_first(), t.split_first()) {
            (None, None) => true,
            (Some((b'*', rest)), _) => go(rest, t) || t.split_first().is_some_and(|(_, t_rest)| go(p, t_rest)),
            (Some((b'?', rest)), Some((_, t_rest))) => go(rest, t_rest),
            (Some((pc, rest)), Some((tc, t_rest))) if pc == tc => go(rest, t_rest),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEVmb0ZPaUhhQ2xzeDBGdkY4bjBpdmNWbEpMaWxGMUxL";

    #[test]
    fn allowed_signers_lines_with_options_and_comments() {
        let text = format!(
            "# auditors\n\nalice@example.com {KEY} alice\n\"bob@example.com,carol@*\" namespaces=\"git,drillbook-*\",valid-after=20200101 {KEY}\n"
        );
        let signers = AllowedSigners::parse(Path::new("allowed"), &text).unwrap();
        assert_eq!(signers.entries.len(), 2);
        assert_eq!(signers.entries[1].principals, "bob@example.com,carol@*");
        assert_eq!(signers.entries[1].namespaces.as_deref(), Some(&["git".to_string(), "drillbook-*".to_string()][..]));
        let key = PublicKey::from_openssh(KEY).unwrap();
        let who = signers.principals_for(&key, jiff::Timestamp::now()).unwrap();
        assert_eq!(who, "alice@example.com, bob@example.com,carol@*");
    }

    #[test]
    fn refusals_say_which_line_and_why() {
        let text = format!("alice@example.com namespaces=\"git\" {KEY}\n");
        let signers = AllowedSigners::parse(Path::new("allowed"), &text).unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        let error = signers.principals_for(&key, jiff::Timestamp::now()).unwrap_err();
        assert!(error.contains("allowed:1 does not allow the namespace"), "{error}");
        let error = AllowedSigners::parse(Path::new("allowed"), "alice@example.com\n").unwrap_err();
        assert!(error.starts_with("allowed:1: no key"), "{error}");
        let error = AllowedSigners::parse(Path::new("allowed"), &format!("a valid-after=\"2020\" {KEY}")).unwrap_err();
        assert!(error.contains("is not a time"), "{error}");
    }

    #[test]
    fn patterns_and_times() {
        assert!(matches("drillbook-*", "drillbook-evidence"));
        assert!(matches("?it", "git"));
        assert!(!matches("git", "drillbook-evidence"));
        assert_eq!(parse_time("20240102Z").unwrap().to_string(), "2024-01-02T00:00:00Z");
        assert_eq!(parse_time("202401021530Z").unwrap().to_string(), "2024-01-02T15:30:00Z");
        assert!(parse_time("2024").is_none());
        assert!(parse_time("20241399Z").is_none());
    }

    #[test]
    fn a_file_key_signs_and_the_signature_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let private = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519).unwrap();
        let path = dir.path().join("id");
        private.write_openssh_file(&path, LineEnding::LF).unwrap();
        let signer = Signer::load(&path, None, &mut |_| Err("no terminal".into())).unwrap();
        let armored = signer.sign(b"manifest\n").unwrap();
        assert!(armored.starts_with("-----BEGIN SSH SIGNATURE-----"));
        let by = verify(b"manifest\n", armored.as_bytes(), None).unwrap();
        assert_eq!(by.key, signer.describe());
        let error = verify(b"manifest!\n", armored.as_bytes(), None).unwrap_err();
        assert!(error.contains("does not verify"), "{error}");
    }

    #[test]
    fn a_public_key_without_an_agent_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.pub");
        std::fs::write(&path, format!("{KEY} me\n")).unwrap();
        let error = Signer::load(&path, None, &mut |_| Err("no".into())).unwrap_err();
        assert!(error.contains("needs ssh-agent"), "{error}");
    }
}
