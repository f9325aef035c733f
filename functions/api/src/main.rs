//! `api`: CodePipeline's control plane (AWS JSON 1.1, `X-Amz-Target: CodePipeline_20150709.*`)
//! behind a Function URL. Clients are built once; each request goes to [`handler::Service`].

mod handler;

use lambda_http::{run, service_fn, Error, Request, RequestExt};
use pipewright_aws::engine::Adapters;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    let region = adapters.region();
    run(service_fn(|request: Request| {
        let function_arn = request
            .lambda_context_ref()
            .map(|c| c.invoked_function_arn.clone())
            .unwrap_or_default();
        let (adapters, region) = (&adapters, &region);
        async move {
            let engine = adapters.engine(&function_arn);
            let service = handler::Service {
                store: &adapters.pipelines,
                engine: Some(&engine),
                region,
            };
            service.handle(request).await
        }
    }))
    .await
}
