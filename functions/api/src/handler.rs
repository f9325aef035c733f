//! Decode a Function URL request, run the operation in `pipewright_core::control_plane`, encode
//! the AWS JSON 1.1 response.

use std::time::{SystemTime, UNIX_EPOCH};

use lambda_http::http::{header::CONTENT_TYPE, Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use pipewright_core::control_plane::{self, ApiError, ServiceContext, Services};
use pipewright_core::engine::Engine;
use pipewright_core::store::PipelineStore;
use serde_json::json;

/// The content type of AWS JSON 1.1 requests and responses.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// What every request needs: the store and where the service runs.
pub struct Service<'a> {
    /// Pipeline declarations.
    pub store: &'a dyn PipelineStore,
    /// The execution engine (None: execution operations are unavailable).
    pub engine: Option<&'a Engine<'a>>,
    /// The region, for ARNs.
    pub region: &'a str,
}

impl Service<'_> {
    /// Handle one request.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Error> {
        let context = request.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_default();
        let account_id = context
            .and_then(|c| c.invoked_function_arn.split(':').nth(4).map(str::to_string))
            .filter(|a| a.len() == 12)
            .unwrap_or_else(|| "123456789012".to_string());
        if request.method() != Method::POST {
            return respond(
                &request_id,
                Err(ApiError::new(
                    "UnknownOperationException",
                    "the API takes POST /",
                )),
            );
        }
        let Some(target) = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
        else {
            return respond(
                &request_id,
                Err(ApiError::new(
                    "MissingAction",
                    "X-Amz-Target header is missing",
                )),
            );
        };
        let ctx = ServiceContext {
            region: self.region.to_string(),
            account_id,
            now: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
            new_id: uuid::Uuid::new_v4().to_string(),
            caller: caller_arn(&request),
        };
        let result = control_plane::handle(
            &Services {
                pipelines: self.store,
                engine: self.engine,
            },
            &ctx,
            target,
            request.body().as_ref(),
        )
        .await;
        if let Err(e) = &result {
            tracing::info!(target, error = %e.kind, "request refused");
        }
        respond(&request_id, result)
    }
}

fn respond(
    request_id: &str,
    result: Result<serde_json::Value, ApiError>,
) -> Result<Response<Body>, Error> {
    let (status, body, error_type) = match result {
        Ok(value) => (StatusCode::OK, value, None),
        Err(e) => {
            let status = if e.server_fault {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                status,
                json!({ "__type": e.kind, "message": e.message }),
                Some(e.kind),
            )
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, JSON_1_1)
        .header("x-amzn-RequestId", request_id);
    if let Some(kind) = error_type {
        builder = builder.header("x-amzn-ErrorType", kind);
    }
    Ok(builder.body(Body::Text(body.to_string()))?)
}

/// The IAM principal that signed the request, as the Function URL's IAM auth reports it.
fn caller_arn(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        lambda_http::request::RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .iam
            .as_ref()?
            .user_arn
            .clone()
            .filter(|a| !a.is_empty()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewright_core::store::memory::MemoryPipelineStore;

    fn request(target: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/");
        if let Some(t) = target {
            builder = builder.header("X-Amz-Target", t);
        }
        builder.body(Body::from(body.to_string())).unwrap()
    }

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[tokio::test]
    async fn errors_are_aws_json_with_type_and_status() {
        let store = MemoryPipelineStore::default();
        let service = Service {
            store: &store,
            engine: None,
            region: "us-east-1",
        };
        let response = service
            .handle(request(
                Some("CodePipeline_20150709.GetPipeline"),
                r#"{"name":"missing"}"#,
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON_1_1);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "PipelineNotFoundException"
        );
        assert_eq!(body_json(&response)["__type"], "PipelineNotFoundException");

        let response = service.handle(request(None, "{}")).await.unwrap();
        assert_eq!(body_json(&response)["__type"], "MissingAction");
    }

    #[tokio::test]
    async fn a_list_answers_200_with_the_members() {
        let store = MemoryPipelineStore::default();
        let service = Service {
            store: &store,
            engine: None,
            region: "us-east-1",
        };
        let response = service
            .handle(request(Some("CodePipeline_20150709.ListPipelines"), ""))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(&response), json!({ "pipelines": [] }));
    }
}
