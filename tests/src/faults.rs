//! A loopback HTTP proxy in front of the emulator that injects faults into chosen AWS calls, for
//! the tests that show the engine survives them. A function is pointed at it through the SDKs'
//! service-specific endpoint variable (`AWS_ENDPOINT_URL_SFN`, `AWS_ENDPOINT_URL_EVENTBRIDGE`),
//! so only that function's calls of that service pass through it; every call the rule does not
//! pick is forwarded unchanged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Its `X-Amz-Target` header (the operation of a JSON-protocol service), if any.
    pub target: Option<String>,
    /// Its body, as text.
    pub body: String,
}

/// What the proxy does with a call.
pub enum Fault {
    /// Forward it and return the answer unchanged.
    Pass,
    /// Answer it with `status` and the JSON `body` without forwarding it.
    Refuse {
        /// HTTP status.
        status: u16,
        /// JSON body (`{"__type": ..., "message": ...}`).
        body: String,
    },
    /// Forward it, then replace the answer's body with what the function makes of it.
    Rewrite(Box<dyn FnOnce(&str) -> String + Send>),
}

/// A running proxy.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    faults: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// How many calls it has refused or rewritten.
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }
}

/// Start a proxy in front of `upstream` (`http://127.0.0.1:PORT`); `decide` picks each call's
/// fate. It runs until the test process exits.
pub fn start(
    upstream: &str,
    decide: impl Fn(&Call) -> Fault + Send + Sync + 'static,
) -> FaultProxy {
    let upstream = upstream
        .strip_prefix("http://")
        .expect("an http:// endpoint")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    let faults = Arc::new(AtomicUsize::new(0));
    let decide = Arc::new(decide);
    let counted = faults.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (upstream, decide, counted) = (upstream.clone(), decide.clone(), counted.clone());
            std::thread::spawn(move || {
                if let Err(e) = serve(stream, &upstream, &*decide, &counted) {
                    eprintln!("fault proxy: {e}");
                }
            });
        }
    });
    FaultProxy { endpoint, faults }
}

/// One request per connection (the answer closes it).
fn serve(
    stream: TcpStream,
    upstream: &str,
    decide: &(dyn Fn(&Call) -> Fault + Send + Sync),
    counted: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut target = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("x-amz-target:") {
            target = Some(line["x-amz-target:".len()..].trim().to_string());
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let call = Call {
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let mut out = stream;
    let fault = decide(&call);
    if !matches!(fault, Fault::Pass) {
        counted.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Refuse { status, body } => {
            respond(&mut out, status, "application/x-amz-json-1.0", &body)
        }
        Fault::Pass => {
            let answer = forward(upstream, &head, &body)?;
            out.write_all(&answer)?;
            out.flush()
        }
        Fault::Rewrite(rewrite) => {
            let answer = forward(upstream, &head, &body)?;
            let (status, content_type, text) = parse_answer(&answer);
            respond(&mut out, status, &content_type, &rewrite(&text))
        }
    }
}

/// Send the request to `upstream` (closing the connection after it) and read the whole answer.
fn forward(upstream: &str, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    for line in head {
        up.write_all(line.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(body)?;
    up.flush()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

/// (status, content type, body) of a raw HTTP/1.1 answer (chunked bodies decoded).
fn parse_answer(raw: &[u8]) -> (u16, String, String) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let header = |name: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(name))
            .map(|l| l[name.len()..].trim().to_string())
    };
    if header("transfer-encoding:").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = decoded;
    }
    let content_type =
        header("content-type:").unwrap_or_else(|| "application/x-amz-json-1.1".into());
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
