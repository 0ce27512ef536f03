//! The command line as helm users write it, read once.

use super::*;

fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    parse(args.iter().map(OsString::from).collect(), &lookup)
}

fn invocation(args: &[&str]) -> Invocation {
    match parse_with(args, &[]).unwrap() {
        Parsed::Run(inv) => *inv,
        Parsed::Help(_) | Parsed::Version(_) => panic!("help or version"),
    }
}

#[test]
fn splits_ours_helms_globals_and_rollback_flags() {
    let inv = invocation(&[
        "-n",
        "team",
        "web",
        "--timeout",
        "5m",
        "3",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--kube-context=prod",
        "--wait",
        "--no-reconcile",
    ]);
    assert_eq!(inv.release, "web");
    assert_eq!(inv.revision, Some(3));
    assert_eq!(inv.own.output, OutputFormat::Json);
    assert!(inv.own.no_reconcile);
    assert_eq!(inv.helm_global_args, ["-n", "team", "--kube-context=prod"]);
    assert_eq!(
        inv.rollback_args,
        ["--timeout", "5m", "--cleanup-on-fail", "--wait"]
    );
    assert!(inv.rollback.cleanup_on_fail);
    assert_eq!(inv.kube.namespace.as_deref(), Some("team"));
    assert_eq!(inv.kube.kube_context.as_deref(), Some("prod"));
}

#[test]
fn revision_zero_or_none_means_previous() {
    assert_eq!(invocation(&["web"]).revision, None);
    assert_eq!(invocation(&["web", "0"]).revision, None);
}

#[test]
fn bad_revisions_and_names_are_one_line_errors() {
    for (args, expected) in [
        (&["web", "-1"][..], "must be a positive number"),
        (&["web", "two"][..], "not a number"),
        (&["Web_1"][..], "invalid release name"),
        (&[][..], "requires at least 1 argument"),
        (&["a", "1", "2"][..], "at most 2 arguments"),
        (&["a", "--output", "xml"][..], "invalid value 'xml'"),
        (&["a", "--timeout"][..], "flag needs an argument: --timeout"),
        (
            &["a", "2", "--diagnose"][..],
            "--diagnose takes no REVISION",
        ),
        (
            &["a", "--diagnose", "--finish"][..],
            "--diagnose takes no REVISION",
        ),
    ] {
        let err = parse_with(args, &[]).err().unwrap().to_string();
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains('\n'), "{args:?}: {err}");
    }
}

#[test]
fn helm_environment_fills_what_flags_do_not_say() {
    let env = [
        ("HELM_NAMESPACE", "from-env"),
        ("HELM_KUBECONTEXT", "ctx"),
        ("HELM_DEBUG", "true"),
        ("HELM_KUBEASGROUPS", "a, b"),
    ];
    let Parsed::Run(inv) = parse_with(&["web"], &env).unwrap() else {
        panic!()
    };
    assert_eq!(inv.kube.namespace.as_deref(), Some("from-env"));
    assert_eq!(inv.kube.kube_context.as_deref(), Some("ctx"));
    assert!(inv.kube.debug);
    assert_eq!(inv.kube.kube_as_groups, ["a", "b"]);
    let Parsed::Run(inv) = parse_with(&["web", "--namespace=flag"], &env).unwrap() else {
        panic!()
    };
    assert_eq!(inv.kube.namespace.as_deref(), Some("flag"));
}

#[test]
fn kubectl_gets_the_same_connection() {
    let inv = invocation(&[
        "web",
        "--kube-apiserver",
        "https://x",
        "--kube-token=t",
        "--kube-insecure-skip-tls-verify",
    ]);
    assert_eq!(
        inv.kube.kubectl_args(),
        [
            "--server=https://x",
            "--token=t",
            "--insecure-skip-tls-verify=true"
        ]
    );
}

#[test]
fn help_is_ours() {
    let Parsed::Help(text) = parse_with(&["--help"], &[]).unwrap() else {
        panic!()
    };
    assert!(text.contains("helm safe-rollback RELEASE [REVISION]"));
    assert!(text.contains("--cleanup-on-fail"));
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for exit in Exit::DOCUMENTED {
        assert!(flat.contains(exit.summary()), "{}", exit.summary());
    }
}

#[test]
fn version_needs_no_release_and_takes_the_helm_to_ask() {
    let version = |args: &[&str]| match parse_with(args, &[]).unwrap() {
        Parsed::Version(helm) => helm,
        _ => panic!("--version"),
    };
    assert_eq!(version(&["--version"]), PathBuf::from("helm"));
    assert_eq!(
        version(&["web", "--helm", "/opt/helm4", "--version"]),
        PathBuf::from("/opt/helm4")
    );
}

#[test]
fn tokens_are_redacted() {
    let args: Vec<String> = ["--kube-token", "s3cret", "--kube-token=s3cret", "-n", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let redacted = redact(&args).join(" ");
    assert!(!redacted.contains("s3cret"));
    assert!(redacted.contains("-n x"));
}
