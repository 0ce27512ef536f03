//! The field corpus: 19 real public charts (`/work/shared/corpus`, see its CORPUS.md), each
//! installed, upgraded by one value and rolled back to revision 1 with `helm safe-rollback`,
//! with helm 3 and then helm 4, the way users run it: the installed plugin, `helm` and `kubectl`
//! found on PATH, every check on. Native `helm rollback` succeeds on every one of them, so ours
//! must too: exit 0, `succeeded`, nothing refused, nothing drifted, and the cluster left as a
//! native rollback leaves it (the release's manifest is revision 1's, every object of it exists).
//!
//! The corpus dir is `HSR_CORPUS_DIR`, else `../shared/corpus` next to this checkout; a missing
//! corpus fails the run (only `HSR_SKIP_E2E=1` skips). One test per chart, so charts run in
//! parallel and a failure names its chart; within a chart helm 3 and helm 4 run one after the
//! other, with helm's leftovers removed in between, because their cluster-scoped objects and
//! CRDs have the same names. Each run prints one line (objects, native vs ours in seconds,
//! outcome, setup step times) on stderr, uncaptured, and appends it to `HSR_CORPUS_REPORT`
//! when that is set. "native" is a native `helm rollback` to revision 2 made afterwards: the
//! same change the other way, timed on the same release; the ratio is printed only when ours
//! did the rollback. About 8 minutes on 2 shared cores.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::RwLock;
use std::time::Instant;

use support::{HelmMajor, Run, Scenario};
use yaml_rust2::{Yaml, YamlLoader};

/// Every chart of the corpus; `the_corpus_is_exactly_these_charts` keeps this list honest.
const CHARTS: &[&str] = &[
    "argo-cd",
    "argo-workflows",
    "cert-manager",
    "filebeat",
    "fluent-bit",
    "fluent-operator",
    "fluentd",
    "gatekeeper",
    "harbor",
    "ingress-nginx",
    "jenkins",
    "kibana",
    "loki-distributed",
    "metrics-server",
    "redis-ha",
    "sealed-secrets",
    "vault",
    "velero",
    "vpa",
];

macro_rules! corpus_tests {
    ($($test:ident => $chart:literal),* $(,)?) => {
        $( #[test] fn $test() { chart($chart) } )*
    };
}

corpus_tests!(
    argo_cd => "argo-cd",
    argo_workflows => "argo-workflows",
    cert_manager => "cert-manager",
    filebeat => "filebeat",
    fluent_bit => "fluent-bit",
    fluent_operator => "fluent-operator",
    fluentd => "fluentd",
    gatekeeper => "gatekeeper",
    harbor => "harbor",
    ingress_nginx => "ingress-nginx",
    jenkins => "jenkins",
    kibana => "kibana",
    loki_distributed => "loki-distributed",
    metrics_server => "metrics-server",
    redis_ha => "redis-ha",
    sealed_secrets => "sealed-secrets",
    vault => "vault",
    velero => "velero",
    vpa => "vpa",
);

/// The corpus dir, or `None` when e2e tests are explicitly skipped; missing, it fails the test.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HSR_CORPUS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("tools/settings.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("HSR_SKIP_E2E").as_deref() == Ok("1") {
        eprintln!("corpus skipped: HSR_SKIP_E2E=1");
        return None;
    }
    panic!(
        "chart corpus not found at {} (set HSR_CORPUS_DIR, or HSR_SKIP_E2E=1 to skip e2e tests)",
        dir.display()
    );
}

#[test]
fn the_corpus_is_exactly_these_charts() {
    let Some(dir) = corpus_dir() else { return };
    let mut found: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .expect("read the corpus's charts dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found, CHARTS,
        "a chart without a test here, or a test without a chart"
    );
}

/// One row of tools/settings.tsv.
struct Settings {
    upgrade: Vec<String>,
    needs_job_completer: bool,
    helm4_flags: Vec<String>,
}

fn settings(corpus: &Path, name: &str) -> Settings {
    let text = std::fs::read_to_string(corpus.join("tools/settings.tsv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in tools/settings.tsv"));
    let columns: Vec<&str> = line.split('\t').collect();
    let words = |i: usize| -> Vec<String> {
        columns
            .get(i)
            .map(|c| c.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    Settings {
        upgrade: words(1),
        needs_job_completer: columns.get(2) == Some(&"yes"),
        helm4_flags: words(3),
    }
}

/// metrics-server's APIService has no backend on the bed: while it exists, discovery of
/// metrics.k8s.io fails for every client and namespaces never finish deleting (CORPUS.md, item
/// 4). It runs alone (write), every other chart beside the others (read).
static ALONE: RwLock<()> = RwLock::new(());

fn chart(name: &str) {
    if support::bed().is_none() {
        return;
    }
    let Some(corpus) = corpus_dir() else { return };
    let settings = settings(&corpus, name);
    let _turn = if name == "metrics-server" {
        Err(ALONE.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Ok(ALONE.read().unwrap_or_else(|e| e.into_inner()))
    };
    let mut failures = Vec::new();
    for helm in [HelmMajor::V3, HelmMajor::V4] {
        let result = run_chart(&corpus, name, &settings, helm);
        report_line(&result);
        if let Some(error) = &result.error {
            failures.push(format!("{}: {error}", helm_name(helm)));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: helm safe-rollback is not a drop-in helm rollback here:\n{}",
        failures.join("\n")
    );
}

/// What one chart did with one helm, for the printed line and the verdict.
struct Line {
    chart: String,
    helm: HelmMajor,
    objects: usize,
    native_s: Option<f64>,
    ours_s: Option<f64>,
    outcome: String,
    exit: Option<i32>,
    /// Seconds each setup step took (install, upgrade, cleanup), to see where the time goes.
    steps: Vec<(&'static str, f64)>,
    /// The first thing that went wrong; `None` when ours behaved as native helm does.
    error: Option<String>,
}

fn helm_name(helm: HelmMajor) -> &'static str {
    match helm {
        HelmMajor::V3 => "helm3",
        HelmMajor::V4 => "helm4",
    }
}

fn report_line(r: &Line) {
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}s"));
    // A ratio only where ours did the rollback: a refusal or early stop costs no rollback.
    let ratio = match (r.native_s, r.ours_s) {
        (Some(n), Some(o)) if n > 0.0 && r.outcome == "succeeded" => format!("{:.2}x", o / n),
        _ => "-".to_string(),
    };
    let line = format!(
        "corpus {:<16} {} objects={:>3} native={:>6} ours={:>6} ({}) outcome={} exit={} [{}]{}\n",
        r.chart,
        helm_name(r.helm),
        r.objects,
        secs(r.native_s),
        secs(r.ours_s),
        ratio,
        r.outcome,
        r.exit.map_or("-".to_string(), |c| c.to_string()),
        r.steps
            .iter()
            .map(|(step, s)| format!("{step} {s:.1}s"))
            .collect::<Vec<_>>()
            .join(", "),
        r.error
            .as_deref()
            .map(|e| format!(" error: {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default(),
    );
    // Straight to the process's stderr: the test harness captures only print!/eprint!, and
    // these lines are wanted from passing tests too.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("HSR_CORPUS_REPORT") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

fn run_chart(corpus: &Path, name: &str, settings: &Settings, helm: HelmMajor) -> Line {
    let bed = support::bed().expect("the bed");
    let s = Scenario::new(bed, helm, &format!("corpus-{name}"));
    // A stand-in kubelet for hook Jobs, for this namespace only (tools/complete-hook-jobs.sh).
    let _completer = settings
        .needs_job_completer
        .then(|| JobCompleter::start(&s, corpus));
    let mut result = Line {
        chart: name.to_string(),
        helm,
        objects: 0,
        native_s: None,
        ours_s: None,
        outcome: "-".to_string(),
        exit: None,
        steps: Vec::new(),
        error: None,
    };
    let steps = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        install_upgrade_roll_back(&s, corpus, name, settings, &mut result)
    }));
    let mut error = match steps {
        Ok(problems) => problems.into_iter().next(),
        Err(panic) => Some(panic_message(panic)),
    };
    // helm's leftovers go whatever happened: the other helm, and other charts, need the names.
    let started = Instant::now();
    let cleanup = remove_release(&s, corpus, name);
    result
        .steps
        .push(("cleanup", started.elapsed().as_secs_f64()));
    // A failed cleanup breaks the next helm's install: it is said even after ours failed.
    if let Err(cleanup) = cleanup {
        let cleanup = format!("cleanup: {cleanup}");
        error = Some(match error {
            Some(first) => format!("{first}\n{cleanup}"),
            None => cleanup,
        });
    }
    result.error = error;
    result
}

/// install → upgrade → `helm safe-rollback NAME 1` → checks → native `helm rollback` (timed
/// only). Returns every problem found with ours; panics when the bed itself fails us.
fn install_upgrade_roll_back(
    s: &Scenario,
    corpus: &Path,
    name: &str,
    settings: &Settings,
    result: &mut Line,
) -> Vec<String> {
    let chart = corpus.join("charts").join(name);
    let chart = chart.to_str().unwrap();
    let values = corpus.join("values").join(format!("{name}.yaml"));
    let values = values.to_str().unwrap();
    let helm4_flags: Vec<&str> = match s.helm {
        HelmMajor::V3 => vec![],
        HelmMajor::V4 => settings.helm4_flags.iter().map(String::as_str).collect(),
    };
    // As tools/test-chart.sh does it: never --wait (no nodes), hooks bounded by --timeout.
    let mut install = vec!["install", name, chart, "-f", values, "--timeout", "3m"];
    install.extend(&helm4_flags);
    let started = Instant::now();
    s.helm(&install).ok();
    result
        .steps
        .push(("install", started.elapsed().as_secs_f64()));
    let revision1 = manifest(s, name, Some(1));
    let objects = objects_of(&revision1, &s.namespace, &cluster_kinds(s));
    result.objects = objects.len();

    let mut upgrade = vec!["upgrade", name, chart, "-f", values, "--timeout", "3m"];
    upgrade.extend(settings.upgrade.iter().map(String::as_str));
    upgrade.extend(&helm4_flags);
    let started = Instant::now();
    s.helm(&upgrade).ok();
    result
        .steps
        .push(("upgrade", started.elapsed().as_secs_f64()));
    assert_ne!(
        manifest(s, name, None),
        revision1,
        "the upgrade step changes the manifest"
    );

    let started = Instant::now();
    let run = s.safe_rollback(&[name, "1", "--output", "json", "--timeout", "3m"]);
    result.ours_s = Some(started.elapsed().as_secs_f64());
    result.exit = Some(run.code);
    let mut problems = Vec::new();
    match serde_json::from_str::<serde_json::Value>(&run.stdout) {
        Ok(report) => {
            result.outcome = report["outcome"].as_str().unwrap_or("?").to_string();
            let first = |key: &str| -> Option<String> {
                report[key]
                    .as_array()
                    .and_then(|a| a.first())
                    .map(|v| v.as_str().map_or(v.to_string(), String::from))
            };
            if run.code != 0 || report["outcome"] != "succeeded" {
                let why = first("refusal_reasons")
                    .or_else(|| first("primary_errors"))
                    .or_else(|| first("drifted").map(|d| format!("drifted: {d}")))
                    .unwrap_or_else(|| last_line(&run.stderr));
                problems.push(format!(
                    "exit {}, outcome {}: {why}\n{run}",
                    run.code, result.outcome
                ));
            }
            for key in ["refusal_reasons", "drifted"] {
                if report[key].as_array().is_none_or(|a| !a.is_empty()) {
                    problems.push(format!("{key}: {}\n{run}", report[key]));
                }
            }
        }
        Err(e) => {
            result.outcome = "no-report".to_string();
            problems.push(format!(
                "exit {}, stdout is not a JSON report ({e}): {}\n{run}",
                run.code,
                last_line(&run.stderr)
            ));
        }
    }

    // The state a native rollback leaves: revision 1's manifest, deployed, every object live.
    if manifest(s, name, None) != revision1 {
        problems.push("the release's manifest is not revision 1's".to_string());
    }
    let status = s.helm(&["status", name, "-o", "json"]).ok().stdout;
    let status: serde_json::Value = serde_json::from_str(&status).expect("helm status JSON");
    if status["info"]["status"] != "deployed" {
        problems.push(format!("release status {}", status["info"]["status"]));
    }
    let missing: Vec<_> = objects.difference(&live(s, &objects)).cloned().collect();
    if !missing.is_empty() {
        problems.push(format!("objects of revision 1 missing: {missing:?}"));
    }

    // Native helm on the same size of change (back to revision 2), for the time comparison.
    let started = Instant::now();
    s.helm(&["rollback", name, "2", "--timeout", "3m"]).ok();
    result.native_s = Some(started.elapsed().as_secs_f64());
    problems
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or("").to_string()
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

fn manifest(s: &Scenario, release: &str, revision: Option<u32>) -> String {
    let revision = revision.map(|r| r.to_string());
    let mut args = vec!["get", "manifest", release];
    if let Some(r) = &revision {
        args.extend(["--revision", r]);
    }
    s.helm(&args).ok().stdout
}

/// An object's identity: `Kind.version.group` as kubectl takes it, namespace ("" when
/// cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Identity {
    kind: String,
    api_version: String,
    namespace: String,
    name: String,
}

impl Identity {
    /// `Kind.version.group/name` (`Kind/name` for the core group), for kubectl get/delete.
    fn arg(&self) -> String {
        match self.api_version.split_once('/') {
            Some((group, version)) => format!("{}.{version}.{group}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// What [`live`] compares: kubectl may answer in another version of the same kind.
    fn key(&self) -> (String, String, String) {
        (self.kind.clone(), self.namespace.clone(), self.name.clone())
    }
}

/// Kinds the server serves cluster-scoped, now (CRDs add theirs).
fn cluster_kinds(s: &Scenario) -> BTreeSet<String> {
    // Not s.kubectl(): while an aggregated API has no backend (metrics-server) kubectl lists
    // every other resource and still exits 1.
    let mut command = Command::new(&s.bed.kubectl);
    s.env(&mut command);
    command.args(["api-resources", "--namespaced=false", "--no-headers"]);
    let run = Run::from(command.output().unwrap());
    run.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(String::from))
        .collect()
}

/// The objects of a manifest (or of hooks), with the namespace each one lives in.
fn objects_of(
    manifest: &str,
    namespace: &str,
    cluster_kinds: &BTreeSet<String>,
) -> BTreeSet<Identity> {
    let docs = YamlLoader::load_from_str(manifest)
        .unwrap_or_else(|e| panic!("manifest is not YAML ({e}):\n{manifest}"));
    let text = |y: &Yaml| y.as_str().unwrap_or("").to_string();
    docs.iter()
        .filter(|d| d["kind"].as_str().is_some())
        .map(|d| {
            let kind = text(&d["kind"]);
            let namespace = if cluster_kinds.contains(&kind) {
                String::new()
            } else {
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(namespace)
                    .to_string()
            };
            Identity {
                api_version: text(&d["apiVersion"]),
                name: text(&d["metadata"]["name"]),
                kind,
                namespace,
            }
        })
        .collect()
}

/// Those of `objects` that exist, with one `kubectl get` per namespace.
fn live(s: &Scenario, objects: &BTreeSet<Identity>) -> BTreeSet<Identity> {
    let namespaces: BTreeSet<&str> = objects.iter().map(|o| o.namespace.as_str()).collect();
    let mut found = BTreeSet::new();
    for ns in namespaces {
        let args: Vec<String> = objects
            .iter()
            .filter(|o| o.namespace == ns)
            .map(Identity::arg)
            .collect();
        let mut command = Command::new(&s.bed.kubectl);
        s.env(&mut command);
        command
            .arg("get")
            .args(&args)
            .args(["--ignore-not-found", "--output", "json"])
            .args(["--namespace", if ns.is_empty() { &s.namespace } else { ns }]);
        let run = Run::from(command.output().unwrap());
        if run.code == 0 && run.stdout.trim().is_empty() {
            continue; // none of them exists
        }
        let list: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("kubectl get: no JSON ({e}):\n{run}"));
        let items = list["items"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![list.clone()]);
        for item in items {
            let key = (
                item["kind"].as_str().unwrap_or("").to_string(),
                item["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                item["metadata"]["name"].as_str().unwrap_or("").to_string(),
            );
            found.extend(objects.iter().filter(|o| o.key() == key).cloned());
        }
    }
    found
}

/// Uninstalls the release and deletes what helm leaves behind cluster-wide, as
/// tools/test-chart.sh does: every revision's cluster-scoped objects (hooks, `keep` objects)
/// and the chart's `crds/` CRDs; waits until they are gone, since the next helm creates them
/// again under the same names. The namespace goes with the scenario.
fn remove_release(s: &Scenario, corpus: &Path, name: &str) -> Result<(), String> {
    // Every revision here is revision 1 or 2 again (rollbacks restore one of them): their
    // manifests and hooks name every object helm made.
    let kinds = cluster_kinds(s);
    let mut cluster_objects = BTreeSet::new();
    for revision in ["1", "2"] {
        for what in ["manifest", "hooks"] {
            let text = s.helm(&["get", what, name, "--revision", revision]).stdout;
            cluster_objects.extend(
                objects_of(&text, &s.namespace, &kinds)
                    .into_iter()
                    .filter(|o| o.namespace.is_empty()),
            );
        }
    }
    let mut errors = Vec::new();
    let uninstall = s.helm(&["uninstall", name, "--timeout", "3m"]);
    if uninstall.code != 0 && !uninstall.stderr.contains("not found") {
        errors.push(format!("helm uninstall: {}", last_line(&uninstall.stderr)));
    }
    // Kinds whose CRD went with the release went with their objects; kubectl cannot name them.
    let kinds = cluster_kinds(s);
    let names: Vec<String> = cluster_objects
        .iter()
        .filter(|o| kinds.contains(&o.kind))
        .map(Identity::arg)
        .collect();
    let files: Vec<String> = crd_files(&corpus.join("charts").join(name))
        .iter()
        .flat_map(|f| ["--filename".to_string(), f.display().to_string()])
        .collect();
    // One call for names, one for files: kubectl takes either, not both at once.
    for args in [names, files] {
        if args.is_empty() {
            continue;
        }
        let mut command = Command::new(&s.bed.kubectl);
        s.env(&mut command);
        command.arg("delete").args(&args).args([
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "120s",
        ]);
        let run = Run::from(command.output().unwrap());
        if run.code != 0 {
            errors.push(format!("kubectl delete: {}", last_line(&run.stderr)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The files of every `crds/` dir of the chart and its subcharts (a dir beside a Chart.yaml).
fn crd_files(chart: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![chart.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name() == "crds" && dir.join("Chart.yaml").is_file() {
                let Ok(crds) = std::fs::read_dir(&path) else {
                    continue;
                };
                files.extend(crds.flatten().map(|e| e.path()).filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                }));
            } else {
                stack.push(path);
            }
        }
    }
    files.sort();
    files
}

/// tools/complete-hook-jobs.sh running for one namespace, with kubectl from the scenario's
/// PATH; stopped (its whole process group: a shell loop and its children) when dropped.
struct JobCompleter(Child);

impl JobCompleter {
    fn start(s: &Scenario, corpus: &Path) -> JobCompleter {
        let mut command = Command::new(corpus.join("tools/complete-hook-jobs.sh"));
        s.user_env(&mut command);
        let child = command
            .arg(&s.namespace)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start tools/complete-hook-jobs.sh");
        JobCompleter(child)
    }
}

impl Drop for JobCompleter {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test started (the child leads it).
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGTERM) };
        let _ = self.0.wait();
    }
}
