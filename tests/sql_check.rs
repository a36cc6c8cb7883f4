//! `sql-check` end to end through the real binary, against a throwaway
//! PostgreSQL started here: every expectation operator passing and failing,
//! the newest data as the data RPO in all four reports, fingerprints compared
//! across two drills (a shrunk table, a dropped column), a wrong password, an
//! unreachable server, a missing database, a statement timeout, a query that
//! tries to write, and a secret password that reaches no file.

use crate::support;

use crate::postgres;

use postgres::Postgres;
use serde_json::Value;
use support::{Home, stderr_of, stdout_of};

const PASSWORD: &str = "pg-secret-5b1e";

/// `shop`: 1,200 orders, 3 pages edited 2 to 4 hours ago.
fn seed(pg: &Postgres) {
    pg.sql("postgres", "CREATE DATABASE shop");
    pg.sql(
        "shop",
        "CREATE TABLE orders (id serial PRIMARY KEY, total numeric NOT NULL);
         INSERT INTO orders (total) SELECT n * 1.5 FROM generate_series(1, 1200) n;
         CREATE TABLE pages (id serial PRIMARY KEY, title text NOT NULL, updated_at timestamptz NOT NULL);
         INSERT INTO pages (title, updated_at) VALUES
             ('Home', now() - interval '4 hours'), ('About', now() - interval '3 hours'),
             ('News', now() - interval '2 hours');
         CREATE TABLE site (id integer PRIMARY KEY, name text);
         INSERT INTO site VALUES (1, 'acme');",
    );
}

fn runbook(pg: &Postgres, database: &str, step: &str) -> String {
    format!(
        r#"[runbook]
id = "data-drill"
title = "Data drill"
rpo_target = "24h"
[vars.db_password]
secret = true
env = "TEST_DB_PASSWORD"
[[step]]
id = "verify-data"
kind = "sql-check"
database = "postgresql://postgres@127.0.0.1:{port}/{database}?sslmode=disable"
password = "{{{{ db_password }}}}"
{step}
"#,
        port = pg.port
    )
}

fn run(home: &Home, runbook: &str, password: &str) -> std::process::Output {
    let path = home.runbook("data.toml", runbook);
    home.cmd_std()
        .args(["run", "--plain", "--yes"])
        .arg(path)
        .env("TEST_DB_PASSWORD", password)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn newest_report(home: &Home, format: &str) -> String {
    let drill = home.drills().pop().unwrap();
    let id = drill.file_name().unwrap().to_string_lossy().to_string();
    let output = home.cmd().args(["report", &id, "--format", format]).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    stdout_of(&output)
}

const EVERY_OPERATOR: &str = r#"
[[step.check]]
name = "orders equal"
query = "SELECT count(*) FROM orders"
expect = "= 1200"
[[step.check]]
name = "orders not zero"
query = "SELECT count(*) FROM orders"
expect = "!= 0"
[[step.check]]
name = "orders at least"
query = "SELECT count(*) FROM orders"
expect = ">= 1000"
capture = "orders"
[[step.check]]
name = "orders at most"
query = "SELECT count(*) FROM orders"
expect = "<= 1200"
[[step.check]]
name = "pages above"
query = "SELECT count(*) FROM pages"
expect = "> 2"
[[step.check]]
name = "pages below"
query = "SELECT count(*) FROM pages"
expect = "< 4"
[[step.check]]
name = "total between"
query = "SELECT sum(total) FROM orders"
expect = "between 1000000 and 1100000"
[[step.check]]
name = "site name"
query = "SELECT name FROM site WHERE id = 1"
expect = "'acme'"
[[step.check]]
name = "bare number"
query = "SELECT 7"
expect = 7
[[step.check]]
name = "newest page edit"
query = "SELECT max(updated_at) FROM pages"
freshness = true
[[step]]
id = "use"
kind = "command"
run = "echo orders={{ orders }}"
"#;

#[test]
fn every_operator_passes_and_the_newest_data_is_the_data_rpo_in_every_report() {
    let pg = Postgres::start_with_password(PASSWORD);
    seed(&pg);
    let home = Home::new();
    let output = run(&home, &runbook(&pg, "shop", EVERY_OPERATOR), PASSWORD);
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("orders=1200"), "the capture reaches the next step: {stdout}");
    assert!(stdout.contains("site name                acme                     'acme'                 ok"), "{stdout}");
    assert!(stdout.contains("RPO by data PASS: newest data restored is from"), "{stdout}");

    let json: Value = serde_json::from_str(&newest_report(&home, "json")).unwrap();
    let rpo_data = &json["rpo_data"];
    assert_eq!(rpo_data["verdict"], "PASS", "{rpo_data}");
    let window = rpo_data["achieved_secs"].as_u64().unwrap();
    assert!((2 * 3600 - 60..2 * 3600 + 600).contains(&window), "about two hours of data not restored: {window}");
    let evidence = &json["steps"][0]["choice"];
    assert_eq!(evidence["checks"].as_array().unwrap().len(), 10, "{evidence}");
    assert!(evidence["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{evidence}");
    let markdown = newest_report(&home, "md");
    assert!(markdown.contains("| RPO by data | **PASS**: newest data restored is from"), "{markdown}");
    assert!(markdown.contains("check orders at least: 1200 (expected >= 1000): ok"), "{markdown}");
    let html = newest_report(&home, "html");
    assert!(html.contains("<th>RPO by data</th>") && html.contains("What the database answered"), "{html}");
    let junit = newest_report(&home, "junit");
    assert!(junit.contains("name=\"RPO by data\""), "{junit}");

    for file in home.all_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(PASSWORD), "the password leaked into {}", file.display());
    }
}

#[test]
fn a_failed_expectation_fails_the_step_naming_the_check_and_the_answer() {
    let pg = Postgres::start();
    seed(&pg);
    let home = Home::new();
    let step = r#"
[[step.check]]
name = "orders"
query = "SELECT count(*) FROM orders"
expect = ">= 5000"
[[step.check]]
name = "site"
query = "SELECT name FROM site"
expect = "'globex'"
[[step.check]]
name = "no rows"
query = "SELECT id FROM site WHERE id = 99"
expect = "= 1"
"#;
    let output = run(&home, &runbook(&pg, "shop", step), "unused");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("check `orders`: expected >= 5000, got 1200 (and 2 more)"), "{stdout}");
    assert!(stdout.contains("FAILED: expected 'globex', got acme"), "{stdout}");
    assert!(stdout.contains("FAILED: expected = 1, got no value (no row, or NULL)"), "{stdout}");
    let json: Value = serde_json::from_str(&newest_report(&home, "json")).unwrap();
    let checks = json["steps"][0]["choice"]["checks"].as_array().unwrap().clone();
    assert!(checks.iter().all(|c| c["passed"] == false), "every check journaled with its verdict: {checks:?}");
}

#[test]
fn a_second_drill_compares_its_fingerprint_and_fails_on_a_shrunk_table_and_a_dropped_column() {
    let pg = Postgres::start();
    seed(&pg);
    let home = Home::new();
    let step = "fingerprint = true\nexact = true\nmax_shrink = \"20%\"\n";
    let first = run(&home, &runbook(&pg, "shop", step), "unused");
    let stdout = stdout_of(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{}", stderr_of(&first));
    assert!(stdout.contains("fingerprint: 3 tables"), "{stdout}");
    assert!(stdout.contains("no earlier completed drill of this runbook to compare with"), "{stdout}");

    pg.sql(
        "shop",
        "DELETE FROM orders WHERE id > 600; ALTER TABLE pages DROP COLUMN title; CREATE TABLE extra (id int)",
    );
    let second = run(&home, &runbook(&pg, "shop", step), "unused");
    let stdout = stdout_of(&second);
    assert_eq!(second.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("public.orders shrank by 50.0% (1200 → 600 rows), more than max_shrink 20%"), "{stdout}");
    assert!(stdout.contains("the columns of public.pages changed: dropped title text"), "{stdout}");
    assert!(stdout.contains("new table"), "{stdout}");
    let markdown = newest_report(&home, "md");
    assert!(markdown.contains("public.orders: 1200 → 600 (-600 (-50.0%))"), "{markdown}");
    assert!(markdown.contains("schema changed"), "{markdown}");

    // With on_shrink = "warn" the same comparison passes, saying what it saw.
    let warn = run(&home, &runbook(&pg, "shop", &format!("{step}on_shrink = \"warn\"\n")), "unused");
    let stdout = stdout_of(&warn);
    assert_eq!(warn.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("warning (on_shrink = \"warn\"): table public.orders shrank"), "{stdout}");
}

#[test]
fn estimated_counts_come_from_the_planner_and_the_report_says_so() {
    let pg = Postgres::start();
    seed(&pg);
    // 8 MiB and more without statistics: analyzed, not counted.
    pg.sql("shop", "CREATE TABLE big AS SELECT n AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) n");
    let home = Home::new();
    let output = run(&home, &runbook(&pg, "shop", "fingerprint = true\n"), "unused");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("(3 counted exactly, 1 estimated after ANALYZE)"), "{stdout}");
    let json: Value = serde_json::from_str(&newest_report(&home, "json")).unwrap();
    let big = &json["steps"][0]["choice"]["fingerprint"]["tables"]["public.big"];
    assert_eq!(big["exact"], false, "{big}");
    let rows = big["rows"].as_i64().unwrap();
    assert!((50_000..70_000).contains(&rows), "the estimate is near 60,000: {rows}");
    let markdown = newest_report(&home, "md");
    assert!(markdown.contains("1 row count(s) estimated by the planner after ANALYZE"), "{markdown}");
}

#[test]
fn connection_and_query_errors_are_one_clear_line_each() {
    let pg = Postgres::start_with_password(PASSWORD);
    seed(&pg);
    let check = "[[step.check]]\nname = \"one\"\nquery = \"SELECT 1\"\nexpect = \"= 1\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            runbook(&pg, "shop", check),
            "wrong-password",
            "password authentication failed for user \"postgres\" (wrong password",
        ),
        (runbook(&pg, "nope", check), PASSWORD, "database \"nope\" does not exist (check the database name"),
        (
            runbook(&pg, "shop", check).replace(&format!(":{}/", pg.port), ":1/"),
            PASSWORD,
            "cannot connect to postgresql://postgres@127.0.0.1:1/shop: error connecting to server",
        ),
        (
            runbook(&pg, "shop", "timeout = \"1s\"\n[[step.check]]\nname = \"slow\"\nquery = \"SELECT pg_sleep(5)\"\n"),
            PASSWORD,
            "check `slow`: canceling statement due to statement timeout (after 1s)",
        ),
        (
            runbook(&pg, "shop", "[[step.check]]\nname = \"writes\"\nquery = \"DELETE FROM orders\"\n"),
            PASSWORD,
            "check `writes`: cannot execute DELETE in a read-only transaction (checks run read-only",
        ),
    ];
    for (text, password, expected) in cases {
        let home = Home::new();
        let output = run(&home, &text, password);
        let stdout = stdout_of(&output);
        assert_eq!(output.status.code(), Some(1), "{expected}: {stdout}");
        assert!(stdout.contains(expected), "expected {expected:?} in:\n{stdout}");
    }
    assert_eq!(pg.sql("shop", "SELECT count(*) FROM orders"), "1200", "the read-only transaction refused the DELETE");
}

#[test]
fn drillbook_check_points_at_a_bad_expectation() {
    let home = Home::new();
    let path = home.runbook(
        "bad.toml",
        r#"[runbook]
id = "bad"
title = "Bad"
[[step]]
id = "verify"
kind = "sql-check"
database = "postgresql://app@db/shop"
max_shrink = "lots"
[[step.check]]
name = "orders"
query = "SELECT count(*) FROM orders"
expect = ">= many"
"#,
    );
    let output = home.cmd().arg("check").arg(path).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bad.toml:12:14"), "line and column of `many`: {stderr}");
    assert!(stderr.contains("`expect`: `many` is not a number"), "{stderr}");
    assert!(stderr.contains("`max_shrink` = `lots`: expected a percentage"), "{stderr}");
    assert!(stderr.contains("`max_shrink` compares fingerprints: it needs `fingerprint = true`"), "{stderr}");
}

#[test]
fn sslmode_is_honoured_against_a_server_that_requires_tls() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pg = Postgres::start_with_tls(&cert.pem(), &key.serialize_pem());
    seed(&pg);
    let check = "[[step.check]]\nname = \"orders\"\nquery = \"SELECT count(*) FROM orders\"\nexpect = \"= 1200\"\n";
    let with_mode = |mode: &str| runbook(&pg, "shop", check).replace("sslmode=disable", &format!("sslmode={mode}"));
    let cases = [
        ("disable", Some("no encryption (the server requires TLS: add ?sslmode=require to `database`)")),
        ("require", None),
        ("prefer", None),
        (
            "verify-full",
            Some("invalid peer certificate: UnknownIssuer (the server's certificate is not signed by a CA"),
        ),
    ];
    for (mode, failure) in cases {
        let home = Home::new();
        let output = run(&home, &with_mode(mode), "unused");
        let stdout = stdout_of(&output);
        match failure {
            None => {
                assert_eq!(output.status.code(), Some(0), "sslmode={mode}: {stdout}");
                assert!(stdout.contains("certificate not checked"), "sslmode={mode}: {stdout}");
            }
            Some(expected) => {
                assert_eq!(output.status.code(), Some(1), "sslmode={mode}: {stdout}");
                assert!(stdout.contains(expected), "sslmode={mode}: expected {expected:?} in\n{stdout}");
            }
        }
    }
}

#[test]
fn an_unattended_drill_exits_1_when_its_data_is_older_than_the_rpo_target() {
    let pg = Postgres::start();
    seed(&pg);
    let home = Home::new();
    let check = "[[step.check]]\nname = \"newest\"\nquery = \"SELECT max(updated_at) FROM pages\"\nfreshness = true\n";
    let text = runbook(&pg, "shop", check).replace("rpo_target = \"24h\"", "rpo_target = \"1h\"");
    let output = run(&home, &text, "unused");
    let stdout = stdout_of(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("RPO by data FAIL: newest data restored is from"), "{stdout}");
    assert!(stdout.contains("against a target of 1h"), "{stdout}");
}
