//! `gateway`: a local Function URL for one function in the emulator.
//!
//! fakecloud stores Function URL configurations but serves none, so this
//! answers HTTP on 127.0.0.1 the way a Function URL does: each request
//! becomes a payload-format-2.0 event, the function is invoked with it
//! through the emulator's Lambda `Invoke` API, and the function's answer
//! becomes the HTTP response.
//!
//! One thread per request (at most [`MAX_IN_FLIGHT`] at once). The process
//! exits on SIGTERM, SIGINT or SIGHUP, and when the `--parent-pid` process
//! is gone.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tiny_http::{Header, Request, Response, Server};

use crate::cli_args::{GatewayArgs, IamAuth};
use crate::container::random_hex;
use crate::process;
use crate::serve::request_id;

/// Lambda's limit on a synchronous invocation's payload, both ways.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// Requests served at once; past that the gateway answers 429.
const MAX_IN_FLIGHT: usize = 64;
/// A function runs for at most 15 minutes; leave the emulator some slack.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(15 * 60 + 30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long in-flight requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_millis(1500);
const ACCOUNT_ID: &str = "123456789012";
/// The access key named in the invocation's credential scope. fakecloud
/// routes a request to a service by its SigV4 credential scope (an unsigned
/// POST to `/2015-03-31/...` goes to API Gateway); keys starting with `test`
/// (its administrator's) skip its signature and IAM checks even with
/// `--verify-sigv4` and `--iam strict`.
const ACCESS_KEY: &str = "test";
/// Request headers a proxy does not pass on (the body is buffered whole).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "expect",
];
/// Response headers tiny_http computes itself, or that must not be relayed.
const RESPONSE_SKIP: [&str; 5] = [
    "connection",
    "content-length",
    "transfer-encoding",
    "trailer",
    "upgrade",
];

/// Run the gateway until a terminating signal arrives or the parent is gone.
pub fn run(args: &GatewayArgs, out: &mut dyn Write) -> Result<(), String> {
    process::install_terminate_handler();
    let server = Server::http(("127.0.0.1", args.port))
        .map_err(|e| format!("binding 127.0.0.1:{}: {e}", args.port))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or("the server is not on an IP socket")?;
    let gateway = Arc::new(Gateway::new(args, port));
    if args.status_events {
        crate::status_events::spawn(args.emulator.clone(), args.region.clone());
    }
    if let Some(path) = &args.port_file {
        write_atomic(path, port.to_string().as_bytes())
            .map_err(|e| format!("writing the port file {}: {e}", path.display()))?;
    }
    writeln!(out, "PIPEWRIGHT_ENDPOINT=http://127.0.0.1:{port}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))?;
    log(&format!(
        "serving function {} through {} on http://127.0.0.1:{port}",
        args.function, args.emulator
    ));

    let reason = loop {
        if process::terminate_requested() {
            break "terminating signal";
        }
        if args.parent_pid.is_some_and(|pid| !process::pid_alive(pid)) {
            break "parent process gone";
        }
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => Gateway::dispatch(&gateway, request),
            Ok(None) => {}
            Err(e) => {
                log(&format!("accepting a request failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    log(&format!("shutting down: {reason}"));
    drop(server);
    let deadline = Instant::now() + DRAIN;
    while gateway.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(path) = &args.port_file {
        // Only our own: a newer gateway may have taken the file over.
        if std::fs::read_to_string(path).is_ok_and(|p| p.trim() == port.to_string()) {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

pub(crate) fn log(msg: &str) {
    eprintln!("[gateway] {msg}");
}

/// What the function is reached through, and how requests are described.
struct Gateway {
    emulator: String,
    function: String,
    invoke_url: String,
    context: Context,
    agent: ureq::Agent,
    in_flight: AtomicUsize,
    /// `AWS_IAM`: the identity requests must be signed with.
    iam: Option<IamAuth>,
}

/// The parts of an event that don't come from the request itself.
#[derive(Debug, Clone)]
struct Context {
    region: String,
    /// The Function URL's id: the first label of its domain name.
    url_id: String,
    /// The gateway's own port (`x-forwarded-port`).
    port: u16,
}

impl Context {
    fn domain_name(&self) -> String {
        format!("{}.lambda-url.{}.on.aws", self.url_id, self.region)
    }
}

/// Decrements the in-flight count when a request is done, however it ends.
struct InFlight(Arc<Gateway>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gateway {
    fn new(args: &GatewayArgs, port: u16) -> Gateway {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(INVOKE_TIMEOUT))
            .max_idle_connections_per_host(MAX_IN_FLIGHT)
            .user_agent("pipewright-lambda-host-gateway")
            .build();
        Gateway {
            emulator: args.emulator.clone(),
            function: args.function.clone(),
            invoke_url: format!(
                "{}/2015-03-31/functions/{}/invocations",
                args.emulator,
                encode_path_segment(&args.function)
            ),
            context: Context {
                region: args.region.clone(),
                url_id: url_id(&args.function),
                port,
            },
            agent: config.into(),
            in_flight: AtomicUsize::new(0),
            iam: args.iam.clone(),
        }
    }

    /// Hand `request` to a thread of its own, or turn it away when too many
    /// are under way.
    fn dispatch(this: &Arc<Gateway>, request: Request) {
        let started = Instant::now();
        if this.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            this.in_flight.fetch_sub(1, Ordering::SeqCst);
            let reply = Reply::message(429, "Rate Exceeded.");
            return send(request, reply, started);
        }
        let guard = InFlight(Arc::clone(this));
        let spawned = std::thread::Builder::new()
            .name("request".into())
            .spawn(move || {
                let InFlight(gateway) = &guard;
                gateway.handle(request, started);
            });
        // On failure the closure (with the request and the guard) is dropped:
        // tiny_http answers 500 and the count goes back down.
        if let Err(e) = spawned {
            log(&format!("could not start a request thread: {e}"));
        }
    }

    fn handle(&self, mut request: Request, started: Instant) {
        let reply = self.answer(&mut request);
        send(request, reply, started);
    }

    fn answer(&self, request: &mut Request) -> Reply {
        if request.body_length().is_some_and(|n| n > MAX_PAYLOAD) {
            return too_large();
        }
        let mut body = Vec::new();
        if let Err(e) = request
            .as_reader()
            .take(MAX_PAYLOAD as u64 + 1)
            .read_to_end(&mut body)
        {
            return Reply::message(400, &format!("reading the request body failed: {e}"));
        }
        if body.len() > MAX_PAYLOAD {
            return too_large();
        }
        let incoming = Incoming {
            method: request.method().as_str().to_string(),
            target: request.url().to_string(),
            protocol: format!("HTTP/{}", request.http_version()),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            source_ip: request.remote_addr().map(|a| a.ip()),
            body,
        };
        let now = SystemTime::now();
        let mut event = build_event(&incoming, &self.context, now, &request_id());
        if let Some(iam) = &self.iam {
            let checked = check_iam_signature(&incoming, iam, now).and_then(|identity| {
                // The identities file's principals must also be allowed to invoke the URL
                // (the one the gateway was started with is the emulator's administrator).
                if identity.principal != iam.principal {
                    self.may_invoke_url(&identity.principal)?;
                }
                Ok(identity)
            });
            match checked {
                Ok(identity) => event["requestContext"]["authorizer"] = iam_authorizer(&identity),
                Err(why) => {
                    log(&format!("refused (AWS_IAM): {why}"));
                    return Reply::message(403, "Forbidden");
                }
            }
        }
        let payload = event.to_string().into_bytes();
        if payload.len() > MAX_PAYLOAD {
            return too_large();
        }
        match self.invoke(&payload) {
            Ok(invocation) => self.translate(invocation),
            Err(msg) => {
                log(&msg);
                Reply::message(502, &msg)
            }
        }
    }

    /// `Invoke` through the emulator's Lambda API.
    /// Whether `principal`'s IAM policies allow `lambda:InvokeFunctionUrl` on this function, as
    /// Lambda checks for an `AWS_IAM` URL: asked of the emulator's IAM
    /// (`SimulatePrincipalPolicy`, with an assumed role's ARN found by `GetRole`). `Err` says
    /// why not.
    fn may_invoke_url(&self, principal: &str) -> Result<(), String> {
        use pipewright_core::access::principals::{policy_source, PolicySource};
        let source = match policy_source(principal)? {
            PolicySource::Root => return Ok(()),
            PolicySource::Arn(arn) => arn,
            PolicySource::Role { name, .. } => {
                let answer = self.iam_query(&[("Action", "GetRole"), ("RoleName", &name)])?;
                xml_text(&answer, "Arn").ok_or_else(|| format!("role {name} does not exist"))?
            }
        };
        let function_arn = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.context.region, self.function
        );
        let answer = self.iam_query(&[
            ("Action", "SimulatePrincipalPolicy"),
            ("PolicySourceArn", &source),
            ("ActionNames.member.1", "lambda:InvokeFunctionUrl"),
            ("ResourceArns.member.1", &function_arn),
        ])?;
        match xml_text(&answer, "EvalDecision").as_deref() {
            Some("allowed") => Ok(()),
            other => Err(format!(
                "{principal} may not lambda:InvokeFunctionUrl on {function_arn} ({})",
                other.unwrap_or("no decision")
            )),
        }
    }

    /// An IAM Query API call to the emulator (with its administrator's credentials); the XML.
    fn iam_query(&self, params: &[(&str, &str)]) -> Result<String, String> {
        let now = Utc::from(SystemTime::now());
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push('&');
            body.push_str(k);
            body.push('=');
            body.push_str(
                &percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        let authorization =
            emulator_authorization(&now, "us-east-1", "iam", "content-type;host;x-amz-date");
        let mut response = self
            .agent
            .post(&format!("{}/", self.emulator))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Amz-Date", now.amz_date())
            .header("Authorization", authorization)
            .send(body.as_bytes())
            .map_err(|e| format!("the emulator's IAM did not answer: {e}"))?;
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("the emulator's IAM answer: {e}"))?;
        Ok(text)
    }

    fn invoke(&self, payload: &[u8]) -> Result<Invocation, String> {
        let now = Utc::from(SystemTime::now());
        let authorization = emulator_authorization(
            &now,
            &self.context.region,
            "lambda",
            "content-type;host;x-amz-date;x-amz-invocation-type",
        );
        let mut response = self
            .agent
            .post(&self.invoke_url)
            .header("Content-Type", "application/json")
            .header("X-Amz-Invocation-Type", "RequestResponse")
            .header("X-Amz-Date", now.amz_date())
            .header("Authorization", authorization)
            .send(payload)
            .map_err(|e| {
                format!(
                    "cannot reach the emulator at {} to invoke {}: {e}",
                    self.emulator, self.function
                )
            })?;
        let status = response.status().as_u16();
        let function_error = response
            .headers()
            .get("x-amz-function-error")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_PAYLOAD as u64)
            .read_to_vec();
        let body = match body {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Ok(Invocation {
                    status,
                    function_error: Some("Unhandled".into()),
                    body: json!({
                        "errorType": "Function.ResponseSizeTooLarge",
                        "errorMessage": format!(
                            "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes)."
                        ),
                    })
                    .to_string()
                    .into_bytes(),
                })
            }
            Err(e) => {
                return Err(format!(
                    "reading the emulator's answer for {} failed: {e}",
                    self.function
                ))
            }
        };
        Ok(Invocation {
            status,
            function_error,
            body,
        })
    }

    fn translate(&self, invocation: Invocation) -> Reply {
        if invocation.status != 200 {
            let detail = emulator_error(&invocation.body);
            let msg = format!(
                "the emulator answered {} to Invoke {}: {detail}",
                invocation.status, self.function
            );
            log(&msg);
            return match invocation.status {
                413 | 429 => Reply::message(invocation.status, &msg),
                _ => Reply::message(502, &msg),
            };
        }
        if let Some(error) = function_error(invocation.function_error.as_deref(), &invocation.body)
        {
            log(&format!("function {} failed: {error}", self.function));
            return Reply::message(502, "Internal Server Error");
        }
        match function_response(&invocation.body) {
            Ok(reply) => reply,
            Err(msg) => {
                log(&format!(
                    "function {} returned an invalid response: {msg}",
                    self.function
                ));
                Reply::message(502, "Internal Server Error")
            }
        }
    }
}

/// Check, as an `AWS_IAM` Function URL does, that `req` was signed (SigV4, service `lambda`,
/// `host` and `x-amz-date` covered, within 15 minutes) with the credentials of one of `iam`'s
/// identities; the identity that signed it. `Err` says why not (logged; the caller only gets 403
/// Forbidden, as from Lambda).
fn check_iam_signature(req: &Incoming, iam: &IamAuth, now: SystemTime) -> Result<IamAuth, String> {
    use pipewright_core::access::sigv4::{self, SignedRequest};
    let (path, query) = split_target(&req.target);
    let signed = SignedRequest {
        method: &req.method,
        path,
        query,
        headers: &req.headers,
        body: &req.body,
    };
    let auth = sigv4::parse(&signed).map_err(|e| e.to_string())?;
    let identity = if auth.access_key_id == iam.access_key_id {
        iam.clone()
    } else {
        more_identities(iam)
            .into_iter()
            .find(|i| i.access_key_id == auth.access_key_id)
            .ok_or_else(|| format!("unknown access key {}", auth.access_key_id))?
    };
    sigv4::verify_as(&signed, &auth, &identity.secret, now, sigv4::FUNCTION_URL)
        .map_err(|e| e.to_string())?;
    Ok(identity)
}

/// The identities of `iam`'s identities file, read at each request (lines `ACCESS_KEY_ID SECRET
/// PRINCIPAL_ARN`; a missing file is none), so principals added while the gateway runs sign in.
fn more_identities(iam: &IamAuth) -> Vec<IamAuth> {
    let Some(text) = iam
        .identities_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
    else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some(key), Some(secret), Some(principal), None) => Some(IamAuth {
                    access_key_id: key.to_string(),
                    secret: secret.to_string(),
                    principal: principal.to_string(),
                    identities_file: None,
                }),
                _ => None,
            }
        })
        .collect()
}

/// An `Authorization` header for a call to the emulator with its administrator's credentials
/// (which it does not verify) for `service` in `region`.
pub(crate) fn emulator_authorization(
    now: &Utc,
    region: &str,
    service: &str,
    signed_headers: &str,
) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}/{region}/{service}/aws4_request, \
         SignedHeaders={signed_headers}, Signature={}",
        now.date_stamp(),
        "0".repeat(64)
    )
}

/// The text of the first `<name>` element of `xml`.
pub(crate) fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim().to_string())
}

/// `requestContext.authorizer` of an IAM-authenticated Function URL request.
fn iam_authorizer(iam: &IamAuth) -> Value {
    json!({
        "iam": {
            "accessKey": iam.access_key_id,
            "accountId": ACCOUNT_ID,
            "callerId": iam.access_key_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": iam.principal,
            "userId": iam.access_key_id,
        }
    })
}

/// What the emulator said to an `Invoke`.
struct Invocation {
    status: u16,
    /// `X-Amz-Function-Error`.
    function_error: Option<String>,
    body: Vec<u8>,
}

/// The HTTP answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// `{"Message": ...}`, the shape of Lambda's own Function URL errors.
    fn message(status: u16, message: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({ "Message": message }).to_string().into_bytes(),
        }
    }
}

fn too_large() -> Reply {
    Reply::message(
        413,
        &format!(
            "Request must be smaller than {MAX_PAYLOAD} bytes for the InvokeFunction operation"
        ),
    )
}

/// Answer `request` and log one line for it: never the body, the query
/// string or any header.
fn send(request: Request, reply: Reply, started: Instant) {
    let method = request.method().to_string();
    let path = request
        .url()
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string();
    let status = reply.status;
    let mut response = Response::from_data(reply.body).with_status_code(status);
    for (name, value) in &reply.headers {
        match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(h) => response.add_header(h),
            Err(()) => log(&format!(
                "dropping a response header that is not valid: {name}"
            )),
        }
    }
    if let Err(e) = request.respond(response) {
        log(&format!("writing the response failed: {e}"));
    }
    log(&format!(
        "{method} {path} {status} {}ms",
        started.elapsed().as_millis()
    ));
}

/// An HTTP request, as the event needs it.
#[derive(Debug, Clone)]
struct Incoming {
    method: String,
    /// The request target: `/path?query`.
    target: String,
    /// `HTTP/1.1`.
    protocol: String,
    headers: Vec<(String, String)>,
    source_ip: Option<IpAddr>,
    body: Vec<u8>,
}

/// The Function URL event (payload format 2.0) for `req`.
fn build_event(req: &Incoming, ctx: &Context, now: SystemTime, request_id: &str) -> Value {
    let (raw_path, raw_query) = split_target(&req.target);
    let source_ip = req
        .source_ip
        .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());

    // Lower-case names, repeats comma-joined; cookies go to their own list.
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_string())),
            );
            continue;
        }
        if HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        append_header(&mut headers, &name, value);
    }
    if !req.body.is_empty() && !headers.contains_key("content-length") {
        headers.insert(
            "content-length".into(),
            Value::String(req.body.len().to_string()),
        );
    }
    append_header(&mut headers, "x-forwarded-for", &source_ip);
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-port".into(), ctx.port.to_string().into());
    if !headers.contains_key("x-amzn-trace-id") {
        headers.insert("x-amzn-trace-id".into(), trace_header(now).into());
    }
    let user_agent = headers
        .get("user-agent")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let utc = Utc::from(now);
    let epoch_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": ctx.url_id,
            "domainName": ctx.domain_name(),
            "domainPrefix": ctx.url_id,
            "http": {
                "method": req.method,
                "path": raw_path,
                "protocol": req.protocol,
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": utc.clf(),
            "timeEpoch": epoch_ms,
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    let query = query_parameters(raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !req.body.is_empty() {
        match std::str::from_utf8(&req.body) {
            Ok(text) => event["body"] = Value::String(text.to_string()),
            Err(_) => {
                event["body"] = Value::String(BASE64.encode(&req.body));
                event["isBase64Encoded"] = Value::Bool(true);
            }
        }
    }
    event
}

fn append_header(headers: &mut Map<String, Value>, name: &str, value: &str) {
    match headers.get_mut(name) {
        Some(Value::String(existing)) => {
            existing.push(',');
            existing.push_str(value);
        }
        _ => {
            headers.insert(name.to_string(), Value::String(value.to_string()));
        }
    }
}

/// `(rawPath, rawQueryString)` of a request target; an absolute-form target
/// (`http://host/path`) is reduced to its path.
fn split_target(target: &str) -> (&str, &str) {
    let target = target.split('#').next().unwrap_or_default();
    let target = match target.split_once("://") {
        Some((scheme, rest)) if !scheme.contains(['/', '?']) => {
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        _ => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = if path.starts_with('/') { path } else { "/" };
    (path, query)
}

/// `queryStringParameters`: decoded, repeated keys comma-joined.
fn query_parameters(raw: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        append_header(&mut out, &percent_decode(k), &percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A function name (or ARN) as one URL path segment.
fn encode_path_segment(s: &str) -> String {
    /// RFC 3986's unreserved characters, and `:` (ARNs stay readable).
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b':');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// A stable 32-character Function URL id for `function` (a real one is 32
/// lower-case letters and digits).
fn url_id(function: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // FNV-1a, then a xorshift stream seeded with it.
    let mut x = function.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (0..32)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// `X-Amzn-Trace-Id` as Lambda adds it: `Root=1-<epoch hex>-<24 hex>`.
fn trace_header(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("Root=1-{secs:08x}-{}", random_hex(12))
}

/// The function's failure, if the invocation reports one: the
/// `X-Amz-Function-Error` header, or (fakecloud's way) an `errorMessage` /
/// `errorType` object as the payload.
fn function_error(header: Option<&str>, body: &[u8]) -> Option<String> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let object = parsed.as_ref().and_then(Value::as_object);
    let is_error_object =
        object.is_some_and(|m| m.contains_key("errorMessage") || m.contains_key("errorType"));
    if header.is_none() && !is_error_object {
        return None;
    }
    let field = |k: &str| {
        object
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let mut text = format!(
        "{} ({}): {}",
        field("errorType"),
        header.unwrap_or("Handled"),
        field("errorMessage")
    );
    truncate(&mut text, 1000);
    Some(text)
}

/// A short account of an emulator error body (`{"__type","message"}`).
fn emulator_error(body: &[u8]) -> String {
    let mut text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            let field = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| m.get(*k).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_string()
            };
            let kind = field(&["__type", "Type", "code"]);
            let message = field(&["message", "Message"]);
            match (kind.is_empty(), message.is_empty()) {
                (true, true) => Value::Object(m).to_string(),
                (false, true) => kind,
                (true, false) => message,
                (false, false) => format!("{kind}: {message}"),
            }
        }
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    if text.is_empty() {
        text = "(no message)".into();
    }
    truncate(&mut text, 500);
    text
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// The HTTP response for a function's successful result, as a Function URL
/// infers it: an object with `statusCode` describes the response; any other
/// payload is a `200` JSON body as it is.
fn function_response(payload: &[u8]) -> Result<Reply, String> {
    let plain = || Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: payload.to_vec(),
    };
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(payload) else {
        return Ok(plain());
    };
    let Some(status) = object.get("statusCode") else {
        return Ok(plain());
    };
    let status = match status {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| format!("statusCode {status} is not an HTTP status"))?;

    let mut headers: Vec<(String, String)> = Vec::new();
    let multi = match object.get("multiValueHeaders") {
        Some(Value::Object(m)) => m.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err("multiValueHeaders is not an object".into()),
    };
    let in_multi = |name: &str| multi.keys().any(|k| k.eq_ignore_ascii_case(name));
    match object.get("headers") {
        Some(Value::Object(m)) => {
            for (name, value) in m {
                if !in_multi(name) {
                    if let Some(value) = header_value(value) {
                        headers.push((name.clone(), value));
                    }
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err("headers is not an object".into()),
    }
    for (name, values) in &multi {
        match values {
            Value::Array(values) => headers.extend(
                values
                    .iter()
                    .filter_map(header_value)
                    .map(|v| (name.clone(), v)),
            ),
            other => {
                if let Some(v) = header_value(other) {
                    headers.push((name.clone(), v));
                }
            }
        }
    }
    match object.get("cookies") {
        Some(Value::Array(cookies)) => headers.extend(
            cookies
                .iter()
                .filter_map(header_value)
                .map(|c| ("Set-Cookie".to_string(), c)),
        ),
        Some(Value::Null) | None => {}
        Some(_) => return Err("cookies is not a list".into()),
    }
    headers.retain(|(name, _)| !RESPONSE_SKIP.iter().any(|s| name.eq_ignore_ascii_case(s)));

    let base64 = match object.get("isBase64Encoded") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    let body = match object.get("body") {
        Some(Value::String(s)) if base64 => BASE64
            .decode(s.trim())
            .map_err(|e| format!("body is not valid base64: {e}"))?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn header_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// Write `data` aside and rename it into place, so a reader never sees a
/// half-written file.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// A UTC calendar time, for the timestamps the event and SigV4 carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl From<SystemTime> for Utc {
    fn from(t: SystemTime) -> Utc {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Utc {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

impl Utc {
    /// `22/Nov/2026:01:00:00 +0000`, the event's `requestContext.time`.
    fn clf(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[(self.month as usize).clamp(1, 12) - 1],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `2026-11-22T01:00:00.000Z`, as AWS events write times.
    pub(crate) fn iso8601_millis(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `20261122`.
    pub(crate) fn date_stamp(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// `20261122T010000Z`.
    pub(crate) fn amz_date(&self) -> String {
        format!(
            "{}T{:02}{:02}{:02}Z",
            self.date_stamp(),
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_answers_are_read_by_element() {
        let xml = "<SimulatePrincipalPolicyResponse><EvaluationResults><member>\
                   <EvalDecision>implicitDeny</EvalDecision></member></EvaluationResults>\
                   </SimulatePrincipalPolicyResponse>";
        assert_eq!(
            xml_text(xml, "EvalDecision").as_deref(),
            Some("implicitDeny")
        );
        assert_eq!(xml_text(xml, "Arn"), None);
        assert_eq!(
            xml_text("<Role><Arn> arn:aws:iam::1:role/p/R </Arn></Role>", "Arn").as_deref(),
            Some("arn:aws:iam::1:role/p/R")
        );
    }

    fn ctx() -> Context {
        Context {
            region: "eu-west-2".into(),
            url_id: url_id("api"),
            port: 8123,
        }
    }

    fn incoming(target: &str, headers: &[(&str, &str)], body: &[u8]) -> Incoming {
        Incoming {
            method: "POST".into(),
            target: target.into(),
            protocol: "HTTP/1.1".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            source_ip: Some("127.0.0.1".parse().expect("ip")),
            body: body.to_vec(),
        }
    }

    #[test]
    fn calendar() {
        let at = |secs: u64| Utc::from(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0).clf(), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(1_795_309_200).clf(), "22/Nov/2026:01:00:00 +0000");
        assert_eq!(at(951_782_400).date_stamp(), "20000229");
        assert_eq!(at(1_583_348_638).amz_date(), "20200304T190358Z");
        assert_eq!(at(4_107_542_399).clf(), "28/Feb/2100:23:59:59 +0000");
    }

    #[test]
    fn event_shape() {
        let req = incoming(
            "/a/b%20c?x=1&y=%2F&x=2&flag",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "CodePipeline_20150709.ListPipelines"),
                ("User-Agent", "aws-cli/2.17.0"),
                ("X-Dup", "1"),
                ("x-dup", "2"),
                ("Cookie", "a=1; b=2"),
                ("Transfer-Encoding", "chunked"),
                ("Host", "127.0.0.1:8123"),
            ],
            b"{\"maxResults\": 10}",
        );
        let now = UNIX_EPOCH + Duration::from_millis(1_795_309_200_123);
        let e = build_event(&req, &ctx(), now, "rid");
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "$default");
        assert_eq!(e["rawPath"], "/a/b%20c");
        assert_eq!(e["rawQueryString"], "x=1&y=%2F&x=2&flag");
        assert_eq!(
            e["queryStringParameters"],
            json!({"x": "1,2", "y": "/", "flag": ""})
        );
        assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
        let h = &e["headers"];
        assert_eq!(h["content-type"], "application/x-amz-json-1.1");
        assert_eq!(h["x-amz-target"], "CodePipeline_20150709.ListPipelines");
        assert_eq!(h["x-dup"], "1,2");
        assert_eq!(h["content-length"], "18");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
        assert_eq!(h["x-forwarded-port"], "8123");
        assert!(h.get("cookie").is_none());
        assert!(h.get("transfer-encoding").is_none());
        let rc = &e["requestContext"];
        assert_eq!(rc["accountId"], ACCOUNT_ID);
        assert_eq!(rc["apiId"], url_id("api"));
        assert_eq!(
            rc["domainName"],
            format!("{}.lambda-url.eu-west-2.on.aws", url_id("api"))
        );
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["path"], "/a/b%20c");
        assert_eq!(rc["http"]["userAgent"], "aws-cli/2.17.0");
        assert_eq!(rc["time"], "22/Nov/2026:01:00:00 +0000");
        assert_eq!(rc["timeEpoch"], 1_795_309_200_123_u64);
        assert_eq!(rc["requestId"], "rid");
        assert_eq!(e["body"], "{\"maxResults\": 10}");
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn binary_and_empty_bodies() {
        let e = build_event(
            &incoming("/", &[], &[0xff, 0x00, 0x80]),
            &ctx(),
            SystemTime::now(),
            "r",
        );
        assert_eq!(e["body"], "/wCA");
        assert_eq!(e["isBase64Encoded"], true);
        let e = build_event(&incoming("/", &[], b""), &ctx(), SystemTime::now(), "r");
        assert!(e.get("body").is_none());
        assert!(e.get("cookies").is_none());
        assert!(e.get("queryStringParameters").is_none());
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["http"]["userAgent"], "");
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("/"), ("/", ""));
        assert_eq!(split_target("/p?q=1#frag"), ("/p", "q=1"));
        assert_eq!(split_target("http://h:1/x/y?z"), ("/x/y", "z"));
        assert_eq!(split_target("http://h:1"), ("/", ""));
        assert_eq!(split_target("*"), ("/", ""));
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(encode_path_segment("my fn/x"), "my%20fn%2Fx");
        assert_eq!(
            encode_path_segment("arn:aws:lambda:us-east-1:1:function:f"),
            "arn:aws:lambda:us-east-1:1:function:f"
        );
        let id = url_id("api");
        assert_eq!(id.len(), 32);
        assert_eq!(id, url_id("api"));
        assert_ne!(id, url_id("api2"));
    }

    #[test]
    fn responses() {
        let r = function_response(br#"{"pipelines":[]}"#).expect("plain");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"pipelines":[]}"#);
        assert!(r
            .headers
            .contains(&("Content-Type".into(), "application/json".into())));

        let r = function_response(
            br#"{"statusCode":201,"headers":{"X-A":"1","x-m":"dropped","Content-Length":"99"},
                 "multiValueHeaders":{"X-M":["a","b"]},"cookies":["c=1","d=2"],
                 "body":"aGk=","isBase64Encoded":true}"#,
        )
        .expect("structured");
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hi");
        assert_eq!(
            r.headers,
            vec![
                ("X-A".to_string(), "1".to_string()),
                ("X-M".into(), "a".into()),
                ("X-M".into(), "b".into()),
                ("Set-Cookie".into(), "c=1".into()),
                ("Set-Cookie".into(), "d=2".into()),
            ]
        );
        let r = function_response(br#"{"statusCode":"204"}"#).expect("no body");
        assert_eq!((r.status, r.body.len()), (204, 0));
        assert!(function_response(br#"{"statusCode":99}"#).is_err());
        assert!(
            function_response(br#"{"statusCode":200,"body":"!!","isBase64Encoded":true}"#).is_err()
        );
        assert_eq!(
            function_response(b"not json").expect("raw").body,
            b"not json"
        );
    }

    #[test]
    fn function_errors() {
        assert!(function_error(None, br#"{"statusCode":200}"#).is_none());
        assert!(function_error(None, b"\"text\"").is_none());
        let e = function_error(None, br#"{"errorType":"E","errorMessage":"boom"}"#).expect("body");
        assert_eq!(e, "E (Handled): boom");
        let e = function_error(Some("Unhandled"), b"whatever").expect("header");
        assert!(e.contains("Unhandled"), "{e}");
        assert_eq!(
            emulator_error(br#"{"__type":"ResourceNotFoundException","message":"nope"}"#),
            "ResourceNotFoundException: nope"
        );
        assert_eq!(emulator_error(b""), "(no message)");
    }
}
