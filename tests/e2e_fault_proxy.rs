//! Proves the fault proxy is fit for purpose against the real test bed: it is
//! invisible when no rule matches, and the faults it injects reach real helm 3
//! and helm 4 as the errors helm prints in production. Later e2e tests rely
//! on exactly that when they break a `helm rollback` half-way through.
//!
//! Needs the bed's variables (`source RUNDIR/env` after `testbed/up.sh RUNDIR`).

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fault_proxy::{Fault, FaultProxy, Rule, SeenRequest};
use tempfile::TempDir;

/// A hung helm must fail the test, not the CI run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// The running test bed, as `testbed/up.sh` describes it in `RUNDIR/env`.
struct Bed {
    kubeconfig: PathBuf,
    server: String,
    token: String,
    ca: Option<PathBuf>,
    helm3: PathBuf,
    helm4: PathBuf,
    kubectl: PathBuf,
}

/// `None` only when e2e tests were skipped on purpose; a bed that is simply
/// missing must fail loudly, or a broken setup would pass as green.
fn bed() -> Option<Bed> {
    if std::env::var_os("HSR_TESTBED_KUBECONFIG").is_none() {
        if std::env::var("HSR_SKIP_E2E").as_deref() == Ok("1") {
            println!("e2e skipped: HSR_SKIP_E2E=1");
            return None;
        }
        panic!(
            "test bed not running: run ./scripts/test, or set HSR_SKIP_E2E=1 to skip e2e tests explicitly"
        );
    }
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set; the test bed env is incomplete"))
    };
    let ca = std::env::var("HSR_TESTBED_CA").unwrap_or_default();
    Some(Bed {
        kubeconfig: var("HSR_TESTBED_KUBECONFIG").into(),
        server: var("HSR_TESTBED_SERVER"),
        token: var("HSR_TESTBED_TOKEN"),
        ca: (!ca.is_empty()).then(|| ca.into()),
        helm3: var("HSR_HELM3").into(),
        helm4: var("HSR_HELM4").into(),
        kubectl: var("HSR_KUBECTL").into(),
    })
}

struct Output {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Output {
    fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    fn ok(self) -> Output {
        assert!(self.success, "expected success: {}", self.describe());
        self
    }

    fn failed(self) -> Output {
        assert!(!self.success, "expected failure: {}", self.describe());
        self
    }
}

/// Runs with a deadline; pipes are drained on threads so a chatty child
/// cannot block on a full pipe while we wait for it.
fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} still running after {COMMAND_TIMEOUT:?}; stderr so far:\n{}",
                stderr.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(25));
    };
    Output {
        success: status.success(),
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        what,
    }
}

#[derive(Clone, Copy, Debug)]
enum Helm {
    V3,
    V4,
}

/// One test's world: its own namespace, proxy, helm homes and chart, so tests
/// can run in parallel without seeing each other's releases or faults.
struct Case {
    bed: Bed,
    helm: Helm,
    ns: String,
    proxy: FaultProxy,
    proxy_kubeconfig: PathBuf,
    chart: PathBuf,
    dir: TempDir,
}

impl Case {
    fn new(helm: Helm, label: &str) -> Option<Case> {
        let bed = bed()?;
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let ns = format!(
            "hsr-fp-{label}-{}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            nanos % 100_000
        );
        assert!(ns.len() <= 63, "namespace name too long: {ns}");

        let dir = tempfile::tempdir().expect("tempdir");
        let proxy = FaultProxy::start(&bed.server, bed.ca.as_deref()).expect("starting proxy");
        let proxy_kubeconfig = dir.path().join("proxy.kubeconfig");
        proxy
            .write_kubeconfig(&proxy_kubeconfig, &bed.token)
            .expect("writing proxy kubeconfig");
        let chart = write_chart(dir.path());
        let case = Case {
            bed,
            helm,
            ns,
            proxy,
            proxy_kubeconfig,
            chart,
            dir,
        };
        case.kubectl_direct(&["create", "namespace", &case.ns]).ok();
        Some(case)
    }

    fn helm(&self, args: &[&str]) -> Output {
        let bin = match self.helm {
            Helm::V3 => &self.bed.helm3,
            Helm::V4 => &self.bed.helm4,
        };
        let mut cmd = Command::new(bin);
        let home = self.dir.path().join("helm-home");
        for var in [
            "HELM_NAMESPACE",
            "HELM_KUBECONTEXT",
            "HELM_KUBETOKEN",
            "HELM_KUBEAPISERVER",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("KUBECONFIG", &self.proxy_kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .args(args)
            .args(["--namespace", &self.ns]);
        run(cmd)
    }

    fn install(&self, release: &str) -> Output {
        let chart = self.chart.to_str().expect("utf-8 path");
        self.helm(&["install", release, chart])
    }

    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bed.kubectl);
        cmd.env_remove("KUBECONFIG")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args);
        run(cmd)
    }

    /// Setup and cleanup bypass the proxy so a fault rule cannot break them.
    fn kubectl_direct(&self, args: &[&str]) -> Output {
        self.kubectl(&self.bed.kubeconfig, args)
    }

    fn kubectl_via_proxy(&self, args: &[&str]) -> Output {
        self.kubectl(&self.proxy_kubeconfig, args)
    }

    /// Release names and statuses from `helm list` (deployed and failed ones;
    /// helm 4 dropped `--all`).
    fn releases(&self) -> Vec<(String, String)> {
        let out = self.helm(&["list", "--output", "json"]).ok();
        let list: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("helm list printed no JSON ({e}): {}", out.describe()));
        list.as_array()
            .expect("helm list JSON is an array")
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn requests_matching(&self, method: &str, path: &regex::Regex) -> Vec<SeenRequest> {
        self.proxy
            .requests()
            .into_iter()
            .filter(|r| r.method == method && path.is_match(&r.path))
            .collect()
    }

    fn dump_requests(&self) -> String {
        self.proxy
            .requests()
            .iter()
            .map(|r| format!("  {r}\n"))
            .collect()
    }

    /// The collection path of a namespaced core resource, with or without a
    /// query string, but not an individual object below it.
    fn collection(&self, resource: &str) -> String {
        format!(
            "^/api/v1/namespaces/{}/{resource}(\\?|$)",
            regex::escape(&self.ns)
        )
    }

    /// The collection and every object in it.
    fn collection_and_objects(&self, resource: &str) -> String {
        format!(
            "^/api/v1/namespaces/{}/{resource}([/?]|$)",
            regex::escape(&self.ns)
        )
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        // Best effort: `--wait=false` because a bare apiserver may have no
        // namespace controller to ever finish the deletion.
        let out = self.kubectl_direct(&["delete", "namespace", &self.ns, "--wait=false"]);
        if !out.success {
            eprintln!("cleanup failed: {}", out.describe());
        }
    }
}

/// The smallest chart that makes helm create a real object: one ConfigMap.
fn write_chart(dir: &Path) -> PathBuf {
    let chart = dir.join("fp-probe");
    std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: fp-probe\nversion: 0.1.0\n",
    )
    .expect("Chart.yaml");
    std::fs::write(chart.join("values.yaml"), "value: one\n").expect("values.yaml");
    std::fs::write(
        chart.join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-probe\ndata:\n  value: {{ .Values.value | quote }}\n",
    )
    .expect("configmap template");
    chart
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    println!("{what}: {:.1}s", start.elapsed().as_secs_f64());
    result
}

fn pass_through(helm: Helm) {
    let Some(case) = Case::new(helm, "pass") else {
        return;
    };

    let out = case
        .kubectl_via_proxy(&["get", "namespaces", "-o", "name"])
        .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("namespace/{}", case.ns)),
        "kubectl through the proxy does not list our namespace: {}",
        out.describe()
    );

    case.install("probe").ok();
    let releases = case.releases();
    assert!(
        releases.contains(&("probe".to_owned(), "deployed".to_owned())),
        "helm list through the proxy does not show probe as deployed: {releases:?}"
    );
    let out = case
        .kubectl_via_proxy(&[
            "get",
            "configmap",
            "probe-probe",
            "-n",
            &case.ns,
            "-o",
            "jsonpath={.data.value}",
        ])
        .ok();
    assert_eq!(out.stdout, "one", "{}", out.describe());

    let seen = case.proxy.requests();
    assert!(
        seen.iter().all(|r| r.fault.is_none()),
        "no rule was set, yet requests were faulted:\n{}",
        case.dump_requests()
    );
    // The release record is the one write every helm version must make.
    let secrets = regex::Regex::new(&case.collection("secrets")).expect("regex");
    assert_eq!(
        case.requests_matching("POST", &secrets).len(),
        1,
        "helm's release record did not go through the proxy:\n{}",
        case.dump_requests()
    );
    println!(
        "{helm:?} install through the proxy made these requests:\n{}",
        case.dump_requests()
    );
}

/// The message client-go takes from our Status body, or its generic text for
/// a 503 whose body it could not decode; either proves the 503 got through.
fn mentions_503(stderr: &str) -> bool {
    stderr.contains("the server is currently unable to handle the request")
        || stderr.contains("Service Unavailable")
}

fn service_unavailable(helm: Helm) {
    let Some(case) = Case::new(helm, "503") else {
        return;
    };
    case.install("probe").ok();

    // Any method: helm 3 reads then patches the ConfigMap on upgrade, helm 4
    // applies it server-side; whichever request comes first must fail.
    case.proxy.add_rule(
        Rule::new(
            None,
            &case.collection_and_objects("configmaps"),
            Fault::ServiceUnavailable,
        )
        .expect("rule"),
    );
    let chart = case.chart.to_str().expect("utf-8 path");
    let out = timed(&format!("{helm:?} upgrade hitting 503"), || {
        case.helm(&["upgrade", "probe", chart, "--set", "value=two"])
    })
    .failed();
    println!("{helm:?} upgrade against 503 printed:\n{}", out.stderr);
    assert!(
        mentions_503(&out.stderr),
        "helm did not report the 503: {}",
        out.describe()
    );
    assert!(
        !case.proxy.faulted_requests().is_empty(),
        "helm failed, but not because of the proxy:\n{}",
        case.dump_requests()
    );

    // A fresh install fails the same way, on the ConfigMap's creation.
    let out = timed(&format!("{helm:?} install hitting 503"), || {
        case.install("second")
    })
    .failed();
    println!("{helm:?} install against 503 printed:\n{}", out.stderr);
    assert!(
        mentions_503(&out.stderr),
        "helm did not report the 503: {}",
        out.describe()
    );

    // With the rule gone the cluster is reachable again: the proxy state, not
    // the cluster, caused the failures.
    case.proxy.clear_rules();
    case.helm(&["upgrade", "probe", chart, "--set", "value=three"])
        .ok();
}

fn mentions_reset(stderr: &str) -> bool {
    stderr.contains("connection reset by peer") || stderr.contains("EOF")
}

fn connection_reset(helm: Helm) {
    let Some(case) = Case::new(helm, "reset") else {
        return;
    };
    // client-go retries GETs that hit a reset, which would hide the fault;
    // the POST creating the release record is a write it never retries, and
    // both helm versions make it on every install.
    let secrets = case.collection("secrets");
    case.proxy
        .add_rule(Rule::new(Some("POST"), &secrets, Fault::Reset).expect("rule"));
    let out = timed(&format!("{helm:?} install hitting reset"), || {
        case.install("probe")
    })
    .failed();
    println!("{helm:?} install against reset printed:\n{}", out.stderr);
    assert!(
        mentions_reset(&out.stderr),
        "helm did not report the reset: {}",
        out.describe()
    );
    let faulted = case.proxy.faulted_requests();
    assert_eq!(faulted.len(), 1, "{}", case.dump_requests());
    assert_eq!(faulted[0].fault, Some(Fault::Reset));

    // The same on a resource write, later in the install: helm 3 creates the
    // ConfigMap with POST, helm 4 with a server-side-apply PATCH.
    case.proxy.clear_rules();
    let configmaps = case.collection_and_objects("configmaps");
    for method in ["POST", "PATCH", "PUT"] {
        case.proxy
            .add_rule(Rule::new(Some(method), &configmaps, Fault::Reset).expect("rule"));
    }
    let out = timed(
        &format!("{helm:?} install hitting reset on the ConfigMap"),
        || case.install("second"),
    )
    .failed();
    println!(
        "{helm:?} install with a reset on the ConfigMap write printed:\n{}",
        out.stderr
    );
    assert!(
        mentions_reset(&out.stderr),
        "helm did not report the reset: {}",
        out.describe()
    );
    // Exactly one more fault, on the ConfigMap write: a write is never
    // retried, so the reset is what helm saw.
    let faulted = case.proxy.faulted_requests();
    assert!(
        faulted.len() == 2 && faulted[1].path.contains("/configmaps"),
        "expected one reset ConfigMap write after the release-record one:\n{}",
        case.dump_requests()
    );
    assert!(
        out.stderr.contains("/configmaps"),
        "helm's error does not name the ConfigMap request: {}",
        out.describe()
    );
}

fn after_n(helm: Helm) {
    let Some(case) = Case::new(helm, "after") else {
        return;
    };
    let secrets = case.collection("secrets");
    case.proxy.add_rule(
        Rule::new(Some("POST"), &secrets, Fault::ServiceUnavailable)
            .expect("rule")
            .after(2)
            .times(1),
    );

    // One release-record POST per install: the first two pass, the third
    // faults, and with the single fault spent the fourth passes again.
    case.install("first").ok();
    case.install("second").ok();
    let out = case.install("third").failed();
    assert!(
        mentions_503(&out.stderr),
        "helm did not report the 503: {}",
        out.describe()
    );
    case.install("fourth").ok();

    let posts = case.requests_matching("POST", &regex::Regex::new(&secrets).expect("regex"));
    let faults: Vec<_> = posts.iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [None, None, Some(Fault::ServiceUnavailable), None],
        "release-record POSTs:\n{}",
        case.dump_requests()
    );
    let mut names: Vec<_> = case.releases().into_iter().map(|(name, _)| name).collect();
    names.sort();
    assert_eq!(names, ["first", "fourth", "second"]);
}

#[test]
fn helm3_pass_through() {
    pass_through(Helm::V3);
}

#[test]
fn helm4_pass_through() {
    pass_through(Helm::V4);
}

#[test]
fn helm3_sees_503() {
    service_unavailable(Helm::V3);
}

#[test]
fn helm4_sees_503() {
    service_unavailable(Helm::V4);
}

#[test]
fn helm3_sees_connection_reset() {
    connection_reset(Helm::V3);
}

#[test]
fn helm4_sees_connection_reset() {
    connection_reset(Helm::V4);
}

#[test]
fn helm3_after_n_passes_first_n() {
    after_n(Helm::V3);
}

#[test]
fn helm4_after_n_passes_first_n() {
    after_n(Helm::V4);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Watches are long-lived chunked responses; helm 4's `--wait` and kubectl
/// both depend on events arriving while the response is still open.
#[test]
fn watch_streams_through_proxy() {
    let Some(case) = Case::new(Helm::V3, "watch") else {
        return;
    };
    let mut watch = Command::new(&case.bed.kubectl);
    watch
        .env_remove("KUBECONFIG")
        .arg("--kubeconfig")
        .arg(&case.proxy_kubeconfig)
        .args(["get", "configmaps", "-n", &case.ns, "--watch", "-o", "name"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Killed on drop, so a failed assertion cannot leave a watch running.
    let mut child = KillOnDrop(watch.spawn().expect("spawning kubectl --watch"));
    let stdout = child.0.stdout.take().expect("piped");
    let mut stderr_pipe = child.0.stderr.take().expect("piped");
    let stderr = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // Created only once the watch is open, so the event can only arrive over
    // the open stream, not in the initial list.
    let watch_path = regex::Regex::new("[?&]watch=(true|1)").expect("regex");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !case
        .proxy
        .requests()
        .iter()
        .any(|r| watch_path.is_match(&r.path))
    {
        assert!(
            Instant::now() < deadline,
            "kubectl never opened a watch:\n{}",
            case.dump_requests()
        );
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(500));
    case.kubectl_direct(&["create", "configmap", "streamed", "-n", &case.ns])
        .ok();

    let mut lines = Vec::new();
    let result = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line == "configmap/streamed" => break Ok(()),
            Ok(line) => lines.push(line),
            Err(e) => break Err(e),
        }
    };
    drop(child);
    let stderr = stderr.join().unwrap_or_default();
    assert!(
        result.is_ok(),
        "watch through the proxy never delivered the event; saw {lines:?}; stderr:\n{stderr}"
    );
}
