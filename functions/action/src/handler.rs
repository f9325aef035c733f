//! Decode a `runAction` task, run the action, complete it (unless it is pending: a job-worker
//! action completes with its job result).

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::{ActionOutcome, TaskRequest};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::providers::Providers;

/// Handle one `runAction` task. The result is recorded and the task token answered here, so the
/// Lambda's own return value only says what happened.
pub async fn handle(
    adapters: &Adapters,
    providers: &Providers,
    event: LambdaEvent<TaskRequest>,
) -> Result<Value, Error> {
    let TaskRequest::RunAction {
        ids,
        stage,
        action,
        task_token,
        ..
    } = event.payload
    else {
        return Err("the action function runs only runAction tasks".into());
    };
    // From the task token: a repeated task is the same action execution.
    let action_execution_id = pipewright_core::engine::action_execution_id(&task_token);
    let span = tracing::info_span!("action", execution = %ids.pipeline_execution_id, %stage, %action, %action_execution_id);
    let run = async {
        let engine = adapters.engine(&event.context.invoked_function_arn);
        let Some(prepared) = engine
            .begin_action(
                &ids,
                &stage,
                &action,
                &action_execution_id,
                &task_token,
                pipewright_aws::now(),
            )
            .await?
        else {
            tracing::info!("action could not start (configuration); recorded as failed");
            return Ok(json!({ "status": "Failed" }));
        };
        let deadline = crate::providers::lambda_deadline(event.context.deadline);
        let outcome = match providers.run(&prepared, deadline).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                // Started; whoever finishes the work completes the action with its task token.
                tracing::info!("action pending: it completes with its job result");
                return Ok(json!({ "status": "InProgress" }));
            }
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        let status = outcome.status;
        tracing::info!(status = %status, "action finished");
        engine
            .complete_action(&prepared.record, outcome, pipewright_aws::now())
            .await?;
        Ok::<_, Error>(json!({ "status": status.as_str() }))
    };
    run.instrument(span).await
}
