//! The polling rule's `Scheduled Event`: poll every pipeline's polling sources.

use lambda_runtime::{Error, LambdaEvent};
use pipewright_core::engine::polling::poll_pipeline;
use serde_json::{json, Value};

use crate::Context;

/// Poll the sources with `PollForSourceChanges: true` of every pipeline and start those with a
/// change, once per change. A pipeline that cannot be polled now is logged and polled again
/// by the next event; the answer lists what started and what failed.
pub async fn handle(context: &Context, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let adapters = &context.adapters;
    let engine = adapters.engine(&event.context.invoked_function_arn);
    let new_id = || uuid::Uuid::new_v4().to_string();
    let mut started = Vec::new();
    let mut failed = Vec::new();
    for pipeline in pipewright_core::store::all_pipelines(&adapters.pipelines).await? {
        let name = &pipeline.declaration.name;
        let outcome = poll_pipeline(
            &engine,
            &context.poll_states,
            &context.revisions,
            &pipeline.declaration,
            pipewright_aws::now(),
            &new_id,
        )
        .await;
        match outcome {
            Ok(outcome) => {
                for note in &outcome.notes {
                    tracing::info!(pipeline = %name, note = %note, "poll");
                }
                for (id, new) in outcome.started {
                    tracing::info!(pipeline = %name, execution = %id, new, "started for a polled change");
                    started.push(
                        json!({ "pipelineName": name, "pipelineExecutionId": id, "new": new }),
                    );
                }
            }
            Err(e) => {
                tracing::error!(pipeline = %name, error = %e, "poll failed; the next poll tries again");
                failed.push(json!({ "pipelineName": name, "error": e.to_string() }));
            }
        }
    }
    Ok(json!({ "started": started, "failed": failed }))
}
