//! Decode a Function URL request, find out who sent it through which door and whether they may
//! do what they ask (`pipewright_core::access::gate`), run the operation in
//! `pipewright_core::control_plane` (or the key-management operations of
//! `pipewright_core::access::keys`), encode the AWS JSON 1.1 response, and write the access log
//! line.

use std::time::{SystemTime, UNIX_EPOCH};

use lambda_http::http::{header::CONTENT_TYPE, Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use pipewright_core::access::gate::{self, Caller, Door, Refusal};
use pipewright_core::access::keys::{self, CachedKeys, KeyStore};
use pipewright_core::access::policy;
use pipewright_core::access::principals::{CachedPolicies, MANAGE_KEYS_ACTION};
use pipewright_core::access::sigv4::SignedRequest;
use pipewright_core::control_plane::{self, ApiError, ServiceContext, Services, TARGET_PREFIX};
use pipewright_core::engine::Engine;
use pipewright_core::store::PipelineStore;
use serde_json::{json, Value};

/// The content type of AWS JSON 1.1 requests and responses.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// What every request needs: the store, the keys, which door this is and where the service runs.
pub struct Service<'a, K: KeyStore> {
    /// Pipeline declarations.
    pub store: &'a dyn PipelineStore,
    /// The execution engine (None: execution operations are unavailable).
    pub engine: Option<&'a Engine<'a>>,
    /// The region, for ARNs.
    pub region: &'a str,
    /// The door this function serves.
    pub door: Door,
    /// CreatePipeline starts the pipeline's first execution (`START_ON_CREATE`, the stack's
    /// `StartExecutionOnCreate`).
    pub start_on_create: bool,
    /// Pipewright access keys (the key door checks signatures against them; the IAM door
    /// manages them).
    pub keys: &'a CachedKeys<K>,
    /// The IAM door's check of the caller's IAM policies (`None`: through the IAM door, whoever
    /// may invoke the URL may do everything; the key door never uses it).
    pub iam_policies: Option<&'a CachedPolicies>,
}

/// A response before or instead of an operation: status, exception name, message.
struct Answer {
    status: StatusCode,
    body: Value,
    error: Option<&'static str>,
}

impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Self {
        Self {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::FORBIDDEN),
            body: json!({ "__type": r.kind, "message": r.message }),
            error: Some(r.kind),
        }
    }
}

impl From<Result<Value, ApiError>> for Answer {
    fn from(result: Result<Value, ApiError>) -> Self {
        match result {
            Ok(body) => Self {
                status: StatusCode::OK,
                body,
                error: None,
            },
            Err(e) => Self {
                status: if e.server_fault {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::BAD_REQUEST
                },
                body: json!({ "__type": e.kind, "message": e.message }),
                error: Some(e.kind),
            },
        }
    }
}

impl<K: KeyStore> Service<'_, K> {
    /// Handle one request.
    pub async fn handle(&self, request: Request) -> Result<Response<Body>, Error> {
        let context = request.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.clone()).unwrap_or_default();
        let account_id = context
            .and_then(|c| c.invoked_function_arn.split(':').nth(4).map(str::to_string))
            .filter(|a| a.len() == 12)
            .unwrap_or_else(|| "123456789012".to_string());
        if request.method() != Method::POST {
            let error = ApiError::new("UnknownOperationException", "the API takes POST /");
            return respond(&request_id, Err(error).into());
        }
        let Some(target) = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        else {
            let error = ApiError::new("MissingAction", "X-Amz-Target header is missing");
            return respond(&request_id, Err(error).into());
        };
        let operation = target
            .strip_prefix(TARGET_PREFIX)
            .or_else(|| target.strip_prefix(keys::TARGET_PREFIX))
            .unwrap_or(&target)
            .to_string();
        let body_bytes = request.body().as_ref();
        // For the access check and the log only; the operation parses the body itself.
        let body: Value = serde_json::from_slice(body_bytes).unwrap_or(Value::Null);
        let now = SystemTime::now();

        let caller = match self.identify(&request, now).await {
            Ok(caller) => caller,
            Err(refusal) => {
                self.log(None, &operation, &body, Err(refusal.kind));
                return respond(&request_id, refusal.into());
            }
        };
        let ctx = ServiceContext {
            region: self.region.to_string(),
            account_id,
            now: now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
            new_id: uuid::Uuid::new_v4().to_string(),
            caller: Some(caller.principal.clone()),
        };

        let manages_keys = target.starts_with(keys::TARGET_PREFIX);
        let allowed = match (self.door, self.iam_policies) {
            (Door::Iam, Some(policies)) => {
                let (action, resource) = if manages_keys {
                    (MANAGE_KEYS_ACTION.to_string(), "*".to_string())
                } else {
                    policy::requested(&operation, &body, |name| ctx.pipeline_arn(name))
                };
                let mut allowed =
                    gate::authorize_by_policies(policies, &caller, &action, &resource, ctx.now)
                        .await;
                // As CodePipeline: handing a pipeline a role takes iam:PassRole on it.
                for role in policy::passed_roles(&operation, &body) {
                    if allowed.is_err() {
                        break;
                    }
                    allowed = gate::authorize_by_policies(
                        policies,
                        &caller,
                        policy::PASS_ROLE_ACTION,
                        &role,
                        ctx.now,
                    )
                    .await;
                }
                allowed
            }
            _ if manages_keys => gate::authorize_key_management(&caller, &operation),
            _ => {
                gate::authorize_operation(&caller, &operation, &body, |name| ctx.pipeline_arn(name))
            }
        };
        if let Err(refusal) = allowed {
            self.log(Some(&caller), &operation, &body, Err(refusal.kind));
            return respond(&request_id, refusal.into());
        }
        self.log(Some(&caller), &operation, &body, Ok(()));

        let answer: Answer = if manages_keys {
            self.manage_keys(&operation, &body, &ctx, &caller)
                .await
                .into()
        } else {
            let result = control_plane::handle(
                &Services {
                    pipelines: self.store,
                    engine: self.engine,
                    start_on_create: self.start_on_create,
                },
                &ctx,
                &target,
                body_bytes,
            )
            .await;
            if let Err(e) = &result {
                tracing::info!(target = %target, error = %e.kind, "request refused");
            }
            result.into()
        };
        respond(&request_id, answer)
    }

    /// Who sent `request`, by this function's door.
    async fn identify(&self, request: &Request, now: SystemTime) -> Result<Caller, Refusal> {
        match self.door {
            Door::Iam => gate::iam_caller(iam_principal(request).as_deref()),
            Door::Key => {
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                    })
                    .collect();
                let signed = SignedRequest {
                    method: request.method().as_str(),
                    path: request.uri().path(),
                    query: request.uri().query().unwrap_or(""),
                    headers: &headers,
                    body: request.body().as_ref(),
                };
                gate::key_caller(self.keys, &signed, now).await
            }
        }
    }

    /// Run a key-management operation (the IAM door, checked before).
    async fn manage_keys(
        &self,
        operation: &str,
        body: &Value,
        ctx: &ServiceContext,
        caller: &Caller,
    ) -> Result<Value, ApiError> {
        let request = keys::decode_request(operation, body)
            .map_err(|m| ApiError::new("ValidationException", m))?;
        let changed = match &request {
            keys::KeyRequest::Revoke { access_key_id }
            | keys::KeyRequest::Rotate { access_key_id, .. } => Some(access_key_id.clone()),
            _ => None,
        };
        let mut random = |buf: &mut [u8]| {
            getrandom::fill(buf).expect("the system's random number generator");
        };
        let result = keys::handle_request(
            self.keys.store(),
            request,
            ctx.now,
            &caller.principal,
            &mut random,
        )
        .await
        .map_err(|(kind, message)| ApiError {
            kind,
            server_fault: kind == "ServiceUnavailableException",
            message,
        });
        if let Some(id) = changed {
            self.keys.forget(&id);
        }
        result
    }

    /// The access log: one line per call, never a secret or a signature.
    fn log(
        &self,
        caller: Option<&Caller>,
        operation: &str,
        body: &Value,
        outcome: Result<(), &str>,
    ) {
        let record = gate::access_record(
            self.door,
            caller.map(|c| c.principal.as_str()),
            operation,
            body,
            outcome,
        );
        let field = |name: &str| record[name].as_str().unwrap_or("-").to_string();
        tracing::info!(
            target: "access",
            door = %field("door"),
            principal = %field("principal"),
            operation = %field("operation"),
            pipeline = %field("pipeline"),
            allowed = record["allowed"].as_bool().unwrap_or(false),
            refusal = %field("refusal"),
            "access"
        );
    }
}

fn respond(request_id: &str, answer: Answer) -> Result<Response<Body>, Error> {
    let mut builder = Response::builder()
        .status(answer.status)
        .header(CONTENT_TYPE, JSON_1_1)
        .header("x-amzn-RequestId", request_id);
    if let Some(kind) = answer.error {
        builder = builder.header("x-amzn-ErrorType", kind);
    }
    Ok(builder.body(Body::Text(answer.body.to_string()))?)
}

/// The IAM principal that signed the request, as the Function URL's IAM auth reports it.
fn iam_principal(request: &Request) -> Option<String> {
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
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerIamDescription,
        ApiGatewayV2httpRequestContext,
    };
    use lambda_http::request::RequestContext;
    use pipewright_core::access::keys::memory::MemoryKeyStore;
    use pipewright_core::store::memory::MemoryPipelineStore;

    fn request(target: Option<&str>, body: &str, principal: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/");
        if let Some(t) = target {
            builder = builder.header("X-Amz-Target", t);
        }
        let request: Request = builder.body(Body::from(body.to_string())).unwrap();
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        if let Some(arn) = principal {
            let mut iam = ApiGatewayRequestAuthorizerIamDescription::default();
            iam.user_arn = Some(arn.to_string());
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.iam = Some(iam);
            ctx.authorizer = Some(authorizer);
        }
        request.with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    fn body_json(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    const ADMIN: Option<&str> = Some("arn:aws:iam::123456789012:user/admin");

    /// The service behind `door`, with no engine and no IAM-policy check.
    fn service<'a>(
        store: &'a MemoryPipelineStore,
        keys: &'a CachedKeys<MemoryKeyStore>,
        door: Door,
    ) -> Service<'a, MemoryKeyStore> {
        Service {
            store,
            engine: None,
            region: "us-east-1",
            door,
            start_on_create: false,
            keys,
            iam_policies: None,
        }
    }

    #[tokio::test]
    async fn errors_are_aws_json_with_type_and_status() {
        let (store, keys) = (
            MemoryPipelineStore::default(),
            CachedKeys::new(MemoryKeyStore::default()),
        );
        let service = service(&store, &keys, Door::Iam);
        let response = service
            .handle(request(
                Some("CodePipeline_20150709.GetPipeline"),
                r#"{"name":"missing"}"#,
                ADMIN,
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

        let response = service.handle(request(None, "{}", ADMIN)).await.unwrap();
        assert_eq!(body_json(&response)["__type"], "MissingAction");
    }

    #[tokio::test]
    async fn the_iam_door_refuses_what_iam_did_not_authenticate() {
        let (store, keys) = (
            MemoryPipelineStore::default(),
            CachedKeys::new(MemoryKeyStore::default()),
        );
        let service = service(&store, &keys, Door::Iam);
        let response = service
            .handle(request(
                Some("CodePipeline_20150709.ListPipelines"),
                "",
                None,
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            body_json(&response)["__type"],
            "UnrecognizedClientException"
        );

        let response = service
            .handle(request(
                Some("CodePipeline_20150709.ListPipelines"),
                "",
                ADMIN,
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(&response), json!({ "pipelines": [] }));
    }

    #[tokio::test]
    async fn the_key_door_refuses_unsigned_requests_and_never_manages_keys() {
        let (store, keys) = (
            MemoryPipelineStore::default(),
            CachedKeys::new(MemoryKeyStore::default()),
        );
        let service = service(&store, &keys, Door::Key);
        // An IAM principal in the context means nothing on the key door.
        for target in [
            "CodePipeline_20150709.ListPipelines",
            "Pipewright_20261207.CreateAccessKey",
        ] {
            let response = service
                .handle(request(Some(target), "{}", ADMIN))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{target}");
            assert_eq!(
                body_json(&response)["__type"],
                "UnrecognizedClientException"
            );
        }
        assert!(keys.store().list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_iam_door_makes_and_lists_keys() {
        let (store, keys) = (
            MemoryPipelineStore::default(),
            CachedKeys::new(MemoryKeyStore::default()),
        );
        let service = service(&store, &keys, Door::Iam);
        let made = service
            .handle(request(
                Some("Pipewright_20261207.CreateAccessKey"),
                r#"{"name":"ci","allow":["codepipeline:Get*"],"pipelines":["web-*"]}"#,
                ADMIN,
            ))
            .await
            .unwrap();
        assert_eq!(made.status(), StatusCode::OK);
        let made = body_json(&made);
        let secret = made["accessKey"]["secretAccessKey"].as_str().unwrap();
        assert_eq!(secret.len(), 40);
        let listed = service
            .handle(request(
                Some("Pipewright_20261207.ListAccessKeys"),
                "{}",
                ADMIN,
            ))
            .await
            .unwrap();
        let listed = body_json(&listed);
        assert_eq!(listed["accessKeys"][0]["name"], "ci");
        assert!(!listed.to_string().contains(secret));
        let bad = service
            .handle(request(
                Some("Pipewright_20261207.CreateAccessKey"),
                r#"{"name":"ci","allow":["iam:*"]}"#,
                ADMIN,
            ))
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(body_json(&bad)["message"]
            .as_str()
            .unwrap()
            .starts_with("actions:"));
    }
}
