//! CodePipeline's control-plane operations over the [`PipelineStore`]: the part of the `api`
//! function that decides, with no knowledge of HTTP or DynamoDB.
//!
//! Requests and responses are CodePipeline's JSON 1.1 members exactly (botocore's service model,
//! `codepipeline/2015-07-09`). Errors carry CodePipeline's exception names, which the function
//! sends as the AWS JSON `__type`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod actions;
mod approvals;
mod executions;
mod jobs;
mod state;
mod tags;

use crate::declaration::PipelineDeclaration;
use crate::engine::Engine;
use crate::store::{PipelineRecord, PipelineStore, StoreError, Tag};
use crate::validation;

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
        "CreatePipeline" => create_pipeline(store, ctx, parse(body)?).await,
        "UpdatePipeline" => update_pipeline(store, ctx, parse(body)?).await,
        "GetPipeline" => get_pipeline(store, ctx, parse(body)?).await,
        "ListPipelines" => list_pipelines(store, parse(body)?).await,
        "DeletePipeline" => delete_pipeline(store, parse(body)?).await,
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
        "ListActionExecutions" => actions::list(engine(services)?, parse(body)?).await,
        "PutJobSuccessResult" => jobs::put_success(engine(services)?, ctx, parse(body)?).await,
        "PutJobFailureResult" => jobs::put_failure(engine(services)?, ctx, parse(body)?).await,
        "PutApprovalResult" => approvals::put_result(engine(services)?, ctx, parse(body)?).await,
        "TagResource" => tags::tag(store, ctx, parse(body)?).await,
        "UntagResource" => tags::untag(store, ctx, parse(body)?).await,
        "ListTagsForResource" => tags::list(store, ctx, parse(body)?).await,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePipelineInput {
    pipeline: PipelineDeclaration,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePipelineInput {
    pipeline: PipelineDeclaration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetPipelineInput {
    name: String,
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListPipelinesInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletePipelineInput {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineMetadata {
    pipeline_arn: String,
    created: f64,
    updated: f64,
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

/// CreatePipeline's `tags`: the rules TagResource applies.
fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    tags::check_new_tags(tags)
}

/// Validate a declaration as CreatePipeline / UpdatePipeline do: all problems in one message.
fn check_declaration(pipeline: &PipelineDeclaration) -> Result<(), ApiError> {
    validation::validate(pipeline).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("pipeline.{p}")).collect();
        ApiError::new(
            "InvalidStructureException",
            format!("{} problem(s): {}", lines.len(), lines.join("; ")),
        )
    })
}

async fn create_pipeline(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: CreatePipelineInput,
) -> Result<Value, ApiError> {
    let mut pipeline = input.pipeline;
    check_declaration(&pipeline)?;
    check_tags(&input.tags)?;
    pipeline.version = Some(1);
    let record = PipelineRecord {
        declaration: pipeline,
        created: ctx.now,
        updated: ctx.now,
        tags: input.tags,
    };
    match store.create(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                "PipelineNameInUseException",
                format!(
                    "a pipeline named {} already exists",
                    record.declaration.name
                ),
            ))
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let mut out = json!({ "pipeline": record.declaration.masked() });
    if !record.tags.is_empty() {
        out["tags"] = json!(record.tags);
    }
    Ok(out)
}

async fn update_pipeline(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: UpdatePipelineInput,
) -> Result<Value, ApiError> {
    let pipeline = input.pipeline;
    check_declaration(&pipeline)?;
    // A concurrent TagResource (or update) makes the write lose; read again and carry the
    // tags now recorded over, a few times, before giving up.
    let mut conflict = String::new();
    for _ in 0..UPDATE_ATTEMPTS {
        let current = store
            .get(&pipeline.name, None)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| not_found(&pipeline.name))?;
        if let Some(given) = pipeline.version {
            if given != current.version() {
                return Err(ApiError::new(
                    "InvalidStructureException",
                    format!(
                        "pipeline.version: {given} is not the current version {} of {}",
                        current.version(),
                        pipeline.name
                    ),
                ));
            }
        }
        let mut declaration = pipeline.clone();
        declaration
            .keep_masked_secrets(&current.declaration)
            .map_err(ApiError::validation)?;
        declaration.version = Some(current.version() + 1);
        let record = PipelineRecord {
            declaration,
            created: current.created,
            updated: ctx.now,
            tags: current.tags,
        };
        match store.update(&record).await {
            Ok(()) => return Ok(json!({ "pipeline": record.declaration.masked() })),
            Err(StoreError::Conflict(m)) => conflict = m,
            Err(StoreError::NotFound(_)) => return Err(not_found(&record.declaration.name)),
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::new("ConcurrentModificationException", conflict))
}

/// How many times UpdatePipeline reads and writes again when a concurrent write won.
const UPDATE_ATTEMPTS: usize = 5;

async fn get_pipeline(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: GetPipelineInput,
) -> Result<Value, ApiError> {
    check_name("name", &input.name)?;
    let version = match input.version {
        None => None,
        Some(v) => Some(u32::try_from(v).ok().filter(|v| *v >= 1).ok_or_else(|| {
            ApiError::validation(format!("version: must be at least 1, got {v}"))
        })?),
    };
    let record = store
        .get(&input.name, version)
        .await
        .map_err(ApiError::internal)?;
    let record = match (record, version) {
        (Some(r), _) => r,
        (None, Some(v))
            if store
                .get(&input.name, None)
                .await
                .map_err(ApiError::internal)?
                .is_some() =>
        {
            return Err(ApiError::new(
                "PipelineVersionNotFoundException",
                format!("pipeline {} has no version {v}", input.name),
            ))
        }
        (None, _) => return Err(not_found(&input.name)),
    };
    let metadata = PipelineMetadata {
        pipeline_arn: ctx.pipeline_arn(&input.name),
        created: record.created,
        updated: record.updated,
    };
    Ok(json!({ "pipeline": record.declaration.masked(), "metadata": metadata }))
}

async fn list_pipelines(
    store: &dyn PipelineStore,
    input: ListPipelinesInput,
) -> Result<Value, ApiError> {
    let limit = match input.max_results {
        None => 100,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "maxResults: must be 1..1000, got {n}"
            )))
        }
    };
    if let Some(token) = &input.next_token {
        if token.is_empty() || token.len() > 2048 || check_name("nextToken", token).is_err() {
            return Err(ApiError::new(
                "InvalidNextTokenException",
                "nextToken: not a token this service issued",
            ));
        }
    }
    let page = store
        .list(input.next_token.as_deref(), limit)
        .await
        .map_err(ApiError::internal)?;
    let pipelines: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let d = &r.declaration;
            let mut summary = json!({
                "name": d.name,
                "version": r.version(),
                "created": r.created,
                "updated": r.updated,
            });
            if let Some(t) = &d.pipeline_type {
                summary["pipelineType"] = json!(t);
            }
            summary["executionMode"] = json!(d.execution_mode.unwrap_or_default());
            summary
        })
        .collect();
    let mut out = json!({ "pipelines": pipelines });
    if let Some(token) = page.next_token {
        out["nextToken"] = json!(token);
    }
    Ok(out)
}

async fn delete_pipeline(
    store: &dyn PipelineStore,
    input: DeletePipelineInput,
) -> Result<Value, ApiError> {
    check_name("name", &input.name)?;
    // CodePipeline answers success for a pipeline that does not exist.
    store
        .delete(&input.name)
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({}))
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNotFoundException",
        format!("pipeline {name} does not exist"),
    )
}

#[cfg(test)]
mod tests {
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

    fn sample() -> Value {
        let text = include_str!("../../../../infra/pipelines/sample.json");
        let v: Value = serde_json::from_str(text).unwrap();
        v.get("pipeline").cloned().unwrap_or(v)
    }

    async fn call(store: &MemoryPipelineStore, op: &str, body: Value) -> Result<Value, ApiError> {
        handle(
            &Services {
                pipelines: store,
                engine: None,
            },
            &ctx(),
            &format!("{TARGET_PREFIX}{op}"),
            body.to_string().as_bytes(),
        )
        .await
    }

    #[tokio::test]
    async fn oauth_tokens_are_answered_masked_and_kept_through_a_round_trip() {
        let store = MemoryPipelineStore::default();
        let mut pipeline = sample();
        pipeline["stages"][0]["actions"][0] = json!({
            "name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": "acme", "Repo": "app", "Branch": "main", "OAuthToken": "ghp_secret"},
            "outputArtifacts": pipeline["stages"][0]["actions"][0]["outputArtifacts"].clone(),
            "namespace": "SourceVariables"
        });
        let name = pipeline["name"].as_str().unwrap().to_string();
        let created = call(&store, "CreatePipeline", json!({ "pipeline": pipeline }))
            .await
            .unwrap();
        let token = |v: &Value| {
            v["pipeline"]["stages"][0]["actions"][0]["configuration"]["OAuthToken"].clone()
        };
        assert_eq!(token(&created), "****");
        let got = call(&store, "GetPipeline", json!({ "name": name }))
            .await
            .unwrap();
        assert_eq!(token(&got), "****");
        assert!(!got.to_string().contains("ghp_secret"));
        // GetPipeline's answer sent back as is: the stored token stays.
        let updated = call(
            &store,
            "UpdatePipeline",
            json!({ "pipeline": got["pipeline"] }),
        )
        .await
        .unwrap();
        assert_eq!(token(&updated), "****");
        let stored = store.get(&name, None).await.unwrap().unwrap();
        assert_eq!(stored.version(), 2);
        assert_eq!(
            stored.declaration.stages[0].actions[0]
                .configuration
                .as_ref()
                .unwrap()["OAuthToken"],
            "ghp_secret"
        );
        // A new token replaces it.
        let mut rotated = updated["pipeline"].clone();
        rotated["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!("ghp_new");
        call(&store, "UpdatePipeline", json!({ "pipeline": rotated }))
            .await
            .unwrap();
        let stored = store.get(&name, None).await.unwrap().unwrap();
        assert_eq!(
            stored.declaration.stages[0].actions[0]
                .configuration
                .as_ref()
                .unwrap()["OAuthToken"],
            "ghp_new"
        );
        // A masked value where no action of that type held a secret is refused, naming it.
        let mut renamed = call(&store, "GetPipeline", json!({ "name": name }))
            .await
            .unwrap()["pipeline"]
            .clone();
        renamed["stages"][0]["actions"][0]["name"] = json!("Fetch");
        let err = call(&store, "UpdatePipeline", json!({ "pipeline": renamed }))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(
            err.message
                .contains("pipeline.stages[0].actions[0].configuration.OAuthToken"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn create_get_update_list_delete() {
        let store = MemoryPipelineStore::default();
        let pipeline = sample();
        let name = pipeline["name"].as_str().unwrap().to_string();

        let created = call(&store, "CreatePipeline", json!({ "pipeline": pipeline }))
            .await
            .unwrap();
        assert_eq!(created["pipeline"]["version"], 1);

        let again = call(&store, "CreatePipeline", json!({ "pipeline": sample() }))
            .await
            .unwrap_err();
        assert_eq!(again.kind, "PipelineNameInUseException");

        let got = call(&store, "GetPipeline", json!({ "name": name }))
            .await
            .unwrap();
        assert_eq!(
            got["metadata"]["pipelineArn"],
            format!("arn:aws:codepipeline:us-east-1:123456789012:{name}")
        );
        assert_eq!(got["pipeline"]["stages"], sample()["stages"]);

        let updated = call(
            &store,
            "UpdatePipeline",
            json!({ "pipeline": got["pipeline"] }),
        )
        .await
        .unwrap();
        assert_eq!(updated["pipeline"]["version"], 2);
        let v1 = call(&store, "GetPipeline", json!({ "name": name, "version": 1 }))
            .await
            .unwrap();
        assert_eq!(v1["pipeline"]["version"], 1);
        let v9 = call(&store, "GetPipeline", json!({ "name": name, "version": 9 }))
            .await
            .unwrap_err();
        assert_eq!(v9.kind, "PipelineVersionNotFoundException");

        let listed = call(&store, "ListPipelines", json!({})).await.unwrap();
        assert_eq!(listed["pipelines"][0]["name"], name);
        assert_eq!(listed["pipelines"][0]["version"], 2);

        call(&store, "DeletePipeline", json!({ "name": name }))
            .await
            .unwrap();
        let gone = call(&store, "GetPipeline", json!({ "name": name }))
            .await
            .unwrap_err();
        assert_eq!(gone.kind, "PipelineNotFoundException");
    }

    #[tokio::test]
    async fn list_pages_through_every_pipeline_once() {
        let store = MemoryPipelineStore::default();
        for i in 0..5 {
            let mut p = sample();
            p["name"] = json!(format!("p{i}"));
            call(&store, "CreatePipeline", json!({ "pipeline": p }))
                .await
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut token: Option<Value> = None;
        loop {
            let mut req = json!({ "maxResults": 2 });
            if let Some(t) = &token {
                req["nextToken"] = t.clone();
            }
            let page = call(&store, "ListPipelines", req).await.unwrap();
            let names = page["pipelines"].as_array().unwrap();
            assert!(names.len() <= 2);
            seen.extend(
                names
                    .iter()
                    .map(|p| p["name"].as_str().unwrap().to_string()),
            );
            match page.get("nextToken") {
                Some(t) => token = Some(t.clone()),
                None => break,
            }
        }
        assert_eq!(seen, vec!["p0", "p1", "p2", "p3", "p4"]);
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
            },
            &ctx(),
            "CodePipeline_20150709.ListRuleExecutions",
            b"{}",
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "UnsupportedOperationException");

        assert!(store.list(None, 10).await.unwrap().items.is_empty());
    }
}
