//! `action`: the Step Functions task that runs one action. It records the action as started,
//! runs its provider, records the outcome and answers the task token (`docs/engine.md`); and the
//! status events of the Step Functions executions actions started, which complete them.

mod handler;
mod providers;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::engine::Adapters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    let providers = providers::Providers::new(&adapters);
    run(service_fn(|event: LambdaEvent<handler::ActionEvent>| {
        handler::handle(&adapters, &providers, event)
    }))
    .await
}
