//! The Kubernetes API, spoken through `kubectl proxy` on a private unix socket.
//!
//! kubectl stays the only thing that holds the user's credentials (kubeconfig, contexts, exec
//! plugins, tokens, impersonation): the proxy authenticates every request, and we send plain
//! HTTP over a socket in a directory only our user can open. The proxy passes every method we
//! use — reads, dry runs, deletes with a uid precondition, and the Lease's create/update — so
//! that directory (0700, fresh per run) is what keeps others off it. What this buys over one `kubectl
//! get` / `kubectl apply` per step is requests in parallel and none of kubectl's per-object client
//! work: on the test bed, a server-side dry run of 500 objects went from 1.3 s to 0.4 s and
//! reading them from 0.3 s to 0.05 s, with one child process for the whole run.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::io::exec::{self, Background};
use crate::io::trace;

/// Requests in flight at once. The API server, not we, is the bottleneck: beyond four the
/// bed's two cores gained nothing.
const CONNECTIONS: usize = 4;
/// How long one request may take before we give up on the cluster.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the proxy may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    /// A server-side apply (`application/apply-patch+yaml`); only ever sent with `dryRun=All`.
    Apply,
    /// A strategic merge patch, as helm's client-side update sends for built-in kinds; only
    /// ever sent with `dryRun=All`.
    StrategicMergePatch,
    /// A JSON merge patch, as helm's client-side update sends for custom resources; only ever
    /// sent with `dryRun=All`.
    MergePatch,
    /// A create: a dry run's, or the Lease's (see `lease`).
    Post,
    /// A replace with the object's resourceVersion: the server refuses it (409) if the object
    /// changed since we read it (the Lease).
    Put,
    /// A delete, with a `DeleteOptions` body carrying the uid (and for the Lease the
    /// resourceVersion) the object must still have.
    Delete,
}

impl Method {
    fn http(self) -> (hyper::Method, Option<&'static str>) {
        match self {
            Method::Get => (hyper::Method::GET, None),
            Method::Apply => (hyper::Method::PATCH, Some("application/apply-patch+yaml")),
            Method::StrategicMergePatch => (
                hyper::Method::PATCH,
                Some("application/strategic-merge-patch+json"),
            ),
            Method::MergePatch => (hyper::Method::PATCH, Some("application/merge-patch+json")),
            Method::Post => (hyper::Method::POST, Some("application/json")),
            Method::Put => (hyper::Method::PUT, Some("application/json")),
            Method::Delete => (hyper::Method::DELETE, Some("application/json")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/namespaces/web/configmaps?limit=500`.
    pub path: String,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(path: String) -> Request {
        Request {
            method: Method::Get,
            path,
            body: Vec::new(),
        }
    }

    /// A request with a JSON body (create, replace, delete with options).
    pub fn json(method: Method, path: String, body: &serde_json::Value) -> Request {
        Request {
            method,
            path,
            body: serde_json::to_vec(body).expect("JSON value"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API server's machine-readable reason for a failed request (`Invalid`, `NotFound`),
    /// when it answered with a `Status`.
    pub fn reason(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Status {
            reason: Option<String>,
        }
        serde_json::from_slice::<Status>(&self.body).ok()?.reason
    }

    /// The API server's own message for a failed request (a `Status` object), or the start of
    /// whatever else came back (the proxy answers a dead API server in plain text).
    pub fn message(&self) -> String {
        #[derive(serde::Deserialize)]
        struct Status {
            message: String,
        }
        if let Ok(status) = serde_json::from_slice::<Status>(&self.body) {
            return status.message;
        }
        let text = String::from_utf8_lossy(&self.body);
        let line = text.lines().map(str::trim).find(|l| !l.is_empty());
        match line {
            Some(line) => line.chars().take(300).collect(),
            None => format!("HTTP {}", self.status),
        }
    }
}

/// A running `kubectl proxy` and the private directory its socket lives in.
pub struct Proxy {
    dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    /// `None` once stopped.
    process: Mutex<Option<Background>>,
    ready: OnceLock<std::result::Result<(), String>>,
}

impl Proxy {
    /// Starts the proxy; it is ready when [`Proxy::send_all`] is first called. Call from the
    /// main thread (see [`exec::spawn_background`]).
    pub fn start(kubectl: &Path, connection_args: &[String]) -> Result<Proxy> {
        let dir = private_dir()?;
        let socket = dir.join("api.sock");
        let log = dir.join("proxy.log");
        let log_file = std::fs::File::create(&log).context("create the proxy's log")?;
        let mut args = vec![
            "proxy".to_string(),
            format!("--unix-socket={}", socket.display()),
            // Every method passes (kubectl proxy's default): we read, dry-run, delete leftovers
            // with a uid precondition and create/update a Lease. Only our user can reach the
            // socket (see `private_dir`), and nothing but this process sends through it.
        ];
        args.extend(connection_args.iter().cloned());
        let process = match exec::spawn_background(kubectl, &args, log_file) {
            Ok(process) => process,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(anyhow!(
                    "{error} (install kubectl, or point KUBECTL / --kubectl at it)"
                ));
            }
        };
        Ok(Proxy {
            dir,
            socket,
            log,
            process: Mutex::new(Some(process)),
            ready: OnceLock::new(),
        })
    }

    fn ready(&self) -> Result<()> {
        self.ready
            .get_or_init(|| self.wait_until_listening().map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| anyhow!(e))
    }

    fn wait_until_listening(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Ok(());
            }
            let exited = self
                .process
                .lock()
                .expect("proxy lock")
                .as_mut()
                .is_none_or(|p| p.exited().is_some());
            if exited {
                bail!("kubectl proxy failed: {}", self.last_log_line());
            }
            if Instant::now() > deadline {
                bail!(
                    "kubectl proxy did not start within {}s: {}",
                    START_TIMEOUT.as_secs(),
                    self.last_log_line()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn last_log_line(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
            .unwrap_or_else(|| "it printed nothing".into())
    }

    /// Sends every request, [`CONNECTIONS`] at a time; the answers come back in order. `Err`
    /// only when the proxy is not there at all; a request that got no answer is an `Err` in
    /// its slot.
    pub fn send_all(&self, requests: Vec<Request>) -> Result<Vec<Result<Response>>> {
        self.send_all_within(requests, REQUEST_TIMEOUT)
    }

    /// [`Proxy::send_all`] with every answer due within `budget` of now (the whole batch, not
    /// each request): for reads that only add to a report and must not hold it up.
    pub fn send_all_within(
        &self,
        requests: Vec<Request>,
        budget: Duration,
    ) -> Result<Vec<Result<Response>>> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + budget);
        self.ready()?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("start the HTTP client")?;
        let count = requests.len();
        let requests = Arc::new(requests);
        let next = Arc::new(AtomicUsize::new(0));
        let results: Arc<Mutex<Vec<Option<Result<Response>>>>> =
            Arc::new(Mutex::new((0..count).map(|_| None).collect()));
        runtime.block_on(async {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..CONNECTIONS.min(count) {
                workers.spawn(worker(
                    deadline,
                    self.socket.clone(),
                    requests.clone(),
                    next.clone(),
                    results.clone(),
                ));
            }
            while workers.join_next().await.is_some() {}
        });
        let mut results = results.lock().expect("results lock");
        let first = &requests[0];
        let what = format!(
            "{} API request(s) ({} {}…)",
            count,
            first.method.http().0,
            first.path.split('?').next().unwrap_or_default()
        );
        trace::step(&what, started);
        Ok(results
            .iter_mut()
            .map(|r| r.take().unwrap_or_else(|| Err(anyhow!("request not sent"))))
            .collect())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The process first (Background's drop kills it), then its socket and log.
        if let Ok(process) = self.process.get_mut() {
            drop(process.take());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Sender = SendRequest<Full<Bytes>>;

async fn worker(
    deadline: tokio::time::Instant,
    socket: PathBuf,
    requests: Arc<Vec<Request>>,
    next: Arc<AtomicUsize>,
    results: Arc<Mutex<Vec<Option<Result<Response>>>>>,
) {
    let mut sender: Option<Sender> = None;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(index) else {
            break;
        };
        // One retry on a fresh connection: the proxy may have closed an idle one. Every request
        // we send is safe to repeat: reads and dry runs change nothing, a repeated delete meets
        // its uid precondition or a 404, a repeated create a 409, a repeated replace a stale
        // resourceVersion (409).
        let mut result = send(deadline, &socket, &mut sender, request).await;
        if result.is_err() {
            sender = None;
            result = send(deadline, &socket, &mut sender, request).await;
        }
        if result.is_err() {
            sender = None;
        }
        results.lock().expect("results lock")[index] = Some(result);
    }
}

async fn send(
    deadline: tokio::time::Instant,
    socket: &Path,
    sender: &mut Option<Sender>,
    request: &Request,
) -> Result<Response> {
    let exchange = async {
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::UnixStream::connect(socket).await?;
            let (new_sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            *sender = Some(new_sender);
        }
        let sender = sender.as_mut().expect("connected");
        sender.ready().await?;
        let builder = hyper::Request::builder()
            .uri(&request.path)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::ACCEPT, "application/json");
        let (method, content_type) = request.method.http();
        let builder = builder.method(method);
        let builder = match content_type {
            Some(content_type) => builder.header(hyper::header::CONTENT_TYPE, content_type),
            None => builder,
        };
        let http_request = builder.body(Full::new(Bytes::from(request.body.clone())))?;
        let response = sender.send_request(http_request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        anyhow::Ok(Response { status, body })
    };
    let due = deadline.min(tokio::time::Instant::now() + REQUEST_TIMEOUT);
    let allowed = due.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout_at(due, exchange).await {
        Ok(result) => {
            result.with_context(|| format!("no answer through kubectl proxy to {}", request.path))
        }
        Err(_) => bail!(
            "no answer within {:.0}s to {}",
            allowed.as_secs_f64(),
            request.path
        ),
    }
}

const PRIVATE_DIR_PREFIX: &str = "helm-safe-rollback.";

/// A fresh directory only we can enter, for the proxy's socket (which grants the user's
/// cluster access to whoever can connect to it).
fn private_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!("{PRIVATE_DIR_PREFIX}{}.{nanos}", std::process::id());
    let mut base = std::env::temp_dir();
    // A unix socket path must fit in 108 bytes.
    if base.join(&name).join("api.sock").as_os_str().len() > 100 {
        base = PathBuf::from("/tmp");
    }
    sweep_abandoned(&base);
    let dir = base.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Removes the socket directories of earlier runs that were killed outright (SIGKILL gives no
/// chance to clean up). Only a directory whose process is gone and which holds nothing but what
/// a proxy leaves (its socket and its log) is removed; anything else is left alone.
fn sweep_abandoned(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = abandoned_dir_pid(&name.to_string_lossy()) else {
            continue;
        };
        if crate::io::process::running(pid) {
            continue;
        }
        let path = entry.path();
        let only_ours = std::fs::read_dir(&path).is_ok_and(|inside| {
            inside
                .flatten()
                .all(|e| e.file_name() == "api.sock" || e.file_name() == "proxy.log")
        });
        if only_ours {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The pid in a name [`private_dir`] made, `helm-safe-rollback.PID.NANOS`.
fn abandoned_dir_pid(name: &str) -> Option<libc::pid_t> {
    let (pid, nanos) = name.strip_prefix(PRIVATE_DIR_PREFIX)?.split_once('.')?;
    nanos.parse::<u32>().ok()?;
    pid.parse().ok().filter(|pid| *pid > 0)
}

#[cfg(test)]
#[path = "kube_api_tests.rs"]
mod tests;
