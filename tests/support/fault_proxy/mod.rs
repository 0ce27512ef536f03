//! A fault-injecting TLS reverse proxy for end-to-end tests.
//!
//! `helm-safe-rollback` has to classify the errors real helm prints when the
//! Kubernetes API misbehaves half-way through a rollback. A real API server
//! never fails on cue, so the e2e tests put this proxy between helm/kubectl
//! and a real kube-apiserver: everything is forwarded untouched, except the
//! requests a [`Rule`] picks, which get a TCP reset, a `503` or a replayed
//! answer instead. That way the errors under test are the ones real helm
//! binaries really print, not strings we guessed.
//!
//! Design choices, all for simplicity over speed (it only runs on loopback):
//! - one std thread per client connection, one request per connection: each
//!   request goes upstream with `Connection: close` and the client connection
//!   is closed once upstream closes. Go clients simply reconnect, and since a
//!   connection is never reused, Go's transport never silently retries a
//!   request we broke on purpose.
//! - only `http/1.1` is offered over ALPN, because HTTP/2 multiplexing would
//!   make "one request, one fault" impossible to express.
//! - protocol upgrades (`kubectl exec`, `port-forward`) are not supported;
//!   helm does not use them.

mod connection;
mod faults;
mod http;
mod tls;

// The API's own types live with the faults; a test binary that names none of them (most use
// `Scenario::through_fault_proxy` alone) would otherwise warn about this line.
#[allow(unused_imports)]
pub use faults::{Fault, Rule, SeenRequest};

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Context;
use rustls::crypto;
use rustls::ServerConfig;

use faults::RuleState;
use tls::Upstream;

/// What the handle and every connection thread share.
struct Shared {
    upstream: Upstream,
    server_tls: Arc<ServerConfig>,
    rules: Mutex<Vec<RuleState>>,
    seen: Mutex<Vec<SeenRequest>>,
    stopping: AtomicBool,
    /// Clones of every live socket, so `Drop` can cut long-lived watch
    /// streams instead of leaving their threads blocked on upstream.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_socket: AtomicU64,
}

/// A running proxy; dropping it stops it and cuts all open connections.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy for `upstream_url` (`https://host:port`). The upstream
    /// certificate is checked against `upstream_ca` when given; otherwise it
    /// is not checked at all, which is acceptable for a loopback test tool.
    pub fn start(upstream_url: &str, upstream_ca: Option<&Path>) -> anyhow::Result<FaultProxy> {
        let provider = Arc::new(crypto::ring::default_provider());
        let upstream = tls::upstream(upstream_url, upstream_ca, &provider)?;
        let server_tls = Arc::new(tls::server_config(&provider)?);

        let listener = TcpListener::bind("127.0.0.1:0").context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            server_tls,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(listener, shared))?
        };
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's cert is throwaway and self-signed, hence
    /// `insecure-skip-tls-verify`.
    pub fn kubeconfig(&self, token: &str) -> String {
        // JSON strings are valid YAML scalars, which sidesteps quoting rules.
        let server = serde_json::to_string(&self.url()).expect("string serializes");
        let token = serde_json::to_string(token).expect("string serializes");
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fault-proxy
  cluster:
    server: {server}
    insecure-skip-tls-verify: true
users:
- name: fault-proxy
  user:
    token: {token}
contexts:
- name: fault-proxy
  context:
    cluster: fault-proxy
    user: fault-proxy
current-context: fault-proxy
"
        )
    }

    /// Writes [`FaultProxy::kubeconfig`] to `path`, mode 0600 so helm does not
    /// warn about a group/world-readable kubeconfig on stderr.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(self.kubeconfig(token).as_bytes())?;
        Ok(())
    }

    pub fn add_rule(&self, rule: Rule) {
        lock(&self.shared.rules).push(RuleState::new(rule));
    }

    pub fn clear_rules(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        lock(&self.shared.seen).clone()
    }

    pub fn faulted_requests(&self) -> Vec<SeenRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.fault.is_some())
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.seen).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // `accept` has no timeout; a connection of our own wakes it up.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in lock(&self.shared.sockets).values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// A poisoned lock only means some connection thread panicked; the data is
/// still what the test wants to see.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        let _ = thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                // Errors here are the client's or upstream's business (they
                // see the closed connection); the proxy has nobody to tell.
                let _ = connection::handle_connection(&shared, stream);
            });
    }
}

/// Keeps a socket in [`Shared::sockets`] for as long as its connection lives.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
}

impl<'a> Registered<'a> {
    fn new(shared: &'a Shared, socket: &TcpStream) -> io::Result<Registered<'a>> {
        let id = shared.next_socket.fetch_add(1, Ordering::SeqCst);
        lock(&shared.sockets).insert(id, socket.try_clone()?);
        Ok(Registered { shared, id })
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.shared.sockets).remove(&self.id);
    }
}
