//! The journal: the run's record (`domain::record`) on disk, written before the rollback runs,
//! completed after.
//!
//! If we are killed half-way, the journal is what tells the next run (or a human at 3 a.m.)
//! what the cluster looked like before. Writes are atomic (write a sibling, fsync, rename), files
//! are private (0600 in 0700 directories), and only identities are stored, never object data.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::domain::record::Record;
use crate::domain::snapshot::Snapshot;
use anyhow::{bail, Context, Result};

/// `$XDG_STATE_HOME/helm-safe-rollback`, else `~/.local/state/helm-safe-rollback`.
pub fn default_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(state) = env("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state).join("helm-safe-rollback"));
    }
    match env("HOME").filter(|s| !s.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/helm-safe-rollback")),
        None => bail!("cannot find a place for the journal: set XDG_STATE_HOME or --journal-dir"),
    }
}

pub struct Journal {
    pub path: PathBuf,
}

/// Held while a run works on a release; the OS releases it when the process dies, however it
/// dies, so a stale lock cannot outlive a SIGKILL.
pub struct ReleaseLock {
    _file: File,
}

/// Takes the per-release lock, or `None` when another run on this machine holds it.
pub fn lock_release(dir: &Path, namespace: &str, release: &str) -> Result<Option<ReleaseLock>> {
    let folder = release_dir(dir, namespace, release)?;
    let path = folder.join(".lock");
    let file = private_file_keep(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ReleaseLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// What an interrupted run left: enough to finish its reconcile.
#[derive(Debug, serde::Deserialize)]
pub struct Unfinished {
    #[serde(skip)]
    pub path: PathBuf,
    pub state: String,
    pub pid: u32,
    pub helm_args: Vec<String>,
    pub snapshot: Snapshot,
    /// The rollbacks it recorded (counted only: see `concurrency::assess`).
    #[serde(default)]
    pub attempts: Vec<serde::de::IgnoredAny>,
}

/// Journals of this release still in state `captured`. Called with the release lock held, so
/// their writers are dead: a run that completes always marks its journal `completed`.
/// (`--diagnose` reads them without the lock, and asks [`writer_running`] instead.)
pub fn unfinished(dir: &Path, namespace: &str, release: &str) -> Result<Vec<Unfinished>> {
    let folder = release_dir(dir, namespace, release)?;
    let mut found = Vec::new();
    for entry in fs::read_dir(&folder)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        // Completed journals pile up, one per run, and most are large: look at the head of each
        // first (`state` is the third field written) and parse only the rest in full. Should
        // the head not say, the full parse decides: speed depends on the order, the answer not.
        if head_says_completed(&path) {
            continue;
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        // A journal we cannot read is not ours to act on; it stays for a human.
        if let Ok(mut record) = serde_json::from_slice::<Unfinished>(&bytes) {
            if record.state == "captured" {
                record.path = path;
                found.push(record);
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Whether this release has journals under `dir` at all: read-only callers (`--diagnose`) ask
/// first, since looking a release's journals up creates its directory.
pub fn has_journals(dir: &Path, namespace: &str, release: &str) -> bool {
    is_safe_component(namespace)
        && is_safe_component(release)
        && dir.join(namespace).join(release).is_dir()
}

/// Whether the process that wrote an unfinished journal still runs on this machine (then it
/// is working, not dead). A killed run whose parent (helm) died too can linger as a zombie
/// until init reaps it: it has ended.
pub fn writer_running(run: &Unfinished) -> bool {
    libc::pid_t::try_from(run.pid).is_ok_and(crate::io::process::running)
}

/// What a completed run of ours did to the release's history: the newest revision when it
/// captured, and how many times its helm rollback ran and exited (each creates one revision).
#[derive(Debug, serde::Deserialize)]
pub struct CompletedRun {
    #[serde(skip)]
    pub path: PathBuf,
    pub state: String,
    pub snapshot: Snapshot,
    pub attempts: Vec<AttemptSummary>,
}

#[derive(Debug, serde::Deserialize)]
pub struct AttemptSummary {
    pub number: u32,
    pub rollback: ExitSummary,
}

#[derive(Debug, serde::Deserialize)]
pub struct ExitSummary {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl CompletedRun {
    /// The revisions this run's helm processes created, all of which have exited.
    pub fn created_revisions(&self) -> std::ops::RangeInclusive<u64> {
        let newest = self.snapshot.history.iter().map(|r| r.revision).max();
        let ran = self
            .attempts
            .iter()
            .filter(|a| a.number > 0)
            .filter(|a| a.rollback.exit_code.is_some() || a.rollback.signal.is_some())
            .count() as u64;
        let first = newest.unwrap_or(0) + 1;
        first..=first + ran - 1
    }
}

/// The newest completed journal of this release, if any (journal names sort by time).
pub fn newest_completed(dir: &Path, namespace: &str, release: &str) -> Option<CompletedRun> {
    let folder = release_dir(dir, namespace, release).ok()?;
    let mut paths: Vec<PathBuf> = fs::read_dir(&folder)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let path = paths.into_iter().rev().find(|p| head_says_completed(p))?;
    let bytes = fs::read(&path).ok()?;
    let mut run: CompletedRun = serde_json::from_slice(&bytes).ok()?;
    run.path = path;
    (run.state == "completed").then_some(run)
}

fn head_says_completed(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Ok(file) = File::open(path) else {
        return false;
    };
    let Ok(n) = file.take(head.len() as u64).read(&mut head) else {
        return false;
    };
    head[..n]
        .windows(COMPLETED_MARK.len())
        .any(|w| w == COMPLETED_MARK)
}

const COMPLETED_MARK: &[u8] = b"\"state\": \"completed\"";

fn release_dir(dir: &Path, namespace: &str, release: &str) -> Result<PathBuf> {
    for part in [namespace, release] {
        if !is_safe_component(part) {
            bail!("refusing to use {part:?} in a journal path");
        }
    }
    let folder = dir.join(namespace).join(release);
    create_private_dirs(&folder)
        .with_context(|| format!("cannot create journal directory {}", folder.display()))?;
    Ok(folder)
}

impl Journal {
    /// Chooses the journal file for a new attempt: `DIR/NAMESPACE/RELEASE/TIMESTAMP-PID.json`.
    pub fn create(dir: &Path, namespace: &str, release: &str) -> Result<Journal> {
        let folder = release_dir(dir, namespace, release)?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let path = folder.join(format!("{stamp}-{}.json", std::process::id()));
        Ok(Journal { path })
    }

    pub fn write(&self, record: &Record) -> Result<()> {
        let json = serde_json::to_vec_pretty(record)?;
        let temporary = self.path.with_extension("json.tmp");
        let mut file = private_file(&temporary)
            .with_context(|| format!("cannot write journal {}", temporary.display()))?;
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&temporary, &self.path)
            .with_context(|| format!("cannot write journal {}", self.path.display()))?;
        Ok(())
    }
}

/// Release names and namespaces are DNS-1123 names; anything else could climb out of the state
/// directory.
fn is_safe_component(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

#[cfg(unix)]
fn create_private_dirs(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    // `mode` applies only to directories it creates; the leaf must be private even if it existed.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dirs(path: &Path) -> std::io::Result<()> {
    fs::create_dir_all(path)
}

fn private_file(path: &Path) -> std::io::Result<File> {
    private_open(path, true)
}

fn private_file_keep(path: &Path) -> std::io::Result<File> {
    private_open(path, false)
}

fn private_open(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::State;

    #[test]
    fn paths_cannot_escape_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["..", "a/b", "", "."] {
            assert!(Journal::create(dir.path(), "ns", bad).is_err(), "{bad:?}");
            assert!(Journal::create(dir.path(), bad, "rel").is_err(), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn journal_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::create(dir.path(), "ns", "rel").unwrap();
        fs::write(&journal.path, "{}").unwrap();
        let temporary = journal.path.with_extension("json.tmp");
        let file = private_file(&temporary).unwrap();
        drop(file);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&temporary), 0o600);
        assert_eq!(mode(journal.path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("ns")), 0o700);
    }

    #[test]
    fn a_second_lock_on_the_same_release_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_release(dir.path(), "ns", "rel").unwrap();
        assert!(first.is_some());
        assert!(lock_release(dir.path(), "ns", "rel").unwrap().is_none());
        assert!(lock_release(dir.path(), "ns", "other").unwrap().is_some());
        drop(first);
        assert!(lock_release(dir.path(), "ns", "rel").unwrap().is_some());
    }

    fn record(state: State) -> Record {
        use crate::domain::model::{HelmVersion, ReleaseId};
        let snapshot = Snapshot {
            release: ReleaseId {
                name: "rel".into(),
                namespace: "ns".into(),
            },
            cluster: crate::domain::model::Cluster::default(),
            write_method: crate::domain::dry_run::WriteMethod::ClientSide,
            helm: HelmVersion {
                version: "v3.17.3".into(),
                major: 3,
            },
            history: Vec::new(),
            from_revision: 2,
            to_revision: 1,
            current: Vec::new(),
            target: Vec::new(),
            live: Vec::new(),
            taken_at: String::new(),
            last_successful_revision: None,
            last_successful: Vec::new(),
            target_documents: Vec::new(),
            current_documents: Vec::new(),
        };
        let mut record = Record::captured(1, Vec::new(), snapshot);
        record.state = state;
        record
    }

    /// Completed journals are recognised from their first bytes; captured ones are found.
    #[test]
    fn only_unfinished_journals_are_read_in_full() {
        let dir = tempfile::tempdir().unwrap();
        let done = Journal::create(dir.path(), "ns", "rel").unwrap();
        done.write(&record(State::Completed)).unwrap();
        assert!(head_says_completed(&done.path));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let open = Journal::create(dir.path(), "ns", "rel").unwrap();
        open.write(&record(State::Captured)).unwrap();
        assert!(!head_says_completed(&open.path));
        let found = unfinished(dir.path(), "ns", "rel").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, open.path);
    }

    #[test]
    fn default_dir_follows_xdg() {
        let env = |k: &str| (k == "XDG_STATE_HOME").then(|| "/x".to_string());
        assert_eq!(
            default_dir(&env).unwrap(),
            PathBuf::from("/x/helm-safe-rollback")
        );
        let env = |k: &str| (k == "HOME").then(|| "/h".to_string());
        assert_eq!(
            default_dir(&env).unwrap(),
            PathBuf::from("/h/.local/state/helm-safe-rollback")
        );
    }
}
