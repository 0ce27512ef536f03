//! helm's conventions, end to end on the bed through the installed plugin, helm 3 and helm 4:
//! `-o yaml` is the JSON document as YAML and `-o table` the human report; a flag this helm's
//! `helm rollback` does not know is a usage error in helm's own words (exit 2) before anything
//! is read or journaled, while the flags this helm does know pass; the shell completes
//! releases, revisions and flags through helm's own `__complete` (what bash, zsh and fish run).

mod support;

use helm_safe_rollback::domain::yaml11;
use support::{HelmMajor, Scenario};

for_both_helms!(
    output_formats_are_helms,
    a_flag_this_helm_does_not_know_stops_before_anything_runs,
    the_shell_completes_releases_revisions_and_flags_through_helm
);

fn output_formats_are_helms(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "conventions");
    s.seed_release("seed", false);
    let json = s.safe_rollback(&["seed", "1", "--plan", "-o", "json"]);
    let yaml = s.safe_rollback(&["seed", "1", "--plan", "-o", "yaml"]);
    assert_eq!((json.code, yaml.code), (0, 0), "{json}\n{yaml}");
    assert!(
        !yaml.stdout.trim_start().starts_with('{'),
        "not YAML:\n{yaml}"
    );
    let documents = yaml11::documents(&yaml.stdout).unwrap_or_else(|e| panic!("{e:#}:\n{yaml}"));
    let [mut from_yaml] = <[serde_json::Value; 1]>::try_from(documents).unwrap();
    let mut from_json = json.json();
    // What differs between two runs: the time, the journal, and what the server's dry run
    // makes up for an object it would create (a uid, a timestamp).
    for document in [&mut from_yaml, &mut from_json] {
        document["duration_ms"] = 0.into();
        document["journal"] = serde_json::Value::Null;
        let predicted = document["plan"]["predicted"].as_array().map(Vec::len);
        assert!(predicted > Some(0), "{yaml}");
        document["plan"]["predicted"] = serde_json::Value::Null;
    }
    assert_eq!(from_yaml, from_json, "{yaml}");

    let table = s.safe_rollback(&["seed", "1", "--plan", "-o", "table"]);
    let text = s.safe_rollback(&["seed", "1", "--plan", "-o", "text"]);
    assert_eq!((table.code, text.code), (0, 0), "{table}\n{text}");
    assert!(
        table
            .stdout
            .contains("preflight: the rollback would proceed"),
        "{table}"
    );
    let without_journal = |out: &str| {
        let lines = out
            .lines()
            .filter(|l| !l.trim_start().starts_with("journal:"));
        lines.collect::<Vec<_>>().join("\n")
    };
    assert_eq!(
        without_journal(&table.stdout),
        without_journal(&text.stdout)
    );
    let bad = s.safe_rollback(&["seed", "1", "-o", "xml"]);
    assert_eq!(bad.code, 2, "{bad}");
    assert!(
        bad.stderr.contains("[possible values: table, json, yaml]"),
        "{bad}"
    );
}

fn a_flag_this_helm_does_not_know_stops_before_anything_runs(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "conventions-flags");
    s.seed_release("seed", false);
    let history = || s.helm(&["history", "seed", "-o", "json"]).ok().stdout;
    let before = history();
    let (theirs, ours) = match helm {
        // helm 4 dropped --recreate-pods; helm 3 never had server-side apply.
        HelmMajor::V3 => ("--server-side=true", "--recreate-pods"),
        HelmMajor::V4 => ("--recreate-pods", "--server-side=auto"),
    };
    for (args, words) in [
        (
            vec!["seed", "1", theirs],
            format!("Error: unknown flag: {}", theirs.split('=').next().unwrap()),
        ),
        (
            vec!["seed", "1", "--no-such-flag"],
            "Error: unknown flag: --no-such-flag".to_string(),
        ),
        (
            vec!["seed", "1", "-z"],
            "Error: unknown shorthand flag: 'z' in -z".to_string(),
        ),
    ] {
        let run = s.safe_rollback(&[&args[..], &["-o", "json"]].concat());
        assert_eq!(run.code, 2, "{run}");
        assert_eq!(
            run.plugin_stderr_lines(),
            [words.as_str()],
            "one line, helm's words:
{run}"
        );
        assert!(run.stdout.is_empty(), "{run}");
        assert!(
            !s.journal_dir().exists() || s.journals().is_empty(),
            "a journal was written"
        );
        assert_eq!(history(), before, "helm ran");
    }
    let known = s.safe_rollback(&["seed", "1", ours]);
    assert_eq!(known.code, 0, "a flag this helm knows passes:\n{known}");
}

/// `helm __complete --namespace NS safe-rollback WORDS…`, as a shell's completion script runs
/// it: the candidates, and cobra's directive line.
fn complete(s: &Scenario, words: &[&str]) -> (Vec<String>, String) {
    s.install_plugin();
    let mut command = std::process::Command::new("helm");
    s.user_env(&mut command);
    command
        .args(["__complete", "--namespace", &s.namespace, "safe-rollback"])
        .args(words);
    let run = support::Run::from(command.output().expect("run helm __complete"));
    assert_eq!(run.code, 0, "{run}");
    let mut lines: Vec<String> = run.stdout.lines().map(str::to_string).collect();
    let directive = lines.pop().unwrap_or_default();
    (lines, directive)
}

fn the_shell_completes_releases_revisions_and_flags_through_helm(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "conventions-complete");
    s.seed_release("seed", false);
    s.seed_release("other", false);
    let (releases, directive) = complete(&s, &[""]);
    assert_eq!(directive, ":4", "no file names: {releases:?}");
    let names: Vec<&str> = releases
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["other", "seed"], "{releases:?}");
    assert!(
        releases[1].contains("\tdemo-0.1.0 -> deployed"),
        "{releases:?}"
    );
    let (only_seed, _) = complete(&s, &["se"]);
    assert_eq!(only_seed.len(), 1, "{only_seed:?}");

    let (revisions, directive) = complete(&s, &["seed", ""]);
    assert_eq!(directive, ":4");
    let numbers: Vec<&str> = revisions
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(numbers, ["2", "1"], "newest first: {revisions:?}");
    assert!(
        revisions[0].contains("\tdeployed, demo-0.1.0: Upgrade complete"),
        "{revisions:?}"
    );
    assert!(
        revisions[1].contains("\tsuperseded, demo-0.1.0: Install complete"),
        "{revisions:?}"
    );

    let (flags, _) = complete(&s, &["seed", "1", "--allow-g"]);
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert!(flags[0].starts_with("--allow-gitops\t"), "{flags:?}");
    let (outputs, _) = complete(&s, &["seed", "-o", ""]);
    let outputs: Vec<&str> = outputs
        .iter()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(outputs, ["table", "json", "yaml"]);
    let (nothing, directive) = complete(&s, &["seed", "1", ""]);
    assert_eq!((nothing.len(), directive.as_str()), (0, ":4"));
}
