//! A Kubernetes API server for integration tests: `tests/servers/k8s_emulator.py` (standard
//! library only) on a free loopback port, plus a kubeconfig, a sandboxed `kubectl`, seeding
//! helpers and the emulator's test hooks.
//!
//! The helpers speak plain HTTP/1.1 through the tests' own client (`support/http.rs`) on
//! purpose: the crate's own Kubernetes client is what the tests exercise, so fixtures must not
//! be written through it. The emulator is started by `support/server.rs`.
//!
//! Include it with `#[path = "support/k8s.rs"] mod k8s;` next to `mod support;`. It depends
//! on `support`, `serde_json` and `tempfile`.
//!
//! What the emulator does, as checked with the real kubectl 1.32 by `tests/k8s_emulator.rs`
//! (the module docstring of the Python file lists everything it implements and leaves out):
//! - Discovery comes in the aggregated form (`apidiscovery.k8s.io/v2`) when asked for, else
//!   the legacy one. `/openapi/v3` holds only PATCH operations with a `fieldValidation`
//!   parameter: that is what makes `kubectl create -f` / `apply -f` leave validation to the
//!   server instead of failing with "failed to download openapi". `/openapi/v2` is a 404.
//! - `kubectl create namespace`, `create deployment`, `create configmap`, `create secret`,
//!   `create cronjob` and `create ingress` send protobuf bodies (typed clients); the emulator
//!   decodes those kinds. Every other write from kubectl, and all of kube-rs, is JSON.
//! - ConfigMaps, Secrets, CronJobs (batch/v1), NetworkPolicies and Ingresses
//!   (networking.k8s.io/v1) are stored and served with the real defaults, validation and
//!   table columns, but nothing acts on them: a CronJob never fires. Secret data must be
//!   base64 (the real 400 "cannot be handled as a Secret" otherwise) and stringData is merged
//!   into data, never stored.
//! - `kubectl scale --all` needs a resource type: `kubectl scale deployments --all
//!   --replicas=0`. It then PATCHes `deployments/NAME/scale` with a JSON merge patch.
//! - `kubectl set image` sends a strategic merge patch; `rollout undo` a JSON patch;
//!   `rollout history` lists ReplicaSets by the deployment's selector and keeps those whose
//!   controller ownerReference has the deployment's uid.
//! - Pods are `ContainerCreating` for the ready delay (0.3 s by default), then `Running`;
//!   deleted and scaled-down pods are `Terminating` for 0.5 s. Rollouts honour maxSurge and
//!   maxUnavailable, so a crash-looping new image leaves the old pods serving.
//! - A watch that resumes from a resourceVersion older than the emulator's history gets
//!   HTTP 200 and one `ERROR` event holding a 410 `Expired` Status, like the real server.
//! - The emulator reports v1.32.4 from `/version`. `/usr/bin/kubectl` on this machine is
//!   the Google Cloud SDK dispatcher, which asks `/version` first and runs the kubectl of the
//!   server's minor version.
//! - [`K8sEmulator::restart`] keeps every object (saved to a state file first) but, like a
//!   restarted API server, forgets the watch history: clients resuming from an older
//!   resourceVersion get 410 and must list again. [`K8sEmulator::restart_empty`] loses all.
// Each test uses only some helpers. `unused` rather than `dead_code`: a test that includes
// this file with `#[allow(dead_code)] mod k8s;` would otherwise trip
// clippy::duplicated_attributes.
#![allow(unused)]

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::http::{Request, ResponseStream, percent_encode};
use crate::support::server::{Launch, Server, test_venv};
use crate::support::wait_for;

const INSTALL_HINT: &str =
    "the Kubernetes emulator needs the test venv: run ./scripts/test (it creates target/test-venv)";
pub const KUBECTL_HINT: &str = "kubectl is not installed: install kubectl: apt-get install kubectl";
/// Python starts in well under a second; 15 s leaves room for a loaded CI box.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// A blocking `kubectl` call that takes longer than this is killed and reported.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// A port nothing listens on, for the kubeconfig's "other" context: below 1024, so no test
/// server can have taken it, and on loopback, so connecting fails at once.
const DEAD_PORT: u16 = 9;

/// A running emulator, killed on drop.
pub struct K8sEmulator {
    /// `http://127.0.0.1:PORT`, stable across restarts.
    pub url: String,
    server: Server,
    /// Holds the emulator's log and state file, and kubectl's HOME and cache.
    dir: tempfile::TempDir,
}

impl K8sEmulator {
    /// Starts the emulator with the test venv's Python: `$DRILLBOOK_TEST_VENV`, else
    /// `<crate>/target/test-venv` (both made by `./scripts/test`). Panics, never skips, when
    /// it is missing.
    pub fn start() -> K8sEmulator {
        K8sEmulator::start_with_venv(&test_venv())
    }

    /// [`K8sEmulator::start`] with an explicit venv directory.
    pub fn start_with_venv(venv: &Path) -> K8sEmulator {
        let python = venv.join("bin").join("python");
        if !python.is_file() {
            panic!("{INSTALL_HINT} (looked for {})", python.display());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/k8s_emulator.py");
        let dir =
            tempfile::Builder::new().prefix("drillbook-k8s-").tempdir().expect("create a temp dir for the emulator");
        for sub in ["home", "kube-cache"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create kubectl's home and cache dirs");
        }
        let state_file = dir.path().join("state.json");
        // It exits with 98 when its port is taken, and another one is tried.
        let server = Launch::new("the Kubernetes emulator", &dir.path().join("emulator.log"), move |port| {
            let mut command = Command::new(&python);
            command
                .arg(&script)
                .arg(port.to_string())
                .arg("--state-file")
                .arg(&state_file)
                // Unbuffered, so the log shows up at once, even when it is killed.
                .env("PYTHONUNBUFFERED", "1")
                // The venv's own packages only; a developer's PYTHONPATH must not leak in.
                .env_remove("PYTHONPATH")
                .env_remove("PYTHONHOME");
            command
        })
        .timeout(START_TIMEOUT)
        .start();
        K8sEmulator { url: format!("http://127.0.0.1:{}", server.port()), server, dir }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The emulator's process id while it runs, e.g. to `SIGSTOP` it for a "server hangs" test.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// Kills the emulator (SIGKILL: open watches and log streams are cut) and waits for it.
    /// What it held is lost unless [`K8sEmulator::save`] ran before.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Writes every object, log, rule and setting to the state file that a restart loads.
    pub fn save(&self) {
        self.hook("save", json!({}));
    }

    /// Saves the state, kills the emulator and starts it again on the same port, as an API
    /// server restart: objects, logs and rules survive; open watches are cut; resourceVersions
    /// keep increasing but resuming from one handed out before answers 410 Expired.
    pub fn restart(&mut self) {
        self.save();
        self.server.restart();
    }

    /// Kills the emulator and starts it again on the same port with nothing in it but the
    /// default namespaces.
    pub fn restart_empty(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_file(self.dir.path().join("state.json"));
        self.server.restart();
    }

    /// The last part of the emulator's output (a line per request, and any traceback).
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    // --- kubectl ------------------------------------------------------------------------------

    /// Writes `dir/kubeconfig` with two contexts: "emulator" (current, namespace "default")
    /// and "other", whose server is a dead loopback port; both use user "test" with a token.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: emulator
  cluster:
    server: {url}
- name: other
  cluster:
    server: http://127.0.0.1:{DEAD_PORT}
users:
- name: test
  user:
    token: emulator-test-token
contexts:
- name: emulator
  context:
    cluster: emulator
    user: test
    namespace: default
- name: other
  context:
    cluster: other
    user: test
    namespace: default
current-context: emulator
preferences: {{}}
",
            url = self.url
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        set_private(&path);
        path
    }

    /// `kubectl ARGS` with only this kubeconfig, and a private HOME and discovery cache (kept
    /// for this emulator's lifetime, so nothing leaks into or out of `~/.kube`), as a
    /// `Command` to adjust or spawn.
    pub fn kubectl_command(&self, kubeconfig: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(kubectl_path());
        command
            .args(args)
            // Nothing from the developer's environment: KUBECONFIG, KUBECTL_* settings,
            // proxies, plugins' variables.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.path().join("kube-cache"))
            .stdin(Stdio::null());
        command
    }

    /// Runs `kubectl ARGS` to completion (killed after 60 s, then this panics with what it
    /// printed) and returns its output, whatever its exit status.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut background = self.spawn_kubectl(kubeconfig, args);
        let (child, dir) = (&mut background.child, background.dir.path());
        // On a timeout, dropping `background` kills kubectl.
        let status = wait_for(&format!("kubectl {args:?} to finish"), KUBECTL_TIMEOUT, || {
            child.try_wait().expect("poll kubectl").ok_or(Printed { dir, emulator: Some(self) })
        });
        Output { status, stdout: background.stdout_bytes(), stderr: background.stderr_bytes() }
    }

    /// `kubectl ARGS` running in the background (`get -w`, `logs -f`), its output going to
    /// files that [`Kubectl::stdout`] reads at any time. Killed on drop.
    pub fn spawn_kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Kubectl {
        let dir = tempfile::Builder::new().prefix("drillbook-kubectl-").tempdir().expect("create a temp dir");
        let stdout = File::create(dir.path().join("stdout")).expect("create kubectl's stdout file");
        let stderr = File::create(dir.path().join("stderr")).expect("create kubectl's stderr file");
        let child = self
            .kubectl_command(kubeconfig, args)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|err| panic!("{KUBECTL_HINT} (running {}: {err})", kubectl_path().display()));
        Kubectl { child, dir, args: args.iter().map(|a| a.to_string()).collect() }
    }

    // --- seeding ----------------------------------------------------------------------------

    /// Creates the namespace unless it exists.
    pub fn create_namespace(&self, namespace: &str) {
        let (status, body) =
            self.request("POST", "/api/v1/namespaces", Some(&json!({"metadata": {"name": namespace}})));
        assert!(status == 201 || status == 409, "create namespace {namespace}: {status} {body}");
    }

    /// Creates or updates a one-container Deployment (labels and selector `app=NAME`, the
    /// container named NAME), creating the namespace first if needed. An update changes the
    /// image and replica count with a strategic merge patch, so it rolls out like
    /// `kubectl set image` does.
    pub fn apply_deployment(&self, namespace: &str, name: &str, image: &str, replicas: u32) {
        self.apply_workload("deployments", namespace, name, image, replicas);
    }

    /// [`K8sEmulator::apply_deployment`] for a StatefulSet (pods NAME-0, NAME-1…).
    pub fn apply_statefulset(&self, namespace: &str, name: &str, image: &str, replicas: u32) {
        self.apply_workload("statefulsets", namespace, name, image, replicas);
    }

    fn apply_workload(&self, plural: &str, namespace: &str, name: &str, image: &str, replicas: u32) {
        self.create_namespace(namespace);
        let collection = format!("/apis/apps/v1/namespaces/{namespace}/{plural}");
        let kind = if plural == "deployments" { "Deployment" } else { "StatefulSet" };
        let object = json!({
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": image}]}
                }
            }
        });
        let (status, body) = self.request("POST", &collection, Some(&object));
        if status == 409 {
            let patch = json!({"spec": {"replicas": replicas,
                "template": {"spec": {"containers": [{"name": name, "image": image}]}}}});
            let (status, body) = self.request_with_type(
                "PATCH",
                &format!("{collection}/{name}"),
                "application/strategic-merge-patch+json",
                Some(&patch),
            );
            assert_eq!(status, 200, "update {kind} {namespace}/{name}: {body}");
        } else {
            assert_eq!(status, 201, "create {kind} {namespace}/{name}: {body}");
        }
    }

    // --- reading ------------------------------------------------------------------------------

    /// GET of an emulator path; panics unless it answers 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.request("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The pods of a namespace, optionally filtered by a label selector (`app=web`), oldest
    /// name first.
    pub fn pods(&self, namespace: &str, label_selector: Option<&str>) -> Vec<Value> {
        let mut path = format!("/api/v1/namespaces/{namespace}/pods");
        if let Some(selector) = label_selector {
            path.push_str(&format!("?labelSelector={}", percent_encode(selector, false)));
        }
        self.get(&path)["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the Deployment has rolled out completely (every replica updated and
    /// available, nothing old left running) and returns it.
    pub fn wait_deployment_ready(&self, namespace: &str, name: &str, timeout: Duration) -> Value {
        let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
        wait_for(&format!("deployment {namespace}/{name} to roll out"), timeout, || {
            let deployment = self.get(&path);
            let wanted = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
            let status = &deployment["status"];
            let count = |field: &str| status[field].as_u64().unwrap_or(0);
            let done = status["observedGeneration"] == deployment["metadata"]["generation"]
                && count("updatedReplicas") == wanted
                && count("availableReplicas") == wanted
                && count("replicas") == wanted;
            done.then_some(deployment)
        })
    }

    // --- hooks ----------------------------------------------------------------------------------

    /// POST `/emulator/PATH` with a JSON body (see the Python module's docstring); panics
    /// unless it answers 200, and returns the answer.
    pub fn hook(&self, path: &str, body: Value) -> Value {
        let path = format!("/emulator/{}", path.trim_start_matches('/').trim_start_matches("emulator/"));
        let (status, answer) = self.request("POST", &path, Some(&body));
        assert_eq!(status, 200, "hook {path} {body}: {answer}");
        answer
    }

    /// Forgets every object, rule and log; back to the default namespaces and settings.
    pub fn reset(&self) {
        self.hook("reset", json!({}));
    }

    /// How long new pods stay ContainerCreating before they run and are ready.
    pub fn set_ready_delay(&self, seconds: f64) {
        self.hook("settings", json!({"ready_delay_seconds": seconds}));
    }

    /// Pods whose image contains `image_contains` fail with `reason`: "CrashLoopBackOff"
    /// (restarts climbing, error lines in the log), "ImagePullBackOff" or "ErrImagePull";
    /// `None` lifts it (the pods then start normally).
    pub fn fail_image(&self, image_contains: &str, reason: Option<&str>) {
        self.hook("image-failure", json!({"image_contains": image_contains, "reason": reason}));
    }

    /// Appends lines to the log of the pod's first container; `kubectl logs -f` sees them.
    pub fn append_log(&self, namespace: &str, pod: &str, lines: &[&str]) {
        self.hook("logs", json!({"namespace": namespace, "pod": pod, "lines": lines}));
    }

    /// Requests with this verb (get, list, watch, create, update, patch, delete…) on this
    /// resource ("deployments", "deployments/scale", "pods/log"…) in this namespace answer
    /// 403 Forbidden with the real server's message for user "test".
    pub fn forbid(&self, verb: &str, resource: &str, namespace: &str) {
        self.hook("forbid", json!({"verb": verb, "resource": resource, "namespace": namespace}));
    }

    /// Removes every forbid rule.
    pub fn allow_all(&self) {
        self.hook("allow", json!({}));
    }

    /// Ends every open watch and log stream: cleanly (end of the chunked body, as a server
    /// timeout does) or `abrupt`ly (the connection is cut).
    pub fn drop_watches(&self, abrupt: bool) {
        self.hook("drop-watches", json!({"abrupt": abrupt}));
    }

    /// Forgets the watch history: resuming from any resourceVersion handed out so far gets 410.
    pub fn compact(&self) {
        self.hook("compact", json!({}));
    }

    /// The watches and log streams open right now, each `{"type": "watch", "resource",
    /// "namespace", "labelSelector", "fieldSelector", "resourceVersion", "format"}` or
    /// `{"type": "log", "namespace", "pod", "container"}`: lets a test wait until a client
    /// is really watching.
    pub fn open_streams(&self) -> Vec<Value> {
        self.get("/emulator/state")["streams"].as_array().cloned().unwrap_or_default()
    }

    /// The last requests (up to 2,000, oldest first), each with method, path, query, status,
    /// contentType, accept, userAgent and seconds.
    pub fn requests(&self) -> Vec<Value> {
        self.get("/emulator/requests")["requests"].as_array().cloned().unwrap_or_default()
    }

    // --- plain HTTP ------------------------------------------------------------------------------

    /// Any JSON request; returns the status and the parsed body (`Value::Null` when empty,
    /// a string when it is not JSON, e.g. logs).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request_with_type(method, path, "application/json", body)
    }

    /// [`K8sEmulator::request`] with a Content-Type, e.g. a patch type.
    pub fn request_with_type(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = Request::new(method, path)
            .header("Content-Type", content_type)
            .body(body.as_bytes())
            .send(&self.url)
            .unwrap_or_else(|err| {
                panic!("{method} {path} to the emulator at {} failed: {err}\nlog:\n{}", self.url, self.log_tail())
            });
        assert!(response.complete, "{method} {path}: the emulator's answer was cut short\nlog:\n{}", self.log_tail());
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        (response.status, value)
    }

    /// Opens a watch (`path_and_query` should have `watch=true`) and returns its events as
    /// they come.
    pub fn watch(&self, path_and_query: &str) -> WatchStream {
        WatchStream::open(&self.url, path_and_query, &[])
    }
}

impl Drop for K8sEmulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `kubectl` running in the background, killed on drop.
pub struct Kubectl {
    child: Child,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl Kubectl {
    /// What it printed on stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout_bytes()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr_bytes()).into_owned()
    }

    fn stdout_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("stdout")).unwrap_or_default()
    }

    fn stderr_bytes(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Waits until its stdout satisfies `done`, and returns it; panics with both outputs on
    /// timeout, or when kubectl exits first without satisfying it.
    pub fn wait_for_stdout(&mut self, what: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let (child, dir, args) = (&mut self.child, self.dir.path(), &self.args);
        wait_for(&format!("{what} from kubectl {args:?}"), timeout, || {
            let printed = Printed { dir, emulator: None };
            let stdout = printed.read("stdout");
            if done(&stdout) {
                return Ok(stdout);
            }
            if let Some(status) = child.try_wait().expect("poll kubectl") {
                panic!("waiting for {what} from kubectl {args:?}: kubectl exited with {status}\n{printed}");
            }
            Err(printed)
        })
    }

    pub fn kill(&mut self) {
        // kill fails only when it already exited, which wait reaps just the same.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a kubectl printed (and the emulator's log, if given), read only when shown.
struct Printed<'a> {
    dir: &'a Path,
    emulator: Option<&'a K8sEmulator>,
}

impl Printed<'_> {
    fn read(&self, name: &str) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join(name)).unwrap_or_default()).into_owned()
    }
}

impl std::fmt::Display for Printed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stdout:\n{}\nstderr:\n{}", self.read("stdout"), self.read("stderr"))?;
        match self.emulator {
            Some(emulator) => write!(f, "\nemulator log:\n{}", emulator.log_tail()),
            None => Ok(()),
        }
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `$DRILLBOOK_TEST_KUBECTL`, else `/usr/bin/kubectl`, else `kubectl` on PATH; panics with
/// the install hint when there is none.
pub fn kubectl_path() -> PathBuf {
    if let Some(path) = std::env::var_os("DRILLBOOK_TEST_KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let usual = PathBuf::from("/usr/bin/kubectl");
    if usual.is_file() {
        return usual;
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("kubectl")).find(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{KUBECTL_HINT}"))
}

/// Runs `kubectl` until its stdout satisfies `done` (polling, for output that settles over
/// time such as READY counts); returns that stdout, or panics with the last output.
pub fn kubectl_until(
    emulator: &K8sEmulator,
    kubeconfig: &Path,
    args: &[&str],
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    wait_for(&format!("kubectl {args:?} to print what was expected"), timeout, || {
        let output = emulator.kubectl(kubeconfig, args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() && done(&stdout) {
            Ok(stdout)
        } else {
            Err(format!("{}\nstdout:\n{stdout}\nstderr:\n{}", output.status, String::from_utf8_lossy(&output.stderr)))
        }
    })
}

/// The whitespace-separated cells of the table row that starts with `name`, from kubectl's
/// table output.
pub fn table_row<'a>(table: &'a str, name: &str) -> Option<Vec<&'a str>> {
    table.lines().map(|line| line.split_whitespace().collect::<Vec<_>>()).find(|cells| cells.first() == Some(&name))
}

/// Newline-delimited JSON watch events from a chunked response.
pub struct WatchStream {
    pub status: u16,
    response: ResponseStream,
    /// Undelivered bytes of the body (a piece may hold part of an event, or several).
    pending: Vec<u8>,
    ended: bool,
}

impl WatchStream {
    pub fn open(url: &str, path_and_query: &str, headers: &[(&str, &str)]) -> WatchStream {
        let response = Request::new("GET", path_and_query)
            .header("Accept", "application/json")
            .headers(headers)
            .open(url)
            .unwrap_or_else(|err| panic!("GET {path_and_query} from {url}: {err}"));
        WatchStream { status: response.status, response, pending: Vec::new(), ended: false }
    }

    /// The next event, or `None` when the stream ended (cleanly or cut) or nothing came
    /// within `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(newline) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=newline).collect();
                return Some(serde_json::from_slice(&line).expect("a watch event is JSON"));
            }
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            if self.ended || remaining.is_zero() {
                return None;
            }
            self.response.set_timeout(remaining.max(Duration::from_millis(1))).expect("set a read timeout");
            match self.response.next_piece() {
                Ok(Some(bytes)) => self.pending.extend_from_slice(&bytes),
                Ok(None) => self.ended = true,
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return None,
                Err(_) => self.ended = true,
            }
        }
    }

    /// Whether the server ended the stream (after the events read so far).
    pub fn ended(&self) -> bool {
        self.ended && self.pending.is_empty()
    }
}

/// Owner-only permissions: the kubeconfig holds a (fake) token, and kubectl-like tools warn
/// about readable credentials.
fn set_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 the kubeconfig");
    }
}
