//! One client connection, one request: read it, then break it as its fault says or forward it
//! upstream and stream the answer back until upstream closes.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConnection, ServerConnection, StreamOwned};

use super::faults::{decide, replayed, service_unavailable, Fault, SeenRequest};
use super::http::{forward_body, read_head, RequestHead};
use super::{lock, Registered, Shared};

/// Longer than Go's idle-connection timeout (90s in client-go), so a client
/// that parks a dialed-but-unused connection closes it before we would, and
/// never writes a request into a connection we are closing.
const HEAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the client's own close once the response is out.
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

type ClientStream = BufReader<StreamOwned<ServerConnection, TcpStream>>;
type UpstreamStream = StreamOwned<ClientConnection, TcpStream>;

pub(super) fn handle_connection(shared: &Shared, tcp: TcpStream) -> io::Result<()> {
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
    let fault = decide(&mut lock(&shared.rules), &head.method, &head.target);
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
            out.write_all(&service_unavailable(&head.method, &head.target))?;
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

/// std's `TcpStream::set_linger` is still unstable.
fn set_linger_zero(tcp: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for the duration of the call (we hold `tcp`),
    // and the pointer/length describe a live, correctly laid out `linger`.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
