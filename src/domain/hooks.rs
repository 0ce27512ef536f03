//! Explains a failed `pre-rollback` / `post-rollback` hook and lists what it left behind.
//!
//! helm's own words are thin: helm 3 says `job r-migrate failed: BackoffLimitExceeded` (no
//! event, no namespace, nothing about the pod), helm 4 `resource Job/ns/r-migrate not ready.
//! status: Failed, …`, and only a hook the API server refuses names its event and template
//! (`warning: Hook pre-rollback chart/templates/x.yaml failed: …`). The hooks of the revision
//! the rollback created (`helm status -o json`) say which object and event that was — even for
//! helm 3's bare `timed out waiting for the condition` — and the live Job and its pods say why
//! it failed. Everything here is pure: the pipeline brings helm's lines, the hooks and the live
//! JSON.
//!
//! Hook objects are never ours to delete: helm applies their `helm.sh/hook-delete-policy`
//! itself. We only list the ones still there, with the command that removes them.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::manifest::parse_documents;
use crate::domain::model::{LiveObject, ObjectRef};

mod explain;

pub use self::explain::explain;

const ROLLBACK_EVENTS: [&str; 2] = ["pre-rollback", "post-rollback"];
/// What helm applies when a hook names no delete policy.
const DEFAULT_DELETE_POLICY: &str = "before-hook-creation";

/// One hook of a release revision, as helm stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub object: ObjectRef,
    pub events: Vec<String>,
    /// As helm applies them: [`DEFAULT_DELETE_POLICY`] when the hook names none.
    pub delete_policies: Vec<String>,
    /// The template it came from, as helm names it in its errors.
    pub source: Option<String>,
    /// helm's `last_run.phase`. helm stores the release with `Running` right before it creates
    /// a hook and not again when the hook fails, so `Running` in the revision a failed
    /// rollback left is the hook helm was running when it gave up.
    pub last_phase: Option<String>,
    /// helm's `last_run.started_at` (RFC 3339).
    pub started_at: Option<String>,
}

impl Hook {
    fn rollback_events(&self) -> Vec<&str> {
        ROLLBACK_EVENTS
            .into_iter()
            .filter(|e| self.events.iter().any(|h| h == e))
            .collect()
    }

    /// `Job/ns/name`, in the namespace the hook lands in.
    pub fn describe(&self, release_namespace: &str) -> String {
        format!(
            "{}/{}/{}",
            self.object.kind,
            self.object.namespace_or(release_namespace),
            self.object.name
        )
    }
}

/// The newest revision of a release and its hooks, from `helm status RELEASE -o json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionHooks {
    pub revision: u64,
    pub hooks: Vec<Hook>,
}

/// Reads `helm status -o json` (helm 3 and 4 print the same fields). Only identities, events,
/// policies and phases are kept: the manifests (a hook can be a Secret) and the values are
/// dropped here.
pub fn parse_status(json: &[u8]) -> Result<RevisionHooks> {
    let status: Value = serde_json::from_slice(json).context("helm status printed no JSON")?;
    let revision = status["version"]
        .as_u64()
        .context("helm status printed no version")?;
    let mut hooks = Vec::new();
    for entry in status["hooks"].as_array().into_iter().flatten() {
        let manifest = entry["manifest"].as_str().unwrap_or_default();
        let documents = parse_documents(manifest.as_bytes())
            .with_context(|| format!("hook {} is not readable", entry["name"]))?;
        let strings = |key: &str| -> Vec<String> {
            let values = entry[key].as_array().into_iter().flatten();
            values
                .filter_map(|v| v.as_str())
                .map(String::from)
                .collect()
        };
        let mut delete_policies = strings("delete_policies");
        if delete_policies.is_empty() {
            delete_policies.push(DEFAULT_DELETE_POLICY.into());
        }
        for document in documents {
            hooks.push(Hook {
                object: document.object,
                events: strings("events"),
                delete_policies: delete_policies.clone(),
                source: entry["path"].as_str().map(String::from),
                last_phase: entry["last_run"]["phase"].as_str().map(String::from),
                started_at: entry["last_run"]["started_at"].as_str().map(String::from),
            });
        }
    }
    Ok(RevisionHooks { revision, hooks })
}

/// What one of helm's error lines says about a failed hook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clue {
    pub event: Option<String>,
    pub source: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    /// helm's reason, without its `1 error occurred:` wrapper.
    pub reason: String,
    /// The API server refused to create the hook: nothing of it was made.
    pub refused: bool,
}

/// Recognises helm 3's and helm 4's hook failures in one primary error.
pub fn clue(primary: &str) -> Option<Clue> {
    if let Some(c) = refused_hook().captures(primary) {
        return Some(Clue {
            event: Some(c[1].to_string()),
            source: Some(c[2].to_string()),
            reason: unwrap_multierror(&c[3]),
            refused: true,
            ..Clue::default()
        });
    }
    if let Some(c) = helm3_watch_failure().captures(primary) {
        let kind = if &c[1] == "job" { "Job" } else { "Pod" };
        return Some(Clue {
            kind: Some(kind.into()),
            name: Some(c[2].to_string()),
            reason: c[3].trim().to_string(),
            ..Clue::default()
        });
    }
    let c = helm4_not_ready().captures(primary)?;
    // `status: Failed, message: Job Failed. failed: 1/1`: the message is the reason; any
    // other status (a timeout's `InProgress`) is worth keeping whole.
    // helm 4's timeout adds `context deadline exceeded` on a line of its own.
    let status = c[4].trim().replace('\n', "; ");
    let reason = status
        .strip_prefix("status: Failed, message: ")
        .unwrap_or(&status);
    Some(Clue {
        kind: Some(c[1].to_string()),
        name: Some(c[3].to_string()),
        reason: reason.to_string(),
        ..Clue::default()
    })
}

/// `1 error occurred:\n\t* X` → `X` (hashicorp/go-multierror's format, helm 3's and 4's).
fn unwrap_multierror(text: &str) -> String {
    let items: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("* "))
        .collect();
    if text.trim_start().starts_with(|c: char| c.is_ascii_digit()) && !items.is_empty() {
        return items.join("; ");
    }
    text.trim().to_string()
}

fn refused_hook() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?s)warning: Hook (\S+) (\S+) failed: (.*)$").unwrap())
}

fn helm3_watch_failure() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?m)(?:^|\* )(job|pod) (\S+) failed(?:: (.*))?$").unwrap())
}

fn helm4_not_ready() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?s)resource ([A-Za-z]+)/([^/\s]*)/(\S+) not ready\. (status: .*)$").unwrap()
    })
}

/// The rollback hook that failed, from helm's primary errors and the target revision's hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedHook {
    pub hook: Hook,
    /// `pre-rollback`, `post-rollback`, or both joined with `/` when helm did not say which.
    pub event: String,
    pub clue: Clue,
}

/// Finds the hook helm's words point at, else the rollback hook helm was still running (helm
/// 3's bare `timed out waiting for the condition` names none); `None` when the failure is
/// about no rollback hook. `hooks` must be those of the revision this rollback created, and
/// `run_started` (RFC 3339) when this run began: a revision copies the target's hooks with
/// their old `last_run`, so only a hook started since then can be the one in flight.
pub fn failed_hook(primary: &[String], hooks: &[Hook], run_started: &str) -> Option<FailedHook> {
    named_hook(primary, hooks).or_else(|| running_hook(primary, hooks, run_started))
}

fn running_hook(primary: &[String], hooks: &[Hook], run_started: &str) -> Option<FailedHook> {
    let since: jiff::Timestamp = run_started.parse().ok()?;
    let started_since = |hook: &Hook| {
        let started = hook.started_at.as_deref().unwrap_or_default();
        started
            .parse::<jiff::Timestamp>()
            .is_ok_and(|at| at >= since)
    };
    let hook = hooks.iter().find(|h| {
        h.last_phase.as_deref() == Some("Running")
            && !h.rollback_events().is_empty()
            && started_since(h)
    })?;
    let reason = primary
        .first()
        .map_or(String::new(), |p| unwrap_multierror(p));
    Some(FailedHook {
        hook: hook.clone(),
        event: hook.rollback_events().join("/"),
        clue: Clue {
            reason,
            ..Clue::default()
        },
    })
}

fn named_hook(primary: &[String], hooks: &[Hook]) -> Option<FailedHook> {
    primary.iter().find_map(|line| {
        let clue = clue(line)?;
        let fits = |hook: &&Hook| {
            let events = hook.rollback_events();
            !events.is_empty()
                && clue.event.as_deref().is_none_or(|e| events.contains(&e))
                && clue
                    .source
                    .as_ref()
                    .is_none_or(|s| hook.source.as_ref() == Some(s))
                && clue
                    .kind
                    .as_ref()
                    .is_none_or(|k| k.eq_ignore_ascii_case(&hook.object.kind))
                && clue.name.as_ref().is_none_or(|n| *n == hook.object.name)
        };
        let candidates: Vec<&Hook> = hooks.iter().filter(fits).collect();
        // A refusal names the template; several hooks of one template are told apart by the
        // name the server quotes.
        let named = candidates.iter().find(|h| {
            let name = &h.object.name;
            clue.reason.contains(&format!("\"{name}\""))
                || clue.reason.contains(&format!("/{name} "))
        });
        let hook = named.or(candidates.first())?;
        let event = match &clue.event {
            Some(event) => event.clone(),
            None => hook.rollback_events().join("/"),
        };
        Some(FailedHook {
            hook: (*hook).clone(),
            event,
            clue: clue.clone(),
        })
    })
}

/// A hook object the failure left in the cluster, never deleted by us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookLeftover {
    pub object: LiveObject,
    /// The hook's `helm.sh/hook-delete-policy` as helm applies it (comma-separated).
    pub delete_policy: String,
}

/// The failed hook's object, when it is still there: helm kept it because its delete policy
/// lacks `hook-failed`. A hook the API server refused was never made, so whatever has its name
/// is not this failure's.
pub fn leftovers(failed: &FailedHook, live: &[LiveObject], namespace: &str) -> Vec<HookLeftover> {
    if failed.clue.refused {
        return Vec::new();
    }
    live.iter()
        .filter(|o| o.is(&failed.hook.object, namespace))
        .map(|o| HookLeftover {
            object: o.clone(),
            delete_policy: failed.hook.delete_policies.join(","),
        })
        .collect()
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod tests;
