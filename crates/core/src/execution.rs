//! Execution records: a pipeline execution, its stage executions and its action executions, as
//! the engine writes them to the store and as the control plane serves them
//! (GetPipelineExecution, GetPipelineState, ListPipelineExecutions, ListActionExecutions).
//!
//! Field names follow CodePipeline's API shapes (botocore `codepipeline/2015-07-09`) where the API
//! has them; the few Pipewright-only fields (S3 version ids, the task token, the log tail) are
//! named so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::declaration::{
    wire_enum, ActionTypeId, ConditionResult, Configuration, ExecutionMode, PipelineDeclaration,
};
use crate::events::TriggerType;

wire_enum! {
    /// `PipelineExecutionStatus`.
    PipelineExecutionStatus {
        /// Cancelled (by a newer execution in QUEUED/… modes or a rollback).
        Cancelled => "Cancelled",
        /// Running.
        InProgress => "InProgress",
        /// Stopped by StopPipelineExecution.
        Stopped => "Stopped",
        /// Stop requested; in-progress actions are finishing.
        Stopping => "Stopping",
        /// Every stage succeeded.
        Succeeded => "Succeeded",
        /// Overtaken by a newer execution while waiting (SUPERSEDED mode).
        Superseded => "Superseded",
        /// A stage failed.
        Failed => "Failed",
    }
}

impl PipelineExecutionStatus {
    /// True once the execution can change no more (retry aside).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::InProgress | Self::Stopping)
    }
}

wire_enum! {
    /// `StageExecutionStatus`.
    StageExecutionStatus {
        /// Cancelled.
        Cancelled => "Cancelled",
        /// Running.
        InProgress => "InProgress",
        /// An action failed.
        Failed => "Failed",
        /// Stopped.
        Stopped => "Stopped",
        /// Stopping.
        Stopping => "Stopping",
        /// Every action succeeded.
        Succeeded => "Succeeded",
        /// Skipped by a beforeEntry condition.
        Skipped => "Skipped",
    }
}

wire_enum! {
    /// `ActionExecutionStatus`.
    ActionExecutionStatus {
        /// Running.
        InProgress => "InProgress",
        /// Abandoned by a stop-and-abandon.
        Abandoned => "Abandoned",
        /// Succeeded.
        Succeeded => "Succeeded",
        /// Failed.
        Failed => "Failed",
    }
}

wire_enum! {
    /// `ExecutionType`.
    ExecutionType {
        /// A normal run.
        Standard => "STANDARD",
        /// A rollback run.
        Rollback => "ROLLBACK",
    }
}

/// `ExecutionTrigger`: what started the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTrigger {
    /// `CreatePipeline`, `StartPipelineExecution`, `CloudWatchEvent`, `Webhook`, ...
    pub trigger_type: TriggerType,
    /// Who or what: a user ARN, an event id, a webhook delivery.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trigger_detail: String,
}

/// `SourceRevision`: the revision a source action fetched.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    /// The source action.
    pub action_name: String,
    /// Commit id, S3 version id, image digest.
    #[serde(default)]
    pub revision_id: Option<String>,
    /// Commit message, object key, image tag.
    #[serde(default)]
    pub revision_summary: Option<String>,
    /// Link to the revision.
    #[serde(default)]
    pub revision_url: Option<String>,
    /// The change that made the revision (a job worker's `currentRevision.changeIdentifier`);
    /// none: the revision id itself.
    #[serde(default)]
    pub revision_change_id: Option<String>,
}

/// `SourceRevisionOverride` of StartPipelineExecution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRevisionOverride {
    /// The source action it applies to.
    pub action_name: String,
    /// `COMMIT_ID`, `IMAGE_DIGEST`, `S3_OBJECT_VERSION_ID`, `S3_OBJECT_KEY`.
    pub revision_type: String,
    /// The revision.
    pub revision_value: String,
}

/// `ResolvedPipelineVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedPipelineVariable {
    /// Variable name.
    pub name: String,
    /// Its value for this execution.
    pub resolved_value: String,
}

/// The ids every state-machine task carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionIds {
    /// Pipeline name.
    pub pipeline_name: String,
    /// Pipeline version.
    pub pipeline_version: u32,
    /// Execution id.
    pub pipeline_execution_id: String,
}

/// `PipelineExecution` plus what the engine keeps about it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineExecution {
    /// Pipeline name.
    pub pipeline_name: String,
    /// The pipeline version this execution runs.
    pub pipeline_version: u32,
    /// Execution id (a UUID).
    pub pipeline_execution_id: String,
    /// Status.
    pub status: PipelineExecutionStatus,
    /// Why it has that status (the failing action and reason, the stop reason, ...).
    #[serde(default)]
    pub status_summary: Option<String>,
    /// What started it.
    pub trigger: ExecutionTrigger,
    /// Pipeline variables with their values for this execution.
    #[serde(default)]
    pub variables: Vec<ResolvedPipelineVariable>,
    /// Revisions fetched by the source actions (filled as they run).
    #[serde(default)]
    pub source_revisions: Vec<SourceRevision>,
    /// Overrides given at start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_revision_overrides: Vec<SourceRevisionOverride>,
    /// The mode in force when it started.
    pub execution_mode: ExecutionMode,
    /// STANDARD or ROLLBACK.
    pub execution_type: ExecutionType,
    /// Start, seconds since the epoch.
    pub start_time: f64,
    /// Last change, seconds since the epoch.
    pub last_update_time: f64,
    /// The Step Functions execution that drives it.
    #[serde(default)]
    pub state_machine_execution_arn: Option<String>,
    /// The `reason` given to StopPipelineExecution (`stopTrigger.reason`).
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// For a `ROLLBACK` execution: the stage it rolls back and the execution it goes back to.
    #[serde(default)]
    pub rollback: Option<Rollback>,
}

/// What a `ROLLBACK` execution re-runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The stage it runs (only that one).
    pub stage_name: String,
    /// The successful execution whose source revisions, variables and artifacts it uses
    /// (`rollbackMetadata.rollbackTargetPipelineExecutionId`).
    pub target_pipeline_execution_id: String,
}

/// `S3Location` of an artifact, with the S3 version id Pipewright pins it to.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    /// Bucket.
    pub bucket: String,
    /// Key: `<pipeline>/<artifact>/<id>.zip`.
    pub key: String,
    /// S3 version id of the object written (later readers read exactly this version).
    #[serde(default)]
    pub version_id: Option<String>,
}

/// `ArtifactDetail`: an artifact's name and location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactDetail {
    /// Artifact name.
    pub name: String,
    /// Where it is (`s3location` on the wire, as CodePipeline spells it).
    #[serde(rename = "s3location")]
    pub s3_location: ArtifactLocation,
}

wire_enum! {
    /// CodePipeline's `FailureType`: why a job or action failed (`FailureDetails.type` of
    /// PutJobFailureResult, the `errorDetails.code` of a failed action).
    FailureType {
        /// The work failed.
        JobFailed => "JobFailed",
        /// The action's configuration cannot work (no such function, bucket, repository...).
        ConfigurationError => "ConfigurationError",
        /// Access was denied.
        PermissionError => "PermissionError",
        /// The revision is out of sync.
        RevisionOutOfSync => "RevisionOutOfSync",
        /// The revision asked for does not exist.
        RevisionUnavailable => "RevisionUnavailable",
        /// A system the action needs is unavailable.
        SystemUnavailable => "SystemUnavailable",
    }
}

/// A string that is not a [`FailureType`]; it says so listing the types, as a validation
/// error does after the member's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFailureType(pub String);

impl std::fmt::Display for UnknownFailureType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = FailureType::ALL.iter().map(|t| t.as_str()).collect();
        write!(f, "{:?} is not one of {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownFailureType {}

impl std::str::FromStr for FailureType {
    type Err = UnknownFailureType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownFailureType(s.to_string()))
    }
}

/// `ErrorDetails.code`: a [`FailureType`], or one of the codes Pipewright writes for actions
/// that did not fail by themselves. Written as its string; any string reads back (records
/// written by another version keep their code as [`ErrorCode::Other`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    /// The action failed: CodePipeline's failure type.
    Failure(FailureType),
    /// `TimedOut`: the action did not finish in time.
    TimedOut,
    /// `Abandoned`: the action's execution was stopped and abandoned.
    Abandoned,
    /// Any other code.
    Other(String),
}

impl ErrorCode {
    /// The exact wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Failure(t) => t.as_str(),
            Self::TimedOut => "TimedOut",
            Self::Abandoned => "Abandoned",
            Self::Other(code) => code,
        }
    }
}

impl From<FailureType> for ErrorCode {
    fn from(t: FailureType) -> Self {
        Self::Failure(t)
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> Self {
        match code.as_str() {
            "TimedOut" => Self::TimedOut,
            "Abandoned" => Self::Abandoned,
            other => match other.parse() {
                Ok(t) => Self::Failure(t),
                Err(_) => Self::Other(code),
            },
        }
    }
}

impl From<ErrorCode> for String {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::Other(code) => code,
            known => known.as_str().to_string(),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ErrorDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetails {
    /// `JobFailed`, `ConfigurationError`, `PermissionError`, `TimedOut`, ...
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub message: String,
}

/// `ActionExecutionResult`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecutionResult {
    /// The provider's id for the work (a build id, an execution ARN, ...).
    #[serde(default)]
    pub external_execution_id: Option<String>,
    /// One line about the result.
    #[serde(default)]
    pub external_execution_summary: Option<String>,
    /// Link to the work's logs or console.
    #[serde(default)]
    pub external_execution_url: Option<String>,
    /// Set when the action failed.
    #[serde(default)]
    pub error_details: Option<ErrorDetails>,
}

/// `ActionExecutionInput`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecutionInput {
    /// The action type.
    pub action_type_id: ActionTypeId,
    /// Configuration as declared.
    #[serde(default)]
    pub configuration: Configuration,
    /// Configuration with every `#{ns.key}` resolved.
    #[serde(default)]
    pub resolved_configuration: Configuration,
    /// Region it ran in.
    #[serde(default)]
    pub region: Option<String>,
    /// Input artifacts, pinned to versions.
    #[serde(default)]
    pub input_artifacts: Vec<ArtifactDetail>,
    /// The action's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `ActionExecutionOutput`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecutionOutput {
    /// Output artifacts written.
    #[serde(default)]
    pub output_artifacts: Vec<ArtifactDetail>,
    /// The result.
    #[serde(default)]
    pub execution_result: ActionExecutionResult,
    /// Output variables (exported to the action's namespace).
    #[serde(default)]
    pub output_variables: BTreeMap<String, String>,
}

/// One run of one action (`ActionExecutionDetail` plus the engine's own fields).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecution {
    /// The pipeline execution.
    pub pipeline_execution_id: String,
    /// This action execution's id.
    pub action_execution_id: String,
    /// Pipeline version.
    pub pipeline_version: u32,
    /// Stage.
    pub stage_name: String,
    /// Action.
    pub action_name: String,
    /// 1 for the first run, +1 per retry of the stage.
    pub attempt: u32,
    /// Status.
    pub status: ActionExecutionStatus,
    /// Start.
    pub start_time: f64,
    /// Last change.
    pub last_update_time: f64,
    /// Who changed it last (`pipewright`, an approver, ...).
    #[serde(default)]
    pub updated_by: Option<String>,
    /// Input.
    pub input: ActionExecutionInput,
    /// Output (empty until it ends).
    #[serde(default)]
    pub output: ActionExecutionOutput,
    /// The end of the action's log (Commands: the last 8 KB; shorter when the record would not
    /// fit its item otherwise, see [`ActionExecution::fit`]).
    #[serde(default)]
    pub log_tail: Option<String>,
    /// Where the whole log is (Commands: `<pipeline>/logs/<action execution id>.log` in the
    /// artifact bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_location: Option<ArtifactLocation>,
    /// The revision a source action fetched (or a job worker reported as its
    /// `currentRevision`).
    #[serde(default)]
    pub source_revision: Option<SourceRevision>,
    /// How far a job worker said it got (`executionDetails.percentComplete`, 0..=100).
    #[serde(default)]
    pub percent_complete: Option<u8>,
    /// The Step Functions task token that completes it. Secret: never logged, never returned by
    /// the API except as CodePipeline returns an approval token.
    #[serde(default)]
    pub task_token: Option<String>,
}

/// One run of one stage.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageExecution {
    /// The pipeline execution.
    pub pipeline_execution_id: String,
    /// Stage.
    pub stage_name: String,
    /// Status.
    pub status: StageExecutionStatus,
    /// 1 for the first run, +1 per retry.
    pub attempt: u32,
    /// Start.
    pub start_time: f64,
    /// Last change.
    pub last_update_time: f64,
    /// The `retryMode` of the RetryStageExecution that began this attempt (`FAILED_ACTIONS`:
    /// the actions that succeeded in the previous attempt are not run again).
    #[serde(default)]
    pub retry_mode: Option<String>,
    /// What began this attempt when it is a retry: `ManualStageRetry` (RetryStageExecution) or
    /// `AutomatedStageRetry` (an onFailure RETRY condition); GetPipelineState's
    /// `retryStageMetadata.latestRetryTrigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_trigger: Option<String>,
    /// The stage conditions evaluated in this attempt, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionRun>,
    /// Which `enterStage` task entered this attempt (a digest of its task token, never the
    /// token): the same task delivered again is answered from this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_by: Option<String>,
}

/// Everything recorded about one execution, read at once.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionSnapshot {
    /// The execution.
    pub execution: PipelineExecution,
    /// Its stage executions.
    pub stages: Vec<StageExecution>,
    /// Its action executions (every attempt).
    pub actions: Vec<ActionExecution>,
}

/// The most an action record's JSON may take: DynamoDB caps an item at 400 KB, and the item
/// holds a few attributes besides the record.
pub const MAX_RECORD_BYTES: usize = 350_000;

/// The most of an error message kept once a record had to be shortened.
const SHORT_MESSAGE_CHARS: usize = 4_096;

impl ActionExecution {
    /// Make the record's JSON fit in `max` bytes, whatever the action printed or exported (JSON
    /// escaping can grow a control character sixfold): the log tail is cut from the front, then
    /// the error message shortened; when the output variables alone are too big, they are
    /// dropped and the action fails, saying so (its whole log stays at [`Self::log_location`]).
    pub fn fit(&mut self, max: usize) {
        let size = |r: &ActionExecution| serde_json::to_string(r).map_or(usize::MAX, |t| t.len());
        let mut excess = size(self).saturating_sub(max);
        if excess == 0 {
            return;
        }
        if let Some(tail) = &mut self.log_tail {
            // Keep the end of the log: as many of its last characters as the room left holds,
            // counted as JSON writes them.
            let encoded: usize = tail.chars().map(json_len).sum();
            let room = encoded.saturating_sub(excess);
            let (mut kept, mut start) = (0, tail.len());
            for (i, c) in tail.char_indices().rev() {
                if kept + json_len(c) > room {
                    break;
                }
                kept += json_len(c);
                start = i;
            }
            tail.replace_range(..start, "");
            excess = size(self).saturating_sub(max);
            if excess == 0 {
                return;
            }
        }
        if let Some(details) = &mut self.output.execution_result.error_details {
            if details.message.chars().count() > SHORT_MESSAGE_CHARS {
                details.message = details.message.chars().take(SHORT_MESSAGE_CHARS).collect();
                excess = size(self).saturating_sub(max);
                if excess == 0 {
                    return;
                }
            }
        }
        let variables = serde_json::to_string(&self.output.output_variables).map_or(0, |t| t.len());
        self.output.output_variables.clear();
        self.output.output_artifacts.clear();
        self.status = ActionExecutionStatus::Failed;
        self.output.execution_result.error_details = Some(ErrorDetails {
            code: FailureType::JobFailed.into(),
            message: format!(
                "the action's results take {} bytes once recorded (output variables {variables}), \
                 more than the {max} an action record holds; its output variables and artifacts \
                 were not kept",
                size(self).saturating_add(excess)
            ),
        });
        if size(self) > max {
            // What is left is the action's own declaration-sized data: keep no log either.
            self.log_tail = None;
        }
    }
}

/// How many bytes `c` takes inside a JSON string as serde_json writes it.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

impl ExecutionSnapshot {
    /// The latest attempt of `stage`/`action`.
    pub fn latest_action(&self, stage: &str, action: &str) -> Option<&ActionExecution> {
        self.actions
            .iter()
            .filter(|a| a.stage_name == stage && a.action_name == action)
            .max_by_key(|a| a.attempt)
    }

    /// The latest attempt of `stage`.
    pub fn stage(&self, stage: &str) -> Option<&StageExecution> {
        self.stages
            .iter()
            .filter(|s| s.stage_name == stage)
            .max_by_key(|s| s.attempt)
    }

    /// The artifacts produced so far, by name, from the latest succeeded run of each action.
    pub fn artifacts(&self) -> BTreeMap<String, ArtifactLocation> {
        self.latest_succeeded()
            .flat_map(|a| a.output.output_artifacts.iter())
            .map(|d| (d.name.clone(), d.s3_location.clone()))
            .collect()
    }

    /// Output variables so far, by namespace.
    pub fn namespaces(
        &self,
        declaration: &PipelineDeclaration,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for run in self.latest_succeeded() {
            let namespace = declaration
                .stages
                .iter()
                .find(|s| s.name == run.stage_name)
                .and_then(|s| s.actions.iter().find(|a| a.name == run.action_name))
                .and_then(|a| a.namespace.clone());
            if let Some(ns) = namespace {
                out.insert(ns, run.output.output_variables.clone());
            }
        }
        out
    }

    fn latest_succeeded(&self) -> impl Iterator<Item = &ActionExecution> {
        let mut latest: BTreeMap<(&str, &str), &ActionExecution> = BTreeMap::new();
        for a in &self.actions {
            let key = (a.stage_name.as_str(), a.action_name.as_str());
            if latest.get(&key).is_none_or(|l| l.attempt < a.attempt) {
                latest.insert(key, a);
            }
        }
        latest
            .into_values()
            .filter(|a| a.status == ActionExecutionStatus::Succeeded)
    }
}

/// The object key of an output artifact: `<pipeline>/<artifact>/<id>.zip` (DESIGN.md). S3 keys
/// allow the characters of pipeline and artifact names as they are.
pub fn artifact_key(pipeline: &str, artifact: &str, id: &str) -> String {
    format!("{pipeline}/{artifact}/{id}.zip")
}

/// Where the whole log of action execution `id` of `pipeline` goes in the artifact bucket:
/// `<pipeline>/logs/<id>.log` (never an artifact's key: those end in `.zip`).
pub fn log_key(pipeline: &str, id: &str) -> String {
    format!("{pipeline}/logs/{id}.log")
}

/// Where a condition sits (`ConditionType` plus `ON_FAILURE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionKind {
    /// `beforeEntry`.
    #[serde(rename = "BEFORE_ENTRY")]
    BeforeEntry,
    /// `onSuccess`.
    #[serde(rename = "ON_SUCCESS")]
    OnSuccess,
    /// `onFailure`.
    #[serde(rename = "ON_FAILURE")]
    OnFailure,
}

/// One rule's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRun {
    /// The rule's name.
    pub rule_name: String,
    /// `Succeeded` or `Failed`.
    pub status: String,
    /// What it found.
    pub summary: String,
    /// When, seconds since the epoch.
    pub at: f64,
}

/// One condition's run.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRun {
    /// Where it sits.
    pub kind: ConditionKind,
    /// `Succeeded` (its rules passed), `Failed`, or `Overridden` (OverrideStageCondition).
    pub status: String,
    /// Its rules' summaries, or what was done.
    pub summary: String,
    /// The result it applied, if any (`FAIL`, `SKIP`, `ROLLBACK`, `RETRY`).
    #[serde(default)]
    pub applied: Option<ConditionResult>,
    /// Its rules.
    #[serde(default)]
    pub rules: Vec<RuleRun>,
    /// When.
    pub at: f64,
}

impl StageExecution {
    /// True when a condition failed this attempt (so `onFailure` does not apply on top).
    pub fn condition_failed(&self) -> bool {
        self.conditions.iter().any(|c| {
            c.kind != ConditionKind::OnFailure && c.status == "Failed" && c.applied.is_some()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_types_keep_codepipelines_names() {
        let names: Vec<String> = FailureType::ALL
            .iter()
            .map(|t| serde_json::to_string(t).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"JobFailed\"",
                "\"ConfigurationError\"",
                "\"PermissionError\"",
                "\"RevisionOutOfSync\"",
                "\"RevisionUnavailable\"",
                "\"SystemUnavailable\"",
            ]
        );
        for t in FailureType::ALL {
            assert_eq!(t.as_str().parse::<FailureType>(), Ok(*t));
        }
        assert_eq!(
            "Oops".parse::<FailureType>().unwrap_err().to_string(),
            "\"Oops\" is not one of JobFailed, ConfigurationError, PermissionError, \
             RevisionOutOfSync, RevisionUnavailable, SystemUnavailable"
        );
    }

    #[test]
    fn error_details_read_and_write_as_before() {
        for code in [
            "JobFailed",
            "ConfigurationError",
            "TimedOut",
            "Abandoned",
            "SomethingElse",
            "",
        ] {
            let text = format!(r#"{{"code":"{code}","message":"m"}}"#);
            let details: ErrorDetails = serde_json::from_str(&text).unwrap();
            assert_eq!(details.code.as_str(), code);
            assert_eq!(details.code.to_string(), code);
            assert_eq!(serde_json::to_string(&details).unwrap(), text);
        }
        let read = |code: &str| ErrorCode::from(code.to_string());
        assert_eq!(read("JobFailed"), FailureType::JobFailed.into());
        assert_eq!(read("TimedOut"), ErrorCode::TimedOut);
        assert_eq!(read("Abandoned"), ErrorCode::Abandoned);
        assert_eq!(read("jobfailed"), ErrorCode::Other("jobfailed".into()));
    }
}
