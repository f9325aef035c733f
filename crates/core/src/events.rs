//! CodePipeline's state-change events, built as plain data for EventBridge.
//!
//! Every pipeline, stage and action state change is published with CodePipeline's own
//! `detail-type`s and `detail` members (CodePipeline User Guide, "Monitoring CodePipeline
//! events"), so rules and consumers written for CodePipeline work on Pipewright's events once
//! their `source` pattern says `pipewright` (`aws.*` sources are reserved for AWS):
//!
//! | builder | `detail-type` | `state` |
//! | --- | --- | --- |
//! | [`pipeline_event`] | `CodePipeline Pipeline Execution State Change` | [`PipelineState`] |
//! | [`stage_event`] | `CodePipeline Stage Execution State Change` | [`StageState`] |
//! | [`action_event`] | `CodePipeline Action Execution State Change` | [`ActionState`] |
//!
//! A builder takes a small input of ids and names ([`PipelineEventInput`], [`StageEventInput`],
//! [`ActionEventInput`], each with the [`ExecutionRef`] they share) and returns an
//! [`EventEntry`]: what `PutEvents` takes. [`EventEntry::envelope`] shows the event as a
//! rule's target receives it.
//!
//! ```
//! use pipewright_core::events::{pipeline_arn, pipeline_event, ExecutionRef, PipelineEventInput, PipelineState};
//!
//! let execution = ExecutionRef {
//!     pipeline_arn: pipeline_arn("us-east-1", "123456789012", "app"),
//!     pipeline: "app".into(),
//!     pipeline_version: 3,
//!     execution_id: "0d1b8c1e-7d6c-4e5e-9a43-5f7c2f0b6a10".into(),
//!     attempt: 1,
//! };
//! let entry = pipeline_event(&PipelineEventInput {
//!     execution,
//!     state: PipelineState::Succeeded,
//!     start_time: None,
//!     trigger: None,
//!     stop_comments: None,
//! });
//! assert_eq!(entry.source, "pipewright");
//! assert_eq!(entry.detail_type, "CodePipeline Pipeline Execution State Change");
//! assert_eq!(entry.resources, ["arn:aws:codepipeline:us-east-1:123456789012:app"]);
//! assert_eq!(entry.detail["state"], "SUCCEEDED");
//! assert_eq!(entry.detail["version"], 3);
//! ```
//!
//! # The `detail` members
//!
//! All events: `pipeline`, `execution-id`, `state`, `version` (the pipeline's version, an
//! integer), `pipeline-execution-attempt` (1, then one more for each retry) and `start-time`
//! when known. Pipeline events add `execution-trigger` (`trigger-type`, `trigger-detail`, and
//! for Git triggers members such as `branch-name` / `tag-name` and `commit-id`) and
//! `stop-execution-comments`; stage events add `stage` and, after a retry,
//! `stage-last-retry-attempt-time`; action events add `stage`, `action`, `action-execution-id`,
//! `region` (the action's), `type {owner, category, provider, version}`, `input-artifacts` /
//! `output-artifacts` as `[{name, s3location {bucket, key}}]` (left out when empty) and
//! `execution-result {external-execution-url, external-execution-summary,
//! external-execution-id, error-code}`.
//!
//! Where CodePipeline and the `aws_lambda_events` crate's `codepipeline_cloudwatch` types
//! disagree, Pipewright writes what both read:
//!
//! - `version` and `pipeline-execution-attempt` are JSON integers. CodePipeline's
//!   documentation shows them as `1.0`; `aws_lambda_events` reads `version` as an `i64`, which
//!   refuses `1.0`.
//!
//! `type.version` is the string CodePipeline sends (`"1"`), so a rule written for CodePipeline
//! (`"type": {"version": ["1"]}`) matches; `aws_lambda_events` reads it as an `i64`, so a
//! consumer using that crate for action events must read `type.version` itself.
//!
//! Events are published at least once; consumers must tolerate duplicates.
//!
//! # Which state changes happen
//!
//! [`transition_allowed`], [`stage_transition_allowed`] and [`action_transition_allowed`]
//! encode the order of events CodePipeline emits for one execution, for invariant tests.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::declaration::{wire_enum, ActionTypeId};

/// The `source` of every event Pipewright publishes (`aws.codepipeline` is reserved to AWS).
pub const SOURCE: &str = "pipewright";

/// `detail-type` of pipeline execution events.
pub const PIPELINE_DETAIL_TYPE: &str = "CodePipeline Pipeline Execution State Change";

/// `detail-type` of stage execution events.
pub const STAGE_DETAIL_TYPE: &str = "CodePipeline Stage Execution State Change";

/// `detail-type` of action execution events.
pub const ACTION_DETAIL_TYPE: &str = "CodePipeline Action Execution State Change";

wire_enum! {
    /// The `state` of a pipeline execution event.
    PipelineState {
        /// The execution started (and is running).
        Started => "STARTED",
        /// The execution completed successfully.
        Succeeded => "SUCCEEDED",
        /// A failed or stopped execution is running again after `RetryStageExecution`.
        Resumed => "RESUMED",
        /// The execution did not complete successfully.
        Failed => "FAILED",
        /// The execution was canceled because the pipeline structure was updated.
        Canceled => "CANCELED",
        /// A newer execution went ahead while this one waited for the next stage.
        Superseded => "SUPERSEDED",
        /// A stop (and wait, or and abandon) was requested; in-progress actions are finishing.
        Stopping => "STOPPING",
        /// The stop is complete.
        Stopped => "STOPPED",
    }
}

wire_enum! {
    /// The `state` of a stage execution event.
    StageState {
        /// The stage started (and is running).
        Started => "STARTED",
        /// The stage completed successfully.
        Succeeded => "SUCCEEDED",
        /// A failed or stopped stage is running again after `RetryStageExecution`.
        Resumed => "RESUMED",
        /// The stage did not complete successfully.
        Failed => "FAILED",
        /// The stage was canceled because the pipeline structure was updated.
        Canceled => "CANCELED",
        /// The execution is stopping; the stage's in-progress actions are finishing.
        Stopping => "STOPPING",
        /// The stop is complete.
        Stopped => "STOPPED",
        /// Its beforeEntry condition skipped the stage (result SKIP): nothing in it ran, and
        /// the execution went on to the next stage.
        Skipped => "SKIPPED",
    }
}

wire_enum! {
    /// The `state` of an action execution event.
    ActionState {
        /// The action started (and is running).
        Started => "STARTED",
        /// The action completed successfully.
        Succeeded => "SUCCEEDED",
        /// The action failed (for an approval: rejected, or misconfigured).
        Failed => "FAILED",
        /// The action was canceled because the pipeline structure was updated.
        Canceled => "CANCELED",
        /// The action was abandoned by a stop-and-abandon request.
        Abandoned => "ABANDONED",
    }
}

wire_enum! {
    /// `execution-trigger.trigger-type`: what started the execution (CodePipeline's
    /// `ExecutionTrigger.triggerType` values).
    TriggerType {
        /// The pipeline was created (or updated) and ran.
        CreatePipeline => "CreatePipeline",
        /// A `StartPipelineExecution` call.
        StartPipelineExecution => "StartPipelineExecution",
        /// A source action's periodic check.
        PollForSourceChanges => "PollForSourceChanges",
        /// A webhook (V1 triggers).
        Webhook => "Webhook",
        /// An EventBridge event (source change, schedule).
        CloudWatchEvent => "CloudWatchEvent",
        /// A `PutActionRevision` call.
        PutActionRevision => "PutActionRevision",
        /// A Git trigger (V2 pipelines: push, pull request, tag).
        WebhookV2 => "WebhookV2",
        /// A `RollbackStage` call.
        ManualRollback => "ManualRollback",
        /// A rollback on stage failure.
        AutomatedRollback => "AutomatedRollback",
    }
}

/// `detail.event-id`: the stable id of the state change ([`EventEntry::stable_id`]), added by
/// Pipewright to CodePipeline's members.
pub const EVENT_ID: &str = "event-id";

/// The EventBridge `PutEvents` entry for one state change. The caller adds the bus name.
/// Serialized (as the outbox keeps it) with `PutEvents`' member names in kebab case:
/// `source`, `detail-type`, `resources`, `detail`, `time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventEntry {
    /// Always [`SOURCE`].
    pub source: String,
    /// One of [`PIPELINE_DETAIL_TYPE`], [`STAGE_DETAIL_TYPE`], [`ACTION_DETAIL_TYPE`].
    pub detail_type: String,
    /// The pipeline's ARN, alone.
    pub resources: Vec<String>,
    /// CodePipeline's `detail` object (`PutEvents` takes it as a JSON string:
    /// `detail.to_string()`).
    pub detail: Value,
    /// When the change happened, RFC 3339 (see [`format_time`]); EventBridge uses the time it
    /// receives the entry when this is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl EventEntry {
    fn new(detail_type: &str, pipeline_arn: &str, detail: Map<String, Value>) -> Self {
        EventEntry {
            source: SOURCE.to_string(),
            detail_type: detail_type.to_string(),
            resources: vec![pipeline_arn.to_string()],
            detail: Value::Object(detail),
            time: None,
        }
    }

    /// The same entry with `time` set.
    pub fn with_time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }

    /// The same entry as the state change recorded at `epoch_seconds`: `time` set
    /// ([`format_time`]) and `detail.event-id` set to [`EventEntry::stable_id`], the id
    /// consumers de-duplicate by (EventBridge's own `id` differs on every delivery).
    pub fn at(mut self, epoch_seconds: f64) -> Self {
        self.time = Some(format_time(epoch_seconds));
        let id = self.stable_id(epoch_seconds);
        if let Value::Object(detail) = &mut self.detail {
            detail.insert(EVENT_ID.into(), id.into());
        }
        self
    }

    /// `detail.event-id`, when the entry has one ([`EventEntry::at`]).
    pub fn event_id(&self) -> Option<&str> {
        self.detail.get(EVENT_ID).and_then(Value::as_str)
    }

    /// The id of the state change this entry reports, the same however often it is built from
    /// the same record: a UUID-shaped digest of the `detail-type`, `execution-id`,
    /// `pipeline-execution-attempt`, `stage`, `action-execution-id`, `state` and the instant of
    /// the change (to the millisecond). A state change written once has one id; the outbox
    /// delivers it at least once, every copy with that id.
    pub fn stable_id(&self, epoch_seconds: f64) -> String {
        let member = |name: &str| match self.detail.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        digest_uuid(&[
            &self.detail_type,
            &member("execution-id"),
            &member("pipeline-execution-attempt"),
            &member("stage"),
            &member("action-execution-id"),
            &member("state"),
            &instant(epoch_seconds).timestamp_millis().to_string(),
        ])
    }

    /// The event as EventBridge delivers it to a rule's target: `version` `"0"`, the event `id`,
    /// `detail-type`, `source`, `account`, `time` (the entry's, or `received_at`), `region`,
    /// `resources`, `detail`. For local delivery and tests; EventBridge builds this itself.
    pub fn envelope(&self, id: &str, account: &str, region: &str, received_at: &str) -> Value {
        json!({
            "version": "0",
            "id": id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": account,
            "time": self.time.as_deref().unwrap_or(received_at),
            "region": region,
            "resources": self.resources,
            "detail": self.detail,
        })
    }
}

/// Which pipeline execution (and which attempt of it) an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRef {
    /// The pipeline's ARN ([`pipeline_arn`]): the event's only resource.
    pub pipeline_arn: String,
    /// `pipeline`: the pipeline's name.
    pub pipeline: String,
    /// `version`: the version of the pipeline declaration the execution runs.
    pub pipeline_version: u32,
    /// `execution-id`: the pipeline execution id.
    pub execution_id: String,
    /// `pipeline-execution-attempt`: 1 for the first run, one more for each retry.
    pub attempt: u32,
}

/// `execution-trigger`: what started the execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionTrigger {
    /// `trigger-type`.
    pub trigger_type: TriggerType,
    /// `trigger-detail`: e.g. the caller's ARN for `StartPipelineExecution`, the rule or
    /// webhook ARN for events and webhooks.
    pub trigger_detail: Option<String>,
    /// Further members CodePipeline adds for Git-triggered executions, by their event names:
    /// `branch-name` or `tag-name`, `commit-id`, `commit-message`, `full-repository-name`,
    /// `provider-type`, `connection-arn`, `author-id`, `author-display-name`, `author-email`,
    /// `author-date`. `trigger-type` and `trigger-detail` here are ignored.
    pub git: BTreeMap<String, String>,
}

/// Input of [`pipeline_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineEventInput {
    /// The execution.
    pub execution: ExecutionRef,
    /// `state`.
    pub state: PipelineState,
    /// `start-time`: when the execution started, RFC 3339 with milliseconds
    /// ([`format_time_millis`]).
    pub start_time: Option<String>,
    /// `execution-trigger`. CodePipeline sends it on `STARTED` (and, for Git triggers, on the
    /// later events too).
    pub trigger: Option<ExecutionTrigger>,
    /// `stop-execution-comments`: the `reason` of `StopPipelineExecution` (on `STOPPING`).
    pub stop_comments: Option<String>,
}

/// Input of [`stage_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageEventInput {
    /// The execution.
    pub execution: ExecutionRef,
    /// `stage`: the stage's name.
    pub stage: String,
    /// `state`.
    pub state: StageState,
    /// `start-time`: when the pipeline execution started, RFC 3339 with milliseconds.
    pub start_time: Option<String>,
    /// `stage-last-retry-attempt-time`: when the stage was last retried; CodePipeline sends
    /// it on every stage event after a retry.
    pub last_retry_time: Option<String>,
}

/// An artifact in `input-artifacts` / `output-artifacts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    /// `name`: the artifact's name in the declaration.
    pub name: String,
    /// `s3location.bucket`.
    pub bucket: String,
    /// `s3location.key`.
    pub key: String,
}

/// `execution-result`: what the action's provider reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionResult {
    /// `external-execution-url`: a link to the work (build, deployment, commit, logs).
    pub external_execution_url: Option<String>,
    /// `external-execution-summary`: a one-line summary (commit message, failure reason).
    pub external_execution_summary: Option<String>,
    /// `external-execution-id`: the provider's id for the work (commit id, build id).
    pub external_execution_id: Option<String>,
    /// `error-code`: on failure, CodePipeline's `FailureDetails.type` (e.g. `JobFailed`).
    pub error_code: Option<String>,
}

/// Input of [`action_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEventInput {
    /// The execution.
    pub execution: ExecutionRef,
    /// `stage`: the stage's name.
    pub stage: String,
    /// `action`: the action's name.
    pub action: String,
    /// `action-execution-id`: this run of the action (a retry is a new action execution).
    pub action_execution_id: String,
    /// `state`.
    pub state: ActionState,
    /// `region`: where the action runs (the pipeline's region unless the action names one).
    pub region: String,
    /// `type`: the action's `actionTypeId`.
    pub action_type: ActionTypeId,
    /// `start-time`: when the action execution started, RFC 3339 with milliseconds.
    pub start_time: Option<String>,
    /// `input-artifacts` (CodePipeline sends them on `STARTED`); left out when empty.
    pub input_artifacts: Vec<ArtifactRef>,
    /// `output-artifacts` (CodePipeline sends them on `SUCCEEDED`); left out when empty.
    pub output_artifacts: Vec<ArtifactRef>,
    /// `execution-result` (on `SUCCEEDED` and `FAILED`).
    pub result: Option<ExecutionResult>,
}

/// The AWS partition of `region`: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, `aws-iso` /
/// `aws-iso-b` for `us-iso-*` / `us-isob-*`, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// `arn:<partition>:codepipeline:<region>:<account>:<name>`, the partition following the
/// region (`aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`, `aws-iso` / `aws-iso-b` for
/// `us-iso-*` / `us-isob-*`, else `aws`).
pub fn pipeline_arn(region: &str, account: &str, name: &str) -> String {
    let partition = partition(region);
    format!("arn:{partition}:codepipeline:{region}:{account}:{name}")
}

/// The members every event's `detail` starts with.
fn common_detail(
    execution: &ExecutionRef,
    state: &str,
    start_time: Option<&str>,
) -> Map<String, Value> {
    let mut detail = Map::new();
    detail.insert("pipeline".into(), execution.pipeline.clone().into());
    detail.insert("execution-id".into(), execution.execution_id.clone().into());
    if let Some(start_time) = start_time {
        detail.insert("start-time".into(), start_time.into());
    }
    detail.insert("state".into(), state.into());
    detail.insert("version".into(), execution.pipeline_version.into());
    detail.insert(
        "pipeline-execution-attempt".into(),
        execution.attempt.into(),
    );
    detail
}

/// A `CodePipeline Pipeline Execution State Change` event.
pub fn pipeline_event(input: &PipelineEventInput) -> EventEntry {
    let execution = &input.execution;
    let mut detail = common_detail(execution, input.state.as_str(), input.start_time.as_deref());
    if let Some(trigger) = &input.trigger {
        let mut members: Map<String, Value> = trigger
            .git
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        members.insert("trigger-type".into(), trigger.trigger_type.as_str().into());
        match &trigger.trigger_detail {
            Some(text) => members.insert("trigger-detail".into(), text.as_str().into()),
            None => members.remove("trigger-detail"),
        };
        detail.insert("execution-trigger".into(), Value::Object(members));
    }
    if let Some(comments) = &input.stop_comments {
        detail.insert("stop-execution-comments".into(), comments.as_str().into());
    }
    EventEntry::new(PIPELINE_DETAIL_TYPE, &execution.pipeline_arn, detail)
}

/// A UUID-shaped digest of `parts` (a version 8, custom, UUID of RFC 9562): the same parts give
/// the same id, different lists of parts different ids.
pub fn digest_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different lists hash alike.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.finalize()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A `CodePipeline Stage Execution State Change` event.
pub fn stage_event(input: &StageEventInput) -> EventEntry {
    let execution = &input.execution;
    let mut detail = common_detail(execution, input.state.as_str(), input.start_time.as_deref());
    detail.insert("stage".into(), input.stage.as_str().into());
    if let Some(time) = &input.last_retry_time {
        detail.insert("stage-last-retry-attempt-time".into(), time.as_str().into());
    }
    EventEntry::new(STAGE_DETAIL_TYPE, &execution.pipeline_arn, detail)
}

/// A `CodePipeline Action Execution State Change` event.
pub fn action_event(input: &ActionEventInput) -> EventEntry {
    let execution = &input.execution;
    let mut detail = common_detail(execution, input.state.as_str(), input.start_time.as_deref());
    detail.insert("stage".into(), input.stage.as_str().into());
    detail.insert("action".into(), input.action.as_str().into());
    detail.insert(
        "action-execution-id".into(),
        input.action_execution_id.as_str().into(),
    );
    detail.insert("region".into(), input.region.as_str().into());
    let action_type = &input.action_type;
    detail.insert(
        "type".into(),
        json!({
            "owner": action_type.owner.as_str(),
            "category": action_type.category.as_str(),
            "provider": action_type.provider,
            "version": action_type.version,
        }),
    );
    if !input.input_artifacts.is_empty() {
        detail.insert("input-artifacts".into(), artifacts(&input.input_artifacts));
    }
    if !input.output_artifacts.is_empty() {
        detail.insert(
            "output-artifacts".into(),
            artifacts(&input.output_artifacts),
        );
    }
    if let Some(result) = &input.result {
        let mut members = Map::new();
        let fields = [
            ("external-execution-url", &result.external_execution_url),
            (
                "external-execution-summary",
                &result.external_execution_summary,
            ),
            ("external-execution-id", &result.external_execution_id),
            ("error-code", &result.error_code),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                members.insert(name.into(), value.as_str().into());
            }
        }
        detail.insert("execution-result".into(), Value::Object(members));
    }
    EventEntry::new(ACTION_DETAIL_TYPE, &execution.pipeline_arn, detail)
}

/// `type.version`: an integer when the version is a plain decimal number (see the module
/// docs), else the string.
fn artifacts(list: &[ArtifactRef]) -> Value {
    list.iter()
        .map(|a| json!({"name": a.name, "s3location": {"bucket": a.bucket, "key": a.key}}))
        .collect()
}

/// Whether CodePipeline emits a pipeline event in state `to` right after one in state `from`
/// for the same execution (`from` is `None` before the first event).
///
/// - The first event is `STARTED`.
/// - A running execution (`STARTED`, or `RESUMED` after a retry) ends `SUCCEEDED`, `FAILED`,
///   `CANCELED` (the pipeline was updated) or `SUPERSEDED` (a newer execution went ahead while
///   it waited for a stage), or starts stopping (`STOPPING`).
/// - `STOPPING` ends `STOPPED`, whether the stop waits for in-progress actions or abandons
///   them (a second, abandoning stop request changes nothing in the events).
/// - `FAILED` and `STOPPED` executions can be retried (`RetryStageExecution`): `RESUMED`.
/// - `SUCCEEDED`, `CANCELED` and `SUPERSEDED` are final.
///
/// A state never follows itself: a repeated event is a duplicate delivery, not a change.
pub fn transition_allowed(from: Option<PipelineState>, to: PipelineState) -> bool {
    use PipelineState::*;
    match from {
        None => to == Started,
        Some(Started | Resumed) => {
            matches!(to, Succeeded | Failed | Canceled | Superseded | Stopping)
        }
        Some(Stopping) => to == Stopped,
        Some(Failed | Stopped) => to == Resumed,
        Some(Succeeded | Canceled | Superseded) => false,
    }
}

/// Whether CodePipeline emits a stage event in state `to` right after one in state `from` for
/// the same stage of the same execution (`from` is `None` before the first event).
///
/// The same as [`transition_allowed`] without `SUPERSEDED` (an execution is superseded
/// between stages, never inside one): `STARTED` first (or `SKIPPED`, final: its beforeEntry
/// condition skipped it); a running stage (`STARTED`, `RESUMED`)
/// ends `SUCCEEDED`, `FAILED` or `CANCELED`, or goes `STOPPING` then `STOPPED`; `FAILED` and
/// `STOPPED` stages are `RESUMED` by a retry; `SUCCEEDED` and `CANCELED` are final.
pub fn stage_transition_allowed(from: Option<StageState>, to: StageState) -> bool {
    use StageState::*;
    match from {
        None => matches!(to, Started | Skipped),
        Some(Started | Resumed) => matches!(to, Succeeded | Failed | Canceled | Stopping),
        Some(Stopping) => to == Stopped,
        Some(Failed | Stopped) => to == Resumed,
        Some(Succeeded | Canceled | Skipped) => false,
    }
}

/// Whether CodePipeline emits an action event in state `to` right after one in state `from`
/// for the same action execution (`action-execution-id`; `from` is `None` before the first
/// event).
///
/// `STARTED` first, then exactly one of `SUCCEEDED`, `FAILED`, `CANCELED` (the pipeline was
/// updated) or `ABANDONED` (stop and abandon). Every end is final: retrying the stage runs the
/// action again as a new action execution, which starts over at `STARTED`.
pub fn action_transition_allowed(from: Option<ActionState>, to: ActionState) -> bool {
    use ActionState::*;
    match from {
        None => to == Started,
        Some(Started) => matches!(to, Succeeded | Failed | Canceled | Abandoned),
        Some(Succeeded | Failed | Canceled | Abandoned) => false,
    }
}

/// Seconds since the epoch as EventBridge writes an event's `time`: `2020-01-24T22:03:07Z`.
pub fn format_time(epoch_seconds: f64) -> String {
    instant(epoch_seconds).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Seconds since the epoch as CodePipeline writes `start-time`: `2023-10-26T13:49:39.208Z`
/// (rounded to the millisecond).
pub fn format_time_millis(epoch_seconds: f64) -> String {
    instant(epoch_seconds).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `epoch_seconds` as a UTC instant, rounded to the millisecond. No panic on any input: NaN is
/// the epoch, and instants beyond chrono's range (about 262,000 years either way) stop at its
/// ends.
pub(crate) fn instant(epoch_seconds: f64) -> DateTime<Utc> {
    // `as` saturates (and maps NaN to 0).
    let millis = (epoch_seconds * 1000.0).round() as i64;
    DateTime::from_timestamp_millis(millis).unwrap_or(if millis < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;
    use crate::declaration::{ActionCategory, ActionOwner};
    use proptest::prelude::*;

    const ARN: &str = "arn:aws:codepipeline:us-east-1:123456789012:app";
    const EXECUTION_ID: &str = "12345678-1234-5678-abcd-12345678abcd";

    fn execution() -> ExecutionRef {
        ExecutionRef {
            pipeline_arn: pipeline_arn("us-east-1", "123456789012", "app"),
            pipeline: "app".into(),
            pipeline_version: 3,
            execution_id: EXECUTION_ID.into(),
            attempt: 1,
        }
    }

    fn action_type(category: ActionCategory, provider: &str, version: &str) -> ActionTypeId {
        ActionTypeId {
            category,
            owner: ActionOwner::Aws,
            provider: provider.into(),
            version: version.into(),
        }
    }

    #[test]
    fn pipeline_started_event_is_codepipelines_shape() {
        let entry = pipeline_event(&PipelineEventInput {
            execution: execution(),
            state: PipelineState::Started,
            start_time: Some("2023-10-26T13:49:39.208Z".into()),
            trigger: Some(ExecutionTrigger {
                trigger_type: TriggerType::StartPipelineExecution,
                trigger_detail: Some("arn:aws:sts::123456789012:assumed-role/Admin/me".into()),
                git: BTreeMap::new(),
            }),
            stop_comments: None,
        });
        assert_eq!(entry.source, "pipewright");
        assert_eq!(
            entry.detail_type,
            "CodePipeline Pipeline Execution State Change"
        );
        assert_eq!(entry.resources, vec![ARN.to_string()]);
        assert_eq!(entry.time, None);
        assert_eq!(
            entry.detail,
            json!({
                "pipeline": "app",
                "execution-id": EXECUTION_ID,
                "start-time": "2023-10-26T13:49:39.208Z",
                "execution-trigger": {
                    "trigger-type": "StartPipelineExecution",
                    "trigger-detail": "arn:aws:sts::123456789012:assumed-role/Admin/me"
                },
                "state": "STARTED",
                "version": 3,
                "pipeline-execution-attempt": 1
            })
        );
    }

    #[test]
    fn pipeline_stopping_event_carries_the_comments_and_git_trigger_members() {
        let mut git = BTreeMap::new();
        git.insert("branch-name".to_string(), "main".to_string());
        git.insert("commit-id".to_string(), "8cf40f2".to_string());
        git.insert("trigger-type".to_string(), "ignored".to_string());
        let mut execution = execution();
        execution.attempt = 2;
        let entry = pipeline_event(&PipelineEventInput {
            execution,
            state: PipelineState::Stopping,
            start_time: None,
            trigger: Some(ExecutionTrigger {
                trigger_type: TriggerType::WebhookV2,
                trigger_detail: None,
                git,
            }),
            stop_comments: Some("Stopping the pipeline for an update".into()),
        })
        .with_time("2023-10-26T13:50:53Z");
        assert_eq!(entry.time.as_deref(), Some("2023-10-26T13:50:53Z"));
        assert_eq!(
            entry.detail,
            json!({
                "pipeline": "app",
                "execution-id": EXECUTION_ID,
                "execution-trigger": {
                    "trigger-type": "WebhookV2",
                    "branch-name": "main",
                    "commit-id": "8cf40f2"
                },
                "state": "STOPPING",
                "version": 3,
                "pipeline-execution-attempt": 2,
                "stop-execution-comments": "Stopping the pipeline for an update"
            })
        );
    }

    #[test]
    fn stage_event_is_codepipelines_shape() {
        let entry = stage_event(&StageEventInput {
            execution: execution(),
            stage: "Build".into(),
            state: StageState::Resumed,
            start_time: Some("2023-10-26T13:49:39.208Z".into()),
            last_retry_time: Some("2023-10-26T14:14:56.305Z".into()),
        });
        assert_eq!(
            entry.detail_type,
            "CodePipeline Stage Execution State Change"
        );
        assert_eq!(entry.resources, vec![ARN.to_string()]);
        assert_eq!(
            entry.detail,
            json!({
                "pipeline": "app",
                "execution-id": EXECUTION_ID,
                "start-time": "2023-10-26T13:49:39.208Z",
                "stage-last-retry-attempt-time": "2023-10-26T14:14:56.305Z",
                "stage": "Build",
                "state": "RESUMED",
                "version": 3,
                "pipeline-execution-attempt": 1
            })
        );
    }

    #[test]
    fn action_event_is_codepipelines_shape() {
        let entry = action_event(&ActionEventInput {
            execution: execution(),
            stage: "Deploy".into(),
            action: "Upload".into(),
            action_execution_id: "47f821c5-a902-44b2-ae61-b878d31ecd21".into(),
            state: ActionState::Failed,
            region: "us-west-2".into(),
            action_type: action_type(ActionCategory::Deploy, "S3", "1"),
            start_time: Some("2023-10-26T13:51:09.981Z".into()),
            input_artifacts: vec![ArtifactRef {
                name: "App".into(),
                bucket: "app-artifacts".into(),
                key: "app/App/7f3a.zip".into(),
            }],
            output_artifacts: vec![],
            result: Some(ExecutionResult {
                external_execution_url: Some("https://example.com/logs/1".into()),
                external_execution_summary: Some("Access denied on site-bucket".into()),
                external_execution_id: None,
                error_code: Some("JobFailed".into()),
            }),
        });
        assert_eq!(
            entry.detail_type,
            "CodePipeline Action Execution State Change"
        );
        assert_eq!(entry.resources, vec![ARN.to_string()]);
        assert_eq!(
            entry.detail,
            json!({
                "pipeline": "app",
                "execution-id": EXECUTION_ID,
                "start-time": "2023-10-26T13:51:09.981Z",
                "stage": "Deploy",
                "execution-result": {
                    "external-execution-url": "https://example.com/logs/1",
                    "external-execution-summary": "Access denied on site-bucket",
                    "error-code": "JobFailed"
                },
                "input-artifacts": [
                    {"name": "App", "s3location": {"bucket": "app-artifacts", "key": "app/App/7f3a.zip"}}
                ],
                "action-execution-id": "47f821c5-a902-44b2-ae61-b878d31ecd21",
                "action": "Upload",
                "state": "FAILED",
                "region": "us-west-2",
                "type": {"owner": "AWS", "category": "Deploy", "provider": "S3", "version": "1"},
                "version": 3,
                "pipeline-execution-attempt": 1
            })
        );
    }

    #[test]
    fn action_event_leaves_out_what_it_does_not_have() {
        let entry = action_event(&ActionEventInput {
            execution: execution(),
            stage: "Source".into(),
            action: "Fetch".into(),
            action_execution_id: "a1".into(),
            state: ActionState::Abandoned,
            region: "us-east-1".into(),
            action_type: ActionTypeId {
                category: ActionCategory::Source,
                owner: ActionOwner::Custom,
                provider: "Mirror".into(),
                version: "v2".into(),
            },
            start_time: None,
            input_artifacts: vec![],
            output_artifacts: vec![],
            result: None,
        });
        assert_eq!(
            entry.detail,
            json!({
                "pipeline": "app",
                "execution-id": EXECUTION_ID,
                "stage": "Source",
                "action-execution-id": "a1",
                "action": "Fetch",
                "state": "ABANDONED",
                "region": "us-east-1",
                "type": {"owner": "Custom", "category": "Source", "provider": "Mirror", "version": "v2"},
                "version": 3,
                "pipeline-execution-attempt": 1
            })
        );
    }

    #[test]
    fn envelope_is_eventbridges() {
        let entry = stage_event(&StageEventInput {
            execution: execution(),
            stage: "Build".into(),
            state: StageState::Started,
            start_time: None,
            last_retry_time: None,
        });
        let detail = entry.detail.clone();
        let received = entry.envelope("e-1", "123456789012", "us-east-1", "2024-01-01T00:00:00Z");
        assert_eq!(
            received,
            json!({
                "version": "0",
                "id": "e-1",
                "detail-type": "CodePipeline Stage Execution State Change",
                "source": "pipewright",
                "account": "123456789012",
                "time": "2024-01-01T00:00:00Z",
                "region": "us-east-1",
                "resources": [ARN],
                "detail": detail
            })
        );
        let timed = entry.with_time("2023-10-26T13:50:53Z");
        let received = timed.envelope("e-1", "123456789012", "us-east-1", "2024-01-01T00:00:00Z");
        assert_eq!(received["time"], "2023-10-26T13:50:53Z");
    }

    #[test]
    fn pipeline_arns_follow_the_partition() {
        assert_eq!(pipeline_arn("us-east-1", "123456789012", "app"), ARN);
        assert_eq!(
            pipeline_arn("cn-north-1", "123456789012", "app"),
            "arn:aws-cn:codepipeline:cn-north-1:123456789012:app"
        );
        assert_eq!(
            pipeline_arn("us-gov-west-1", "123456789012", "app"),
            "arn:aws-us-gov:codepipeline:us-gov-west-1:123456789012:app"
        );
        assert_eq!(
            pipeline_arn("us-isob-east-1", "1", "a"),
            "arn:aws-iso-b:codepipeline:us-isob-east-1:1:a"
        );
        assert_eq!(
            pipeline_arn("us-iso-east-1", "1", "a"),
            "arn:aws-iso:codepipeline:us-iso-east-1:1:a"
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(format_time(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_579_903_387.0), "2020-01-24T22:03:07Z");
        assert_eq!(
            format_time_millis(1_698_328_179.208),
            "2023-10-26T13:49:39.208Z"
        );
        assert_eq!(
            format_time_millis(1_698_328_179.999_6),
            "2023-10-26T13:49:40.000Z"
        );
        assert_eq!(format_time(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(4_107_542_399.0), "2100-02-28T23:59:59Z");
        assert_eq!(format_time(-1.0), "1969-12-31T23:59:59Z");
        assert_eq!(format_time_millis(-0.5), "1969-12-31T23:59:59.500Z");
        assert_eq!(format_time(f64::NAN), "1970-01-01T00:00:00Z");
    }

    /// Every state reachable from nothing, by allowed steps.
    fn reachable<S: Copy + Ord>(all: &[S], allowed: fn(Option<S>, S) -> bool) -> Vec<S> {
        let mut seen: Vec<S> = all.iter().copied().filter(|&s| allowed(None, s)).collect();
        let mut i = 0;
        while i < seen.len() {
            let from = seen[i];
            for &to in all {
                if allowed(Some(from), to) && !seen.contains(&to) {
                    seen.push(to);
                }
            }
            i += 1;
        }
        seen.sort();
        seen
    }

    #[test]
    fn transitions_follow_codepipeline() {
        use PipelineState as P;
        assert!(transition_allowed(None, P::Started));
        assert!(transition_allowed(Some(P::Started), P::Succeeded));
        assert!(transition_allowed(Some(P::Started), P::Stopping));
        assert!(transition_allowed(Some(P::Stopping), P::Stopped));
        assert!(transition_allowed(Some(P::Stopped), P::Resumed));
        assert!(transition_allowed(Some(P::Failed), P::Resumed));
        assert!(transition_allowed(Some(P::Resumed), P::Superseded));
        assert!(!transition_allowed(None, P::Succeeded));
        assert!(!transition_allowed(Some(P::Stopping), P::Failed));
        assert!(!transition_allowed(Some(P::Succeeded), P::Resumed));
        assert!(!transition_allowed(Some(P::Started), P::Stopped));
        assert!(!transition_allowed(Some(P::Started), P::Resumed));

        assert!(stage_transition_allowed(
            Some(StageState::Failed),
            StageState::Resumed
        ));
        assert!(!stage_transition_allowed(
            Some(StageState::Canceled),
            StageState::Resumed
        ));
        assert!(action_transition_allowed(
            Some(ActionState::Started),
            ActionState::Abandoned
        ));
        assert!(!action_transition_allowed(
            Some(ActionState::Failed),
            ActionState::Started
        ));

        // Every state is reachable, and no state follows itself.
        assert_eq!(
            reachable(PipelineState::ALL, transition_allowed),
            PipelineState::ALL.to_vec()
        );
        assert_eq!(
            reachable(StageState::ALL, stage_transition_allowed),
            StageState::ALL.to_vec()
        );
        assert_eq!(
            reachable(ActionState::ALL, action_transition_allowed),
            ActionState::ALL.to_vec()
        );
        assert!(PipelineState::ALL
            .iter()
            .all(|&s| !transition_allowed(Some(s), s)));
        assert!(StageState::ALL
            .iter()
            .all(|&s| !stage_transition_allowed(Some(s), s)));
        assert!(ActionState::ALL
            .iter()
            .all(|&s| !action_transition_allowed(Some(s), s)));
    }

    /// Serialized, a state is its upper-case wire name, and it reads back as itself.
    fn check_wire<S>(state: S) -> Result<(), TestCaseError>
    where
        S: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug + fmt::Display,
    {
        let text = serde_json::to_value(&state).unwrap();
        let name = text.as_str().expect("a JSON string").to_string();
        prop_assert_eq!(&name, &state.to_string());
        prop_assert!(!name.is_empty());
        prop_assert!(name.chars().all(|c| c.is_ascii_uppercase()), "{}", name);
        let back: S = serde_json::from_value(text).unwrap();
        prop_assert_eq!(back, state);
        Ok(())
    }

    proptest! {
        #[test]
        fn pipeline_states_round_trip_upper_case(state in prop::sample::select(PipelineState::ALL)) {
            check_wire(state)?;
        }

        #[test]
        fn stage_states_round_trip_upper_case(state in prop::sample::select(StageState::ALL)) {
            check_wire(state)?;
        }

        #[test]
        fn action_states_round_trip_upper_case(state in prop::sample::select(ActionState::ALL)) {
            check_wire(state)?;
        }

        /// Any walk of allowed pipeline transitions starts at STARTED and never leaves a final
        /// state.
        #[test]
        fn pipeline_walks_start_at_started(picks in prop::collection::vec(0usize..8, 1..20)) {
            let mut walk: Vec<PipelineState> = Vec::new();
            for pick in picks {
                let from = walk.last().copied();
                let next: Vec<PipelineState> =
                    PipelineState::ALL.iter().copied().filter(|&to| transition_allowed(from, to)).collect();
                if next.is_empty() {
                    let last = from.unwrap();
                    prop_assert!(matches!(
                        last,
                        PipelineState::Succeeded | PipelineState::Canceled | PipelineState::Superseded
                    ));
                    break;
                }
                walk.push(next[pick % next.len()]);
            }
            prop_assert_eq!(walk[0], PipelineState::Started);
        }
    }

    #[test]
    fn the_state_sets_are_codepipelines() {
        let names = |all: &[&str]| all.join(" ");
        let pipeline: Vec<&str> = PipelineState::ALL.iter().map(|s| s.as_str()).collect();
        let stage: Vec<&str> = StageState::ALL.iter().map(|s| s.as_str()).collect();
        let action: Vec<&str> = ActionState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names(&pipeline),
            "STARTED SUCCEEDED RESUMED FAILED CANCELED SUPERSEDED STOPPING STOPPED"
        );
        // CodePipeline's documented stage states, plus SKIPPED: the upper-case form of the
        // `Skipped` stage status a beforeEntry SKIP leaves (StageExecutionStatus).
        assert_eq!(
            names(&stage),
            "STARTED SUCCEEDED RESUMED FAILED CANCELED STOPPING STOPPED SKIPPED"
        );
        assert_eq!(
            names(&action),
            "STARTED SUCCEEDED FAILED CANCELED ABANDONED"
        );
    }
}
