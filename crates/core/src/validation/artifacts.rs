//! Artifact rules: output artifact names valid and unique, every input
//! artifact produced by an action that runs earlier.

use std::collections::BTreeSet;

use super::limits::{check_text, ARTIFACT_NAME};
use super::timeline::{unavailable_because, Consumer, Index, When};
use super::{action_path, Problems};
use crate::declaration::{ActionDeclaration, InputArtifact, PipelineDeclaration};

/// Output artifact names are valid and unique; every input artifact is
/// produced by an action that runs earlier.
pub(super) fn check_artifacts(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
    for (s, a, action) in p.actions() {
        let path = action_path(s, a);
        for (i, output) in action.output_artifacts().iter().enumerate() {
            let out_path = format!("{path}.outputArtifacts[{i}].name");
            check_text(out, &out_path, &output.name, &ARTIFACT_NAME);
            if let Some(first) = index.artifacts.get(output.name.as_str()) {
                if (first.stage, first.action) != (s, a)
                    || first_output_index(action, &output.name) != i
                {
                    out.add(
                        out_path,
                        format!(
                            "duplicate output artifact `{}`: {} already produces it",
                            output.name,
                            first.describe()
                        ),
                    );
                }
            }
        }
        let consumer = Consumer {
            when: When::action(s, action),
            action: Some((s, a)),
        };
        check_inputs(
            action.input_artifacts(),
            &format!("{path}.inputArtifacts"),
            &consumer,
            index,
            out,
        );
    }
}

fn first_output_index(action: &ActionDeclaration, name: &str) -> usize {
    action
        .output_artifacts()
        .iter()
        .position(|o| o.name == name)
        .unwrap_or(usize::MAX)
}

/// Each input must name an artifact produced before `consumer` runs.
pub(super) fn check_inputs(
    inputs: &[InputArtifact],
    path: &str,
    consumer: &Consumer,
    index: &Index,
    out: &mut Problems,
) {
    let mut seen = BTreeSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let in_path = format!("{path}[{i}].name");
        if !check_text(out, &in_path, &input.name, &ARTIFACT_NAME) {
            continue;
        }
        if !seen.insert(input.name.as_str()) {
            out.add(
                in_path,
                format!("artifact `{}` is listed twice", input.name),
            );
            continue;
        }
        match index.artifacts.get(input.name.as_str()) {
            None => out.add(
                in_path,
                format!("artifact `{}` is not produced by any action", input.name),
            ),
            Some(producer) => {
                if let Some(why) = unavailable_because(producer, consumer) {
                    out.add(
                        in_path,
                        format!("artifact `{}` is produced by {why}", input.name),
                    );
                }
            }
        }
    }
}
