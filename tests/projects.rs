//! Project files over a shared pattern, through the real binary: a team
//! repository with one pattern and three projects (one overriding a step,
//! one adding a step, one never drilled). `check` accepts them and names a
//! bad one's problems at file:line:col; each drill runs what its project
//! says and keeps the project file and the pattern beside its resolved
//! runbook; a drill killed with -9 resumes from its snapshot even after the
//! pattern was edited.

use std::path::{Path, PathBuf};

use crate::support::{Home, stderr_of, stdout_of, wait_for};

const PATTERN: &str = r#"[runbook]
id = "team-drill"
title = "The team's drill"

[vars.project]
prompt = "Project"
[vars.dr_namespace]

[[step]]
id = "restore"
kind = "command"
run = "echo restore the pattern way into {{ dr_namespace }}"

[[step]]
id = "deploy"
kind = "command"
run = "echo deploy {{ project }}"

[[step]]
id = "teardown"
kind = "command"
optional = true
run = "echo teardown from the pattern"
"#;

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("runbooks/team.toml", PATTERN);
        write(
            "projects/shop.toml",
            "[project]\nname = \"shop\"\nrunbook = \"../runbooks/team.toml\"\ncadence = \"quarterly\"\n\
             [vars]\ndr_namespace = \"shop-dr\"\n\
             [[override]]\nstep = \"restore\"\nrun = \"echo restore with the shop task\"\n",
        );
        write(
            "projects/blog.toml",
            "[project]\nname = \"blog\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"blog-dr\"\n\
             [[add]]\nafter = \"deploy\"\nid = \"reindex\"\nkind = \"command\"\nrun = \"echo reindex the blog\"\n",
        );
        write(
            "projects/wiki.toml",
            "[project]\nname = \"wiki\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"wiki-dr\"\n",
        );
        Repo { dir }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
}

fn run(home: &Home, project: &Path) -> std::process::Output {
    home.cmd_std().args(["run", "--plain", "--yes"]).arg(project).output().unwrap()
}

#[test]
fn check_accepts_the_projects_and_names_a_bad_ones_problems_at_file_line_col() {
    let repo = Repo::new();
    let home = Home::new();
    let projects: Vec<PathBuf> =
        ["shop", "blog", "wiki"].iter().map(|p| repo.path(&format!("projects/{p}.toml"))).collect();
    let output = home.cmd_std().arg("check").args(&projects).output().unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stdout = stdout_of(&output);
    assert!(stdout.contains("shop.toml (team-drill, 3 steps)") && stdout.contains("blog.toml (team-drill, 4 steps)"));

    std::fs::write(
        repo.path("projects/bad.toml"),
        "[project]\nname = \"bad\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"x\"\n\
         [[override]]\nstep = \"deplo\"\nrun = \"x\"\n",
    )
    .unwrap();
    let output = home.cmd_std().arg("check").arg(repo.path("projects/bad.toml")).output().unwrap();
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("bad.toml:6:1")
            && stderr.contains("`[[override]]` of step `deplo`: the runbook has no such step; did you mean `deploy`?"),
        "{stderr}"
    );
}

#[test]
fn each_project_runs_what_its_file_says_and_keeps_its_sources() {
    let repo = Repo::new();
    let home = Home::new();
    let output = run(&home, &repo.path("projects/shop.toml"));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert!(stdout.contains("restore with the shop task"), "the override: {stdout}");
    assert!(!stdout.contains("restore the pattern way"), "{stdout}");
    let drill = home.only_drill();
    let snapshot = std::fs::read_to_string(drill.join("runbook.toml")).unwrap();
    assert!(snapshot.starts_with("# The runbook of project `shop`"), "{snapshot}");
    assert_eq!(std::fs::read_to_string(drill.join("pattern.toml")).unwrap(), PATTERN);
    assert!(std::fs::read_to_string(drill.join("project.toml")).unwrap().contains("restore with the shop task"));

    let home = Home::new();
    let output = run(&home, &repo.path("projects/blog.toml"));
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}");
    let deploy = stdout.find("deploy blog").expect("deploy ran");
    // A project that does without an optional step: the report says so, and why.
    std::fs::write(
        repo.path("projects/news.toml"),
        "[project]\nname = \"news\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"news-dr\"\n\
         [[remove]]\nstep = \"teardown\"\nreason = \"news has nothing to tear down\"\n",
    )
    .unwrap();
    let news_home = Home::new();
    let news = run(&news_home, &repo.path("projects/news.toml"));
    assert!(news.status.success(), "{}", stderr_of(&news));
    assert!(!stdout_of(&news).contains("teardown from the pattern"));
    let report = std::fs::read_to_string(news_home.only_drill().join("report.md")).unwrap();
    assert!(
        report.contains("## Steps the project does without\n\n- `teardown`: news has nothing to tear down"),
        "{report}"
    );
    let reindex = stdout.find("reindex the blog").expect("the added step ran");
    assert!(deploy < reindex && reindex < stdout.find("teardown from the pattern").unwrap(), "{stdout}");
}

#[test]
fn a_killed_drill_resumes_from_its_snapshot_after_the_pattern_was_edited() {
    let repo = Repo::new();
    let home = Home::new();
    // The shop's restore now holds the drill until it is killed.
    let marker = repo.path("restore-began");
    std::fs::write(
        repo.path("projects/shop.toml"),
        format!(
            "[project]\nname = \"shop\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"shop-dr\"\n\
             [[override]]\nstep = \"restore\"\nrun = \"test -f '{0}' || {{ touch '{0}'; sleep 600; }}\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let mut child = home.spawn_run(&repo.path("projects/shop.toml"));
    wait_for("the restore to start", std::time::Duration::from_secs(20), || {
        home.drills()
            .first()
            .filter(|d| std::fs::read_to_string(d.join("journal.jsonl")).is_ok_and(|j| j.contains("step_started")))
            .cloned()
    });
    let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    // The pattern changes between the kill and the resume.
    std::fs::write(repo.path("runbooks/team.toml"), PATTERN.replace("echo teardown from the pattern", "echo EDITED"))
        .unwrap();
    let output = home.cmd_std().args(["resume", "--plain", "--yes"]).output().unwrap();
    let stdout = stdout_of(&output);
    assert!(
        stdout.contains("teardown from the pattern"),
        "the drill keeps its snapshot: {stdout}\n{}",
        stderr_of(&output)
    );
    assert!(!stdout.contains("EDITED"), "{stdout}");
}

#[test]
fn init_writes_a_repository_that_projects_and_fleet_read_with_never_drilled_and_retired_projects() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let init = home.cmd_std().args(["init"]).arg(dir.path()).output().unwrap();
    assert!(init.status.success(), "{}", stderr_of(&init));
    for file in ["drillbook.toml", "README.md", "projects/example.toml", "runbooks/backup-verification.toml"] {
        assert!(dir.path().join(file).is_file(), "{file} written");
    }
    let again = home.cmd_std().args(["init"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success() && stderr_of(&again).contains("not overwriting"), "{}", stderr_of(&again));

    // From a subdirectory: the repository is found by walking up.
    let sub = dir.path().join("projects");
    let check = home.cmd_std().arg("check").current_dir(&sub).output().unwrap();
    assert!(check.status.success(), "{}", stderr_of(&check));
    assert!(stdout_of(&check).contains("example.toml (backup-verification, 12 steps)"), "{}", stdout_of(&check));

    // A project of a small pattern, drilled once, then its file deleted: retired.
    std::fs::write(dir.path().join("runbooks/team.toml"), PATTERN).unwrap();
    std::fs::write(
        dir.path().join("projects/gone.toml"),
        "[project]\nname = \"gone\"\nrunbook = \"../runbooks/team.toml\"\n[vars]\ndr_namespace = \"gone-dr\"\n",
    )
    .unwrap();
    let drill =
        home.cmd_std().args(["run", "--plain", "--yes", "--project", "gone"]).current_dir(&sub).output().unwrap();
    assert!(drill.status.success(), "{}\n{}", stdout_of(&drill), stderr_of(&drill));
    let projects = home.cmd_std().args(["projects"]).current_dir(&sub).output().unwrap();
    let listing = stdout_of(&projects);
    assert!(listing.contains("example  backup-verification  quarterly  never drilled"), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with("gone") && l.contains("passed")), "{listing}");

    std::fs::remove_file(dir.path().join("projects/gone.toml")).unwrap();
    let fleet = home.cmd_std().args(["fleet", "--json"]).current_dir(&sub).output().unwrap();
    let register: serde_json::Value =
        serde_json::from_slice(&fleet.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&fleet)));
    let rows = register["rows"].as_array().unwrap();
    let row = |project: &str| rows.iter().find(|r| r["project"] == project).unwrap_or_else(|| panic!("{register}"));
    assert_eq!(row("example")["status"], "OVERDUE", "never drilled: {register}");
    assert_eq!(row("example")["reason"], "never drilled");
    assert_eq!(row("gone")["status"], "RETIRED", "{register}");

    let unknown = home.cmd_std().args(["run", "--plain", "--project", "exampel"]).current_dir(&sub).output().unwrap();
    assert!(stderr_of(&unknown).contains("did you mean `example`?"), "{}", stderr_of(&unknown));
}

#[test]
fn since_the_last_drill_shows_an_edited_slower_step_and_the_first_drill_has_no_baseline() {
    let repo = Repo::new();
    let home = Home::new();
    let shop = repo.path("projects/shop.toml");
    let first = run(&home, &shop);
    assert!(first.status.success(), "{}", stderr_of(&first));
    let first_dir = home.only_drill();
    let report = std::fs::read_to_string(first_dir.join("report.md")).unwrap();
    assert!(
        report.contains(
            "## Since the last drill\n\n- the first drill of this project with this runbook: no baseline yet"
        ),
        "{report}"
    );

    let printed = stdout_of(&first);
    assert!(printed.contains("since the last drill: this is the project's first drill"), "{printed}");

    // The project's deploy changes, and now takes over a second longer.
    let text = std::fs::read_to_string(&shop).unwrap();
    std::fs::write(&shop, format!("{text}[[override]]\nstep = \"deploy\"\nrun = \"sleep 1.3; echo deploy slowly\"\n"))
        .unwrap();
    let second = run(&home, &shop);
    assert!(second.status.success(), "{}", stderr_of(&second));
    // Before it starts, the drill says what changed and how long each step took.
    let printed = stdout_of(&second);
    assert!(printed.contains("since the last drill ("), "{printed}");
    assert!(printed.contains("step `deploy` changed (took 0.0s then)"), "{printed}");
    assert!(printed.contains("step `restore` took 0.0s then"), "{printed}");
    let second_dir = home.drills().into_iter().find(|d| d != &first_dir).unwrap();
    let report = std::fs::read_to_string(second_dir.join("report.md")).unwrap();
    let section = &report[report.find("## Since the last drill").expect("the section")..];
    let first_id = first_dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(section.contains(&format!("- last drill {} on ", &first_id[..8])), "{section}");
    let deploy = section.lines().find(|l| l.starts_with("- deploy")).unwrap_or_else(|| panic!("{section}"));
    assert!(
        deploy.starts_with("- deploy (changed): 0.0s → 1.3s") || deploy.starts_with("- deploy (changed): 0.0s → 1.4s"),
        "{deploy}"
    );
    assert!(deploy.contains("SLOWER: at least 1.5x the median of the last drills"), "{deploy}");
    let restore = section.lines().find(|l| l.starts_with("- restore")).unwrap();
    assert!(!restore.contains("changed") && !restore.contains("SLOWER"), "{restore}");
    assert!(section.contains("RTO trend (oldest first): "), "{section}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(second_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["since_last"]["previous"]["drill_id"], first_id.as_str());
    let html = std::fs::read_to_string(second_dir.join("report.html")).unwrap();
    assert!(html.contains("<h2>Since the last drill</h2>"));
}
