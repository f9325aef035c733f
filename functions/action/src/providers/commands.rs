//! `Compute/AWS/Commands`: the action's shell commands, run by the Commands runner
//! (`functions/runner`), a function with nothing of the stack.
//!
//! CodePipeline runs this action on CodeBuild, in a fresh compute environment per run; what a
//! user relies on is kept:
//! - the first input artifact is extracted into the working directory (`CODEBUILD_SRC_DIR`), the
//!   others into sibling directories named by `CODEBUILD_SRC_DIR_<ArtifactName>`;
//! - all the commands run in one shell (`bash -e`, else `sh -e`), so `cd` and `export` carry
//!   over from one command to the next, and the first failing command fails the action;
//! - the action's `environmentVariables` (plain text, `#{...}` resolved) are set, plus
//!   `CODEBUILD_SRC_DIR`, `CODEBUILD_BUILD_ID`, `CODEPIPELINE_PIPELINE_EXECUTION_ID`, the region
//!   and the credentials of the pipeline role's session (as CodePipeline gives the action its
//!   service role); nothing of the action function (its credentials included) is passed on;
//! - `outputVariables` are read from the shell when it exits (an unset one exports as empty);
//! - each output artifact zips its `files` (globs relative to the working directory).
//!
//! Here the action function prepares the run: it resolves the environment, presigns a GET for
//! each input artifact's version and a PUT for each output artifact's key and for the log
//! (signed by the pipeline role's session, so S3 checks the role's access), and invokes the
//! runner synchronously. The runner's answer comes from a sandbox the commands controlled,
//! so it is checked like any input: the output variables' size, the outputs it claims against
//! the outputs declared.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pipewright_aws::artifacts::S3Artifacts;
use pipewright_aws::runner::CommandsRunner;
use pipewright_core::declaration::EnvironmentVariableType;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, ArtifactLocation, FailureType,
};
use pipewright_core::runner::{
    epoch_ms_of, is_shell_name, output_variables_size, tail, with_last_lines, RunInput, RunOutput,
    RunRequest, RunResponse, LOG_TAIL_BYTES, MAX_OUTPUT_VARIABLE_BYTES,
};

use super::{Context, ProviderError};
use pipewright_aws::roles::RoleSession;

/// How long presigned URLs stay valid beyond the action function's deadline.
const URL_SLACK: Duration = Duration::from_secs(60);

/// Added to the summary when the runner could not sweep its sandbox clean after the run (a
/// process or file of the run it could not remove) and ended it.
pub const UNCLEAN_SANDBOX: &str =
    "; the runner could not clear what the commands left and ended its sandbox";

/// How long they stay valid when the deadline is unknown: Lambda's longest run.
const URL_WITHOUT_DEADLINE: Duration = Duration::from_secs(900);

/// Run the commands of `prepared` on `runner`; `session` is the pipeline role's session (its
/// credentials go to the commands; `artifacts` signs with it).
pub async fn run(
    artifacts: &S3Artifacts,
    runner: &CommandsRunner,
    prepared: &PreparedAction,
    deadline: Option<Instant>,
    session: Option<&RoleSession>,
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
    let mut environment = user_environment(prepared)?;
    environment.extend(run_environment(prepared, session));

    let expires_in = deadline.map_or(URL_WITHOUT_DEADLINE, |d| {
        d.saturating_duration_since(Instant::now()) + URL_SLACK
    });
    let mut inputs = Vec::new();
    for input in &prepared.inputs {
        let url = artifacts
            .presign_get(&input.s3_location, expires_in)
            .await
            .context(|| format!("input artifact {}", input.name))?;
        inputs.push(RunInput {
            name: input.name.clone(),
            url,
        });
    }
    let mut outputs = Vec::new();
    for declared in prepared.declaration.output_artifacts() {
        let target = output_target(prepared, &declared.name)?;
        let url = artifacts
            .presign_put(&target.bucket, &target.key, expires_in)
            .await
            .context(|| format!("output artifact {}", declared.name))?;
        outputs.push(RunOutput {
            name: declared.name.clone(),
            files: declared.files.clone().unwrap_or_default(),
            url,
        });
    }
    let log = &prepared.log_location;
    let log_url = artifacts
        .presign_put(&log.bucket, &log.key, expires_in)
        .await
        .context(|| "the action's log".to_string())?;

    let request = RunRequest {
        action_execution_id: prepared.record.action_execution_id.clone(),
        commands: prepared.commands.clone(),
        environment,
        output_variables: output_names.clone(),
        inputs,
        outputs,
        log_url,
        deadline_epoch_ms: deadline.map(|d| run_deadline_epoch_ms(d, Instant::now())),
    };
    let response = runner.run(&request).await.map_err(|e| match e.code {
        FailureType::ConfigurationError => ProviderError::Configuration(e.message),
        FailureType::PermissionError => ProviderError::Permission(e.message),
        _ => ProviderError::Job(e.message),
    })?;
    if !response.sandbox_clean {
        tracing::warn!("the runner could not clean its sandbox and ended it");
    }
    outcome(prepared, &output_names, response)
}

/// How long before its own deadline the action function needs the runner's answer (to record
/// the outcome and answer the task).
const RECORD_MARGIN: Duration = Duration::from_secs(10);

/// The run's deadline in milliseconds since the epoch: the function's `deadline` (seen at
/// `now`) less [`RECORD_MARGIN`].
fn run_deadline_epoch_ms(deadline: Instant, now: Instant) -> u64 {
    let left = deadline
        .saturating_duration_since(now)
        .saturating_sub(RECORD_MARGIN);
    epoch_ms_of(now + left)
}

/// The environment the runner adds to the action's variables: ids, region, the pipeline role
/// session's credentials.
fn run_environment(
    prepared: &PreparedAction,
    session: Option<&RoleSession>,
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "CODEBUILD_BUILD_ID".to_string(),
            format!("pipewright:{}", prepared.record.action_execution_id),
        ),
        (
            "CODEPIPELINE_PIPELINE_EXECUTION_ID".to_string(),
            prepared.record.pipeline_execution_id.clone(),
        ),
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
    ];
    let region = prepared
        .record
        .input
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| std::env::var("AWS_REGION").ok());
    if let Some(region) = region {
        env.push(("AWS_REGION".into(), region.clone()));
        env.push(("AWS_DEFAULT_REGION".into(), region));
    }
    // The local emulator's endpoint, so the commands' SDKs and CLI reach what the action
    // function reaches (unset on AWS).
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        env.push(("AWS_ENDPOINT_URL".into(), endpoint));
    }
    if let Some(session) = session {
        env.extend(session.environment());
    }
    env
}

fn output_target<'a>(
    prepared: &'a PreparedAction,
    name: &str,
) -> Result<&'a ArtifactLocation, ProviderError> {
    prepared
        .outputs
        .iter()
        .find(|o| o.name == name)
        .map(|o| &o.s3_location)
        .ok_or_else(|| ProviderError::Job(format!("output artifact {name} has no location")))
}

/// The action's outcome from the runner's answer, checked: the tail is bounded, the variables
/// are the declared ones within CodePipeline's size, and every declared output artifact was
/// written.
fn outcome(
    prepared: &PreparedAction,
    output_names: &[String],
    response: RunResponse,
) -> Result<ActionOutcome, ProviderError> {
    let log_tail = tail(&response.log_tail, LOG_TAIL_BYTES).to_string();
    let log_location = response
        .log_version_id
        .clone()
        .map(|version_id| ArtifactLocation {
            version_id: Some(version_id),
            ..prepared.log_location.clone()
        });
    let failed = |code: FailureType, message: String| {
        let mut outcome = ActionOutcome::failed(code, message);
        outcome.log_tail = Some(log_tail.clone());
        outcome.log_location = log_location.clone();
        outcome
    };
    if let Some(failure) = response.ended.as_ref().and_then(|e| e.failure()) {
        tracing::info!(%failure, "commands failed");
        return Ok(failed(
            FailureType::JobFailed,
            with_last_lines(&failure, &log_tail),
        ));
    }
    if let Some(failure) = response.failure {
        let code = match failure.kind.as_str() {
            "PermissionError" => FailureType::PermissionError,
            "ConfigurationError" => FailureType::ConfigurationError,
            _ => FailureType::JobFailed,
        };
        return Ok(failed(code, failure.message));
    }
    if response.ended.is_none() {
        return Ok(failed(
            FailureType::JobFailed,
            "the Commands runner did not run the commands".into(),
        ));
    }

    let output_variables: BTreeMap<String, String> = output_names
        .iter()
        .map(|name| {
            let value = response
                .output_variables
                .get(name)
                .cloned()
                .unwrap_or_default();
            (name.clone(), value)
        })
        .collect();
    let size = output_variables_size(&output_variables);
    if size > MAX_OUTPUT_VARIABLE_BYTES {
        return Ok(failed(
            FailureType::JobFailed,
            format!("the output variables take {size} bytes; CodePipeline allows {MAX_OUTPUT_VARIABLE_BYTES}"),
        ));
    }

    let mut output_artifacts = Vec::new();
    for declared in prepared.declaration.output_artifacts() {
        let target = output_target(prepared, &declared.name)?;
        let Some(written) = response.outputs.iter().find(|o| o.name == declared.name) else {
            return Ok(failed(
                FailureType::JobFailed,
                format!("output artifact {} was not written", declared.name),
            ));
        };
        tracing::info!(artifact = %declared.name, key = %target.key, "output artifact written");
        output_artifacts.push(ArtifactDetail {
            name: declared.name.clone(),
            s3_location: ArtifactLocation {
                version_id: written.version_id.clone(),
                ..target.clone()
            },
        });
    }

    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts,
        output_variables,
        result: ActionExecutionResult {
            external_execution_id: Some(prepared.record.action_execution_id.clone()),
            external_execution_summary: Some(format!(
                "{} command(s) succeeded{}",
                prepared.commands.len(),
                if response.sandbox_clean {
                    ""
                } else {
                    UNCLEAN_SANDBOX
                }
            )),
            ..Default::default()
        },
        source_revision: None,
        log_tail: Some(log_tail),
        log_location,
    })
}

/// The action's `environmentVariables`, `#{...}` resolved; Secrets Manager values are refused.
fn user_environment(prepared: &PreparedAction) -> Result<Vec<(String, String)>, ProviderError> {
    declared_environment(prepared)?
        .into_iter()
        .map(|(name, value, kind)| match kind {
            EnvironmentVariableType::SecretsManager => Err(ProviderError::Configuration(format!(
                "environment variable {name}: type SECRETS_MANAGER is read by CodeBuild only: \
                 run the commands on a project ({})",
                pipewright_core::codebuild::COMMANDS_PROJECT_KEY
            ))),
            EnvironmentVariableType::Plaintext => Ok((name, value)),
        })
        .collect()
}

/// The action's `environmentVariables`, `#{...}` resolved, with their types.
pub(super) fn declared_environment(
    prepared: &PreparedAction,
) -> Result<Vec<(String, String, EnvironmentVariableType)>, ProviderError> {
    let mut out = Vec::new();
    for var in prepared
        .declaration
        .environment_variables
        .as_deref()
        .unwrap_or_default()
    {
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
        out.push((
            var.name.clone(),
            value,
            var.variable_type
                .unwrap_or(EnvironmentVariableType::Plaintext),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::prepared;
    use pipewright_core::runner::{RunFailure, RunOutputWritten, ShellEnd};
    use serde_json::json;

    fn build_action() -> PreparedAction {
        let mut p = prepared(json!({
            "name": "Build",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["make"],
            "outputVariables": ["V"],
            "outputArtifacts": [{"name": "Out", "files": ["**/*"]}]
        }));
        p.outputs = vec![ArtifactDetail {
            name: "Out".into(),
            s3_location: ArtifactLocation {
                bucket: "b".into(),
                key: "p/Out/1.zip".into(),
                version_id: None,
            },
        }];
        p
    }

    fn succeeded() -> RunResponse {
        RunResponse {
            ended: Some(ShellEnd::Exited {
                code: Some(0),
                signal: None,
            }),
            log_tail: "ok\n".into(),
            log_version_id: Some("lv".into()),
            output_variables: BTreeMap::from([
                ("V".to_string(), "1".to_string()),
                ("NOT_DECLARED".to_string(), "x".to_string()),
            ]),
            outputs: vec![RunOutputWritten {
                name: "Out".into(),
                version_id: Some("v1".into()),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_run_ends_before_the_function_must_record_it() {
        let now = Instant::now();
        let epoch_ms = |extra: u64| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
                + extra
        };
        let at = run_deadline_epoch_ms(now + Duration::from_secs(60), now);
        assert!(at >= epoch_ms(49_000) && at <= epoch_ms(51_000), "{at}");
        // A deadline already closer than the margin: now.
        let at = run_deadline_epoch_ms(now + Duration::from_secs(3), now);
        assert!(at <= epoch_ms(1_000), "{at}");
    }

    #[test]
    fn a_run_becomes_the_outcome_with_only_what_was_declared() {
        let p = build_action();
        let o = outcome(&p, &["V".to_string()], succeeded()).unwrap();
        assert_eq!(o.status, ActionExecutionStatus::Succeeded);
        assert_eq!(
            o.output_variables,
            BTreeMap::from([("V".to_string(), "1".to_string())])
        );
        assert_eq!(o.output_artifacts[0].s3_location.key, "p/Out/1.zip");
        assert_eq!(
            o.output_artifacts[0].s3_location.version_id.as_deref(),
            Some("v1")
        );
        assert_eq!(o.log_location.unwrap().version_id.as_deref(), Some("lv"));
    }

    #[test]
    fn an_untrusted_answer_is_checked() {
        let p = build_action();
        let mut missing = succeeded();
        missing.outputs.clear();
        let o = outcome(&p, &["V".to_string()], missing).unwrap();
        assert_eq!(o.status, ActionExecutionStatus::Failed);
        assert!(o
            .result
            .error_details
            .unwrap()
            .message
            .contains("Out was not written"));

        let mut huge = succeeded();
        huge.output_variables
            .insert("V".into(), "x".repeat(MAX_OUTPUT_VARIABLE_BYTES + 1));
        huge.log_tail = "y".repeat(1 << 20);
        let o = outcome(&p, &["V".to_string()], huge).unwrap();
        assert_eq!(o.status, ActionExecutionStatus::Failed);
        assert!(o.log_tail.unwrap().len() <= LOG_TAIL_BYTES);

        let mut failed = succeeded();
        failed.ended = Some(ShellEnd::Exited {
            code: Some(2),
            signal: None,
        });
        let o = outcome(&p, &["V".to_string()], failed).unwrap();
        let details = o.result.error_details.unwrap();
        assert!(
            details
                .message
                .starts_with("the commands failed with exit code 2"),
            "{}",
            details.message
        );
        assert!(o.output_variables.is_empty());

        let mut denied = succeeded();
        denied.failure = Some(RunFailure {
            kind: "PermissionError".into(),
            message: "input artifact Src: S3 GetObject through the presigned URL: HTTP 403".into(),
        });
        let o = outcome(&p, &["V".to_string()], denied).unwrap();
        assert_eq!(
            o.result.error_details.unwrap().code,
            FailureType::PermissionError.into()
        );
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
        assert!(err.to_string().contains("read by CodeBuild only"), "{err}");
    }
}
