//! Drives the real `gateway` command against a fake emulator: a tiny_http
//! server in the test that records each `Invoke` and answers with a canned
//! function result.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_pipewright-lambda-host");
const SIX_MB: usize = 6 * 1024 * 1024;

/// One `Invoke` the fake emulator received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    event: Value,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake emulator answers: status, headers, body.
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Canned {
    fn ok(body: Value) -> Canned {
        Canned {
            status: 200,
            headers: vec![],
            body: body.to_string(),
        }
    }
}

type Responder = dyn Fn(&Value) -> Canned + Send + Sync;

/// The stand-in for fakecloud's Lambda `Invoke` API.
struct FakeEmulator {
    port: u16,
    calls: Arc<Mutex<Vec<Call>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeEmulator {
    fn start(responder: impl Fn(&Value) -> Canned + Send + Sync + 'static) -> FakeEmulator {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the fake emulator");
        let port = server.server_addr().to_ip().expect("ip").port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let responder: Arc<Responder> = Arc::new(responder);
        let thread = {
            let (calls, stop) = (Arc::clone(&calls), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) else {
                        continue;
                    };
                    let (calls, responder) = (Arc::clone(&calls), Arc::clone(&responder));
                    // A thread per request, so concurrency shows.
                    std::thread::spawn(move || answer(request, &calls, &*responder));
                }
            })
        };
        FakeEmulator {
            port,
            calls,
            stop,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    /// The one call made so far.
    fn only_call(&self) -> Call {
        let calls = self.calls();
        assert_eq!(calls.len(), 1, "{calls:#?}");
        calls[0].clone()
    }
}

fn answer(mut request: tiny_http::Request, calls: &Mutex<Vec<Call>>, responder: &Responder) {
    let mut body = Vec::new();
    std::io::Read::read_to_end(request.as_reader(), &mut body).expect("read the invocation");
    let event: Value = serde_json::from_slice(&body).expect("the event is JSON");
    let canned = responder(&event);
    calls.lock().expect("calls").push(Call {
        method: request.method().to_string(),
        url: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect(),
        event,
    });
    let mut response =
        tiny_http::Response::from_string(canned.body).with_status_code(canned.status);
    for (k, v) in canned.headers {
        response.add_header(tiny_http::Header::from_bytes(k, v.as_bytes()).expect("header"));
    }
    let _ = request.respond(response);
}

impl Drop for FakeEmulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The gateway process; stopped (SIGTERM, then SIGKILL) and its files
/// removed on drop.
struct Gateway {
    child: Child,
    port: u16,
    dir: PathBuf,
    stdout_line: String,
}

impl Gateway {
    fn start(name: &str, emulator: &str, extra: &[&str]) -> Gateway {
        let dir = std::env::temp_dir().join(format!("gateway-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("stderr log");
        let mut child = Command::new(BIN)
            .args(["gateway", "--emulator", emulator, "--function", "api"])
            .args(["--port", "0", "--port-file"])
            .arg(dir.join("port"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the gateway");
        let mut stdout_line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut stdout_line)
            .expect("read stdout");
        let port = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("no port file; stdout {stdout_line:?}; stderr:\n{log}")
            });
        Gateway {
            child,
            port,
            dir,
            stdout_line,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, and the exit status once it is gone.
    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        wait_exit(&mut self.child, Duration::from_secs(10)).expect("the gateway exits on SIGTERM")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(self.pid(), libc::SIGTERM);
            }
            if wait_exit(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP answer, as the client saw it.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("ascii header").to_string())
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let req = builder.body(body.to_vec()).expect("request");
    let mut response = agent().run(req).expect("the gateway answers");
    let body = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .expect("body");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

#[test]
fn a_request_becomes_a_function_url_event_and_the_result_an_http_response() {
    let emulator = FakeEmulator::start(|_| {
        Canned::ok(json!({
            "statusCode": 201,
            "headers": {
                "content-type": "application/x-amz-json-1.1",
                "x-custom": "yes",
                "content-length": "1"
            },
            "multiValueHeaders": {"x-multi": ["1", "2"]},
            "cookies": ["session=abc; HttpOnly", "theme=dark"],
            "body": "{\"pipelines\":[]}",
            "isBase64Encoded": false
        }))
    });
    let mut gw = Gateway::start("event", &emulator.endpoint(), &["--region", "eu-west-2"]);
    assert_eq!(
        gw.stdout_line.trim(),
        format!("PIPEWRIGHT_ENDPOINT=http://127.0.0.1:{}", gw.port)
    );

    let before = now_ms();
    let answer = request(
        "POST",
        &gw.url("/some/path?b=2&a=1&a=x%2Fy"),
        &[
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "CodePipeline_20150709.ListPipelines"),
            ("User-Agent", "aws-cli/2.17.0"),
            ("X-Dup", "one"),
            ("X-Dup", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=SECRETKEY/x"),
        ],
        b"{\"maxResults\": 10}",
    );

    // The HTTP response, from the function's structured result.
    assert_eq!(answer.status, 201);
    assert_eq!(
        answer.header_values("content-type"),
        ["application/x-amz-json-1.1"]
    );
    assert_eq!(answer.header_values("x-custom"), ["yes"]);
    assert_eq!(answer.header_values("x-multi"), ["1", "2"]);
    assert_eq!(
        answer.header_values("set-cookie"),
        ["session=abc; HttpOnly", "theme=dark"]
    );
    assert_eq!(answer.body, b"{\"pipelines\":[]}");

    // The invocation the emulator received.
    let call = emulator.only_call();
    assert_eq!(call.method, "POST");
    assert_eq!(call.url, "/2015-03-31/functions/api/invocations");
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(
        call.header("x-amz-invocation-type"),
        Some("RequestResponse")
    );
    let auth = call.header("authorization").expect("a credential scope");
    assert!(auth.contains("/eu-west-2/lambda/aws4_request"), "{auth}");

    let e = &call.event;
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["rawPath"], "/some/path");
    assert_eq!(e["rawQueryString"], "b=2&a=1&a=x%2Fy");
    assert_eq!(e["queryStringParameters"], json!({"a": "1,x/y", "b": "2"}));
    assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(e["body"], "{\"maxResults\": 10}");
    assert_eq!(e["isBase64Encoded"], false);
    let headers = e["headers"].as_object().expect("headers");
    for name in headers.keys() {
        assert_eq!(name, &name.to_ascii_lowercase());
    }
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(
        headers["x-amz-target"],
        "CodePipeline_20150709.ListPipelines"
    );
    assert_eq!(headers["x-dup"], "one,two");
    assert_eq!(headers["user-agent"], "aws-cli/2.17.0");
    assert_eq!(headers["host"], format!("127.0.0.1:{}", gw.port));
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert!(!headers.contains_key("cookie"));

    let rc = &e["requestContext"];
    assert_eq!(rc["accountId"], "123456789012");
    let api_id = rc["apiId"].as_str().expect("apiId");
    assert_eq!(api_id.len(), 32);
    assert_eq!(rc["domainPrefix"], api_id);
    assert_eq!(
        rc["domainName"],
        format!("{api_id}.lambda-url.eu-west-2.on.aws")
    );
    assert_eq!(rc["http"]["method"], "POST");
    assert_eq!(rc["http"]["path"], "/some/path");
    assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
    assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["http"]["userAgent"], "aws-cli/2.17.0");
    assert_eq!(rc["routeKey"], "$default");
    assert_eq!(rc["stage"], "$default");
    let id = rc["requestId"].as_str().expect("requestId");
    assert_eq!((id.len(), id.matches('-').count()), (36, 4), "{id}");
    let epoch = rc["timeEpoch"].as_u64().expect("timeEpoch");
    assert!(epoch >= before && epoch <= now_ms(), "{epoch}");
    let time = rc["time"].as_str().expect("time");
    assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");

    // A second request gets a request id of its own.
    request("GET", &gw.url("/"), &[], b"");
    let calls = emulator.calls();
    assert_ne!(
        calls[0].event["requestContext"]["requestId"],
        calls[1].event["requestContext"]["requestId"]
    );
    let get = &calls[1].event;
    assert_eq!(get["requestContext"]["http"]["method"], "GET");
    assert!(get.get("body").is_none());
    assert!(get.get("queryStringParameters").is_none());

    // One line per request; never a body or a credential.
    assert!(gw.terminate().success());
    let log = gw.log();
    assert!(log.contains("POST /some/path 201 "), "{log}");
    assert!(log.contains("GET / 201 "), "{log}");
    for secret in ["SECRETKEY", "maxResults", "pipelines", "b=2", "c1=v1"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn binary_bodies_travel_as_base64_both_ways() {
    let emulator = FakeEmulator::start(|_| {
        Canned::ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": BASE64.encode([0u8, 159, 146, 150, 255]),
            "isBase64Encoded": true
        }))
    });
    let gw = Gateway::start("binary", &emulator.endpoint(), &[]);
    let sent = [0xde, 0xad, 0xbe, 0xef, 0x00, 0xff];
    let answer = request(
        "PUT",
        &gw.url("/blob"),
        &[("Content-Type", "application/octet-stream")],
        &sent,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, [0u8, 159, 146, 150, 255]);
    assert_eq!(
        answer.header_values("content-type"),
        ["application/octet-stream"]
    );
    let e = emulator.only_call().event;
    assert_eq!(e["isBase64Encoded"], true);
    assert_eq!(
        BASE64
            .decode(e["body"].as_str().expect("body"))
            .expect("base64"),
        sent
    );
    assert_eq!(e["requestContext"]["http"]["method"], "PUT");
}

#[test]
fn a_plain_json_result_is_a_200_json_body() {
    let emulator = FakeEmulator::start(|_| Canned::ok(json!({"pipelines": [{"name": "p"}]})));
    let gw = Gateway::start("plain", &emulator.endpoint(), &[]);
    let answer = request("POST", &gw.url("/"), &[], b"{}");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header_values("content-type"), ["application/json"]);
    assert_eq!(answer.json(), json!({"pipelines": [{"name": "p"}]}));
}

#[test]
fn function_errors_are_502_internal_server_error() {
    // With the header (real Lambda, and fakecloud), and with only the error
    // object as the payload.
    let emulator = FakeEmulator::start(|event| {
        let body = json!({"errorType": "Boom", "errorMessage": "it broke"}).to_string();
        match event["rawPath"].as_str() {
            Some("/header") => Canned {
                status: 200,
                headers: vec![("X-Amz-Function-Error", "Unhandled".into())],
                body,
            },
            _ => Canned {
                status: 200,
                headers: vec![],
                body,
            },
        }
    });
    let mut gw = Gateway::start("error", &emulator.endpoint(), &[]);
    for path in ["/header", "/body"] {
        let answer = request("POST", &gw.url(path), &[], b"{}");
        assert_eq!(answer.status, 502, "{path}");
        assert_eq!(answer.json(), json!({"Message": "Internal Server Error"}));
    }
    gw.terminate();
    let log = gw.log();
    assert!(log.contains("Boom (Unhandled): it broke"), "{log}");
    assert!(log.contains("Boom (Handled): it broke"), "{log}");
}

#[test]
fn emulator_refusals_and_absence_are_502_with_a_reason() {
    let emulator = FakeEmulator::start(|_| Canned {
        status: 404,
        headers: vec![],
        body: json!({"__type": "ResourceNotFoundException", "message": "Function not found"})
            .to_string(),
    });
    let gw = Gateway::start("refused", &emulator.endpoint(), &[]);
    let answer = request("GET", &gw.url("/"), &[], b"");
    assert_eq!(answer.status, 502);
    let msg = answer.json()["Message"]
        .as_str()
        .expect("Message")
        .to_string();
    assert!(
        msg.contains("404") && msg.contains("ResourceNotFoundException"),
        "{msg}"
    );

    // Nothing listens on a port we just gave back.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let gw = Gateway::start("absent", &format!("http://127.0.0.1:{closed}"), &[]);
    let answer = request("GET", &gw.url("/"), &[], b"");
    assert_eq!(answer.status, 502);
    let msg = answer.json()["Message"]
        .as_str()
        .expect("Message")
        .to_string();
    assert!(msg.contains("cannot reach the emulator"), "{msg}");
}

#[test]
fn oversized_requests_get_413_and_no_invocation() {
    let emulator = FakeEmulator::start(|_| Canned::ok(json!({})));
    let gw = Gateway::start("large", &emulator.endpoint(), &[]);
    let answer = request("POST", &gw.url("/"), &[], &vec![b'a'; SIX_MB + 1]);
    assert_eq!(answer.status, 413);
    // Under the limit as a body, over it once base64 makes it an event.
    let answer = request("POST", &gw.url("/"), &[], &vec![0xff; SIX_MB - 10]);
    assert_eq!(answer.status, 413);
    assert!(emulator.calls().is_empty());
    // The gateway still serves afterwards.
    assert_eq!(request("POST", &gw.url("/"), &[], b"{}").status, 200);
}

#[test]
fn requests_are_served_concurrently() {
    let emulator = FakeEmulator::start(|_| {
        std::thread::sleep(Duration::from_millis(700));
        Canned::ok(json!({"ok": true}))
    });
    let gw = Gateway::start("concurrent", &emulator.endpoint(), &[]);
    let url = gw.url("/slow");
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || request("GET", &url, &[], b"").status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("client thread"), 200);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert_eq!(emulator.calls().len(), 4);
}

#[test]
fn stops_on_sigterm_and_when_the_parent_is_gone() {
    let emulator = FakeEmulator::start(|_| Canned::ok(json!({})));
    let mut gw = Gateway::start("sigterm", &emulator.endpoint(), &[]);
    assert!(gw.terminate().success());
    assert!(
        !gw.dir.join("port").exists(),
        "the port file is removed on exit"
    );
    assert!(gw.log().contains("shutting down: terminating signal"));

    let mut parent = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("start a parent");
    let parent_pid = parent.id().to_string();
    let mut gw = Gateway::start(
        "parent",
        &emulator.endpoint(),
        &["--parent-pid", &parent_pid],
    );
    assert_eq!(request("GET", &gw.url("/"), &[], b"").status, 200);
    let _ = parent.kill();
    let _ = parent.wait();
    let status = wait_exit(&mut gw.child, Duration::from_secs(10)).expect("the gateway follows");
    assert!(status.success());
    assert!(gw.log().contains("shutting down: parent process gone"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(BIN)
        .args(["gateway", "--function", "api"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--emulator"));
}
