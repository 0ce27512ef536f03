//! The corpus suites' parts (tests/e2e_corpus.rs and tests/e2e_differential.rs run them): where
//! the corpus is and which charts it has, the helms and apply methods each chart runs with, the
//! cluster side (cluster.rs), live snapshots (snapshot.rs), the success path with its native
//! twin (success.rs), the failing rollback (failing.rs) and the differential cases
//! (differential.rs).
#![allow(dead_code)] // each suite uses a different part of this module

pub mod cluster;
pub mod differential;
pub mod failing;
pub mod snapshot;
pub mod success;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use cluster::{remove_release, JobCompleter};
use success::Pair;

use crate::support::{self, HelmMajor, Scenario};

/// Every chart of the corpus; `the_corpus_is_exactly_these_charts` keeps this list honest.
pub const CHARTS: &[&str] = &[
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

/// One `#[test]` per chart of [`CHARTS`], each calling the suite's own `chart(name)`: charts run
/// in parallel and a failure names its chart.
#[macro_export]
macro_rules! one_test_per_chart {
    () => {
        #[test]
        fn argo_cd() {
            chart("argo-cd")
        }
        #[test]
        fn argo_workflows() {
            chart("argo-workflows")
        }
        #[test]
        fn cert_manager() {
            chart("cert-manager")
        }
        #[test]
        fn filebeat() {
            chart("filebeat")
        }
        #[test]
        fn fluent_bit() {
            chart("fluent-bit")
        }
        #[test]
        fn fluent_operator() {
            chart("fluent-operator")
        }
        #[test]
        fn fluentd() {
            chart("fluentd")
        }
        #[test]
        fn gatekeeper() {
            chart("gatekeeper")
        }
        #[test]
        fn harbor() {
            chart("harbor")
        }
        #[test]
        fn ingress_nginx() {
            chart("ingress-nginx")
        }
        #[test]
        fn jenkins() {
            chart("jenkins")
        }
        #[test]
        fn kibana() {
            chart("kibana")
        }
        #[test]
        fn loki_distributed() {
            chart("loki-distributed")
        }
        #[test]
        fn metrics_server() {
            chart("metrics-server")
        }
        #[test]
        fn redis_ha() {
            chart("redis-ha")
        }
        #[test]
        fn sealed_secrets() {
            chart("sealed-secrets")
        }
        #[test]
        fn vault() {
            chart("vault")
        }
        #[test]
        fn velero() {
            chart("velero")
        }
        #[test]
        fn vpa() {
            chart("vpa")
        }
    };
}

/// The corpus dir, or `None` when the corpus suites do not run: e2e tests explicitly skipped,
/// or the corpus absent outside CI (a clone of the repository alone has none: it is test data
/// the repository cannot carry). Absent under CI (`CI=true`), it fails the test.
pub fn corpus_dir() -> Option<PathBuf> {
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
    let missing = format!(
        "chart corpus not found at {} (set HSR_CORPUS_DIR to a copy of it)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{missing}: under CI the corpus suites must run");
    }
    // Uncaptured, so that a passing run still says it: this suite did not run.
    let _ = writeln!(std::io::stderr(), "corpus NOT RUN: {missing}");
    None
}

/// metrics-server's APIService has no backend on the bed: while it exists, discovery of
/// metrics.k8s.io fails for every client and namespaces never finish deleting (CORPUS.md, item
/// 4). It runs alone (write), every other chart beside the others (read).
static ALONE: RwLock<()> = RwLock::new(());

/// A chart's turn: beside the others, or alone.
pub type Turn = Result<RwLockWriteGuard<'static, ()>, RwLockReadGuard<'static, ()>>;

/// The corpus and the chart's turn, or `None` when the suite does not run.
pub fn begin(name: &str) -> Option<(PathBuf, Turn)> {
    support::bed()?;
    let corpus = corpus_dir()?;
    let turn = if name == "metrics-server" {
        Ok(ALONE.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Err(ALONE.read().unwrap_or_else(|e| e.into_inner()))
    };
    Some((corpus, turn))
}

/// One helm and apply method a chart runs with.
#[derive(Clone)]
pub struct Variant {
    pub helm: HelmMajor,
    /// `helm3`, `helm4` (the corpus's flags), `helm4-ssa`, `helm4-csa`.
    pub label: &'static str,
    pub helm4_flags: Vec<String>,
}

/// helm 3, then helm 4 with each apply method the bed can run: server-side apply (helm 4's
/// default for new installs) and client-side, on an API server whose server-side apply is
/// generally available (1.22 on); on an older one, the corpus's flags (client-side where its
/// server-side apply fails) and a loud line that server-side apply did not run.
pub fn variants(settings: &Settings) -> Vec<Variant> {
    let helm3 = Variant {
        helm: HelmMajor::V3,
        label: "helm3",
        helm4_flags: Vec::new(),
    };
    if server_minor() >= 22 {
        let helm4 = |label, flags: &[&str]| Variant {
            helm: HelmMajor::V4,
            label,
            helm4_flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        return vec![
            helm3,
            helm4("helm4-ssa", &[]),
            helm4("helm4-csa", &["--server-side=false"]),
        ];
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(say_server_side_apply_not_run);
    vec![
        helm3,
        Variant {
            helm: HelmMajor::V4,
            label: "helm4",
            helm4_flags: settings.helm4_flags.clone(),
        },
    ]
}

fn say_server_side_apply_not_run() {
    let _ = writeln!(
        std::io::stderr(),
        "corpus: helm 4's server-side apply NOT RUN as such on this kube-apiserver 1.{}: its \
         beta server-side apply fails on charts users run (CORPUS.md); helm 4 uses the corpus's \
         flags",
        server_minor()
    );
}

/// Values the corpus sets only because its charts were first checked on Kubernetes 1.20, and
/// what their users set instead on an API server that serves what the chart needs: `(chart,
/// from minor, --set flags, why)`.
const BENT_FOR_1_20: &[(&str, u32, &[&str], &str)] = &[(
    "vpa",
    21,
    &[
        "--set",
        "admissionController.podDisruptionBudget.enabled=true",
        "--set",
        "recommender.podDisruptionBudget.enabled=true",
        "--set",
        "updater.podDisruptionBudget.enabled=true",
    ],
    "the chart writes policy/v1 PodDisruptionBudgets, served from 1.21 on (its default: enabled)",
)];

/// The flags that undo the corpus's 1.20 bends for `chart` on this bed's API server.
pub fn unbent(chart: &str) -> Vec<String> {
    BENT_FOR_1_20
        .iter()
        .filter(|(name, minor, _, _)| *name == chart && server_minor() >= *minor)
        .flat_map(|(_, _, flags, _)| flags.iter().map(|f| f.to_string()))
        .collect()
}

/// The bed's kube-apiserver minor version, asked once.
pub fn server_minor() -> u32 {
    static MINOR: OnceLock<u32> = OnceLock::new();
    *MINOR.get_or_init(|| {
        let bed = support::bed().expect("the bed");
        let output = std::process::Command::new(&bed.kubectl)
            .arg("--kubeconfig")
            .arg(&bed.kubeconfig)
            .args(["version", "--output=json"])
            .output()
            .expect("run kubectl version");
        let version: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("kubectl version JSON");
        let minor = version["serverVersion"]["minor"].as_str().unwrap_or("0");
        minor
            .trim_end_matches('+')
            .parse()
            .expect("a minor version")
    })
}

/// One chart with one helm variant through `pair`, its leftovers removed afterwards.
pub fn run_chart(
    corpus: &Path,
    name: &str,
    settings: &Settings,
    variant: &Variant,
    pair: &Pair,
) -> Line {
    let bed = support::bed().expect("the bed");
    let s = Scenario::new(bed, variant.helm, &format!("corpus-{name}"));
    // A stand-in kubelet for hook Jobs, for this namespace only (tools/complete-hook-jobs.sh).
    let _completer = settings
        .needs_job_completer
        .then(|| JobCompleter::start(&s, corpus));
    let mut result = Line::new(name, variant);
    let steps = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        success::run(&s, corpus, name, pair, &mut result)
    }));
    match steps {
        Ok(problems) => result.errors.extend(problems),
        Err(panic) => result.errors.push(panic_message(panic)),
    }
    // helm's leftovers go whatever happened: the other helm, and other charts, need the names.
    let started = Instant::now();
    let cleanup = remove_release(&s, corpus, name);
    result
        .steps
        .push(("cleanup", started.elapsed().as_secs_f64()));
    // A failed cleanup breaks the next helm's install: it is said even after ours failed.
    if let Err(cleanup) = cleanup {
        result.errors.push(format!("cleanup: {cleanup}"));
    }
    result
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

/// Appends `line` to the file `variable` names, when set (the suites' reports).
pub fn append_report(variable: &str, line: &str) {
    // Straight to the process's stderr: the test harness captures only print!/eprint!, and
    // these lines are wanted from passing tests too.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os(variable) {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// One row of tools/settings.tsv.
pub struct Settings {
    pub upgrade: Vec<String>,
    pub needs_job_completer: bool,
    pub helm4_flags: Vec<String>,
}

pub fn settings(corpus: &Path, name: &str) -> Settings {
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

/// What one chart did with one helm, for the printed line and the verdict.
pub struct Line {
    pub chart: String,
    pub helm: HelmMajor,
    /// The variant's label (`helm3`, `helm4-ssa`, …).
    pub helm_label: &'static str,
    pub objects: usize,
    /// The native rollback to revision 1 (the twin) and ours, from the same upgraded state.
    pub native_s: Option<f64>,
    pub ours_s: Option<f64>,
    pub outcome: String,
    pub exit: Option<i32>,
    /// `same` when ours left the objects as the native twin did, else `differs`.
    pub twin: String,
    /// `ok` when `--plan` named what the native rollback did.
    pub plan: String,
    /// Whether the preflight's predicted objects are the twin's live ones.
    pub prediction: String,
    pub failing: failing::Outcome,
    /// Seconds each setup step took (install, upgrade, cleanup), to see where the time goes.
    pub steps: Vec<(&'static str, f64)>,
    /// Everything that went wrong; empty when ours behaved as native helm does.
    pub errors: Vec<String>,
}

impl Line {
    pub fn new(chart: &str, variant: &Variant) -> Line {
        Line {
            chart: chart.to_string(),
            helm: variant.helm,
            helm_label: variant.label,
            objects: 0,
            native_s: None,
            ours_s: None,
            outcome: "-".to_string(),
            exit: None,
            twin: "-".to_string(),
            plan: "-".to_string(),
            prediction: "-".to_string(),
            failing: failing::Outcome::default(),
            steps: Vec::new(),
            errors: Vec::new(),
        }
    }
}
