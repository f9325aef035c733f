//! GetPipelineState: every stage of the pipeline's current version with its latest execution and
//! the latest run of each of its actions in that execution.
//!
//! A stage's latest execution is the last execution to enter it, found through the store's
//! per-stage pointers ([`crate::engine::ExecutionStore::latest_stage_executions`]); each execution
//! they name is read once. An approval action waiting for its decision shows its approval token
//! (its action execution id, see [`crate::approvals`]) as `latestExecution.token`.

use std::collections::BTreeMap;

use crate::conditions::ConditionKind;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::executions::store_error;
use super::{check_name, not_found, ApiError};
use crate::declaration::{ActionCategory, ActionDeclaration, StageDeclaration};
use crate::engine::Engine;
use crate::execution::{ActionExecution, ActionExecutionStatus, ExecutionSnapshot, StageExecution};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetStateInput {
    name: String,
}

pub(super) async fn get(engine: &Engine<'_>, input: GetStateInput) -> Result<Value, ApiError> {
    check_name("name", &input.name)?;
    let pipeline = engine
        .pipelines
        .get(&input.name, None)
        .await
        .map_err(store_error)?
        .ok_or_else(|| not_found(&input.name))?;
    let declaration = &pipeline.declaration;
    let pointers = engine
        .executions
        .latest_stage_executions(&input.name)
        .await
        .map_err(store_error)?;
    let latest: BTreeMap<&str, &StageExecution> = pointers
        .iter()
        .filter(|p| declaration.stages.iter().any(|s| s.name == p.stage_name))
        .map(|p| (p.stage_name.as_str(), p))
        .collect();
    // Each execution once, however many stages it is the latest of.
    let mut snapshots: BTreeMap<&str, Option<ExecutionSnapshot>> = BTreeMap::new();
    for pointer in latest.values() {
        let id = pointer.pipeline_execution_id.as_str();
        if snapshots.contains_key(id) {
            continue;
        }
        let snapshot = engine
            .executions
            .snapshot(id)
            .await
            .map_err(store_error)?
            .filter(|s| s.execution.pipeline_name == input.name);
        snapshots.insert(id, snapshot);
    }
    let mut stage_states = Vec::with_capacity(declaration.stages.len());
    for stage in &declaration.stages {
        let snapshot = latest
            .get(stage.name.as_str())
            .and_then(|p| snapshots.get(p.pipeline_execution_id.as_str()))
            .and_then(Option::as_ref);
        let mut state = stage_state(stage, snapshot, &engine.config);
        // Executions waiting in front of the stage (execution modes' stage lock).
        let (lock, _) = engine
            .executions
            .stage_lock(&input.name, &stage.name)
            .await
            .map_err(store_error)?;
        let inbound: Vec<Value> = lock
            .waiting
            .iter()
            .map(|w| {
                json!({
                    "pipelineExecutionId": w.pipeline_execution_id,
                    "status": "InProgress",
                    "type": "STANDARD",
                })
            })
            .collect();
        if let Some(first) = inbound.first() {
            state["inboundExecution"] = first.clone();
            state["inboundExecutions"] = Value::Array(inbound);
        }
        // The first stage has no inbound transition.
        if stage.name != declaration.stages[0].name {
            let mut transition = json!({ "enabled": lock.disabled.is_none() });
            if let Some(d) = &lock.disabled {
                transition["disabledReason"] = json!(d.reason);
            }
            if let Some((by, at)) = &lock.last_changed {
                transition["lastChangedBy"] = json!(by);
                transition["lastChangedAt"] = json!(at);
            }
            state["inboundTransitionState"] = transition;
        } else if let Some(map) = state.as_object_mut() {
            map.remove("inboundTransitionState");
        }
        stage_states.push(state);
    }
    Ok(json!({
        "pipelineName": declaration.name,
        "pipelineVersion": pipeline.version(),
        "stageStates": stage_states,
        "created": pipeline.created,
        "updated": pipeline.updated,
    }))
}

/// `StageState` of `stage`, whose latest execution is `snapshot`'s (none: it never ran, or its
/// records expired).
fn stage_state(
    stage: &StageDeclaration,
    snapshot: Option<&ExecutionSnapshot>,
    config: &crate::engine::EngineConfig,
) -> Value {
    let run = snapshot.and_then(|s| s.stage(&stage.name).map(|r| (s, r)));
    let action_states: Vec<Value> = stage
        .actions
        .iter()
        .map(|action| {
            let latest = run.and_then(|(s, _)| s.latest_action(&stage.name, &action.name));
            action_state(action, latest, config)
        })
        .collect();
    let mut out = json!({
        "stageName": stage.name,
        // Transitions cannot be disabled yet.
        "inboundTransitionState": { "enabled": true },
        "actionStates": action_states,
    });
    if let Some((_, record)) = run {
        for (kind, member) in [
            (ConditionKind::BeforeEntry, "beforeEntryConditionState"),
            (ConditionKind::OnSuccess, "onSuccessConditionState"),
            (ConditionKind::OnFailure, "onFailureConditionState"),
        ] {
            if let Some(state) = condition_state(record, kind) {
                out[member] = state;
            }
        }
    }
    if let Some(metadata) = snapshot.and_then(|s| retry_metadata(s, &stage.name)) {
        out["retryStageMetadata"] = metadata;
    }
    if let Some((snapshot, record)) = run {
        out["latestExecution"] = json!({
            "pipelineExecutionId": record.pipeline_execution_id,
            "status": record.status,
            "type": snapshot.execution.execution_type,
        });
    }
    out
}

/// `RetryStageMetadata` of `stage` in the execution of `snapshot`: how often it was retried, by
/// hand and automatically, and by what last (none: never retried).
fn retry_metadata(snapshot: &ExecutionSnapshot, stage: &str) -> Option<Value> {
    let retries: Vec<&str> = {
        let mut attempts: Vec<_> = snapshot
            .stages
            .iter()
            .filter(|s| s.stage_name == stage)
            .collect();
        attempts.sort_by_key(|s| s.attempt);
        attempts
            .iter()
            .filter_map(|s| s.retry_trigger.as_deref())
            .collect()
    };
    let latest = retries.last()?;
    let count = |trigger: &str| retries.iter().filter(|t| **t == trigger).count();
    Some(json!({
        "autoStageRetryAttempt": count("AutomatedStageRetry"),
        "manualStageRetryAttempt": count("ManualStageRetry"),
        "latestRetryTrigger": latest,
    }))
}

/// `ActionState` of `action`, whose latest run in the stage's latest execution is `latest`.
fn action_state(
    action: &ActionDeclaration,
    latest: Option<&ActionExecution>,
    config: &crate::engine::EngineConfig,
) -> Value {
    let mut out = Map::new();
    out.insert("actionName".into(), json!(action.name));
    // The page of what the action works on: from its latest run's resolved configuration, else
    // the declared one.
    let region = action.region.as_deref().unwrap_or(&config.region);
    let url = |configuration| {
        crate::providers::entity_url(
            &action.action_type_id,
            configuration,
            region,
            &config.account_id,
        )
    };
    if let Some(url) = latest
        .and_then(|run| url(&run.input.resolved_configuration))
        .or_else(|| url(action.configuration()))
    {
        out.insert("entityUrl".into(), json!(url));
    }
    let Some(run) = latest else {
        return Value::Object(out);
    };
    if let Some(revision) = &run.source_revision {
        if let Some(id) = revision.revision_id.as_deref().filter(|id| !id.is_empty()) {
            out.insert(
                "currentRevision".into(),
                json!({
                    "revisionId": id,
                    "revisionChangeId": revision.revision_change_id.as_deref().unwrap_or(id),
                    "created": run.last_update_time,
                }),
            );
        }
        if let Some(url) = &revision.revision_url {
            out.insert("revisionUrl".into(), json!(url));
        }
    }
    out.insert("latestExecution".into(), action_execution(run));
    Value::Object(out)
}

/// `ActionExecution` (GetPipelineState's shape) of one run.
fn action_execution(run: &ActionExecution) -> Value {
    let result = &run.output.execution_result;
    let mut out = Map::new();
    out.insert("actionExecutionId".into(), json!(run.action_execution_id));
    out.insert("status".into(), json!(run.status));
    if let Some(summary) = result
        .external_execution_summary
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        out.insert("summary".into(), json!(summary));
    }
    out.insert("lastStatusChange".into(), json!(run.last_update_time));
    // The approval token is the approval action's action execution id, while it waits.
    if run.input.action_type_id.category == ActionCategory::Approval
        && run.status == ActionExecutionStatus::InProgress
    {
        out.insert("token".into(), json!(run.action_execution_id));
    }
    if let Some(by) = &run.updated_by {
        out.insert("lastUpdatedBy".into(), json!(by));
    }
    if let Some(percent) = run.percent_complete {
        out.insert("percentComplete".into(), json!(percent));
    }
    if let Some(id) = &result.external_execution_id {
        out.insert("externalExecutionId".into(), json!(id));
    }
    if let Some(url) = &result.external_execution_url {
        out.insert("externalExecutionUrl".into(), json!(url));
    }
    if let Some(error) = &result.error_details {
        out.insert(
            "errorDetails".into(),
            json!({ "code": error.code, "message": error.message }),
        );
    }
    Value::Object(out)
}

/// `StageConditionState` of the `kind` conditions evaluated in `record` (none: none ran).
fn condition_state(record: &StageExecution, kind: ConditionKind) -> Option<Value> {
    let runs: Vec<_> = record
        .conditions
        .iter()
        .filter(|c| c.kind == kind)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let overall = if runs.iter().any(|c| c.status == "Overridden") {
        "Overridden"
    } else if runs.iter().any(|c| c.status == "Failed") {
        "Failed"
    } else {
        "Succeeded"
    };
    let conditions: Vec<Value> = runs
        .iter()
        .map(|c| {
            json!({
                "latestExecution": {
                    "status": c.status,
                    "summary": c.summary,
                    "lastStatusChange": c.at,
                },
                "ruleStates": c.rules.iter().map(|r| json!({
                    "ruleName": r.rule_name,
                    "latestExecution": {
                        "status": r.status,
                        "summary": r.summary,
                        "lastStatusChange": r.at,
                    },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let summary = runs
        .iter()
        .map(|c| c.summary.as_str())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Some(json!({
        "latestExecution": { "status": overall, "summary": summary },
        "conditionStates": conditions,
    }))
}
