//! `trigger`: what EventBridge (and EventBridge Scheduler) deliver starts pipeline executions.
//!
//! - source-change events (S3 `Object Created` and CloudTrail writes, CodeCommit reference
//!   changes, ECR pushes) start the pipelines that watch the changed source, once per change
//!   (the event id, or the S3 object version, is the idempotency key: EventBridge delivers at
//!   least once) — [`handler`];
//! - the stack's polling rule (a plain `Scheduled Event`) checks every source action with
//!   `PollForSourceChanges: true` and starts a pipeline once per new revision — [`polling`];
//! - a schedule's input naming a pipeline (`{"pipelineName": ...}`) starts it, once per
//!   scheduled firing — [`schedule`].

mod handler;
mod polling;
mod schedule;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_aws::polling::{AwsRevisions, DynamoPollStates};
use pipewright_core::triggers::schedules;
use serde_json::{json, Value};

/// What the function keeps between invocations.
pub struct Context {
    /// SDK clients and the engine's adapters.
    pub adapters: Adapters,
    /// Where polls record what they saw.
    pub poll_states: DynamoPollStates,
    /// What polls read sources with.
    pub revisions: AwsRevisions,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    let context = Context {
        poll_states: DynamoPollStates::for_adapters(&adapters),
        revisions: AwsRevisions::for_adapters(&adapters),
        adapters,
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        dispatch(&context, event)
    }))
    .await
}

async fn dispatch(context: &Context, event: LambdaEvent<Value>) -> Result<Value, Error> {
    if schedules::is_poll(&event.payload) {
        return polling::handle(context, event).await;
    }
    match schedules::scheduled_start(&event.payload) {
        Some(Ok(start)) => schedule::handle(&context.adapters, &event, start).await,
        Some(Err(why)) => {
            tracing::error!(reason = %why, "scheduled start refused");
            Ok(json!({ "started": [], "ignored": why }))
        }
        None => handler::handle(&context.adapters, event).await,
    }
}
