//! `drillbook export` and `drillbook verify-pack`: the evidence pack's
//! command line (the work is in `crate::pack`): the passphrase prompt, the
//! progress line and the summaries.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::drill::store::DrillStore;
use crate::pack::export::{self, ExportError};
use crate::pack::sshsig::{AllowedSigners, Signer};
use crate::pack::verify::{self, Signature, VerifyError};
use crate::pack::{self, human_bytes};

/// Packs smaller than this finish before a progress line would be read.
const PROGRESS_FROM: u64 = 64 << 20;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Drill id or unique prefix (see `drillbook list`).
    pub drill: String,
    /// Where to write the pack (default: drill-ID.tar.zst in the current directory).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Sign the manifest with this SSH key (OpenSSH sshsig, namespace drillbook-evidence). A private
    /// key file (Ed25519 or ECDSA P-256; its passphrase is asked on the terminal), or a public key
    /// (`.pub`) whose private key ssh-agent holds (SSH_AUTH_SOCK).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct VerifyPackArgs {
    /// The pack (drill-ID.tar.zst).
    pub file: PathBuf,
    /// An OpenSSH allowed_signers file: the pack must be signed by a key it lists (for the
    /// namespace drillbook-evidence); the principal is printed.
    #[arg(long, value_name = "ALLOWED_SIGNERS")]
    pub signer: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> Result<ExitCode, String> {
    let store = DrillStore::from_env().map_err(|e| e.to_string())?;
    let dir = store.find(&args.drill).map_err(|e| e.to_string())?;
    let output = args.output.unwrap_or_else(|| PathBuf::from(pack::default_file_name(&dir.id)));
    if output.is_dir() {
        return Err(format!("{} is a directory: give -o the pack's file name", output.display()));
    }
    // The key is read (and its passphrase asked) before anything is packed:
    // a wrong passphrase after a gigabyte of logs would be cruel.
    let signer = match &args.sign {
        Some(key) => {
            let socket = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()).map(PathBuf::from);
            Some(Signer::load(key, socket.as_deref(), &mut ask_passphrase)?)
        }
        None => None,
    };
    let mut meter = Meter::new("packing");
    let result = export::export(&dir, &output, signer.as_ref(), &mut |done, total| meter.show(done, total));
    meter.clear();
    let exported = match result {
        Ok(exported) => exported,
        Err(ExportError::Refused(why)) => {
            eprintln!("drillbook: export refused: {why}");
            return Ok(ExitCode::from(1));
        }
        Err(ExportError::Failed(why)) => return Err(why),
    };
    for warning in &exported.warnings {
        eprintln!("drillbook: warning: {warning}");
    }
    let manifest = &exported.manifest;
    println!("pack     {}", exported.path.display());
    println!("drill    {}", manifest.drill_id);
    println!("runbook  {} ({})", manifest.runbook.id, manifest.runbook.title);
    println!(
        "files    {} ({}, packed into {}; downloads/ is never packed)",
        manifest.files.len(),
        human_bytes(exported.bytes),
        human_bytes(exported.packed_bytes)
    );
    println!("journal  {} events, head {}", manifest.journal.events, manifest.journal.head);
    match &exported.signed_by {
        Some(key) => println!("signed   by {key} (namespace {})", pack::NAMESPACE),
        None => println!("signed   no (--sign KEY signs the manifest)"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify_pack(args: VerifyPackArgs) -> Result<ExitCode, String> {
    let signers = match &args.signer {
        Some(path) => Some(AllowedSigners::load(path)?),
        None => None,
    };
    let mut meter = Meter::new("verifying");
    let result = verify::verify_pack(&args.file, signers.as_ref(), &mut |done, total| meter.show(done, total));
    meter.clear();
    let verified = match result {
        Ok(verified) => verified,
        Err(VerifyError::Mismatch(why)) => {
            eprintln!("drillbook: pack verification failed: {why}");
            return Ok(ExitCode::from(1));
        }
        Err(VerifyError::Unreadable(why)) => return Err(why),
    };
    let manifest = &verified.manifest;
    println!("pack     {}", args.file.display());
    println!(
        "drill    {} (packed {} by drillbook {})",
        manifest.drill_id, manifest.created_at, manifest.drillbook_version
    );
    println!("runbook  {} ({})", manifest.runbook.id, manifest.runbook.title);
    println!("files    {} ({}), each matching the manifest", verified.files, human_bytes(verified.bytes));
    println!(
        "journal  {} events, chain intact, head {}; {} evidence file{} matching the journal",
        manifest.journal.events,
        manifest.journal.head,
        verified.evidence,
        if verified.evidence == 1 { "" } else { "s" }
    );
    match &verified.signature {
        Signature::Allowed(by) => {
            println!("signer   {} ({}), per {}", by.principals.as_deref().unwrap_or("?"), by.key, display(&args.signer))
        }
        Signature::Unchecked(by) => println!(
            "signer   NOT CHECKED: signed by {}, which no allowed_signers file was asked about (--signer FILE)",
            by.key
        ),
        Signature::Unsigned => println!("signer   none: the pack is not signed"),
    }
    println!("ok");
    Ok(ExitCode::SUCCESS)
}

fn display(path: &Option<PathBuf>) -> String {
    path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

/// Asks for a key's passphrase on the controlling terminal, never echoed.
/// Not stdin: a pack may be made in a pipeline, and the passphrase must come
/// from a person. It lives in a zeroed-on-drop buffer and is never logged.
fn ask_passphrase(key: &Path) -> Result<Zeroizing<String>, String> {
    let no_terminal = |e: std::io::Error| {
        format!(
            "{} is encrypted and there is no terminal to ask for its passphrase ({e}): add the key to \
             ssh-agent (`ssh-add {}`) and sign with --sign {}.pub, or run export in a terminal",
            key.display(),
            key.display(),
            key.display()
        )
    };
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(no_terminal)?;
    let _echo_off = EchoOff::new(&tty).map_err(no_terminal)?;
    let _ = write!(tty, "Enter passphrase for {}: ", key.display());
    let _ = tty.flush();
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    loop {
        match std::io::Read::read(&mut tty, &mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' || byte[0] == b'\r' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the passphrase: {e}")),
        }
    }
    let _ = writeln!(tty);
    let text = std::str::from_utf8(&line).map_err(|_| "the passphrase is not UTF-8".to_string())?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Turns the terminal's echo off, and back on when dropped.
struct EchoOff {
    fd: std::os::fd::RawFd,
    saved: libc::termios,
}

impl EchoOff {
    fn new(tty: &std::fs::File) -> std::io::Result<Self> {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: termios is plain old data; tcgetattr fills it from an open fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open for the lifetime of `tty`, which outlives the guard's use.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
        quiet.c_lflag |= libc::ICANON;
        // SAFETY: as above; the settings are a copy of the terminal's own.
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { fd, saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new` on the same fd.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved);
        }
    }
}

/// One progress line on stderr when it is a terminal and the work is big.
struct Meter {
    what: &'static str,
    on: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Meter {
    fn new(what: &'static str) -> Self {
        Meter { what, on: std::io::stderr().is_terminal(), last: None, drawn: false }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.on || total < PROGRESS_FROM {
            return;
        }
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.last = Some(Instant::now());
        let percent = done.saturating_mul(100) / total.max(1);
        eprint!("\r\x1b[K{} {} of {} ({percent}%)", self.what, human_bytes(done), human_bytes(total));
        self.drawn = true;
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}
