//! What a test reads back from a scenario after a run: releases' statuses, objects' resource
//! versions, the journals written, and our processes (or their kubectl proxies) still alive.

use std::path::PathBuf;

use super::Scenario;

impl Scenario {
    /// Waits until the release's history mentions `status`.
    pub fn wait_for_status(&self, release: &str, status: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let history = self.helm(&["history", release, "-o", "json"]).stdout;
            if history.contains(&format!("\"status\":\"{status}\"")) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{release} never reached {status}:\n{history}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// `Kind/name=version …` of every object of `resources` (kubectl's comma list) in this
    /// scenario's namespace: equal before and after means nobody but a controller wrote.
    /// The version is the resourceVersion, except for objects with a `metadata.generation`
    /// (workloads): there it is uid and generation, because their controllers keep writing
    /// status and annotations on their own schedule after an install, while every write of a
    /// client to the spec bumps the generation.
    pub fn resource_versions(&self, resources: &str) -> String {
        let listing = self.kubectl(&["get", resources, "--output=json"]).stdout;
        let listing: serde_json::Value = serde_json::from_str(&listing).expect("kubectl json");
        let mut out = String::new();
        for item in listing["items"].as_array().into_iter().flatten() {
            let metadata = &item["metadata"];
            let version = match metadata["generation"].as_i64() {
                Some(generation) => {
                    format!("{}:{generation}", metadata["uid"].as_str().unwrap_or(""))
                }
                None => metadata["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            };
            out.push_str(&format!(
                "{}/{}={version} ",
                item["kind"].as_str().unwrap_or(""),
                metadata["name"].as_str().unwrap_or("")
            ));
        }
        out
    }

    /// Every journal file of this scenario, as text.
    pub fn journals(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut stack = vec![self.journal_dir()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        out
    }

    /// Processes still running whose command line names this scenario's TMPDIR: a `kubectl
    /// proxy` of ours that outlived its run. Waits up to 5 s for them to go (the kernel's
    /// parent-death signal is asynchronous).
    pub fn surviving_proxies(&self) -> Vec<String> {
        let marker = self.temp_dir().display().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut found = Vec::new();
            for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&marker) {
                    found.push(format!(
                        "{}: {cmdline}",
                        entry.file_name().to_string_lossy()
                    ));
                }
            }
            if found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The pid of our binary running in this scenario (found by its TMPDIR, as
    /// [`Scenario::surviving_proxies`] finds the proxy): the process a signal is meant for,
    /// however it was started (directly, or by helm as a plugin).
    pub fn our_pid(&self) -> Option<i32> {
        let marker = self.temp_dir().display().to_string();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .next()
                .is_some_and(|program| program.ends_with("helm-safe-rollback"));
            if ours && String::from_utf8_lossy(&environ).contains(&marker) {
                return Some(pid);
            }
        }
        None
    }
}
