//! Proves the Kubernetes test infrastructure: the emulator (tests/servers/k8s_emulator.py,
//! started by tests/support/k8s.rs) behaves like a real API server for the real `kubectl`
//! 1.32, in the ways drillbook's Kubernetes steps will rely on, plus the raw API behaviour
//! (watch resume, 410, bookmarks, restarts) that kube-rs's watcher depends on.
//!
//! Every test starts its own emulator. Waits are polls with generous deadlines, never fixed
//! sleeps, so a loaded machine makes them slower, not flaky.

use crate::k8s;
use crate::support;

use std::time::Duration;

use k8s::{K8sEmulator, kubectl_until, table_row};
use serde_json::{Value, json};
use support::http::Request;
use support::wait_for;

/// Long enough for anything on a loaded 2-core box; a pass takes a fraction of it.
const PATIENCE: Duration = Duration::from_secs(30);

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs kubectl and insists it succeeds; returns its stdout.
fn kubectl_ok(emulator: &K8sEmulator, kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let output = emulator.kubectl(kubeconfig, args);
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}\nemulator log:\n{}",
        output.status,
        stdout(&output),
        stderr(&output),
        emulator.log_tail()
    );
    stdout(&output)
}

/// Names of the pods that are not terminating, with their images.
fn live_pods(emulator: &K8sEmulator, namespace: &str, selector: &str) -> Vec<(String, String)> {
    emulator
        .pods(namespace, Some(selector))
        .iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .map(|pod| {
            let name = pod["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            (name, pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

#[test]
fn get_deployments_wide_shows_the_image_and_ready_replicas() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_deployment("prod", "web", "registry.example.com:5000/acme/web:v1", 3);

    let table =
        kubectl_until(&emulator, &kubeconfig, &["get", "deployments", "-o", "wide", "-n", "prod"], PATIENCE, |out| {
            table_row(out, "web").is_some_and(|row| row.get(1) == Some(&"3/3"))
        });
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        "{table}"
    );
    let row = table_row(&table, "web").expect("a row for web");
    assert_eq!(row[2..4], ["3", "3"], "UP-TO-DATE and AVAILABLE: {table}");
    assert_eq!(row[5..], ["web", "registry.example.com:5000/acme/web:v1", "app=web"], "{table}");

    // The pods table the way kubectl prints it from the server's Table.
    let pods = kubectl_ok(&emulator, &kubeconfig, &["get", "pods", "-n", "prod"]);
    let header: Vec<&str> = pods.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{pods}");
    let running = pods.lines().skip(1).filter(|line| line.contains(" 1/1 ") && line.contains(" Running ")).count();
    assert_eq!(running, 3, "{pods}");
}

#[test]
fn set_image_rolls_out_revision_two_and_scales_the_old_replicaset_to_zero() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_deployment("prod", "web", "registry.example.com:5000/acme/web:v1", 3);
    emulator.wait_deployment_ready("prod", "web", PATIENCE);

    let out = kubectl_ok(
        &emulator,
        &kubeconfig,
        &["set", "image", "deployment/web", "web=registry.example.com:5000/acme/web:v2", "-n", "prod"],
    );
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let status =
        kubectl_ok(&emulator, &kubeconfig, &["rollout", "status", "deployment/web", "-n", "prod", "--timeout=60s"]);
    assert!(status.contains("successfully rolled out"), "{status}");

    let history = kubectl_ok(&emulator, &kubeconfig, &["rollout", "history", "deployment/web", "-n", "prod"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    let second =
        kubectl_ok(&emulator, &kubeconfig, &["rollout", "history", "deployment/web", "-n", "prod", "--revision=2"]);
    assert!(second.contains("Image:\tregistry.example.com:5000/acme/web:v2"), "{second}");

    // Every pod left runs v2 once the old ones finished terminating.
    let pods = wait_for("only v2 pods", PATIENCE, || {
        let pods = live_pods(&emulator, "prod", "app=web");
        let all_v2 = pods.len() == 3 && pods.iter().all(|(_, image)| image.ends_with(":v2"));
        (all_v2 && emulator.pods("prod", Some("app=web")).len() == 3).then_some(pods)
    });
    assert!(pods.iter().all(|(name, _)| name.starts_with("web-")), "{pods:?}");

    // The old ReplicaSet stays, at 0, for rollbacks; the new one has revision 2.
    let replicasets = emulator.get("/apis/apps/v1/namespaces/prod/replicasets")["items"].clone();
    let by_revision = |revision: &str| {
        replicasets
            .as_array()
            .into_iter()
            .flatten()
            .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == revision)
            .cloned()
            .unwrap_or_else(|| panic!("no ReplicaSet with revision {revision}: {replicasets}"))
    };
    assert_eq!(by_revision("1")["spec"]["replicas"], 0);
    assert_eq!(by_revision("2")["spec"]["replicas"], 3);
    let old_name = by_revision("1")["metadata"]["name"].as_str().expect("name").to_owned();
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "rs", "-n", "prod"]);
    assert_eq!(table_row(&table, &old_name).expect("old rs row")[1..4], ["0", "0", "0"], "{table}");
}

#[test]
fn scale_all_deployments_to_zero_empties_the_namespace() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    for name in ["api", "db", "worker"] {
        emulator.apply_deployment("dr", name, &format!("example.com/{name}:1"), 2);
    }
    for name in ["api", "db", "worker"] {
        emulator.wait_deployment_ready("dr", name, PATIENCE);
    }

    // `kubectl scale --replicas=0 --all -n dr` is refused by kubectl itself before any
    // request ("You must provide one or more resources"): --all needs a resource type.
    let out = kubectl_ok(&emulator, &kubeconfig, &["scale", "deployments", "--replicas=0", "--all", "-n", "dr"]);
    for name in ["api", "db", "worker"] {
        assert!(out.contains(&format!("deployment.apps/{name} scaled")), "{out}");
    }
    // kubectl goes through the scale subresource with a JSON merge patch.
    let scale_patches: Vec<Value> = emulator
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "PATCH" && r["path"].as_str().is_some_and(|p| p.ends_with("/scale")))
        .collect();
    assert_eq!(scale_patches.len(), 3, "{scale_patches:?}");
    assert!(scale_patches.iter().all(|r| r["contentType"] == "application/merge-patch+json"), "{scale_patches:?}");

    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "deployments", "-n", "dr"]);
    for name in ["api", "db", "worker"] {
        assert_eq!(table_row(&table, name).expect("a row")[1..4], ["0/0", "0", "0"], "{table}");
    }
    wait_for("the pods to terminate", PATIENCE, || {
        let output = emulator.kubectl(&kubeconfig, &["get", "pods", "-n", "dr"]);
        (output.status.success()
            && stdout(&output).is_empty()
            && stderr(&output).contains("No resources found in dr namespace."))
        .then_some(())
    });
}

#[test]
fn get_pods_watch_prints_pods_as_they_appear() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("dr");

    let mut watch = emulator.spawn_kubectl(&kubeconfig, &["get", "pods", "-w", "-n", "dr"]);
    // Create the deployment only once kubectl really watches, or the pods would come in its
    // initial list instead of as watch events.
    wait_for("kubectl to watch pods in dr", PATIENCE, || {
        emulator.open_streams().iter().any(|s| s["resource"] == "pods" && s["namespace"] == "dr").then_some(())
    });
    emulator.apply_deployment("dr", "api", "example.com/api:1", 2);
    let names = wait_for("two pods", PATIENCE, || {
        let pods = live_pods(&emulator, "dr", "app=api");
        (pods.len() == 2).then(|| pods.into_iter().map(|(name, _)| name).collect::<Vec<_>>())
    });
    let out = watch.wait_for_stdout("both pods Running", PATIENCE, |out| {
        names.iter().all(|name| out.lines().any(|line| line.starts_with(name.as_str()) && line.contains(" Running ")))
    });
    assert!(out.starts_with("NAME"), "kubectl prints the header with the first event: {out}");
    // Each pod came first as not running (ADDED, Pending or ContainerCreating), then changed:
    // separate watch events, not one final state.
    for name in &names {
        let first = out.lines().find(|line| line.starts_with(name.as_str())).expect("a line");
        assert!(!first.contains(" Running "), "{out}");
    }
    watch.kill();
}

#[test]
fn logs_follow_streams_lines_appended_later() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_deployment("dr", "api", "example.com/api:1", 1);
    emulator.wait_deployment_ready("dr", "api", PATIENCE);
    let (pod, _) = live_pods(&emulator, "dr", "app=api").pop().expect("a pod");
    emulator.append_log("dr", &pod, &["first line"]);

    let mut logs = emulator.spawn_kubectl(&kubeconfig, &["logs", "-f", &pod, "-n", "dr"]);
    logs.wait_for_stdout("the existing line", PATIENCE, |out| out.contains("first line\n"));
    emulator.append_log("dr", &pod, &["second line", "third line"]);
    let out = logs.wait_for_stdout("the appended lines", PATIENCE, |out| out.contains("third line\n"));
    assert_eq!(out, "first line\nsecond line\nthird line\n");
    logs.kill();

    // Without -f, with the tail and timestamps options.
    let tail = kubectl_ok(&emulator, &kubeconfig, &["logs", &pod, "-n", "dr", "--tail=1", "--timestamps"]);
    assert!(tail.ends_with("Z third line\n") && tail.lines().count() == 1, "{tail}");
}

#[test]
fn forbidden_scale_fails_like_rbac_would() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_deployment("locked", "web", "example.com/web:1", 2);
    emulator.apply_deployment("open", "web", "example.com/web:1", 2);
    emulator.forbid("patch", "deployments/scale", "locked");

    let output = emulator.kubectl(&kubeconfig, &["scale", "deployment/web", "--replicas=0", "-n", "locked"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    // The exact line kubectl prints for a real RBAC denial (other lines, such as warnings,
    // may come with it).
    let expected = "Error from server (Forbidden): deployments.apps \"web\" is forbidden: User \"test\" cannot patch \
                    resource \"deployments/scale\" in API group \"apps\" in the namespace \"locked\"";
    assert!(stderr(&output).lines().any(|line| line == expected), "{}", stderr(&output));
    assert_eq!(emulator.get("/apis/apps/v1/namespaces/locked/deployments/web")["spec"]["replicas"], 2);

    // The rule is for that namespace only, and reading is still allowed.
    kubectl_ok(&emulator, &kubeconfig, &["scale", "deployment/web", "--replicas=0", "-n", "open"]);
    kubectl_ok(&emulator, &kubeconfig, &["get", "deployment/web", "-n", "locked"]);
    emulator.allow_all();
    kubectl_ok(&emulator, &kubeconfig, &["scale", "deployment/web", "--replicas=0", "-n", "locked"]);
}

#[test]
fn crash_looping_and_unpullable_images_show_in_get_pods() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.hook("settings", json!({"crash_restart_seconds": 0.3}));
    emulator.fail_image("bad", Some("CrashLoopBackOff"));
    emulator.fail_image("missing", Some("ImagePullBackOff"));
    emulator.apply_deployment("dr", "crash", "example.com/app:bad-1", 1);
    emulator.apply_deployment("dr", "pull", "example.com/app:missing-1", 1);

    let pods = kubectl_until(&emulator, &kubeconfig, &["get", "pods", "-n", "dr"], PATIENCE, |out| {
        out.lines()
            .any(|line| line.starts_with("crash-") && line.contains("CrashLoopBackOff") && !line.contains(" 1 ("))
            && out.lines().any(|line| line.starts_with("pull-") && line.contains("ImagePullBackOff"))
    });
    let crash_row = pods.lines().find(|line| line.starts_with("crash-")).expect("a crash row");
    let cells: Vec<&str> = crash_row.split_whitespace().collect();
    assert_eq!(cells[1..3], ["0/1", "CrashLoopBackOff"], "{pods}");
    // RESTARTS reads "2 (0s ago)": the count, then when the last one was.
    assert!(cells[3].parse::<u32>().is_ok_and(|restarts| restarts >= 2) && cells[4].starts_with('('), "{pods}");
    let pull_row = pods.lines().find(|line| line.starts_with("pull-")).expect("a pull row");
    assert_eq!(pull_row.split_whitespace().collect::<Vec<_>>()[1..4], ["0/1", "ImagePullBackOff", "0"], "{pods}");

    // The crashed container's output is there; the unpulled one has none to give.
    let crash_pod = crash_row.split_whitespace().next().expect("name");
    let logs = kubectl_ok(&emulator, &kubeconfig, &["logs", crash_pod, "-n", "dr"]);
    assert!(logs.contains("Error: fatal"), "{logs}");
    let pull_pod = pull_row.split_whitespace().next().expect("name");
    let output = emulator.kubectl(&kubeconfig, &["logs", pull_pod, "-n", "dr"]);
    assert!(stderr(&output).contains("is waiting to start: trying and failing to pull image"), "{}", stderr(&output));

    let deployments = kubectl_ok(&emulator, &kubeconfig, &["get", "deployments", "-n", "dr"]);
    assert_eq!(table_row(&deployments, "crash").expect("row")[1], "0/1", "{deployments}");

    // A rollout to a broken image keeps the old pods serving (maxUnavailable 25% of 4 is 1).
    emulator.apply_deployment("dr", "web", "example.com/web:good", 4);
    emulator.wait_deployment_ready("dr", "web", PATIENCE);
    emulator.apply_deployment("dr", "web", "example.com/web:bad", 4);
    let deployment = wait_for("the stuck rollout", PATIENCE, || {
        let d = emulator.get("/apis/apps/v1/namespaces/dr/deployments/web");
        (d["status"]["updatedReplicas"] == 2 && d["status"]["observedGeneration"] == 2).then_some(d)
    });
    assert_eq!(deployment["status"]["availableReplicas"], 3, "{deployment}");
    let live = live_pods(&emulator, "dr", "app=web");
    assert_eq!(live.iter().filter(|(_, image)| image.ends_with(":good")).count(), 3, "{live:?}");
}

#[test]
fn kubectl_create_apply_and_undo_work_with_validation_on() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());

    // These two send protobuf bodies.
    assert_eq!(kubectl_ok(&emulator, &kubeconfig, &["create", "namespace", "apps"]).trim(), "namespace/apps created");
    kubectl_ok(
        &emulator,
        &kubeconfig,
        &["create", "deployment", "gen", "--image=example.com/gen:1", "--replicas=2", "-n", "apps"],
    );
    let generated = emulator.get("/apis/apps/v1/namespaces/apps/deployments/gen");
    assert_eq!(generated["spec"]["replicas"], 2);
    assert_eq!(generated["spec"]["template"]["spec"]["containers"][0]["image"], "example.com/gen:1");

    // create -f and apply -f validate against the server's OpenAPI v3 (no --validate=false).
    let manifest = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: apps\nspec:\n  replicas: 2\n  \
             selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    \
             spec:\n      containers:\n      - {{name: web, image: \"{image}\"}}\n"
        )
    };
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, manifest("example.com/web:1")).expect("write manifest");
    let file = file.to_str().expect("utf-8 path");
    assert_eq!(kubectl_ok(&emulator, &kubeconfig, &["apply", "-f", file]).trim(), "deployment.apps/web created");
    emulator.wait_deployment_ready("apps", "web", PATIENCE);
    std::fs::write(file, manifest("example.com/web:2")).expect("write manifest");
    assert_eq!(kubectl_ok(&emulator, &kubeconfig, &["apply", "-f", file]).trim(), "deployment.apps/web configured");
    emulator.wait_deployment_ready("apps", "web", PATIENCE);

    // A rollback reuses the first ReplicaSet, which becomes revision 3.
    kubectl_ok(&emulator, &kubeconfig, &["rollout", "undo", "deployment/web", "-n", "apps"]);
    let deployment = emulator.wait_deployment_ready("apps", "web", PATIENCE);
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "example.com/web:1");
    let history = kubectl_ok(&emulator, &kubeconfig, &["rollout", "history", "deployment/web", "-n", "apps"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");

    let output = emulator.kubectl(&kubeconfig, &["create", "deployment", "x", "--image=a:1", "-n", "nowhere"]);
    assert!(stderr(&output).contains("namespaces \"nowhere\" not found"), "{}", stderr(&output));
}

#[test]
fn statefulsets_scale_through_their_scale_subresource() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_statefulset("db", "pg", "postgres:16", 2);
    let status =
        kubectl_ok(&emulator, &kubeconfig, &["rollout", "status", "statefulset/pg", "-n", "db", "--timeout=60s"]);
    assert!(status.contains("roll out complete"), "{status}");
    let pods: Vec<String> = live_pods(&emulator, "db", "app=pg").into_iter().map(|(name, _)| name).collect();
    assert_eq!(pods, ["pg-0", "pg-1"]);

    let scale = emulator.get("/apis/apps/v1/namespaces/db/statefulsets/pg/scale");
    assert_eq!((&scale["kind"], &scale["apiVersion"]), (&json!("Scale"), &json!("autoscaling/v1")));
    assert_eq!((&scale["spec"]["replicas"], &scale["status"]["selector"]), (&json!(2), &json!("app=pg")));

    kubectl_ok(&emulator, &kubeconfig, &["scale", "statefulset/pg", "--replicas=0", "-n", "db"]);
    wait_for("pg pods gone", PATIENCE, || emulator.pods("db", Some("app=pg")).is_empty().then_some(()));
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "statefulsets", "-n", "db"]);
    assert_eq!(table_row(&table, "pg").expect("row")[1], "0/0", "{table}");
}

#[test]
fn discovery_answers_the_aggregated_and_the_legacy_forms() {
    let emulator = K8sEmulator::start();
    let aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let response = Request::new("GET", "/apis").header("Accept", aggregated).send(&emulator.url).expect("GET /apis");
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let list: Value = serde_json::from_slice(&response.body).expect("json");
    let deployments = list["items"][0]["versions"][0]["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|r| r["resource"] == "deployments"))
        .cloned()
        .expect("deployments in apps/v1");
    let scale = deployments["subresources"].as_array().and_then(|s| s.iter().find(|s| s["subresource"] == "scale"));
    assert_eq!(
        scale.expect("scale")["responseKind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );

    // kube-rs asks for the legacy form.
    let response = Request::new("GET", "/apis/apps/v1")
        .header("Accept", "application/json")
        .send(&emulator.url)
        .expect("GET /apis/apps/v1");
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let resources: Value = serde_json::from_slice(&response.body).expect("json");
    let names: Vec<&str> =
        resources["resources"].as_array().expect("resources").iter().filter_map(|r| r["name"].as_str()).collect();
    for name in ["deployments", "deployments/scale", "replicasets", "statefulsets", "statefulsets/scale"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(emulator.get("/version")["gitVersion"], "v1.32.4");

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    let resources = kubectl_ok(&emulator, &kubeconfig, &["api-resources", "--no-headers"]);
    for short in ["deploy", "rs", "sts", "po", "ns"] {
        assert!(resources.split_whitespace().any(|word| word == short), "{short}: {resources}");
    }
    // The kubeconfig's other context points at nothing.
    assert_eq!(kubectl_ok(&emulator, &kubeconfig, &["config", "current-context"]).trim(), "emulator");
    let output = emulator.kubectl(&kubeconfig, &["--context", "other", "get", "pods"]);
    assert!(!output.status.success() && stderr(&output).contains("connection refused"), "{}", stderr(&output));
}

#[test]
fn watches_resume_expire_bookmark_and_can_be_dropped() {
    let emulator = K8sEmulator::start();
    emulator.hook("settings", json!({"bookmark_interval_seconds": 0.2}));
    emulator.create_namespace("w");
    let list = emulator.get("/api/v1/namespaces/w/pods");
    let rv = list["metadata"]["resourceVersion"].as_str().expect("list resourceVersion").to_owned();

    // Resuming from the list's resourceVersion delivers what happened after it, with
    // bookmarks carrying the current resourceVersion in between.
    let mut watch =
        emulator.watch(&format!("/api/v1/namespaces/w/pods?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"));
    assert_eq!(watch.status, 200);
    emulator.apply_deployment("w", "api", "example.com/api:1", 1);
    let mut seen = Vec::new();
    wait_for("an ADDED and a BOOKMARK event", PATIENCE, || {
        if let Some(event) = watch.next_event(Duration::from_secs(1)) {
            seen.push(event["type"].as_str().unwrap_or_default().to_owned());
        }
        if seen.contains(&"ADDED".to_owned()) && seen.contains(&"BOOKMARK".to_owned()) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });

    // drop-watches ends the stream cleanly: the client sees the end and reconnects.
    emulator.drop_watches(false);
    wait_for("the dropped watch to end", PATIENCE, || {
        while watch.next_event(Duration::from_millis(100)).is_some() {}
        watch.ended().then_some(())
    });

    // After compaction, the old resourceVersion is gone: HTTP 200 and one ERROR event with a
    // 410 Expired Status, as the real server answers; kube-rs then lists again.
    emulator.compact();
    let mut expired = emulator.watch(&format!("/api/v1/namespaces/w/pods?watch=true&resourceVersion={rv}"));
    assert_eq!(expired.status, 200);
    let event = expired.next_event(PATIENCE).expect("an ERROR event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!((&event["object"]["code"], &event["object"]["reason"]), (&json!(410), &json!("Expired")), "{event}");

    // A streaming list (sendInitialEvents) sends the current pods, then the end bookmark.
    let path = "/api/v1/namespaces/w/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan\
                &allowWatchBookmarks=true";
    let mut streaming = emulator.watch(path);
    let first = streaming.next_event(PATIENCE).expect("the pod");
    assert_eq!((&first["type"], &first["object"]["kind"]), (&json!("ADDED"), &json!("Pod")), "{first}");
    let end = streaming.next_event(PATIENCE).expect("the bookmark");
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true", "{end}");
}

#[test]
fn restart_keeps_objects_but_expires_old_resource_versions() {
    let mut emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.apply_deployment("dr", "api", "example.com/api:1", 2);
    emulator.wait_deployment_ready("dr", "api", PATIENCE);
    let before = live_pods(&emulator, "dr", "app=api");
    let rv = emulator.get("/api/v1/namespaces/dr/pods")["metadata"]["resourceVersion"].as_str().expect("rv").to_owned();
    let url = emulator.url.clone();

    emulator.restart();
    assert_eq!(emulator.url, url);
    assert_eq!(live_pods(&emulator, "dr", "app=api"), before);
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "deployments", "-n", "dr"]);
    assert_eq!(table_row(&table, "api").expect("row")[1], "2/2", "{table}");
    let mut watch = emulator.watch(&format!("/api/v1/namespaces/dr/pods?watch=true&resourceVersion={rv}"));
    let event = watch.next_event(PATIENCE).expect("an ERROR event");
    assert_eq!(event["object"]["code"], 410, "{event}");

    emulator.restart_empty();
    assert!(emulator.pods("dr", None).is_empty());
    let (status, _) = emulator.request("GET", "/api/v1/namespaces/dr", None);
    assert_eq!(status, 404);
}

/// A DR namespace's configuration and policy, as an isolation check reads it: a CronJob
/// that must stay suspended-or-not as declared, a default-deny egress NetworkPolicy, an
/// Ingress with a host rule, and a Secret given as stringData.
const ISOLATION_MANIFEST: &str = r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: db-backup
  namespace: shop-dr
spec:
  schedule: "30 1 * * *"
  timeZone: Europe/London
  suspend: false
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: backup
            image: registry.example.com/backup:2
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-egress
  namespace: shop-dr
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop-dr
spec:
  ingressClassName: nginx
  rules:
  - host: shop-dr.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: v1
kind: Secret
metadata:
  name: api-token
  namespace: shop-dr
stringData:
  token: dr-token-1
"#;

/// Writes the manifest into `dir` and `kubectl apply -f`s it (validation on).
fn apply_manifest(emulator: &K8sEmulator, kubeconfig: &std::path::Path, dir: &std::path::Path, text: &str) -> String {
    let file = dir.join("manifest.yaml");
    std::fs::write(&file, text).expect("write the manifest");
    kubectl_ok(emulator, kubeconfig, &["apply", "-f", file.to_str().expect("utf-8 path")])
}

/// The header names of kubectl's table and the cells of the row named `name`, cut at the
/// header's column starts (two or more spaces apart: "LAST SCHEDULE" is one header), so a
/// cell with spaces (a cron schedule) or an empty one (an Ingress without an address) stays
/// whole and in its column.
fn table_by_header(table: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut lines = table.lines();
    let header = lines.next()?.as_bytes();
    let starts: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != b' ' && (i == 0 || (i >= 2 && header[i - 1] == b' ' && header[i - 2] == b' ')))
        .collect();
    let cell = |line: &str, column: usize| {
        let end = starts.get(column + 1).copied().unwrap_or(usize::MAX).min(line.len());
        line.get(starts[column].min(end)..end).unwrap_or_default().trim().to_owned()
    };
    let header = std::str::from_utf8(header).ok()?;
    let line = lines.find(|line| cell(line, 0) == name)?;
    Some((0..starts.len()).map(|column| (cell(header, column), cell(line, column))).collect())
}

/// [`table_by_header`] that insists on the row and on these headers, in this order, and
/// returns the row's cells.
fn row_under(table: &str, name: &str, headers: &[&str]) -> Vec<String> {
    let row = table_by_header(table, name).unwrap_or_else(|| panic!("no row {name}:\n{table}"));
    let names: Vec<&str> = row.iter().map(|(header, _)| header.as_str()).collect();
    assert_eq!(names, headers, "{table}");
    row.into_iter().map(|(_, cell)| cell).collect()
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn configmaps_secrets_cronjobs_netpols_and_ingresses_read_back_like_the_real_server() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");

    let ns = ["-n", "shop-dr"];
    let create = |args: &[&str]| kubectl_ok(&emulator, &kubeconfig, &[args, &ns[..]].concat());
    assert_eq!(
        create(&["create", "configmap", "app-config", "--from-literal=mode=dr", "--from-literal=region=eu-west-2"])
            .trim(),
        "configmap/app-config created"
    );
    assert_eq!(
        create(&["create", "secret", "generic", "db-credentials", "--from-literal=password=s3cr3t-pw"]).trim(),
        "secret/db-credentials created"
    );
    let applied = apply_manifest(&emulator, &kubeconfig, dir.path(), ISOLATION_MANIFEST);
    for line in [
        "cronjob.batch/db-backup created",
        "networkpolicy.networking.k8s.io/default-deny-egress created",
        "ingress.networking.k8s.io/shop created",
        "secret/api-token created",
    ] {
        assert!(applied.lines().any(|l| l == line), "{line}: {applied}");
    }
    // kubectl's create generators send protobuf, which the emulator decodes.
    let posts: Vec<Value> = emulator
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().is_some_and(|p| p.starts_with("/api/v1/namespaces/")))
        .collect();
    assert!(
        posts.iter().filter(|r| r["contentType"] == "application/vnd.kubernetes.protobuf").count() >= 2,
        "{posts:?}"
    );

    // The default tables, with the real server's columns.
    let get = |kind: &str| kubectl_ok(&emulator, &kubeconfig, &[&["get", kind][..], &ns[..]].concat());
    let configmaps = get("configmaps");
    assert_eq!(row_under(&configmaps, "app-config", &["NAME", "DATA", "AGE"])[1], "2", "{configmaps}");
    let secrets = get("secrets");
    let headers = ["NAME", "TYPE", "DATA", "AGE"];
    assert_eq!(row_under(&secrets, "db-credentials", &headers)[1..3], ["Opaque", "1"], "{secrets}");
    assert_eq!(row_under(&secrets, "api-token", &headers)[1..3], ["Opaque", "1"], "{secrets}");
    let cronjobs = get("cronjobs");
    let row = row_under(
        &cronjobs,
        "db-backup",
        &["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
    );
    assert_eq!(row[1..6], ["30 1 * * *", "Europe/London", "False", "0", "<none>"], "{cronjobs}");
    let policies = get("networkpolicies");
    // An empty podSelector selects every pod; kubectl prints it as <none>.
    assert_eq!(row_under(&policies, "default-deny-egress", &["NAME", "POD-SELECTOR", "AGE"])[1], "<none>");
    let ingresses = get("ingresses");
    let row = row_under(&ingresses, "shop", &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]);
    assert_eq!(row[1..5], ["nginx", "shop-dr.example.com", "", "80"], "{ingresses}");
    // The short names resolve through discovery.
    for short in ["cm", "cj", "netpol", "ing"] {
        assert!(get(short).starts_with("NAME "), "{short}");
    }

    // The stored objects: Secret data is base64, stringData went into it and is gone.
    let json = |what: &str| -> Value {
        let out = kubectl_ok(&emulator, &kubeconfig, &[&["get", what, "-o", "json"][..], &ns[..]].concat());
        serde_json::from_str(&out).unwrap_or_else(|err| panic!("{what} -o json: {err}: {out}"))
    };
    let secret = json("secret/db-credentials");
    assert_eq!((&secret["type"], &secret["data"]), (&json!("Opaque"), &json!({"password": base64("s3cr3t-pw")})));
    let token = json("secret/api-token");
    assert_eq!(token["data"], json!({"token": base64("dr-token-1")}), "{token}");
    assert!(token.get("stringData").is_none(), "{token}");
    let configmap = json("configmap/app-config");
    assert_eq!(configmap["data"], json!({"mode": "dr", "region": "eu-west-2"}));
    let cronjob = json("cronjob/db-backup");
    assert_eq!((&cronjob["spec"]["suspend"], &cronjob["spec"]["concurrencyPolicy"]), (&json!(false), &json!("Allow")));
    assert_eq!(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"], "backup");
    let policy = json("networkpolicy/default-deny-egress");
    assert_eq!(policy["spec"], json!({"podSelector": {}, "policyTypes": ["Egress"]}));
    let ingress = json("ingress/shop");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "shop-dr.example.com");
    assert_eq!(ingress["status"], json!({"loadBalancer": {}}));
}

#[test]
fn patching_a_cronjob_to_suspend_it_shows_true_in_the_suspend_column() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");
    apply_manifest(&emulator, &kubeconfig, dir.path(), ISOLATION_MANIFEST);
    let columns = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"];
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "cronjob", "db-backup", "-n", "shop-dr"]);
    assert_eq!(row_under(&table, "db-backup", &columns)[3], "False", "{table}");

    let out = kubectl_ok(
        &emulator,
        &kubeconfig,
        &["patch", "cronjob", "db-backup", "-n", "shop-dr", "-p", r#"{"spec":{"suspend":true}}"#],
    );
    assert_eq!(out.trim(), "cronjob.batch/db-backup patched");
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "cronjobs", "-n", "shop-dr"]);
    assert_eq!(row_under(&table, "db-backup", &columns)[3], "True", "{table}");
    let cronjob = emulator.get("/apis/batch/v1/namespaces/shop-dr/cronjobs/db-backup");
    assert_eq!((&cronjob["spec"]["suspend"], &cronjob["metadata"]["generation"]), (&json!(true), &json!(2)));
    // Patching it to what it already is changes nothing, so the generation stays.
    kubectl_ok(
        &emulator,
        &kubeconfig,
        &["patch", "cj", "db-backup", "-n", "shop-dr", "-p", r#"{"spec":{"suspend":true}}"#],
    );
    assert_eq!(emulator.get("/apis/batch/v1/namespaces/shop-dr/cronjobs/db-backup")["metadata"]["generation"], 2);
}

#[test]
fn forbidden_secret_list_fails_like_rbac_would() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    for namespace in ["shop-production", "shop-dr"] {
        emulator.create_namespace(namespace);
        kubectl_ok(
            &emulator,
            &kubeconfig,
            &["create", "secret", "generic", "db", "--from-literal=a=b", "-n", namespace],
        );
    }
    emulator.forbid("list", "secrets", "shop-production");

    let output = emulator.kubectl(&kubeconfig, &["get", "secrets", "-n", "shop-production"]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let expected = "Error from server (Forbidden): secrets is forbidden: User \"test\" cannot list resource \
                    \"secrets\" in API group \"\" in the namespace \"shop-production\"";
    assert!(stderr(&output).lines().any(|line| line == expected), "{}", stderr(&output));

    // Only listing there is denied: another namespace lists, and a get by name still works.
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "secrets", "-n", "shop-dr"]);
    assert!(table_row(&table, "db").is_some(), "{table}");
    kubectl_ok(&emulator, &kubeconfig, &["get", "secret", "db", "-n", "shop-production"]);
    emulator.allow_all();
    kubectl_ok(&emulator, &kubeconfig, &["get", "secrets", "-n", "shop-production"]);
}

#[test]
fn get_all_includes_cronjobs() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");
    apply_manifest(&emulator, &kubeconfig, dir.path(), ISOLATION_MANIFEST);
    emulator.apply_deployment("shop-dr", "web", "example.com/web:1", 1);
    emulator.wait_deployment_ready("shop-dr", "web", PATIENCE);

    let all = kubectl_ok(&emulator, &kubeconfig, &["get", "all", "-n", "shop-dr"]);
    // One table per kind; the CronJob's has its own columns.
    let cronjobs = all.split("\n\n").find(|table| table.contains("cronjob.batch/")).unwrap_or_else(|| panic!("{all}"));
    let row = row_under(
        cronjobs,
        "cronjob.batch/db-backup",
        &["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"],
    );
    assert_eq!(row[1], "30 1 * * *", "{all}");
    assert!(all.contains("deployment.apps/web"), "{all}");
    // "all" is a category: the config and policy kinds are not in it, as on a real server.
    for other in ["secret/", "configmap/", "networkpolicy.", "ingress."] {
        assert!(!all.contains(other), "{other}: {all}");
    }
}

#[test]
fn raw_lists_of_ingresses_and_secrets_answer_their_list_kinds() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");
    apply_manifest(&emulator, &kubeconfig, dir.path(), ISOLATION_MANIFEST);

    let list = |path: &str| -> Value {
        let response = Request::new("GET", path).header("Accept", "application/json").send(&emulator.url).expect(path);
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        serde_json::from_slice(&response.body).expect("json")
    };
    let ingresses = list("/apis/networking.k8s.io/v1/namespaces/shop-dr/ingresses");
    assert_eq!((&ingresses["kind"], &ingresses["apiVersion"]), (&json!("IngressList"), &json!("networking.k8s.io/v1")));
    let items = ingresses["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{ingresses}");
    assert_eq!(items[0]["metadata"]["name"], "shop");
    assert!(ingresses["metadata"]["resourceVersion"].as_str().is_some_and(|rv| !rv.is_empty()), "{ingresses}");

    let secrets = list("/api/v1/namespaces/shop-dr/secrets");
    assert_eq!((&secrets["kind"], &secrets["apiVersion"]), (&json!("SecretList"), &json!("v1")));
    let names: Vec<&str> =
        secrets["items"].as_array().expect("items").iter().filter_map(|s| s["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["api-token"], "{secrets}");
    assert_eq!(secrets["items"][0]["data"]["token"], base64("dr-token-1"));

    // Every namespace, and a field selector on the Secret's type.
    let all = list("/api/v1/secrets?fieldSelector=type%3DOpaque");
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1), "{all}");
    let none = list("/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls");
    assert_eq!(none["items"], json!([]), "{none}");

    // Both new groups are discoverable, legacy and aggregated.
    let batch = list("/apis/batch/v1");
    assert_eq!(batch["resources"][0]["name"], "cronjobs", "{batch}");
    let aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let response = Request::new("GET", "/apis").header("Accept", aggregated).send(&emulator.url).expect("GET /apis");
    let groups: Value = serde_json::from_slice(&response.body).expect("json");
    let names: Vec<&str> =
        groups["items"].as_array().expect("items").iter().filter_map(|g| g["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["apps", "batch", "networking.k8s.io"], "{groups}");
}

#[test]
fn secret_data_must_be_base64_and_string_data_is_merged_into_it() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");

    // Plain text where base64 belongs: the real server's decoding error, byte offset and all.
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: shop-dr}\ndata: {user: admin}\n",
    )
    .expect("write");
    let output = emulator.kubectl(&kubeconfig, &["apply", "-f", file.to_str().expect("utf-8 path")]);
    assert!(!output.status.success(), "{}", stdout(&output));
    let expected = format!(
        "Error from server (BadRequest): error when creating \"{}\": Secret in version \"v1\" cannot be handled as a \
         Secret: illegal base64 data at input byte 4",
        file.display()
    );
    assert!(stderr(&output).lines().any(|line| line == expected), "{}", stderr(&output));
    let (status, _) = emulator.request("GET", "/api/v1/namespaces/shop-dr/secrets/bad", None);
    assert_eq!(status, 404);

    // A patch whose result does not decode is a 422 on the patch.
    kubectl_ok(
        &emulator,
        &kubeconfig,
        &["create", "secret", "generic", "db", "--from-literal=user=dr_app", "-n", "shop-dr"],
    );
    let output =
        emulator.kubectl(&kubeconfig, &["patch", "secret", "db", "-n", "shop-dr", "-p", r#"{"data":{"x":"billy"}}"#]);
    assert!(
        !output.status.success() && stderr(&output).contains("illegal base64 data at input byte 4"),
        "{}",
        stderr(&output)
    );
    let (status, body) = emulator.request_with_type(
        "PATCH",
        "/api/v1/namespaces/shop-dr/secrets/db",
        "application/merge-patch+json",
        Some(&json!({"data": {"x": "billy"}})),
    );
    assert_eq!((status, &body["reason"]), (422, &json!("Invalid")), "{body}");

    // stringData in a patch lands in data, base64-encoded, and is not stored.
    kubectl_ok(
        &emulator,
        &kubeconfig,
        &["patch", "secret", "db", "-n", "shop-dr", "--type=merge", "-p", r#"{"stringData":{"password":"s3cr3t-pw"}}"#],
    );
    let secret = emulator.get("/api/v1/namespaces/shop-dr/secrets/db");
    assert_eq!(secret["data"], json!({"user": base64("dr_app"), "password": base64("s3cr3t-pw")}), "{secret}");
    assert!(secret.get("stringData").is_none(), "{secret}");
}

#[test]
fn kubectl_create_cronjob_and_ingress_send_protobuf_the_emulator_decodes() {
    let emulator = K8sEmulator::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = emulator.kubeconfig(dir.path());
    emulator.create_namespace("shop-dr");

    let out = kubectl_ok(
        &emulator,
        &kubeconfig,
        &[
            "create",
            "cronjob",
            "report",
            "--image=example.com/report:3",
            "--schedule=*/10 * * * *",
            "-n",
            "shop-dr",
            "--",
            "report",
            "--daily",
        ],
    );
    assert_eq!(out.trim(), "cronjob.batch/report created");
    let out = kubectl_ok(
        &emulator,
        &kubeconfig,
        &[
            "create",
            "ingress",
            "shop",
            "--class=nginx",
            "--rule=shop-dr.example.com/api*=api:8080",
            "--rule=www.example.com/=web:http",
            "-n",
            "shop-dr",
        ],
    );
    assert_eq!(out.trim(), "ingress.networking.k8s.io/shop created");
    let posts: Vec<Value> = emulator.requests().into_iter().filter(|r| r["method"] == "POST").collect();
    for resource in ["cronjobs", "ingresses"] {
        let post = posts.iter().find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(resource)));
        assert_eq!(post.expect("the POST")["contentType"], "application/vnd.kubernetes.protobuf", "{posts:?}");
    }

    let cronjob = emulator.get("/apis/batch/v1/namespaces/shop-dr/cronjobs/report");
    assert_eq!(cronjob["spec"]["schedule"], "*/10 * * * *");
    let pod = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "OnFailure", "{cronjob}");
    assert_eq!(pod["containers"][0]["image"], "example.com/report:3", "{cronjob}");
    assert_eq!(pod["containers"][0]["command"], json!(["report", "--daily"]), "{cronjob}");

    let ingress = emulator.get("/apis/networking.k8s.io/v1/namespaces/shop-dr/ingresses/shop");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let rules = &ingress["spec"]["rules"];
    assert_eq!(
        rules[0],
        json!({"host": "shop-dr.example.com", "http": {"paths": [{"path": "/api", "pathType": "Prefix",
            "backend": {"service": {"name": "api", "port": {"number": 8080}}}}]}}),
        "{ingress}"
    );
    assert_eq!(rules[1]["http"]["paths"][0]["backend"]["service"]["port"], json!({"name": "http"}), "{ingress}");
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "ingress", "-n", "shop-dr"]);
    let row = row_under(&table, "shop", &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]);
    assert_eq!(row[2], "shop-dr.example.com,www.example.com", "{table}");

    // Its status subresource gives it an ADDRESS, as an ingress controller would.
    let (status, body) = emulator.request_with_type(
        "PATCH",
        "/apis/networking.k8s.io/v1/namespaces/shop-dr/ingresses/shop/status",
        "application/merge-patch+json",
        Some(&json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})),
    );
    assert_eq!(status, 200, "{body}");
    let table = kubectl_ok(&emulator, &kubeconfig, &["get", "ingress", "-n", "shop-dr"]);
    assert_eq!(row_under(&table, "shop", &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"])[3], "203.0.113.7");
}

#[test]
#[should_panic(expected = "run ./scripts/test")]
fn a_missing_venv_panics_with_the_install_hint() {
    let empty = tempfile::tempdir().expect("tempdir");
    K8sEmulator::start_with_venv(empty.path());
}
