//! `drillbook fleet` through the real binary against a seeded archive in moto
//! (on loopback, started here) and a local drill store: statuses, the roster,
//! training drills, de-duplication, every output, exit codes, and what an
//! archive that cannot be read gives.

use crate::support;

use crate::fault_proxy;
use crate::moto;

use std::path::PathBuf;

use fault_proxy::{Fault, FaultProxy};
use jiff::{SignedDuration, Timestamp};
use moto::Moto;
use serde_json::{Value, json};
use support::{Home, stderr_of, stdout_of};

const BUCKET: &str = "fleet-archive";
const PREFIX: &str = "org/";
/// Projects with nothing to report, so the register has many rows.
const QUIET_PROJECTS: usize = 40;

/// What a summary says about one drill.
struct Seed {
    project: String,
    runbook: &'static str,
    days_ago: i64,
    outcome: &'static str,
    rto_secs: Option<u64>,
    cadence: Option<&'static str>,
    training: bool,
}

impl Seed {
    fn new(project: &str, days_ago: i64, outcome: &'static str) -> Seed {
        Seed {
            project: project.to_string(),
            runbook: "backup-verification",
            days_ago,
            outcome,
            rto_secs: Some(3600),
            cadence: Some("quarterly"),
            training: false,
        }
    }
}

fn days_ago(days: i64) -> Timestamp {
    Timestamp::now().checked_sub(SignedDuration::from_hours(24 * days)).unwrap()
}

/// A UUIDv7-shaped id, unique per (project number, drill number).
fn drill_id(project: usize, drill: usize) -> String {
    format!("01b{project:05x}-0000-7000-8000-{drill:012x}")
}

fn summary(id: &str, seed: &Seed) -> Value {
    let started = days_ago(seed.days_ago);
    let achieved =
        |secs: Option<u64>, verdict: &str| json!({"target_secs": 14400, "achieved_secs": secs, "verdict": verdict});
    json!({
        "drill_id": id,
        "project": seed.project,
        "runbook_id": seed.runbook,
        "runbook_title": "Quarterly backup verification",
        "cadence": seed.cadence,
        "training": seed.training,
        "operator": "dana",
        "started_at": started.to_string(),
        "ended_at": started.checked_add(SignedDuration::from_hours(2)).unwrap().to_string(),
        "outcome": seed.outcome,
        "rto": achieved(seed.rto_secs, if seed.rto_secs.is_some() { "PASS" } else { "not achieved" }),
        "rpo": {"target_secs": 86400, "achieved_secs": 7200, "verdict": "PASS"},
    })
}

/// moto with the archive bucket, a private home, and the environment that points drillbook at both.
struct Fleet {
    moto: Moto,
    home: Home,
    config: PathBuf,
    /// Objects put under `PREFIX/drills/`, for counting requests.
    summaries: usize,
}

impl Fleet {
    fn start() -> Fleet {
        let moto = Moto::start();
        moto.create_bucket(BUCKET);
        let home = Home::new();
        let config = home.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        Fleet { moto, home, config, summaries: 0 }
    }

    fn put_summary(&mut self, id: &str, body: &[u8]) {
        self.moto.put_object(BUCKET, &format!("{PREFIX}drills/{id}/summary.json"), body);
        self.summaries += 1;
    }

    fn seed(&mut self, project: usize, seeds: &[Seed]) {
        for (n, seed) in seeds.iter().enumerate() {
            let id = drill_id(project, n);
            self.put_summary(&id, summary(&id, seed).to_string().as_bytes());
            // What else an archived drill holds: never read by the register.
            self.moto.put_object(BUCKET, &format!("{PREFIX}drills/{id}/journal.jsonl"), b"not read\n");
            self.moto.put_object(BUCKET, &format!("{PREFIX}drills/{id}/report.html"), b"<html></html>");
        }
    }

    /// `drillbook fleet ARGS` reading the archive at `endpoint`.
    fn fleet_at(&self, endpoint: &str, args: &[&str]) -> std::process::Output {
        let mut cmd = self.home.cmd();
        for name in moto::AWS_ENV_TO_REMOVE {
            cmd.env_remove(name);
        }
        cmd.envs(moto::aws_env(endpoint))
            .env("DRILLBOOK_CONFIG", &self.config)
            .env("DRILLBOOK_ARCHIVE", format!("s3://{BUCKET}/{PREFIX}"))
            .env("DRILLBOOK_ARCHIVE_ENDPOINT", endpoint)
            .arg("fleet")
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap()
    }

    fn fleet(&self, args: &[&str]) -> std::process::Output {
        self.fleet_at(&self.moto.endpoint, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.fleet(&[&["--json"], args].concat());
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        serde_json::from_str(&stdout_of(&output)).unwrap()
    }
}

/// The row of `project` in a `--json` register.
fn row<'a>(register: &'a Value, project: &str, runbook: &str) -> &'a Value {
    register["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["project"] == project && r["runbook_id"] == runbook)
        .unwrap_or_else(|| panic!("no row {project}/{runbook} in {register:#}"))
}

/// One project of each kind, plus many quiet ones.
fn seeded() -> Fleet {
    let mut fleet = Fleet::start();
    fleet.seed(
        1,
        &[
            Seed { rto_secs: Some(4000), ..Seed::new("acme", 300, "passed") },
            Seed { rto_secs: Some(5000), ..Seed::new("acme", 210, "passed") },
            Seed { rto_secs: None, ..Seed::new("acme", 120, "failed") },
            Seed { rto_secs: Some(3000), ..Seed::new("acme", 30, "passed with deviations") },
        ],
    );
    fleet.seed(2, &[Seed::new("beta", 85, "passed")]);
    fleet.seed(3, &[Seed::new("gamma", 120, "passed")]);
    fleet.seed(4, &[Seed::new("delta", 40, "passed"), Seed { rto_secs: None, ..Seed::new("delta", 10, "failed") }]);
    fleet.seed(5, &[Seed::new("epsilon", 50, "passed"), Seed { rto_secs: None, ..Seed::new("epsilon", 5, "aborted") }]);
    fleet.seed(6, &[Seed::new("zeta", 200, "passed"), Seed { training: true, ..Seed::new("zeta", 2, "passed") }]);
    fleet.seed(7, &[Seed { cadence: Some("monthly"), ..Seed::new("eta", 20, "passed") }]);
    fleet.seed(8, &[Seed { cadence: None, runbook: "ad-hoc-restore", ..Seed::new("theta", 400, "passed") }]);
    for n in 0..QUIET_PROJECTS {
        fleet.seed(100 + n, &[Seed::new(&format!("quiet-{n:02}"), 10 + n as i64, "passed")]);
    }
    fleet.put_summary("broken", b"{\"drill_id\": ");
    fleet
}

const ROSTER: &str = "[[project]]\nname = \"acme\"\nrunbooks = [\"backup-verification\"]\n\
                      [[project]]\nname = \"newco\"\nrunbooks = [\"backup-verification\"]\ncadence = \"monthly\"\n";

#[test]
fn the_register_of_a_seeded_archive() {
    let fleet = seeded();
    let roster = fleet.home.path().join("roster.toml");
    std::fs::write(&roster, ROSTER).unwrap();
    let register = fleet.json(&["--roster", roster.to_str().unwrap()]);
    let status = |project: &str| row(&register, project, "backup-verification")["status"].as_str().unwrap().to_string();
    let reason = |project: &str| row(&register, project, "backup-verification")["reason"].as_str().unwrap().to_string();

    assert_eq!(status("acme"), "OK");
    assert_eq!(row(&register, "acme", "backup-verification")["rto_trend"], json!([4000, 5000, null, 3000]));
    assert_eq!(row(&register, "acme", "backup-verification")["last"]["operator"], "dana");
    assert_eq!(status("beta"), "DUE SOON");
    assert!(reason("beta").starts_with("due in "), "{}", reason("beta"));
    assert_eq!(status("gamma"), "OVERDUE");
    assert!(reason("gamma").starts_with("overdue by 2"), "{}", reason("gamma"));
    assert_eq!((status("delta"), reason("delta").starts_with("last drill failed")), ("FAILED".into(), true));
    assert_eq!((status("epsilon"), reason("epsilon").starts_with("last drill aborted")), ("FAILED".into(), true));
    // The training drill two days ago does not count: the last real one is 200 days old.
    assert_eq!(status("zeta"), "OVERDUE");
    assert_eq!(register["training_excluded"], 1);
    assert_eq!(status("eta"), "DUE SOON", "monthly, 20 days ago");
    let theta = row(&register, "theta", "ad-hoc-restore");
    assert_eq!((theta["status"].as_str(), theta["next_due"].is_null()), (Some("OK"), true), "no cadence: {theta:#}");
    let newco = row(&register, "newco", "backup-verification");
    assert_eq!((newco["status"].as_str(), newco["reason"].as_str()), (Some("OVERDUE"), Some("never drilled")));
    assert_eq!(newco["cadence"]["text"], "monthly");
    assert_eq!(register["rows"].as_array().unwrap().len(), 9 + QUIET_PROJECTS);
    assert_eq!(register["drills_read"], 4 + 1 + 1 + 2 + 2 + 2 + 1 + 1 + QUIET_PROJECTS);
    // Most urgent first.
    let first: Vec<&str> =
        register["rows"].as_array().unwrap()[..6].iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(first, ["FAILED", "FAILED", "OVERDUE", "OVERDUE", "OVERDUE", "DUE SOON"]);
    // The summary that is not one is named and left out, not fatal.
    let warning = register["warnings"][0].as_str().unwrap();
    assert!(warning.contains("drills/broken/summary.json: not a drill summary"), "{warning}");

    // With --training, zeta's drill two days ago counts.
    let register = fleet.json(&["--training"]);
    assert_eq!(row(&register, "zeta", "backup-verification")["status"], "OK");
    assert_eq!(row(&register, "zeta", "backup-verification")["last"]["training"], true);
}

#[test]
fn plain_csv_and_html_say_the_same_and_plain_exits_1_for_a_monitoring_job() {
    let fleet = seeded();
    let output = fleet.fleet(&["--plain"]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "OVERDUE and FAILED rows: {stdout}{}", stderr_of(&output));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("drillbook fleet: 2 FAILED · 2 OVERDUE · 2 DUE SOON · "), "{stdout}");
    assert!(lines[1].starts_with("STATUS ") && lines[1].ends_with("WHY"), "{stdout}");
    assert!(lines[2].starts_with("FAILED "), "{stdout}");
    let gamma = lines.iter().find(|l| l.contains(" gamma ")).unwrap();
    assert!(gamma.starts_with("OVERDUE ") && gamma.contains("1h / 4h PASS"), "{gamma}");
    assert!(stderr_of(&output).contains("drills/broken/summary.json"), "the warning goes to stderr");

    let output = fleet.fleet(&["--csv"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let csv = stdout_of(&output);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("status,project,runbook_id,runbook_title,reason,last_drill_id,"), "{csv}");
    assert_eq!(lines.len(), 1 + 8 + QUIET_PROJECTS);
    let acme = lines.iter().find(|l| l.contains(",acme,")).unwrap();
    assert!(acme.starts_with("OK,acme,backup-verification,Quarterly backup verification,next due in "), "{acme}");
    assert!(acme.contains(",4000;5000;;3000,4,false,"), "the trend and the drill count: {acme}");

    let html = fleet.home.path().join("register.html");
    let output = fleet.fleet(&["--html", html.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stdout_of(&output).is_empty(), "--html alone prints nothing: {}", stdout_of(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<style>"));
    assert!(page.contains("<span class=\"badge bad failed\">2 FAILED</span>"), "{page}");
    assert!(page.contains(">gamma</td>") && page.contains("overdue by "));
    assert!(page.contains("<svg class=\"spark\""));
    for external in ["<script", "<link", "src=\"http", "href=\"http", "url("] {
        assert!(!page.contains(external), "the dashboard fetches nothing: found {external}");
    }
}

#[test]
fn plain_exits_0_when_every_row_is_ok_or_due_soon() {
    let mut fleet = Fleet::start();
    fleet.seed(1, &[Seed::new("acme", 10, "passed"), Seed::new("beta", 85, "passed")]);
    let output = fleet.fleet(&["--plain"]);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", stderr_of(&output));
    assert!(stdout.starts_with("drillbook fleet: 1 DUE SOON · 1 OK"), "{stdout}");
}

#[test]
fn only_summaries_are_fetched() {
    let mut fleet = Fleet::start();
    for n in 0..50 {
        fleet.seed(n, &[Seed::new("acme", 10 + n as i64, "passed")]);
    }
    let proxy = FaultProxy::start(&fleet.moto.endpoint);
    let output = fleet.fleet_at(&proxy.endpoint, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let register: Value = serde_json::from_str(&stdout_of(&output)).unwrap();
    assert_eq!(register["drills_read"], 50);
    // One listing page (150 keys), then one GET per summary: no journal, no report.
    assert_eq!(proxy.requests(), 1 + fleet.summaries, "requests through the proxy");

    // The next register lists, and GETs only what changed since (by ETag).
    let output = fleet.fleet_at(&proxy.endpoint, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(proxy.requests(), 1 + fleet.summaries + 1, "the summaries came from the cache");
    let id = drill_id(7, 0);
    let changed = summary(&id, &Seed { rto_secs: Some(1234), ..Seed::new("acme", 17, "failed") });
    fleet.put_summary(&id, changed.to_string().as_bytes());
    let before = proxy.requests();
    let again: Value = serde_json::from_str(&stdout_of(&fleet.fleet_at(&proxy.endpoint, &["--json"]))).unwrap();
    assert_eq!(proxy.requests(), before + 2, "one listing, one GET of the summary that changed");
    assert_eq!(again["drills_read"], 50);
    let trend = again["rows"][0]["rto_trend"].as_array().unwrap();
    assert!(trend.contains(&json!(1234)), "the changed summary is the one read: {trend:?}");
    assert!(
        std::fs::read_dir(fleet.home.path().join("fleet-cache")).unwrap().count() == 1,
        "the cache lives beside the drills"
    );
}

#[test]
fn a_local_drill_counts_once_even_when_the_archive_has_it_too() {
    let mut fleet = Fleet::start();
    let runbook = fleet.home.runbook(
        "local.toml",
        "[runbook]\nid = \"local-check\"\ntitle = \"Local check\"\nproject = \"acme\"\ncadence = \"monthly\"\n\
         rto_target = \"1h\"\n[[step]]\nid = \"ok\"\nkind = \"command\"\nrun = \"true\"\n",
    );
    let ran = fleet
        .home
        .cmd()
        .env("DRILLBOOK_CONFIG", &fleet.config)
        .args(["run", "--plain", "--yes"])
        .arg(&runbook)
        .output();
    let ran = ran.unwrap();
    assert!(ran.status.success(), "{}{}", stdout_of(&ran), stderr_of(&ran));
    let dir = fleet.home.only_drill();
    let id = dir.file_name().unwrap().to_string_lossy().to_string();
    // The archive's copy says otherwise: the local journal is what counts.
    let mut archived = summary(&id, &Seed { runbook: "local-check", ..Seed::new("acme", 0, "failed") });
    archived["started_at"] = json!(Timestamp::now().to_string());
    fleet.put_summary(&id, archived.to_string().as_bytes());
    fleet.seed(9, &[Seed { runbook: "local-check", ..Seed::new("acme", 20, "passed") }]);

    let register = fleet.json(&[]);
    let acme = row(&register, "acme", "local-check");
    assert_eq!((acme["drills"].as_u64(), acme["status"].as_str()), (Some(2), Some("OK")), "{acme:#}");
    assert_eq!(acme["last"]["id"], id.as_str());
    assert_eq!((acme["last"]["outcome"].as_str(), acme["last"]["archived"].as_bool()), (Some("passed"), Some(true)));
    assert_eq!(acme["last"]["local_dir"], dir.to_str().unwrap());
    assert_eq!(acme["cadence"]["text"], "monthly");

    // Without an archive: this machine's drills only, and it says so.
    let output = fleet
        .home
        .cmd()
        .env("DRILLBOOK_CONFIG", &fleet.config)
        .env_remove("DRILLBOOK_ARCHIVE")
        .args(["fleet", "--plain"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("no archive configured"), "{}", stderr_of(&output));
    assert!(stdout_of(&output).contains(&id[..13]), "{}", stdout_of(&output));
}

#[test]
fn an_archive_that_cannot_be_read_is_one_line_and_exit_2() {
    let fleet = Fleet::start();
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let started = std::time::Instant::now();
    let output = fleet.fleet_at(&endpoint, &["--plain"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stdout_of(&output).is_empty(), "no partial register: {}", stdout_of(&output));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with(&format!("drillbook: error: archive s3://{BUCKET}/{PREFIX}: cannot reach {endpoint}")),
        "{stderr}"
    );
    assert!(lines[0].ends_with("Connection refused (os error 111)"), "says why: {stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "gave up in {:?}", started.elapsed());

    let proxy = FaultProxy::start(&fleet.moto.endpoint);
    proxy.set_fault(Fault::Forbidden);
    let output = fleet.fleet_at(&proxy.endpoint, &["--json"]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("drillbook: error: archive s3://{BUCKET}/{PREFIX}: access denied: ListObjectsV2 on s3://{BUCKET}")
    );

    let output = fleet.fleet(&["--roster", "/nonexistent/roster.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).starts_with("drillbook: error: cannot read the roster /nonexistent/roster.toml"));
}
