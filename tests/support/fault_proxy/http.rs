//! Just enough HTTP/1.1 to pick a request and pass it on intact: the request head, read and
//! rewritten for upstream, and the body copied to its exact end (chunked or sized).

use std::io::{self, BufRead, Read, Write};

/// Guards against pathological heads; kube request heads are a few KiB.
const MAX_HEAD_BYTES: usize = 256 * 1024;

pub(super) struct RequestHead {
    pub(super) method: String,
    pub(super) target: String,
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
    pub(super) fn upstream_bytes(&self) -> Vec<u8> {
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

/// Returns `None` when the client closed before sending a request (Go does
/// this e.g. after a failed handshake, or when it gives up on a dial).
pub(super) fn read_head(client: &mut impl BufRead) -> io::Result<Option<RequestHead>> {
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
pub(super) fn forward_body(
    head: &RequestHead,
    client: &mut impl BufRead,
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

fn read_line(client: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    if client.read_until(b'\n', &mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client closed mid-body",
        ));
    }
    String::from_utf8(line).map_err(io::Error::other)
}

fn copy_exact(from: &mut impl BufRead, to: &mut dyn Write, len: u64) -> io::Result<()> {
    let copied = io::copy(&mut from.take(len), to)?;
    if copied != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "client closed mid-body",
        ));
    }
    Ok(())
}
