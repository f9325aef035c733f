//! CodeBuild actions (`Build/AWS/CodeBuild`, `Test/AWS/CodeBuild`): what is decided without
//! AWS. The action function starts the build with the input artifacts as its sources and the
//! output artifacts' locations as its artifacts; CodeBuild's "CodeBuild Build State Change"
//! event completes the action.

use serde::Deserialize;
use serde_json::Value;

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};

/// The `detail-type` of CodeBuild's build state events.
pub const BUILD_STATE_CHANGE: &str = "CodeBuild Build State Change";

/// The build statuses a build ends in.
pub const ENDED_STATUSES: &[&str] = &["SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"];

/// The configuration key with which a `Compute/AWS/Commands` action runs its commands as a
/// build of the CodeBuild project it names, instead of on Pipewright's Commands runner (for a
/// container image of its own, more than the runner's 15 minutes, or a Docker daemon). A
/// Pipewright key: CodePipeline runs every Commands action on CodeBuild compute it manages.
pub const COMMANDS_PROJECT_KEY: &str = "PipewrightCodeBuildProject";

/// Whether an action of type `type_id` with `configuration` runs as a CodeBuild build: a
/// CodeBuild build or test action, or a Commands action naming a project
/// ([`COMMANDS_PROJECT_KEY`]).
pub fn runs_on_codebuild(
    type_id: &ActionTypeId,
    configuration: &std::collections::BTreeMap<String, String>,
) -> bool {
    if type_id.owner != ActionOwner::Aws {
        return false;
    }
    match (type_id.category, type_id.provider.as_str()) {
        (ActionCategory::Build | ActionCategory::Test, "CodeBuild") => true,
        (ActionCategory::Compute, "Commands") => configuration
            .get(COMMANDS_PROJECT_KEY)
            .is_some_and(|p| !p.trim().is_empty()),
        _ => false,
    }
}

/// The buildspec a Commands action runs as on CodeBuild: its commands in the `build` phase (one
/// shell, the first failing command fails the build, as on the runner), its `outputVariables`
/// exported, its output artifact's `files` (everything when it names none) as the artifacts.
/// JSON, which CodeBuild reads as the YAML it is.
pub fn commands_buildspec(
    commands: &[String],
    output_variables: &[String],
    output_files: Option<&[String]>,
) -> String {
    let mut spec = serde_json::json!({
        "version": "0.2",
        "phases": {"build": {"commands": commands}},
    });
    if !output_variables.is_empty() {
        spec["env"] = serde_json::json!({"exported-variables": output_variables});
    }
    if let Some(files) = output_files {
        let files: Vec<&str> = if files.is_empty() {
            vec!["**/*"]
        } else {
            files.iter().map(String::as_str).collect()
        };
        spec["artifacts"] = serde_json::json!({"files": files});
    }
    spec.to_string()
}

/// How an environment variable's value is read (CodeBuild's `EnvironmentVariableType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VariableType {
    /// The value itself.
    Plaintext,
    /// The name of a Systems Manager parameter.
    ParameterStore,
    /// A Secrets Manager secret (`name[:json-key[:version-stage[:version-id]]]`).
    SecretsManager,
}

impl VariableType {
    /// CodeBuild's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::ParameterStore => "PARAMETER_STORE",
            Self::SecretsManager => "SECRETS_MANAGER",
        }
    }
}

/// One entry of the `EnvironmentVariables` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentVariable {
    /// Its name.
    pub name: String,
    /// Its value (or the parameter's or secret's name).
    pub value: String,
    /// How the value is read; `PLAINTEXT` when absent.
    #[serde(rename = "type", default = "plaintext")]
    pub kind: VariableType,
}

fn plaintext() -> VariableType {
    VariableType::Plaintext
}

/// The `EnvironmentVariables` configuration (a JSON array of `{"name", "value", "type"}`), read;
/// the error names the entry and the reason.
pub fn environment_variables(text: &str) -> Result<Vec<EnvironmentVariable>, String> {
    let entries: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        format!("must be a JSON array of {{\"name\", \"value\", \"type\"}} objects: {e}")
    })?;
    let mut out: Vec<EnvironmentVariable> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let variable: EnvironmentVariable = serde_json::from_value(entry).map_err(|e| {
            format!(
                "entry {i}: {e}; each entry is {{\"name\": ..., \"value\": ..., \"type\": \
                 \"PLAINTEXT\" | \"PARAMETER_STORE\" | \"SECRETS_MANAGER\"}}"
            )
        })?;
        if variable.name.is_empty() {
            return Err(format!("entry {i}: name is empty"));
        }
        if variable.name.starts_with("CODEBUILD_") {
            return Err(format!(
                "entry {i}: {} starts with CODEBUILD_, which CodeBuild reserves for its own \
                 variables",
                variable.name
            ));
        }
        if out.iter().any(|v| v.name == variable.name) {
            return Err(format!("entry {i}: {} is set twice", variable.name));
        }
        out.push(variable);
    }
    Ok(out)
}

/// Which of the input artifacts `inputs` is the build's primary source: the one `PrimarySource`
/// names, else the first (CodePipeline's rule).
pub fn primary_source(inputs: &[&str], configured: Option<&str>) -> Result<usize, String> {
    match configured.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(0),
        Some(name) => inputs.iter().position(|i| *i == name).ok_or_else(|| {
            format!(
                "{name} is not one of the action's input artifacts ({})",
                inputs.join(", ")
            )
        }),
    }
}

/// An artifact's S3 key split the way CodeBuild's `artifactsOverride` takes it: the folder
/// (`path`) and the object's name (`name`), so the build writes exactly `key`.
pub fn artifact_path_and_name(key: &str) -> (&str, &str) {
    match key.rsplit_once('/') {
        Some((path, name)) => (path, name),
        None => ("", key),
    }
}

/// What a build state event says: the build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEnded {
    /// The build's ARN (`detail.build-id`).
    pub build_arn: String,
    /// The build id (`project:uuid`).
    pub build_id: String,
    /// Its final status.
    pub status: String,
}

/// A CodeBuild build state event of a build that ended, read; `None` for anything else.
pub fn build_ended(event: &Value) -> Option<BuildEnded> {
    if event.get("source").and_then(Value::as_str) != Some("aws.codebuild")
        || event.get("detail-type").and_then(Value::as_str) != Some(BUILD_STATE_CHANGE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    let status = detail.get("build-status").and_then(Value::as_str)?;
    if !ENDED_STATUSES.contains(&status) {
        return None;
    }
    let build_arn = detail.get("build-id").and_then(Value::as_str)?;
    Some(BuildEnded {
        build_id: build_id_of_arn(build_arn)?.to_string(),
        build_arn: build_arn.to_string(),
        status: status.to_string(),
    })
}

/// The build id (`project:uuid`) of a build ARN (`arn:<p>:codebuild:<r>:<a>:build/<id>`).
pub fn build_id_of_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "codebuild", _, _, resource] => resource
            .strip_prefix("build/")
            .filter(|id| id.contains(':')),
        _ => None,
    }
}

/// One phase of a build, as BatchGetBuilds reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phase {
    /// `phaseType` (`BUILD`, `UPLOAD_ARTIFACTS`, ...).
    pub phase_type: String,
    /// `phaseStatus`, once it ended.
    pub status: Option<String>,
    /// The first context's status code and message.
    pub code: Option<String>,
    /// The message.
    pub message: Option<String>,
}

/// Why build `build_id` did not succeed, as CodePipeline says it: the status, the first phase
/// that did not succeed, its code and message.
pub fn failure_message(build_id: &str, status: &str, phases: &[Phase]) -> String {
    let mut message = format!("Build terminated with state: {status}.");
    let failed = phases.iter().find(|p| {
        p.status
            .as_deref()
            .is_some_and(|s| s != "SUCCEEDED" && !s.is_empty())
    });
    if let Some(phase) = failed {
        message.push_str(&format!(" Phase: {}", phase.phase_type));
        if let Some(code) = phase.code.as_deref().filter(|c| !c.is_empty()) {
            message.push_str(&format!(", Code: {code}"));
        }
        if let Some(text) = phase.message.as_deref().filter(|m| !m.is_empty()) {
            message.push_str(&format!(", Message: {text}"));
        }
        message.push('.');
    }
    message.push_str(&format!(" Build: {build_id}"));
    message
}

/// The build's page in the CodeBuild console.
pub fn console_link(region: &str, account: &str, build_id: &str) -> String {
    let project = build_id.split(':').next().unwrap_or_default();
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/{project}/build/{}/?region={region}",
        build_id.replace(':', "%3A")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn environment_variables_are_read_with_codepipelines_shape() {
        let vars = environment_variables(
            r#"[{"name":"STAGE","value":"prod","type":"PLAINTEXT"},
                {"name":"DB","value":"/app/db","type":"PARAMETER_STORE"},
                {"name":"TOKEN","value":"app/token:key","type":"SECRETS_MANAGER"},
                {"name":"PLAIN","value":"x"}]"#,
        )
        .unwrap();
        assert_eq!(vars.len(), 4);
        assert_eq!(vars[1].kind, VariableType::ParameterStore);
        assert_eq!(vars[3].kind.as_str(), "PLAINTEXT");
        for (text, expected) in [
            ("{}", "must be a JSON array"),
            ("[{\"name\":\"A\"}]", "entry 0: missing field `value`"),
            (
                "[{\"name\":\"A\",\"value\":\"1\",\"type\":\"PLAIN\"}]",
                "entry 0: unknown variant `PLAIN`",
            ),
            (
                "[{\"name\":\"\",\"value\":\"1\"}]",
                "entry 0: name is empty",
            ),
            ("[{\"name\":\"CODEBUILD_X\",\"value\":\"1\"}]", "reserves"),
            (
                "[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"A\",\"value\":\"2\"}]",
                "entry 1: A is set twice",
            ),
            (
                "[{\"name\":\"A\",\"value\":\"1\",\"secret\":true}]",
                "unknown field `secret`",
            ),
        ] {
            let err = environment_variables(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn commands_run_on_codebuild_only_when_they_name_a_project() {
        let id = |category, provider: &str| ActionTypeId {
            category,
            owner: ActionOwner::Aws,
            provider: provider.into(),
            version: "1".into(),
        };
        let none = std::collections::BTreeMap::new();
        let named = std::collections::BTreeMap::from([(
            COMMANDS_PROJECT_KEY.to_string(),
            "runner".to_string(),
        )]);
        assert!(runs_on_codebuild(
            &id(ActionCategory::Test, "CodeBuild"),
            &none
        ));
        assert!(!runs_on_codebuild(
            &id(ActionCategory::Compute, "Commands"),
            &none
        ));
        assert!(runs_on_codebuild(
            &id(ActionCategory::Compute, "Commands"),
            &named
        ));
        assert!(!runs_on_codebuild(
            &id(ActionCategory::Deploy, "S3"),
            &named
        ));

        let spec: Value = serde_json::from_str(&commands_buildspec(
            &["make".into(), "export V=1".into()],
            &["V".into()],
            Some(&[]),
        ))
        .unwrap();
        assert_eq!(
            spec,
            serde_json::json!({
                "version": "0.2",
                "env": {"exported-variables": ["V"]},
                "phases": {"build": {"commands": ["make", "export V=1"]}},
                "artifacts": {"files": ["**/*"]}
            })
        );
        let bare: Value =
            serde_json::from_str(&commands_buildspec(&["true".into()], &[], None)).unwrap();
        assert!(bare.get("artifacts").is_none() && bare.get("env").is_none());
    }

    #[test]
    fn the_primary_source_is_the_named_input_or_the_first() {
        let inputs = ["SourceOutput", "Config"];
        assert_eq!(primary_source(&inputs, None), Ok(0));
        assert_eq!(primary_source(&inputs, Some("Config")), Ok(1));
        assert!(primary_source(&inputs, Some("Other"))
            .unwrap_err()
            .contains("SourceOutput, Config"));
    }

    #[test]
    fn artifact_keys_split_into_path_and_name() {
        assert_eq!(
            artifact_path_and_name("web/exec-1/BuildOutput/a1b2.zip"),
            ("web/exec-1/BuildOutput", "a1b2.zip")
        );
        assert_eq!(artifact_path_and_name("flat.zip"), ("", "flat.zip"));
    }

    #[test]
    fn build_events_are_read_and_others_ignored() {
        let event = |status: &str| {
            json!({
                "source": "aws.codebuild",
                "detail-type": BUILD_STATE_CHANGE,
                "detail": {
                    "build-status": status,
                    "project-name": "web",
                    "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/web:0a1b2c3d",
                }
            })
        };
        let ended = build_ended(&event("FAILED")).unwrap();
        assert_eq!(ended.build_id, "web:0a1b2c3d");
        assert_eq!(ended.status, "FAILED");
        assert!(build_ended(&event("IN_PROGRESS")).is_none());
        let mut other = event("SUCCEEDED");
        other["source"] = json!("my.app");
        assert!(build_ended(&other).is_none());
        assert_eq!(build_id_of_arn("arn:aws:codebuild:r:a:project/web"), None);
        assert_eq!(build_id_of_arn("web:1"), None);
    }

    #[test]
    fn a_failure_names_the_phase_and_the_reason() {
        let phases = [
            Phase {
                phase_type: "DOWNLOAD_SOURCE".into(),
                status: Some("SUCCEEDED".into()),
                ..Default::default()
            },
            Phase {
                phase_type: "BUILD".into(),
                status: Some("FAILED".into()),
                code: Some("COMMAND_EXECUTION_ERROR".into()),
                message: Some("Error while executing command: make. Reason: exit status 2".into()),
            },
            Phase {
                phase_type: "COMPLETED".into(),
                status: None,
                ..Default::default()
            },
        ];
        assert_eq!(
            failure_message("web:1", "FAILED", &phases),
            "Build terminated with state: FAILED. Phase: BUILD, Code: COMMAND_EXECUTION_ERROR, \
             Message: Error while executing command: make. Reason: exit status 2. Build: web:1"
        );
        assert_eq!(
            failure_message("web:1", "STOPPED", &[]),
            "Build terminated with state: STOPPED. Build: web:1"
        );
        assert_eq!(
            console_link("eu-west-1", "123456789012", "web:1"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/web/build/web%3A1/?region=eu-west-1"
        );
    }
}
