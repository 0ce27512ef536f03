//! Proves the fault proxy is fit for purpose against the real test bed: it is
//! invisible when no rule matches, and the faults it injects reach real helm 3
//! and helm 4 as the errors helm prints in production. Later e2e tests rely
//! on exactly that when they break a `helm rollback` half-way through.
//!
//! Needs the bed's variables (`source RUNDIR/env` after `testbed/up.sh RUNDIR`).

mod support;

use std::io::Read;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use support::fault_proxy::{Fault, FaultProxy, Rule, SeenRequest};
use support::{Bed, HelmMajor, Run, Scenario};

for_both_helms!(
    pass_through,
    sees_503,
    sees_connection_reset,
    after_n_passes_first_n
);

/// A hung helm must fail the test, not the CI run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// The smallest chart that makes helm create a real object: one ConfigMap.
const PROBE_TEMPLATE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-probe
data:
  value: {{ .Values.value | default \"one\" | quote }}
";

/// A scenario whose helm and kubectl all go through its own fault proxy, so
/// tests can run in parallel without seeing each other's releases or faults.
struct Case {
    s: Scenario,
    proxy: FaultProxy,
    chart: String,
}

impl Case {
    fn new(bed: Bed, helm: HelmMajor, label: &str) -> Case {
        let mut s = Scenario::new(bed, helm, &format!("fp-{label}"));
        let chart = s.write_chart("fp-probe", PROBE_TEMPLATE);
        let proxy = s.through_fault_proxy();
        Case { s, proxy, chart }
    }

    fn helm(&self, args: &[&str]) -> Run {
        Run::within(self.s.helm_command(args), COMMAND_TIMEOUT)
    }

    fn install(&self, release: &str) -> Run {
        self.helm(&["install", release, &self.chart])
    }

    fn kubectl_via_proxy(&self, args: &[&str]) -> Run {
        Run::within(self.s.kubectl_command(args), COMMAND_TIMEOUT)
    }

    /// Setup bypasses the proxy so a fault rule cannot break it.
    fn kubectl_direct(&self, args: &[&str]) -> Run {
        let mut command = self.s.kubectl_command(args);
        command.env("KUBECONFIG", &self.s.bed.kubeconfig);
        Run::within(command, COMMAND_TIMEOUT)
    }

    /// Release names and statuses from `helm list` (deployed and failed ones;
    /// helm 4 dropped `--all`).
    fn releases(&self) -> Vec<(String, String)> {
        let list = self.helm(&["list", "--output", "json"]).ok().json();
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
            regex::escape(&self.s.namespace)
        )
    }

    /// The collection and every object in it.
    fn collection_and_objects(&self, resource: &str) -> String {
        format!(
            "^/api/v1/namespaces/{}/{resource}([/?]|$)",
            regex::escape(&self.s.namespace)
        )
    }
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    println!("{what}: {:.1}s", start.elapsed().as_secs_f64());
    result
}

fn pass_through(helm: HelmMajor) {
    let case = Case::new(bed_or_skip!(), helm, "pass");

    let out = case
        .kubectl_via_proxy(&["get", "namespaces", "-o", "name"])
        .ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("namespace/{}", case.s.namespace)),
        "kubectl through the proxy does not list our namespace: {out}"
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
            "-o",
            "jsonpath={.data.value}",
        ])
        .ok();
    assert_eq!(out.stdout, "one", "{out}");

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

fn sees_503(helm: HelmMajor) {
    let case = Case::new(bed_or_skip!(), helm, "503");
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
    let chart = &case.chart;
    let out = timed(&format!("{helm:?} upgrade hitting 503"), || {
        case.helm(&["upgrade", "probe", chart, "--set", "value=two"])
    })
    .failed();
    println!("{helm:?} upgrade against 503 printed:\n{}", out.stderr);
    assert!(
        mentions_503(&out.stderr),
        "helm did not report the 503: {out}"
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
        "helm did not report the 503: {out}"
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

fn sees_connection_reset(helm: HelmMajor) {
    let case = Case::new(bed_or_skip!(), helm, "reset");
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
        "helm did not report the reset: {out}"
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
        "helm did not report the reset: {out}"
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
        "helm's error does not name the ConfigMap request: {out}"
    );
}

fn after_n_passes_first_n(helm: HelmMajor) {
    let case = Case::new(bed_or_skip!(), helm, "after");
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
        "helm did not report the 503: {out}"
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
    let case = Case::new(bed_or_skip!(), HelmMajor::V3, "watch");
    let mut watch = case
        .s
        .kubectl_command(&["get", "configmaps", "--watch", "-o", "name"]);
    watch
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
    case.kubectl_direct(&["create", "configmap", "streamed"])
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
