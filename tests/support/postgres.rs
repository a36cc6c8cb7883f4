//! A throwaway PostgreSQL cluster for one test: `initdb` into a temporary
//! directory (as the `postgres` user when the tests run as root: the server
//! refuses to run as root), started on a free loopback port with trust
//! authentication and fsync off, stopped and deleted on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// Where `initdb` and `pg_ctl` are: `$DRILLBOOK_TEST_PG_BIN`, `PATH`, or the
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
    pub fn start() -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new().prefix("drillbook-pg-").tempdir().expect("tempdir");
        // SAFETY: geteuid has no preconditions.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let port = free_port();
        let pg = Postgres { dir, bin, port, as_postgres };
        let data = pg.data_dir();
        pg.server_tool("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", pg.dir.path().display());
        let log = pg.dir.path().join("server.log");
        pg.server_tool(
            "pg_ctl",
            &["-D", &data, "-w", "-t", "60", "-l", &log.display().to_string(), "-o", &options, "start"],
        );
        pg
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn server_tool(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let output = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed:\n{}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
        output
    }

    /// Environment for the PostgreSQL client tools to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGUSER".into(), "postgres".into()),
        ]
    }

    /// A client tool (`psql`, `pg_dump`, …) against this server.
    pub fn client(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        command.envs(self.env()).env_remove("PGPASSWORD").env_remove("PGDATABASE");
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
        let deadline = std::time::Instant::now() + timeout;
        let query =
            format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()");
        while self.sql("postgres", &query) != "0" {
            assert!(std::time::Instant::now() < deadline, "sessions still connected to {database}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
