//! A loopback HTTP/1.0 file server for the install tests: serves the files under one directory
//! (GET only), records every request, and can be told to answer the next N requests with 503,
//! as a mirror having a bad moment does. std only: one thread per connection, closed after one
//! response.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct FileServer {
    addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    root: PathBuf,
    fail_next: AtomicUsize,
    stop: AtomicBool,
    /// "GET /path 200", in the order they were answered.
    log: Mutex<Vec<String>>,
}

impl FileServer {
    /// Serves `root` on 127.0.0.1 on a free port until dropped.
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            root: root.to_path_buf(),
            fail_next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
        });
        let serving = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&serving);
                std::thread::spawn(move || {
                    let _ = state.answer(stream);
                });
            }
        });
        FileServer { addr, state }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` requests, whatever they ask for, get `503 Service Unavailable`.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request answered so far, as "GET /path STATUS".
    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag and ends.
        let _ = TcpStream::connect(self.addr);
    }
}

impl State {
    fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        // The headers: read and ignored (no keep-alive, no ranges).
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();

        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        // helm 3 installs a plugin from an HTTP URL only if a HEAD request says it is gzip
        // (otherwise: "Cannot detect VCS"); GitHub and common servers say so for .tar.gz.
        let content_type = if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
            "application/gzip"
        } else {
            "text/plain"
        };
        let (status, body) = if failing {
            ("503 Service Unavailable", b"failing on purpose\n".to_vec())
        } else if method != "GET" && method != "HEAD" {
            ("405 Method Not Allowed", Vec::new())
        } else {
            match self.file(&path).and_then(|file| std::fs::read(file).ok()) {
                Some(bytes) => ("200 OK", bytes),
                None => ("404 Not Found", b"not found\n".to_vec()),
            }
        };
        self.log.lock().unwrap().push(format!(
            "{method} {path} {}",
            status.split(' ').next().unwrap()
        ));
        write!(
            stream,
            "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        if method != "HEAD" {
            stream.write_all(&body)?;
        }
        stream.flush()
    }

    /// The file a URL path names under the root; `None` for anything that would leave it.
    fn file(&self, url_path: &str) -> Option<PathBuf> {
        let relative = Path::new(url_path.split('?').next()?.trim_start_matches('/'));
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let file = self.root.join(relative);
        file.is_file().then_some(file)
    }
}
