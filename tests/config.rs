//! `drillbook config`: the effective configuration and where each value came from.

use crate::support;

use support::{Home, stderr_of, stdout_of};

#[test]
fn config_prints_each_value_with_its_source_and_never_a_webhook_url() {
    let home = Home::new();
    let file = home.path().join("config.toml");
    std::fs::write(
        &file,
        "operator = \"dana\"\narchive = \"s3://acme-drills/fleet\"\n[[notify]]\nkind = \"slack\"\nurl_env = \"TEAM_HOOK\"\n",
    )
    .unwrap();
    let output = home
        .cmd()
        .arg("config")
        .env("DRILLBOOK_CONFIG", &file)
        .env("TEAM_HOOK", "https://hooks.slack.com/services/T1/B2/very-secret")
        .env_remove("DRILLBOOK_OPERATOR")
        .env_remove("DRILLBOOK_ARCHIVE")
        .output()
        .unwrap();
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}{}", stderr_of(&output));
    assert!(stdout.contains(&format!("operator = dana    ({})", file.display())), "{stdout}");
    assert!(stdout.contains("archive = s3://acme-drills/fleet/"), "{stdout}");
    assert!(stdout.contains("notify Slack → https://hooks.slack.com/… (URL from $TEAM_HOOK)"), "{stdout}");
    assert!(!stdout.contains("very-secret"), "{stdout}");

    let output =
        home.cmd().arg("config").env("DRILLBOOK_CONFIG", &file).env("DRILLBOOK_OPERATOR", "lee").output().unwrap();
    assert!(stdout_of(&output).contains("operator = lee    ($DRILLBOOK_OPERATOR)"), "{}", stdout_of(&output));

    std::fs::write(&file, "operater = \"typo\"\n").unwrap();
    let output = home.cmd().arg("config").env("DRILLBOOK_CONFIG", &file).output().unwrap();
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 1: unknown field `operater`"), "{stderr}");
}
