//! StartPipelineExecution, GetPipelineExecution, ListPipelineExecutions.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use serde_with::skip_serializing_none;

use super::{check_name, parse_pipeline_execution_id, ApiError, ServiceContext};
use crate::engine::{Engine, EngineError, StartRequest};
use crate::events::TriggerType;
use crate::execution::{
    ActionExecution, ExecutionSnapshot, ExecutionTrigger, PipelineExecution, SourceRevisionOverride,
};
use crate::store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineVariable {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StartInput {
    name: String,
    #[serde(default)]
    variables: Vec<PipelineVariable>,
    client_request_token: Option<String>,
    #[serde(default)]
    source_revisions: Vec<SourceRevisionOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct GetInput {
    pipeline_name: String,
    pipeline_execution_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct StopInput {
    pipeline_name: String,
    pipeline_execution_id: String,
    #[serde(default)]
    abandon: bool,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RetryInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct TransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RollbackInput {
    pipeline_name: String,
    stage_name: String,
    target_pipeline_execution_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct OverrideInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    condition_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListInput {
    pipeline_name: String,
    max_results: Option<i64>,
    next_token: Option<String>,
    filter: Option<ExecutionFilter>,
}

/// `PipelineExecutionFilter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExecutionFilter {
    succeeded_in_stage: Option<SucceededInStage>,
}

/// `SucceededInStageFilter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SucceededInStage {
    stage_name: Option<String>,
}

/// Where a filtered listing resumes: the executions-list page holding the last execution
/// returned, and that execution (base64url JSON, opaque to callers).
#[skip_serializing_none]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilteredCursor {
    #[serde(rename = "p", default)]
    page_token: Option<String>,
    /// The last execution looked at, and its start time: the listing resumes after it in
    /// the newest-first order, even if it has been deleted since.
    #[serde(rename = "e")]
    after: String,
    #[serde(rename = "t")]
    after_start: f64,
}

/// At most this many executions are looked at per filtered call; a page may come back short
/// (even empty) with a `nextToken`, as DynamoDB-backed listings do.
const FILTER_SCAN_LIMIT: usize = 500;

pub(super) fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::PipelineNotFound(name) => ApiError::new(
            "PipelineNotFoundException",
            format!("pipeline {name} does not exist"),
        ),
        EngineError::ExecutionNotFound(id) => ApiError::new(
            "PipelineExecutionNotFoundException",
            format!("pipeline execution {id} does not exist"),
        ),
        EngineError::Invalid(message) => ApiError::validation(message),
        other => ApiError {
            kind: "InternalFailure",
            message: other.to_string(),
            server_fault: true,
        },
    }
}

/// `PipelineNotFoundException` unless `name` exists.
pub(super) async fn require_pipeline(
    engine: &Engine<'_>,
    name: &str,
) -> Result<crate::store::PipelineRecord, ApiError> {
    match engine
        .pipelines
        .get(name, None)
        .await
        .map_err(store_error)?
    {
        Some(record) => Ok(record),
        None => Err(ApiError::new(
            "PipelineNotFoundException",
            format!("pipeline {name} does not exist"),
        )),
    }
}

pub(super) fn store_error(e: StoreError) -> ApiError {
    ApiError {
        kind: "InternalFailure",
        message: e.to_string(),
        server_fault: true,
    }
}

pub(super) async fn start(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: StartInput,
) -> Result<Value, ApiError> {
    check_name("name", &input.name)?;
    if let Some(token) = &input.client_request_token {
        if token.is_empty()
            || token.len() > 128
            || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ApiError::validation(
                "clientRequestToken: 1..128 characters of letters, digits and -",
            ));
        }
    }
    if input.variables.len() > 50 {
        return Err(ApiError::validation("variables: at most 50 variables"));
    }
    if input.source_revisions.len() > 50 {
        return Err(ApiError::validation(
            "sourceRevisions: at most 50 overrides",
        ));
    }
    let request = StartRequest {
        pipeline_name: input.name.clone(),
        pipeline_execution_id: ctx.new_id.clone(),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::StartPipelineExecution,
            trigger_detail: super::caller_detail(ctx, "StartPipelineExecution"),
        },
        variables: input
            .variables
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect(),
        source_revisions: input.source_revisions,
        idempotency_key: input
            .client_request_token
            .map(|t| format!("request/{}/{t}", input.name)),
        now: ctx.now,
    };
    let started = engine
        .start_execution(request)
        .await
        .map_err(engine_error)?;
    Ok(json!({ "pipelineExecutionId": started.pipeline_execution_id }))
}

/// `PipelineExecution` as the API returns it, from everything recorded about it.
pub fn execution_json(snapshot: &ExecutionSnapshot) -> Value {
    let e = &snapshot.execution;
    let mut out = json!({
        "pipelineName": e.pipeline_name,
        "pipelineVersion": e.pipeline_version,
        "pipelineExecutionId": e.pipeline_execution_id,
        "status": e.status,
        "artifactRevisions": artifact_revisions(snapshot),
        "variables": e.variables,
        "trigger": e.trigger,
        "executionMode": e.execution_mode,
        "executionType": e.execution_type,
    });
    if let Some(summary) = &e.status_summary {
        out["statusSummary"] = json!(summary);
    }
    if let Some(rollback) = &e.rollback {
        out["rollbackMetadata"] =
            json!({ "rollbackTargetPipelineExecutionId": rollback.target_pipeline_execution_id });
    }
    out
}

/// `ArtifactRevision`s: each output artifact of a source action that fetched a revision (the
/// latest run of each), with that revision; `revisionChangeIdentifier` is the artifact's S3
/// version, `created` when the action finished.
fn artifact_revisions(snapshot: &ExecutionSnapshot) -> Vec<Value> {
    let mut latest: std::collections::BTreeMap<&str, &ActionExecution> =
        std::collections::BTreeMap::new();
    for a in snapshot
        .actions
        .iter()
        .filter(|a| a.source_revision.is_some())
    {
        let newer = latest
            .get(a.action_name.as_str())
            .is_none_or(|b| b.start_time <= a.start_time);
        if newer {
            latest.insert(a.action_name.as_str(), a);
        }
    }
    let mut out = Vec::new();
    for action in latest.values() {
        let Some(revision) = &action.source_revision else {
            continue;
        };
        for artifact in &action.output.output_artifacts {
            let mut v = json!({ "name": artifact.name, "created": action.last_update_time });
            if let Some(id) = &revision.revision_id {
                v["revisionId"] = json!(id);
            }
            if let Some(version) = &artifact.s3_location.version_id {
                v["revisionChangeIdentifier"] = json!(version);
            }
            if let Some(summary) = &revision.revision_summary {
                v["revisionSummary"] = json!(summary);
            }
            if let Some(url) = &revision.revision_url {
                v["revisionUrl"] = json!(url);
            }
            out.push(v);
        }
    }
    out
}

/// ListPipelineExecutions with `filter.succeededInStage`: the executions, newest first, whose
/// latest run of `stage` succeeded.
async fn list_succeeded_in(
    engine: &Engine<'_>,
    pipeline_name: &str,
    stage: &str,
    next_token: Option<String>,
    limit: usize,
) -> Result<Value, ApiError> {
    let invalid = || {
        ApiError::new(
            "InvalidNextTokenException",
            "nextToken: not a token this service issued for this filter",
        )
    };
    let cursor: Option<FilteredCursor> = match &next_token {
        None => None,
        Some(token) if token.is_empty() || token.len() > 2048 => return Err(invalid()),
        Some(token) => Some(
            B64.decode(token)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(invalid)?,
        ),
    };
    require_pipeline(engine, pipeline_name).await?;
    let (mut page_token, resume_after) = match cursor {
        None => (None, None),
        Some(c) => (c.page_token, Some((c.after_start, c.after))),
    };
    // Newest first: (start time in milliseconds, id) descending, as the list is kept; an
    // execution comes after the cursor when it sorts strictly below it.
    let millis = |t: f64| (t * 1000.0).round() as i64;
    let after_cursor = |e: &PipelineExecution| {
        resume_after.as_ref().is_none_or(|(start, id)| {
            millis(e.start_time)
                .cmp(&millis(*start))
                .then_with(|| e.pipeline_execution_id.as_str().cmp(id.as_str()))
                .is_lt()
        })
    };
    let mut found: Vec<Value> = Vec::new();
    let mut scanned = 0;
    loop {
        let page = engine
            .executions
            .list_executions(pipeline_name, page_token.as_deref(), limit)
            .await
            .map_err(store_error)?;
        for execution in page.items.iter().filter(|e| after_cursor(e)) {
            scanned += 1;
            let succeeded = engine
                .executions
                .snapshot(&execution.pipeline_execution_id)
                .await
                .map_err(store_error)?
                .and_then(|s| s.stage(stage).map(|r| r.status))
                == Some(crate::execution::StageExecutionStatus::Succeeded);
            if succeeded {
                found.push(summary_json(execution));
            }
            if found.len() == limit || scanned == FILTER_SCAN_LIMIT {
                let cursor = FilteredCursor {
                    page_token: page_token.clone(),
                    after: execution.pipeline_execution_id.clone(),
                    after_start: execution.start_time,
                };
                return Ok(json!({
                    "pipelineExecutionSummaries": found,
                    "nextToken": B64.encode(serde_json::to_vec(&cursor).unwrap_or_default()),
                }));
            }
        }
        match page.next_token {
            Some(token) if !page.items.is_empty() => page_token = Some(token),
            _ => return Ok(json!({ "pipelineExecutionSummaries": found })),
        }
    }
}

/// `PipelineExecutionSummary` as the API returns it.
pub fn summary_json(e: &PipelineExecution) -> Value {
    let mut out = json!({
        "pipelineExecutionId": e.pipeline_execution_id,
        "status": e.status,
        "startTime": e.start_time,
        "lastUpdateTime": e.last_update_time,
        "sourceRevisions": e.source_revisions,
        "trigger": e.trigger,
        "executionMode": e.execution_mode,
        "executionType": e.execution_type,
    });
    if let Some(summary) = &e.status_summary {
        out["statusSummary"] = json!(summary);
    }
    if let Some(reason) = &e.stop_reason {
        out["stopTrigger"] = json!({ "reason": reason });
    }
    if let Some(rollback) = &e.rollback {
        out["rollbackMetadata"] =
            json!({ "rollbackTargetPipelineExecutionId": rollback.target_pipeline_execution_id });
    }
    out
}

pub(super) async fn get(engine: &Engine<'_>, input: GetInput) -> Result<Value, ApiError> {
    check_name("pipelineName", &input.pipeline_name)?;
    parse_pipeline_execution_id("pipelineExecutionId", &input.pipeline_execution_id)?;
    let snapshot = engine
        .executions
        .snapshot(&input.pipeline_execution_id)
        .await
        .map_err(store_error)?;
    match snapshot {
        Some(s) if s.execution.pipeline_name == input.pipeline_name => {
            Ok(json!({ "pipelineExecution": execution_json(&s) }))
        }
        _ => {
            require_pipeline(engine, &input.pipeline_name).await?;
            Err(ApiError::new(
                "PipelineExecutionNotFoundException",
                format!(
                    "pipeline {} has no execution {}",
                    input.pipeline_name, input.pipeline_execution_id
                ),
            ))
        }
    }
}

/// StopPipelineExecution → `{pipelineExecutionId}`.
pub(super) async fn stop(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: StopInput,
) -> Result<Value, ApiError> {
    use crate::control::StopError;
    check_name("pipelineName", &input.pipeline_name)?;
    parse_pipeline_execution_id("pipelineExecutionId", &input.pipeline_execution_id)?;
    if let Some(reason) = &input.reason {
        if reason.chars().count() > 200 {
            return Err(ApiError::validation(format!(
                "reason: length must be 0..200, got {}",
                reason.chars().count()
            )));
        }
    }
    require_pipeline(engine, &input.pipeline_name).await?;
    let reason = input.reason.filter(|r| !r.trim().is_empty());
    match engine
        .stop_execution(
            &input.pipeline_name,
            &input.pipeline_execution_id,
            input.abandon,
            reason,
            ctx.now,
        )
        .await
    {
        Ok(()) => Ok(json!({ "pipelineExecutionId": input.pipeline_execution_id })),
        Err(StopError::NotStoppable(m)) => {
            Err(ApiError::new("PipelineExecutionNotStoppableException", m))
        }
        Err(StopError::Duplicated(m)) => Err(ApiError::new("DuplicatedStopRequestException", m)),
        Err(StopError::Engine(e)) => Err(execution_error(&input.pipeline_name, e)),
    }
}

/// RetryStageExecution → `{pipelineExecutionId}`.
pub(super) async fn retry(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: RetryInput,
) -> Result<Value, ApiError> {
    use crate::control::{RetryError, ALL_ACTIONS, FAILED_ACTIONS};
    check_name("pipelineName", &input.pipeline_name)?;
    check_name("stageName", &input.stage_name)?;
    parse_pipeline_execution_id("pipelineExecutionId", &input.pipeline_execution_id)?;
    if ![FAILED_ACTIONS, ALL_ACTIONS].contains(&input.retry_mode.as_str()) {
        return Err(ApiError::validation(format!(
            "retryMode: {:?} is not one of FAILED_ACTIONS, ALL_ACTIONS",
            input.retry_mode
        )));
    }
    let pipeline = require_pipeline(engine, &input.pipeline_name).await?;
    stage_index(&pipeline, &input.stage_name)?;
    match engine
        .retry_stage(
            &input.pipeline_name,
            &input.stage_name,
            &input.pipeline_execution_id,
            &input.retry_mode,
            ctx.now,
        )
        .await
    {
        Ok(()) => Ok(json!({ "pipelineExecutionId": input.pipeline_execution_id })),
        Err(RetryError::NotRetryable(m)) => Err(ApiError::new("StageNotRetryableException", m)),
        Err(RetryError::NotLatest(m)) => {
            Err(ApiError::new("NotLatestPipelineExecutionException", m))
        }
        Err(RetryError::Engine(e)) => Err(execution_error(&input.pipeline_name, e)),
    }
}

/// DisableStageTransition (`enabled` false) / EnableStageTransition → `{}`. An `Outbound`
/// transition of a stage is the `Inbound` transition of the next one.
pub(super) async fn transition(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: TransitionInput,
    enabled: bool,
) -> Result<Value, ApiError> {
    check_name("pipelineName", &input.pipeline_name)?;
    check_name("stageName", &input.stage_name)?;
    let reason = match (enabled, &input.reason) {
        (true, Some(_)) => {
            return Err(ApiError::validation(
                "reason: EnableStageTransition takes no reason",
            ))
        }
        (true, None) => String::new(),
        (false, None) => return Err(ApiError::validation("reason: required")),
        (false, Some(r)) => {
            let ok_chars = r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!@ ().*?-".contains(c));
            if r.is_empty() || r.chars().count() > 300 || !ok_chars {
                return Err(ApiError::validation(
                    "reason: 1..300 characters of letters, digits, spaces and ! @ ( ) . * ? -",
                ));
            }
            r.clone()
        }
    };
    let pipeline = require_pipeline(engine, &input.pipeline_name).await?;
    let stages = &pipeline.declaration.stages;
    let index = stage_index(&pipeline, &input.stage_name)?;
    let target = match input.transition_type.as_str() {
        "Inbound" if index == 0 => {
            return Err(ApiError::validation(format!(
                "transitionType: stage {} is the first stage; it has no inbound transition",
                input.stage_name
            )))
        }
        "Inbound" => index,
        "Outbound" if index + 1 == stages.len() => {
            return Err(ApiError::validation(format!(
                "transitionType: stage {} is the last stage; it has no outbound transition",
                input.stage_name
            )))
        }
        "Outbound" => index + 1,
        other => {
            return Err(ApiError::validation(format!(
                "transitionType: {other:?} is not one of Inbound, Outbound"
            )))
        }
    };
    let by = ctx.caller.clone().unwrap_or_else(|| "pipewright".into());
    engine
        .set_transition(
            &input.pipeline_name,
            &stages[target].name,
            enabled,
            &reason,
            &by,
            ctx.now,
        )
        .await
        .map_err(engine_error)?;
    Ok(json!({}))
}

/// RollbackStage → `{pipelineExecutionId}` (the new `ROLLBACK` execution).
pub(super) async fn rollback(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: RollbackInput,
) -> Result<Value, ApiError> {
    use crate::control::RollbackError;
    check_name("pipelineName", &input.pipeline_name)?;
    check_name("stageName", &input.stage_name)?;
    parse_pipeline_execution_id(
        "targetPipelineExecutionId",
        &input.target_pipeline_execution_id,
    )?;
    require_pipeline(engine, &input.pipeline_name).await?;
    match engine
        .rollback_stage(
            &input.pipeline_name,
            &input.stage_name,
            &input.target_pipeline_execution_id,
            TriggerType::ManualRollback,
            &ctx.new_id,
            ctx.now,
        )
        .await
    {
        Ok(id) => Ok(json!({ "pipelineExecutionId": id })),
        Err(RollbackError::Unable(m)) => Err(ApiError::new("UnableToRollbackStageException", m)),
        Err(RollbackError::Outdated(m)) => {
            Err(ApiError::new("PipelineExecutionOutdatedException", m))
        }
        Err(RollbackError::Engine(EngineError::NotInPipeline(m))) => {
            Err(ApiError::new("StageNotFoundException", m))
        }
        Err(RollbackError::Engine(e)) => Err(execution_error(&input.pipeline_name, e)),
    }
}

/// OverrideStageCondition → `{}`.
pub(super) async fn override_condition(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: OverrideInput,
) -> Result<Value, ApiError> {
    use crate::conditions::ConditionKind;
    use crate::engine::OverrideError;
    check_name("pipelineName", &input.pipeline_name)?;
    check_name("stageName", &input.stage_name)?;
    parse_pipeline_execution_id("pipelineExecutionId", &input.pipeline_execution_id)?;
    let kind = match input.condition_type.as_str() {
        "BEFORE_ENTRY" => ConditionKind::BeforeEntry,
        "ON_SUCCESS" => ConditionKind::OnSuccess,
        other => {
            return Err(ApiError::validation(format!(
                "conditionType: {other:?} is not one of BEFORE_ENTRY, ON_SUCCESS"
            )))
        }
    };
    let pipeline = require_pipeline(engine, &input.pipeline_name).await?;
    stage_index(&pipeline, &input.stage_name)?;
    let by = ctx
        .caller
        .clone()
        .unwrap_or_else(|| "OverrideStageCondition".into());
    match engine
        .override_condition(
            &input.pipeline_name,
            &input.stage_name,
            &input.pipeline_execution_id,
            kind,
            &by,
            ctx.now,
        )
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(OverrideError::NotOverridable(m)) => {
            Err(ApiError::new("ConditionNotOverridableException", m))
        }
        Err(OverrideError::NotLatest(m)) => {
            Err(ApiError::new("NotLatestPipelineExecutionException", m))
        }
        Err(OverrideError::Engine(e)) => Err(execution_error(&input.pipeline_name, e)),
    }
}

/// The position of stage `stage` in `pipeline`, or `StageNotFoundException`.
pub(super) fn stage_index(
    pipeline: &crate::store::PipelineRecord,
    stage: &str,
) -> Result<usize, ApiError> {
    pipeline
        .declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!(
                    "pipeline {} has no stage {stage}",
                    pipeline.declaration.name
                ),
            )
        })
}

/// An engine error of an operation on one of `pipeline`'s executions.
fn execution_error(pipeline: &str, e: EngineError) -> ApiError {
    match e {
        EngineError::ExecutionNotFound(id) => ApiError::new(
            "PipelineExecutionNotFoundException",
            format!("pipeline {pipeline} has no execution {id}"),
        ),
        e => engine_error(e),
    }
}

pub(super) async fn list(engine: &Engine<'_>, input: ListInput) -> Result<Value, ApiError> {
    check_name("pipelineName", &input.pipeline_name)?;
    let limit = match input.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "maxResults: must be 1..100, got {n}"
            )))
        }
    };
    let stage = match input.filter {
        None => None,
        Some(ExecutionFilter {
            succeeded_in_stage: None,
        }) => None,
        Some(ExecutionFilter {
            succeeded_in_stage: Some(f),
        }) => {
            let stage = f.stage_name.ok_or_else(|| {
                ApiError::validation("filter.succeededInStage.stageName: required")
            })?;
            check_name("filter.succeededInStage.stageName", &stage)?;
            Some(stage)
        }
    };
    if let Some(stage) = stage {
        return list_succeeded_in(
            engine,
            &input.pipeline_name,
            &stage,
            input.next_token,
            limit,
        )
        .await;
    }
    if let Some(token) = &input.next_token {
        if token.is_empty() || token.len() > 2048 {
            return Err(ApiError::new(
                "InvalidNextTokenException",
                "nextToken: not a token this service issued",
            ));
        }
    }
    require_pipeline(engine, &input.pipeline_name).await?;
    let page = engine
        .executions
        .list_executions(&input.pipeline_name, input.next_token.as_deref(), limit)
        .await
        .map_err(store_error)?;
    let mut out = json!({ "pipelineExecutionSummaries": page.items.iter().map(summary_json).collect::<Vec<_>>() });
    if let Some(token) = page.next_token {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}
