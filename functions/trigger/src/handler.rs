//! Match a source-change event to pipelines and start them (anything else is answered as
//! ignored).

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::{EngineError, StartRequest};
use pipewright_core::store::PipelineRecord;
use pipewright_core::triggers;
use serde_json::{json, Value};

/// Start every pipeline with a source action the event's change concerns (S3 object, CodeCommit
/// branch, ECR image tag), pinned to the event's revision. Returns the executions started (or
/// found already started for this change). When a start failed for a reason that may pass (a
/// store or Step Functions error), the invocation fails after trying every pipeline, so the
/// event is delivered again: the idempotency keys keep what started to one execution, and resume
/// a start that was recorded but not run.
pub async fn handle(adapters: &Adapters, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let change = match triggers::source_change(&event.payload) {
        Ok(change) => change,
        Err(why) => {
            tracing::info!(reason = %why, "not a source change; ignored");
            return Ok(json!({ "started": [], "ignored": why }));
        }
    };
    let engine = adapters.engine(&event.context.invoked_function_arn);
    let trigger = change.trigger();
    let mut started = Vec::new();
    let mut retry = Vec::new();
    for pipeline in all_pipelines(adapters).await? {
        let declaration = &pipeline.declaration;
        let sources = triggers::sources_matching(declaration, &change.change);
        if sources.is_empty() {
            continue;
        }
        let request = StartRequest {
            pipeline_name: declaration.name.clone(),
            pipeline_execution_id: uuid::Uuid::new_v4().to_string(),
            trigger: trigger.clone(),
            variables: Vec::new(),
            source_revisions: sources.into_iter().filter_map(|s| s.revision).collect(),
            idempotency_key: Some(change.idempotency_key(&declaration.name)),
            now: pipewright_aws::now(),
        };
        match engine.start_execution(request).await {
            Ok(s) => {
                tracing::info!(pipeline = %declaration.name, execution = %s.pipeline_execution_id, new = s.new, trigger = %trigger.trigger_detail, "started");
                started.push(json!({ "pipelineName": declaration.name, "pipelineExecutionId": s.pipeline_execution_id, "new": s.new }));
            }
            // The pipeline's own problem: another delivery would fail the same way.
            Err(e @ (EngineError::PipelineNotFound(_) | EngineError::Invalid(_))) => {
                tracing::error!(pipeline = %declaration.name, error = %e, "could not start");
            }
            Err(e) => {
                tracing::error!(pipeline = %declaration.name, error = %e, "could not start; the event will be delivered again");
                retry.push(format!("{}: {e}", declaration.name));
            }
        }
    }
    if !retry.is_empty() {
        return Err(format!("could not start {}", retry.join("; ")).into());
    }
    if started.is_empty() {
        tracing::info!(change = %trigger.trigger_detail, "no pipeline watches this source");
    }
    Ok(json!({ "started": started }))
}

async fn all_pipelines(adapters: &Adapters) -> Result<Vec<PipelineRecord>, Error> {
    Ok(pipewright_core::store::all_pipelines(&adapters.pipelines).await?)
}
