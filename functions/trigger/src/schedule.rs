//! A schedule's input naming a pipeline: start it, once per scheduled firing.

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::{EngineError, StartRequest};
use pipewright_core::triggers::schedules::ScheduledStart;
use serde_json::{json, Value};

/// Start `start.pipeline_name` (trigger `CloudWatchEvent`, the schedule's ARN as detail). A
/// pipeline that does not exist or a refused input is logged and answered (retrying cannot
/// help); other failures are errors, so the caller's retries try again with the same key.
pub async fn handle(
    adapters: &Adapters,
    event: &LambdaEvent<Value>,
    start: ScheduledStart,
) -> Result<Value, Error> {
    let engine = adapters.engine(&event.context.invoked_function_arn);
    let idempotency_key = start.idempotency_key();
    if idempotency_key.is_none() {
        tracing::warn!(
            pipeline = %start.pipeline_name,
            "the schedule passes neither scheduledTime nor eventId: a redelivery would start another execution"
        );
    }
    let trigger = start.trigger();
    let request = StartRequest {
        pipeline_name: start.pipeline_name.clone(),
        pipeline_execution_id: uuid::Uuid::new_v4().to_string(),
        trigger: trigger.clone(),
        variables: start.variables,
        source_revisions: Vec::new(),
        idempotency_key,
        now: pipewright_aws::now(),
    };
    match engine.start_execution(request).await {
        Ok(s) => {
            tracing::info!(pipeline = %start.pipeline_name, execution = %s.pipeline_execution_id, new = s.new, trigger = %trigger.trigger_detail, "started on schedule");
            Ok(json!({ "started": [{
                "pipelineName": start.pipeline_name,
                "pipelineExecutionId": s.pipeline_execution_id,
                "new": s.new,
            }] }))
        }
        Err(e @ (EngineError::PipelineNotFound(_) | EngineError::Invalid(_))) => {
            tracing::error!(pipeline = %start.pipeline_name, error = %e, "scheduled start refused");
            Ok(json!({ "started": [], "ignored": e.to_string() }))
        }
        Err(e) => Err(e.into()),
    }
}
