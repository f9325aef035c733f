//! `action`: the Step Functions task that runs one action. It records the action as started,
//! runs its provider, records the outcome and answers the task token (`docs/engine.md`); and the
//! status events of the work actions started (builds, stacks, deployments, state machines), which
//! complete them; and the `runRules` tasks that run the Commands and CodeBuild rules of a stage's
//! conditions (`rules.rs`).

mod handler;
mod providers;
mod rules;

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
