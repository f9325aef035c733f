//! Namespace and variable rules: action namespaces, `#{namespace.key}`
//! references that resolve when they are read, and pipeline variables.

use std::collections::HashMap;

use super::limits::{check_len, check_text, NAMESPACE, VARIABLE_NAME};
use super::timeline::{unavailable_because, Consumer, Index, When};
use super::{action_path, Problems};
use crate::declaration::{ActionDeclaration, PipelineDeclaration};
use crate::variables::{
    self, CODEPIPELINE_KEYS, CODEPIPELINE_NAMESPACE, PIPELINE_VARIABLES_NAMESPACE,
};

/// Namespaces are valid, unique, not reserved, and not artifact names.
pub(super) fn check_namespaces(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
    for (s, a, action) in p.actions() {
        let Some(ns) = &action.namespace else {
            continue;
        };
        let path = format!("{}.namespace", action_path(s, a));
        if !check_text(out, &path, ns, &NAMESPACE) {
            continue;
        }
        if ns == CODEPIPELINE_NAMESPACE || ns == PIPELINE_VARIABLES_NAMESPACE {
            out.add(&path, format!("namespace `{ns}` is reserved"));
        }
        if let Some(first) = index.namespaces.get(ns.as_str()) {
            if (first.stage, first.action) != (s, a) {
                out.add(
                    &path,
                    format!(
                        "duplicate namespace `{ns}`: {} already declares it",
                        first.describe()
                    ),
                );
            }
        }
        if let Some(producer) = index.artifacts.get(ns.as_str()) {
            out.add(
                &path,
                format!(
                    "namespace `{ns}` is also the name of an artifact produced by {}",
                    producer.describe()
                ),
            );
        }
    }
}

/// The texts of an action that may hold variable references, with their paths.
fn referencing_texts(action: &ActionDeclaration, path: &str) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    for (key, value) in action.configuration() {
        texts.push((format!("{path}.configuration.{key}"), value.clone()));
    }
    for (i, command) in action.commands().iter().enumerate() {
        texts.push((format!("{path}.commands[{i}]"), command.clone()));
    }
    for (i, var) in action.environment_variables.iter().flatten().enumerate() {
        texts.push((
            format!("{path}.environmentVariables[{i}].value"),
            var.value.clone(),
        ));
    }
    texts
}

/// Every `#{namespace.key}` in configuration values, commands and
/// environment variable values resolves when its action runs.
pub(super) fn check_variable_references(
    p: &PipelineDeclaration,
    index: &Index,
    out: &mut Problems,
) {
    for (s, a, action) in p.actions() {
        let consumer = Consumer {
            when: When::action(s, action),
            action: Some((s, a)),
        };
        for (path, text) in referencing_texts(action, &action_path(s, a)) {
            check_references_in(p, index, &consumer, &path, &text, out);
        }
    }
}

pub(super) fn check_references_in(
    p: &PipelineDeclaration,
    index: &Index,
    consumer: &Consumer,
    path: &str,
    text: &str,
    out: &mut Problems,
) {
    for reference in variables::references(text) {
        let (ns, key) = (reference.namespace.as_str(), reference.key.as_str());
        let problem = if ns == CODEPIPELINE_NAMESPACE {
            (!CODEPIPELINE_KEYS.contains(&key)).then(|| {
                format!(
                    "variable {reference} is not a codepipeline variable (known: {})",
                    CODEPIPELINE_KEYS.join(", ")
                )
            })
        } else if ns == PIPELINE_VARIABLES_NAMESPACE {
            (!p.variables().iter().any(|v| v.name == key)).then(|| {
                format!("variable {reference} refers to pipeline variable `{key}`, which is not declared")
            })
        } else {
            match index.namespaces.get(ns) {
                None => Some(format!(
                    "variable {reference} refers to namespace `{ns}`, which no action declares"
                )),
                Some(producer) => unavailable_because(producer, consumer)
                    .map(|why| format!("variable {reference} refers to the namespace of {why}")),
            }
        };
        if let Some(reason) = problem {
            out.add(path, reason);
        }
    }
}

/// Pipeline variables: names valid and unique, values within limits.
pub(super) fn check_pipeline_variables(p: &PipelineDeclaration, out: &mut Problems) {
    let vars = p.variables();
    if vars.len() > 50 {
        out.add(
            "variables",
            format!(
                "a pipeline may declare at most 50 variables, found {}",
                vars.len()
            ),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, var) in vars.iter().enumerate() {
        let path = format!("variables[{i}]");
        check_text(out, &format!("{path}.name"), &var.name, &VARIABLE_NAME);
        if let Some(first) = names.get(var.name.as_str()) {
            out.add(
                format!("{path}.name"),
                format!(
                    "duplicate pipeline variable `{}`: variables[{first}] has the same name",
                    var.name
                ),
            );
        } else {
            names.insert(&var.name, i);
        }
        if let Some(value) = &var.default_value {
            check_len(out, &format!("{path}.defaultValue"), value, 1, 1000);
        }
        if let Some(description) = &var.description {
            check_len(out, &format!("{path}.description"), description, 0, 200);
        }
    }
}
