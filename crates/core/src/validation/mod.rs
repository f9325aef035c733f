//! Validation: whether a declaration describes a pipeline Pipewright can run.
//!
//! [`validate`] reports *every* problem at once, each with the path of the
//! member at fault (`stages[1].actions[0].inputArtifacts[0].name`) and a
//! reason. The rules are CodePipeline's documented pipeline structure rules,
//! the limits of botocore's service model, and the facts about each action
//! type in [`crate::providers`].
//!
//! Each rule family is a submodule of small `check_*` functions, called in
//! turn by [`validate`]; problems are then sorted into document order:
//!
//! - `pipeline`: name, service role, artifact stores, V2-only features;
//! - `structure`: stages, actions, names, placement, runOrder and sizes;
//! - `action_types`: what each action type requires;
//! - `artifacts`: output names, inputs produced earlier;
//! - `variables`: namespaces, variable references, pipeline variables;
//! - `triggers`: git triggers and their filters;
//! - `conditions`: stage conditions and their rules.
//!
//! The checks they share are in `limits` (text, counts, ARNs) and
//! `timeline` (who produces what, and when).

mod action_types;
mod artifacts;
mod conditions;
mod limits;
mod pipeline;
mod structure;
mod timeline;
mod triggers;
mod variables;

use std::cmp::Ordering;

use crate::declaration::PipelineDeclaration;

use self::action_types::check_action_types;
use self::artifacts::check_artifacts;
use self::conditions::check_stage_conditions;
use self::pipeline::{check_pipeline_fields, check_v2_features};
use self::structure::{check_action_fields, check_action_placement, check_stage_structure};
use self::timeline::Index;
use self::triggers::check_triggers;
use self::variables::{check_namespaces, check_pipeline_variables, check_variable_references};

/// One thing wrong with a declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Problem {
    /// Where, e.g. `stages[1].actions[0].inputArtifacts[0].name`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// A pipeline that declares no `pipelineType` but uses V2 features (variables, triggers, an
/// execution mode other than SUPERSEDED, the Commands action, stage conditions) is V2, as
/// CodePipeline documents ("including V2 parameters ... will result in the pipeline having the
/// V2 type"): set it so. A declared `V1` stays V1, and validation says what needs V2.
pub fn infer_pipeline_type(pipeline: &mut PipelineDeclaration) {
    if pipeline.pipeline_type.is_some() {
        return;
    }
    let mut out = Problems::default();
    check_v2_features(pipeline, &mut out);
    if !out.0.is_empty() {
        pipeline.pipeline_type = Some(crate::declaration::PipelineType::V2);
    }
}

/// Checks every rule and returns all problems found, in document order.
pub fn validate(pipeline: &PipelineDeclaration) -> Result<(), Vec<Problem>> {
    let mut out = Problems::default();
    let index = Index::build(pipeline);
    check_pipeline_fields(pipeline, &mut out);
    check_v2_features(pipeline, &mut out);
    check_stage_structure(pipeline, &mut out);
    check_action_placement(pipeline, &mut out);
    check_action_fields(pipeline, &mut out);
    check_action_types(pipeline, &mut out);
    check_artifacts(pipeline, &index, &mut out);
    check_namespaces(pipeline, &index, &mut out);
    check_variable_references(pipeline, &index, &mut out);
    check_pipeline_variables(pipeline, &mut out);
    check_triggers(pipeline, &mut out);
    check_stage_conditions(pipeline, &index, &mut out);
    out.finish()
}

// ---------------------------------------------------------------------------
// Collecting problems
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// Sorts the problems into document order (numbers in paths compare as
    /// numbers; problems on the same path keep the order they were found in).
    fn finish(mut self) -> Result<(), Vec<Problem>> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.0.sort_by(|a, b| compare_paths(&a.path, &b.path));
        Err(self.0)
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PathPart<'a> {
    Number(u64),
    Text(&'a str),
}

fn path_parts(path: &str) -> Vec<PathPart<'_>> {
    let mut parts = Vec::new();
    let mut rest = path;
    while let Some(first) = rest.chars().next() {
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(if digits {
            PathPart::Number(run.parse().unwrap_or(u64::MAX))
        } else {
            PathPart::Text(run)
        });
        rest = tail;
    }
    parts
}

fn compare_paths(a: &str, b: &str) -> Ordering {
    path_parts(a).cmp(&path_parts(b))
}

fn stage_path(stage: usize) -> String {
    format!("stages[{stage}]")
}

fn action_path(stage: usize, action: usize) -> String {
    format!("stages[{stage}].actions[{action}]")
}

#[cfg(test)]
mod tests;
