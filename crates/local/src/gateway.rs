//! The local stand-in for a function's Function URL (the api function's, the approval
//! function's): `pipewright-lambda-host gateway` serves HTTP on 127.0.0.1 and turns each request
//! into a Function URL (payload 2.0) invocation in the emulator, so `aws codepipeline
//! --endpoint-url "$PIPEWRIGHT_ENDPOINT"`, boto3 and a browser opening an approval link reach the
//! real function.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::emulator::{self, tail};
use crate::LocalError;

/// A running gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its process id (its own process group).
    pub pid: u32,
}

/// The one identity an `AWS_IAM` gateway lets through (SigV4 for the service `lambda`).
#[derive(Debug, Clone, Copy)]
pub struct IamDoor<'a> {
    /// Its access key id.
    pub access_key_id: &'a str,
    /// Its secret.
    pub secret: &'a str,
    /// The principal ARN the function sees.
    pub principal: &'a str,
}

/// The file of more IAM identities the IAM door's gateway accepts (lines `ACCESS_KEY_ID SECRET
/// PRINCIPAL_ARN`, read at each request): add one to call the IAM door as another IAM user or
/// role of the emulator, whose IAM policies then decide what it may do.
pub fn iam_identities_file(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("iam-identities")
}

/// What a gateway does besides serving its function.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Put Step Functions' status events on the emulator's bus, which fakecloud does not
    /// (`--status-events`; one gateway of the stack does it).
    pub status_events: bool,
}

/// Start `lambda_host gateway` for `function` in the emulator at `emulator_endpoint` on `port`
/// (0: any free port); its log and port file go into `state_dir` as `<name>.log` and
/// `<name>.port`. With `iam`, it serves an `AWS_IAM` Function URL: only requests signed with
/// that identity pass.
#[allow(clippy::too_many_arguments)]
pub fn start(
    lambda_host: &Path,
    emulator_endpoint: &str,
    function: &str,
    port: u16,
    state_dir: &Path,
    name: &str,
    iam: Option<IamDoor<'_>>,
    extras: Extras,
) -> Result<Gateway, LocalError> {
    let port_file = state_dir.join(format!("{name}.port"));
    let _ = std::fs::remove_file(&port_file);
    let log_path = state_dir.join(format!("{name}.log"));
    let log = File::create(&log_path).map_err(|e| LocalError::io(&log_path, e))?;
    let log_err = log.try_clone().map_err(|e| LocalError::io(&log_path, e))?;
    let mut command = Command::new(lambda_host);
    command
        .arg("gateway")
        .args(["--emulator", emulator_endpoint, "--function", function]);
    if let Some(iam) = iam {
        command
            .args(["--auth", "AWS_IAM", "--principal", iam.principal])
            // The secret travels in the environment, not on the command line.
            .env(
                "PIPEWRIGHT_GATEWAY_CREDENTIALS",
                format!("{}:{}", iam.access_key_id, iam.secret),
            )
            .env(
                "PIPEWRIGHT_GATEWAY_IDENTITIES",
                iam_identities_file(state_dir),
            );
    }
    if extras.status_events {
        command.arg("--status-events");
    }
    let child = command
        .arg("--port")
        .arg(port.to_string())
        .arg("--port-file")
        .arg(&port_file)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            LocalError::Emulator(format!(
                "cannot start the gateway {}: {e}",
                lambda_host.display()
            ))
        })?;
    let pid = child.id();
    std::mem::forget(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
        {
            return Ok(Gateway {
                endpoint: format!("http://127.0.0.1:{port}"),
                pid,
            });
        }
        if !emulator::is_alive(pid) || Instant::now() > deadline {
            emulator::stop_pid(pid);
            return Err(LocalError::Emulator(format!(
                "the gateway {name} did not start; its log ends:\n{}",
                tail(&log_path, 20)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port on 127.0.0.1 that is free now (for a gateway whose URL must be known before it
/// starts: the approval links' base URL goes into the stack's parameters).
pub fn free_port() -> Result<u16, LocalError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| LocalError::Emulator(format!("no free port on 127.0.0.1: {e}")))
}
