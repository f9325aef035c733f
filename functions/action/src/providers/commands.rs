//! `Compute/AWS/Commands`: the action's shell commands, run in the action function.
//!
//! CodePipeline runs this action on CodeBuild; what a user relies on is kept:
//! - the first input artifact is extracted into the working directory (`CODEBUILD_SRC_DIR`), the
//!   others into sibling directories named by `CODEBUILD_SRC_DIR_<ArtifactName>`;
//! - all the commands run in one shell (`bash -e`, else `sh -e`), so `cd` and `export` carry
//!   over from one command to the next, and the first failing command fails the action;
//! - the action's `environmentVariables` (plain text, `#{...}` resolved) are set, plus
//!   `CODEBUILD_SRC_DIR`, `CODEBUILD_BUILD_ID`, `CODEPIPELINE_PIPELINE_EXECUTION_ID` and the region;
//!   nothing else of the function's environment (its credentials included) is passed on;
//! - `outputVariables` are read from the shell when it exits (an unset one exports as empty);
//! - each output artifact zips its `files` (globs relative to the working directory).
//!
//! Output goes to one log whose last 64 KiB are kept with the action. The commands are stopped
//! (their whole process group) 5 s before the function's deadline.

use pipewright_core::execution::FailureType;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pipewright_aws::artifacts::{PutOptions, S3Artifacts};
use pipewright_core::declaration::EnvironmentVariableType;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, ArtifactLocation,
};

use super::{remove_work_dir, Context, ProviderError};

/// The end of the log kept in the action's record (the whole log goes to S3).
pub const LOG_TAIL_BYTES: u64 = 8 * 1024;

/// CodePipeline's limit on an action's output variables, in bytes.
pub const MAX_OUTPUT_VARIABLE_BYTES: usize = 122_880;

/// How long before the function's deadline the commands are stopped.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// `PATH` of the commands (Lambda's own, `/opt/bin` for layers).
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/opt/bin";

/// Log lines quoted in the failure message.
const MESSAGE_LINES: usize = 10;

/// Bytes of log quoted in the failure message, at most.
const MESSAGE_LOG_BYTES: usize = 1500;

/// The work directory of one action execution.
struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// The primary source: the commands' working directory.
    fn src(&self) -> PathBuf {
        self.root.join("src")
    }

    /// A secondary input artifact's directory.
    fn secondary(&self, artifact: &str) -> PathBuf {
        self.root.join(format!("src_{artifact}"))
    }

    /// Pipewright's own files (script, log, variables), apart from the user's.
    fn control(&self) -> PathBuf {
        self.root.join(".pipewright")
    }
}

/// Run the commands of `prepared` under `work_root`.
pub async fn run(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
    deadline: Option<Instant>,
) -> Result<ActionOutcome, ProviderError> {
    if prepared.commands.is_empty() {
        return Err(ProviderError::Configuration(
            "a Commands action needs at least one command".into(),
        ));
    }
    let output_names = prepared
        .declaration
        .output_variables
        .clone()
        .unwrap_or_default();
    for name in &output_names {
        if !is_shell_name(name) {
            return Err(ProviderError::Configuration(format!(
                "outputVariables: {name:?} is not an environment variable name (letters, digits and _, not starting with a digit)"
            )));
        }
    }
    let user_env = user_environment(prepared)?;

    let work = WorkDir {
        root: work_root.join(format!(
            "pipewright-{}",
            prepared.record.action_execution_id
        )),
    };
    let result = run_in(
        artifacts,
        prepared,
        &work,
        user_env,
        &output_names,
        deadline,
    )
    .await;
    remove_work_dir(work.root).await;
    result
}

async fn run_in(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work: &WorkDir,
    user_env: Vec<(String, String)>,
    output_names: &[String],
    deadline: Option<Instant>,
) -> Result<ActionOutcome, ProviderError> {
    let io = |what: String| move |e: std::io::Error| ProviderError::Job(format!("{what}: {e}"));
    let control = work.control();
    if tokio::fs::try_exists(&work.root).await.unwrap_or(false) {
        tokio::fs::remove_dir_all(&work.root)
            .await
            .map_err(io(format!("emptying {}", work.root.display())))?;
    }
    for dir in [work.src(), control.join("home"), control.join("tmp")] {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io(format!("creating {}", dir.display())))?;
    }

    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), PATH.into()),
        ("HOME".into(), control.join("home").display().to_string()),
        ("TMPDIR".into(), control.join("tmp").display().to_string()),
    ];
    env.extend(user_env);
    env.push(("CODEBUILD_SRC_DIR".into(), work.src().display().to_string()));
    for (i, input) in prepared.inputs.iter().enumerate() {
        let dir = if i == 0 {
            work.src()
        } else {
            work.secondary(&input.name)
        };
        let scratch = control.join(format!("{}.zip", input.name));
        let stats = artifacts
            .download_and_extract(&input.s3_location, &scratch, &dir)
            .await
            .context(|| format!("input artifact {}", input.name))?;
        tracing::info!(artifact = %input.name, files = stats.entries, bytes = stats.bytes, "input artifact extracted");
        env.push((
            format!("CODEBUILD_SRC_DIR_{}", input.name),
            dir.display().to_string(),
        ));
    }
    env.push((
        "CODEBUILD_BUILD_ID".into(),
        format!("pipewright:{}", prepared.record.action_execution_id),
    ));
    env.push((
        "CODEPIPELINE_PIPELINE_EXECUTION_ID".into(),
        prepared.record.pipeline_execution_id.clone(),
    ));
    if let Some(region) = &prepared.record.input.region {
        env.push(("AWS_REGION".into(), region.clone()));
        env.push(("AWS_DEFAULT_REGION".into(), region.clone()));
    }

    let variables_file = control.join("variables");
    let script = control.join("script.sh");
    tokio::fs::write(
        &script,
        script_text(&prepared.commands, output_names, &variables_file),
    )
    .await
    .map_err(io(format!("writing {}", script.display())))?;
    let log = control.join("log");

    let ended = run_script(&script, &work.src(), &env, &log, deadline).await?;
    let log_tail = read_tail(&log, LOG_TAIL_BYTES).await;
    let log_location = keep_log(artifacts, &log, &prepared.log_location).await;
    let failure = match ended {
        Ended::Exited(status) if status.success() => None,
        Ended::Exited(status) => Some(match status.code() {
            Some(code) => format!("the commands failed with exit code {code}"),
            None => format!("the commands were stopped by {status}"),
        }),
        Ended::TimedOut => Some(
            "the commands timed out: they were stopped before the action function's deadline"
                .to_string(),
        ),
    };
    if let Some(failure) = failure {
        tracing::info!(%failure, "commands failed");
        let mut outcome =
            ActionOutcome::failed(FailureType::JobFailed, with_last_lines(&failure, &log_tail));
        outcome.log_tail = Some(log_tail);
        outcome.log_location = log_location;
        return Ok(outcome);
    }

    let output_variables = if output_names.is_empty() {
        BTreeMap::new()
    } else {
        let bytes = tokio::fs::read(&variables_file).await.map_err(|_| {
            ProviderError::Job(
                "the output variables could not be read: the commands replaced the shell's EXIT trap or ended it another way"
                    .into(),
            )
        })?;
        let values = parse_exported(&bytes, output_names);
        let size: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_OUTPUT_VARIABLE_BYTES {
            return Err(ProviderError::Job(format!(
                "the output variables take {size} bytes; CodePipeline allows {MAX_OUTPUT_VARIABLE_BYTES}"
            )));
        }
        values
    };

    let mut output_artifacts = Vec::new();
    for declared in prepared.declaration.output_artifacts() {
        let target = prepared
            .outputs
            .iter()
            .find(|o| o.name == declared.name)
            .ok_or_else(|| {
                ProviderError::Job(format!("output artifact {} has no location", declared.name))
            })?;
        let files = declared.files.clone().unwrap_or_default();
        let location = artifacts
            .upload_dir(
                &work.src(),
                &files,
                &target.s3_location.bucket,
                &target.s3_location.key,
            )
            .await
            .context(|| format!("output artifact {}", declared.name))?;
        tracing::info!(artifact = %declared.name, key = %location.key, "output artifact written");
        output_artifacts.push(ArtifactDetail {
            name: declared.name.clone(),
            s3_location: location,
        });
    }

    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts,
        output_variables,
        result: ActionExecutionResult {
            external_execution_id: Some(prepared.record.action_execution_id.clone()),
            external_execution_summary: Some(format!(
                "{} command(s) succeeded",
                prepared.commands.len()
            )),
            ..Default::default()
        },
        source_revision: None,
        log_tail: Some(log_tail),
        log_location,
    })
}

/// Upload the whole log (streamed from disk) to `to`; where it went, or `None` when the upload
/// failed (the record keeps the tail either way; a log is never worth failing the action).
async fn keep_log(
    artifacts: &S3Artifacts,
    log: &std::path::Path,
    to: &ArtifactLocation,
) -> Option<ArtifactLocation> {
    let options = PutOptions {
        content_type: Some("text/plain; charset=utf-8".into()),
        ..Default::default()
    };
    match artifacts.put_file(log, &to.bucket, &to.key, &options).await {
        Ok(version_id) => Some(ArtifactLocation {
            version_id,
            ..to.clone()
        }),
        Err(e) => {
            tracing::warn!(error = %e, key = %to.key, "the log could not be kept in S3");
            None
        }
    }
}

/// The action's `environmentVariables`, `#{...}` resolved; Secrets Manager values are refused.
fn user_environment(prepared: &PreparedAction) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    for var in prepared
        .declaration
        .environment_variables
        .as_deref()
        .unwrap_or_default()
    {
        if var.variable_type == Some(EnvironmentVariableType::SecretsManager) {
            return Err(ProviderError::Configuration(format!(
                "environment variable {}: type SECRETS_MANAGER is not supported yet",
                var.name
            )));
        }
        if var.name.is_empty() || var.name.contains(['=', '\0']) {
            return Err(ProviderError::Configuration(format!(
                "environment variable {:?}: not a valid name",
                var.name
            )));
        }
        let value = pipewright_core::variables::resolve(&var.value, |ns, key| {
            prepared.variables.get(ns).and_then(|m| m.get(key)).cloned()
        })
        .map_err(|e| {
            ProviderError::Configuration(format!("environment variable {}: {e}", var.name))
        })?;
        if value.contains('\0') {
            return Err(ProviderError::Configuration(format!(
                "environment variable {}: the value has a NUL character",
                var.name
            )));
        }
        out.push((var.name.clone(), value));
    }
    Ok(out)
}

/// The script: an EXIT trap that writes the output variables (`NAME=value`, NUL-separated) to
/// `variables_file` whenever the shell ends, then the commands, one per line.
pub fn script_text(commands: &[String], output_names: &[String], variables_file: &Path) -> String {
    let mut s = String::from("# Written by Pipewright: the action's commands, run in one shell.\n");
    if !output_names.is_empty() {
        s.push_str("__pipewright_exit() {\n  __pipewright_status=$?\n  {\n");
        for name in output_names {
            s.push_str(&format!("    printf '%s=%s\\0' {name} \"${{{name}-}}\"\n"));
        }
        s.push_str(&format!(
            "  }} > {} 2>/dev/null\n  exit \"$__pipewright_status\"\n}}\ntrap __pipewright_exit EXIT\n",
            shell_quote(&variables_file.display().to_string())
        ));
    }
    for command in commands {
        s.push_str(command);
        s.push('\n');
    }
    s
}

/// `NAME=value` records separated by NUL, as the script's trap writes them; only `names` are
/// kept, and a name with no record exports as empty.
pub fn parse_exported(bytes: &[u8], names: &[String]) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for record in bytes.split(|b| *b == 0) {
        let text = String::from_utf8_lossy(record);
        if let Some((name, value)) = text.split_once('=') {
            if names.iter().any(|n| n == name) {
                found.insert(name.to_string(), value.to_string());
            }
        }
    }
    names
        .iter()
        .map(|n| (n.clone(), found.remove(n).unwrap_or_default()))
        .collect()
}

/// A name a POSIX shell can hold: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

enum Ended {
    Exited(ExitStatus),
    TimedOut,
}

/// Run `script` in `cwd` with exactly `env`, output to `log`, in a process group of its own that
/// is killed when the script ends (no background process outlives the action) or at
/// `deadline - DEADLINE_MARGIN`.
async fn run_script(
    script: &Path,
    cwd: &Path,
    env: &[(String, String)],
    log: &Path,
    deadline: Option<Instant>,
) -> Result<Ended, ProviderError> {
    let job = |what: &str, e: std::io::Error| ProviderError::Job(format!("{what}: {e}"));
    let shell = if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let out = std::fs::File::create(log).map_err(|e| job("creating the log", e))?;
    let err = out.try_clone().map_err(|e| job("opening the log", e))?;
    let mut child = tokio::process::Command::new(shell)
        .arg("-e")
        .arg(script)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| job(&format!("starting {shell}"), e))?;
    let group = child.id();
    let stop_at = deadline.map(|d| d.checked_sub(DEADLINE_MARGIN).unwrap_or_else(Instant::now));
    let waited = match stop_at {
        Some(at) => tokio::time::timeout_at(at.into(), child.wait()).await.ok(),
        None => Some(child.wait().await),
    };
    kill_group(group);
    match waited {
        Some(status) => Ok(Ended::Exited(
            status.map_err(|e| job("waiting for the commands", e))?,
        )),
        None => {
            // The group is killed; reap the shell.
            let _ = child.wait().await;
            Ok(Ended::TimedOut)
        }
    }
}

/// SIGKILL the process group led by `leader` (what the commands left running included).
fn kill_group(leader: Option<u32>) {
    let Some(pid) = leader.and_then(|p| libc::pid_t::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved. The
    // group was created for this script (`process_group(0)`).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// The last `max` bytes of `file` as text (lossy; cut at a line start when possible).
async fn read_tail(file: &Path, max: u64) -> String {
    let path = file.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        let start = len.saturating_sub(max);
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity((len - start) as usize);
        f.read_to_end(&mut bytes)?;
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if start > 0 {
            if let Some(nl) = text.find('\n') {
                text.drain(..=nl);
            }
        }
        Ok(text)
    })
    .await
    .ok()
    .and_then(Result::ok)
    .unwrap_or_default()
}

/// `failure`, then the log's last lines (bounded), for the action's error message.
pub fn with_last_lines(failure: &str, log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let mut last = lines[lines.len().saturating_sub(MESSAGE_LINES)..].join("\n");
    if last.len() > MESSAGE_LOG_BYTES {
        let mut cut = last.len() - MESSAGE_LOG_BYTES;
        while !last.is_char_boundary(cut) {
            cut += 1;
        }
        last = format!("...{}", &last[cut..]);
    }
    if last.trim().is_empty() {
        format!("{failure} (the log is empty)")
    } else {
        format!("{failure}; last lines of the log:\n{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::prepared;
    use serde_json::json;

    #[test]
    fn exported_variables_parse_and_unset_ones_are_empty() {
        let names = vec!["A".to_string(), "B".to_string(), "C".to_string()];
        let bytes = b"A=1\0B=x=y\nz\0OTHER=no\0";
        let vars = parse_exported(bytes, &names);
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "x=y\nz");
        assert_eq!(vars["C"], "");
        assert!(!vars.contains_key("OTHER"));
    }

    #[test]
    fn shell_names() {
        assert!(is_shell_name("BUILD_ID"));
        assert!(is_shell_name("_x1"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn failure_message_quotes_the_last_lines() {
        let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let msg = with_last_lines("the commands failed with exit code 2", &log);
        assert!(
            msg.starts_with(
                "the commands failed with exit code 2; last lines of the log:\nline 21\n"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("line 30"), "{msg}");
        let long = "é".repeat(2000);
        let msg = with_last_lines("f", &long);
        assert!(msg.len() < MESSAGE_LOG_BYTES + 100);
        assert_eq!(with_last_lines("f", ""), "f (the log is empty)");
    }

    async fn run_script_text(
        commands: &[&str],
        names: &[&str],
        deadline: Option<Instant>,
    ) -> (Ended, String, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
        let names: Vec<String> = names.iter().map(|c| c.to_string()).collect();
        let vars = dir.path().join("vars");
        let script = dir.path().join("script.sh");
        std::fs::write(&script, script_text(&commands, &names, &vars)).unwrap();
        let log = dir.path().join("log");
        let env = vec![
            ("PATH".to_string(), PATH.to_string()),
            ("GREETING".to_string(), "hello".to_string()),
        ];
        let ended = run_script(&script, dir.path(), &env, &log, deadline)
            .await
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        let exported = parse_exported(&std::fs::read(&vars).unwrap_or_default(), &names);
        (ended, text, exported)
    }

    #[tokio::test]
    async fn commands_share_one_shell_and_export_variables() {
        let (ended, log, vars) = run_script_text(
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
        )
        .await;
        assert!(matches!(ended, Ended::Exited(s) if s.success()));
        assert_eq!(log, "hello from sub\noops\n");
        assert_eq!(vars["BUILD_ID"], "b-42");
        assert_eq!(vars["PLAIN"], "two words");
        assert_eq!(vars["UNSET"], "");
    }

    #[tokio::test]
    async fn the_first_failing_command_ends_the_script_with_its_code() {
        let (ended, log, _) =
            run_script_text(&["echo before", "exit 3", "echo after"], &["X"], None).await;
        assert!(
            matches!(ended, Ended::Exited(s) if s.code() == Some(3)),
            "{log}"
        );
        assert_eq!(log, "before\n");
        let (ended, _, _) = run_script_text(&["false", "echo after"], &[], None).await;
        assert!(matches!(ended, Ended::Exited(s) if s.code() == Some(1)));
    }

    #[tokio::test]
    async fn the_deadline_stops_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("background-survived");
        let background = format!("(sleep 3; touch {}) &", marker.display());
        let started = Instant::now();
        let deadline = Instant::now() + DEADLINE_MARGIN + Duration::from_millis(300);
        let (ended, _, _) = run_script_text(&[&background, "sleep 30"], &[], Some(deadline)).await;
        assert!(matches!(ended, Ended::TimedOut));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!marker.exists(), "a background process outlived the action");
    }

    #[test]
    fn environment_variables_resolve_and_secrets_are_refused() {
        let mut p = prepared(json!({
            "name": "Build",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["true"],
            "environmentVariables": [
                {"name": "STAGE", "value": "#{variables.Stage}-x"},
                {"name": "PLAIN", "value": "v", "type": "PLAINTEXT"}
            ]
        }));
        p.variables.insert(
            "variables".into(),
            BTreeMap::from([("Stage".to_string(), "prod".to_string())]),
        );
        assert_eq!(
            user_environment(&p).unwrap(),
            [
                ("STAGE".to_string(), "prod-x".to_string()),
                ("PLAIN".to_string(), "v".to_string())
            ]
        );
        p.variables.clear();
        let err = user_environment(&p).unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(
            err.to_string().starts_with("environment variable STAGE:"),
            "{err}"
        );
        let secret = prepared(json!({
            "name": "Build",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["true"],
            "environmentVariables": [{"name": "TOKEN", "value": "arn:secret", "type": "SECRETS_MANAGER"}]
        }));
        let err = user_environment(&secret).unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }
}
