//! The AWS emulator (fakecloud) as a separate process on 127.0.0.1.
//!
//! fakecloud is AGPL: it is only ever run as a program, never linked. It runs Lambda functions
//! through a container engine's command line; there is no engine here, so it is pointed
//! (`FAKECLOUD_CONTAINER_CLI`) at `pipewright-lambda-host`, which runs each function's
//! `bootstrap` as a local process behind a Lambda Runtime API.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::LocalError;

/// The fakecloud version the project is tested with (installed by `scripts/install-tools`).
pub const FAKECLOUD_VERSION: &str = "0.51.0";

/// How long to wait for the emulator to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its process id (its own process group).
    pub pid: u32,
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// The fakecloud program.
    pub fakecloud: PathBuf,
    /// The `pipewright-lambda-host` program it runs functions with.
    pub lambda_host: PathBuf,
    /// Folder for its log and the functions' sandboxes.
    pub state_dir: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Emulator {
    /// Start fakecloud in its own process group (it outlives the caller until [`stop`] is called),
    /// logging to `<state_dir>/fakecloud.log`, and wait until it is healthy.
    pub fn start(opts: &EmulatorOptions) -> Result<Self, LocalError> {
        std::fs::create_dir_all(&opts.state_dir).map_err(|e| LocalError::io(&opts.state_dir, e))?;
        let log_path = opts.state_dir.join("fakecloud.log");
        let log = File::create(&log_path).map_err(|e| LocalError::io(&log_path, e))?;
        let log_err = log.try_clone().map_err(|e| LocalError::io(&log_path, e))?;
        let sandboxes = opts.state_dir.join("lambda");
        // The emulator extracts each function's code under TMPDIR before copying it into a
        // sandbox: on the sandboxes' file system the copy becomes a hard link, and the
        // extractions go when the state folder does.
        let tmp = opts.state_dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| LocalError::io(&tmp, e))?;
        let child = Command::new(&opts.fakecloud)
            .args(["--addr", &format!("127.0.0.1:{}", opts.port)])
            .env("FAKECLOUD_CONTAINER_CLI", &opts.lambda_host)
            .env("PIPEWRIGHT_LAMBDA_HOST_DIR", &sandboxes)
            .env("TMPDIR", &tmp)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // A panic leaves its backtrace in the log; a deep future in this debug build gets
            // 8 MiB of stack instead of 2 (an overflow would abort the whole emulator); four
            // workers instead of one per core, so one blocked worker does not stall it on a
            // two-core machine.
            // As on AWS: every request's signature is checked and every call is allowed only by
            // the caller's IAM policies (a function's, its execution role's), so a permission the
            // template forgot fails here too. FAKECLOUD_IAM=off in the environment turns it off.
            .env(
                "FAKECLOUD_IAM",
                std::env::var("FAKECLOUD_IAM").unwrap_or_else(|_| "strict".into()),
            )
            .env(
                "FAKECLOUD_VERIFY_SIGV4",
                std::env::var("FAKECLOUD_VERIFY_SIGV4").unwrap_or_else(|_| "true".into()),
            )
            .env("RUST_BACKTRACE", "1")
            .env("RUST_MIN_STACK", "8388608")
            .env("TOKIO_WORKER_THREADS", "4")
            .env_remove("FAKECLOUD_ADDR")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                LocalError::Emulator(format!(
                    "cannot start {}: {e} (install it with scripts/install-tools)",
                    opts.fakecloud.display()
                ))
            })?;
        let pid = child.id();
        // The child is reaped by whoever stops it; it must not die with this handle.
        std::mem::forget(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Some(port) = read_port(&log_path) {
                break port;
            }
            if !is_alive(pid) || Instant::now() > deadline {
                let tail = tail(&log_path, 20);
                stop_pid(pid);
                return Err(LocalError::Emulator(format!(
                    "fakecloud did not start; its log ends:\n{tail}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let emulator = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            pid,
        };
        while !emulator.healthy() {
            if !is_alive(pid) || Instant::now() > deadline {
                stop_pid(pid);
                return Err(LocalError::Emulator(format!(
                    "fakecloud on port {port} never became healthy; see {}",
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(emulator)
    }

    /// True when `GET /_fakecloud/health` answers 200.
    pub fn healthy(&self) -> bool {
        http_get(&format!("{}/_fakecloud/health", self.endpoint)).is_ok()
    }
}

/// Stop the emulator process group `pid` (SIGTERM, then SIGKILL after two seconds).
pub fn stop_pid(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    // SAFETY: plain kill(2) on a process group we created.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(pid) && Instant::now() < deadline {
        reap(pid);
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    reap(pid);
}

/// True while a process with this id exists (and is not a zombie of ours).
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    reap(pid as u32);
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn reap(pid: u32) {
    if let Some(how) = reap_status(pid) {
        let mut ended = ENDED.lock().unwrap_or_else(|p| p.into_inner());
        ended.push((pid, how));
    }
}

/// How our child `pid` ended, when it has ended and was reaped now.
fn reap_status(pid: u32) -> Option<String> {
    let pid = i32::try_from(pid).ok()?;
    let mut status = 0;
    // SAFETY: non-blocking wait for our own child; fails harmlessly for other processes.
    if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } != pid {
        return None;
    }
    Some(if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    })
}

/// The children this process reaped, and how each ended.
static ENDED: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());

/// How child `pid` ended (exit status or signal), if this process saw it end.
pub fn how_it_ended(pid: u32) -> Option<String> {
    reap(pid);
    let ended = ENDED.lock().unwrap_or_else(|p| p.into_inner());
    ended
        .iter()
        .find(|(p, _)| *p == pid)
        .map(|(_, how)| how.clone())
}

/// Find the fakecloud program: `$FAKECLOUD_BIN`, then `PATH`, then `~/.cargo/bin`.
pub fn find_fakecloud() -> Result<PathBuf, LocalError> {
    if let Some(p) = std::env::var_os("FAKECLOUD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("fakecloud"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into_os_string()))
    {
        candidates.push(Path::new(&home).join("bin/fakecloud"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        LocalError::Emulator(format!(
            "fakecloud {FAKECLOUD_VERSION} is not installed; run scripts/install-tools \
             (or scripts/build-fakecloud, which builds it with Pipewright's CodeBuild patch)"
        ))
    })
}

/// A plain HTTP GET on loopback; the body on a 2xx answer.
pub fn http_get(url: &str) -> Result<String, LocalError> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| LocalError::Emulator(format!("GET {url}: {e}")))?;
    response
        .body_mut()
        .read_to_string()
        .map_err(|e| LocalError::Emulator(format!("GET {url}: {e}")))
}

/// The port fakecloud announced in its log (`FAKECLOUD_PORT=NNNN`).
fn read_port(log: &Path) -> Option<u16> {
    let mut text = String::new();
    File::open(log).ok()?.read_to_string(&mut text).ok()?;
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("FAKECLOUD_PORT=")?
            .trim()
            .parse()
            .ok()
    })
}

/// The last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
