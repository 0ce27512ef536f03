//! The running test bed as `./scripts/test` exports it, the helm majors every e2e test runs
//! against, and the two macros that turn one test body into one test per helm.

use std::path::PathBuf;

pub struct Bed {
    pub kubeconfig: PathBuf,
    pub server: String,
    pub token: String,
    pub ca: Option<PathBuf>,
    pub helm3: PathBuf,
    pub helm4: PathBuf,
    pub kubectl: PathBuf,
}

/// The bed from the environment; `None` only when the user explicitly opted out.
pub fn bed() -> Option<Bed> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match var("HSR_TESTBED_KUBECONFIG") {
        Some(kubeconfig) => Some(Bed {
            kubeconfig: kubeconfig.into(),
            server: var("HSR_TESTBED_SERVER").expect("HSR_TESTBED_SERVER"),
            token: var("HSR_TESTBED_TOKEN").expect("HSR_TESTBED_TOKEN"),
            ca: var("HSR_TESTBED_CA").map(PathBuf::from),
            helm3: var("HSR_HELM3").expect("HSR_HELM3").into(),
            helm4: var("HSR_HELM4").expect("HSR_HELM4").into(),
            kubectl: var("HSR_KUBECTL").expect("HSR_KUBECTL").into(),
        }),
        None if var("HSR_SKIP_E2E").as_deref() == Some("1") => {
            eprintln!("e2e skipped: HSR_SKIP_E2E=1");
            None
        }
        None => panic!(
            "test bed not running: run ./scripts/test, or set HSR_SKIP_E2E=1 to skip e2e tests explicitly"
        ),
    }
}

/// Gets the bed or returns from the test (only when skipping was explicitly asked for).
#[macro_export]
macro_rules! bed_or_skip {
    () => {
        match $crate::support::bed() {
            Some(bed) => bed,
            None => return,
        }
    };
}

/// Generates one test per helm major version from `fn name(helm: HelmMajor)`.
#[macro_export]
macro_rules! for_both_helms {
    ($($name:ident),* $(,)?) => {
        mod helm3 {
            $( #[test] fn $name() { super::$name($crate::support::HelmMajor::V3) } )*
        }
        mod helm4 {
            $( #[test] fn $name() { super::$name($crate::support::HelmMajor::V4) } )*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelmMajor {
    V3,
    V4,
}

impl HelmMajor {
    pub fn tag(self) -> &'static str {
        match self {
            HelmMajor::V3 => "h3",
            HelmMajor::V4 => "h4",
        }
    }
}
