//! Structure rules: stage and action counts, names unique where they must
//! be, source actions in the first stage only, and the action members whose
//! limits do not depend on the action type (runOrder, role, region, sizes).

use std::collections::HashMap;

use super::limits::{
    check_command_sizes, check_configuration_sizes, check_count, check_len, check_region,
    check_role_arn, check_text, ENTITY_NAME, ENV_NAME,
};
use super::{action_path, stage_path, Problems};
use crate::declaration::{ActionCategory, PipelineDeclaration, StageDeclaration};

/// Stage and action counts; stage and action names, unique where they must be.
pub(super) fn check_stage_structure(p: &PipelineDeclaration, out: &mut Problems) {
    let stages = p.stages.len();
    if !(2..=50).contains(&stages) {
        out.add(
            "stages",
            format!("a pipeline needs 2 to 50 stages, found {stages}"),
        );
    }
    let actions = p.actions().count();
    if actions > 500 {
        out.add(
            "stages",
            format!("a pipeline may hold at most 500 actions, found {actions}"),
        );
    }
    let mut stage_names: HashMap<&str, usize> = HashMap::new();
    for (s, stage) in p.stages.iter().enumerate() {
        let path = stage_path(s);
        check_text(out, &format!("{path}.name"), &stage.name, &ENTITY_NAME);
        if let Some(first) = stage_names.get(stage.name.as_str()) {
            out.add(
                format!("{path}.name"),
                format!(
                    "duplicate stage name `{}`: {} has the same name",
                    stage.name,
                    stage_path(*first)
                ),
            );
        } else {
            stage_names.insert(&stage.name, s);
        }
        let count = stage.actions.len();
        if !(1..=50).contains(&count) {
            out.add(
                format!("{path}.actions"),
                format!("a stage needs 1 to 50 actions, found {count}"),
            );
        }
        check_action_names(stage, s, out);
        for (b, blocker) in stage.blockers.iter().flatten().enumerate() {
            check_len(
                out,
                &format!("{path}.blockers[{b}].name"),
                &blocker.name,
                1,
                100,
            );
        }
    }
}

fn check_action_names(stage: &StageDeclaration, s: usize, out: &mut Problems) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (a, action) in stage.actions.iter().enumerate() {
        let path = format!("{}.name", action_path(s, a));
        check_text(out, &path, &action.name, &ENTITY_NAME);
        if let Some(first) = names.get(action.name.as_str()) {
            out.add(
                path,
                format!(
                    "duplicate action name `{}` in stage `{}`: {} has the same name",
                    action.name,
                    stage.name,
                    action_path(s, *first)
                ),
            );
        } else {
            names.insert(&action.name, a);
        }
    }
}

/// Source actions in the first stage only, and only source actions there.
pub(super) fn check_action_placement(p: &PipelineDeclaration, out: &mut Problems) {
    for (s, a, action) in p.actions() {
        let category = action.action_type_id.category;
        let path = format!("{}.actionTypeId.category", action_path(s, a));
        if s == 0 && category == ActionCategory::Approval {
            out.add(
                path,
                "an approval action cannot be in the first stage, which may hold only source actions",
            );
        } else if s == 0 && category != ActionCategory::Source {
            out.add(
                path,
                format!("the first stage may hold only source actions, found a {category} action"),
            );
        } else if s > 0 && category == ActionCategory::Source {
            out.add(path, "source actions are only allowed in the first stage");
        }
    }
}

/// Members whose limits do not depend on the action type.
pub(super) fn check_action_fields(p: &PipelineDeclaration, out: &mut Problems) {
    for (s, a, action) in p.actions() {
        let path = action_path(s, a);
        if let Some(run_order) = action.run_order {
            if !(1..=999).contains(&run_order) {
                out.add(
                    format!("{path}.runOrder"),
                    format!("must be 1 to 999, found {run_order}"),
                );
            }
        }
        if let Some(role) = &action.role_arn {
            check_role_arn(out, &format!("{path}.roleArn"), role);
        }
        if let Some(region) = &action.region {
            let region_path = format!("{path}.region");
            check_region(out, &region_path, region);
            if let Some(stores) = &p.artifact_stores {
                if !stores.contains_key(region) {
                    let known: Vec<&str> = stores.keys().map(String::as_str).collect();
                    out.add(
                        region_path,
                        format!(
                            "artifactStores has no store for region `{region}` (it has: {})",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(config) = &action.configuration {
            check_configuration_sizes(out, &format!("{path}.configuration"), config, 1000);
            check_secret_references(out, &format!("{path}.configuration"), config);
        }
        if let Some(commands) = &action.commands {
            check_command_sizes(out, &format!("{path}.commands"), commands);
        }
        if let Some(vars) = &action.output_variables {
            let vars_path = format!("{path}.outputVariables");
            check_count(out, &vars_path, vars.len(), 1, 15, "output variables");
            for (i, var) in vars.iter().enumerate() {
                check_len(out, &format!("{vars_path}[{i}]"), var, 1, 128);
            }
        }
        for (i, output) in action.output_artifacts().iter().enumerate() {
            if let Some(files) = &output.files {
                let files_path = format!("{path}.outputArtifacts[{i}].files");
                check_count(out, &files_path, files.len(), 1, 10, "file paths");
                for (f, file) in files.iter().enumerate() {
                    check_len(out, &format!("{files_path}[{f}]"), file, 1, 128);
                }
            }
        }
        if let Some(env) = &action.environment_variables {
            let env_path = format!("{path}.environmentVariables");
            check_count(out, &env_path, env.len(), 1, 10, "environment variables");
            for (i, var) in env.iter().enumerate() {
                check_text(out, &format!("{env_path}[{i}].name"), &var.name, &ENV_NAME);
                check_len(out, &format!("{env_path}[{i}].value"), &var.value, 1, 2000);
            }
        }
    }
}

/// A secret configuration value written as a reference (`{{resolve:...}}`) must be a Secrets
/// Manager reference the action can read.
fn check_secret_references(
    out: &mut Problems,
    path: &str,
    config: &crate::declaration::Configuration,
) {
    use crate::declaration::{SecretReference, SECRET_CONFIGURATION_KEYS};
    for key in SECRET_CONFIGURATION_KEYS {
        if let Some(value) = config.get(*key) {
            if SecretReference::is_reference(value) {
                if let Err(reason) = SecretReference::parse(value) {
                    out.add(format!("{path}.{key}"), reason);
                }
            }
        }
    }
}
