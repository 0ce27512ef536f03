//! After a failed rollback whose cause is a `pre-rollback`/`post-rollback` hook: read the hooks
//! of the revision it created (`helm status`) and the failed hook's live object (a Job's pods
//! too) so that the report can say which hook failed and why, and list the hook object left
//! behind. Nothing is deleted here: hook objects follow their own `helm.sh/hook-delete-policy`,
//! which helm applies.

use anyhow::Result;

use crate::domain::classify::{self, Class};
use crate::domain::hooks::{self, HookLeftover};
use crate::domain::report::errors_of;
use crate::pipeline::session::Session;

impl Session<'_> {
    /// Adds the explanation and the hook leftovers to the last attempt. A hook that cannot be
    /// read is a warning: helm's own words are still there.
    pub(crate) fn explain_hook_failure(&mut self) {
        let Some(attempt) = self.record.attempts.last() else {
            return;
        };
        let primary = errors_of(&attempt.rollback.findings, Class::Primary);
        // Only helm's hook wordings, and helm 3's timeout that names nothing, cost a
        // `helm status`.
        let named = primary.iter().any(|line| hooks::clue(line).is_some());
        let timed_out = primary.iter().any(|line| classify::is_bare_timeout(line));
        if !named && !timed_out {
            return;
        }
        let explained = self.read_hook_failure(&primary);
        let attempt = self.record.attempts.last_mut().expect("an attempt ran");
        match explained {
            Ok(Some((text, leftovers))) => {
                attempt.hook_failure = Some(text);
                attempt.hook_leftovers = leftovers;
            }
            Ok(None) => {}
            // A bare timeout was only a guess at a hook: nothing to warn about.
            Err(_) if !named => {}
            Err(error) => attempt.warnings.push(format!(
                "helm names a hook in its error, but the hooks could not be read to say why it \
                 failed: {error:#}"
            )),
        }
    }

    /// The explanation and leftovers, or `None` when helm's words are about no rollback hook
    /// of the target revision.
    fn read_hook_failure(&self, primary: &[String]) -> Result<Option<(String, Vec<HookLeftover>)>> {
        let snapshot = self.snapshot();
        let release = &snapshot.release;
        let status = hooks::parse_status(&self.tools.helm.status_json(&release.name)?)?;
        let newest_before = snapshot.history.iter().map(|r| r.revision).max();
        // No revision of this run's: helm failed before it ran any hook.
        if newest_before.is_some_and(|newest| status.revision <= newest) {
            return Ok(None);
        }
        let Some(failed) = hooks::failed_hook(primary, &status.hooks, &snapshot.taken_at) else {
            return Ok(None);
        };
        let kubectl = &self.tools.kubectl;
        let object = &failed.hook.object;
        let live = kubectl.identities(std::slice::from_ref(object), &release.namespace)?;
        // Only a Job's or a Pod's body is read (for its status): a hook can be a Secret.
        let body = match (live.is_empty(), object.kind.as_str()) {
            (false, "Job" | "Pod") => kubectl
                .objects(std::slice::from_ref(object), &release.namespace)?
                .pop(),
            _ => None,
        };
        let pods = match (&body, object.kind.as_str()) {
            (Some(_), "Job") => {
                kubectl.job_pods(object.namespace_or(&release.namespace), &object.name)?
            }
            _ => Vec::new(),
        };
        let explanation = hooks::explain(&failed, &release.namespace, body.as_ref(), &pods);
        let leftovers = hooks::leftovers(&failed, &live, &release.namespace);
        Ok(Some((explanation, leftovers)))
    }
}
