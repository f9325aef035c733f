//! A generator of random *valid* pipelines, shared by the property tests
//! (`properties.rs`, `asl_properties.rs`): sources in the first stage, then
//! 1 to 5 stages of 1 to 5 actions whose inputs and variable references only
//! name artifacts and namespaces produced strictly earlier.
//!
//! Used as `support::generate::pipeline_plan()` / `support::generate::build`.

use std::collections::BTreeMap;

use pipewright_core::declaration::{ArtifactStore, ArtifactStoreType, PipelineVariableDeclaration};
use pipewright_core::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ExecutionMode, InputArtifact,
    OutputArtifact, PipelineDeclaration, PipelineType, StageDeclaration,
};
use proptest::prelude::*;

/// The random choices behind one non-source action.
#[derive(Debug, Clone)]
pub struct ActionPlan {
    kind: u8,
    run_order: u32,
    picks: Vec<usize>,
    outputs: usize,
    namespace: bool,
    reference: Option<usize>,
}

fn action_plan() -> impl Strategy<Value = ActionPlan> {
    (
        0u8..6,
        1u32..=4,
        prop::collection::vec(0usize..1000, 0..=5),
        0usize..=3,
        any::<bool>(),
        prop::option::of(0usize..1000),
    )
        .prop_map(
            |(kind, run_order, picks, outputs, namespace, reference)| ActionPlan {
                kind,
                run_order,
                picks,
                outputs,
                namespace,
                reference,
            },
        )
}

/// Sources in the first stage, then 1 to 5 stages of 1 to 5 actions.
pub fn pipeline_plan() -> impl Strategy<Value = (usize, Vec<Vec<ActionPlan>>, u8)> {
    (
        1usize..=3,
        prop::collection::vec(prop::collection::vec(action_plan(), 1..=5), 1..=5),
        0u8..3,
    )
}

fn type_id(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: ActionOwner::Aws,
        provider: provider.into(),
        version: "1".into(),
    }
}

fn bare_action(name: String, type_id: ActionTypeId) -> ActionDeclaration {
    ActionDeclaration {
        name,
        action_type_id: type_id,
        run_order: None,
        configuration: None,
        commands: None,
        output_artifacts: None,
        input_artifacts: None,
        output_variables: None,
        role_arn: None,
        region: None,
        namespace: None,
        timeout_in_minutes: None,
        environment_variables: None,
    }
}

/// `(min inputs, max inputs, max outputs)` and the type of each plan kind.
fn kind_shape(kind: u8) -> (usize, usize, usize, ActionTypeId) {
    match kind {
        0 => (1, 5, 5, type_id(ActionCategory::Build, "CodeBuild")),
        1 => (1, 10, 1, type_id(ActionCategory::Compute, "Commands")),
        2 => (0, 5, 5, type_id(ActionCategory::Invoke, "Lambda")),
        3 => (0, 0, 0, type_id(ActionCategory::Approval, "Manual")),
        4 => (1, 1, 0, type_id(ActionCategory::Deploy, "S3")),
        _ => (1, 5, 5, type_id(ActionCategory::Test, "CodeBuild")),
    }
}

/// Builds a valid pipeline from the plan: inputs and variable references
/// only name artifacts and namespaces produced strictly earlier.
pub fn build((sources, stages, mode): (usize, Vec<Vec<ActionPlan>>, u8)) -> PipelineDeclaration {
    let mut artifact_counter = 0;
    let mut next_artifact = || {
        artifact_counter += 1;
        format!("Art{artifact_counter}")
    };
    // (artifacts, namespaces) available to every later stage.
    let mut done_artifacts: Vec<String> = Vec::new();
    let mut done_namespaces: Vec<String> = vec!["variables".into()];

    let mut first = StageDeclaration {
        name: "Source".into(),
        blockers: None,
        actions: Vec::new(),
        on_failure: None,
        on_success: None,
        before_entry: None,
    };
    for k in 0..sources {
        let mut action = bare_action(format!("Src{k}"), type_id(ActionCategory::Source, "S3"));
        action.configuration = Some(BTreeMap::from([
            ("S3Bucket".to_owned(), "bucket".to_owned()),
            ("S3ObjectKey".to_owned(), format!("src{k}.zip")),
        ]));
        let art = next_artifact();
        action.output_artifacts = Some(vec![OutputArtifact {
            name: art.clone(),
            files: None,
        }]);
        action.namespace = Some(format!("SrcNs{k}"));
        done_artifacts.push(art);
        done_namespaces.push(format!("SrcNs{k}"));
        first.actions.push(action);
    }

    let mut all_stages = vec![first];
    for (s, plans) in stages.iter().enumerate() {
        let stage_index = s + 1;
        // Outputs first, so availability inside the stage follows runOrder.
        let outputs: Vec<Vec<String>> = plans
            .iter()
            .map(|plan| {
                let (_, _, max_out, _) = kind_shape(plan.kind);
                (0..plan.outputs.min(max_out))
                    .map(|_| next_artifact())
                    .collect()
            })
            .collect();
        let namespaces: Vec<Option<String>> = plans
            .iter()
            .enumerate()
            .map(|(a, plan)| plan.namespace.then(|| format!("Ns{stage_index}_{a}")))
            .collect();
        let mut actions = Vec::new();
        for (a, plan) in plans.iter().enumerate() {
            let (min_in, max_in, _, id) = kind_shape(plan.kind);
            let mut available = done_artifacts.clone();
            let mut visible = done_namespaces.clone();
            for (b, other) in plans.iter().enumerate() {
                if other.run_order < plan.run_order {
                    available.extend(outputs[b].iter().cloned());
                    visible.extend(namespaces[b].iter().cloned());
                }
            }
            let mut inputs: Vec<String> = Vec::new();
            for pick in &plan.picks {
                let name = &available[pick % available.len()];
                if inputs.len() < max_in && !inputs.contains(name) {
                    inputs.push(name.clone());
                }
            }
            if inputs.len() < min_in {
                inputs.push(available[0].clone());
            }
            let reference = plan.reference.map(|r| {
                let ns = &visible[r % visible.len()];
                if ns == "variables" {
                    "#{variables.Env}".to_owned()
                } else {
                    format!("#{{{ns}.Value}}")
                }
            });

            let mut action = bare_action(format!("Act{stage_index}_{a}"), id);
            action.run_order = Some(plan.run_order);
            let reference_text = reference.unwrap_or_else(|| "plain".to_owned());
            let config: Vec<(&str, String)> = match plan.kind {
                0 | 5 => vec![
                    ("ProjectName", "project".into()),
                    (
                        "EnvironmentVariables",
                        format!(r#"[{{"name":"REF","value":"{reference_text}"}}]"#),
                    ),
                ],
                1 => {
                    action.commands = Some(vec!["make".into(), format!("echo {reference_text}")]);
                    vec![]
                }
                2 => vec![
                    ("FunctionName", "fn".into()),
                    ("UserParameters", reference_text),
                ],
                3 => vec![("CustomData", reference_text)],
                _ => vec![
                    ("BucketName", "site".into()),
                    ("Extract", "false".into()),
                    ("ObjectKey", reference_text),
                ],
            };
            if !config.is_empty() {
                action.configuration =
                    Some(config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
            }
            if !inputs.is_empty() {
                action.input_artifacts = Some(
                    inputs
                        .into_iter()
                        .map(|name| InputArtifact { name })
                        .collect(),
                );
            }
            if !outputs[a].is_empty() {
                action.output_artifacts = Some(
                    outputs[a]
                        .iter()
                        .map(|name| OutputArtifact {
                            name: name.clone(),
                            files: None,
                        })
                        .collect(),
                );
            }
            action.namespace = namespaces[a].clone();
            actions.push(action);
        }
        for (a, _) in plans.iter().enumerate() {
            done_artifacts.extend(outputs[a].iter().cloned());
            done_namespaces.extend(namespaces[a].iter().cloned());
        }
        all_stages.push(StageDeclaration {
            name: format!("Stage{stage_index}"),
            blockers: None,
            actions,
            on_failure: None,
            on_success: None,
            before_entry: None,
        });
    }

    PipelineDeclaration {
        name: "generated".into(),
        role_arn: "arn:aws:iam::123456789012:role/generated".into(),
        artifact_store: Some(ArtifactStore {
            store_type: ArtifactStoreType::S3,
            location: "generated-artifacts".into(),
            encryption_key: None,
        }),
        artifact_stores: None,
        stages: all_stages,
        version: Some(1),
        execution_mode: Some(match mode {
            0 => ExecutionMode::Superseded,
            1 => ExecutionMode::Queued,
            _ => ExecutionMode::Parallel,
        }),
        pipeline_type: Some(PipelineType::V2),
        variables: Some(vec![PipelineVariableDeclaration {
            name: "Env".into(),
            default_value: Some("test".into()),
            description: None,
        }]),
        triggers: None,
    }
}
