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
    run(service_fn(|event: LambdaEvent<TaskRequest>| {
        handle(&adapters, event)
    }))
    .await
}

/// Run the task (the runtime decoded it; a payload that is no task fails the invocation),
/// return its result.
async fn handle(adapters: &Adapters, event: LambdaEvent<TaskRequest>) -> Result<Value, Error> {
    let engine = adapters.engine(&event.context.invoked_function_arn);
    Ok(engine
        .handle_orchestrator_task(event.payload, pipewright_aws::now())
        .await?)
}
