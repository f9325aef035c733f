//! Match a source-change event to pipelines and start them.

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::StartRequest;
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{ExecutionTrigger, SourceRevisionOverride};
use pipewright_core::store::{PipelineRecord, PipelineStore};
use pipewright_core::triggers;
use serde_json::{json, Value};

/// Start every pipeline whose S3 source watches the object the event is about. Returns the
/// executions started (or found already started for this event).
pub async fn handle(adapters: &Adapters, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let Some(change) = triggers::s3_object_created(&event.payload) else {
        tracing::info!("not a source-change event this function handles; ignored");
        return Ok(json!({ "started": [] }));
    };
    let engine = adapters.engine(&event.context.invoked_function_arn);
    let mut started = Vec::new();
    for pipeline in all_pipelines(adapters).await? {
        let declaration = &pipeline.declaration;
        let sources = triggers::s3_sources_watching(declaration, &change.bucket, &change.key);
        if sources.is_empty() {
            continue;
        }
        let source_revisions = match &change.version_id {
            Some(version) => sources
                .iter()
                .map(|action| SourceRevisionOverride {
                    action_name: action.to_string(),
                    revision_type: "S3_OBJECT_VERSION_ID".into(),
                    revision_value: version.clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        let request = StartRequest {
            pipeline_name: declaration.name.clone(),
            pipeline_execution_id: uuid::Uuid::new_v4().to_string(),
            trigger: ExecutionTrigger {
                trigger_type: TriggerType::CloudWatchEvent,
                trigger_detail: format!(
                    "s3://{}/{} (event {})",
                    change.bucket, change.key, change.event_id
                ),
            },
            variables: Vec::new(),
            source_revisions,
            idempotency_key: Some(format!("event/{}/{}", change.event_id, declaration.name)),
            now: pipewright_aws::now(),
        };
        match engine.start_execution(request).await {
            Ok(s) => {
                tracing::info!(pipeline = %declaration.name, execution = %s.pipeline_execution_id, new = s.new, "started");
                started.push(json!({ "pipelineName": declaration.name, "pipelineExecutionId": s.pipeline_execution_id, "new": s.new }));
            }
            Err(e) => tracing::error!(pipeline = %declaration.name, error = %e, "could not start"),
        }
    }
    if started.is_empty() {
        tracing::info!(bucket = %change.bucket, key = %change.key, "no pipeline watches this object");
    }
    Ok(json!({ "started": started }))
}

async fn all_pipelines(adapters: &Adapters) -> Result<Vec<PipelineRecord>, Error> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = adapters.pipelines.list(token.as_deref(), 100).await?;
        out.extend(page.items);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}
