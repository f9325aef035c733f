//! `api`: CodePipeline's control plane (AWS JSON 1.1, `X-Amz-Target: CodePipeline_20150709.*`)
//! behind a Function URL. Clients are built once; each request goes to [`handler::handle`].

mod handler;

use lambda_http::{run, service_fn, Error};
use pipewright_aws::config::{self, Target};
use pipewright_aws::pipeline_store::DynamoPipelineStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let target = Target::from_env();
    let sdk = config::load(&target).await;
    let table = std::env::var("PIPELINES_TABLE").map_err(|_| "PIPELINES_TABLE is not set")?;
    let store = DynamoPipelineStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| config::DEFAULT_REGION.to_string());
    let service = handler::Service {
        store: &store,
        region: &region,
    };
    run(service_fn(|request| service.handle(request))).await
}
