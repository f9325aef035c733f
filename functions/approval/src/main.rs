//! `approval`: manual approvals. As a Step Functions task (`runAction` of an
//! `Approval/AWS/Manual` action) it records the approval and sends the notice with signed
//! approve/reject links ([`task`]); behind its Function URL it serves those links ([`links`]).

mod links;
mod pages;
mod task;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::approvals::ApprovalChannel;
use pipewright_aws::engine::Adapters;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    let channel = ApprovalChannel::from_env(&adapters.sdk)?;
    let region = adapters.region();
    run(service_fn(|event: LambdaEvent<Value>| {
        handle(&adapters, &channel, &region, event)
    }))
    .await
}

async fn handle(
    adapters: &Adapters,
    channel: &ApprovalChannel,
    region: &str,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let engine = adapters.engine(&event.context.invoked_function_arn);
    // A Function URL request carries `requestContext`; a state-machine task does not.
    if event.payload.get("requestContext").is_some() {
        let request: LambdaFunctionUrlRequest = serde_json::from_value(event.payload)
            .map_err(|e| format!("bad Function URL request: {e}"))?;
        Ok(links::handle(&engine, channel, &request, pipewright_aws::now()).await)
    } else {
        let request =
            serde_json::from_value(event.payload).map_err(|e| format!("bad task payload: {e}"))?;
        task::handle(&engine, channel, region, request).await
    }
}
