//! `start`, `retry`, `stop`: acting on executions.

use aws_sdk_codepipeline::types::{PipelineVariable, StageRetryMode};

use super::{print_json, Ctx, RetryMode};
use crate::client::{CliError, EXIT_OK, EXIT_USAGE};
use crate::json;

/// Print an execution id (text: the bare id, for `$(...)`).
fn print_id(ctx: &Ctx, id: Option<&str>) {
    if ctx.json() {
        print_json(&json::execution_id(id));
    } else {
        println!("{}", id.unwrap_or_default());
    }
}

/// StartPipelineExecution.
pub async fn start(
    ctx: &Ctx,
    name: &str,
    vars: &[(String, String)],
    client_request_token: Option<String>,
) -> Result<i32, CliError> {
    let variables = vars
        .iter()
        .map(|(k, v)| PipelineVariable::builder().name(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::new("InvalidRequest", e.to_string(), EXIT_USAGE))?;
    let out = ctx
        .client
        .start_pipeline_execution()
        .name(name)
        .set_variables((!variables.is_empty()).then_some(variables))
        .set_client_request_token(client_request_token)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    print_id(ctx, out.pipeline_execution_id());
    Ok(EXIT_OK)
}

/// RetryStageExecution.
pub async fn retry(
    ctx: &Ctx,
    name: &str,
    stage: &str,
    mode: RetryMode,
    execution: &str,
) -> Result<i32, CliError> {
    let mode = match mode {
        RetryMode::FailedActions => StageRetryMode::FailedActions,
        RetryMode::AllActions => StageRetryMode::AllActions,
    };
    let out = ctx
        .client
        .retry_stage_execution()
        .pipeline_name(name)
        .stage_name(stage)
        .pipeline_execution_id(execution)
        .retry_mode(mode)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    print_id(ctx, out.pipeline_execution_id());
    Ok(EXIT_OK)
}

/// StopPipelineExecution.
pub async fn stop(
    ctx: &Ctx,
    name: &str,
    execution: &str,
    abandon: bool,
    reason: Option<String>,
) -> Result<i32, CliError> {
    let out = ctx
        .client
        .stop_pipeline_execution()
        .pipeline_name(name)
        .pipeline_execution_id(execution)
        .abandon(abandon)
        .set_reason(reason)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    print_id(ctx, out.pipeline_execution_id());
    Ok(EXIT_OK)
}
