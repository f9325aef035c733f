//! Per-action-type rules: the action type must be one Pipewright implements
//! ([`crate::providers`]), with its artifact counts, configuration keys and
//! values, commands and timeout.

use super::{action_path, Problems};
use crate::codebuild;
use crate::declaration::{ActionDeclaration, Configuration, PipelineDeclaration};
use crate::providers::{self, CommandsUse};
use crate::variables;

/// What each action type requires: it must be one Pipewright implements, with
/// the right number of artifacts, its configuration keys, and its timeout.
pub(super) fn check_action_types(p: &PipelineDeclaration, out: &mut Problems) {
    for (s, a, action) in p.actions() {
        let path = action_path(s, a);
        let id = &action.action_type_id;
        let Some(spec) = providers::lookup(id) else {
            out.add(
                format!("{path}.actionTypeId"),
                format!(
                    "unsupported action type {id}; supported: {}",
                    providers::supported_list()
                ),
            );
            if let Some(timeout) = action.timeout_in_minutes {
                if !(5..=providers::MAX_TIMEOUT_MINUTES).contains(&timeout) {
                    out.add(
                        format!("{path}.timeoutInMinutes"),
                        format!(
                            "must be 5 to {} minutes, found {timeout}",
                            providers::MAX_TIMEOUT_MINUTES
                        ),
                    );
                }
            }
            continue;
        };
        let type_name = spec.short_name();

        let inputs = action.input_artifacts().len();
        if !spec.input_artifacts.allows(inputs) {
            out.add(
                format!("{path}.inputArtifacts"),
                format!(
                    "{type_name} takes {} input artifacts, found {inputs}",
                    spec.input_artifacts
                ),
            );
        }
        let outputs = action.output_artifacts().len();
        if !spec.output_artifacts.allows(outputs) {
            out.add(
                format!("{path}.outputArtifacts"),
                format!(
                    "{type_name} produces {} output artifacts, found {outputs}",
                    spec.output_artifacts
                ),
            );
        }

        let config = action.configuration();
        for key in spec.required_keys(config) {
            if !config.contains_key(key) {
                out.add(
                    format!("{path}.configuration"),
                    format!("{type_name} requires configuration key `{key}`"),
                );
            }
        }
        if let Some(allowed) = spec.allowed_configuration {
            for key in config.keys() {
                if !allowed.contains(&key.as_str()) {
                    out.add(
                        format!("{path}.configuration.{key}"),
                        format!(
                            "{type_name} does not take configuration key `{key}`; allowed: {}",
                            allowed.join(", ")
                        ),
                    );
                }
            }
        }
        check_configuration_values(spec, config, &path, out);
        if spec.provider == "CodeBuild" {
            check_codebuild(action, &path, out);
        }
        if spec.provider == "ECS" {
            check_ecs(action, &path, out);
        }

        match (spec.commands, &action.commands) {
            (CommandsUse::Required, None) => out.add(
                format!("{path}.commands"),
                format!("{type_name} requires a commands list (1 to 50 commands)"),
            ),
            (CommandsUse::NotUsed, Some(_)) => out.add(
                format!("{path}.commands"),
                format!("{type_name} does not run commands; only Compute/AWS/Commands does"),
            ),
            _ => {}
        }

        if let Some(timeout) = action.timeout_in_minutes {
            let t = spec.timeout;
            if !(t.min_minutes..=t.max_minutes).contains(&timeout) {
                out.add(
                    format!("{path}.timeoutInMinutes"),
                    format!(
                        "must be {} to {} minutes for {type_name}, found {timeout}",
                        t.min_minutes, t.max_minutes
                    ),
                );
            }
        }
    }
}

/// An ECS action's `DeploymentTimeout`: whole minutes, 1 to 60 (the action's own limit).
fn check_ecs(action: &ActionDeclaration, path: &str, out: &mut Problems) {
    if let Some(text) = action
        .configuration()
        .get("DeploymentTimeout")
        .filter(|v| variables::references(v).is_empty())
    {
        if crate::ecs::deployment_timeout_minutes(text).is_none() {
            out.add(
                format!("{path}.configuration.DeploymentTimeout"),
                format!("`{text}` is not a number of minutes from 1 to 60"),
            );
        }
    }
}

/// A CodeBuild action's `EnvironmentVariables` (a JSON array CodeBuild reads) and
/// `PrimarySource` (one of its input artifacts); batch builds are refused.
fn check_codebuild(action: &ActionDeclaration, path: &str, out: &mut Problems) {
    let config = action.configuration();
    if config.get("BatchEnabled").map(String::as_str) == Some("true") {
        out.add(
            format!("{path}.configuration.BatchEnabled"),
            "batch builds are not run by Pipewright: run the batch's builds as CodeBuild \
             actions of one stage (same runOrder to run them together)",
        );
    }
    // A value made of variable references is only known at run time.
    if let Some(text) = config
        .get("EnvironmentVariables")
        .filter(|text| text.trim_start().starts_with('[') || variables::references(text).is_empty())
    {
        if let Err(reason) = codebuild::environment_variables(text) {
            out.add(format!("{path}.configuration.EnvironmentVariables"), reason);
        }
    }
    // Secondary sources and artifacts are named after the artifacts, and CodeBuild takes only
    // letters, digits and underscores there (`CODEBUILD_SRC_DIR_<name>`).
    let inputs = action.input_artifacts();
    let outputs = action.output_artifacts();
    let named: Vec<(&str, &str)> = inputs
        .iter()
        .map(|a| ("inputArtifacts", a.name.as_str()))
        .filter(|_| inputs.len() > 1)
        .chain(
            outputs
                .iter()
                .map(|a| ("outputArtifacts", a.name.as_str()))
                .filter(|_| outputs.len() > 1),
        )
        .collect();
    for (member, name) in named {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.add(
                format!("{path}.{member}"),
                format!(
                    "artifact {name}: with several, CodeBuild names each after its artifact, \
                     and takes only letters, digits and _ there"
                ),
            );
        }
    }
    if let Some(name) = config
        .get("PrimarySource")
        .filter(|v| variables::references(v).is_empty())
    {
        let inputs: Vec<&str> = action
            .input_artifacts()
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        if let Err(reason) = codebuild::primary_source(&inputs, Some(name)) {
            out.add(format!("{path}.configuration.PrimarySource"), reason);
        }
    }
}

/// Configuration values from a closed set (CloudFormation's `ActionMode`,
/// S3 deploy's `Extract`). A value holding a variable reference is resolved
/// only at run time, so it is not checked here.
fn check_configuration_values(
    spec: &providers::ActionTypeSpec,
    config: &Configuration,
    path: &str,
    out: &mut Problems,
) {
    for (key, allowed) in spec.allowed_values {
        let Some(value) = config.get(*key) else {
            continue;
        };
        if allowed.contains(&value.as_str()) || !variables::references(value).is_empty() {
            continue;
        }
        out.add(
            format!("{path}.configuration.{key}"),
            format!(
                "`{value}` is not a valid {key} for {}; use one of: {}",
                spec.short_name(),
                allowed.join(", ")
            ),
        );
    }
}
