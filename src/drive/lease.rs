//! One operator drives a drill at a time, across machines: a lease object
//! beside the drill in the archive (`PREFIX/drills/ID/lease.json`), taken
//! with a conditional write (`If-None-Match: *`), renewed and released with
//! `If-Match` on its ETag. A holder that stops renewing (its drillbook
//! died, its laptop closed) loses the lease when it expires; taking it over
//! then needs the previous holder's name typed, and is journaled.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::archive::{drill_prefix, get_bytes};
use crate::config::Archive;
use crate::engine::s3::{PutCondition, S3Error, Store};

/// A lease not renewed for this long has expired.
pub const TTL: Duration = Duration::from_secs(60);
/// Renewed this often while the drill runs.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseFile {
    /// `operator@host`.
    pub holder: String,
    pub pid: u32,
    pub renewed_at: String,
    pub expires_at: String,
    /// Given back at the end of a session: anyone may take it, no confirmation needed.
    #[serde(default)]
    pub released: bool,
}

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub drill: String,
    pub holder: String,
    pub etag: String,
    pub renewed: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "drill {drill} is being driven by {holder} (its lease runs until {expires_at}): only one operator drives a drill at a time"
    )]
    Held { drill: String, holder: String, expires_at: String },
    /// The holder stopped renewing: the lease may be taken over, with a confirmation.
    #[error("the lease of {holder} on drill {drill} expired at {expires_at} (its drillbook stopped renewing it)")]
    Expired { drill: String, holder: String, expires_at: String, etag: String },
    #[error("someone else took the lease of drill {drill} meanwhile")]
    Lost { drill: String },
    #[error(transparent)]
    S3(S3Error),
}

fn key(archive: &Archive, drill: &str) -> String {
    format!("{}lease.json", drill_prefix(archive, drill))
}

fn body(holder: &str, now: Timestamp, released: bool) -> Vec<u8> {
    let expires = if released { now } else { now + jiff::SignedDuration::try_from(TTL).unwrap_or_default() };
    let file = LeaseFile {
        holder: holder.to_string(),
        pid: std::process::id(),
        renewed_at: now.to_string(),
        expires_at: expires.to_string(),
        released,
    };
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

async fn put(
    store: &Store,
    archive: &Archive,
    drill: &str,
    holder: &str,
    condition: PutCondition,
    released: bool,
) -> Result<Lease, LeaseError> {
    let now = Timestamp::now();
    let written = store
        .put_if(&archive.bucket, &key(archive, drill), body(holder, now, released), "application/json", &condition)
        .await;
    match written {
        Ok(etag) => Ok(Lease {
            drill: drill.to_string(),
            holder: holder.to_string(),
            etag: etag.unwrap_or_default(),
            renewed: now,
        }),
        Err(S3Error::Changed { .. }) => Err(LeaseError::Lost { drill: drill.to_string() }),
        Err(error) => Err(LeaseError::S3(error)),
    }
}

/// Takes the drill's lease for `holder`: free, released, or already this
/// holder's (a restarted drillbook on the same machine) is taken at once;
/// another's live lease is [`LeaseError::Held`], an expired one
/// [`LeaseError::Expired`] (see [`take_over`]).
pub async fn take(store: &Store, archive: &Archive, drill: &str, holder: &str) -> Result<Lease, LeaseError> {
    match put(store, archive, drill, holder, PutCondition::Absent, false).await {
        Err(LeaseError::Lost { .. }) => {}
        other => return other,
    }
    let key = key(archive, drill);
    let etag = store.etag(&archive.bucket, &key).await.map_err(LeaseError::S3)?.unwrap_or_default();
    let current: Option<LeaseFile> =
        get_bytes(store, &archive.bucket, &key).await.ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let Some(current) = current else {
        // Unreadable: treat as released, still only if nobody changed it since.
        return put(store, archive, drill, holder, PutCondition::Matches(etag), false).await;
    };
    let expired = current.expires_at.parse::<Timestamp>().map_or(true, |at| at <= Timestamp::now());
    // The same operator on the same machine again (a drillbook restarted after a crash)
    // takes it back, unless that other process is still running.
    let mine = current.holder == holder && (current.pid == std::process::id() || !process_alive(current.pid));
    if current.released || mine {
        put(store, archive, drill, holder, PutCondition::Matches(etag), false).await
    } else if expired {
        Err(LeaseError::Expired {
            drill: drill.to_string(),
            holder: current.holder,
            expires_at: current.expires_at,
            etag,
        })
    } else {
        Err(LeaseError::Held { drill: drill.to_string(), holder: current.holder, expires_at: current.expires_at })
    }
}

/// Takes over an expired lease, if it is still the one that was seen (`etag`).
pub async fn take_over(
    store: &Store,
    archive: &Archive,
    drill: &str,
    holder: &str,
    etag: &str,
) -> Result<Lease, LeaseError> {
    put(store, archive, drill, holder, PutCondition::Matches(etag.to_string()), false).await
}

/// Renews a held lease; [`LeaseError::Lost`] if someone took it over meanwhile.
pub async fn renew(store: &Store, archive: &Archive, lease: &Lease) -> Result<Lease, LeaseError> {
    put(store, archive, &lease.drill, &lease.holder, PutCondition::Matches(lease.etag.clone()), false).await
}

/// Gives the lease back at the end of a session.
pub async fn release(store: &Store, archive: &Archive, lease: &Lease) -> Result<(), LeaseError> {
    put(store, archive, &lease.drill, &lease.holder, PutCondition::Matches(lease.etag.clone()), true).await.map(|_| ())
}

/// Whether a held lease is due for renewal.
pub fn due(lease: &Lease) -> bool {
    Timestamp::now().duration_since(lease.renewed).as_secs_f64() >= renew_every().as_secs_f64()
}

/// [`RENEW_EVERY`], or `DRILLBOOK_DEBUG_LEASE_RENEW_SECS` (for the tests of a
/// lease lost mid-drill, which would otherwise wait 20 s for a renewal).
fn renew_every() -> Duration {
    std::env::var("DRILLBOOK_DEBUG_LEASE_RENEW_SECS")
        .ok()
        .and_then(|secs| secs.trim().parse::<u64>().ok())
        .map_or(RENEW_EVERY, Duration::from_secs)
}

/// Who holds the drill's lease now, as the archive says (best effort: for
/// telling an operator who took a drill over).
pub async fn holder(store: &Store, archive: &Archive, drill: &str) -> Option<String> {
    let bytes = get_bytes(store, &archive.bucket, &key(archive, drill)).await.ok()?;
    serde_json::from_slice::<LeaseFile>(&bytes).ok().map(|file| file.holder)
}

/// Whether a process with this pid runs on this machine (a lease's holder on the same host).
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    unsafe { libc::kill(pid, 0) == 0 }
}
