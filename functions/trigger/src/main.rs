//! `trigger`: source-change events from EventBridge (S3 `Object Created` and CloudTrail writes,
//! CodeCommit reference changes, ECR pushes) start the pipelines that watch the changed source,
//! once per change (the event id, or the S3 object version, is the idempotency key: EventBridge
//! delivers at least once).

mod handler;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        handler::handle(&adapters, event)
    }))
    .await
}
