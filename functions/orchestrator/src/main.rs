//! `orchestrator`: the Step Functions tasks that move an execution through its stages
//! (`enterStage`, `checkGroup`, `leaveStage`, `finishExecution`, `abortExecution`; see
//! `docs/engine.md`), and the reconciler: Step Functions status changes of runs that ended
//! FAILED, TIMED_OUT or ABORTED (an EventBridge rule).

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::OrchestratorEvent;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    run(service_fn(|event: LambdaEvent<OrchestratorEvent>| {
        handle(&adapters, event)
    }))
    .await
}

/// Run the task, or reconcile the run a status change says ended (the runtime decoded it),
/// return the result.
async fn handle(
    adapters: &Adapters,
    event: LambdaEvent<OrchestratorEvent>,
) -> Result<Value, Error> {
    let engine = adapters.engine(&event.context.invoked_function_arn);
    Ok(engine
        .handle_orchestrator_event(event.payload, pipewright_aws::now())
        .await?)
}
