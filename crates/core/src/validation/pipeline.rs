//! Pipeline-level rules: name, service role, artifact store(s), version, and
//! the features CodePipeline offers only in V2 pipelines.

use super::limits::{check_len, check_role_arn, check_text, BUCKET, ENTITY_NAME};
use super::{action_path, stage_path, Problems};
use crate::declaration::{
    ActionCategory, ArtifactStore, ExecutionMode, PipelineDeclaration, PipelineType,
};

/// Pipeline name, service role, artifact store(s), version.
pub(super) fn check_pipeline_fields(p: &PipelineDeclaration, out: &mut Problems) {
    check_text(out, "name", &p.name, &ENTITY_NAME);
    check_role_arn(out, "roleArn", &p.role_arn);
    match (&p.artifact_store, &p.artifact_stores) {
        (Some(_), Some(_)) => out.add(
            "artifactStores",
            "declare either artifactStore or artifactStores, not both",
        ),
        (None, None) => out.add(
            "artifactStore",
            "an artifact store is required: declare artifactStore (or artifactStores for cross-region actions)",
        ),
        _ => {}
    }
    if let Some(store) = &p.artifact_store {
        check_artifact_store(out, "artifactStore", store);
    }
    if let Some(stores) = &p.artifact_stores {
        if stores.is_empty() {
            out.add("artifactStores", "must name at least one region");
        }
        for (region, store) in stores {
            let path = format!("artifactStores.{region}");
            if !(4..=30).contains(&region.chars().count()) {
                out.add(
                    &path,
                    format!("region name `{region}` must be 4 to 30 characters long"),
                );
            }
            check_artifact_store(out, &path, store);
        }
    }
    if p.version == Some(0) {
        out.add("version", "must be at least 1");
    }
}

fn check_artifact_store(out: &mut Problems, path: &str, store: &ArtifactStore) {
    check_text(out, &format!("{path}.location"), &store.location, &BUCKET);
    if let Some(key) = &store.encryption_key {
        check_len(out, &format!("{path}.encryptionKey.id"), &key.id, 1, 400);
    }
}

/// Features CodePipeline offers only in V2 pipelines.
pub(super) fn check_v2_features(p: &PipelineDeclaration, out: &mut Problems) {
    if p.pipeline_type() == PipelineType::V2 {
        return;
    }
    let v1 = if p.pipeline_type.is_none() {
        "this pipeline declares no pipelineType, so it is V1"
    } else {
        "this pipeline is V1"
    };
    if !p.variables().is_empty() {
        out.add(
            "variables",
            format!("pipeline variables need pipelineType V2; {v1}"),
        );
    }
    if !p.triggers().is_empty() {
        out.add("triggers", format!("triggers need pipelineType V2; {v1}"));
    }
    let mode = p.execution_mode();
    if mode != ExecutionMode::Superseded {
        out.add(
            "executionMode",
            format!("{mode} execution mode needs pipelineType V2; {v1}"),
        );
    }
    for (s, a, action) in p.actions() {
        if action.action_type_id.category == ActionCategory::Compute
            && action.action_type_id.provider == "Commands"
        {
            out.add(
                format!("{}.actionTypeId", action_path(s, a)),
                format!("the Commands action needs pipelineType V2; {v1}"),
            );
        }
    }
    for (s, stage) in p.stages.iter().enumerate() {
        let sites = [
            ("beforeEntry", stage.before_entry.is_some()),
            ("onSuccess", stage.on_success.is_some()),
            ("onFailure", stage.on_failure.is_some()),
        ];
        for (member, present) in sites {
            if present {
                out.add(
                    format!("{}.{member}", stage_path(s)),
                    format!("{member} (stage conditions, rollback and retry) needs pipelineType V2; {v1}"),
                );
            }
        }
    }
}
