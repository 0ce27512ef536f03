//! The command line: `helm safe-rollback RELEASE [REVISION] [flags]`.
//!
//! We are a drop-in for `helm rollback`, so helm's flags are not ours to validate: whatever we do
//! not own is handed to helm unchanged and helm stays the judge of it. We only need to know which
//! of helm's flags take a value (to find the positional arguments) and which are global (to pass
//! them to the `helm history`/`helm get` calls we make ourselves, and to translate them for
//! kubectl). Our own flags are parsed by clap.

pub mod commands;
pub mod complete;
pub mod helm_flags;
mod kube;

pub use kube::KubeSettings;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};

use crate::domain::exit::Exit;

use self::helm_flags::{
    flag_name, RollbackFlags, GLOBAL_BOOL_FLAGS, GLOBAL_VALUE_FLAGS, ROLLBACK_VALUE_FLAGS,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For humans (helm's name for it; `text` is the same).
    #[value(name = "table", alias = "text")]
    Text,
    Json,
    /// The JSON document, as YAML.
    Yaml,
}

impl OutputFormat {
    /// `json` and `yaml`: stdout holds the one document, and nothing else.
    pub fn is_document(self) -> bool {
        matches!(self, OutputFormat::Json | OutputFormat::Yaml)
    }
}

/// What `--help` says after the flags: helm's flags pass through; the exit codes (from [`Exit`]).
fn after_help() -> String {
    format!("{HELM_FLAGS_HELP}\n{}", Exit::help_paragraph())
}

const HELM_FLAGS_HELP: &str = "\
Every `helm rollback` flag (--cleanup-on-fail, --dry-run, --force, --history-max, --no-hooks,
--recreate-pods, --timeout, --wait, --wait-for-jobs, and helm 4's --server-side,
--force-conflicts, --force-replace, --description …) and helm's global flags (-n/--namespace,
--kube-context, --kubeconfig, --kube-apiserver, --kube-token, --kube-as-user, --kube-as-group,
--kube-ca-file, --kube-insecure-skip-tls-verify, --kube-tls-server-name, --debug …) are
accepted and passed to helm unchanged; one this helm's `helm rollback` does not know is a usage
error before anything runs. HELM_BIN, HELM_NAMESPACE, HELM_KUBECONTEXT, HELM_DEBUG, KUBECONFIG and the other
HELM_* variables are honoured as helm does.

Needs helm 3 or 4 and kubectl (on PATH, or --kubectl / KUBECTL): every read, dry run and delete
goes through kubectl, which alone handles the credentials.
";

/// Flags that belong to helm-safe-rollback itself.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "helm safe-rollback",
    override_usage = "helm safe-rollback RELEASE [REVISION] [flags]",
    about = "This command rolls back a release to a previous revision with the native `helm rollback`,\n\
after recording the release's history, manifests and the identity of every live object in a\n\
journal. If the rollback fails, the real error is shown first with helm's cleanup noise collapsed,\n\
and objects that the failed rollback provably created (absent before, present now, owned by this\n\
release) are listed - or deleted when --cleanup-on-fail is given. Nothing that existed before the\n\
rollback, and nothing owned by someone else, is ever deleted.\n\n\
The first argument is the release name; the second is a revision number. If omitted or 0, it\n\
rolls back to the previous release.",
    after_help = after_help(),
    disable_version_flag = true,
    // Laid out like helm's own help: description, Usage, Flags, then the rest.
    help_template = "{about-with-newline}\nUsage:\n  {usage}\n\nFlags:\n{options}\n{after-help}\n"
)]
pub struct OwnFlags {
    /// Report format: `table` (or `text`) for humans, `json` or `yaml` for scripts (stdout then
    /// holds that one document).
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Never delete anything after a failed rollback, even with --cleanup-on-fail; only report.
    #[arg(long)]
    pub no_reconcile: bool,
    /// Where journals are written [default: $XDG_STATE_HOME/helm-safe-rollback].
    #[arg(long, value_name = "DIR", env = "HELM_SAFE_ROLLBACK_JOURNAL_DIR")]
    pub journal_dir: Option<PathBuf>,
    /// The kubectl binary to use.
    #[arg(long, value_name = "PATH", env = "KUBECTL", default_value = "kubectl")]
    pub kubectl: PathBuf,
    /// The helm binary to use (helm sets HELM_BIN for plugins).
    #[arg(long, value_name = "PATH", env = "HELM_BIN", default_value = "helm")]
    pub helm: PathBuf,
    /// Print this tool's version, the helm it would drive and whether the tests run against that
    /// helm; run nothing.
    #[arg(long)]
    pub version: bool,
    /// Skip the checks made before helm runs (server-side dry run of the target revision,
    /// foreign objects, leftovers of earlier attempts, pending releases).
    #[arg(long)]
    pub no_preflight: bool,
    /// Refuse, instead of warning, when a preflight check could not run (a webhook without
    /// dry-run support, an API error, missing permissions).
    #[arg(long)]
    pub strict: bool,
    /// Let helm adopt target objects that exist but belong to another release or to nobody.
    #[arg(long)]
    pub allow_takeover: bool,
    /// Roll back even if the newest revision is pending and younger than --pending-max-age.
    #[arg(long)]
    pub allow_pending: bool,
    /// Let a rollback without a revision go to the previous revision even when its deploy
    /// failed (by default refused, naming the last revision that deployed successfully).
    #[arg(long)]
    pub allow_failed_target: bool,
    /// Let helm delete what destroys data: a CustomResourceDefinition (with every custom
    /// resource of its kind), a PersistentVolumeClaim, a Namespace (by default refused).
    #[arg(long)]
    pub allow_destructive: bool,
    /// Roll back a release a GitOps controller (Flux, Argo CD, Fleet) manages and has not
    /// paused; it will upgrade the release again (by default refused, naming how to pause it).
    #[arg(long)]
    pub allow_gitops: bool,
    /// Where the target changes a field a workload cannot change in place (a selector, a
    /// StatefulSet's volumeClaimTemplates, a Job's template), delete that workload with its
    /// pods orphaned first, so the rollback creates it again (never a PVC or a Service).
    #[arg(long)]
    pub replace_immutable: bool,
    /// Age after which a pending revision is treated as abandoned (helm's default --timeout).
    #[arg(long, value_name = "DURATION", default_value = "5m0s")]
    pub pending_max_age: String,
    /// Print what the rollback would create, update, delete and take over, and the preflight
    /// verdict; change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Finish an attempt that was interrupted (SIGKILL, lost API server) from its journal:
    /// find out how it ended and reconcile what it left. Add --cleanup-on-fail to delete.
    #[arg(long)]
    pub finish: bool,
    /// Look at the release and change nothing: its status, the causes of its newest failures,
    /// orphans, unfinished runs and drift, each with the command that fixes it.
    #[arg(long)]
    pub diagnose: bool,
    /// With --diagnose: every release in the namespace, one line each, worst first (no RELEASE).
    #[arg(long)]
    pub all: bool,
    /// With --diagnose: every release in every namespace helm can list, like `helm list -A`.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// With --diagnose --all or -A: how many releases are looked at at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_parallel: usize,
    /// Run helm rollback again, up to N more times with exponential backoff, when it failed on
    /// a transient fault (network, API server busy, conflict) and the cluster is back to its
    /// pre-state.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Do not check, after helm reports success, that the live objects match the target revision
    /// (with --diagnose: do not look for drift, the slowest of its checks).
    #[arg(long)]
    pub no_verify: bool,
}

/// Our flags, as (long name, takes a value), read from the clap definition so the splitter and
/// the parser cannot disagree.
fn own_flags() -> Vec<(String, bool)> {
    use clap::CommandFactory;
    let command = OwnFlags::command();
    let mut flags: Vec<(String, bool)> = command
        .get_arguments()
        .filter_map(|a| {
            let takes_value = a.get_action().takes_values();
            a.get_long().map(|long| (long.to_string(), takes_value))
        })
        .collect();
    flags.push(("help".into(), false));
    flags
}

#[derive(Clone, Debug)]
pub struct Invocation {
    /// Empty for the incident view (`--diagnose --all` / `-A`), which names no release.
    pub release: String,
    /// `None` means "the previous revision", as for helm (omitted or 0).
    pub revision: Option<u64>,
    pub own: OwnFlags,
    pub kube: KubeSettings,
    /// Helm's global flags as the user wrote them, for every helm call we make.
    pub helm_global_args: Vec<String>,
    /// `helm rollback` flags as the user wrote them, for the rollback only.
    pub rollback_args: Vec<String>,
    /// The same flags, read once as helm reads them: what our decisions depend on.
    pub rollback: RollbackFlags,
    /// `--pending-max-age`, read as helm reads a duration.
    pub pending_max_age: jiff::SignedDuration,
}

impl Invocation {
    /// `--diagnose --all` or `-A`: many releases, each looked at as `--diagnose` would.
    pub fn looks_at_many(&self) -> bool {
        self.own.all || self.own.all_namespaces
    }

    /// The same invocation, on one release of the incident view. helm takes the last
    /// `--namespace` given, so the release's own is appended.
    pub fn for_release(&self, release: &str, namespace: &str) -> Invocation {
        let mut one = self.clone();
        one.release = release.to_string();
        one.kube.namespace = Some(namespace.to_string());
        one.helm_global_args
            .extend(["--namespace".to_string(), namespace.to_string()]);
        one.own.all = false;
        one.own.all_namespaces = false;
        one
    }

    /// Whether leftovers may be deleted: `--cleanup-on-fail`, given now or (for `--finish`) to
    /// the run being finished, and no `--no-reconcile`. Only ever decided here.
    pub fn deletes_leftovers(&self, asked_before: bool) -> bool {
        (self.rollback.cleanup_on_fail || asked_before) && !self.own.no_reconcile
    }
}

pub enum Parsed {
    Run(Box<Invocation>),
    /// `--help`: print this and exit 0.
    Help(String),
    /// `--version`: ours, and the helm that would be driven (this binary).
    Version(PathBuf),
}

/// Splits argv (without the program name) into ours and helm's, and reads helm's environment.
pub fn parse(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument is not valid UTF-8: {a:?}"))
        })
        .collect::<Result<_>>()?;
    let Split {
        own,
        helm_global_args,
        rollback_args,
        positionals,
    } = split(args)?;
    if own.iter().any(|a| a == "--help" || a == "-h") {
        use clap::CommandFactory;
        return Ok(Parsed::Help(OwnFlags::command().render_help().to_string()));
    }
    let own = OwnFlags::try_parse_from(&own).map_err(|e| anyhow::anyhow!("{}", clap_line(&e)))?;
    if own.version {
        return Ok(Parsed::Version(own.helm));
    }
    let many = own.all || own.all_namespaces;
    if many && !own.diagnose {
        bail!("--all and --all-namespaces (-A) go with --diagnose");
    }
    if many && own.max_parallel == 0 {
        bail!("--max-parallel must be at least 1");
    }
    let (release, revision) = match positionals.as_slice() {
        [] if many => (String::new(), None),
        [..] if many => bail!("--diagnose --all and -A take no RELEASE: they look at every one"),
        [] => bail!("\"helm safe-rollback\" requires at least 1 argument: RELEASE [REVISION]"),
        [release] => (release.clone(), None),
        [release, revision] => (release.clone(), parse_revision(revision)?),
        _ => bail!("\"helm safe-rollback\" accepts at most 2 arguments: RELEASE [REVISION]"),
    };
    if !many {
        validate_release_name(&release)?;
    }
    // A look at the release as it is: no target, and nothing else to do.
    if own.diagnose && (revision.is_some() || own.finish || own.plan) {
        bail!("--diagnose takes no REVISION and cannot be combined with --finish or --plan");
    }
    let kube = kube::kube_settings(&helm_global_args, env)?;
    let rollback = helm_flags::rollback_flags(&rollback_args)?;
    let pending_max_age = helm_flags::go_duration(&own.pending_max_age)
        .map_err(|e| anyhow::anyhow!("--pending-max-age: {e}"))?;
    Ok(Parsed::Run(Box::new(Invocation {
        release,
        revision,
        own,
        kube,
        helm_global_args,
        rollback_args,
        rollback,
        pending_max_age,
    })))
}

/// clap's error as one line, without its `error: ` prefix.
fn clap_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid flag");
    let mut line = first.trim_start_matches("error: ").to_string();
    // What would have been taken, on the same line.
    let possible = rendered
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("[possible values"));
    if let Some(possible) = possible {
        line = format!("{line} {possible}");
    }
    line
}

/// The command line, sorted: ours (for clap), helm's global flags, `helm rollback`'s flags and
/// the positional arguments.
struct Split {
    own: Vec<String>,
    helm_global_args: Vec<String>,
    rollback_args: Vec<String>,
    positionals: Vec<String>,
}

/// Sorts each argument (and its value) into its bucket, knowing only which flags take a value.
fn split(args: Vec<String>) -> Result<Split> {
    let mut own = vec!["helm safe-rollback".to_string()];
    let mut helm_global_args = Vec::new();
    let mut rollback_args = Vec::new();
    let mut positionals = Vec::new();
    let own_flags = own_flags();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            positionals.extend(iter.by_ref());
            break;
        }
        let Some(flag) = flag_name(&arg) else {
            positionals.push(arg);
            continue;
        };
        let has_inline_value = arg.contains('=') || is_short_with_value(&arg);
        let own_flag = own_flags.iter().find(|(name, _)| *name == flag);
        let (bucket, takes_value) = if flag == "h" {
            (&mut own, false)
        } else if flag == "o" {
            (&mut own, true)
        } else if flag == "A" {
            (&mut own, false)
        } else if let Some((_, takes_value)) = own_flag {
            (&mut own, *takes_value)
        } else if GLOBAL_VALUE_FLAGS.contains(&flag.as_str()) || flag == "n" {
            (&mut helm_global_args, true)
        } else if GLOBAL_BOOL_FLAGS.contains(&flag.as_str()) {
            (&mut helm_global_args, false)
        } else {
            (
                &mut rollback_args,
                ROLLBACK_VALUE_FLAGS.contains(&flag.as_str()),
            )
        };
        bucket.push(arg);
        if takes_value && !has_inline_value {
            match iter.next() {
                Some(value) => bucket.push(value),
                None => bail!(
                    "flag needs an argument: {flag_display}",
                    flag_display = dashed(&flag)
                ),
            }
        }
    }
    Ok(Split {
        own,
        helm_global_args,
        rollback_args,
        positionals,
    })
}

fn is_short_with_value(arg: &str) -> bool {
    !arg.starts_with("--") && arg.len() > 2
}

fn dashed(flag: &str) -> String {
    if flag.len() == 1 {
        format!("-{flag}")
    } else {
        format!("--{flag}")
    }
}

fn parse_revision(text: &str) -> Result<Option<u64>> {
    match text.parse::<i64>() {
        Ok(0) => Ok(None),
        Ok(n) if n > 0 => Ok(Some(n as u64)),
        Ok(_) => bail!(
            "invalid revision {text:?}: must be a positive number, or 0 for the previous revision"
        ),
        Err(_) => bail!("invalid revision {text:?}: not a number"),
    }
}

/// Helm's own rule (pkg/chartutil ValidateReleaseName): a DNS-1123 subdomain of at most 53
/// characters. Checking it here keeps odd names out of journal paths and kubectl arguments.
fn validate_release_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 53
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        bail!("invalid release name {name:?}: must be a lowercase RFC 1123 subdomain of at most 53 characters");
    }
    Ok(())
}

/// Redacts the values of flags that carry credentials, for the journal and debug output.
pub fn redact(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push("<redacted>".to_string());
            hide_next = false;
            continue;
        }
        match arg.split_once('=') {
            Some((flag, _)) if flag == "--kube-token" => out.push(format!("{flag}=<redacted>")),
            _ => {
                hide_next = arg == "--kube-token";
                out.push(arg.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
