//! The detached per-container server: one 127.0.0.1 port answering both
//! fakecloud's invocations (the Runtime Interface Emulator's
//! `/2015-03-31/functions/function/invocations`) and the function's Lambda
//! Runtime API (`/2018-06-01/runtime/...`), with the function's `bootstrap`
//! as a child process.
//!
//! Invocations run one at a time, like a real sandbox. The bootstrap starts
//! with the first invocation and again with the next one after it exits, is
//! killed, or times out.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tiny_http::{Header, Request, Response, Server};

use crate::container::{random_hex, Config, Container};
use crate::process;
use crate::sandbox::{self, Sandbox};

/// Largest request body accepted (Lambda's own limit is 6 MB).
const MAX_BODY: u64 = 32 << 20;
/// `AWS_LAMBDA_FUNCTION_TIMEOUT` when the function didn't say.
const DEFAULT_TIMEOUT_SECS: u64 = 900;
/// How long the bootstrap gets to act on SIGTERM at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);
const ACCOUNT_ID: &str = "123456789012";
const HOST_ALIASES: [&str; 2] = ["host.docker.internal", "host.containers.internal"];

/// Run the server for `container` until its directory disappears or a
/// terminating signal arrives.
pub fn run(container: Container) -> Result<(), String> {
    process::install_terminate_handler();
    let config = container
        .config()
        .map_err(|e| format!("reading {}: {e}", container.dir.display()))?;
    let server = Server::http("127.0.0.1:0").map_err(|e| format!("binding 127.0.0.1: {e}"))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .ok_or("the server is not on an IP socket")?;
    let host = Arc::new(Host::new(container, &config, port));
    log(&format!(
        "serving container {} on 127.0.0.1:{port}; invocation timeout {}s",
        host.container.id,
        host.timeout.as_secs()
    ));
    Container::write_pid(&host.container.serve_pid_path(), std::process::id())
        .map_err(|e| format!("writing the pid file: {e}"))?;
    host.container
        .write_port(port)
        .map_err(|e| format!("writing the port file: {e}"))?;

    let config_path = host.container.dir.join("config.json");
    let reason = loop {
        if process::terminate_requested() {
            break "terminating signal";
        }
        if !config_path.exists() {
            break "state directory removed";
        }
        match server.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(request)) => {
                let host = Arc::clone(&host);
                let spawned = std::thread::Builder::new()
                    .name("request".into())
                    .spawn(move || host.handle(request));
                if let Err(e) = spawned {
                    log(&format!("could not start a request thread: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => {
                log(&format!("accepting a request failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    log(&format!("shutting down: {reason}"));
    host.shutdown();
    if host.container.dir.exists() {
        let _ = std::fs::remove_file(host.container.port_path());
        let _ = std::fs::remove_file(host.container.serve_pid_path());
    }
    Ok(())
}

/// One line in the container log (serve's stderr is that file).
fn log(msg: &str) {
    eprintln!("[lambda-host] {msg}");
}

/// Where the Runtime API paths lead.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Invoke,
    Next,
    Response(String),
    Error(String),
    InitError,
    NotFound,
}

fn route(method: &str, url: &str) -> Route {
    let path = url.split('?').next().unwrap_or(url);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("POST", ["2015-03-31", "functions", _, "invocations"]) => Route::Invoke,
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => Route::Next,
        ("POST", ["2018-06-01", "runtime", "invocation", id, "response"]) => {
            Route::Response((*id).to_string())
        }
        ("POST", ["2018-06-01", "runtime", "invocation", id, "error"]) => {
            Route::Error((*id).to_string())
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => Route::InitError,
        _ => Route::NotFound,
    }
}

/// What an invocation ended with; both kinds reach fakecloud as a 200.
#[derive(Debug)]
enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

impl Outcome {
    fn error(error_type: &str, message: &str) -> Outcome {
        Outcome::Error(error_json(error_type, message))
    }
}

/// The invocation in the sandbox.
struct Invocation {
    request_id: String,
    payload: Vec<u8>,
    deadline_ms: u128,
    trace_id: String,
    /// Handed to the bootstrap by `/next`.
    dispatched: bool,
    outcome: Option<Outcome>,
}

struct State {
    bootstrap: Option<Child>,
    /// Bumped on every bootstrap start and stop, so a `/next` long-poll left
    /// over from a dead bootstrap gives up instead of taking new work.
    generation: u64,
    current: Option<Invocation>,
    shutdown: bool,
}

struct Host {
    container: Container,
    /// How the bootstrap is started (bubblewrap, or a plain process).
    sandbox: Sandbox,
    /// The bootstrap's complete environment, except the port.
    env: BTreeMap<String, String>,
    timeout: Duration,
    function_arn: String,
    memory_mb: String,
    state: Mutex<State>,
    changed: Condvar,
    /// Held for the whole of an invocation: one at a time.
    serial: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Host {
    fn new(container: Container, config: &Config, port: u16) -> Host {
        let sandbox = Sandbox::from_env();
        // Inside a sandbox the function sees Lambda's own paths.
        let layout = if sandbox.isolated() {
            Layout {
                task: sandbox::TASK.into(),
                runtime: sandbox::RUNTIME.into(),
                opt: sandbox::OPT.into(),
                tmp: sandbox::TMP.into(),
            }
        } else {
            Layout {
                task: container.task_dir(),
                runtime: container.runtime_dir(),
                opt: container.opt_dir(),
                tmp: container.tmp_dir(),
            }
        };
        let env = bootstrap_env(config, &layout, port);
        let timeout = env
            .get("AWS_LAMBDA_FUNCTION_TIMEOUT")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        let get = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
        let function_arn = format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            get("AWS_REGION"),
            get("AWS_LAMBDA_FUNCTION_NAME")
        );
        let memory_mb = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").to_string();
        Host {
            container,
            sandbox,
            env,
            timeout: Duration::from_secs(timeout),
            function_arn,
            memory_mb,
            state: Mutex::new(State {
                bootstrap: None,
                generation: 0,
                current: None,
                shutdown: false,
            }),
            changed: Condvar::new(),
            serial: Mutex::new(()),
        }
    }

    fn handle(&self, mut request: Request) {
        let route = route(request.method().as_str(), request.url());
        if route == Route::NotFound {
            let msg = format!("no route for {} {}", request.method(), request.url());
            return reply(request, 404, error_json("NotFound", &msg));
        }
        if route == Route::Next {
            return self.next(request);
        }
        let body = match read_body(&mut request) {
            Ok(b) => b,
            Err((status, msg)) => {
                return reply(request, status, error_json("InvalidRequest", &msg))
            }
        };
        match route {
            Route::Invoke => {
                let outcome = self.invoke(body);
                let body = match outcome {
                    Outcome::Response(b) | Outcome::Error(b) => b,
                };
                reply(request, 200, body);
            }
            Route::Response(id) => {
                let (status, body) = self.complete(&id, Outcome::Response(body));
                reply(request, status, body);
            }
            Route::Error(id) => {
                let kind = header(&request, "Lambda-Runtime-Function-Error-Type");
                let error = normalize_error(&body, kind.as_deref(), "Runtime.Unknown");
                let (status, body) = self.complete(&id, Outcome::Error(error));
                reply(request, status, body);
            }
            Route::InitError => {
                let kind = header(&request, "Lambda-Runtime-Function-Error-Type");
                let error = normalize_error(&body, kind.as_deref(), "Runtime.InitError");
                log(&format!(
                    "init error: {}",
                    String::from_utf8_lossy(&error).trim()
                ));
                let mut st = lock(&self.state);
                if let Some(cur) = st.current.as_mut().filter(|c| c.outcome.is_none()) {
                    cur.outcome = Some(Outcome::Error(error));
                    self.changed.notify_all();
                }
                drop(st);
                reply(request, 202, br#"{"status":"OK"}"#.to_vec());
            }
            Route::Next | Route::NotFound => {}
        }
    }

    /// fakecloud's POST: run one invocation to its end.
    fn invoke(&self, payload: Vec<u8>) -> Outcome {
        let _serial = lock(&self.serial);
        let request_id = request_id();
        let started = Instant::now();
        eprintln!("START RequestId: {request_id} Version: $LATEST");
        let outcome = self.run_invocation(&request_id, payload);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Outcome::Error(body) = &outcome {
            log(&format!(
                "RequestId: {request_id} failed: {}",
                String::from_utf8_lossy(body).trim()
            ));
        }
        eprintln!("END RequestId: {request_id}");
        eprintln!(
            "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: 0 MB",
            ms.ceil() as u64,
            self.memory_mb
        );
        outcome
    }

    fn run_invocation(&self, request_id: &str, payload: Vec<u8>) -> Outcome {
        let mut st = lock(&self.state);
        if st.shutdown {
            return Outcome::error("Runtime.ExitError", "the sandbox is shutting down");
        }
        if let Err(msg) = self.ensure_bootstrap(&mut st) {
            return Outcome::error(
                "Runtime.InvalidEntrypoint",
                &format!("RequestId: {request_id} Error: {msg}"),
            );
        }
        let deadline = Instant::now() + self.timeout;
        st.current = Some(Invocation {
            request_id: request_id.to_string(),
            payload,
            deadline_ms: unix_ms() + self.timeout.as_millis(),
            trace_id: trace_id(),
            dispatched: false,
            outcome: None,
        });
        self.changed.notify_all();

        let outcome = loop {
            if let Some(outcome) = st.current.as_mut().and_then(|c| c.outcome.take()) {
                break outcome;
            }
            if st.shutdown {
                break Outcome::error(
                    "Runtime.ExitError",
                    &format!("RequestId: {request_id} Error: the sandbox is shutting down"),
                );
            }
            if let Some(status) = self.reap_exited(&mut st) {
                break Outcome::error(
                    "Runtime.ExitError",
                    &format!(
                        "RequestId: {request_id} Error: Runtime exited with error: {}",
                        describe_exit(status)
                    ),
                );
            }
            if st.bootstrap.is_none() {
                break Outcome::error(
                    "Runtime.ExitError",
                    &format!("RequestId: {request_id} Error: Runtime exited"),
                );
            }
            let now = Instant::now();
            if now >= deadline {
                log(&format!(
                    "RequestId: {request_id} timed out after {}s; stopping the bootstrap",
                    self.timeout.as_secs()
                ));
                self.stop_bootstrap(&mut st, Duration::ZERO);
                break Outcome::error(
                    "Sandbox.Timedout",
                    &format!("Task timed out after {} seconds", self.timeout.as_secs()),
                );
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            st = self
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        st.current = None;
        self.changed.notify_all();
        outcome
    }

    /// Start the bootstrap unless one is running.
    fn ensure_bootstrap(&self, st: &mut State) -> Result<(), String> {
        if let Some(status) = self.reap_exited(st) {
            log(&format!(
                "bootstrap had exited ({}); starting a new one",
                describe_exit(status)
            ));
        }
        if st.bootstrap.is_some() {
            return Ok(());
        }
        let child = self.spawn_bootstrap()?;
        log(&format!("bootstrap started, pid {}", child.id()));
        st.bootstrap = Some(child);
        st.generation += 1;
        Ok(())
    }

    fn bootstrap_path(&self) -> Option<PathBuf> {
        [
            self.container.task_dir(),
            self.container.runtime_dir(),
            self.container.opt_dir(),
        ]
        .into_iter()
        .map(|d| d.join("bootstrap"))
        .find(|p| p.is_file())
    }

    fn spawn_bootstrap(&self) -> Result<Child, String> {
        let exe = self.bootstrap_path().ok_or(
            "Couldn't find valid bootstrap(s): [/var/task/bootstrap /var/runtime/bootstrap /opt/bootstrap]",
        )?;
        let log_file = self
            .container
            .open_log()
            .map_err(|e| format!("opening the container log: {e}"))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("opening the container log: {e}"))?;
        let mounts = sandbox::Mounts {
            task: self.container.task_dir(),
            runtime: self.container.runtime_dir(),
            opt: self.container.opt_dir(),
            tmp: self.container.tmp_dir(),
        };
        let mut command = self.sandbox.command(&exe, &mounts)?;
        command
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            // A group of its own, so a timeout or shutdown also takes down
            // whatever the bootstrap started (in a sandbox, the sandbox dies
            // with bubblewrap).
            .process_group(0);
        let child =
            sandbox::spawn(command).map_err(|e| format!("fork/exec {}: {e}", exe.display()))?;
        if let Err(e) = Container::write_pid(&self.container.bootstrap_pid_path(), child.id()) {
            log(&format!("could not record the bootstrap pid: {e}"));
        }
        Ok(child)
    }

    /// If the bootstrap has exited, reap it (and whatever is left of its
    /// group) and return its status.
    fn reap_exited(&self, st: &mut State) -> Option<ExitStatus> {
        let child = st.bootstrap.as_mut()?;
        match child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => {
                let pgid = child.id() as i32;
                st.bootstrap = None;
                st.generation += 1;
                process::signal_group(pgid, libc::SIGKILL);
                let _ = std::fs::remove_file(self.container.bootstrap_pid_path());
                self.changed.notify_all();
                log(&format!("bootstrap exited: {}", describe_exit(status)));
                Some(status)
            }
            Err(e) => {
                log(&format!("checking on the bootstrap failed: {e}"));
                None
            }
        }
    }

    /// Stop the bootstrap's whole group: SIGTERM, `grace`, then SIGKILL.
    fn stop_bootstrap(&self, st: &mut State, grace: Duration) {
        let Some(mut child) = st.bootstrap.take() else {
            return;
        };
        let pgid = child.id() as i32;
        if !grace.is_zero() {
            process::signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        process::signal_group(pgid, libc::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
        st.generation += 1;
        let _ = std::fs::remove_file(self.container.bootstrap_pid_path());
        self.changed.notify_all();
    }

    /// `GET /runtime/invocation/next`: wait for an invocation, hand it over.
    fn next(&self, request: Request) {
        let mut st = lock(&self.state);
        let generation = st.generation;
        loop {
            if st.shutdown || st.generation != generation {
                drop(st);
                return reply(
                    request,
                    410,
                    error_json("Runtime.Gone", "this runtime was stopped"),
                );
            }
            if let Some(cur) = st
                .current
                .as_mut()
                .filter(|c| !c.dispatched && c.outcome.is_none())
            {
                cur.dispatched = true;
                let request_id = cur.request_id.clone();
                let mut response = Response::from_data(cur.payload.clone()).with_status_code(200);
                for (name, value) in [
                    ("Content-Type", "application/json".to_string()),
                    ("Lambda-Runtime-Aws-Request-Id", request_id.clone()),
                    ("Lambda-Runtime-Deadline-Ms", cur.deadline_ms.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        self.function_arn.clone(),
                    ),
                    ("Lambda-Runtime-Trace-Id", cur.trace_id.clone()),
                ] {
                    if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                        response.add_header(h);
                    }
                }
                drop(st);
                if let Err(e) = request.respond(response) {
                    // The runtime hung up before taking it: offer it again.
                    log(&format!("handing over {request_id} failed: {e}"));
                    let mut st = lock(&self.state);
                    if let Some(cur) = st
                        .current
                        .as_mut()
                        .filter(|c| c.request_id == request_id && c.outcome.is_none())
                    {
                        cur.dispatched = false;
                        self.changed.notify_all();
                    }
                }
                return;
            }
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(500))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// `POST /runtime/invocation/{id}/response|error`.
    fn complete(&self, request_id: &str, outcome: Outcome) -> (u16, Vec<u8>) {
        let mut st = lock(&self.state);
        match st.current.as_mut() {
            Some(cur)
                if cur.request_id == request_id && cur.dispatched && cur.outcome.is_none() =>
            {
                cur.outcome = Some(outcome);
                self.changed.notify_all();
                (202, br#"{"status":"OK"}"#.to_vec())
            }
            _ => {
                log(&format!(
                    "result for unknown or finished request {request_id}"
                ));
                (
                    400,
                    error_json(
                        "InvalidRequestID",
                        &format!("Invalid request ID: {request_id}"),
                    ),
                )
            }
        }
    }

    fn shutdown(&self) {
        let mut st = lock(&self.state);
        st.shutdown = true;
        self.stop_bootstrap(&mut st, SHUTDOWN_GRACE);
        self.changed.notify_all();
        drop(st);
        // Let an in-flight invocation answer fakecloud before we exit.
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if self.serial.try_lock().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn read_body(request: &mut Request) -> Result<Vec<u8>, (u16, String)> {
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| (400, format!("reading the request body: {e}")))?;
    if body.len() as u64 > MAX_BODY {
        return Err((413, format!("request body larger than {MAX_BODY} bytes")));
    }
    Ok(body)
}

fn reply(request: Request, status: u16, body: Vec<u8>) {
    let mut response = Response::from_data(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        response.add_header(h);
    }
    if let Err(e) = request.respond(response) {
        log(&format!("writing a response failed: {e}"));
    }
}

/// `{"errorType":..,"errorMessage":..}`, the shape fakecloud looks for.
fn error_json(error_type: &str, message: &str) -> Vec<u8> {
    json!({ "errorType": error_type, "errorMessage": message })
        .to_string()
        .into_bytes()
}

/// The body a runtime posted to `/error`, as fakecloud will see it: kept as
/// is when it already is an error object, otherwise wrapped into one.
fn normalize_error(body: &[u8], header_type: Option<&str>, default_type: &str) -> Vec<u8> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        if map.contains_key("errorType") || map.contains_key("errorMessage") {
            return body.to_vec();
        }
    }
    let error_type = header_type
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("unhandled"))
        .unwrap_or(default_type);
    error_json(error_type, String::from_utf8_lossy(body).trim())
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// A random UUID-shaped request id.
pub(crate) fn request_id() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// An X-Ray trace header, `Root=1-<epoch hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        random_hex(12),
        random_hex(8)
    )
}

/// Host directories standing in for the container's.
pub struct Layout {
    pub task: PathBuf,
    pub runtime: PathBuf,
    pub opt: PathBuf,
    pub tmp: PathBuf,
}

/// Replace the container-to-host aliases with loopback: here the function
/// runs on the host itself.
pub fn rewrite_host_aliases(value: &str) -> String {
    HOST_ALIASES
        .iter()
        .fold(value.to_string(), |v, alias| v.replace(alias, "127.0.0.1"))
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// The bootstrap's environment: a minimal base, then every recorded `-e`
/// variable (aliases rewritten to 127.0.0.1), then the Runtime API wiring,
/// which always wins.
pub fn bootstrap_env(config: &Config, layout: &Layout, port: u16) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set(
        "PATH",
        format!("{}/bin:/usr/local/bin:/usr/bin:/bin", display(&layout.opt)),
    );
    set("HOME", display(&layout.tmp));
    set("TMPDIR", display(&layout.tmp));
    // lambda_runtime refuses to start without these; fakecloud sends them.
    let name = config
        .labels
        .get("fakecloud-lambda")
        .cloned()
        .unwrap_or_else(|| "function".to_string());
    set("AWS_LAMBDA_FUNCTION_NAME", name);
    set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string());
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string());

    for (k, v) in &config.env {
        env.insert(k.clone(), rewrite_host_aliases(v));
    }

    let region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .cloned()
        .unwrap_or_else(|| "us-east-1".to_string());
    env.entry("AWS_REGION".into()).or_insert(region.clone());
    env.entry("AWS_DEFAULT_REGION".into()).or_insert(region);

    env.insert("AWS_LAMBDA_RUNTIME_API".into(), format!("127.0.0.1:{port}"));
    env.insert("LAMBDA_TASK_ROOT".into(), display(&layout.task));
    env.insert("LAMBDA_RUNTIME_DIR".into(), display(&layout.runtime));
    env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
    match config.command.first() {
        Some(handler) => {
            env.insert("_HANDLER".into(), handler.clone());
        }
        None => {
            env.remove("_HANDLER");
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            task: "/s/task".into(),
            runtime: "/s/runtime".into(),
            opt: "/s/opt".into(),
            tmp: "/s/tmp".into(),
        }
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("POST", "/2015-03-31/functions/function/invocations"),
            Route::Invoke
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/next"),
            Route::Next
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc-1/response"),
            Route::Response("abc-1".into())
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc-1/error?x=1"),
            Route::Error("abc-1".into())
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/init/error"),
            Route::InitError
        );
        assert_eq!(
            route("GET", "/2015-03-31/functions/function/invocations"),
            Route::NotFound
        );
        assert_eq!(route("GET", "/"), Route::NotFound);
    }

    #[test]
    fn environment() {
        let config = Config {
            command: vec!["bootstrap.handler".into()],
            env: vec![
                (
                    "AWS_ENDPOINT_URL".into(),
                    "http://host.docker.internal:4566".into(),
                ),
                (
                    "QUEUE".into(),
                    "http://host.containers.internal:4566/q,host.docker.internal".into(),
                ),
                ("AWS_REGION".into(), "eu-west-2".into()),
                ("AWS_LAMBDA_FUNCTION_NAME".into(), "api".into()),
                ("AWS_LAMBDA_RUNTIME_API".into(), "evil:1".into()),
                ("PATH".into(), "/custom".into()),
            ],
            ..Config::default()
        };
        let env = bootstrap_env(&config, &layout(), 4242);
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:4566"));
        assert_eq!(get("QUEUE"), Some("http://127.0.0.1:4566/q,127.0.0.1"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-2"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("eu-west-2"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("api"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:4242"));
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/s/task"));
        assert_eq!(get("LAMBDA_RUNTIME_DIR"), Some("/s/runtime"));
        assert_eq!(get("_HANDLER"), Some("bootstrap.handler"));
        assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
        assert_eq!(get("TMPDIR"), Some("/s/tmp"));
        assert_eq!(get("PATH"), Some("/custom"));
    }

    #[test]
    fn environment_defaults() {
        let config = Config {
            labels: [("fakecloud-lambda".to_string(), "fn1".to_string())].into(),
            env: vec![("AWS_DEFAULT_REGION".into(), "ap-south-1".into())],
            ..Config::default()
        };
        let env = bootstrap_env(&config, &layout(), 1);
        let get = |k: &str| env.get(k).map(String::as_str);
        assert_eq!(get("AWS_REGION"), Some("ap-south-1"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("fn1"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("128"));
        assert_eq!(get("PATH"), Some("/s/opt/bin:/usr/local/bin:/usr/bin:/bin"));
        assert_eq!(get("_HANDLER"), None);

        let env = bootstrap_env(&Config::default(), &layout(), 1);
        assert_eq!(env.get("AWS_REGION").map(String::as_str), Some("us-east-1"));
        assert_eq!(
            env.get("AWS_DEFAULT_REGION").map(String::as_str),
            Some("us-east-1")
        );
    }

    #[test]
    fn error_normalization() {
        let lambda_runtime_body = br#"{"errorType":"alloc::string::String","errorMessage":"boom"}"#;
        assert_eq!(
            normalize_error(lambda_runtime_body, Some("unhandled"), "Runtime.Unknown"),
            lambda_runtime_body.to_vec()
        );
        let wrapped: Value =
            serde_json::from_slice(&normalize_error(b"plain text\n", Some("Custom"), "X"))
                .expect("json");
        assert_eq!(wrapped["errorType"], "Custom");
        assert_eq!(wrapped["errorMessage"], "plain text");
        let wrapped: Value = serde_json::from_slice(&normalize_error(
            br#"{"other":1}"#,
            Some("Unhandled"),
            "Runtime.Unknown",
        ))
        .expect("json");
        assert_eq!(wrapped["errorType"], "Runtime.Unknown");
    }

    #[test]
    fn ids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.ends_with(";Sampled=0"), "{t}");
    }

    #[test]
    fn exit_descriptions() {
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "signal: 9");
    }
}
