//! The seed drill for real, on loopback: the bundled `postgres-restore-drill`
//! runbook driven in a terminal (tmux) against a throwaway PostgreSQL 15
//! cluster, moto (S3) holding a real `pg_dump -Fc` as the newest of several
//! backups, and the Kubernetes API emulator with production and DR
//! namespaces. drillbook is SIGKILLed while `pg_restore` runs and resumed;
//! the drill then completes. Checked afterwards: the restored row counts,
//! DR's tag equals production's and DR is at zero replicas (kubectl), RPO and
//! RTO in the report, the evidence chain intact and a tampered journal
//! caught, and the HTML report rendered by headless Chromium to a PNG that is
//! not blank.

use crate::k8s;
use crate::moto;
use crate::postgres;
use crate::support;
use crate::tmux;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s::{K8sEmulator, table_row};
use postgres::Postgres;
use support::server::{Serving, serve};
use support::{Home, stderr_of, stdout_of, wait_for};
use tmux::{Tmux, drillbook_in_shell_with};

const USERS: u64 = 25;
const PAGES: u64 = 40;
const IMAGES: u64 = 300_000;
/// A role setting that makes the restore of `restore_gate` pause this many seconds,
/// so the first `pg_restore` is certainly still running when drillbook is killed:
/// without it a small dump restores in well under a second, faster than a loaded
/// machine gets from seeing `pg_restore` to killing drillbook.
const PAUSE_SETTING: &str = "drill.restore_pause";
const SECRET: &str = "dr-db-password-8c1f2e";

fn image(tag: &str) -> String {
    format!("registry.acme.io:5000/acme/web:{tag}")
}

fn runbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/postgres-restore-drill.toml")
}

/// A UTC key stamp `hours` ago, as the backup job names its dumps.
fn stamp(hours_ago: i64) -> String {
    let output = Command::new("date")
        .args(["-u", "-d", &format!("{hours_ago} hours ago"), "+%Y%m%d%H%M"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The production database: a few small tables and one large one.
fn seed(pg: &Postgres) {
    pg.sql("postgres", "CREATE DATABASE acme");
    pg.sql(
        "acme",
        &format!(
            "CREATE EXTENSION citext;
             CREATE TABLE users (id serial PRIMARY KEY, email citext UNIQUE NOT NULL);
             INSERT INTO users (email) SELECT 'user' || n || '@acme.com' FROM generate_series(1, {USERS}) n;
             CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL,
                 updated_at timestamptz NOT NULL DEFAULT now() - interval '3 hours');
             INSERT INTO pages (title) SELECT 'Page ' || n FROM generate_series(1, {PAGES}) n;
             CREATE TABLE images (id bigserial PRIMARY KEY, path text NOT NULL, page integer);
             INSERT INTO images (path, page)
                 SELECT 'media/' || md5(n::text) || '.jpg', n % {PAGES} FROM generate_series(1, {IMAGES}) n;
             CREATE INDEX images_path ON images (path);
             CREATE FUNCTION restore_pause() RETURNS boolean LANGUAGE sql AS $$
                 SELECT true FROM pg_sleep(coalesce(nullif(current_setting('{PAUSE_SETTING}', true), ''), '0')::float8)
             $$;
             CREATE TABLE restore_gate (id integer PRIMARY KEY CHECK (restore_pause()));
             INSERT INTO restore_gate VALUES (1);"
        ),
    );
}

/// Makes every new session of the restoring role pause at `restore_gate`, or lifts
/// the pause for sessions started afterwards (the re-run's; a paused one stays
/// paused). The killed attempt's paused backend ends when its `pg_restore` is stopped:
/// by the cancel request `pg_restore` sends on SIGTERM, or, after a SIGKILL, by
/// noticing within 200 ms that its client is gone (`client_connection_check_interval`),
/// so the re-run's `dropdb` does not wait on a stale session.
fn pause_restores(pg: &Postgres, paused: bool) {
    let statements = if paused {
        format!(
            "ALTER ROLE postgres SET {PAUSE_SETTING} = '600'; \
             ALTER ROLE postgres SET client_connection_check_interval = '200ms'"
        )
    } else {
        format!("ALTER ROLE postgres RESET {PAUSE_SETTING}")
    };
    pg.sql("postgres", &statements);
}

/// A health endpoint for the DR site: 200 "ok" to every request.
fn serve_health() -> Serving {
    serve(|mut stream, _| {
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    })
}

/// Whether `pid` runs (a zombie waiting for a parent that does not reap it does not).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

/// Pids of the `pg_restore` processes restoring into the server on `port`.
fn pg_restores(port: u16) -> Vec<String> {
    let pattern = format!("bin/pg_restore .*-p {port} .*-d acme_dr");
    let output = Command::new("pgrep").args(["-f", &pattern]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_postgres_restore_drill_survives_a_kill_and_proves_it_restored() {
    let pg = Postgres::start();
    seed(&pg);
    pause_restores(&pg, true);
    let home = Home::new();
    let dump = home.path().join("acme.pgdump");
    pg.dump("acme", &dump);

    // S3: the real dump is the newest daily backup; older ones and a weekly one beside it.
    let moto = moto::Moto::start();
    moto.create_bucket("acme-hosting-services");
    let newest = format!("acme/daily-acme-{}.pgdump", stamp(3));
    for (key, body) in [
        (format!("acme/daily-acme-{}.pgdump", stamp(51)), b"an older dump".to_vec()),
        (format!("acme/daily-acme-{}.pgdump", stamp(27)), b"yesterday's dump".to_vec()),
        (format!("acme/weekly-acme-{}.pgdump", stamp(2)), b"not a daily".to_vec()),
    ] {
        moto.put_object("acme-hosting-services", &key, &body);
    }
    // Newest by LastModified (what drillbook goes by), which has whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    moto.put_object("acme-hosting-services", &newest, &std::fs::read(&dump).unwrap());

    // Kubernetes: production runs v2.14.1 (rolled out over v2.14.0); DR an old build.
    let emulator = K8sEmulator::start();
    let kube_dir = tempfile::tempdir().unwrap();
    let kubeconfig = emulator.kubeconfig(kube_dir.path());
    emulator.apply_deployment("acme-production", "web", &image("v2.14.0"), 2);
    emulator.apply_deployment("acme-dr", "web", &image("v2.9.3"), 1);
    let kubectl = |args: &[&str]| {
        let output = emulator.kubectl(&kubeconfig, args);
        assert!(output.status.success(), "kubectl {args:?}: {}", stderr_of(&output));
        stdout_of(&output)
    };
    kubectl(&["-n", "acme-production", "set", "image", "deployment/web", &format!("web={}", image("v2.14.1"))]);
    // DR as the isolation check wants it before DR scales up: egress denied by default.
    let (status, body) = emulator.request(
        "POST",
        "/apis/networking.k8s.io/v1/namespaces/acme-dr/networkpolicies",
        Some(&serde_json::json!({"metadata": {"name": "default-deny-egress"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}})),
    );
    assert_eq!(status, 201, "{body}");

    let health = serve_health();
    let health_port = health.port();
    let mut env: Vec<(String, String)> = moto.env();
    for (name, value) in emulator.kubectl_command(&kubeconfig, &[]).get_envs() {
        if let Some(value) = value {
            env.push((name.to_string_lossy().into_owned(), value.to_string_lossy().into_owned()));
        }
    }
    env.push(("DR_DB_PASSWORD".into(), SECRET.into()));
    let args = format!(
        "run {} --context emulator --var project=acme --var db_host=127.0.0.1 --var db_port={} \
         --var dr_url=http://127.0.0.1:{health_port} --participant 'Dana Reyes:observer'",
        runbook().display(),
        pg.port
    );

    let tmux = Tmux::new("restore-drill");
    tmux.start(&drillbook_in_shell_with(home.path(), &env, &args));
    let start = tmux.wait_for("New drill");
    assert!(start.contains("PostgreSQL restore drill"), "{start}");
    tmux.keys(&["Enter"]);

    // The backup picker: the newest daily backup first, the weekly one not offered.
    let picker = tmux.wait_for(&newest);
    assert!(!picker.contains("weekly-acme"), "only daily backups are offered: {picker}");
    tmux.keys(&["Enter"]);

    // The restore asks for the database name, typed.
    let confirm = tmux.wait_for("type to confirm");
    assert!(confirm.contains("pg_restore --no-owner --no-privileges"), "{confirm}");
    assert!(!confirm.contains(SECRET), "the secret is not shown: {confirm}");
    tmux.text("restore");
    tmux.keys(&["Enter"]);

    // SIGKILL drillbook while pg_restore runs (held at `restore_gate`); freeze the
    // orphaned pg_restore once drillbook is gone, so it is certainly still there when the
    // drill resumes. Not before: a stopped process in a group its parent's death orphans
    // gets SIGHUP from the kernel.
    wait_for("pg_restore to run", Duration::from_secs(60), || (!pg_restores(pg.port).is_empty()).then_some(()));
    let pid = tmux.run(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
    let drillbook = Command::new("pgrep").args(["-P", pid.trim(), "drillbook"]).output().unwrap();
    let drillbook = String::from_utf8_lossy(&drillbook.stdout).trim().to_string();
    assert!(!drillbook.is_empty(), "drillbook runs in the pane");
    Command::new("kill").args(["-KILL", &drillbook]).status().unwrap();
    wait_for("drillbook to die", Duration::from_secs(10), || (!alive(&drillbook)).then_some(()));
    let orphans = pg_restores(pg.port);
    let ps = Command::new("ps").args(["-o", "pid,ppid,pgid,stat,args", "-p", &orphans.join(",")]).output().unwrap();
    eprintln!("left running:\n{}", stdout_of(&ps));
    assert!(!orphans.is_empty(), "pg_restore was still running when drillbook died");
    for orphan in &orphans {
        Command::new("kill").args(["-STOP", orphan]).status().unwrap();
    }
    pause_restores(&pg, false);
    let journal = home.journal();
    assert!(!journal.contains(r#""type":"step_completed","step":"restore""#), "killed mid-restore: {journal}");

    // Resume: the interrupted restore is run again after its leftover is stopped.
    tmux.run(&["kill-server"]);
    let tmux = Tmux::new("restore-drill-resume");
    tmux.start(&drillbook_in_shell_with(home.path(), &env, "resume"));
    let interrupted = tmux.wait_for("Interrupted step");
    assert!(interrupted.contains("Still running (r stops them"), "the orphan is shown: {interrupted}");
    assert!(interrupted.contains("pg_restore") && interrupted.contains("(attempt 1)"), "{interrupted}");
    tmux.keys(&["r"]);
    let confirm = tmux.wait_for("type to confirm");
    assert!(confirm.contains("pg_restore"), "{confirm}");
    tmux.text("restore");
    tmux.keys(&["Enter"]);
    let rows = tmux.wait_for("Run this step?");
    let _ = rows;
    tmux.keys(&["y"]);
    tmux.wait_for("space ticks");
    for _ in 0..4 {
        tmux.keys(&["Space"]);
    }
    tmux.keys(&["Enter"]);
    let scale = tmux.wait_for("type to confirm");
    assert!(scale.contains("deployment/web: 1 → 0"), "{scale}");
    assert!(scale.contains("emulator") && scale.contains("acme-dr"), "context and namespace named: {scale}");
    tmux.text("acme-dr");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Verdict: passed");
    tmux.keys(&["q"]);
    tmux.wait_for("EXITED=0");

    let drill = home.only_drill();
    let id = drill.file_name().unwrap().to_string_lossy().into_owned();
    let restore_log = std::fs::read_to_string(drill.join("logs/restore.2.log")).unwrap();
    assert!(restore_log.contains("left running by attempt 1"), "the orphan was stopped first: {restore_log}");
    let states: Vec<String> =
        orphans.iter().map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()).collect();
    assert!(orphans.iter().all(|pid| !alive(pid)), "no pg_restore left behind: {states:?}\n{restore_log}");

    // The restored data is production's.
    for (table, rows) in [("users", USERS), ("pages", PAGES), ("images", IMAGES)] {
        assert_eq!(pg.sql("acme_dr", &format!("SELECT count(*) FROM {table}")), rows.to_string(), "{table}");
    }
    assert_eq!(pg.sql("acme_dr", "SELECT count(*) FROM users WHERE email = 'USER7@ACME.COM'"), "1", "citext restored");
    let journal = home.journal();
    assert!(
        journal.contains(&format!(r#""name":"restored_rows","value":{{"value":"{}""#, USERS + PAGES + IMAGES)),
        "row count captured: {journal}"
    );

    // DR runs production's tag, at zero replicas; production untouched (kubectl).
    let dr = kubectl(&["-n", "acme-dr", "get", "deployments", "-o", "wide"]);
    let web = table_row(&dr, "web").unwrap_or_else(|| panic!("{dr}"));
    assert_eq!(web[1], "0/0", "{dr}");
    assert!(web.iter().any(|cell| *cell == image("v2.14.1")), "DR runs production's tag: {dr}");
    let production = kubectl(&["-n", "acme-production", "get", "deployments", "-o", "wide"]);
    assert_eq!(table_row(&production, "web").unwrap()[1], "2/2", "{production}");

    // The report: RPO (the backup is about 3 hours old), RTO, tags, evidence chain head.
    let report = home.cmd_std().args(["report", &id]).output().unwrap();
    let report = stdout_of(&report);
    println!("{report}");
    for expected in [
        "| RTO | **PASS**",
        "| RPO | **PASS**",
        "| RPO by data | **PASS**: newest data restored is from",
        "**match**",
        "Dana Reyes (observer)",
        "head sha256",
        "interrupted",
        "restored_rows",
    ] {
        assert!(report.contains(expected), "the report shows {expected}:\n{report}");
    }
    for file in home.all_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "the secret leaked into {}", file.display());
    }

    // The evidence chain: intact, then one edited line is caught.
    let verify = home.cmd_std().args(["verify", &id]).output().unwrap();
    assert!(verify.status.success(), "{}{}", stdout_of(&verify), stderr_of(&verify));
    assert!(stdout_of(&verify).contains("intact"), "{}", stdout_of(&verify));
    let journal_path = drill.join("journal.jsonl");
    let original = std::fs::read_to_string(&journal_path).unwrap();
    let tampered = original.replacen(&format!("\"value\":\"{}\"", USERS + PAGES + IMAGES), "\"value\":\"999999\"", 1);
    assert_ne!(tampered, original);
    std::fs::write(&journal_path, &tampered).unwrap();
    let verify = home.cmd_std().args(["verify", &id]).output().unwrap();
    assert!(!verify.status.success(), "a tampered journal fails verification");
    let message = stdout_of(&verify) + &stderr_of(&verify);
    assert!(message.contains("line"), "names the altered line: {message}");
    std::fs::write(&journal_path, &original).unwrap();

    screenshot_of_the_html_report(&drill);
}

/// Headless Chromium prints the HTML report to a PNG; the picture is not blank.
fn screenshot_of_the_html_report(drill: &Path) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect(
            "this test needs Chromium to render the HTML report: install it with `apt-get install chromium` \
             (./scripts/test does this when run as root)",
        );
    let profile = tempfile::tempdir().unwrap();
    let png = drill.join("report.png");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", drill.join("report.html").display()))
        .output()
        .unwrap();
    assert!(png.exists(), "chromium wrote no screenshot: {}", stderr_of(&output));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let pixels = &pixels[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let background = &pixels[..channels];
    let differing = pixels.chunks(channels).filter(|pixel| *pixel != background).count();
    let total = pixels.len() / channels;
    println!(
        "report.png: {}x{}, {} bytes, {:.1}% of pixels not background",
        frame.width,
        frame.height,
        std::fs::metadata(&png).unwrap().len(),
        100.0 * differing as f64 / total as f64
    );
    // Kept for a person to look at.
    let _ = std::fs::copy(&png, Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-report.png"));
    assert!(differing * 100 > total, "the rendered report is (nearly) blank: {differing} of {total} pixels drawn");
}
