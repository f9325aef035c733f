//! One run: fresh folders, the inputs downloaded and extracted, the commands in one shell, the
//! output variables read, the outputs zipped and uploaded, the log uploaded.
//!
//! ```text
//! $TMPDIR/run/src                 CODEBUILD_SRC_DIR: the primary input, the working folder
//! $TMPDIR/run/src_<Artifact>      CODEBUILD_SRC_DIR_<Artifact>: the other inputs
//! $TMPDIR/run/.pipewright/        the script, the log, the variables, HOME and TMPDIR
//! ```

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipewright_aws::artifacts::{extract, zip_to_writer};
use pipewright_core::runner::{
    output_variables_size, parse_exported, script_text, RunFailure, RunOutputWritten, RunRequest,
    RunResponse, ShellEnd, LOG_TAIL_BYTES, MAX_OUTPUT_VARIABLE_BYTES,
};

use crate::sandbox;

/// `PATH` of the commands (Lambda's own, `/opt/bin` for layers).
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/opt/bin";

/// How long before the invocation's deadline the commands are stopped, leaving time to upload
/// the outputs and the log.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Run `request` with the invocation ending at `deadline`.
pub fn run(agent: &ureq::Agent, request: &RunRequest, deadline: Option<Instant>) -> RunResponse {
    let root = sandbox::temp_root().join("run");
    let mut response = RunResponse::default();
    if let Err(failure) = run_in(agent, request, deadline, &root, &mut response) {
        response.failure = Some(failure);
    }
    response
}

fn job(message: String) -> RunFailure {
    RunFailure {
        kind: "JobFailed".into(),
        message,
    }
}

fn run_in(
    agent: &ureq::Agent,
    request: &RunRequest,
    deadline: Option<Instant>,
    root: &Path,
    response: &mut RunResponse,
) -> Result<(), RunFailure> {
    let io = |what: String| move |e: std::io::Error| job(format!("{what}: {e}"));
    let src = root.join("src");
    let control = root.join(".pipewright");
    let _ = std::fs::remove_dir_all(root);
    for dir in [&src, &control.join("home"), &control.join("tmp")] {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }

    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), PATH.into()),
        ("HOME".into(), control.join("home").display().to_string()),
        ("TMPDIR".into(), control.join("tmp").display().to_string()),
    ];
    env.extend(request.environment.iter().cloned());
    env.push(("CODEBUILD_SRC_DIR".into(), src.display().to_string()));
    for (i, input) in request.inputs.iter().enumerate() {
        let dir = if i == 0 {
            src.clone()
        } else {
            root.join(format!("src_{}", input.name))
        };
        let zip = control.join(format!("{i}.zip"));
        download(agent, &input.url, &zip, deadline)
            .map_err(|f| prefixed(f, &format!("input artifact {}", input.name)))?;
        extract(&zip, &dir).map_err(|e| job(format!("input artifact {}: {e}", input.name)))?;
        let _ = std::fs::remove_file(&zip);
        env.push((
            format!("CODEBUILD_SRC_DIR_{}", input.name),
            dir.display().to_string(),
        ));
    }

    let variables = control.join("variables");
    let script = control.join("script.sh");
    std::fs::write(
        &script,
        script_text(
            &request.commands,
            &request.output_variables,
            &variables.display().to_string(),
        ),
    )
    .map_err(io(format!("writing {}", script.display())))?;
    let log = control.join("log");
    let (ended, log_file) = run_script(&script, &src, &env, &log, deadline)?;
    response.ended = Some(ended.clone());
    // The log is read and sent through the runner's own handle: the commands may have
    // replaced the path (with a FIFO, a link) by now.
    response.log_tail = read_tail(&log_file);
    let log_body = log_file
        .try_clone()
        .and_then(|mut f| f.seek(SeekFrom::Start(0)).map(|_| f));
    response.log_version_id = match log_body
        .map_err(|e| job(format!("the log: {e}")))
        .and_then(|body| put(agent, &request.log_url, body, deadline))
    {
        Ok(version) => version,
        Err(e) => {
            eprintln!("the log could not be uploaded: {}", e.message);
            None
        }
    };
    if ended.failure().is_some() {
        return Ok(());
    }

    if !request.output_variables.is_empty() {
        let bytes = read_variables(&variables).map_err(|_| {
            job("the output variables could not be read: the commands replaced the shell's EXIT trap or ended it another way".into())
        })?;
        let values = parse_exported(&bytes, &request.output_variables);
        let size = output_variables_size(&values);
        if size > MAX_OUTPUT_VARIABLE_BYTES {
            return Err(job(format!(
                "the output variables take {size} bytes; CodePipeline allows {MAX_OUTPUT_VARIABLE_BYTES}"
            )));
        }
        response.output_variables = values;
    }

    for (i, output) in request.outputs.iter().enumerate() {
        let zip = control.join(format!("out-{i}.zip"));
        let file = File::create(&zip).map_err(io(format!("creating {}", zip.display())))?;
        zip_to_writer(&src, &output.files, std::io::BufWriter::new(file)).map_err(|e| {
            let kind = match e {
                pipewright_aws::artifacts::ArtifactError::Pattern { .. } => "ConfigurationError",
                _ => "JobFailed",
            };
            RunFailure {
                kind: kind.into(),
                message: format!("output artifact {}: {e}", output.name),
            }
        })?;
        let body = File::open(&zip).map_err(io(format!("opening {}", zip.display())))?;
        let version_id = put(agent, &output.url, body, deadline)
            .map_err(|f| prefixed(f, &format!("output artifact {}", output.name)))?;
        let _ = std::fs::remove_file(&zip);
        response.outputs.push(RunOutputWritten {
            name: output.name.clone(),
            version_id,
        });
    }
    Ok(())
}

fn prefixed(failure: RunFailure, what: &str) -> RunFailure {
    RunFailure {
        kind: failure.kind,
        message: format!("{what}: {}", failure.message),
    }
}

/// A failed S3 answer: `PermissionError` for 403, `JobFailed` otherwise, with S3's code.
fn s3_failure(operation: &str, status: u16, body: &str) -> RunFailure {
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string());
    let message = body
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.to_string());
    RunFailure {
        kind: if status == 403 {
            "PermissionError"
        } else {
            "JobFailed"
        }
        .into(),
        message: format!(
            "S3 {operation} through the presigned URL: HTTP {status}{}{}",
            code.map(|c| format!(" {c}")).unwrap_or_default(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}

/// How long a transfer may take: until `deadline` (at least a second), or 15 minutes.
fn transfer_timeout(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::from_secs(900), |d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1))
    })
}

/// The output variables file, read only if it is a regular file (not a link, a FIFO or a
/// device the commands put in its place), at most twice CodePipeline's limit.
fn read_variables(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(2 * MAX_OUTPUT_VARIABLE_BYTES as u64 + 4096)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// GET `url` into `to`, by `deadline`.
fn download(
    agent: &ureq::Agent,
    url: &str,
    to: &Path,
    deadline: Option<Instant>,
) -> Result<(), RunFailure> {
    let response = agent
        .get(url)
        .config()
        .timeout_global(Some(transfer_timeout(deadline)))
        .build()
        .call()
        .map_err(|e| job(format!("S3 GetObject through the presigned URL: {e}")))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        return Err(s3_failure("GetObject", status, &text));
    }
    let mut file = File::create(to).map_err(|e| job(format!("creating {}: {e}", to.display())))?;
    std::io::copy(&mut body.as_reader(), &mut file)
        .map_err(|e| job(format!("S3 GetObject through the presigned URL: {e}")))?;
    Ok(())
}

/// PUT `body` to `url` by `deadline`; the new object's version id.
fn put(
    agent: &ureq::Agent,
    url: &str,
    body: File,
    deadline: Option<Instant>,
) -> Result<Option<String>, RunFailure> {
    let response = agent
        .put(url)
        .config()
        .timeout_global(Some(transfer_timeout(deadline)))
        .build()
        .send(body)
        .map_err(|e| job(format!("S3 PutObject through the presigned URL: {e}")))?;
    let status = response.status().as_u16();
    let version = response
        .headers()
        .get("x-amz-version-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if status != 200 {
        let text = response
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        return Err(s3_failure("PutObject", status, &text));
    }
    Ok(version)
}

/// Run `script` in `cwd` with exactly `env`, output to `log`, in a process group of its own,
/// stopped at `deadline - DEADLINE_MARGIN`. What it leaves running is killed by the sweep.
fn run_script(
    script: &Path,
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
    deadline: Option<Instant>,
) -> Result<(ShellEnd, File), RunFailure> {
    let shell = if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let out = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(log)
        .map_err(|e| job(format!("creating the log: {e}")))?;
    let kept = out
        .try_clone()
        .map_err(|e| job(format!("opening the log: {e}")))?;
    let err = out
        .try_clone()
        .map_err(|e| job(format!("opening the log: {e}")))?;
    let mut child = Command::new(shell)
        .arg("-e")
        .arg(script)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(|e| job(format!("starting {shell}: {e}")))?;
    let stop_at = deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or_else(Instant::now));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                sandbox::kill_descendants();
                let ended = ShellEnd::Exited {
                    code: status.code(),
                    signal: status.signal(),
                };
                return Ok((ended, kept));
            }
            Ok(None) => {}
            Err(e) => return Err(job(format!("waiting for the commands: {e}"))),
        }
        if stop_at.is_some_and(|at| Instant::now() >= at) {
            sandbox::kill_descendants();
            let _ = child.wait();
            return Ok((ShellEnd::TimedOut, kept));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last [`LOG_TAIL_BYTES`] of the log (read through the runner's handle) as text.
fn read_tail(log: &File) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = log.try_clone()?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(LOG_TAIL_BYTES as u64 + 4);
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        f.take(LOG_TAIL_BYTES as u64 + 4).read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(if start > 0 {
            pipewright_core::runner::tail(&text, LOG_TAIL_BYTES).to_string()
        } else {
            text
        })
    };
    read().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::tests::PROCESSES;

    fn run_text(
        commands: &[&str],
        names: &[&str],
        deadline: Option<Instant>,
    ) -> (ShellEnd, String, std::collections::BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
        let names: Vec<String> = names.iter().map(|c| c.to_string()).collect();
        let vars = dir.path().join("vars");
        let script = dir.path().join("script.sh");
        std::fs::write(
            &script,
            script_text(&commands, &names, &vars.display().to_string()),
        )
        .unwrap();
        let log = dir.path().join("log");
        let env = vec![
            ("PATH".to_string(), PATH.to_string()),
            ("GREETING".to_string(), "hello".to_string()),
        ];
        let (ended, _) = run_script(&script, dir.path(), &env, &log, deadline).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let exported = parse_exported(&std::fs::read(&vars).unwrap_or_default(), &names);
        (ended, text, exported)
    }

    #[test]
    fn commands_share_one_shell_fail_fast_and_stop_at_the_deadline() {
        let _one = PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
        crate::sandbox::harden_self();
        let (ended, log, vars) = run_text(
            &[
                "mkdir -p sub",
                "cd sub",
                "export BUILD_ID=b-42",
                "PLAIN='two words'",
                "echo \"$GREETING from $(basename \"$PWD\")\"",
                "echo oops >&2",
            ],
            &["BUILD_ID", "PLAIN", "UNSET"],
            None,
        );
        assert_eq!(ended.failure(), None, "{log}");
        assert_eq!(log, "hello from sub\noops\n");
        assert_eq!(vars["BUILD_ID"], "b-42");
        assert_eq!(vars["PLAIN"], "two words");
        assert_eq!(vars["UNSET"], "");

        let (ended, log, _) = run_text(&["echo before", "exit 3", "echo after"], &["X"], None);
        assert_eq!(
            ended,
            ShellEnd::Exited {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(log, "before\n");

        let marker = tempfile::tempdir().unwrap();
        let survived = marker.path().join("background-survived");
        let background = format!("(sleep 2; touch {}) &", survived.display());
        let started = Instant::now();
        let deadline = Instant::now() + DEADLINE_MARGIN + Duration::from_millis(300);
        let (ended, _, _) = run_text(&[&background, "sleep 30"], &[], Some(deadline));
        assert_eq!(ended, ShellEnd::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        // A background process left by commands that succeeded is killed too.
        let daemon = format!("setsid sh -c 'sleep 2; touch {}' &", survived.display());
        let (ended, _, _) = run_text(&[&daemon, "true"], &[], None);
        assert_eq!(ended.failure(), None);
        std::thread::sleep(Duration::from_secs(3));
        assert!(!survived.exists(), "a background process outlived the run");
    }
}
