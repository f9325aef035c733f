//! `orchestrator`: the Step Functions tasks that move an execution through its stages
//! (`enterStage`, `checkGroup`, `leaveStage`, `finishExecution`; see `docs/engine.md`).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::TaskRequest;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&adapters, event)
    }))
    .await
}

/// Decode the task, run it, return its result.
async fn handle(adapters: &Adapters, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let request: TaskRequest =
        serde_json::from_value(event.payload).map_err(|e| format!("bad task payload: {e}"))?;
    let engine = adapters.engine(&event.context.invoked_function_arn);
    Ok(engine
        .handle_orchestrator_task(request, pipewright_aws::now())
        .await?)
}
