//! Reliability and safety on the real bed, helm 3 and helm 4: signals, a run killed outright,
//! two runs at once, Secrets, and bad input — nothing lost, nothing wrongly deleted.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

use support::{HelmMajor, Run, Scenario};

for_both_helms!(
    sigterm_is_passed_to_helm_and_the_journal_is_completed,
    a_killed_run_is_detected_and_finished_from_its_journal,
    a_second_run_on_the_same_release_backs_off,
    secret_data_never_reaches_output_or_journal,
    a_token_never_reaches_output_printed_commands_or_journal,
    bad_input_is_one_line_and_changes_nothing,
);

fn start_hanging_rollback(s: &Scenario, extra: &[&str]) -> Child {
    let mut args = vec!["more", "1", "--wait", "--timeout", "5m", "--output", "json"];
    args.extend_from_slice(extra);
    // Run directly, not through helm: the tests signal this pid, and it must be ours.
    let mut command = s.safe_rollback_direct_command(&args);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command.spawn().unwrap();
    s.wait_until_helm_waits();
    child
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// Signals the child's whole process group (it was started as a group leader).
fn signal_group(pid: u32, signal: i32) {
    // SAFETY: as above, for the group this test created.
    assert_eq!(unsafe { libc::kill(-(pid as i32), signal) }, 0);
}

fn sigterm_is_passed_to_helm_and_the_journal_is_completed(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "sigterm");
    s.hanging_release();
    let child = start_hanging_rollback(&s, &[]);
    signal(child.id(), libc::SIGTERM);
    let run = finish(child);
    assert_ne!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "failed", "{run}");
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("received signal 15")),
        "{run}"
    );
    let journals = s.journals();
    assert_eq!(journals.len(), 1);
    assert!(
        journals[0].1.contains("\"state\": \"completed\""),
        "{}",
        journals[0].1
    );
    // Our kubectl proxy outlived helm to serve the reconcile, then went with the run, socket
    // directory and all.
    assert_eq!(s.surviving_proxies(), Vec::<String>::new());
    let left: Vec<_> = std::fs::read_dir(s.temp_dir()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

fn a_killed_run_is_detected_and_finished_from_its_journal(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "sigkill");
    s.hanging_release();
    let child = start_hanging_rollback(&s, &[]);
    // SIGKILL to the whole process group: us and helm, as a CI runner's hard kill does.
    signal_group(child.id(), libc::SIGKILL);
    let killed = finish(child);
    assert_eq!(killed.stdout, "", "no report from a killed run");
    // The proxy, in a process group of its own, died with us all the same: it holds the user's
    // credentials and must never outlive a run.
    assert_eq!(s.surviving_proxies(), Vec::<String>::new());
    assert!(s.journals()[0].1.contains("\"state\": \"captured\""));
    let abandoned: Vec<_> = std::fs::read_dir(s.temp_dir()).unwrap().collect();
    assert_eq!(abandoned.len(), 1, "a SIGKILL leaves the socket directory");

    let run = s.safe_rollback(&["more", "--plan", "--output", "json"]);
    let left: Vec<_> = std::fs::read_dir(s.temp_dir()).unwrap().collect();
    assert!(left.is_empty(), "the next run sweeps it: {left:?}");
    let report = run.json();
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("did not finish") && w.contains("--finish")),
        "{run}"
    );

    let run = s.safe_rollback(&["more", "--finish", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(run.json()["journal"].as_str().is_some(), "{run}");
    let unfinished = s
        .journals()
        .into_iter()
        .filter(|(_, text)| text.contains("\"state\": \"captured\""))
        .count();
    assert_eq!(unfinished, 0, "every journal is completed now");
    let run = s.safe_rollback(&["more", "--finish", "--output", "json"]);
    assert!(run.stdout.contains("nothing to finish"), "{run}");
}

fn a_second_run_on_the_same_release_backs_off(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "twice");
    s.hanging_release();
    let first = start_hanging_rollback(&s, &[]);
    let versions_before = s.resource_versions("configmaps,deployments,services");
    let second = s.safe_rollback(&["more", "2", "--cleanup-on-fail"]);
    assert_eq!(second.code, 6, "{second}");
    assert_eq!(second.plugin_stderr_lines().len(), 1, "{second}");
    assert!(second
        .stderr
        .contains("another helm safe-rollback is working on release more"));
    let versions_after = s.resource_versions("configmaps,deployments,services");
    assert_eq!(
        versions_before, versions_after,
        "the second run touched nothing"
    );
    signal(first.id(), libc::SIGTERM);
    finish(first);
}

const SECRET: &str = "hunter2-SEKRIT-7f3a";

fn secret_data_never_reaches_output_or_journal(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "secret");
    let chart = s.chart("seed");
    std::fs::write(
        format!("{chart}/templates/secret.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{{{ .Release.Name }}}}-creds\n\
             type: Opaque\nstringData:\n  password: {SECRET}\n"
        ),
    )
    .unwrap();
    s.helm(&["install", "seed", &chart]).ok();
    let _ = s.helm(&["upgrade", "seed", &chart, "--set", "cmRef=Bad_Name"]);
    s.helm(&["upgrade", "seed", &chart, "--set", "withService=false"])
        .ok();
    let base64 = "aHVudGVyMi1TRUtSSVQtN2YzYQ"; // base64 of SECRET without padding
    let mut outputs = Vec::new();
    for args in [
        &["seed", "2", "--debug", "--output", "json"][..],
        &[
            "seed",
            "2",
            "--debug",
            "--no-preflight",
            "--cleanup-on-fail",
        ][..],
        &["seed", "3", "--debug", "--plan"][..],
        &["seed", "3", "--plan", "--output", "json"][..],
        &["seed", "3", "--debug", "--output", "json"][..],
    ] {
        let run = s.safe_rollback(args);
        if args.contains(&"--plan") && args.contains(&"json") {
            // The plan's predicted objects name the Secret and its keys, never their values.
            let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            let predicted = report["plan"]["predicted"].as_array().cloned();
            let secret = predicted
                .unwrap_or_default()
                .into_iter()
                .find(|o| o["kind"] == "Secret" && o["metadata"]["name"] == "seed-creds");
            let secret = secret.unwrap_or_else(|| panic!("the Secret is predicted:\n{run}"));
            assert_eq!(secret["data"]["password"], "<redacted>", "{run}");
        }
        outputs.push(format!("{args:?}\n{run}"));
    }
    for (path, text) in s.journals() {
        outputs.push(format!("{}\n{text}", path.display()));
    }
    assert!(outputs.len() >= 7);
    for text in &outputs {
        assert!(!text.contains(SECRET), "secret value leaked:\n{text}");
        assert!(
            !text.contains(base64),
            "secret value (base64) leaked:\n{text}"
        );
    }
    assert!(
        outputs.iter().any(|t| t.contains("seed-creds")),
        "the Secret's identity is recorded"
    );
}

/// `--kube-token` (helm hands it to a plugin as HELM_KUBETOKEN) reaches helm and kubectl, and
/// nothing else: not the report, not a leftover's delete command (where CI logs would keep it),
/// not `--debug`'s traces, not the journal.
fn a_token_never_reaches_output_printed_commands_or_journal(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "token");
    // Steps 1-3 of seed/steps.sh: rolling back to the failed revision 2 creates the Service
    // and fails on the Deployment, leaving the Service for a human (no --cleanup-on-fail).
    s.seed_release("seed", true);
    let token = s.bed.token.clone();
    let mut outputs = Vec::new();
    for args in [
        &[
            "seed",
            "2",
            "--no-preflight",
            "--kube-token",
            &token,
            "--debug",
            "-o",
            "json",
        ][..],
        &[
            "seed",
            "2",
            "--no-preflight",
            "--kube-token",
            &token,
            "--debug",
        ][..],
        &["seed", "3", "--kube-token", &token, "--plan", "-o", "json"][..],
    ] {
        let run = s.safe_rollback(args);
        // The arguments themselves hold the token: the run's output alone is checked.
        outputs.push(format!("{run}"));
    }
    let report: serde_json::Value = serde_json::from_str(
        outputs[0]
            .split_once("--- stdout\n")
            .and_then(|(_, rest)| rest.split_once("--- stderr"))
            .unwrap()
            .0,
    )
    .unwrap();
    let command = report["leftovers"][0]["delete_command"].as_str().unwrap();
    assert!(
        command.starts_with("kubectl delete service/seed-standby"),
        "{command}"
    );
    for (path, text) in s.journals() {
        outputs.push(format!("{}\n{text}", path.display()));
    }
    for text in &outputs {
        assert!(!text.contains(&token), "the token leaked:\n{text}");
    }
}

fn bad_input_is_one_line_and_changes_nothing(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "badinput");
    s.seed_release("seed", false);
    let history = || s.helm(&["history", "seed", "-o", "json"]).ok().stdout;
    let before = history();
    let not_executable = s.home.path().join("not-executable");
    std::fs::write(&not_executable, "not a program").unwrap();
    let not_executable = not_executable.to_str().unwrap();
    // (arguments, extra environment, exit code, text the one line must contain)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["seed", "-3"], vec![], 2, "must be a positive number"),
        (vec!["seed", "two"], vec![], 2, "not a number"),
        (vec!["Seed_1"], vec![], 2, "invalid release name"),
        (
            vec!["seed", "1", "--pending-max-age", "99999999999999999999h"],
            vec![],
            2,
            "--pending-max-age: invalid duration",
        ),
        (
            vec!["seed", "1", "--cleanup-on-fail=maybe"],
            vec![],
            2,
            "not a boolean",
        ),
        (
            vec!["seed", "1", "--retries", "99999999999"],
            vec![],
            2,
            "--retries",
        ),
        (vec!["nosuch", "1"], vec![], 3, "release: not found"),
        (vec!["seed", "99"], vec![], 3, "release has no 99 version"),
        (
            vec!["seed", "1", "--helm", "/nonexistent/helm"],
            vec![],
            3,
            "/nonexistent/helm not found",
        ),
        (
            vec!["seed", "1", "--helm", not_executable],
            vec![],
            3,
            "not-executable is not executable",
        ),
        (
            vec!["seed", "1", "--kubectl", "/nonexistent/kubectl"],
            vec![],
            3,
            "/nonexistent/kubectl not found",
        ),
        (
            vec!["seed", "1", "--kubeconfig", "/nonexistent/kubeconfig"],
            vec![],
            3,
            "/nonexistent/kubeconfig",
        ),
        (
            vec![
                "seed",
                "1",
                "--kube-apiserver",
                "https://127.0.0.1:1",
                "--kube-token",
                "x",
            ],
            vec![("KUBECONFIG", "/dev/null")],
            3,
            "connection refused",
        ),
    ];
    for (args, env, code, expected) in cases {
        let mut command = s.safe_rollback_command(&args);
        for (k, v) in env {
            command.env(k, v);
        }
        let run = Run::from(command.output().unwrap());
        assert_eq!(run.code, code, "{args:?}:\n{run}");
        assert_eq!(
            run.plugin_stderr_lines().len(),
            1,
            "{args:?}: one line\n{run}"
        );
        assert!(run.stderr.contains(expected), "{args:?}: {expected}\n{run}");
    }
    // A namespace that does not exist (the scenario's helper would add its own -n).
    let mut command = s.plugin_command(&[
        "seed",
        "1",
        "--namespace",
        "no-such-namespace",
        "--journal-dir",
    ]);
    command.arg(s.journal_dir());
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, 3, "{run}");
    assert_eq!(run.plugin_stderr_lines().len(), 1, "{run}");
    assert!(run.stderr.contains("release: not found"), "{run}");

    assert_eq!(history(), before, "no rollback ran");
    assert!(s.uid("configmap/seed-config").is_some());
}
