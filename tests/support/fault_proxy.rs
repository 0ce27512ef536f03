//! A fault-injecting TLS reverse proxy for end-to-end tests.
//!
//! `helm-safe-rollback` has to classify the errors real helm prints when the
//! Kubernetes API misbehaves half-way through a rollback. A real API server
//! never fails on cue, so the e2e tests put this proxy between helm/kubectl
//! and a real kube-apiserver: everything is forwarded untouched, except the
//! requests a [`Rule`] picks, which get a TCP reset or a `503` instead. That
//! way the errors under test are the ones real helm binaries really print,
//! not strings we guessed.
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
#![allow(dead_code)] // each test binary uses a different part of the API

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use regex::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme, StreamOwned,
};

/// Longer than Go's idle-connection timeout (90s in client-go), so a client
/// that parks a dialed-but-unused connection closes it before we would, and
/// never writes a request into a connection we are closing.
const HEAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the client's own close once the response is out.
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Guards against pathological heads; kube request heads are a few KiB.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// What a matching request gets instead of being forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The TCP connection is closed with `SO_LINGER 0` once the request has
    /// been read, so the client sees "connection reset by peer".
    Reset,
    /// An HTTP `503 Service Unavailable` with a kube-style `Status` body and
    /// no `Retry-After` (client-go would otherwise retry it by itself).
    ServiceUnavailable,
    /// A real API server's answer, captured elsewhere (a fixture): its status
    /// code and JSON body, for a condition this bed's API server cannot
    /// produce.
    Replay { status: u16, body: &'static str },
}

/// Which requests to break, and when.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Exact HTTP method (e.g. `"POST"`, compared case-insensitively), or any.
    pub method: Option<String>,
    /// Matched against the request target: path plus query string.
    pub path: Regex,
    /// How many matching requests pass before faults start: `0` faults the
    /// first match, `2` lets two through and faults the third.
    pub after: usize,
    /// How many faults to inject at most; `None` = every later match.
    pub times: Option<usize>,
    pub fault: Fault,
}

impl Rule {
    /// A rule faulting every matching request from the first one on.
    pub fn new(method: Option<&str>, path: &str, fault: Fault) -> anyhow::Result<Rule> {
        Ok(Rule {
            method: method.map(str::to_owned),
            path: Regex::new(path).with_context(|| format!("bad path regex {path:?}"))?,
            after: 0,
            times: None,
            fault,
        })
    }

    pub fn after(mut self, after: usize) -> Rule {
        self.after = after;
        self
    }

    pub fn times(mut self, times: usize) -> Rule {
        self.times = Some(times);
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        let method_ok = match &self.method {
            Some(m) => m.eq_ignore_ascii_case(method),
            None => true,
        };
        method_ok && self.path.is_match(target)
    }
}

/// One request as the proxy saw it, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path plus query string, as sent by the client.
    pub path: String,
    /// The fault injected instead of forwarding, if any.
    pub fault: Option<Fault>,
}

impl fmt::Display for SeenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        match self.fault {
            Some(fault) => write!(f, " [{fault:?}]"),
            None => Ok(()),
        }
    }
}

struct RuleState {
    rule: Rule,
    matched: usize,
    fired: usize,
}

struct Upstream {
    /// `host:port`, for `TcpStream::connect`.
    addr: String,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
}

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
        let upstream = upstream(upstream_url, upstream_ca, &provider)?;
        let server_tls = Arc::new(server_config(&provider)?);

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
        lock(&self.shared.rules).push(RuleState {
            rule,
            matched: 0,
            fired: 0,
        });
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
                let _ = handle_connection(&shared, stream);
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

struct RequestHead {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    }

    /// The head as sent upstream: hop-by-hop connection headers replaced by
    /// `Connection: close`, so that upstream's EOF marks the response's end.
    fn upstream_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.headers {
            let hop = ["connection", "keep-alive", "proxy-connection"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h));
            if !hop {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }
}

type ClientStream = BufReader<StreamOwned<ServerConnection, TcpStream>>;
type UpstreamStream = StreamOwned<ClientConnection, TcpStream>;

fn handle_connection(shared: &Shared, tcp: TcpStream) -> io::Result<()> {
    if shared.stopping.load(Ordering::SeqCst) {
        return Ok(());
    }
    let registered = Registered::new(shared, &tcp)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(HEAD_TIMEOUT))?;
    let conn = ServerConnection::new(Arc::clone(&shared.server_tls)).map_err(io::Error::other)?;
    let mut client: ClientStream = BufReader::new(StreamOwned::new(conn, tcp));

    let Some(head) = read_head(&mut client)? else {
        return Ok(());
    };
    let fault = decide(shared, &head);
    lock(&shared.seen).push(SeenRequest {
        method: head.method.clone(),
        path: head.target.clone(),
        fault,
    });

    match fault {
        Some(Fault::Reset) => {
            // Reading the whole request first makes the client fail while
            // waiting for the response (a read error), as when a real API
            // server or load balancer dies mid-request.
            forward_body(&head, &mut client, &mut io::sink())?;
            let tcp = &client.get_ref().sock;
            set_linger_zero(tcp)?;
            // No close_notify: dropping every handle to the socket with
            // SO_LINGER 0 makes the kernel send RST.
            drop(registered);
            drop(client);
            Ok(())
        }
        Some(Fault::ServiceUnavailable) => {
            forward_body(&head, &mut client, &mut io::sink())?;
            let out = client.get_mut();
            out.write_all(&service_unavailable(&head))?;
            finish_client(out)
        }
        Some(Fault::Replay { status, body }) => {
            forward_body(&head, &mut client, &mut io::sink())?;
            let out = client.get_mut();
            out.write_all(&replayed(status, body))?;
            finish_client(out)
        }
        None => proxy_request(shared, &head, &mut client),
    }
}

fn replayed(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Replayed\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn decide(shared: &Shared, head: &RequestHead) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    for state in rules.iter_mut() {
        if !state.rule.matches(&head.method, &head.target) {
            continue;
        }
        state.matched += 1;
        let past_after = state.matched > state.rule.after;
        let budget_left = match state.rule.times {
            Some(times) => state.fired < times,
            None => true,
        };
        if past_after && budget_left {
            state.fired += 1;
            // The first firing rule wins; later rules neither fire nor count
            // a request that never reached the server.
            return Some(state.rule.fault);
        }
    }
    None
}

fn proxy_request(shared: &Shared, head: &RequestHead, client: &mut ClientStream) -> io::Result<()> {
    let up = &shared.upstream;
    let tcp = TcpStream::connect(&up.addr)?;
    let _registered = Registered::new(shared, &tcp)?;
    tcp.set_nodelay(true)?;
    let conn = ClientConnection::new(Arc::clone(&up.tls), up.server_name.clone())
        .map_err(io::Error::other)?;
    let mut upstream: UpstreamStream = StreamOwned::new(conn, tcp);

    upstream.write_all(&head.upstream_bytes())?;
    forward_body(head, client, &mut upstream)?;
    upstream.flush()?;
    // From here on the client only listens, possibly to an hours-long watch.
    client.get_ref().sock.set_read_timeout(None)?;

    let out = client.get_mut();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Upstream closing TCP without close_notify still ends the
            // response: `Connection: close` delimits it.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        };
        // Flush per read so watch events reach the client as they happen.
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
    finish_client(out)
}

fn finish_client(out: &mut StreamOwned<ServerConnection, TcpStream>) -> io::Result<()> {
    out.conn.send_close_notify();
    out.flush()?;
    out.sock.shutdown(Shutdown::Write)?;
    // Closing with unread input (e.g. the client's close_notify) makes the
    // kernel send RST, which can destroy response bytes the client has not
    // read yet. Waiting for its EOF keeps a clean response from looking like
    // an injected reset.
    out.sock.set_read_timeout(Some(LINGER_TIMEOUT))?;
    let mut scratch = [0u8; 4096];
    while matches!(out.sock.read(&mut scratch), Ok(n) if n > 0) {}
    Ok(())
}

/// Returns `None` when the client closed before sending a request (Go does
/// this e.g. after a failed handshake, or when it gives up on a dial).
fn read_head(client: &mut ClientStream) -> io::Result<Option<RequestHead>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = match client.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) if lines.is_empty() && e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            if lines.is_empty() && line.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed mid-head",
            ));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(io::Error::other("request head too large"));
        }
        let line = String::from_utf8(line).map_err(io::Error::other)?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue; // tolerated stray CRLF before a request line
            }
            break;
        }
        lines.push(line);
    }

    let mut request_line = lines[0].split(' ');
    let (Some(method), Some(target), Some(version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(io::Error::other(format!("bad request line {:?}", lines[0])));
    };
    let headers = lines[1..]
        .iter()
        .map(|l| {
            let (name, value) = l.split_once(':').unwrap_or((l, ""));
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    Ok(Some(RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
    }))
}

/// Copies the request body byte for byte, framing included, stopping exactly
/// at its end (the client is waiting for a response, not closing).
fn forward_body(
    head: &RequestHead,
    client: &mut ClientStream,
    to: &mut dyn Write,
) -> io::Result<()> {
    if head.is_chunked() {
        loop {
            let size_line = read_line(client)?;
            to.write_all(size_line.as_bytes())?;
            let size_hex = size_line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line ending the body.
                loop {
                    let trailer = read_line(client)?;
                    to.write_all(trailer.as_bytes())?;
                    if trailer.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            copy_exact(client, to, size)?;
            let crlf = read_line(client)?;
            to.write_all(crlf.as_bytes())?;
        }
    } else if let Some(len) = head.header("content-length") {
        let len: u64 = len
            .parse()
            .map_err(|_| io::Error::other(format!("bad Content-Length {len:?}")))?;
        copy_exact(client, to, len)
    } else {
        Ok(())
    }
}

fn read_line(client: &mut ClientStream) -> io::Result<String> {
    let mut line = Vec::new();
    if client.read_until(b'\n', &mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client closed mid-body",
        ));
    }
    String::from_utf8(line).map_err(io::Error::other)
}

fn copy_exact(from: &mut ClientStream, to: &mut dyn Write, len: u64) -> io::Result<()> {
    let copied = io::copy(&mut from.take(len), to)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client closed mid-body",
        ));
    }
    Ok(())
}

/// Shaped like the apiserver's own 503s so client-go decodes it into a
/// `StatusError` and helm prints its message, exactly as in production.
fn service_unavailable(head: &RequestHead) -> Vec<u8> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server is currently unable to handle the request (injected by fault proxy)",
        "reason": "ServiceUnavailable",
        "details": { "causes": [{ "message": format!("{} {}", head.method, head.target) }] },
        "code": 503
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// std's `TcpStream::set_linger` is still unstable and the crate has no libc
/// dependency, so call setsockopt(2) directly.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn set_linger_zero(tcp: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::raw::{c_int, c_void};

    #[repr(C)]
    struct Linger {
        l_onoff: c_int,
        l_linger: c_int,
    }
    extern "C" {
        fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            len: u32,
        ) -> c_int;
    }
    #[cfg(target_os = "linux")]
    const SOL_SOCKET_SO_LINGER: (c_int, c_int) = (1, 13);
    #[cfg(target_os = "macos")]
    const SOL_SOCKET_SO_LINGER: (c_int, c_int) = (0xffff, 0x80);

    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for the duration of the call (we hold `tcp`),
    // and the pointer/length describe a live, correctly laid out `linger`.
    let rc = unsafe {
        setsockopt(
            tcp.as_raw_fd(),
            SOL_SOCKET_SO_LINGER.0,
            SOL_SOCKET_SO_LINGER.1,
            &linger as *const Linger as *const c_void,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere the client sees an abrupt EOF instead of a reset.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn set_linger_zero(tcp: &TcpStream) -> io::Result<()> {
    tcp.shutdown(Shutdown::Both)
}

fn server_config(provider: &Arc<CryptoProvider>) -> anyhow::Result<ServerConfig> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn upstream(
    url: &str,
    ca: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Upstream> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("upstream must be an https:// URL, got {url:?}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| anyhow!("bad IPv6 authority in {url:?}"))?;
        (host, after.strip_prefix(':').unwrap_or("443"))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, "443"),
        }
    };
    if host.is_empty() {
        bail!("no host in upstream URL {url:?}");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("bad port in {url:?}"))?;
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned())?,
    };

    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()?;
    let mut tls = match ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots.add(cert.with_context(|| format!("parsing {}", ca.display()))?)?;
            }
            if roots.is_empty() {
                bail!("no certificates in {}", ca.display());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(Arc::clone(provider))))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(Upstream {
        addr: format!("{host}:{port}"),
        server_name,
        tls: Arc::new(tls),
    })
}

/// Accepts any upstream certificate, but still checks handshake signatures
/// so a broken TLS setup fails loudly rather than oddly.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
