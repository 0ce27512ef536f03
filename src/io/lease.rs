//! One run per release across machines: a `coordination.k8s.io/v1` Lease in the release's
//! namespace, held for the whole run.
//!
//! The local lock (`journal::lock_release`) only sees runs on this machine with the same state
//! directory. The Lease is seen by every run that reaches the cluster: a second run exits 6 and
//! names the holder. Every write carries the resourceVersion we read, so two runs racing for it
//! cannot both win (the loser gets a 409). The holder renews it every third of its duration from
//! a background thread; a holder that stopped renewing (killed outright) has expired once
//! `renewTime + leaseDurationSeconds` has passed, and the next run takes it over and says so. At
//! the end it is deleted (or, without the right to delete, marked free).
//!
//! A user whose RBAC does not allow Leases is never blocked: one warning, and the local lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::io::kube_api::{Method, Proxy, Request, Response};

/// How long a lease lasts without renewal unless `HELM_SAFE_ROLLBACK_LEASE_SECONDS` says
/// otherwise: long enough that a busy machine renews in time (every 10 s), short enough that a
/// killed run blocks the release for half a minute only.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
pub const DURATION_ENV: &str = "HELM_SAFE_ROLLBACK_LEASE_SECONDS";

/// The lease duration from the environment, else [`DEFAULT_DURATION`].
pub fn duration(env: &dyn Fn(&str) -> Option<String>) -> Duration {
    env(DURATION_ENV)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_DURATION)
}

/// What trying to take the lease came to.
pub enum Acquired {
    Held(Lease),
    /// Another live run holds it: the message names the holder and its age.
    Busy(String),
    /// Leases cannot be used here (RBAC, an old API server): one warning line, and we go on.
    Unavailable(String),
}

/// The lease we hold; released when dropped.
pub struct Lease {
    proxy: Arc<Proxy>,
    path: String,
    /// Set by the renewal thread when someone else took the lease from us.
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<Value>>,
    /// Set when we took over an expired lease: the warning that says so.
    pub took_over: Option<String>,
}

/// Who we are, as the lease's `holderIdentity` shows it: `user@host (pid N)`.
pub fn identity(env: &dyn Fn(&str) -> Option<String>) -> String {
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        // SAFETY: getuid cannot fail and touches no memory of ours.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| env("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

pub fn lease_path(namespace: &str, release: &str) -> String {
    format!(
        "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/helm-safe-rollback.{release}"
    )
}

/// Takes the release's lease, or says who holds it.
pub fn acquire(
    proxy: &Arc<Proxy>,
    namespace: &str,
    release: &str,
    me: &str,
    duration: Duration,
) -> Acquired {
    let path = lease_path(namespace, release);
    let process = process_key(std::process::id());
    let me = Holder {
        identity: me,
        process: &process,
    };
    let collection = path
        .rsplit_once('/')
        .map(|(c, _)| c.to_string())
        .unwrap_or_default();
    // Three tries: each 409 means another run wrote it between our read and our write.
    for _ in 0..3 {
        let current = match send(proxy, Request::get(path.clone())) {
            Ok(response) => response,
            Err(error) => return unavailable(&error.to_string()),
        };
        let (request, took_over) = match current.status {
            404 => {
                let body = fresh(namespace, release, &me, duration, Timestamp::now());
                (Request::json(Method::Post, collection.clone(), &body), None)
            }
            200 => {
                let Ok(existing) = serde_json::from_slice::<Value>(&current.body) else {
                    return unavailable("the lease is not JSON");
                };
                let took_over = match evaluate(&existing, me.identity, Timestamp::now(), &gone) {
                    Verdict::Held {
                        holder,
                        held_for,
                        renewed_ago,
                    } => {
                        return Acquired::Busy(busy_message(&holder, held_for, renewed_ago, &path))
                    }
                    verdict => takeover_warning(verdict, release),
                };
                let body = claim(existing, &me, duration, Timestamp::now());
                (Request::json(Method::Put, path.clone(), &body), took_over)
            }
            _ => return unavailable(&http_error(&current)),
        };
        match send(proxy, request) {
            Ok(response) if response.ok() => {
                let written = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                return Acquired::Held(Lease::hold(proxy, path, written, duration, took_over));
            }
            Ok(response) if response.status == 409 => continue,
            Ok(response) => return unavailable(&http_error(&response)),
            Err(error) => return unavailable(&error.to_string()),
        }
    }
    unavailable("it kept changing while we tried to take it")
}

/// What to say when we take over a lease someone else held.
fn takeover_warning(verdict: Verdict, release: &str) -> Option<String> {
    match verdict {
        Verdict::Gone { holder } => Some(format!(
            "took over the lease of release {release} from {holder}, which is no longer running \
             on this machine"
        )),
        Verdict::Expired {
            holder,
            renewed_ago,
        } => Some(format!(
            "took over the lease of release {release} from {holder}, which stopped renewing it \
             {}s ago (killed?)",
            renewed_ago.as_secs()
        )),
        Verdict::Free | Verdict::Ours | Verdict::Held { .. } => None,
    }
}

fn unavailable(reason: &str) -> Acquired {
    Acquired::Unavailable(format!(
        "could not take this release's Lease ({reason}); only this machine's lock keeps other \
         runs off it"
    ))
}

fn busy_message(holder: &str, held_for: Duration, renewed_ago: Duration, path: &str) -> String {
    let lease = path.rsplit('/').next().unwrap_or(path);
    format!(
        "{holder} has held Lease {lease} for {}s (renewed {}s ago)",
        held_for.as_secs(),
        renewed_ago.as_secs()
    )
}

fn http_error(response: &Response) -> String {
    format!("HTTP {}: {}", response.status, response.message())
}

fn send(proxy: &Proxy, request: Request) -> Result<Response> {
    proxy
        .send_all(vec![request])?
        .pop()
        .ok_or_else(|| anyhow!("no answer"))?
}

impl Lease {
    fn hold(
        proxy: &Arc<Proxy>,
        path: String,
        written: Value,
        duration: Duration,
        took_over: Option<String>,
    ) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = mpsc::channel::<()>();
        let renewer = {
            let (proxy, path, lost) = (proxy.clone(), path.clone(), lost.clone());
            std::thread::spawn(move || renew(&proxy, &path, written, duration, &stopped, &lost))
        };
        Lease {
            proxy: proxy.clone(),
            path,
            lost,
            stop: Some(stop),
            renewer: Some(renewer),
            took_over,
        }
    }

    /// Whether someone else took the lease from us (we failed to renew in time).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

/// Renews every third of the duration until told to stop; returns the lease as last written.
fn renew(
    proxy: &Proxy,
    path: &str,
    mut written: Value,
    duration: Duration,
    stopped: &mpsc::Receiver<()>,
    lost: &AtomicBool,
) -> Value {
    let every = (duration / 3).max(Duration::from_millis(500));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        written["spec"]["renewTime"] = json!(micro_time(Timestamp::now()));
        match send(
            proxy,
            Request::json(Method::Put, path.to_string(), &written),
        ) {
            Ok(response) if response.ok() => {
                written = serde_json::from_slice(&response.body).unwrap_or(written);
            }
            // Someone wrote it since our last write: only a run that took it over does that.
            Ok(response) if response.status == 409 => {
                lost.store(true, Ordering::Relaxed);
                return Value::Null;
            }
            // A blip: try again next time; the lease outlives a few missed renewals.
            _ => {}
        }
    }
    written
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        let written = self
            .renewer
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or(Value::Null);
        if self.lost() || written.is_null() {
            return;
        }
        let preconditions = json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {
                "uid": written["metadata"]["uid"],
                "resourceVersion": written["metadata"]["resourceVersion"],
            },
        });
        let deleted = send(
            &self.proxy,
            Request::json(Method::Delete, self.path.clone(), &preconditions),
        );
        if deleted.is_ok_and(|r| r.ok() || r.status == 404) {
            return;
        }
        // No right to delete Leases: mark it free instead, so the next run need not wait.
        let mut free = written;
        free["spec"]["holderIdentity"] = Value::Null;
        let _ = send(
            &self.proxy,
            Request::json(Method::Put, self.path.clone(), &free),
        );
    }
}

/// This process as [`state::PROCESS_ANNOTATION`] names it: the boot (a machine, until it
/// reboots), the pid namespace (a container) and the pid. Empty parts when /proc cannot say.
fn process_key(pid: u32) -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.display().to_string())
        .unwrap_or_default();
    let namespace: String = namespace.chars().filter(char::is_ascii_digit).collect();
    format!("{}/{namespace}/{pid}", boot.trim())
}

/// Whether the holder `process` ran here (same boot, same pid namespace) and has ended.
fn gone(process: &str) -> bool {
    let Some((here, pid)) = process.rsplit_once('/') else {
        return false;
    };
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return false;
    };
    let ours = process_key(0);
    let ours = ours.rsplit_once('/').map_or("", |(here, _)| here);
    if pid <= 0 || here != ours || here.starts_with('/') || here.ends_with('/') {
        return false;
    }
    !crate::io::process::running(pid)
}

use crate::domain::lease_state::{claim, evaluate, fresh, micro_time, Holder, Verdict};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ended_process_of_this_machine_is_gone() {
        let mut finished = std::process::Command::new("true").spawn().unwrap();
        finished.wait().unwrap();
        assert!(gone(&process_key(finished.id())));
        assert!(!gone(&process_key(std::process::id())));
        let elsewhere = format!("another-boot/4026531836/{}", finished.id());
        assert!(
            !gone(&elsewhere),
            "another machine's process cannot be checked here"
        );
        assert!(!gone("") && !gone("//12") && !gone("garbage"));
    }
}
