//! PutApprovalResult: approve or reject a waiting manual approval by its token (the token
//! GetPipelineState shows for the waiting action). Decided by [`Engine::decide_approval`], the
//! same path the approval links take.

use serde::Deserialize;
use serde_json::{json, Value};

use super::executions::stage_index;
use super::{check_name, ApiError, ServiceContext};
use crate::approvals::{ApprovalAnswer, ApprovalError, ApprovalTarget, Decision, MAX_SUMMARY};
use crate::engine::{Engine, EngineError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PutApprovalResultInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: ApprovalResult,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalResult {
    summary: String,
    status: String,
}

/// `ApprovalToken`: `[a-fA-F0-9-]+`.
fn check_token(token: &str) -> Result<(), ApiError> {
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::validation(
            "token: must match [a-fA-F0-9-]+ (the token GetPipelineState shows for the approval)",
        ));
    }
    Ok(())
}

/// `PutApprovalResult` → `{approvedAt}`.
pub(super) async fn put_result(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: PutApprovalResultInput,
) -> Result<Value, ApiError> {
    check_name("pipelineName", &input.pipeline_name)?;
    check_name("stageName", &input.stage_name)?;
    check_name("actionName", &input.action_name)?;
    check_token(&input.token)?;
    let decision: Decision = input
        .result
        .status
        .parse()
        .map_err(|e| ApiError::validation(format!("result.status: {e}")))?;
    if input.result.summary.chars().count() > MAX_SUMMARY {
        return Err(ApiError::validation(format!(
            "result.summary: length must be 0..{MAX_SUMMARY}, got {}",
            input.result.summary.chars().count()
        )));
    }
    let pipeline = engine
        .pipelines
        .get(&input.pipeline_name, None)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                "PipelineNotFoundException",
                format!("pipeline {} does not exist", input.pipeline_name),
            )
        })?;
    let stage = &pipeline.declaration.stages[stage_index(&pipeline, &input.stage_name)?];
    if !stage.actions.iter().any(|a| a.name == input.action_name) {
        return Err(ApiError::new(
            "ActionNotFoundException",
            format!(
                "stage {} of pipeline {} has no action {}",
                input.stage_name, input.pipeline_name, input.action_name
            ),
        ));
    }
    let answer = ApprovalAnswer {
        token: input.token.to_ascii_lowercase(),
        target: ApprovalTarget {
            pipeline_name: input.pipeline_name,
            stage_name: input.stage_name,
            action_name: input.action_name,
            pipeline_execution_id: None,
        },
        decision,
        summary: input.result.summary,
        decided_by: ctx
            .caller
            .clone()
            .unwrap_or_else(|| "PutApprovalResult".into()),
    };
    match engine.decide_approval(&answer, ctx.now).await {
        Ok(decided) => Ok(json!({ "approvedAt": decided.at })),
        Err(ApprovalError::InvalidToken(m)) => {
            Err(ApiError::new("InvalidApprovalTokenException", m))
        }
        Err(ApprovalError::AlreadyCompleted(m) | ApprovalError::Expired(m)) => {
            Err(ApiError::new("ApprovalAlreadyCompletedException", m))
        }
        Err(ApprovalError::NotWaiting(m)) => Err(ApiError::new("InvalidApprovalTokenException", m)),
        Err(ApprovalError::Invalid(m)) => Err(ApiError::validation(m)),
        Err(ApprovalError::Engine(EngineError::Store(e))) => Err(ApiError::internal(e)),
        Err(ApprovalError::Engine(e)) => Err(ApiError {
            kind: "InternalFailure",
            message: e.to_string(),
            server_fault: true,
        }),
    }
}
