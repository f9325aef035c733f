//! Validation: whether a declaration describes a pipeline Pipewright can run.
//!
//! [`validate`] reports *every* problem at once, each with the path of the
//! member at fault (`stages[1].actions[0].inputArtifacts[0].name`) and a
//! reason. The rules are CodePipeline's documented pipeline structure rules,
//! the limits of botocore's service model, and the facts about each action
//! type in [`crate::providers`].
//!
//! Each rule family is one small function below (`check_*`), called in turn
//! by [`validate`]; problems are then sorted into document order.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use crate::declaration::{
    ActionCategory, ActionDeclaration, ArtifactStore, Condition, ConditionResult, Configuration,
    ExecutionMode, GitFilterCriteria, InputArtifact, PipelineDeclaration, PipelineType,
    StageDeclaration,
};
use crate::providers::{self, CommandsUse};
use crate::variables::{
    self, CODEPIPELINE_KEYS, CODEPIPELINE_NAMESPACE, PIPELINE_VARIABLES_NAMESPACE,
};

/// One thing wrong with a declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Problem {
    /// Where, e.g. `stages[1].actions[0].inputArtifacts[0].name`.
    pub path: String,
    /// What is wrong.
    pub reason: String,
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

// ---------------------------------------------------------------------------
// Text, count and ARN checks shared by the rules
// ---------------------------------------------------------------------------

/// A botocore string constraint: allowed characters and length.
struct TextRule {
    allowed: fn(char) -> bool,
    allowed_text: &'static str,
    min: usize,
    max: usize,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_')
}

fn namespace_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_')
}

fn artifact_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

fn env_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn bucket_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.')
}

/// Pipeline, stage, action and rule names: `[A-Za-z0-9.@\-_]+`, 1 to 100.
const ENTITY_NAME: TextRule = TextRule {
    allowed: name_char,
    allowed_text: "A-Z a-z 0-9 . @ - _",
    min: 1,
    max: 100,
};

/// Action namespaces: `[A-Za-z0-9@\-_]+`, 1 to 100.
const NAMESPACE: TextRule = TextRule {
    allowed: namespace_char,
    allowed_text: "A-Z a-z 0-9 @ - _",
    min: 1,
    max: 100,
};

/// Pipeline variable names: `[A-Za-z0-9@\-_]+`, 1 to 128.
const VARIABLE_NAME: TextRule = TextRule {
    allowed: namespace_char,
    allowed_text: "A-Z a-z 0-9 @ - _",
    min: 1,
    max: 128,
};

/// Artifact names: `[a-zA-Z0-9_\-]+`, 1 to 100.
const ARTIFACT_NAME: TextRule = TextRule {
    allowed: artifact_char,
    allowed_text: "A-Z a-z 0-9 _ -",
    min: 1,
    max: 100,
};

/// Environment variable names: `[A-Za-z0-9_]+`, 1 to 128.
const ENV_NAME: TextRule = TextRule {
    allowed: env_name_char,
    allowed_text: "A-Z a-z 0-9 _",
    min: 1,
    max: 128,
};

/// Artifact store locations (bucket names): `[a-zA-Z0-9\-\.]+`, 3 to 63.
const BUCKET: TextRule = TextRule {
    allowed: bucket_char,
    allowed_text: "A-Z a-z 0-9 - .",
    min: 3,
    max: 63,
};

/// Checks `value` against `rule`; returns whether it passed.
fn check_text(out: &mut Problems, path: &str, value: &str, rule: &TextRule) -> bool {
    if !check_len(out, path, value, rule.min, rule.max) {
        return false;
    }
    if let Some(bad) = value.chars().find(|c| !(rule.allowed)(*c)) {
        out.add(
            path,
            format!(
                "`{value}` contains {bad:?}, which is not allowed; use only {}",
                rule.allowed_text
            ),
        );
        return false;
    }
    true
}

/// Checks that `value` is `min` to `max` characters long; returns whether it is.
fn check_len(out: &mut Problems, path: &str, value: &str, min: usize, max: usize) -> bool {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        return true;
    }
    if n == 0 {
        out.add(path, format!("must not be empty (1 to {max} characters)"));
    } else {
        out.add(
            path,
            format!("must be {min} to {max} characters long, found {n}"),
        );
    }
    false
}

/// Checks that a list holds `min` to `max` items.
fn check_count(out: &mut Problems, path: &str, n: usize, min: usize, max: usize, noun: &str) {
    if !(min..=max).contains(&n) {
        out.add(path, format!("must hold {min} to {max} {noun}, found {n}"));
    }
}

/// botocore's `RoleArn`: `arn:aws(-[\w]+)*:iam::[0-9]{12}:role/.*`, at most 1024.
fn is_role_arn(s: &str) -> bool {
    let Some(mut rest) = s.strip_prefix("arn:aws") else {
        return false;
    };
    while let Some(after_dash) = rest.strip_prefix('-') {
        let word = after_dash
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after_dash.len());
        if word == 0 {
            return false;
        }
        rest = &after_dash[word..];
    }
    let Some(rest) = rest.strip_prefix(":iam::") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() >= 18
        && bytes[..12].iter().all(u8::is_ascii_digit)
        && rest[12..].starts_with(":role/")
}

fn check_role_arn(out: &mut Problems, path: &str, value: &str) {
    if !is_role_arn(value) || value.chars().count() > 1024 {
        out.add(
            path,
            format!(
                "`{value}` is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
            ),
        );
    }
}

fn check_region(out: &mut Problems, path: &str, region: &str) {
    check_len(out, path, region, 4, 30);
}

/// Configuration maps: keys 1 to 50 characters, values 1 to `max_value`.
fn check_configuration_sizes(
    out: &mut Problems,
    path: &str,
    config: &Configuration,
    max_value: usize,
) {
    for (key, value) in config {
        if !(1..=50).contains(&key.chars().count()) {
            out.add(
                path,
                format!("configuration key `{key}` must be 1 to 50 characters long"),
            );
        }
        check_len(out, &format!("{path}.{key}"), value, 1, max_value);
    }
}

/// Command lists: 1 to 50 commands, each 1 to 1000 characters.
fn check_command_sizes(out: &mut Problems, path: &str, commands: &[String]) {
    check_count(out, path, commands.len(), 1, 50, "commands");
    for (i, command) in commands.iter().enumerate() {
        check_len(out, &format!("{path}[{i}]"), command, 1, 1000);
    }
}

// ---------------------------------------------------------------------------
// Who produces what, and when
// ---------------------------------------------------------------------------

/// A point in a pipeline execution: a stage and a slot inside it. Slot 0 is
/// the stage's entry, `runOrder + 1` an action group, `u64::MAX` its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct When {
    stage: usize,
    slot: u64,
}

impl When {
    fn action(stage: usize, action: &ActionDeclaration) -> When {
        When {
            stage,
            slot: u64::from(action.run_order()) + 1,
        }
    }

    fn stage_entry(stage: usize) -> When {
        When { stage, slot: 0 }
    }

    fn stage_exit(stage: usize) -> When {
        When {
            stage,
            slot: u64::MAX,
        }
    }
}

/// An action that produces an artifact or declares a namespace.
#[derive(Debug, Clone, Copy)]
struct Producer<'a> {
    stage: usize,
    action: usize,
    name: &'a str,
    run_order: u32,
    when: When,
}

impl Producer<'_> {
    /// "`Build` (stages[1].actions[0])".
    fn describe(&self) -> String {
        format!("`{}` ({})", self.name, action_path(self.stage, self.action))
    }
}

/// Who reads an artifact or a variable: an action, or a stage condition.
#[derive(Debug, Clone, Copy)]
struct Consumer {
    when: When,
    /// The reading action's (stage, action) indices; `None` for a condition.
    action: Option<(usize, usize)>,
}

/// Why a producer's output is not available to a consumer.
fn unavailable_because(producer: &Producer, consumer: &Consumer) -> Option<String> {
    if consumer.action == Some((producer.stage, producer.action)) {
        return Some("this same action".to_owned());
    }
    match producer.when.cmp(&consumer.when) {
        Ordering::Less => None,
        Ordering::Equal => Some(format!(
            "{}, which runs in the same action group (runOrder {}); it must run in an earlier stage or at a lower runOrder",
            producer.describe(),
            producer.run_order
        )),
        Ordering::Greater => Some(if consumer.action.is_some() {
            format!("{}, which runs after this action", producer.describe())
        } else {
            format!(
                "{}, which has not run when this condition is checked",
                producer.describe()
            )
        }),
    }
}

/// The first producer of every output artifact and of every namespace.
struct Index<'a> {
    artifacts: HashMap<&'a str, Producer<'a>>,
    namespaces: HashMap<&'a str, Producer<'a>>,
}

impl<'a> Index<'a> {
    fn build(pipeline: &'a PipelineDeclaration) -> Index<'a> {
        let mut artifacts = HashMap::new();
        let mut namespaces = HashMap::new();
        for (s, a, action) in pipeline.actions() {
            let producer = Producer {
                stage: s,
                action: a,
                name: &action.name,
                run_order: action.run_order(),
                when: When::action(s, action),
            };
            for output in action.output_artifacts() {
                artifacts.entry(output.name.as_str()).or_insert(producer);
            }
            if let Some(ns) = &action.namespace {
                namespaces.entry(ns.as_str()).or_insert(producer);
            }
        }
        Index {
            artifacts,
            namespaces,
        }
    }
}

// ---------------------------------------------------------------------------
// Rule families
// ---------------------------------------------------------------------------

/// Pipeline name, service role, artifact store(s), version.
fn check_pipeline_fields(p: &PipelineDeclaration, out: &mut Problems) {
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
fn check_v2_features(p: &PipelineDeclaration, out: &mut Problems) {
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

/// Stage and action counts; stage and action names, unique where they must be.
fn check_stage_structure(p: &PipelineDeclaration, out: &mut Problems) {
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
fn check_action_placement(p: &PipelineDeclaration, out: &mut Problems) {
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
fn check_action_fields(p: &PipelineDeclaration, out: &mut Problems) {
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

/// What each action type requires: it must be one Pipewright implements, with
/// the right number of artifacts, its configuration keys, and its timeout.
fn check_action_types(p: &PipelineDeclaration, out: &mut Problems) {
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

/// Output artifact names are valid and unique; every input artifact is
/// produced by an action that runs earlier.
fn check_artifacts(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
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
fn check_inputs(
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

/// Namespaces are valid, unique, not reserved, and not artifact names.
fn check_namespaces(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
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
fn check_variable_references(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
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

fn check_references_in(
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
fn check_pipeline_variables(p: &PipelineDeclaration, out: &mut Problems) {
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

/// Triggers name a CodeStarSourceConnection source action; filters are within limits.
fn check_triggers(p: &PipelineDeclaration, out: &mut Problems) {
    let triggers = p.triggers();
    if triggers.len() > 50 {
        out.add(
            "triggers",
            format!(
                "a pipeline may declare at most 50 triggers, found {}",
                triggers.len()
            ),
        );
    }
    for (t, trigger) in triggers.iter().enumerate() {
        let git = &trigger.git_configuration;
        let path = format!("triggers[{t}].gitConfiguration");
        let name_path = format!("{path}.sourceActionName");
        let source = p
            .actions()
            .map(|(_, _, action)| action)
            .find(|action| action.name == git.source_action_name);
        match source {
            None => out.add(
                &name_path,
                format!("no action is named `{}`", git.source_action_name),
            ),
            Some(action) if action.action_type_id.category != ActionCategory::Source => out.add(
                &name_path,
                format!("`{}` is not a source action", git.source_action_name),
            ),
            Some(action) if action.action_type_id.provider != trigger.provider_type.as_str() => out
                .add(
                    &name_path,
                    format!(
                        "a {} trigger needs a {} source action; `{}` is {}",
                        trigger.provider_type,
                        trigger.provider_type,
                        git.source_action_name,
                        action.action_type_id
                    ),
                ),
            Some(_) => {}
        }
        if let Some(push) = &git.push {
            check_count(
                out,
                &format!("{path}.push"),
                push.len(),
                1,
                3,
                "push filters",
            );
            for (f, filter) in push.iter().enumerate() {
                let fp = format!("{path}.push[{f}]");
                check_git_criteria(out, &format!("{fp}.tags"), filter.tags.as_ref());
                check_git_criteria(out, &format!("{fp}.branches"), filter.branches.as_ref());
                check_git_criteria(out, &format!("{fp}.filePaths"), filter.file_paths.as_ref());
            }
        }
        if let Some(pulls) = &git.pull_request {
            let pp = format!("{path}.pullRequest");
            check_count(out, &pp, pulls.len(), 1, 3, "pull request filters");
            for (f, filter) in pulls.iter().enumerate() {
                let fp = format!("{pp}[{f}]");
                if let Some(events) = &filter.events {
                    check_count(out, &format!("{fp}.events"), events.len(), 1, 3, "events");
                }
                check_git_criteria(out, &format!("{fp}.branches"), filter.branches.as_ref());
                check_git_criteria(out, &format!("{fp}.filePaths"), filter.file_paths.as_ref());
            }
        }
    }
}

fn check_git_criteria(out: &mut Problems, path: &str, criteria: Option<&GitFilterCriteria>) {
    let Some(criteria) = criteria else {
        return;
    };
    for (member, patterns) in [
        ("includes", &criteria.includes),
        ("excludes", &criteria.excludes),
    ] {
        let Some(patterns) = patterns else {
            continue;
        };
        let list_path = format!("{path}.{member}");
        check_count(out, &list_path, patterns.len(), 1, 8, "patterns");
        for (i, pattern) in patterns.iter().enumerate() {
            check_len(out, &format!("{list_path}[{i}]"), pattern, 1, 255);
        }
    }
}

/// Where a stage condition sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConditionSite {
    BeforeEntry,
    OnSuccess,
    OnFailure,
}

impl ConditionSite {
    fn member(self) -> &'static str {
        match self {
            ConditionSite::BeforeEntry => "beforeEntry",
            ConditionSite::OnSuccess => "onSuccess",
            ConditionSite::OnFailure => "onFailure",
        }
    }

    fn allowed_results(self) -> &'static [ConditionResult] {
        match self {
            ConditionSite::BeforeEntry => &[ConditionResult::Fail, ConditionResult::Skip],
            ConditionSite::OnSuccess => &[ConditionResult::Rollback, ConditionResult::Fail],
            ConditionSite::OnFailure => &[
                ConditionResult::Rollback,
                ConditionResult::Fail,
                ConditionResult::Retry,
            ],
        }
    }

    /// When the condition's rules run: before the stage's actions, or after.
    fn when(self, stage: usize) -> When {
        match self {
            ConditionSite::BeforeEntry => When::stage_entry(stage),
            ConditionSite::OnSuccess | ConditionSite::OnFailure => When::stage_exit(stage),
        }
    }
}

fn results_text(results: &[ConditionResult]) -> String {
    results
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stage conditions: results valid where they sit, no rollback in PARALLEL
/// mode or of the first stage, supported rule providers with their keys.
fn check_stage_conditions(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
    for (s, stage) in p.stages.iter().enumerate() {
        let path = stage_path(s);
        if let Some(on_failure) = &stage.on_failure {
            let site_path = format!("{path}.onFailure");
            if let Some(result) = on_failure.result {
                check_result(
                    p,
                    s,
                    ConditionSite::OnFailure,
                    result,
                    &format!("{site_path}.result"),
                    out,
                );
            }
            if on_failure.retry_configuration.is_some()
                && on_failure.result != Some(ConditionResult::Retry)
            {
                out.add(
                    format!("{site_path}.retryConfiguration"),
                    "retryConfiguration applies only with result RETRY",
                );
            }
            if let Some(conditions) = &on_failure.conditions {
                check_conditions(
                    p,
                    index,
                    s,
                    ConditionSite::OnFailure,
                    conditions,
                    &site_path,
                    out,
                );
            }
        }
        if let Some(on_success) = &stage.on_success {
            let site_path = format!("{path}.onSuccess");
            check_conditions(
                p,
                index,
                s,
                ConditionSite::OnSuccess,
                &on_success.conditions,
                &site_path,
                out,
            );
        }
        if let Some(before_entry) = &stage.before_entry {
            let site_path = format!("{path}.beforeEntry");
            check_conditions(
                p,
                index,
                s,
                ConditionSite::BeforeEntry,
                &before_entry.conditions,
                &site_path,
                out,
            );
        }
    }
}

fn check_result(
    p: &PipelineDeclaration,
    stage: usize,
    site: ConditionSite,
    result: ConditionResult,
    path: &str,
    out: &mut Problems,
) {
    let allowed = site.allowed_results();
    if !allowed.contains(&result) {
        out.add(
            path,
            format!(
                "{result} is not a valid result for {}; use one of: {}",
                site.member(),
                results_text(allowed)
            ),
        );
        return;
    }
    if result == ConditionResult::Rollback {
        if p.execution_mode() == ExecutionMode::Parallel {
            out.add(path, "ROLLBACK is not available in PARALLEL execution mode");
        }
        if stage == 0 {
            out.add(path, "the first (source) stage cannot be rolled back");
        }
    }
}

fn check_conditions(
    p: &PipelineDeclaration,
    index: &Index,
    stage: usize,
    site: ConditionSite,
    conditions: &[Condition],
    site_path: &str,
    out: &mut Problems,
) {
    let list_path = format!("{site_path}.conditions");
    if conditions.len() != 1 {
        out.add(
            &list_path,
            format!("must hold exactly 1 condition, found {}", conditions.len()),
        );
    }
    for (c, condition) in conditions.iter().enumerate() {
        let path = format!("{list_path}[{c}]");
        if let Some(result) = condition.result {
            check_result(p, stage, site, result, &format!("{path}.result"), out);
        }
        let rules = condition.rules.as_deref().unwrap_or_default();
        check_count(out, &format!("{path}.rules"), rules.len(), 1, 5, "rules");
        let consumer = Consumer {
            when: site.when(stage),
            action: None,
        };
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (r, rule) in rules.iter().enumerate() {
            let rule_path = format!("{path}.rules[{r}]");
            check_text(out, &format!("{rule_path}.name"), &rule.name, &ENTITY_NAME);
            if let Some(first) = names.get(rule.name.as_str()) {
                out.add(
                    format!("{rule_path}.name"),
                    format!(
                        "duplicate rule name `{}`: rules[{first}] has the same name",
                        rule.name
                    ),
                );
            } else {
                names.insert(&rule.name, r);
            }
            let provider = rule.rule_type_id.provider.as_str();
            if !providers::RULE_PROVIDERS.contains(&provider) {
                out.add(
                    format!("{rule_path}.ruleTypeId.provider"),
                    format!(
                        "unsupported rule provider `{provider}`; supported: {}",
                        providers::RULE_PROVIDERS.join(", ")
                    ),
                );
            } else if site == ConditionSite::BeforeEntry
                && condition.result == Some(ConditionResult::Skip)
                && !matches!(provider, "LambdaInvoke" | "VariableCheck")
            {
                out.add(
                    format!("{rule_path}.ruleTypeId.provider"),
                    format!("a beforeEntry condition with result SKIP takes only LambdaInvoke and VariableCheck rules, found {provider}"),
                );
            }
            let config = rule.configuration.clone().unwrap_or_default();
            for key in providers::rule_required_keys(provider) {
                if !config.contains_key(*key) {
                    out.add(
                        format!("{rule_path}.configuration"),
                        format!("the {provider} rule requires configuration key `{key}`"),
                    );
                }
            }
            if config.len() > 200 {
                out.add(
                    format!("{rule_path}.configuration"),
                    format!("may hold at most 200 keys, found {}", config.len()),
                );
            }
            check_configuration_sizes(out, &format!("{rule_path}.configuration"), &config, 10_000);
            match (&rule.commands, provider == "Commands") {
                (Some(commands), true) => {
                    check_command_sizes(out, &format!("{rule_path}.commands"), commands)
                }
                (None, true) => out.add(
                    format!("{rule_path}.commands"),
                    "the Commands rule requires a commands list (1 to 50 commands)",
                ),
                (Some(_), false) => out.add(
                    format!("{rule_path}.commands"),
                    "only the Commands rule runs commands",
                ),
                (None, false) => {}
            }
            if let Some(role) = &rule.role_arn {
                check_role_arn(out, &format!("{rule_path}.roleArn"), role);
            }
            if let Some(region) = &rule.region {
                check_region(out, &format!("{rule_path}.region"), region);
            }
            if let Some(timeout) = rule.timeout_in_minutes {
                if !(5..=86_400).contains(&timeout) {
                    out.add(
                        format!("{rule_path}.timeoutInMinutes"),
                        format!("must be 5 to 86400 minutes, found {timeout}"),
                    );
                }
            }
            if let Some(inputs) = &rule.input_artifacts {
                check_inputs(
                    inputs,
                    &format!("{rule_path}.inputArtifacts"),
                    &consumer,
                    index,
                    out,
                );
            }
            for (key, value) in &config {
                check_references_in(
                    p,
                    index,
                    &consumer,
                    &format!("{rule_path}.configuration.{key}"),
                    value,
                    out,
                );
            }
            for (i, command) in rule.commands.iter().flatten().enumerate() {
                check_references_in(
                    p,
                    index,
                    &consumer,
                    &format!("{rule_path}.commands[{i}]"),
                    command,
                    out,
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
