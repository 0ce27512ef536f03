//! How a run ends, as one type: every exit code the tool can return, what each means, and the
//! one place that documents them. `--help` is generated from [`Exit::DOCUMENTED`], and a test
//! holds the README's table to it, so the three cannot disagree.

/// The end of a run; [`Exit::code`] is the process's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// The rollback failed: helm's own exit code.
    HelmFailed(i32),
    /// A bad flag, revision or release name: nothing was run.
    Usage,
    /// Nothing was attempted (capture failed): nothing was changed.
    NotAttempted,
    /// A cleanup we attempted did not complete.
    CleanupIncomplete,
    /// Preflight refused: nothing was changed.
    Refused,
    /// Another run holds the release.
    Busy,
    /// helm reported success, but the live objects differ from the target revision.
    Drifted,
    /// `--diagnose` found something wrong with the release (each finding names its fix).
    Findings,
    /// Killed by (helm), or stopped on (before helm ran), signal N.
    Signal(i32),
}

impl Exit {
    /// Every exit, in the order the README's table and `--help` list them (`HelmFailed(1)` and
    /// `Signal(0)` stand for their families).
    pub const DOCUMENTED: [Exit; 10] = [
        Exit::Success,
        Exit::HelmFailed(1),
        Exit::Usage,
        Exit::NotAttempted,
        Exit::CleanupIncomplete,
        Exit::Refused,
        Exit::Busy,
        Exit::Drifted,
        Exit::Findings,
        Exit::Signal(0),
    ];

    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::HelmFailed(code) => code,
            Exit::Usage => 2,
            Exit::NotAttempted => 3,
            Exit::CleanupIncomplete => 4,
            Exit::Refused => 5,
            Exit::Busy => 6,
            Exit::Drifted => 7,
            Exit::Findings => 8,
            Exit::Signal(signal) => 128 + signal,
        }
    }

    /// How helm's own process ended, as our exit: its code, or 128+N when a signal killed it.
    pub fn of_helm(code: Option<i32>, signal: Option<i32>) -> Exit {
        match (code, signal) {
            (Some(code), _) if code != 0 => Exit::HelmFailed(code),
            (_, Some(signal)) => Exit::Signal(signal),
            _ => Exit::HelmFailed(1),
        }
    }

    /// The code as the README's table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Exit::Success => "0",
            Exit::HelmFailed(_) => "helm's code (1)",
            Exit::Usage => "2",
            Exit::NotAttempted => "3",
            Exit::CleanupIncomplete => "4",
            Exit::Refused => "5",
            Exit::Busy => "6",
            Exit::Drifted => "7",
            Exit::Findings => "8",
            Exit::Signal(_) => "128+N",
        }
    }

    /// The meaning in a few words, as `--help` says it.
    pub fn summary(self) -> &'static str {
        match self {
            Exit::Success => "0 success",
            Exit::HelmFailed(_) => "helm's own code when the rollback fails",
            Exit::Usage => "2 usage error",
            Exit::NotAttempted => {
                "3 nothing was attempted (unknown release or revision, unreachable cluster, \
                 missing helm or kubectl)"
            }
            Exit::CleanupIncomplete => "4 cleanup was attempted and did not complete",
            Exit::Refused => "5 refused by preflight (nothing was changed)",
            Exit::Busy => "6 another helm safe-rollback is working on this release",
            Exit::Drifted => {
                "7 helm reported success but live objects differ from the target revision \
                 (drifted)"
            }
            Exit::Findings => "8 --diagnose found something wrong (each finding names its fix)",
            Exit::Signal(_) => "128+N stopped by signal N",
        }
    }

    /// The exit-code paragraph of `--help`, wrapped like the rest of it.
    pub fn help_paragraph() -> String {
        let summaries: Vec<&str> = Exit::DOCUMENTED.iter().map(|e| e.summary()).collect();
        wrap(&format!("Exit codes: {}.", summaries.join("; ")), 95)
    }

    /// As a process exit code: codes beyond 255 (none we make) become 1.
    pub fn process_code(self) -> u8 {
        u8::try_from(self.code()).unwrap_or(1)
    }
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first column of the README's exit-code table.
    fn readme_codes() -> Vec<String> {
        let readme = std::fs::read_to_string("README.md").unwrap();
        let table = readme
            .split("## Exit codes")
            .nth(1)
            .expect("the README has an exit-code section");
        table
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| row.split('|').nth(1).unwrap_or_default().trim().to_string())
            .collect()
    }

    #[test]
    fn the_readme_table_lists_every_exit_in_order() {
        let documented: Vec<&str> = Exit::DOCUMENTED.iter().map(|e| e.label()).collect();
        assert_eq!(readme_codes(), documented);
    }

    #[test]
    fn codes_are_distinct_and_signals_and_helm_keep_their_own() {
        let codes: Vec<i32> = Exit::DOCUMENTED[..9].iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Exit::of_helm(Some(1), None), Exit::HelmFailed(1));
        assert_eq!(Exit::of_helm(None, Some(15)).code(), 143);
        assert_eq!(Exit::of_helm(None, None).code(), 1);
        assert_eq!(Exit::HelmFailed(300).process_code(), 1);
    }

    #[test]
    fn help_names_every_exit() {
        let paragraph = Exit::help_paragraph();
        assert!(paragraph.lines().all(|l| l.len() <= 95), "{paragraph}");
        let flat = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        for exit in Exit::DOCUMENTED {
            assert!(flat.contains(exit.summary()), "{}", exit.summary());
        }
    }
}
