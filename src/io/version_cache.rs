//! Remembers what `helm version` printed for a given helm binary, so that a run does not pay for
//! one more helm process (a fifth of capture's CPU on two cores) to learn something that only
//! changes when the binary does.
//!
//! An entry is keyed by the binary's identity on disk — device, inode, size, modification and
//! change times — so replacing or rewriting helm (an upgrade, a `cp` over it) misses the cache.
//! Only a real helm executable is cached: a version manager's shim (asdf's script, mise's or
//! aqua's symlink to their own binary) picks a helm per directory or per environment, so its
//! answer is not a property of the file and is asked every time.
//!
//! Every failure here is a cache miss, never an error: helm itself is the fallback.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where entries live: helm's own cache home, like helm resolves it ($HELM_CACHE_HOME, else
/// $XDG_CACHE_HOME/helm, else ~/.cache/helm), in a directory of ours.
pub fn default_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    let helm_cache = set("HELM_CACHE_HOME")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("helm")))
        .or_else(|| set("HOME").map(|d| d.join(".cache/helm")))?;
    Some(helm_cache.join("safe-rollback/helm-version"))
}

/// The entry name for this helm binary, or `None` when it must not be cached.
pub fn key(helm: &Path) -> Option<String> {
    let resolved = resolve(helm)?;
    let real = std::fs::canonicalize(resolved).ok()?;
    let named_helm = real
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("helm"));
    if !named_helm || !is_native_executable(&real) {
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    Some(format!(
        "{}-{}-{}-{}.{}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// A bare name is looked up on PATH, as the spawn would.
fn resolve(helm: &Path) -> Option<PathBuf> {
    if helm.components().count() > 1 {
        return Some(helm.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(helm))
        .find(|candidate| candidate.is_file())
}

/// ELF or Mach-O (thin or universal): compiled, so not a script choosing a helm at run time.
fn is_native_executable(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            magic,
            [0x7f, b'E', b'L', b'F']
                | [0xfe, 0xed, 0xfa, 0xce | 0xcf]
                | [0xce | 0xcf, 0xfa, 0xed, 0xfe]
                | [0xca, 0xfe, 0xba, 0xbe]
        )
}

pub fn load(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(key)).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Written to a temporary file and renamed, so a concurrent run reads all of it or nothing.
pub fn store(dir: &Path, key: &str, version_output: &str) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let temporary = dir.join(format!(".{key}.{}", std::process::id()));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(version_output.trim().as_bytes())?;
        std::fs::rename(&temporary, dir.join(key))
    };
    let _ = write();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn executable(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_compiled_helm_is_cached_and_a_new_binary_misses() {
        let dir = tempfile::tempdir().unwrap();
        let helm = executable(dir.path(), "helm", b"\x7fELF one");
        let first = key(&helm).expect("an ELF named helm is cached");
        executable(dir.path(), "helm", b"\x7fELF two, longer");
        assert_ne!(key(&helm), Some(first));
    }

    #[test]
    fn a_symlinked_helm_is_keyed_by_the_binary_it_points_at() {
        let dir = tempfile::tempdir().unwrap();
        let helm = executable(dir.path(), "helm-3.17.3", b"\x7fELF");
        let link = dir.path().join("helm");
        std::os::unix::fs::symlink(&helm, &link).unwrap();
        assert_eq!(key(&link), key(&helm));
        assert!(key(&link).is_some());
    }

    #[test]
    fn shims_and_scripts_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let script = executable(
            dir.path(),
            "helm",
            b"#!/bin/sh\nexec asdf exec helm \"$@\"\n",
        );
        assert_eq!(key(&script), None);
        // mise and aqua: `helm` is a symlink to the version manager's own binary.
        let manager = executable(dir.path(), "mise", b"\x7fELF");
        let shim_dir = dir.path().join("shims");
        std::fs::create_dir(&shim_dir).unwrap();
        std::os::unix::fs::symlink(&manager, shim_dir.join("helm")).unwrap();
        assert_eq!(key(&shim_dir.join("helm")), None);
    }

    #[test]
    fn a_missing_binary_is_a_miss() {
        assert_eq!(key(Path::new("/nonexistent/helm")), None);
    }

    #[test]
    fn an_entry_is_read_back_and_a_damaged_one_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        assert_eq!(load(&cache, "k"), None);
        store(&cache, "k", "v3.17.3+ge4da497\n");
        assert_eq!(load(&cache, "k").as_deref(), Some("v3.17.3+ge4da497"));
        std::fs::write(cache.join("k"), "").unwrap();
        assert_eq!(load(&cache, "k"), None);
    }

    #[test]
    fn the_cache_lives_in_helms_cache_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string())
            }
        };
        let dir = |pairs| default_dir(&env(pairs));
        assert_eq!(
            dir(&[("HELM_CACHE_HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/h/safe-rollback/helm-version"))
        );
        assert_eq!(
            dir(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")]),
            Some(PathBuf::from("/x/helm/safe-rollback/helm-version"))
        );
        assert_eq!(
            dir(&[("HOME", "/home/u")]),
            Some(PathBuf::from(
                "/home/u/.cache/helm/safe-rollback/helm-version"
            ))
        );
        assert_eq!(dir(&[]), None);
    }
}
