//! `Build/AWS/CodeBuild` and `Test/AWS/CodeBuild`: start a build of `ProjectName` on the input
//! artifacts, then let CodeBuild's "CodeBuild Build State Change" event say when it ended.
//!
//! - The primary source is the input artifact `PrimarySource` names (else the first), given as
//!   an `S3` source at its exact version; the other input artifacts are secondary sources named
//!   after the artifacts (`CODEBUILD_SRC_DIR_<name>` in the build).
//! - One output artifact is the build's artifacts (the buildspec's `artifacts`); several are
//!   its secondary artifacts, each the buildspec's `secondary-artifacts` entry of the same
//!   name. CodeBuild writes them, zipped, where the pipeline's artifacts go, so the build
//!   project's service role needs `s3:PutObject` on the artifact bucket (as it does under
//!   CodePipeline).
//! - `EnvironmentVariables` (a JSON array; `#{...}` variables resolved) override the project's.
//! - The request carries the action execution id as its idempotency token: a repeated task
//!   starts no second build.
//! - Output variables: the buildspec's `exported-variables`. A build that does not succeed fails
//!   the action with its status, the phase that failed, its reason and the build id.
//!
//! `BatchEnabled` batch builds are refused at CreatePipeline, and here too (a configuration error).
//!
//! A `Compute/AWS/Commands` action that names a project (`PipewrightCodeBuildProject`) runs the
//! same way ([`run_commands`]): its commands become the build's buildspec, its
//! `outputVariables` the exported variables, its output artifact's `files` the artifacts, its
//! `environmentVariables` (SECRETS_MANAGER ones too) the build's.
//!
//! Every call is made with the pipeline role's session.

use std::collections::BTreeMap;

use aws_sdk_codebuild::types::{
    ArtifactNamespace, ArtifactPackaging, ArtifactsType, Build, EnvironmentVariable,
    EnvironmentVariableType, ProjectArtifacts, ProjectSource, ProjectSourceVersion, SourceType,
};
use pipewright_aws::artifacts::S3Artifacts;
use pipewright_core::codebuild::{self, BuildEnded, Phase, VariableType};
use pipewright_core::declaration::EnvironmentVariableType as DeclaredType;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, ArtifactLocation, FailureType,
};

use super::{optional, required, Context, ProviderError};

/// Start the build; the outcome is in progress, its external id the build id.
pub async fn run(
    cb: &aws_sdk_codebuild::Client,
    prepared: &PreparedAction,
    stack_secrets: &[String],
) -> Result<ActionOutcome, ProviderError> {
    let project = required(prepared, "ProjectName")?;
    if optional(prepared, "BatchEnabled") == Some("true") {
        return Err(ProviderError::Configuration(
            "configuration BatchEnabled: batch builds are not run by Pipewright yet; remove \
             BatchEnabled to run one build"
                .into(),
        ));
    }
    let names: Vec<&str> = prepared.inputs.iter().map(|a| a.name.as_str()).collect();
    let primary = codebuild::primary_source(&names, optional(prepared, "PrimarySource")).map_err(
        |reason| ProviderError::Configuration(format!("configuration PrimarySource: {reason}")),
    )?;
    let variables = environment_variables(prepared)?;
    start(
        cb,
        prepared,
        project,
        primary,
        None,
        &variables,
        stack_secrets,
    )
    .await
}

/// Start the commands of Commands action `prepared` as a build of its project.
pub async fn run_commands(
    cb: &aws_sdk_codebuild::Client,
    prepared: &PreparedAction,
    stack_secrets: &[String],
) -> Result<ActionOutcome, ProviderError> {
    let project = required(prepared, codebuild::COMMANDS_PROJECT_KEY)?;
    if prepared.commands.is_empty() {
        return Err(ProviderError::Configuration(
            "a Commands action needs at least one command".into(),
        ));
    }
    let output_variables = prepared
        .declaration
        .output_variables
        .clone()
        .unwrap_or_default();
    let files = prepared
        .declaration
        .output_artifacts()
        .first()
        .map(|o| o.files.clone().unwrap_or_default());
    let buildspec =
        codebuild::commands_buildspec(&prepared.commands, &output_variables, files.as_deref());
    let variables = super::commands::declared_environment(prepared)?
        .into_iter()
        .map(|(name, value, kind)| codebuild::EnvironmentVariable {
            name,
            value,
            kind: match kind {
                DeclaredType::SecretsManager => VariableType::SecretsManager,
                DeclaredType::Plaintext => VariableType::Plaintext,
            },
        })
        .collect::<Vec<_>>();
    start(
        cb,
        prepared,
        project,
        0,
        Some(buildspec),
        &variables,
        stack_secrets,
    )
    .await
}

/// The `EnvironmentVariables` configuration: the JSON as declared, each value's `#{...}`
/// variables resolved in it (resolving the text first would let a variable's value, a commit
/// message say, add entries or break the JSON). A configuration that is only a variable
/// reference is that variable's JSON.
fn environment_variables(
    prepared: &PreparedAction,
) -> Result<Vec<codebuild::EnvironmentVariable>, ProviderError> {
    let error = |reason: String| {
        ProviderError::Configuration(format!("configuration EnvironmentVariables: {reason}"))
    };
    let declared = prepared
        .declaration
        .configuration()
        .get("EnvironmentVariables")
        .map(String::as_str)
        .filter(|t| !t.trim().is_empty());
    let Some(declared) = declared else {
        return Ok(Vec::new());
    };
    let lookup = |ns: &str, key: &str| prepared.variables.get(ns).and_then(|m| m.get(key)).cloned();
    match codebuild::environment_variables(declared) {
        Ok(mut variables) => {
            for variable in &mut variables {
                variable.value = pipewright_core::variables::resolve(&variable.value, lookup)
                    .map_err(|e| error(format!("{}: {e}", variable.name)))?;
            }
            Ok(variables)
        }
        Err(_) if !pipewright_core::variables::references(declared).is_empty() => {
            let resolved = optional(prepared, "EnvironmentVariables").unwrap_or("[]");
            codebuild::environment_variables(resolved).map_err(error)
        }
        Err(reason) => Err(error(reason)),
    }
}

/// Refuse a SECRETS_MANAGER variable naming a secret under one of `prefixes` (the stack's, the
/// pipelines'): CodeBuild reads it with the project's role, out of the pipeline role session's
/// reach.
fn refuse_stack_secrets(
    variables: &[codebuild::EnvironmentVariable],
    prefixes: &[String],
) -> Result<(), ProviderError> {
    for variable in variables {
        if variable.kind != VariableType::SecretsManager {
            continue;
        }
        let value = variable.value.as_str();
        let name = match value.split_once(":secret:") {
            Some((_, rest)) if value.starts_with("arn:") => rest,
            _ => value,
        };
        let name = name.split(':').next().unwrap_or(name);
        if let Some(prefix) = prefixes
            .iter()
            .find(|p| !p.is_empty() && name.starts_with(p.as_str()))
        {
            return Err(ProviderError::Configuration(format!(
                "environment variable {}: secret {name} is under {prefix}, the Pipewright \
                 stack's own secrets, which no action may read",
                variable.name
            )));
        }
    }
    Ok(())
}

/// StartBuild of `project` on the input artifacts (`primary` the primary source), with
/// `buildspec` instead of the project's when given.
async fn start(
    cb: &aws_sdk_codebuild::Client,
    prepared: &PreparedAction,
    project: &str,
    primary: usize,
    buildspec: Option<String>,
    variables: &[codebuild::EnvironmentVariable],
    stack_secrets: &[String],
) -> Result<ActionOutcome, ProviderError> {
    refuse_stack_secrets(variables, stack_secrets)?;
    let source = prepared.inputs.get(primary).ok_or_else(|| {
        ProviderError::Configuration("a CodeBuild action needs an input artifact".into())
    })?;
    let mut start = cb
        .start_build()
        .project_name(project)
        .idempotency_token(&prepared.record.action_execution_id)
        .source_type_override(SourceType::S3)
        .source_location_override(s3_location(&source.s3_location))
        .set_source_version(source.s3_location.version_id.clone())
        .set_buildspec_override(buildspec);
    for (i, input) in prepared.inputs.iter().enumerate() {
        if i == primary {
            continue;
        }
        start = start.secondary_sources_override(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location(s3_location(&input.s3_location))
                .source_identifier(&input.name)
                .build()
                .map_err(build_error)?,
        );
        if let Some(version) = &input.s3_location.version_id {
            start = start.secondary_sources_version_override(
                ProjectSourceVersion::builder()
                    .source_identifier(&input.name)
                    .source_version(version)
                    .build()
                    .map_err(build_error)?,
            );
        }
    }
    match prepared.outputs.as_slice() {
        [] => {
            start = start.artifacts_override(
                ProjectArtifacts::builder()
                    .r#type(ArtifactsType::NoArtifacts)
                    .build()
                    .map_err(build_error)?,
            )
        }
        [only] => start = start.artifacts_override(s3_artifact(only, None)?),
        several => {
            start = start.artifacts_override(
                ProjectArtifacts::builder()
                    .r#type(ArtifactsType::NoArtifacts)
                    .build()
                    .map_err(build_error)?,
            );
            for output in several {
                start =
                    start.secondary_artifacts_override(s3_artifact(output, Some(&output.name))?);
            }
        }
    }
    for variable in variables {
        start = start.environment_variables_override(
            EnvironmentVariable::builder()
                .name(&variable.name)
                .value(&variable.value)
                .r#type(match variable.kind {
                    VariableType::Plaintext => EnvironmentVariableType::Plaintext,
                    VariableType::ParameterStore => EnvironmentVariableType::ParameterStore,
                    VariableType::SecretsManager => EnvironmentVariableType::SecretsManager,
                })
                .build()
                .map_err(build_error)?,
        );
    }
    let started = start
        .send()
        .await
        .map_err(|e| codebuild_error("StartBuild", project, &e))?;
    let build_id = started
        .build_value()
        .and_then(Build::id)
        .ok_or_else(|| {
            ProviderError::Job(format!(
                "codebuild:StartBuild {project}: no build id in the answer"
            ))
        })?
        .to_string();
    tracing::info!(%build_id, "build started");
    Ok(ActionOutcome::in_progress(
        ActionExecutionResult {
            external_execution_summary: Some(format!("started build {build_id}")),
            external_execution_url: Some(link(prepared, &build_id)),
            external_execution_id: Some(build_id),
            ..Default::default()
        },
        BTreeMap::new(),
    ))
}

/// The outcome of the build `ended` names: its output artifacts and exported variables when it
/// succeeded; otherwise why it did not.
pub async fn complete(
    cb: &aws_sdk_codebuild::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    ended: &BuildEnded,
) -> Result<ActionOutcome, ProviderError> {
    match outcome_of(cb, artifacts, prepared, &ended.build_id).await? {
        Some(outcome) => Ok(outcome),
        // The event says it ended; BatchGetBuilds must agree before the action ends.
        None => Err(ProviderError::NotYet(format!(
            "build {} ended {} by its event, but CodeBuild still reports it in progress",
            ended.build_id, ended.status
        ))),
    }
}

/// For a build just started (`outcome` in progress): its outcome if it already ended.
pub async fn settled(
    cb: &aws_sdk_codebuild::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    outcome: &ActionOutcome,
) -> Result<Option<ActionOutcome>, ProviderError> {
    match &outcome.result.external_execution_id {
        Some(build_id) => outcome_of(cb, artifacts, prepared, build_id).await,
        None => Ok(None),
    }
}

/// Build `build_id`'s outcome; `None` while it runs.
async fn outcome_of(
    cb: &aws_sdk_codebuild::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    build_id: &str,
) -> Result<Option<ActionOutcome>, ProviderError> {
    let answer = cb
        .batch_get_builds()
        .ids(build_id)
        .send()
        .await
        .map_err(|e| codebuild_error("BatchGetBuilds", build_id, &e))?;
    let build = answer.builds().first().ok_or_else(|| {
        ProviderError::Job(format!(
            "codebuild:BatchGetBuilds: CodeBuild knows no build {build_id}"
        ))
    })?;
    let status = build
        .build_status()
        .map(|s| s.as_str())
        .unwrap_or("IN_PROGRESS");
    if !codebuild::ENDED_STATUSES.contains(&status) {
        return Ok(None);
    }
    let result = |summary: String| ActionExecutionResult {
        external_execution_summary: Some(summary),
        external_execution_url: Some(link(prepared, build_id)),
        external_execution_id: Some(build_id.to_string()),
        ..Default::default()
    };
    if status != "SUCCEEDED" {
        let mut outcome = ActionOutcome::failed(
            FailureType::JobFailed,
            codebuild::failure_message(build_id, status, &phases(build)),
        );
        let failed = outcome.result.clone();
        outcome.result = ActionExecutionResult {
            error_details: failed.error_details,
            ..result(format!("build {build_id} ended {status}"))
        };
        return Ok(Some(outcome));
    }
    let mut output_artifacts = Vec::with_capacity(prepared.outputs.len());
    for output in &prepared.outputs {
        let location = &output.s3_location;
        let written = artifacts
            .locate(&location.bucket, &location.key)
            .await
            .context(|| {
                format!(
                    "output artifact {}: build {build_id} succeeded but wrote no artifact (do the \
                     buildspec's {} files match anything?)",
                    output.name,
                    if prepared.outputs.len() > 1 {
                        format!("secondary-artifacts {}", output.name)
                    } else {
                        "artifacts".to_string()
                    }
                )
            })?;
        output_artifacts.push(ArtifactDetail {
            name: output.name.clone(),
            s3_location: written,
        });
    }
    let output_variables = build
        .exported_environment_variables()
        .iter()
        .filter_map(|v| {
            Some((
                v.name()?.to_string(),
                v.value().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    Ok(Some(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts,
        output_variables,
        result: result(format!("build {build_id} succeeded")),
        source_revision: None,
        log_tail: None,
        log_location: None,
    }))
}

/// A build's phases, as the failure message reads them.
fn phases(build: &Build) -> Vec<Phase> {
    build
        .phases()
        .iter()
        .map(|p| {
            let context = p.contexts().first();
            Phase {
                phase_type: p
                    .phase_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                status: p.phase_status().map(|s| s.as_str().to_string()),
                code: context.and_then(|c| c.status_code()).map(str::to_string),
                message: context.and_then(|c| c.message()).map(str::to_string),
            }
        })
        .collect()
}

/// An artifact location as CodeBuild's `S3` source location: `bucket/key`.
fn s3_location(location: &ArtifactLocation) -> String {
    format!("{}/{}", location.bucket, location.key)
}

/// The build's artifact (`identifier`: a secondary artifact's) written, zipped, exactly at
/// `output`'s location.
fn s3_artifact(
    output: &ArtifactDetail,
    identifier: Option<&str>,
) -> Result<ProjectArtifacts, ProviderError> {
    let (path, name) = codebuild::artifact_path_and_name(&output.s3_location.key);
    ProjectArtifacts::builder()
        .r#type(ArtifactsType::S3)
        .location(&output.s3_location.bucket)
        .path(path)
        .name(name)
        .namespace_type(ArtifactNamespace::None)
        .packaging(ArtifactPackaging::Zip)
        .override_artifact_name(false)
        .set_artifact_identifier(identifier.map(str::to_string))
        .build()
        .map_err(build_error)
}

/// The build's console page.
fn link(prepared: &PreparedAction, build_id: &str) -> String {
    let region = prepared.record.input.region.clone().unwrap_or_default();
    codebuild::console_link(&region, &prepared.account_id, build_id)
}

fn build_error(e: aws_sdk_codebuild::error::BuildError) -> ProviderError {
    ProviderError::Configuration(format!("the StartBuild request cannot be made: {e}"))
}

/// A CodeBuild refusal as the failure it means.
fn codebuild_error<E>(
    call: &str,
    what: &str,
    err: &aws_sdk_codebuild::error::SdkError<E>,
) -> ProviderError
where
    E: aws_sdk_codebuild::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    super::service_error("codebuild", call, what, err, |code| {
        matches!(code, "ResourceNotFoundException" | "InvalidInputException")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{aws_error, aws_json_service, prepared};
    use super::*;
    use pipewright_core::execution::ErrorCode;

    fn client(base: &str) -> aws_sdk_codebuild::Client {
        aws_sdk_codebuild::Client::from_conf(
            aws_sdk_codebuild::Config::builder()
                .behavior_version(aws_sdk_codebuild::config::BehaviorVersion::latest())
                .region(aws_sdk_codebuild::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_codebuild::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(base)
                .build(),
        )
    }

    fn artifact(name: &str, key: &str, version: Option<&str>) -> ArtifactDetail {
        ArtifactDetail {
            name: name.into(),
            s3_location: ArtifactLocation {
                bucket: "artifacts".into(),
                key: key.into(),
                version_id: version.map(str::to_string),
            },
        }
    }

    fn build_action(configuration: serde_json::Value) -> PreparedAction {
        let mut p = prepared(json!({
            "name": "Compile",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": configuration
        }));
        p.inputs = vec![
            artifact("Src", "web/in/Src/a.zip", Some("v1")),
            artifact("Config", "web/in/Config/b.zip", None),
        ];
        p.outputs = vec![artifact("Bin", "web/out/Bin/c.zip", None)];
        p
    }

    /// What StartBuild is asked: sources from the input artifacts (the primary at its version),
    /// the artifact exactly at the output's key, the variables, the job id as idempotency token.
    #[tokio::test]
    async fn a_build_starts_on_the_input_artifacts() {
        let (base, calls) = aws_json_service(|_, _| {
            (200, json!({"build": {"id": "web:1234", "arn": "arn:aws:codebuild:us-east-1:123456789012:build/web:1234"}}))
        })
        .await;
        let p = build_action(json!({
            "ProjectName": "web",
            "PrimarySource": "Config",
            "EnvironmentVariables": "[{\"name\":\"STAGE\",\"value\":\"prod\"},{\"name\":\"DB\",\"value\":\"/db\",\"type\":\"PARAMETER_STORE\"}]"
        }));
        let outcome = run(&client(&base), &p, &[]).await.unwrap();
        assert_eq!(outcome.status, ActionExecutionStatus::InProgress);
        assert_eq!(
            outcome.result.external_execution_id.as_deref(),
            Some("web:1234")
        );
        let calls = calls.lock().unwrap();
        let (op, body) = &calls[0];
        assert_eq!(op, "StartBuild");
        assert_eq!(body["projectName"], "web");
        assert_eq!(body["idempotencyToken"], p.record.action_execution_id);
        assert_eq!(body["sourceTypeOverride"], "S3");
        assert_eq!(
            body["sourceLocationOverride"],
            "artifacts/web/in/Config/b.zip"
        );
        assert!(body.get("sourceVersion").is_none(), "{body}");
        assert_eq!(
            body["secondarySourcesOverride"],
            json!([{"type": "S3", "location": "artifacts/web/in/Src/a.zip", "sourceIdentifier": "Src"}])
        );
        assert_eq!(
            body["secondarySourcesVersionOverride"],
            json!([{"sourceIdentifier": "Src", "sourceVersion": "v1"}])
        );
        assert_eq!(body["artifactsOverride"]["type"], "S3");
        assert_eq!(body["artifactsOverride"]["location"], "artifacts");
        assert_eq!(body["artifactsOverride"]["path"], "web/out/Bin");
        assert_eq!(body["artifactsOverride"]["name"], "c.zip");
        assert_eq!(body["artifactsOverride"]["packaging"], "ZIP");
        assert_eq!(
            body["environmentVariablesOverride"],
            json!([{"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                   {"name": "DB", "value": "/db", "type": "PARAMETER_STORE"}])
        );
    }

    /// A Commands action naming a project: its commands, output variables, files and
    /// environment become the build's.
    #[tokio::test]
    async fn commands_run_as_a_build_of_their_project() {
        let (base, calls) =
            aws_json_service(|_, _| (200, json!({"build": {"id": "runner:1"}}))).await;
        let mut p = prepared(json!({
            "name": "Test",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "configuration": {"PipewrightCodeBuildProject": "runner"},
            "commands": ["make test", "export RESULT=ok"],
            "outputVariables": ["RESULT"],
            "environmentVariables": [
                {"name": "STAGE", "value": "prod"},
                {"name": "TOKEN", "value": "team/token", "type": "SECRETS_MANAGER"}
            ],
            "outputArtifacts": [{"name": "Report", "files": ["report/**/*"]}]
        }));
        p.inputs = vec![artifact("Src", "web/in/Src/a.zip", Some("v1"))];
        p.outputs = vec![artifact("Report", "web/out/Report/r.zip", None)];
        let outcome = run_commands(&client(&base), &p, &[]).await.unwrap();
        assert_eq!(
            outcome.result.external_execution_id.as_deref(),
            Some("runner:1")
        );
        let calls = calls.lock().unwrap();
        let body = &calls[0].1;
        assert_eq!(body["projectName"], "runner");
        let spec: serde_json::Value =
            serde_json::from_str(body["buildspecOverride"].as_str().unwrap()).unwrap();
        assert_eq!(
            spec["phases"]["build"]["commands"],
            json!(["make test", "export RESULT=ok"])
        );
        assert_eq!(spec["env"]["exported-variables"], json!(["RESULT"]));
        assert_eq!(spec["artifacts"]["files"], json!(["report/**/*"]));
        assert_eq!(
            body["environmentVariablesOverride"],
            json!([{"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                   {"name": "TOKEN", "value": "team/token", "type": "SECRETS_MANAGER"}])
        );
        assert_eq!(body["artifactsOverride"]["name"], "r.zip");
    }

    #[tokio::test]
    async fn several_outputs_are_secondary_artifacts_and_refusals_are_named() {
        let (base, calls) = aws_json_service(|_, _| {
            aws_error(
                "ResourceNotFoundException",
                "Project cannot be found: arn:aws:codebuild:us-east-1:123456789012:project/web",
            )
        })
        .await;
        let mut p = build_action(json!({"ProjectName": "web"}));
        p.outputs.push(artifact("Docs", "web/out/Docs/d.zip", None));
        let err = run(&client(&base), &p, &[]).await.unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(
            err.to_string().starts_with(
                "codebuild:StartBuild web: ResourceNotFoundException: Project cannot be found"
            ),
            "{err}"
        );
        let calls = calls.lock().unwrap();
        let body = &calls[0].1;
        assert_eq!(body["sourceLocationOverride"], "artifacts/web/in/Src/a.zip");
        assert_eq!(body["sourceVersion"], "v1");
        assert_eq!(body["artifactsOverride"]["type"], "NO_ARTIFACTS");
        let secondary = body["secondaryArtifactsOverride"].as_array().unwrap();
        assert_eq!(secondary.len(), 2);
        assert_eq!(secondary[1]["artifactIdentifier"], "Docs");
        assert_eq!(secondary[1]["name"], "d.zip");
    }

    /// A variable's value lands inside one entry's value, whatever it holds; stack secrets are
    /// refused.
    #[tokio::test]
    async fn variables_cannot_add_entries_and_stack_secrets_are_refused() {
        let (base, calls) = aws_json_service(|_, _| (200, json!({"build": {"id": "web:1"}}))).await;
        let mut p = build_action(json!({
            "ProjectName": "web",
            "EnvironmentVariables": "[{\"name\":\"MESSAGE\",\"value\":\"#{Src.CommitMessage}\"}]"
        }));
        let injected =
            "x\",\"type\":\"PARAMETER_STORE\"},{\"name\":\"BASH_ENV\",\"value\":\"/tmp/evil";
        p.variables.insert(
            "Src".into(),
            std::collections::BTreeMap::from([("CommitMessage".to_string(), injected.to_string())]),
        );
        run(&client(&base), &p, &[]).await.unwrap();
        let body = calls.lock().unwrap()[0].1.clone();
        assert_eq!(
            body["environmentVariablesOverride"],
            json!([{"name": "MESSAGE", "value": injected, "type": "PLAINTEXT"}])
        );

        let secret = build_action(json!({
            "ProjectName": "web",
            "EnvironmentVariables": "[{\"name\":\"KEY\",\"type\":\"SECRETS_MANAGER\",\"value\":\"arn:aws:secretsmanager:us-east-1:1:secret:pipewright/stack/task-token-key-AbCdEf:key\"}]"
        }));
        let err = run(&client(&base), &secret, &["pipewright/stack/".into()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(
            err.to_string()
                .starts_with("environment variable KEY: secret pipewright/stack/task-token-key"),
            "{err}"
        );
        assert_eq!(calls.lock().unwrap().len(), 1, "nothing was started");
    }

    #[tokio::test]
    async fn bad_configurations_fail_before_any_call() {
        let (base, calls) = aws_json_service(|_, _| (200, json!({}))).await;
        for (configuration, expected) in [
            (
                json!({"ProjectName": "web", "BatchEnabled": "true"}),
                "configuration BatchEnabled",
            ),
            (
                json!({"ProjectName": "web", "PrimarySource": "Nope"}),
                "configuration PrimarySource: Nope is not one",
            ),
            (
                json!({"ProjectName": "web", "EnvironmentVariables": "[1]"}),
                "configuration EnvironmentVariables: entry 0",
            ),
        ] {
            let err = run(&client(&base), &build_action(configuration), &[])
                .await
                .unwrap_err();
            assert_eq!(err.code(), FailureType::ConfigurationError);
            assert!(err.to_string().starts_with(expected), "{err}");
        }
        assert!(calls.lock().unwrap().is_empty());
    }

    /// A failed build fails the action with the phase and reason; an unfinished one is not an
    /// outcome yet.
    #[tokio::test]
    async fn a_failed_build_says_where_and_why() {
        let (base, _) = aws_json_service(|_, body| {
            let id = body["ids"][0].as_str().unwrap_or_default();
            let status = if id == "web:running" { "IN_PROGRESS" } else { "FAILED" };
            (200, json!({"builds": [{
                "id": id,
                "buildStatus": status,
                "phases": [
                    {"phaseType": "DOWNLOAD_SOURCE", "phaseStatus": "SUCCEEDED"},
                    {"phaseType": "BUILD", "phaseStatus": "FAILED", "contexts": [
                        {"statusCode": "COMMAND_EXECUTION_ERROR", "message": "Error while executing command: make. Reason: exit status 2"}
                    ]}
                ]
            }]}))
        })
        .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .build(),
        );
        let artifacts = S3Artifacts::new(s3);
        let p = build_action(json!({"ProjectName": "web"}));
        let ended = BuildEnded {
            build_arn: "arn:aws:codebuild:us-east-1:123456789012:build/web:1".into(),
            build_id: "web:1".into(),
            status: "FAILED".into(),
        };
        let outcome = complete(&client(&base), &artifacts, &p, &ended)
            .await
            .unwrap();
        assert_eq!(outcome.status, ActionExecutionStatus::Failed);
        let details = outcome.result.error_details.unwrap();
        assert_eq!(details.code, ErrorCode::Failure(FailureType::JobFailed));
        assert_eq!(
            details.message,
            "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, \
             Message: Error while executing command: make. Reason: exit status 2. Build: web:1"
        );
        assert_eq!(
            outcome.result.external_execution_id.as_deref(),
            Some("web:1")
        );
        assert!(outcome
            .result
            .external_execution_url
            .unwrap()
            .contains("/build/web%3A1/"));
        let running = ActionOutcome {
            result: ActionExecutionResult {
                external_execution_id: Some("web:running".into()),
                ..Default::default()
            },
            ..ActionOutcome::failed(FailureType::JobFailed, "x")
        };
        assert!(settled(&client(&base), &artifacts, &p, &running)
            .await
            .unwrap()
            .is_none());
    }
}
