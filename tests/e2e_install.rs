//! Installing the plugin as a user without Rust does, with real helm 3 and helm 4:
//! the release is made by `scripts/release` and served over loopback HTTP by the test
//! (tests/support/file_server.rs); the plugin's own files come without Cargo.toml (a copy of
//! them, the published plugin tarball, or a `git archive` source tarball on a PATH without
//! cargo), so install.sh must download, verify and unpack the release.
//!
//! The archive holds this test build's binary, packaged by `scripts/release --binary`: the same
//! naming, layout, stripping, tar/gzip flags and checksum as a release, without a release build
//! (minutes of LTO) in every test run. What is under test here is the way from a server to
//! `bin/`; the release build itself is checked by `scripts/release --check`.

mod support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::file_server::FileServer;
use support::{HelmMajor, Run, Scenario};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const PLUGIN_FILES: [&str; 5] = [
    "plugin.yaml",
    "install.sh",
    "plugin.complete",
    "LICENSE",
    "README.md",
];
/// Ours, so that no user setting (or another test's) steers an install.
const HSR_VARS: [&str; 4] = [
    "HSR_PREBUILT_BINARY",
    "HSR_RELEASE_ARCHIVE",
    "HSR_RELEASE_BASE_URL",
    "HSR_DOWNLOADER",
];

for_both_helms!(
    plugin_tarball_from_a_server_installs_the_verified_release,
    source_tarball_installs_without_rust,
    failing_downloads_are_retried_with_curl_and_wget,
    tampered_archive_wrong_or_missing_checksum_install_nothing,
    air_gapped_archive_installs_and_needs_its_checksum,
    signed_plugin_tarball_installs_verified_and_a_forgery_is_refused,
);

fn version_in(file: &str, prefix: &str) -> String {
    let text = std::fs::read_to_string(Path::new(REPO).join(file)).unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {file}"));
    line[prefix.len()..].trim().trim_matches('"').to_string()
}

fn version() -> String {
    version_in("Cargo.toml", "version = ")
}

/// install.sh downloads the archive named after plugin.yaml's version, scripts/release names it
/// after Cargo.toml's: they are one version.
#[test]
fn version_has_one_source() {
    assert_eq!(version_in("plugin.yaml", "version:"), version());
}

/// `scripts/release --binary <this test build> --out OUT`.
fn scripts_release(out: &Path) -> Run {
    scripts_release_with(
        out,
        &mut Command::new(Path::new(REPO).join("scripts/release")),
    )
}

/// `scripts/release --binary <this test build> --out OUT` and whatever `command` adds.
fn scripts_release_with(out: &Path, command: &mut Command) -> Run {
    let run = Run::from(
        command
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_helm-safe-rollback"))
            .arg("--out")
            .arg(out)
            .current_dir(REPO)
            .output()
            .expect("run scripts/release"),
    );
    assert_eq!(run.code, 0, "scripts/release:\n{run}");
    run
}

/// A release laid out as published: ROOT/v<version>/<archive>, <archive>.sha256 and the plugin
/// tarball with its .sha256. Made once per test process, read-only for the tests.
struct Release {
    root: tempfile::TempDir,
    version: String,
    /// This platform's archive, e.g. helm-safe-rollback-0.1.0-linux-amd64.tar.gz.
    archive: String,
    plugin_archive: String,
}

impl Release {
    fn path(&self) -> String {
        format!("v{}", self.version)
    }
}

fn release() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let version = version();
        scripts_release(&root.path().join(format!("v{version}")));
        let archive = Run::from(
            Command::new("sh")
                .arg(Path::new(REPO).join("install.sh"))
                .arg("--archive-name")
                .output()
                .unwrap(),
        )
        .ok()
        .stdout
        .trim()
        .to_string();
        Release {
            root,
            plugin_archive: format!("helm-safe-rollback-plugin-{version}.tar.gz"),
            version,
            archive,
        }
    })
}

/// A copy of the release under `dir`, for a test to serve, extend or break.
fn served_release(dir: &Path) -> PathBuf {
    let root = dir.join("served");
    support::copy_dir(release().root.path(), &root);
    root.join(release().path())
}

/// packaging twice gives the same bytes (the build itself: `scripts/release --check`), and the
/// archive is what scripts/release says: one top directory with the binary, LICENSE and
/// README.md, every entry owned by 0/0 and dated SOURCE_DATE_EPOCH (the last commit).
#[test]
fn release_packaging_is_reproducible() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    scripts_release(one.path());
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a later clock must not matter
    scripts_release(two.path());
    let archive = &release().archive;
    for file in [
        archive.clone(),
        format!("{archive}.sha256"),
        release().plugin_archive.clone(),
        format!("{}.sha256", release().plugin_archive),
    ] {
        let first = std::fs::read(one.path().join(&file)).unwrap();
        let second = std::fs::read(two.path().join(&file)).unwrap();
        assert!(first == second, "{file} differs between two packagings");
    }
    let sha256 = std::fs::read_to_string(one.path().join(format!("{archive}.sha256"))).unwrap();
    assert!(
        sha256.ends_with(&format!("  {archive}\n")) && sha256.len() == 64 + 2 + archive.len() + 1,
        "sha256sum format: {sha256:?}"
    );

    let epoch: i64 = Run::from(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(REPO)
            .output()
            .unwrap(),
    )
    .ok()
    .stdout
    .trim()
    .parse()
    .unwrap();
    let date = jiff::Timestamp::from_second(epoch)
        .unwrap()
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    let listing = Run::from(
        Command::new("tar")
            .arg("-tvzf")
            .arg(one.path().join(archive))
            .env("TZ", "UTC")
            .output()
            .unwrap(),
    )
    .ok()
    .stdout;
    let stem = archive.trim_end_matches(".tar.gz");
    let names: Vec<&str> = listing
        .lines()
        .map(|line| line.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{stem}/"),
            format!("{stem}/LICENSE"),
            format!("{stem}/README.md"),
            format!("{stem}/helm-safe-rollback"),
        ],
        "{listing}"
    );
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "owner 0/0: {line}");
        assert!(line.contains(&date), "mtime {date}: {line}");
    }
    let plugin = Run::from(
        Command::new("tar")
            .arg("-tzf")
            .arg(one.path().join(&release().plugin_archive))
            .output()
            .unwrap(),
    )
    .ok()
    .stdout;
    // At the root: helm 3 looks for plugin.yaml there and nowhere else.
    assert_eq!(
        plugin.lines().collect::<Vec<_>>(),
        [
            "LICENSE",
            "README.md",
            "install.sh",
            "plugin.complete",
            "plugin.yaml"
        ],
        "{plugin}"
    );
}

/// A platform without releases: one line naming it and how to build from source, nothing else.
#[test]
fn unsupported_platform_is_named_with_the_way_to_build_from_source() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_files(dir.path());
    let fake = dir.path().join("fake-bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("uname"),
        "#!/bin/sh\ncase \"$1\" in -s) echo SunOS ;; -m) echo sparc64 ;; esac\n",
    )
    .unwrap();
    chmod_x(&fake.join("uname"));
    let mut path = vec![fake];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    let mut command = Command::new("sh");
    for var in HSR_VARS {
        command.env_remove(var);
    }
    let run = Run::from(
        command
            .arg(plugin.join("install.sh"))
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("HELM_PLUGIN_DIR", &plugin)
            .env("HSR_RELEASE_BASE_URL", "http://127.0.0.1:9")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{run}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{run}");
    assert!(
        lines[0].contains("no prebuilt binary for sunos-sparc64")
            && lines[0].contains("build from source")
            && lines[0].contains("Rust >= 1.89"),
        "{run}"
    );
    assert!(!plugin.join("bin").exists(), "nothing installed");
}

fn chmod_x(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The plugin's files as a user gets them without the sources: no Cargo.toml, so install.sh
/// cannot build and must download.
fn plugin_files(dir: &Path) -> PathBuf {
    let plugin = dir.join("plugin-files");
    std::fs::create_dir_all(&plugin).unwrap();
    for file in PLUGIN_FILES {
        std::fs::copy(Path::new(REPO).join(file), plugin.join(file)).unwrap();
    }
    assert!(!plugin.join("Cargo.toml").exists());
    plugin
}

/// PATH as a user without Rust has it: this scenario's helm and kubectl, then the test's PATH
/// without any directory that holds cargo.
fn path_without_cargo(s: &Scenario) -> std::ffi::OsString {
    let mut paths = vec![s.tools_dir()];
    paths.extend(
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .filter(|dir| !dir.join("cargo").exists()),
    );
    std::env::join_paths(paths).unwrap()
}

/// `helm plugin install ARGS…` in the scenario's helm homes as a user without Rust runs it, with
/// `env` as the only settings of ours.
fn helm_plugin_install(s: &Scenario, args: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let mut command = Command::new(support::USER_HELM);
    s.user_env(&mut command);
    command.env("PATH", path_without_cargo(s));
    for var in HSR_VARS {
        command.env_remove(var);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.args(["plugin", "install"]).args(args);
    Run::from(command.output().expect("run helm plugin install"))
}

/// helm 4 verifies a plugin tarball's signature (a .prov beside it) unless told not to; helm 3
/// has no such check (and no such flag). The tests' shared release is unsigned, as a build
/// without the project's key is; the signed one has a test of its own.
fn unsigned_tarball_flags(helm: HelmMajor) -> &'static [&'static str] {
    match helm {
        HelmMajor::V3 => &[],
        HelmMajor::V4 => &["--verify=false"],
    }
}

/// `helm safe-rollback --help` through the installed plugin.
fn help(s: &Scenario) -> Run {
    let mut command = Command::new(support::USER_HELM);
    s.user_env(&mut command);
    Run::from(command.args(["safe-rollback", "--help"]).output().unwrap())
}

fn assert_installed(s: &Scenario, install: &Run) {
    assert_eq!(install.code, 0, "helm plugin install:\n{install}");
    assert!(
        install.stdout.contains("Installed plugin: safe-rollback"),
        "{install}"
    );
    let help = help(s);
    assert_eq!(help.code, 0, "{help}");
    assert!(
        help.stdout
            .contains("helm safe-rollback RELEASE [REVISION]"),
        "{help}"
    );
}

/// Files named like our binary or a partial copy of it anywhere in the helm homes or the
/// scenario's plugin copy, and install.sh's temporary dirs left in the scenario's TMPDIR.
fn leftovers(s: &Scenario) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![
        s.home.path().join("data"),
        s.home.path().join("plugin-files"),
    ];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            // metadata() follows helm's symlink to a local plugin dir.
            if path.metadata().is_ok_and(|m| m.is_dir()) {
                stack.push(path);
            } else if name == "helm-safe-rollback" || name.contains(".partial") {
                found.push(path);
            }
        }
    }
    for entry in std::fs::read_dir(s.temp_dir()).unwrap().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("hsr-install.")
        {
            found.push(entry.path());
        }
    }
    found
}

/// A refused install: it failed, its last line of ours says `why`, every other line of ours is
/// a retry notice, no binary is anywhere and `helm safe-rollback` does not run.
fn assert_refused(s: &Scenario, install: &Run, why: &str) {
    assert_ne!(install.code, 0, "must be refused:\n{install}");
    let ours: Vec<&str> = install
        .stderr
        .lines()
        .filter(|line| line.starts_with("helm-safe-rollback install: "))
        .collect();
    let (last, before) = ours.split_last().unwrap_or_else(|| panic!("{install}"));
    assert!(
        last.contains(why),
        "expected {why:?} in the last line:\n{install}"
    );
    assert!(
        before.iter().all(|line| line.contains("retrying")),
        "one line besides retry notices:\n{install}"
    );
    assert_eq!(leftovers(s), Vec::<PathBuf>::new(), "{install}");
    assert_ne!(help(s).code, 0, "the plugin must not run");
}

/// The one-line install of the README: `helm plugin install <plugin tarball URL>`; its hook
/// downloads the archive and its checksum from the same release.
fn plugin_tarball_from_a_server_installs_the_verified_release(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "install-tarball");
    let server = FileServer::start(release().root.path());
    let url = format!(
        "{}/{}/{}",
        server.url(),
        release().path(),
        release().plugin_archive
    );
    let base = server.url();
    let env = [("HSR_RELEASE_BASE_URL", OsStr::new(&base))];

    if helm == HelmMajor::V4 {
        let unsigned = helm_plugin_install(&s, &[&url], &env);
        assert_ne!(unsigned.code, 0, "helm 4 verifies by default:\n{unsigned}");
        assert!(unsigned.stderr.contains(".prov"), "{unsigned}");
    }
    let mut args = unsigned_tarball_flags(helm).to_vec();
    args.push(&url);
    let install = helm_plugin_install(&s, &args, &env);
    assert_installed(&s, &install);
    let log = server.log();
    let archive = format!("/{}/{}", release().path(), release().archive);
    for request in [
        format!("GET {archive}.sha256 200"),
        format!("GET {archive} 200"),
    ] {
        assert!(log.contains(&request), "{request} in {log:#?}");
    }
}

/// `helm plugin install <URL of a source tarball>` made by `git archive`: with no cargo on PATH
/// the hook downloads the release instead of building. helm 3 needs plugin.yaml at the tarball's
/// root, so a tarball with a top directory (as GitHub's source downloads have) is refused by
/// helm 3 and installed by helm 4.
fn source_tarball_installs_without_rust(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "install-source");
    let served = served_release(s.home.path());
    let version = &release().version;
    let server = FileServer::start(served.parent().unwrap());
    let base = server.url();
    let env = [("HSR_RELEASE_BASE_URL", OsStr::new(&base))];
    let install = |tarball: &str| {
        let url = format!("{}/{}/{tarball}", server.url(), release().path());
        let mut args = unsigned_tarball_flags(helm).to_vec();
        args.push(&url);
        helm_plugin_install(&s, &args, &env)
    };

    let with_top_dir = format!("helm-safe-rollback-{version}.tar.gz");
    git_archive(
        &served.join(&with_top_dir),
        Some(&format!("helm-safe-rollback-{version}/")),
    );
    if helm == HelmMajor::V3 {
        let refused = install(&with_top_dir);
        assert_ne!(refused.code, 0, "{refused}");
        assert!(
            refused
                .stderr
                .contains("plugin metadata (plugin.yaml) missing"),
            "{refused}"
        );
        let flat = format!("helm-safe-rollback-{version}-flat.tar.gz");
        git_archive(&served.join(&flat), None);
        assert_installed(&s, &install(&flat));
    } else {
        assert_installed(&s, &install(&with_top_dir));
    }
    let archive = format!("GET /{}/{} 200", release().path(), release().archive);
    assert!(server.log().contains(&archive), "{:#?}", server.log());
}

/// `git archive` of the working tree (`git stash create` makes a commit of it without touching
/// anything; HEAD when there are no changes): what would be published of these sources.
fn git_archive(to: &Path, prefix: Option<&str>) {
    let git = |args: &[&str]| {
        Run::from(
            Command::new("git")
                .args(args)
                .current_dir(REPO)
                .output()
                .unwrap(),
        )
        .ok()
        .stdout
    };
    let stash = git(&["stash", "create"]);
    let rev = Some(stash.trim())
        .filter(|rev| !rev.is_empty())
        .unwrap_or("HEAD");
    let output = format!("--output={}", to.display());
    let prefix = format!("--prefix={}", prefix.unwrap_or(""));
    git(&["archive", "--format=tar.gz", &prefix, &output, rev]);
}

/// A server failing twice in a row is retried through (with curl and with wget); failing three
/// times, the install gives up cleanly.
fn failing_downloads_are_retried_with_curl_and_wget(helm: HelmMajor) {
    let bed = bed_or_skip!();
    for downloader in ["curl", "wget"] {
        let s = Scenario::new(
            bed_clone(&bed),
            helm,
            &format!("install-retry-{downloader}"),
        );
        let server = FileServer::start(release().root.path());
        server.fail_next(2);
        let install = install_from_plugin_files(&s, &server, downloader);
        assert_installed(&s, &install);
        let sha256 = format!("GET /{}/{}.sha256", release().path(), release().archive);
        assert_eq!(
            server.log()[..3],
            [
                format!("{sha256} 503"),
                format!("{sha256} 503"),
                format!("{sha256} 200")
            ],
            "{downloader}"
        );
        assert_eq!(install.stderr.matches("retrying").count(), 2, "{install}");
    }
    let s = Scenario::new(bed, helm, "install-retry-gives-up");
    let server = FileServer::start(release().root.path());
    server.fail_next(3);
    let install = install_from_plugin_files(&s, &server, "curl");
    assert_refused(
        &s,
        &install,
        "refusing to install: cannot download the checksum",
    );
}

fn install_from_plugin_files(s: &Scenario, server: &FileServer, downloader: &str) -> Run {
    let plugin = plugin_files(s.home.path());
    let base = server.url();
    helm_plugin_install(
        s,
        &[plugin.to_str().unwrap()],
        &[
            ("HSR_RELEASE_BASE_URL", OsStr::new(&base)),
            ("HSR_DOWNLOADER", OsStr::new(downloader)),
        ],
    )
}

fn bed_clone(bed: &support::Bed) -> support::Bed {
    support::Bed {
        kubeconfig: bed.kubeconfig.clone(),
        server: bed.server.clone(),
        token: bed.token.clone(),
        ca: bed.ca.clone(),
        helm3: bed.helm3.clone(),
        helm4: bed.helm4.clone(),
        kubectl: bed.kubectl.clone(),
    }
}

/// A changed archive, a checksum that is not the archive's, and no checksum at all: each is
/// refused before anything is unpacked, and nothing is installed.
fn tampered_archive_wrong_or_missing_checksum_install_nothing(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let archive = release().archive.clone();
    type Break = fn(&Path, &str);
    let cases: [(&str, Break, &str); 3] = [
        (
            "tampered",
            |dir, archive| {
                let file = dir.join(archive);
                let mut bytes = std::fs::read(&file).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x01;
                std::fs::write(file, bytes).unwrap();
            },
            "does not match its checksum",
        ),
        (
            "wrong-sum",
            |dir, archive| {
                let sum = format!("{}  {archive}\n", "ab".repeat(32));
                std::fs::write(dir.join(format!("{archive}.sha256")), sum).unwrap();
            },
            "does not match its checksum",
        ),
        (
            "no-sum",
            |dir, archive| std::fs::remove_file(dir.join(format!("{archive}.sha256"))).unwrap(),
            "refusing to install: cannot download the checksum",
        ),
    ];
    for (case, break_it, why) in cases {
        let s = Scenario::new(bed_clone(&bed), helm, &format!("install-{case}"));
        let served = served_release(s.home.path());
        break_it(&served, &archive);
        let server = FileServer::start(served.parent().unwrap());
        let install = install_from_plugin_files(&s, &server, "curl");
        assert_refused(&s, &install, why);
    }
}

/// HSR_RELEASE_ARCHIVE: no network, the checksum file beside the archive, and none is refused.
fn air_gapped_archive_installs_and_needs_its_checksum(helm: HelmMajor) {
    let bed = bed_or_skip!();
    for with_checksum in [true, false] {
        let s = Scenario::new(bed_clone(&bed), helm, "install-air-gapped");
        let carried = s.home.path().join("carried");
        std::fs::create_dir_all(&carried).unwrap();
        let from = release().root.path().join(release().path());
        let archive = carried.join(&release().archive);
        std::fs::copy(from.join(&release().archive), &archive).unwrap();
        if with_checksum {
            let sha256 = format!("{}.sha256", release().archive);
            std::fs::copy(from.join(&sha256), carried.join(&sha256)).unwrap();
        }
        let plugin = plugin_files(s.home.path());
        let install = helm_plugin_install(
            &s,
            &[plugin.to_str().unwrap()],
            &[
                ("HSR_RELEASE_ARCHIVE", archive.as_os_str()),
                // Nothing may be fetched: a base URL that answers nothing.
                ("HSR_RELEASE_BASE_URL", OsStr::new("http://127.0.0.1:9")),
            ],
        );
        if with_checksum {
            assert_installed(&s, &install);
        } else {
            assert_refused(&s, &install, "no checksum file");
        }
    }
}

/// A throwaway gpg key in a GNUPGHOME of its own: what `scripts/release --sign` signs with, and
/// its public half as the binary keyring `helm plugin install --keyring` reads.
struct SigningKey {
    home: tempfile::TempDir,
    fingerprint: String,
    keyring: PathBuf,
}

impl SigningKey {
    fn new() -> SigningKey {
        // gpg's agent socket lives in GNUPGHOME, whose path must stay short.
        let home = tempfile::Builder::new()
            .prefix("hsr-gpg.")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = |args: &[&str]| {
            let output = Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args(["--batch", "--quiet"])
                .args(args)
                .output()
                .expect("gpg is needed to sign a release (Debian/Ubuntu: apt install gnupg)");
            let run = Run::from(output.clone());
            assert!(output.status.success(), "gpg {args:?}:\n{run}");
            output.stdout
        };
        let uid = "helm-safe-rollback test signer <test@helm-safe-rollback.invalid>";
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "rsa3072",
            "sign",
            "never",
        ]);
        let listing = String::from_utf8(gpg(&["--with-colons", "--list-secret-keys"])).unwrap();
        let fingerprint = listing
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_string())
            .expect("a fingerprint");
        let keyring = home.path().join("public.gpg");
        std::fs::write(&keyring, gpg(&["--export", &fingerprint])).unwrap();
        SigningKey {
            home,
            fingerprint,
            keyring,
        }
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// The plugin tarball in `dir` repacked with one more line in install.sh, under the same name:
/// what someone who can write to the release server would publish.
fn forge_plugin_tarball(dir: &Path) {
    let tarball = dir.join(&release().plugin_archive);
    let unpacked = dir.join("forged");
    std::fs::create_dir_all(&unpacked).unwrap();
    let tar = |args: &[&OsStr]| {
        let run = Run::from(Command::new("tar").args(args).output().unwrap());
        assert_eq!(run.code, 0, "tar:\n{run}");
    };
    tar(&[
        "-xzf".as_ref(),
        tarball.as_os_str(),
        "-C".as_ref(),
        unpacked.as_os_str(),
    ]);
    let script = unpacked.join("install.sh");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("\necho FORGED-HOOK-RAN >&2\n");
    std::fs::write(&script, text).unwrap();
    tar(&[
        "-czf".as_ref(),
        tarball.as_os_str(),
        "-C".as_ref(),
        unpacked.as_os_str(),
        ".".as_ref(),
    ]);
}

/// A release signed by `scripts/release --sign`: helm 4 installs the plugin tarball with
/// verification on (its default) against the signer's public key, and refuses it against a
/// keyring without the signer (the project's own key, which did not sign this) or once the
/// tarball was repacked; nothing is installed then. helm 3 verifies nothing and installs the
/// same signed release as it is.
fn signed_plugin_tarball_installs_verified_and_a_forgery_is_refused(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let key = SigningKey::new();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(release().path());
    let signed = scripts_release_with(
        &dir,
        Command::new(Path::new(REPO).join("scripts/release"))
            .env("GNUPGHOME", key.home.path())
            .args(["--sign", &key.fingerprint]),
    );
    let prov = dir.join(format!("{}.prov", release().plugin_archive));
    assert!(prov.exists(), "no .prov:\n{signed}");
    let sum =
        std::fs::read_to_string(dir.join(format!("{}.sha256", release().plugin_archive))).unwrap();
    let sum = sum.split_whitespace().next().unwrap().to_string();
    let url = |server: &FileServer| {
        format!(
            "{}/{}/{}",
            server.url(),
            release().path(),
            release().plugin_archive
        )
    };
    let keyring = |path: &Path| ["--keyring".to_string(), path.display().to_string()];
    let install = |s: &Scenario, server: &FileServer, keyring: &[String]| {
        let mut args: Vec<&str> = keyring.iter().map(String::as_str).collect();
        let url = url(server);
        args.push(&url);
        let base = server.url();
        helm_plugin_install(s, &args, &[("HSR_RELEASE_BASE_URL", OsStr::new(&base))])
    };
    let server = FileServer::start(root.path());

    if helm == HelmMajor::V3 {
        let s = Scenario::new(bed, helm, "install-signed");
        assert_installed(&s, &install(&s, &server, &[]));
        return;
    }

    let s = Scenario::new(bed_clone(&bed), helm, "install-signed");
    let verified = install(&s, &server, &keyring(&key.keyring));
    assert_installed(&s, &verified);
    for line in [
        format!("Using Key With Fingerprint: {}", key.fingerprint),
        format!("Plugin Hash Verified: sha256:{sum}"),
    ] {
        assert!(verified.stdout.contains(&line), "{line:?} in:\n{verified}");
    }

    let project_key = Path::new(REPO).join("keys/helm-safe-rollback-release.gpg");
    let s = Scenario::new(bed_clone(&bed), helm, "install-wrong-key");
    let wrong_key = install(&s, &server, &keyring(&project_key));
    assert_ne!(
        wrong_key.code, 0,
        "another key's keyring must refuse:\n{wrong_key}"
    );
    assert!(wrong_key.stderr.contains("unknown entity"), "{wrong_key}");
    assert_eq!(leftovers(&s), Vec::<PathBuf>::new(), "{wrong_key}");
    assert_ne!(help(&s).code, 0, "the plugin must not run");

    let s = Scenario::new(bed, helm, "install-forged");
    let served = s.home.path().join("served");
    support::copy_dir(root.path(), &served);
    let served = served.join(release().path());
    forge_plugin_tarball(&served);
    let forged_server = FileServer::start(served.parent().unwrap());
    let forged = install(&s, &forged_server, &keyring(&key.keyring));
    assert_ne!(
        forged.code, 0,
        "a forged tarball must be refused:\n{forged}"
    );
    assert!(
        forged.stderr.contains("sha256 sum does not match"),
        "{forged}"
    );
    assert!(
        !forged.stderr.contains("FORGED-HOOK-RAN"),
        "its hook ran:\n{forged}"
    );
    assert_eq!(leftovers(&s), Vec::<PathBuf>::new(), "{forged}");
    assert_ne!(help(&s).code, 0, "the plugin must not run");
}
