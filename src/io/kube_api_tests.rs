//! The proxy client's own rules: private socket directories, the server's words, budgets.

use super::*;

/// An API server that accepts connections and never answers: every request of a batch
/// comes back as an error once the batch's budget is spent, retry included.
#[test]
fn a_batch_never_outlasts_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let proxy = Proxy {
        dir: dir.path().join("owned-by-the-proxy"),
        socket,
        log: dir.path().join("proxy.log"),
        process: Mutex::new(None),
        ready: OnceLock::from(Ok(())),
    };
    let requests = (0..6)
        .map(|i| Request::get(format!("/api/v1/namespaces/n{i}/pods")))
        .collect();
    let started = Instant::now();
    let answers = proxy
        .send_all_within(requests, Duration::from_millis(400))
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(answers.len(), 6);
    for answer in answers {
        let error = format!("{:#}", answer.unwrap_err());
        assert!(error.starts_with("no answer within"), "{error}");
    }
}

#[test]
fn only_empty_socket_directories_of_dead_runs_are_swept() {
    let base = tempfile::tempdir().unwrap();
    let mut finished = std::process::Command::new("true").spawn().unwrap();
    finished.wait().unwrap();
    let dead = finished.id();
    let make = |name: String, files: &[&str]| {
        let dir = base.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for file in files {
            std::fs::write(dir.join(file), "").unwrap();
        }
        dir
    };
    let abandoned = make(
        format!("helm-safe-rollback.{dead}.1"),
        &["api.sock", "proxy.log"],
    );
    let running = make(
        format!("helm-safe-rollback.{}.2", std::process::id()),
        &["api.sock"],
    );
    let foreign = make(format!("helm-safe-rollback.{dead}.3"), &["notes.txt"]);
    let unrelated = make(format!("other.{dead}.4"), &[]);
    sweep_abandoned(base.path());
    assert!(!abandoned.exists());
    assert!(running.exists() && foreign.exists() && unrelated.exists());
}

#[test]
fn a_status_message_is_the_servers_own_words() {
    let response = Response {
        status: 422,
        body: br#"{"kind":"Status","status":"Failure","message":"ConfigMap \"Bad\" is invalid: metadata.name: Invalid value","reason":"Invalid","code":422}"#.to_vec(),
    };
    assert_eq!(
        response.message(),
        "ConfigMap \"Bad\" is invalid: metadata.name: Invalid value"
    );
    let plain = Response {
        status: 502,
        body:
            b"\nError while proxying request: dial tcp 127.0.0.1:1: connect: connection refused\n"
                .to_vec(),
    };
    assert_eq!(
        plain.message(),
        "Error while proxying request: dial tcp 127.0.0.1:1: connect: connection refused"
    );
}

#[test]
fn the_socket_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = private_dir().unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(mode & 0o777, 0o700);
}
