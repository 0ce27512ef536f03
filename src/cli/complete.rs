//! Shell completion through helm's plugin protocol: helm's `__complete` runs the plugin's
//! `plugin.complete` with the words typed after `helm safe-rollback` (helm's global flags taken
//! out, and given to us as `HELM_*` variables instead), the last one being the word to
//! complete. It prints one candidate per line, `value<TAB>description`, then `:DIRECTIVE`
//! (cobra's ShellCompDirective). The same for helm 3 and 4, bash, zsh and fish: the shell
//! talks to helm, helm to us.
//!
//! Which word is wanted is decided here, from the words alone; the releases and revisions are
//! read by the caller.

use clap::CommandFactory;

use super::helm_flags::{GLOBAL_VALUE_FLAGS, ROLLBACK_VALUE_FLAGS};
use super::{own_flags, OwnFlags};

/// cobra's directives: no file names after ours; the default lets the shell complete files.
pub const NO_FILE_COMPLETION: u32 = 4;
pub const FILES: u32 = 0;

/// What the word being completed is.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// A flag name (the word starts with `-`).
    Flag,
    /// The value of `--output`.
    Output,
    /// The value of another flag: a path, a duration; left to the shell.
    FlagValue,
    Release,
    Revision {
        release: String,
    },
    /// Nothing more is taken.
    Nothing,
}

/// `helm rollback`'s flags of either major, for completion only (helm checks them).
const ROLLBACK_FLAGS: [(&str, &str); 12] = [
    (
        "cleanup-on-fail",
        "helm rollback: delete new resources when the rollback fails",
    ),
    (
        "description",
        "helm 4.3 and later: a description for the rollback",
    ),
    ("dry-run", "helm rollback: simulate the rollback"),
    ("force", "helm 3: replace objects that cannot be patched"),
    (
        "force-conflicts",
        "helm 4: server-side apply takes fields other managers own",
    ),
    (
        "force-replace",
        "helm 4: replace objects that cannot be patched",
    ),
    ("history-max", "helm rollback: revisions kept per release"),
    ("no-hooks", "helm rollback: run no hooks"),
    ("recreate-pods", "helm 3: restart pods"),
    ("server-side", "helm 4: true, false or auto"),
    (
        "timeout",
        "helm rollback: how long each Kubernetes operation may take",
    ),
    ("wait", "helm rollback: wait until the resources are ready"),
];

/// What the last of `words` (the one being typed) is, from the ones before it.
pub fn wanted(words: &[String]) -> Wanted {
    let Some((current, before)) = words.split_last() else {
        return Wanted::Release;
    };
    if current.starts_with('-') {
        return Wanted::Flag;
    }
    let own = own_flags();
    let takes_value = |name: &str| {
        own.iter().any(|(flag, value)| flag == name && *value)
            || GLOBAL_VALUE_FLAGS.contains(&name)
            || ROLLBACK_VALUE_FLAGS.contains(&name)
            || name == "n"
            || name == "o"
    };
    let mut positionals = Vec::new();
    let mut words = before.iter();
    while let Some(word) = words.next() {
        let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            positionals.push(word.clone());
            continue;
        };
        if flag.contains('=') || !takes_value(flag) {
            continue;
        }
        if words.next().is_none() {
            return match flag {
                "output" | "o" => Wanted::Output,
                _ => Wanted::FlagValue,
            };
        }
    }
    match positionals.as_slice() {
        [] => Wanted::Release,
        [release] => Wanted::Revision {
            release: release.clone(),
        },
        _ => Wanted::Nothing,
    }
}

/// Our flags and `helm rollback`'s that start with `prefix`, each with what it does.
pub fn flags(prefix: &str) -> Vec<(String, String)> {
    let command = OwnFlags::command();
    let ours = command.get_arguments().filter_map(|arg| {
        let long = arg.get_long()?;
        let help = arg.get_help().map(|h| first_sentence(&h.to_string()));
        Some((format!("--{long}"), help.unwrap_or_default()))
    });
    let helms = ROLLBACK_FLAGS
        .iter()
        .map(|(name, help)| (format!("--{name}"), help.to_string()));
    let mut all: Vec<(String, String)> = ours.chain(helms).collect();
    all.retain(|(flag, _)| flag.starts_with(prefix) && !flag.starts_with("--help"));
    all.sort();
    all.dedup_by(|a, b| a.0 == b.0);
    all
}

/// `--output`'s values.
pub fn outputs(prefix: &str) -> Vec<(String, String)> {
    [
        ("table", "the report for humans"),
        ("json", "one JSON document"),
        ("yaml", "the same document as YAML"),
    ]
    .iter()
    .filter(|(value, _)| value.starts_with(prefix))
    .map(|(value, help)| (value.to_string(), help.to_string()))
    .collect()
}

fn first_sentence(help: &str) -> String {
    let line = help.lines().next().unwrap_or("");
    let sentence = line.split(". ").next().unwrap_or(line);
    sentence.trim_end_matches('.').to_string()
}

/// What `plugin.complete` prints: the candidates, then the directive.
pub fn print(candidates: &[(String, String)], directive: u32) -> String {
    let mut out = String::new();
    for (value, description) in candidates {
        // A tab or newline in a description would break the protocol's lines.
        let description = description.replace(['\t', '\n'], " ");
        match description.is_empty() {
            true => out.push_str(&format!("{value}\n")),
            false => out.push_str(&format!("{value}\t{description}\n")),
        }
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_word_wanted_follows_the_words_before_it() {
        assert_eq!(wanted(&words(&[""])), Wanted::Release);
        assert_eq!(wanted(&words(&["we"])), Wanted::Release);
        assert_eq!(wanted(&words(&["--plan", ""])), Wanted::Release);
        let revision = Wanted::Revision {
            release: "web".into(),
        };
        assert_eq!(wanted(&words(&["web", ""])), revision);
        assert_eq!(wanted(&words(&["--timeout", "5m", "web", "1"])), revision);
        assert_eq!(wanted(&words(&["web", "2", ""])), Wanted::Nothing);
        assert_eq!(wanted(&words(&["web", "--cl"])), Wanted::Flag);
        assert_eq!(wanted(&words(&["web", "-o", ""])), Wanted::Output);
        assert_eq!(wanted(&words(&["web", "--output", "j"])), Wanted::Output);
        assert_eq!(wanted(&words(&["web", "--output=json", ""])), revision);
        assert_eq!(
            wanted(&words(&["web", "--journal-dir", ""])),
            Wanted::FlagValue
        );
    }

    #[test]
    fn flags_are_ours_and_helms_with_what_they_do() {
        let found = flags("--allow-d");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "--allow-destructive");
        assert!(
            found[0].1.starts_with("Let helm delete what destroys data"),
            "{found:?}"
        );
        let helms: Vec<String> = flags("--force").into_iter().map(|f| f.0).collect();
        assert_eq!(helms, ["--force", "--force-conflicts", "--force-replace"]);
        assert!(flags("--").iter().any(|(f, _)| f == "--output"));
        assert_eq!(
            print(&outputs("y"), NO_FILE_COMPLETION),
            "yaml\tthe same document as YAML\n:4\n"
        );
    }
}
