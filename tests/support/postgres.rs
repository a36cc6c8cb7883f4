//! A throwaway PostgreSQL cluster for one test: `initdb` into a temporary
//! directory, then the server on a free loopback port with trust authentication
//! and fsync off, as the `postgres` user when the tests run as root (the server
//! refuses to run as root); stopped (immediate shutdown) and deleted on drop.
//!
//! Include it with `#[path = "support/postgres.rs"] mod postgres;` next to
//! `mod support;`.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::server::{Launch, Server};
use crate::support::wait_for;

pub struct Postgres {
    pub port: u16,
    /// Set when TCP connections need a password (`start_with_password`).
    pub password: Option<String>,
    server: Server,
    dir: tempfile::TempDir,
}

/// Where `initdb` and `postgres` are: `$DRILLBOOK_TEST_PG_BIN`, `PATH`, or the
/// newest `/usr/lib/postgresql/*/bin` (Debian keeps them off `PATH`).
pub fn server_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRILLBOOK_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(output) = Command::new("sh").arg("-c").arg("command -v initdb").output()
        && output.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if let Some(parent) = std::fs::canonicalize(&path).ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            return parent;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "these tests need the PostgreSQL server (initdb, pg_ctl): install it with `apt-get install postgresql` \
             (./scripts/test does this when run as root)"
        ),
    }
}

impl Postgres {
    /// A cluster that trusts every connection.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// A cluster whose TCP connections (what drillbook and the tools here use) need
    /// `password` for the `postgres` user (SCRAM); its Unix socket stays trusted.
    pub fn start_with_password(password: &str) -> Postgres {
        Self::start_with(Some(password))
    }

    /// A cluster that takes TCP connections only over TLS, with this certificate and
    /// key (PEM): one without TLS is refused as `pg_hba.conf` refuses it.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Self::start_with_options(None, Some((cert_pem, key_pem)))
    }

    fn start_with(password: Option<&str>) -> Postgres {
        Self::start_with_options(password, None)
    }

    fn start_with_options(password: Option<&str>, tls: Option<(&str, &str)>) -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new().prefix("drillbook-pg-").tempdir().expect("tempdir");
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown the cluster directory to postgres");
            let owner = std::fs::metadata(dir.path()).expect("the cluster directory");
            Some((owner.uid(), owner.gid()))
        } else {
            None
        };
        let as_user = move |command: &mut Command| {
            if let Some((uid, gid)) = user {
                command.uid(uid).gid(gid);
            }
        };
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "-E", "UTF8", "--no-sync"]);
        match password {
            None => {
                initdb.arg("--auth=trust");
            }
            Some(password) => {
                let file = dir.path().join("password");
                std::fs::write(&file, password).expect("password file");
                if user.is_some() {
                    Command::new("chown").args(["postgres:postgres"]).arg(&file).status().expect("chown");
                }
                initdb
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", file.display()));
            }
        }
        as_user(&mut initdb);
        let output = initdb.output().unwrap_or_else(|e| panic!("{}: {e}", bin.join("initdb").display()));
        assert!(
            output.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(data.join("server.crt"), cert).expect("server.crt");
            std::fs::write(data.join("server.key"), key).expect("server.key");
            std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
                .expect("pg_hba.conf");
            if user.is_some() {
                let files = ["server.crt", "server.key", "pg_hba.conf"].map(|f| data.join(f));
                Command::new("chown").arg("postgres:postgres").args(files).status().expect("chown");
            }
        }
        let ssl = tls.is_some();
        let (sockets, pid_file) = (dir.path().to_owned(), data.join("postmaster.pid"));
        let server = Launch::new("PostgreSQL", &log, move |port| {
            let mut postgres = Command::new(bin.join("postgres"));
            postgres.arg("-D").arg(&data).arg("-p").arg(port.to_string()).arg("-k").arg(&sockets);
            postgres.args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
            if ssl {
                postgres.args(["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"]);
            }
            as_user(&mut postgres);
            postgres
        })
        // It listens before it takes connections; the status line of its pid file (which
        // `pg_ctl -w` reads too) says when it does.
        .ready_when(move |_| {
            std::fs::read_to_string(&pid_file)
                .is_ok_and(|pids| pids.lines().nth(7).is_some_and(|s| s.trim() == "ready"))
        })
        .timeout(Duration::from_secs(60))
        // Immediate shutdown: the server stops its backends and leaves nothing behind.
        .stop_signal(libc::SIGQUIT)
        .start();
        Postgres { port: server.port(), password: password.map(str::to_string), server, dir }
    }

    /// Environment for the PostgreSQL client tools to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "postgres".into()),
        ];
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD".into(), password.clone()));
        }
        env
    }

    /// A client tool (`psql`, `pg_dump`, …) against this server.
    pub fn client(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        command.env_remove("PGPASSWORD").env_remove("PGDATABASE").envs(self.env());
        command
    }

    /// Runs SQL in `database`; returns the unaligned, tuples-only output.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let output = self
            .client("psql")
            .args(["-X", "-v", "ON_ERROR_STOP=1", "-tA", "-d", database, "-c", sql])
            .output()
            .expect("psql");
        assert!(output.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// `pg_dump -Fc` of `database` into `file`.
    pub fn dump(&self, database: &str, file: &Path) {
        let output = self.client("pg_dump").args(["-Fc", "-d", database, "-f"]).arg(file).output().expect("pg_dump");
        assert!(output.status.success(), "pg_dump: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Waits until no session but ours is connected to `database`.
    pub fn wait_idle(&self, database: &str, timeout: Duration) {
        let query =
            format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()");
        wait_for(&format!("the sessions connected to {database} to end"), timeout, || {
            (self.sql("postgres", &query) == "0").then_some(())
        });
    }
}
