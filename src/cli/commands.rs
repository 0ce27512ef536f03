//! Commands we print for the user to run, built in one place from the invocation: the same
//! release, namespace and cluster (context and kubeconfig — never a credential) and journal
//! directory, so that what the user pastes reaches what this run reached.

use super::Invocation;

/// The command that completes this run from its journal (`--finish`).
pub fn finish_command(invocation: &Invocation, namespace: &str) -> String {
    let mut words = safe_rollback_words(invocation, namespace, None);
    words.push("--finish".into());
    if invocation.rollback.cleanup_on_fail {
        words.push("--cleanup-on-fail".into());
    }
    words.join(" ")
}

/// The command that rolls this release back to `revision`, through us.
pub fn rollback_command(invocation: &Invocation, namespace: &str, revision: u64) -> String {
    safe_rollback_words(invocation, namespace, Some(revision)).join(" ")
}

/// A plain helm command on this release and cluster (`helm <verb> RELEASE …`): global flags
/// only, never a credential.
pub fn helm_command(invocation: &Invocation, namespace: &str, verb: &str) -> String {
    let mut words = vec![format!("helm {verb}"), invocation.release.clone()];
    words.extend(target_words(invocation, namespace));
    words.join(" ")
}

/// `helm safe-rollback RELEASE [REVISION]` with the cluster target and journal directory.
fn safe_rollback_words(
    invocation: &Invocation,
    namespace: &str,
    revision: Option<u64>,
) -> Vec<String> {
    let mut words = vec!["helm safe-rollback".to_string(), invocation.release.clone()];
    words.extend(revision.map(|r| r.to_string()));
    words.extend(target_words(invocation, namespace));
    if let Some(dir) = &invocation.own.journal_dir {
        words.extend([
            "--journal-dir".into(),
            shell_word(&dir.display().to_string()),
        ]);
    }
    words
}

/// The namespace, context and kubeconfig this run reached: what a pasted command must reach.
fn target_words(invocation: &Invocation, namespace: &str) -> Vec<String> {
    let mut words = vec!["--namespace".to_string(), shell_word(namespace)];
    let kube = &invocation.kube;
    for (flag, value) in [
        ("--kube-context", &kube.kube_context),
        ("--kubeconfig", &kube.kubeconfig),
    ] {
        if let Some(value) = value {
            words.extend([flag.to_string(), shell_word(value)]);
        }
    }
    words
}

/// A value as one shell word: as is when it is plainly safe, else single-quoted.
pub fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_values_are_one_quoted_word() {
        assert_eq!(shell_word("/home/ci/kube config"), "'/home/ci/kube config'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word("prod-1"), "prod-1");
    }
}
