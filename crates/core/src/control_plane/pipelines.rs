//! CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{check_name, not_found, tags, ApiError, ServiceContext};
use crate::declaration::PipelineDeclaration;
use crate::engine::{Engine, StartRequest};
use crate::events::TriggerType;
use crate::execution::ExecutionTrigger;
use crate::store::{PipelineRecord, PipelineStore, StoreError, Tag};
use crate::validation;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreatePipelineInput {
    pipeline: PipelineDeclaration,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdatePipelineInput {
    pipeline: PipelineDeclaration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetPipelineInput {
    name: String,
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListPipelinesInput {
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeletePipelineInput {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PipelineMetadata {
    pipeline_arn: String,
    created: f64,
    updated: f64,
}

/// CreatePipeline's `tags`: the rules TagResource applies.
fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    tags::check_new_tags(tags)
}

/// Validate a declaration as CreatePipeline / UpdatePipeline do: all problems in one message.
///
/// An action type Pipewright does not run is CodePipeline's own error for it,
/// `InvalidActionDeclarationException`, naming the type (and every other problem found).
fn check_declaration(pipeline: &PipelineDeclaration) -> Result<(), ApiError> {
    validation::validate(pipeline).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| format!("pipeline.{p}")).collect();
        let kind = if problems.iter().any(|p| {
            p.path.ends_with(".actionTypeId") && p.reason.starts_with("unsupported action type")
        }) {
            "InvalidActionDeclarationException"
        } else {
            "InvalidStructureException"
        };
        ApiError::new(
            kind,
            format!("{} problem(s): {}", lines.len(), lines.join("; ")),
        )
    })
}

/// CreatePipeline. As in CodePipeline, the new pipeline then runs once (trigger
/// `CreatePipeline`) when `engine` is given ([`super::Services::start_on_create`]); a start that
/// fails is logged and does not undo the creation (its idempotency key lets the sweep resume a
/// start that was claimed but not run).
pub(super) async fn create_pipeline(
    store: &dyn PipelineStore,
    engine: Option<&Engine<'_>>,
    ctx: &ServiceContext,
    input: CreatePipelineInput,
) -> Result<Value, ApiError> {
    let mut pipeline = input.pipeline;
    validation::infer_pipeline_type(&mut pipeline);
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
    if let Some(engine) = engine {
        start_created(engine, ctx, &record).await;
    }
    let mut out = json!({ "pipeline": record.declaration.masked() });
    if !record.tags.is_empty() {
        out["tags"] = json!(record.tags);
    }
    Ok(out)
}

/// The first execution of a pipeline just created.
async fn start_created(engine: &Engine<'_>, ctx: &ServiceContext, record: &PipelineRecord) {
    let name = &record.declaration.name;
    let request = StartRequest {
        pipeline_name: name.clone(),
        pipeline_execution_id: ctx.new_id.clone(),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::CreatePipeline,
            trigger_detail: super::caller_detail(ctx, "CreatePipeline"),
        },
        variables: Vec::new(),
        source_revisions: Vec::new(),
        // Per creation: a pipeline deleted and created again under its name runs again.
        idempotency_key: Some(format!(
            "create/{name}/{}",
            (record.created * 1000.0) as u64
        )),
        now: ctx.now,
    };
    match engine.start_execution(request).await {
        Ok(started) => tracing::info!(
            pipeline = %name,
            execution = %started.pipeline_execution_id,
            "started the new pipeline (trigger CreatePipeline)"
        ),
        Err(e) => tracing::warn!(
            pipeline = %name,
            error = %e,
            "the new pipeline was created but its first execution did not start"
        ),
    }
}

pub(super) async fn update_pipeline(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: UpdatePipelineInput,
) -> Result<Value, ApiError> {
    let mut pipeline = input.pipeline;
    validation::infer_pipeline_type(&mut pipeline);
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

pub(super) async fn get_pipeline(
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

pub(super) async fn list_pipelines(
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

/// DeletePipeline. With the engine, what the pipeline runs goes too: running executions end,
/// its state machines and stage locks are deleted ([`crate::engine::retire`]), so a pipeline created
/// later under the name starts clean.
pub(super) async fn delete_pipeline(
    store: &dyn PipelineStore,
    engine: Option<&crate::engine::Engine<'_>>,
    ctx: &ServiceContext,
    input: DeletePipelineInput,
) -> Result<Value, ApiError> {
    check_name("name", &input.name)?;
    // CodePipeline answers success for a pipeline that does not exist.
    match engine {
        Some(engine) => {
            engine
                .delete_pipeline(&input.name, ctx.now)
                .await
                .map_err(super::executions::engine_error)?;
        }
        None => {
            store
                .delete(&input.name)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::control_plane::tests::{call, sample};
    use crate::store::memory::MemoryPipelineStore;
    use crate::store::PipelineStore;

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
        // A masked token does not follow the action to another repository.
        let mut moved = call(&store, "GetPipeline", json!({ "name": name }))
            .await
            .unwrap()["pipeline"]
            .clone();
        moved["stages"][0]["actions"][0]["configuration"]["Repo"] = json!("other");
        let err = call(
            &store,
            "UpdatePipeline",
            json!({ "pipeline": moved.clone() }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(
            err.message.contains("configuration.OAuthToken")
                && err.message.contains("Repo changed"),
            "{}",
            err.message
        );
        // With the token sent again it may.
        moved["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!("ghp_other");
        call(&store, "UpdatePipeline", json!({ "pipeline": moved }))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn action_types_pipewright_does_not_run_are_refused_as_codepipeline_refuses_them() {
        let store = MemoryPipelineStore::default();
        let mut pipeline = sample();
        pipeline["stages"][1]["actions"][0]["actionTypeId"] = json!({"category": "Build", "owner": "AWS", "provider": "ECRBuildAndPublish", "version": "1"});
        let err = call(&store, "CreatePipeline", json!({ "pipeline": pipeline }))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "InvalidActionDeclarationException");
        assert!(
            err.message
                .contains("unsupported action type Build/AWS/ECRBuildAndPublish/1")
                || err.message.contains("ECRBuildAndPublish"),
            "{}",
            err.message
        );
        let name = sample()["name"].as_str().unwrap().to_string();
        assert!(
            store.get(&name, None).await.unwrap().is_none(),
            "nothing was created"
        );
    }

    #[tokio::test]
    async fn a_token_may_be_a_secrets_manager_reference_and_a_bad_one_is_refused() {
        let store = MemoryPipelineStore::default();
        let mut pipeline = sample();
        pipeline["stages"][0]["actions"][0] = json!({
            "name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": "acme", "Repo": "app", "Branch": "main",
                "OAuthToken": "{{resolve:ssm-secure:github-token}}"},
            "outputArtifacts": pipeline["stages"][0]["actions"][0]["outputArtifacts"].clone(),
            "namespace": "SourceVariables"
        });
        let err = call(
            &store,
            "CreatePipeline",
            json!({ "pipeline": pipeline.clone() }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, "InvalidStructureException");
        assert!(
            err.message.contains(
                "pipeline.stages[0].actions[0].configuration.OAuthToken: a reference is written"
            ),
            "{}",
            err.message
        );
        let reference = "{{resolve:secretsmanager:team/github:SecretString:token}}";
        pipeline["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!(reference);
        let created = call(&store, "CreatePipeline", json!({ "pipeline": pipeline }))
            .await
            .unwrap();
        assert_eq!(
            created["pipeline"]["stages"][0]["actions"][0]["configuration"]["OAuthToken"],
            "****"
        );
        let name = created["pipeline"]["name"].as_str().unwrap();
        let stored = store.get(name, None).await.unwrap().unwrap();
        assert_eq!(
            stored.declaration.stages[0].actions[0]
                .configuration
                .as_ref()
                .unwrap()["OAuthToken"],
            reference
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
}
