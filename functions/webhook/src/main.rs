//! `webhook`: git host deliveries (GitHub, GitLab, Bitbucket Cloud) behind a public Function
//! URL. A delivery acts only with a valid signature (or GitLab token); a push or pull request
//! that passes a pipeline's V2 trigger filters starts it, pinned to the commit, once per
//! delivery. Clients are built once; each request goes to [`handler::handle`].

mod handler;

use lambda_http::{run, service_fn, Error, Request};
use pipewright_aws::engine::Adapters;
use pipewright_aws::webhooks::WebhookSecrets;

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let adapters = Adapters::from_env().await?;
    let secrets = WebhookSecrets::from_env(&adapters.sdk)?;
    run(service_fn(|request: Request| {
        handler::handle(&adapters, &secrets, request)
    }))
    .await
}
