//! The cluster side of the corpus tests: the objects of a manifest, which of them exist, and
//! removing a release with everything helm leaves behind (as the corpus's tools/test-chart.sh).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Run, Scenario};
use yaml_rust2::{Yaml, YamlLoader};

pub fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or("").to_string()
}

pub fn manifest(s: &Scenario, release: &str, revision: Option<u32>) -> String {
    let revision = revision.map(|r| r.to_string());
    let mut args = vec!["get", "manifest", release];
    if let Some(r) = &revision {
        args.extend(["--revision", r]);
    }
    s.helm(&args).ok().stdout
}

/// The release's revisions, oldest first (none when it does not exist).
pub fn revisions(s: &Scenario, release: &str) -> Vec<u32> {
    let history = s.helm(&["history", release, "--max", "256", "-o", "json"]);
    serde_json::from_str::<serde_json::Value>(&history.stdout)
        .ok()
        .and_then(|h| h.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["revision"].as_u64().map(|r| r as u32))
        .collect()
}

/// An object's identity: `Kind.version.group` as kubectl takes it, namespace ("" when
/// cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
}

impl Identity {
    /// `Kind.version.group/name` (`Kind/name` for the core group), for kubectl get/delete.
    pub fn arg(&self) -> String {
        match self.api_version.split_once('/') {
            Some((group, version)) => format!("{}.{version}.{group}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// What [`live`] compares: kubectl may answer in another version of the same kind.
    pub fn key(&self) -> (String, String, String) {
        (self.kind.clone(), self.namespace.clone(), self.name.clone())
    }
}

/// Kinds the server serves cluster-scoped, now (CRDs add theirs).
pub fn cluster_kinds(s: &Scenario) -> BTreeSet<String> {
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
pub fn objects_of(
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
pub fn live(s: &Scenario, objects: &BTreeSet<Identity>) -> BTreeSet<Identity> {
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
pub fn remove_release(s: &Scenario, corpus: &Path, name: &str) -> Result<(), String> {
    // The manifests and hooks of every revision name every object helm made.
    let kinds = cluster_kinds(s);
    let mut cluster_objects = BTreeSet::new();
    for revision in revisions(s, name) {
        let revision = revision.to_string();
        for what in ["manifest", "hooks"] {
            let text = s.helm(&["get", what, name, "--revision", &revision]).stdout;
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
        // A CustomResourceDefinition goes once its instances are gone; while the API server
        // re-initialises that resource's storage (after the CRD changed), its finalizer is
        // retried with a growing back-off: minutes, seen on a bed that had made many of them.
        command.arg("delete").args(&args).args([
            "--ignore-not-found",
            "--wait",
            "--timeout",
            "360s",
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
pub fn crd_files(chart: &Path) -> Vec<PathBuf> {
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

/// A stand-in kubelet for helm's hook Jobs in one namespace, as the corpus's
/// tools/complete-hook-jobs.sh is on 1.20: every unfinished Job marked complete through the
/// status subresource, every 2 seconds, until dropped. Since 1.31 the API server takes
/// `Complete` only beside `SuccessCriteriaMet`, which older servers accept as well.
pub struct JobCompleter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JobCompleter {
    pub fn start(s: &Scenario, _corpus: &Path) -> JobCompleter {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let kubectl = s.bed.kubectl.clone();
        let kubeconfig = s.kubeconfig.clone();
        let namespace = s.namespace.clone();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                complete_jobs(&kubectl, &kubeconfig, &namespace);
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
        });
        JobCompleter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for JobCompleter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One round: each Job of `namespace` without a Complete or Failed condition, completed.
fn complete_jobs(kubectl: &Path, kubeconfig: &Path, namespace: &str) {
    let run = |args: &[&str]| {
        Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", namespace])
            .args(args)
            .output()
    };
    let Ok(listed) = run(&["get", "jobs", "--output=json"]) else {
        return;
    };
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(&listed.stdout) else {
        return;
    };
    for job in list["items"].as_array().into_iter().flatten() {
        let finished = job["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
            });
        let Some(name) = job["metadata"]["name"].as_str().filter(|_| !finished) else {
            continue;
        };
        let now = now_utc();
        let condition = |kind: &str| {
            serde_json::json!({"type": kind, "status": "True",
                               "lastProbeTime": now, "lastTransitionTime": now})
        };
        let mut status = serde_json::json!({
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
            "succeeded": job["spec"]["completions"].as_u64().unwrap_or(1),
            "active": 0,
            "completionTime": now,
        });
        // The start time is immutable once the Job controller has set it.
        if job["status"]["startTime"].is_null() {
            status["startTime"] = serde_json::json!(now);
        }
        let patch = serde_json::json!({ "status": status }).to_string();
        let _ = run(&[
            "patch",
            "job",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
    }
}

/// Now, as the API server writes times (RFC 3339, seconds, UTC).
fn now_utc() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
