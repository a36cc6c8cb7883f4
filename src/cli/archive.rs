//! The shared archive from the command line: `drillbook archive push`
//! ships drills that are not (all) there yet, `drillbook verify --archive`
//! checks the archive's copy of a journal with the same hash chain, and
//! `resume` of a drill this machine does not have pulls it first.

use std::process::ExitCode;

use crate::config::Archive;
use crate::drill::journal;
use crate::drill::store::{DrillDir, DrillStore, StoreError};
use crate::drive::archive::{self as shipping, ShipError};
use crate::drive::lease::{self, Lease, LeaseError};
use crate::engine::s3::Store;

#[derive(Debug, clap::Subcommand)]
pub enum ArchiveCommand {
    /// Ship drills to the archive: what their outbox still holds (journal lines, logs, reports,
    /// summary.json). Every local drill, or the one given.
    Push {
        /// Drill id or unique prefix (see `drillbook list`).
        drill: Option<String>,
    },
}

fn configured() -> Result<Archive, String> {
    let config = crate::config::Config::load().map_err(|e| format!("configuration: {e}"))?;
    config.archive.map(|a| a.value).ok_or_else(|| {
        format!(
            "no archive is configured: set `archive = \"s3://BUCKET/PREFIX/\"` in {} or DRILLBOOK_ARCHIVE",
            config.file.display()
        )
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

pub fn run(command: ArchiveCommand) -> Result<ExitCode, String> {
    let ArchiveCommand::Push { drill } = command;
    let archive = configured()?;
    let local = DrillStore::from_env().map_err(|e| e.to_string())?;
    let drills = match drill {
        Some(id) => vec![local.find(&id).map_err(|e| e.to_string())?],
        None => local.list().map_err(|e| e.to_string())?,
    };
    runtime()?.block_on(async move {
        let store = Store::connect(&shipping::store_config(&archive)).await.map_err(|e| e.to_string())?;
        let mut failed = 0;
        let holder = crate::drive::session::holder();
        for dir in &drills {
            // Held while shipping, like a drill's own shipper does: a drill another
            // operator drives now (taken over from this machine) is not pushed, as
            // what this machine journaled after the takeover would fork the archive's journal.
            let held = match lease::take(&store, &archive, &dir.id, &holder).await {
                Ok(held) => held,
                Err(error) => {
                    failed += 1;
                    eprintln!("drillbook: {}: not pushed: {error}", dir.id);
                    continue;
                }
            };
            let shipped = shipping::ship_once(&store, &archive, dir, true).await;
            if let Err(error) = lease::release(&store, &archive, &held).await {
                eprintln!("drillbook: {}: the lease was not given back ({error}); it expires in a minute", dir.id);
            }
            match shipped {
                Ok(shipped) => println!(
                    "{}: {} journal line(s), {} file(s) shipped to {}",
                    dir.id,
                    shipped.journal_lines,
                    shipped.files,
                    archive.url()
                ),
                Err(error) => {
                    failed += 1;
                    eprintln!("drillbook: {}: {error}", dir.id);
                }
            }
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// `drillbook verify --archive ID`: the archive's journal, checked like a local one, and
/// compared with the local copy when this machine has the drill.
pub fn verify(drill: &str) -> Result<ExitCode, String> {
    let archive = configured()?;
    let local = DrillStore::from_env().ok().and_then(|store| store.find(drill).ok());
    let id = local.as_ref().map_or_else(|| drill.to_string(), |dir| dir.id.clone());
    let journal = runtime()?.block_on(async {
        let store = Store::connect(&shipping::store_config(&archive)).await.map_err(|e| e.to_string())?;
        shipping::pull_journal(&store, &archive, &id).await.map_err(|e| e.to_string())
    })?;
    if journal.is_empty() {
        return Err(format!("no drill `{id}` in the archive {}", archive.url()));
    }
    let temp = tempfile_with(&journal)?;
    match journal::verify(temp.path()) {
        Ok(report) => {
            println!(
                "ok: the archive's journal of {id} ({}) has {} records, chain intact, head sha256 {}",
                archive.url(),
                report.records,
                report.head
            );
            if let Some(dir) = local
                && let Ok(here) = std::fs::read(dir.journal())
            {
                if here == journal {
                    println!("it is this machine's journal, record for record");
                } else if here.starts_with(&journal) {
                    let behind = here.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64 - report.records;
                    println!(
                        "this machine has {behind} more record(s), not shipped yet (`drillbook archive push {id}`)"
                    );
                } else if journal.starts_with(&here) {
                    println!("the drill went on elsewhere: the archive has records this machine's copy has not");
                } else {
                    eprintln!(
                        "drillbook: the archive's journal and this machine's differ: they are not the same drill's"
                    );
                    return Ok(ExitCode::from(1));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("drillbook: the archive's journal of {id} failed verification: {error}");
            Ok(ExitCode::from(1))
        }
    }
}

fn tempfile_with(bytes: &[u8]) -> Result<TempFile, String> {
    let path =
        std::env::temp_dir().join(format!("drillbook-archive-{}-{}.jsonl", std::process::id(), uuid::Uuid::now_v7()));
    std::fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(TempFile(path))
}

/// Deleted when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A drill to resume: this machine's, or pulled from the archive when this
/// machine does not have it (a hand-off from another operator).
pub fn find_or_pull(store: &DrillStore, id: &str) -> Result<DrillDir, String> {
    match store.find(id) {
        Ok(dir) => Ok(dir),
        Err(StoreError::NotFound(_)) => {
            let Some(archive) = crate::config::archive() else {
                return Err(StoreError::NotFound(id.to_string()).to_string());
            };
            runtime()?.block_on(pull(store, &archive, id))
        }
        Err(other) => Err(other.to_string()),
    }
}

async fn pull(store: &DrillStore, archive: &Archive, id: &str) -> Result<DrillDir, String> {
    let s3 = Store::connect(&shipping::store_config(archive)).await.map_err(|e| e.to_string())?;
    // A prefix of an id names the one drill in the archive that starts with it.
    let listed =
        s3.list(&archive.bucket, &format!("{}drills/{id}", archive.prefix), false).await.map_err(|e| e.to_string())?;
    let mut ids: Vec<String> = listed
        .iter()
        .filter_map(|o| {
            o.key.strip_prefix(&format!("{}drills/", archive.prefix))?.split('/').next().map(str::to_string)
        })
        .collect();
    ids.dedup();
    let full = match ids.as_slice() {
        [] => return Err(format!("no drill `{id}` here or in the archive {}", archive.url())),
        [one] => one.clone(),
        many => {
            return Err(format!(
                "`{id}` matches several drills in the archive ({}): give more of the id",
                many.join(", ")
            ));
        }
    };
    let dir = store.adopt(&full).map_err(|e| e.to_string())?;
    eprintln!("pulling drill {full} from {}…", archive.url());
    match shipping::pull_drill(&s3, archive, &full, &dir).await {
        Ok(files) => {
            eprintln!("pulled {files} file(s): the drill continues here, on the same journal");
            Ok(dir)
        }
        Err(error) => {
            // Leave nothing half-pulled behind.
            let _ = std::fs::remove_dir_all(&dir.path);
            Err(match error {
                ShipError::S3(e) => e.to_string(),
                other => other.to_string(),
            })
        }
    }
}

/// Before resuming `dir` with an archive configured: takes the drill's lease, so no other
/// operator drives it meanwhile. A lease another holder let expire is taken over only when
/// its name is typed (`interactive`); returns the lease and whether it was a takeover.
pub fn lease_for_resume(dir: &DrillDir, interactive: bool) -> Result<Option<(Lease, bool)>, String> {
    let Some(archive) = crate::config::archive() else { return Ok(None) };
    let holder = crate::drive::session::holder();
    runtime()?.block_on(async {
        let store = Store::connect(&shipping::store_config(&archive)).await.map_err(|e| e.to_string())?;
        match lease::take(&store, &archive, &dir.id, &holder).await {
            Ok(taken) => Ok(Some((taken, false))),
            Err(LeaseError::Expired { holder: previous, expires_at, etag, .. }) => {
                if !interactive {
                    return Err(format!(
                        "the lease of {previous} on drill {} expired at {expires_at}: taking a drill over needs a \
                         person to confirm it (run `drillbook resume {}` in a terminal)",
                        dir.id, dir.id
                    ));
                }
                eprintln!("{previous} was driving drill {} and stopped renewing its lease at {expires_at}.", dir.id);
                eprint!("Type `{previous}` to take the drill over: ");
                let mut typed = String::new();
                std::io::stdin().read_line(&mut typed).map_err(|e| e.to_string())?;
                if typed.trim() != previous {
                    return Err(format!("not taken over: `{}` is not `{previous}`", typed.trim()));
                }
                let taken =
                    lease::take_over(&store, &archive, &dir.id, &holder, &etag).await.map_err(|e| e.to_string())?;
                Ok(Some((taken, true)))
            }
            Err(other) => Err(other.to_string()),
        }
    })
}
