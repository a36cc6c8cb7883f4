//! Project files resolved against a small pattern: what the files say, and
//! every problem at the right file, line and column.

use std::path::Path;

use super::*;

const PATTERN: &str = r#"[runbook]
id = "pattern"
title = "The team's drill"

[vars.project]
prompt = "Project"
[vars.prod_namespace]
[vars.dr_url]
default = "https://dr.example.com"
[vars.db_password]
secret = true

[[step]]
id = "restore"
kind = "command"
run = "inv dr restore"

[[step]]
id = "deploy"
kind = "command"
run = "inv dr deploy"

[[step]]
id = "check-replica"
kind = "manual"
optional = true

[[step]]
id = "smoke"
kind = "http-check"
url = "{{ dr_url }}"
"#;

fn repo(project: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::create_dir_all(dir.path().join("projects")).unwrap();
    std::fs::write(dir.path().join("runbooks/pattern.toml"), PATTERN).unwrap();
    let path = dir.path().join("projects/shop.toml");
    std::fs::write(&path, project).unwrap();
    (dir, path)
}

fn resolved(project: &str) -> Project {
    let (_dir, path) = repo(project);
    match load(&path) {
        Ok(project) => project,
        Err(error) => panic!("{error}"),
    }
}

fn problems(project: &str) -> Vec<(String, usize, usize, String)> {
    let (_dir, path) = repo(project);
    match load(&path) {
        Ok(_) => panic!("expected problems"),
        Err(ProjectError::Invalid(diagnostics)) => diagnostics
            .0
            .into_iter()
            .map(|d| {
                let file = Path::new(&d.path).file_name().unwrap().to_string_lossy().into_owned();
                (file, d.line, d.column, d.message)
            })
            .collect(),
        Err(other) => panic!("{other}"),
    }
}

const HEADER: &str = "[project]\nname = \"shop\"\nrunbook = \"../runbooks/pattern.toml\"\ncadence = \"quarterly\"\n";

#[test]
fn vars_overrides_adds_and_removes_make_the_resolved_runbook() {
    let project = resolved(&format!(
        "{HEADER}[vars]\nprod_namespace = \"shop-production\"\ndb_password = {{ env = \"SHOP_DB_PASSWORD\" }}\n\
         [[override]]\nstep = \"restore\"\nrun = \"inv dr deploy.db-restore\"\ntitle = \"Restore with our task\"\n\
         [[add]]\nafter = \"deploy\"\nid = \"reindex\"\nkind = \"command\"\nrun = \"inv dr search.rebuild-index\"\n\
         [[remove]]\nstep = \"check-replica\"\nreason = \"shop has no assets bucket\"\n"
    ));
    let ids: Vec<&str> = project.runbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["restore", "deploy", "reindex", "smoke"]);
    let restore = project.runbook.step("restore").unwrap();
    assert_eq!(restore.title, "Restore with our task");
    assert!(project.runbook.text.contains("inv dr deploy.db-restore"));
    assert_eq!(project.removed, [("check-replica".to_string(), "shop has no assets bucket".to_string())]);
    assert_eq!(project.cadence.as_deref(), Some("quarterly"));
    assert_eq!(project.runbook.project.as_ref().map(|p| p.text.as_str()), Some("shop"));
    let var = |name: &str| project.runbook.vars.iter().find(|v| v.name == name).unwrap();
    assert_eq!(var("prod_namespace").default.as_ref().unwrap().text, "shop-production");
    assert_eq!(var("project").default.as_ref().unwrap().text, "shop", "the project's name fills `project`");
    assert_eq!(var("db_password").env.as_deref(), Some("SHOP_DB_PASSWORD"));
    assert!(project.runbook.text.starts_with("# The runbook of project `shop`, resolved by drillbook"));
    assert!(is_project(&project.project_text) && !is_project(PATTERN));
}

#[test]
fn every_problem_is_named_at_its_place_in_the_project_file() {
    let found = problems(&format!(
        "{HEADER}[vars]\nprod_namespce = \"x\"\n\
         [[override]]\nstep = \"restor\"\nrun = \"x\"\n\
         [[override]]\nstep = \"smoke\"\nrun = \"x\"\n\
         [[add]]\nafter = \"nowhere\"\nid = \"extra\"\nkind = \"manual\"\n\
         [[remove]]\nstep = \"deploy\"\nreason = \"no\"\n"
    ));
    let messages: Vec<String> = found.iter().map(|(f, l, c, m)| format!("{f}:{l}:{c}: {m}")).collect();
    let text = messages.join("\n");
    for expected in [
        "shop.toml:5:1: `prod_namespce` is not a var of the runbook; did you mean `prod_namespace`?",
        "shop.toml:5:1: the runbook's var `prod_namespace` has no default: set it in `[vars]`",
        "shop.toml:7:1: `[[override]]` of step `restor`: the runbook has no such step; did you mean `restore`?",
        "shop.toml:10:1: `run` does not apply to step `smoke` (a `http-check` step)",
        "shop.toml:13:1: `[[add]]` after `nowhere`: the runbook has no such step",
        "shop.toml:18:8: step `deploy` is required by the runbook: only an optional step can be removed",
    ] {
        assert!(messages.iter().any(|m| m == expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn a_secret_given_a_value_is_refused() {
    let found = problems(&format!("{HEADER}[vars]\nprod_namespace = \"p\"\ndb_password = \"hunter2\"\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].3.contains("`db_password` is a secret: a project file may only name the environment variable"));
    assert!(!found[0].3.contains("hunter2"), "the value is never repeated");
}

#[test]
fn added_steps_may_follow_each_other_but_not_in_a_cycle() {
    let chain = resolved(&format!(
        "{HEADER}[vars]\nprod_namespace = \"p\"\n\
         [[add]]\nafter = \"first\"\nid = \"second\"\nkind = \"manual\"\n\
         [[add]]\nafter = \"deploy\"\nid = \"first\"\nkind = \"manual\"\n"
    ));
    let ids: Vec<&str> = chain.runbook.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["restore", "deploy", "first", "second", "check-replica", "smoke"]);
    let found = problems(&format!(
        "{HEADER}[vars]\nprod_namespace = \"p\"\n\
         [[add]]\nafter = \"b\"\nid = \"a\"\nkind = \"manual\"\n\
         [[add]]\nafter = \"a\"\nid = \"b\"\nkind = \"manual\"\n"
    ));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|p| p.3.contains("cycle")), "{found:?}");
}

#[test]
fn a_missing_pattern_is_named_at_the_runbook_key() {
    let found = problems("[project]\nname = \"shop\"\nrunbook = \"../runbooks/gone.toml\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    let (file, line, column, message) = &found[0];
    assert_eq!((file.as_str(), *line, *column), ("shop.toml", 3, 11));
    assert!(message.starts_with("the runbook `../runbooks/gone.toml` cannot be read"), "{message}");
}

#[test]
fn a_key_of_another_kind_is_refused_even_where_some_kinds_take_it() {
    // `env` is a command's key: an http-check takes none.
    let found = problems(&format!(
        "{HEADER}[vars]\nprod_namespace = \"p\"\n[[override]]\nstep = \"smoke\"\nenv = {{ A = \"b\" }}\n"
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].3, "`env` does not apply to step `smoke` (a `http-check` step)");
    // …and a command step takes it.
    let project = resolved(&format!(
        "{HEADER}[vars]\nprod_namespace = \"p\"\n[[override]]\nstep = \"deploy\"\nenv = {{ A = \"b\" }}\n"
    ));
    assert!(project.runbook.text.contains("A = \"b\""), "{}", project.runbook.text);
}
