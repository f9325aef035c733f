//! One delivery: decode the Function URL request, let core decide it
//! ([`pipewright_core::engine::webhooks::dispatch()`]: the signature check, which pipelines the
//! change starts, the answer and its status), encode the answer.

use std::collections::BTreeMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use pipewright_aws::engine::Adapters;
use pipewright_aws::webhooks::WebhookSecrets;
use pipewright_core::engine::webhooks::{self, WebhookAnswer, WebhookContext, WebhookRequest};
use pipewright_core::triggers::webhooks::Headers;

fn encode(answer: WebhookAnswer) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(StatusCode::from_u16(answer.status)?)
        .header("content-type", "application/json")
        .body(Body::Text(answer.body.to_string()))?)
}

/// Answer one request.
pub async fn handle(
    adapters: &Adapters,
    secrets: &WebhookSecrets,
    request: Request,
) -> Result<Response<Body>, Error> {
    let headers: Headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect::<BTreeMap<_, _>>();
    let body: &[u8] = request.body().as_ref();
    let function_arn = request
        .lambda_context_ref()
        .map(|c| c.invoked_function_arn.clone())
        .unwrap_or_default();
    let engine = adapters.engine(&function_arn);
    let new_id = || uuid::Uuid::new_v4().to_string();
    let ctx = WebhookContext {
        pipelines: &adapters.pipelines,
        secrets,
        engine: &engine,
        new_id: &new_id,
        now: &pipewright_aws::now,
    };
    let decoded = WebhookRequest {
        method: request.method().as_str(),
        path: request.raw_http_path(),
        headers: &headers,
        body,
    };
    encode(webhooks::dispatch(&ctx, &decoded).await)
}
