//! Commands we print for the user to run, built in one place from the invocation: the same
//! release, namespace and cluster (context and kubeconfig — never a credential) and journal
//! directory, so that what the user pastes reaches what this run reached.

use super::Invocation;

/// The command that completes this run from its journal (`--finish`).
pub fn finish_command(invocation: &Invocation, namespace: &str) -> String {
    let mut words = vec![
        "helm safe-rollback".to_string(),
        invocation.release.clone(),
        "--namespace".into(),
        namespace.into(),
    ];
    let kube = &invocation.kube;
    for (flag, value) in [
        ("--kube-context", &kube.kube_context),
        ("--kubeconfig", &kube.kubeconfig),
    ] {
        if let Some(value) = value {
            words.extend([flag.to_string(), shell_word(value)]);
        }
    }
    if let Some(dir) = &invocation.own.journal_dir {
        words.extend([
            "--journal-dir".into(),
            shell_word(&dir.display().to_string()),
        ]);
    }
    words.push("--finish".into());
    if invocation.rollback.cleanup_on_fail {
        words.push("--cleanup-on-fail".into());
    }
    words.join(" ")
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
