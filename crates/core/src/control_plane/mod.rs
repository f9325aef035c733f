//! CodePipeline's control-plane operations over the [`PipelineStore`]: the part of the `api`
//! function that decides, with no knowledge of HTTP or DynamoDB.
//!
//! Requests and responses are CodePipeline's JSON 1.1 members exactly (botocore's service model,
//! `codepipeline/2015-07-09`). Errors carry CodePipeline's exception names, which the function
//! sends as the AWS JSON `__type`.

use serde::de::DeserializeOwned;
use serde_json::Value;

mod action_types;
mod actions;
mod approvals;
mod executions;
mod jobs;
mod pipelines;
mod state;
mod tags;

use crate::engine::Engine;
use crate::store::{PipelineStore, StoreError};

/// The `X-Amz-Target` prefix of CodePipeline's operations.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709.";

/// Where the service runs: what goes into ARNs.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
    /// 12-digit account id.
    pub account_id: String,
    /// Current time, seconds since the epoch.
    pub now: f64,
    /// A fresh UUID for whatever the request creates (an execution id).
    pub new_id: String,
    /// Who calls (the IAM principal's ARN, when the Function URL authenticated it): recorded
    /// as the approver by PutApprovalResult.
    pub caller: Option<String>,
}

impl ServiceContext {
    /// The pipeline's ARN in this region and account ([`crate::events::pipeline_arn`]).
    pub fn pipeline_arn(&self, name: &str) -> String {
        crate::events::pipeline_arn(&self.region, &self.account_id, name)
    }
}

/// An error to send back: CodePipeline's exception name and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    /// The exception name (`__type`), e.g. `PipelineNotFoundException`.
    pub kind: &'static str,
    /// What went wrong, naming the member and the reason.
    pub message: String,
    /// True for the service's own failures (HTTP 500) rather than the caller's (HTTP 400).
    pub server_fault: bool,
}

impl ApiError {
    /// A client error of kind `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            server_fault: false,
        }
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    pub(crate) fn internal(err: StoreError) -> Self {
        Self {
            kind: "InternalFailure",
            message: err.to_string(),
            server_fault: true,
        }
    }
}

/// What the operations work on.
pub struct Services<'a> {
    /// Pipeline declarations.
    pub pipelines: &'a dyn PipelineStore,
    /// The execution engine; without it, execution operations answer that they are unavailable.
    pub engine: Option<&'a Engine<'a>>,
    /// CreatePipeline starts the new pipeline's first execution, as CodePipeline does (the
    /// stack's `StartExecutionOnCreate`; needs `engine`).
    pub start_on_create: bool,
}

/// `triggerDetail` of an execution a caller started: the caller's ARN, as CodePipeline records
/// it, else `fallback` (a caller the door did not identify).
pub(crate) fn caller_detail(ctx: &ServiceContext, fallback: &str) -> String {
    ctx.caller
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| fallback.to_string())
}

/// Run the operation named by `target` (`CodePipeline_20150709.<Operation>`) on `body`.
pub async fn handle(
    services: &Services<'_>,
    ctx: &ServiceContext,
    target: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let store = services.pipelines;
    let operation = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        ApiError::new(
            "UnknownOperationException",
            format!("unknown target {target:?}"),
        )
    })?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    match operation {
        "CreatePipeline" => {
            let engine = services.engine.filter(|_| services.start_on_create);
            pipelines::create_pipeline(store, engine, ctx, parse(body)?).await
        }
        "UpdatePipeline" => pipelines::update_pipeline(store, ctx, parse(body)?).await,
        "GetPipeline" => pipelines::get_pipeline(store, ctx, parse(body)?).await,
        "ListPipelines" => pipelines::list_pipelines(store, parse(body)?).await,
        "DeletePipeline" => {
            pipelines::delete_pipeline(store, services.engine, ctx, parse(body)?).await
        }
        "StartPipelineExecution" => executions::start(engine(services)?, ctx, parse(body)?).await,
        "GetPipelineExecution" => executions::get(engine(services)?, parse(body)?).await,
        "ListPipelineExecutions" => executions::list(engine(services)?, parse(body)?).await,
        "StopPipelineExecution" => executions::stop(engine(services)?, ctx, parse(body)?).await,
        "RetryStageExecution" => executions::retry(engine(services)?, ctx, parse(body)?).await,
        "RollbackStage" => executions::rollback(engine(services)?, ctx, parse(body)?).await,
        "OverrideStageCondition" => {
            executions::override_condition(engine(services)?, ctx, parse(body)?).await
        }
        "DisableStageTransition" => {
            executions::transition(engine(services)?, ctx, parse(body)?, false).await
        }
        "EnableStageTransition" => {
            executions::transition(engine(services)?, ctx, parse(body)?, true).await
        }
        "GetPipelineState" => state::get(engine(services)?, parse(body)?).await,
        "ListActionExecutions" => {
            actions::list(engine(services)?, parse(body)?, actions::Listing::Actions).await
        }
        "ListRuleExecutions" => {
            actions::list(engine(services)?, parse(body)?, actions::Listing::Rules).await
        }
        "PutJobSuccessResult" => jobs::put_success(engine(services)?, ctx, parse(body)?).await,
        "PutJobFailureResult" => jobs::put_failure(engine(services)?, ctx, parse(body)?).await,
        "PutApprovalResult" => approvals::put_result(engine(services)?, ctx, parse(body)?).await,
        "TagResource" => tags::tag(store, ctx, parse(body)?).await,
        "UntagResource" => tags::untag(store, ctx, parse(body)?).await,
        "ListTagsForResource" => tags::list(store, ctx, parse(body)?).await,
        "ListActionTypes" => action_types::list_action_types(parse(body)?),
        "GetActionType" => action_types::get_action_type(parse(body)?),
        "ListRuleTypes" => action_types::list_rule_types(parse(body)?),
        other if KNOWN_OPERATIONS.contains(&other) => Err(ApiError::new(
            "UnsupportedOperationException",
            format!("{other} is a CodePipeline operation that Pipewright does not implement yet"),
        )),
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("unknown operation {other:?}"),
        )),
    }
}

fn engine<'a>(services: &'a Services<'a>) -> Result<&'a Engine<'a>, ApiError> {
    services.engine.ok_or_else(|| ApiError {
        kind: "InternalFailure",
        message: "the execution engine is not configured for this function".into(),
        server_fault: true,
    })
}

/// Every operation of CodePipeline's API (botocore's model), implemented or not.
pub const KNOWN_OPERATIONS: &[&str] = &[
    "AcknowledgeJob",
    "AcknowledgeThirdPartyJob",
    "CreateCustomActionType",
    "CreatePipeline",
    "DeleteCustomActionType",
    "DeletePipeline",
    "DeleteWebhook",
    "DeregisterWebhookWithThirdParty",
    "DisableStageTransition",
    "EnableStageTransition",
    "GetActionType",
    "GetJobDetails",
    "GetPipeline",
    "GetPipelineExecution",
    "GetPipelineState",
    "GetThirdPartyJobDetails",
    "ListActionExecutions",
    "ListActionTypes",
    "ListDeployActionExecutionTargets",
    "ListPipelineExecutions",
    "ListPipelines",
    "ListRuleExecutions",
    "ListRuleTypes",
    "ListTagsForResource",
    "ListWebhooks",
    "OverrideStageCondition",
    "PollForJobs",
    "PollForThirdPartyJobs",
    "PutActionRevision",
    "PutApprovalResult",
    "PutJobFailureResult",
    "PutJobSuccessResult",
    "PutThirdPartyJobFailureResult",
    "PutThirdPartyJobSuccessResult",
    "PutWebhook",
    "RegisterWebhookWithThirdParty",
    "RetryStageExecution",
    "RollbackStage",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "TagResource",
    "UntagResource",
    "UpdateActionType",
    "UpdatePipeline",
];

/// Decode a request body, naming the member that is wrong.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::new(
                "SerializationException",
                format!("request body is not valid JSON: {inner}"),
            )
        } else if path == "." {
            ApiError::validation(inner.to_string())
        } else {
            ApiError::validation(format!("{path}: {inner}"))
        }
    })
}

fn check_name(member: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(format!(
            "{member}: length must be 1..100, got {}",
            name.chars().count()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_')))
    {
        return Err(ApiError::validation(format!(
            "{member}: {c:?} is not allowed; use letters, digits and . @ - _"
        )));
    }
    Ok(())
}

/// `PipelineExecutionId`: 36 characters of `[0-9a-f-]` (a UUID).
fn parse_pipeline_execution_id(member: &str, id: &str) -> Result<(), ApiError> {
    if id.len() == 36
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c) || c == '-')
    {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "{member}: must be 36 characters of 0-9, a-f and -"
        )))
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNotFoundException",
        format!("pipeline {name} does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::memory::MemoryPipelineStore;

    fn ctx() -> ServiceContext {
        ServiceContext {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            now: 1_700_000_000.0,
            new_id: "00000000-0000-4000-8000-000000000001".into(),
            caller: None,
        }
    }

    pub(super) fn sample() -> Value {
        let text = include_str!("../../../../infra/pipelines/sample.json");
        let v: Value = serde_json::from_str(text).unwrap();
        v.get("pipeline").cloned().unwrap_or(v)
    }

    pub(super) async fn call(
        store: &MemoryPipelineStore,
        op: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        handle(
            &Services {
                pipelines: store,
                engine: None,
                start_on_create: false,
            },
            &ctx(),
            &format!("{TARGET_PREFIX}{op}"),
            body.to_string().as_bytes(),
        )
        .await
    }

    #[tokio::test]
    async fn bad_requests_name_the_member_and_write_nothing() {
        let store = MemoryPipelineStore::default();
        let mut p = sample();
        p["stages"][1]["actions"][0]["runOrder"] = json!("first");
        let err = call(&store, "CreatePipeline", json!({ "pipeline": p }))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(
            err.message
                .contains("pipeline.stages[1].actions[0].runOrder"),
            "{}",
            err.message
        );

        let mut p = sample();
        p["stages"] = json!([p["stages"][0]]);
        let err = call(&store, "CreatePipeline", json!({ "pipeline": p }))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "InvalidStructureException");
        assert!(err.message.contains("pipeline.stages"), "{}", err.message);

        let err = call(&store, "GetPipeline", json!({ "name": "bad name!" }))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(err.message.starts_with("name:"), "{}", err.message);

        let err = call(&store, "ListPipelines", json!({ "maxResults": 0 }))
            .await
            .unwrap_err();
        assert!(err.message.starts_with("maxResults:"), "{}", err.message);

        let err = handle(
            &Services {
                pipelines: &store,
                engine: None,
                start_on_create: false,
            },
            &ctx(),
            "CodePipeline_20150709.GetPipeline",
            b"{not json",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "SerializationException");
        let err = handle(
            &Services {
                pipelines: &store,
                engine: None,
                start_on_create: false,
            },
            &ctx(),
            "CodePipeline_20150709.Nope",
            b"{}",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "UnknownOperationException");
        let err = handle(
            &Services {
                pipelines: &store,
                engine: None,
                start_on_create: false,
            },
            &ctx(),
            "CodePipeline_20150709.PollForJobs",
            b"{}",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "UnsupportedOperationException");

        assert!(store.list(None, 10).await.unwrap().items.is_empty());
    }
}
