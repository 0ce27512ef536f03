//! Helm's own flags, read once and the way helm reads them (spf13/pflag).
//!
//! We pass helm's flags through unchanged, but several decisions depend on them: whether helm
//! will clean up (`--cleanup-on-fail`), whether it changes anything (`--dry-run`), how long it may
//! take (`--timeout`). Separate scans of the arguments would disagree (`--cleanup-on-fail=false`
//! counted as cleanup in one and not in another), so this module is the one reader: the tables of which flags take values, pflag's boolean syntax
//! (`--f`, `--f=true|false|1|0|t|f…`, never `--f false`), and Go's duration syntax.

use anyhow::{bail, Result};

/// Helm's global flags that take a value (helm 3.9 to 4.3), as `name` without dashes.
pub const GLOBAL_VALUE_FLAGS: &[&str] = &[
    "burst-limit",
    "color",
    "colour",
    "content-cache",
    "kube-apiserver",
    "kube-as-group",
    "kube-as-user",
    "kube-ca-file",
    "kube-context",
    "kube-tls-server-name",
    "kube-token",
    "kubeconfig",
    "namespace",
    "qps",
    "registry-config",
    "repository-cache",
    "repository-config",
];
pub const GLOBAL_BOOL_FLAGS: &[&str] = &["debug", "kube-insecure-skip-tls-verify"];
/// `helm rollback`'s flags that take a separate value (`--timeout 5m`). helm 4's `--server-side`
/// is one of them (it has no default when given bare); its `--wait` and `--dry-run` have an
/// optional value, which pflag only takes as `--flag=value`.
pub const ROLLBACK_VALUE_FLAGS: &[&str] = &["description", "history-max", "server-side", "timeout"];

/// `helm rollback`'s own flags, as each major's `cmd/rollback.go` defines them (the same from
/// helm 3.9 to 3.19; from 4.0 on, with `--description` from 4.3). None has a shorthand.
const HELM3_ROLLBACK_FLAGS: &[&str] = &[
    "cleanup-on-fail",
    "dry-run",
    "force",
    "history-max",
    "no-hooks",
    "recreate-pods",
    "timeout",
    "wait",
    "wait-for-jobs",
];
const HELM4_ROLLBACK_FLAGS: &[&str] = &[
    "cleanup-on-fail",
    "description",
    "dry-run",
    "force",
    "force-conflicts",
    "force-replace",
    "history-max",
    "no-hooks",
    "server-side",
    "timeout",
    "wait",
    "wait-for-jobs",
];

/// The first of `rollback_args` that this helm's `helm rollback` does not know, in pflag's
/// words (`unknown flag: --x`, `unknown shorthand flag: 'x' in -x`): helm would stop on it, but
/// only after the capture and the preflight, so it is a usage error before anything runs.
pub fn unknown_rollback_flag(rollback_args: &[String], helm_version: &str) -> Option<String> {
    let mut numbers = helm_version.trim_start_matches('v').split('.');
    let mut number = || {
        numbers
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (major, minor) = (number(), number());
    let known = |name: &str| match major {
        3 => HELM3_ROLLBACK_FLAGS.contains(&name),
        _ if name == "description" => minor >= 3,
        _ => HELM4_ROLLBACK_FLAGS.contains(&name),
    };
    let mut args = rollback_args.iter();
    while let Some(arg) = args.next() {
        let Some(name) = flag_name(arg) else {
            continue;
        };
        if !arg.starts_with("--") {
            return Some(format!("unknown shorthand flag: '{name}' in {arg}"));
        }
        if !known(&name) {
            return Some(format!("unknown flag: --{name}"));
        }
        if ROLLBACK_VALUE_FLAGS.contains(&name.as_str()) && !arg.contains('=') {
            args.next();
        }
    }
    None
}

/// The `helm rollback` flags our own decisions depend on, as helm will read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackFlags {
    pub cleanup_on_fail: bool,
    /// helm 3's `--dry-run`, helm 4's `--dry-run[=client|server]`: nothing will change.
    pub dry_run: bool,
    /// `--wait` (helm 3) or a helm 4 strategy that waits for resources (`watcher`, `legacy`).
    pub wait: bool,
    pub wait_for_jobs: bool,
    /// `--timeout`, as helm will read it.
    pub timeout: Option<std::time::Duration>,
    /// helm 4's `--server-side`: `Some(true)` / `Some(false)` when it names a method (a value
    /// that is no boolean reads as `false`), `None` when not given or `auto`.
    pub server_side: Option<bool>,
    /// helm 3's `--force`, helm 4's `--force-replace`: an object helm cannot patch is deleted
    /// and created again.
    pub replaces: bool,
    /// helm 4's `--force-conflicts`: a server-side apply takes fields other managers own.
    pub force_conflicts: bool,
}

/// How long we wait for deleted objects to be gone when the user gave helm no `--timeout`.
pub const DEFAULT_DELETE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl RollbackFlags {
    /// How long to wait for deletes: helm's `--timeout` when the user gave one (helm's own
    /// meaning: how long to wait for any single Kubernetes operation), else
    /// [`DEFAULT_DELETE_WAIT`].
    pub fn delete_wait(&self) -> std::time::Duration {
        self.timeout.unwrap_or(DEFAULT_DELETE_WAIT)
    }
}

/// Reads `helm rollback` flags (as the user wrote them, or as a journal recorded them). A value
/// helm would reject is a usage error here too, so we never act on a guess.
pub fn rollback_flags(args: &[String]) -> Result<RollbackFlags> {
    let mut flags = RollbackFlags::default();
    // Global flags may be mixed in (a journal records both): their values are not ours to read.
    let value_flags = [ROLLBACK_VALUE_FLAGS, GLOBAL_VALUE_FLAGS].concat();
    for (name, value) in pairs(args, &value_flags) {
        let value = value.as_deref();
        match name.as_str() {
            "cleanup-on-fail" => flags.cleanup_on_fail = boolean(&name, value)?,
            "wait-for-jobs" => flags.wait_for_jobs = boolean(&name, value)?,
            "dry-run" => flags.dry_run = !matches!(value, Some("none") | Some("false")),
            "wait" => {
                flags.wait = match value {
                    None => true,
                    Some("watcher" | "legacy") => true,
                    Some("hookOnly") => false,
                    Some(other) => boolean(&name, Some(other))?,
                }
            }
            "timeout" => {
                let text = value.unwrap_or_default();
                let parsed = go_duration(text).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
                flags.timeout = Some(parsed.try_into().map_err(|_| {
                    anyhow::anyhow!("--timeout: invalid duration {text:?} (negative)")
                })?);
            }
            "server-side" => {
                flags.server_side = value
                    .filter(|v| *v != "auto")
                    .map(|v| parse_bool(v).unwrap_or(false))
            }
            "force" | "force-replace" => flags.replaces = boolean(&name, value)?,
            "force-conflicts" => flags.force_conflicts = boolean(&name, value)?,
            _ => {}
        }
    }
    Ok(flags)
}

/// A helm global boolean flag's value, the last one given; `None` when it was not given.
pub fn global_bool(args: &[String], name: &str) -> Result<Option<bool>> {
    let mut result = None;
    for (flag, value) in pairs(args, GLOBAL_VALUE_FLAGS) {
        if flag == name {
            result = Some(boolean(&flag, value.as_deref())?);
        }
    }
    Ok(result)
}

/// Every value given for a helm global value flag, in order.
pub fn global_values(args: &[String], name: &str) -> Vec<String> {
    pairs(args, GLOBAL_VALUE_FLAGS)
        .into_iter()
        .filter(|(flag, _)| flag == name || (name == "namespace" && flag == "n"))
        .filter_map(|(_, value)| value)
        .collect()
}

/// `(name, value)` for every flag in `args`, pflag-style: `--name=value`, `-xvalue`, or
/// `--name value` when `name` is one of `value_flags`; bare flags have no value.
fn pairs(args: &[String], value_flags: &[&str]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(name) = flag_name(arg) else {
            continue;
        };
        let inline = if let Some(long) = arg.strip_prefix("--") {
            long.split_once('=').map(|(_, v)| v.to_string())
        } else {
            (arg.len() > 2).then(|| arg[2..].trim_start_matches('=').to_string())
        };
        let takes_value = value_flags.contains(&name.as_str()) || name == "n";
        let value = match inline {
            Some(value) => Some(value),
            None if takes_value => iter.next().cloned(),
            None => None,
        };
        out.push((name, value));
    }
    out
}

/// `--name=value` → `name`, `-n` → `n`, `-nfoo` → `n`; `value` and `-1` are not flags.
pub fn flag_name(arg: &str) -> Option<String> {
    if let Some(long) = arg.strip_prefix("--") {
        return Some(long.split('=').next().unwrap_or("").to_string());
    }
    let short = arg.strip_prefix('-')?;
    let first = short.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    Some(first.to_string())
}

/// pflag's boolean: bare means true; a value is read like Go's `strconv.ParseBool`.
fn boolean(name: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None => Ok(true),
        Some(v) => parse_bool(v).ok_or_else(|| {
            anyhow::anyhow!("invalid argument {v:?} for \"--{name}\" flag: not a boolean")
        }),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` (`5m0s`, `1h30m`, `-90s`, `1.5h`, `300ms`), with its limit: a
/// duration that does not fit in 64-bit nanoseconds (about 292 years) is an error, not a crash.
pub fn go_duration(text: &str) -> Result<jiff::SignedDuration> {
    let invalid = || anyhow::anyhow!("invalid duration {text:?} (expected e.g. 5m0s, 90s, 1h)");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(jiff::SignedDuration::ZERO);
    }
    if rest.is_empty() {
        bail!(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let nanos_per_unit: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => bail!(invalid()),
        };
        total += scaled(number, nanos_per_unit).ok_or_else(invalid)?;
        if total > i64::MAX as i128 {
            bail!(invalid());
        }
        rest = after;
    }
    let nanos = if negative { -total } else { total } as i64;
    Ok(jiff::SignedDuration::from_nanos(nanos))
}

/// `number` (digits, at most one `.`) times `unit` nanoseconds, exactly; `None` when malformed
/// or beyond what a duration can hold.
fn scaled(number: &str, unit: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut nanos: i128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
        if nanos > i64::MAX as i128 {
            return None;
        }
    }
    nanos = nanos.checked_mul(unit)?;
    let mut scale = unit;
    for digit in fraction.bytes().take(30) {
        if !digit.is_ascii_digit() {
            return None;
        }
        scale /= 10;
        nanos += i128::from(digit - b'0') * scale;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_delete_wait_follows_helms_timeout() {
        let wait = |words: &[&str]| rollback_flags(&args(words)).unwrap().delete_wait();
        assert_eq!(wait(&["--wait"]), DEFAULT_DELETE_WAIT);
        assert_eq!(
            wait(&["--timeout", "5m0s", "--wait"]),
            std::time::Duration::from_secs(300)
        );
        assert_eq!(wait(&["--timeout=90s"]), std::time::Duration::from_secs(90));
    }

    #[test]
    fn booleans_follow_pflag() {
        for (given, expected) in [
            (&["--cleanup-on-fail"][..], true),
            (&["--cleanup-on-fail=true"][..], true),
            (&["--cleanup-on-fail=1"][..], true),
            (&["--cleanup-on-fail=T"][..], true),
            (&["--cleanup-on-fail=false"][..], false),
            (&["--cleanup-on-fail=0"][..], false),
            (&["--cleanup-on-fail", "--cleanup-on-fail=False"][..], false),
            (&["--cleanup-on-fail-not-a-flag"][..], false),
            (&[][..], false),
        ] {
            let flags = rollback_flags(&args(given)).unwrap();
            assert_eq!(flags.cleanup_on_fail, expected, "{given:?}");
        }
        let err = rollback_flags(&args(&["--cleanup-on-fail=maybe"])).unwrap_err();
        assert!(err.to_string().contains("not a boolean"), "{err}");
    }

    #[test]
    fn a_bool_flag_never_takes_the_next_argument() {
        // pflag: `--wait-for-jobs false` is the flag, then a positional `false`.
        let flags = rollback_flags(&args(&["--wait-for-jobs", "false"])).unwrap();
        assert!(flags.wait_for_jobs);
    }

    #[test]
    fn dry_run_and_wait_in_both_helms_spellings() {
        let read = |list: &[&str]| rollback_flags(&args(list)).unwrap();
        assert!(read(&["--dry-run"]).dry_run);
        assert!(read(&["--dry-run=server"]).dry_run);
        assert!(read(&["--dry-run=client"]).dry_run);
        assert!(!read(&["--dry-run=none"]).dry_run);
        assert!(!read(&["--dry-run=false"]).dry_run);
        assert!(read(&["--wait"]).wait);
        assert!(read(&["--wait=watcher"]).wait);
        assert!(!read(&["--wait=hookOnly"]).wait);
        assert!(!read(&["--wait=false"]).wait);
        assert_eq!(read(&["--server-side=auto"]).server_side, None);
        assert_eq!(read(&["--server-side", "true"]).server_side, Some(true));
        assert_eq!(
            read(&["--server-side", "false", "--timeout", "90s"]),
            RollbackFlags {
                server_side: Some(false),
                timeout: Some(std::time::Duration::from_secs(90)),
                ..RollbackFlags::default()
            }
        );
    }

    #[test]
    fn durations_as_go_reads_them() {
        let secs = |t: &str| go_duration(t).unwrap().as_secs_f64();
        assert_eq!(secs("5m0s"), 300.0);
        assert_eq!(secs("1h30m"), 5400.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("-90s"), -90.0);
        assert_eq!(go_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(go_duration("1us").unwrap().as_nanos(), 1000);
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("2562047h"), 2562047.0 * 3600.0);
        for bad in [
            "99999999999999999999h",
            "2562048h",
            "5 minutes",
            "m",
            "",
            "1",
            "1.2.3s",
            "1x",
            "-",
        ] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_this_helm_does_not_know_are_named_as_pflag_names_them() {
        let unknown = |list: &[&str], major| {
            let version = match major {
                3 => "v3.17.3",
                _ => "v4.3.1",
            };
            unknown_rollback_flag(&args(list), version)
        };
        let both = [
            "--wait",
            "--timeout",
            "5m",
            "--history-max=3",
            "--cleanup-on-fail",
        ];
        assert_eq!(unknown(&both, 3), None);
        assert_eq!(unknown(&both, 4), None);
        assert_eq!(unknown(&["--recreate-pods"], 3), None);
        assert_eq!(
            unknown(&["--recreate-pods"], 4).as_deref(),
            Some("unknown flag: --recreate-pods")
        );
        assert_eq!(
            unknown(&["--server-side", "true", "--force-conflicts"], 4),
            None
        );
        assert_eq!(
            unknown(&["--server-side=true"], 3).as_deref(),
            Some("unknown flag: --server-side")
        );
        assert_eq!(
            unknown(&["--description", "x"], 3).as_deref(),
            Some("unknown flag: --description")
        );
        assert_eq!(
            unknown(&["--timeout", "5m", "--x"], 4).as_deref(),
            Some("unknown flag: --x")
        );
        assert_eq!(
            unknown(&["-z1"], 3).as_deref(),
            Some("unknown shorthand flag: 'z' in -z1")
        );
        let description = args(&["--description", "x"]);
        assert_eq!(unknown_rollback_flag(&description, "v4.3.1"), None);
        assert_eq!(
            unknown_rollback_flag(&description, "v4.2.3").as_deref(),
            Some("unknown flag: --description"),
            "helm 4.3 added it"
        );
        // A value that looks like a flag belongs to the flag before it.
        assert_eq!(unknown(&["--description", "--not-a-flag"], 4), None);
    }

    #[test]
    fn global_flags_in_every_spelling() {
        let given = args(&["-n", "a", "--namespace=b", "-nc", "--kube-context", "x"]);
        assert_eq!(global_values(&given, "namespace"), ["a", "b", "c"]);
        assert_eq!(global_values(&given, "kube-context"), ["x"]);
        assert_eq!(
            global_bool(&args(&["--debug=false"]), "debug").unwrap(),
            Some(false)
        );
        assert_eq!(
            global_bool(&args(&["--debug"]), "debug").unwrap(),
            Some(true)
        );
        assert_eq!(global_bool(&args(&[]), "debug").unwrap(), None);
        assert!(global_bool(&args(&["--debug=yes"]), "debug").is_err());
    }
}
