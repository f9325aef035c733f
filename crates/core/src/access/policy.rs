//! Who may do what: one check for both doors, per operation and per pipeline, before anything is
//! read or written.
//!
//! A caller holds a [`Grant`]: CodePipeline IAM action names with `*` and `?`
//! (`codepipeline:Get*`, `codepipeline:PutApprovalResult`, matched without regard to case, as
//! IAM does) and pipeline-name globs. An operation names its pipeline in a member of its request
//! ([`pipeline_of`]); one that names none (ListPipelines, the job-worker calls) acts on every
//! pipeline (IAM's resource `*`), so only a grant for every pipeline (`*`) allows it. A refusal
//! is CodePipeline's `AccessDeniedException`, naming the action and the pipeline's ARN.

use serde_json::Value;

use crate::triggers::glob::wildcard_match;

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// IAM action patterns, e.g. `codepipeline:Get*`.
    pub actions: Vec<String>,
    /// Pipeline-name patterns, e.g. `web-*`; `*` is every pipeline.
    pub pipelines: Vec<String>,
}

impl Grant {
    /// Everything, on every pipeline.
    pub fn admin() -> Self {
        Self {
            actions: vec!["codepipeline:*".into()],
            pipelines: vec!["*".into()],
        }
    }

    /// Whether the grant allows IAM action `action`.
    pub fn allows_action(&self, action: &str) -> bool {
        let action = action.to_ascii_lowercase();
        self.actions
            .iter()
            .any(|p| wildcard_match(&p.to_ascii_lowercase(), &action))
    }

    /// Whether the grant covers pipeline `name` (`None`: every pipeline, IAM's `*`).
    pub fn covers(&self, pipeline: Option<&str>) -> bool {
        match pipeline {
            Some(name) => self.pipelines.iter().any(|p| wildcard_match(p, name)),
            None => self.pipelines.iter().any(|p| p == "*"),
        }
    }
}

/// Check the pattern lists of a grant: refuses what could never match or would match
/// unintentionally. `Err` names the field and the reason.
pub fn check_grant(grant: &Grant) -> Result<(), String> {
    if grant.actions.is_empty() {
        return Err("actions: give at least one action, e.g. codepipeline:Get*".into());
    }
    for action in &grant.actions {
        let Some(name) = action.strip_prefix("codepipeline:") else {
            return Err(format!(
                "actions: {action:?} is not a CodePipeline action (codepipeline:<Operation>, * allowed)"
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        {
            return Err(format!(
                "actions: {action:?} is not a CodePipeline action name"
            ));
        }
    }
    if grant.pipelines.is_empty() {
        return Err(
            "pipelines: give at least one pipeline-name pattern (* for every pipeline)".into(),
        );
    }
    for pattern in &grant.pipelines {
        if pattern.is_empty() || pattern.chars().count() > 100 {
            return Err(format!(
                "pipelines: {pattern:?} must be 1 to 100 characters"
            ));
        }
    }
    Ok(())
}

/// The IAM action of CodePipeline operation `operation`.
pub fn iam_action(operation: &str) -> String {
    format!("codepipeline:{operation}")
}

/// The pipeline a request of `operation` acts on, from the member that names it; `None` for an
/// operation on every pipeline or on no pipeline in particular (IAM's resource `*`).
pub fn pipeline_of(operation: &str, body: &Value) -> Option<String> {
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match operation {
        "CreatePipeline" | "UpdatePipeline" => text("/pipeline/name"),
        "GetPipeline" | "DeletePipeline" | "StartPipelineExecution" | "GetPipelineState" => {
            text("/name")
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => text("/resourceArn")
            .and_then(|arn| arn.rsplit_once(':').map(|(_, name)| name.to_string())),
        // Operations on jobs, types and webhooks name no pipeline (a webhook's `name` is its own).
        "ListPipelines"
        | "PutJobSuccessResult"
        | "PutJobFailureResult"
        | "AcknowledgeJob"
        | "GetJobDetails"
        | "PollForJobs"
        | "ListActionTypes"
        | "ListRuleTypes"
        | "ListWebhooks"
        | "PutWebhook"
        | "DeleteWebhook"
        | "RegisterWebhookWithThirdParty"
        | "DeregisterWebhookWithThirdParty"
        | "AcknowledgeThirdPartyJob"
        | "GetThirdPartyJobDetails"
        | "PollForThirdPartyJobs"
        | "PutThirdPartyJobSuccessResult"
        | "PutThirdPartyJobFailureResult"
        | "CreateCustomActionType"
        | "DeleteCustomActionType"
        | "GetActionType"
        | "UpdateActionType" => None,
        _ => text("/pipelineName").or_else(|| text("/name")),
    }
}

/// What a request of `operation` asks for, in IAM's terms: the action and the resource (the
/// pipeline's ARN, built by `arn`, or `*`).
pub fn requested(operation: &str, body: &Value, arn: impl Fn(&str) -> String) -> (String, String) {
    let resource = pipeline_of(operation, body).map_or_else(|| "*".to_string(), |p| arn(&p));
    (iam_action(operation), resource)
}

/// The IAM action CodePipeline requires, besides the operation's own, on each role a
/// CreatePipeline or UpdatePipeline names.
pub const PASS_ROLE_ACTION: &str = "iam:PassRole";

/// The roles a CreatePipeline or UpdatePipeline `body` hands the pipeline (its `roleArn`, each
/// action's and each condition rule's), each once, in order; none for other operations.
/// CodePipeline requires `iam:PassRole` on each from the caller. A value that is no IAM role ARN
/// is left to validation, which refuses it with every other problem of the declaration.
pub fn passed_roles(operation: &str, body: &Value) -> Vec<String> {
    if !matches!(operation, "CreatePipeline" | "UpdatePipeline") {
        return Vec::new();
    }
    let pipeline = &body["pipeline"];
    let mut roles: Vec<String> = Vec::new();
    let mut add = |role: &Value| {
        let is_role = |r: &&str| r.starts_with("arn:") && r.contains(":role/");
        if let Some(r) = role.as_str().filter(is_role) {
            if !roles.iter().any(|known| known == r) {
                roles.push(r.to_string());
            }
        }
    };
    add(&pipeline["roleArn"]);
    for stage in pipeline["stages"].as_array().into_iter().flatten() {
        for action in stage["actions"].as_array().into_iter().flatten() {
            add(&action["roleArn"]);
        }
        for kind in ["beforeEntry", "onSuccess", "onFailure"] {
            for condition in stage[kind]["conditions"].as_array().into_iter().flatten() {
                for rule in condition["rules"].as_array().into_iter().flatten() {
                    add(&rule["roleArn"]);
                }
            }
        }
    }
    roles
}

/// A refusal: `AccessDeniedException`'s message, in IAM's words.
pub fn denied_message(caller: &str, action: &str, resource: &str) -> String {
    format!("User: {caller} is not authorized to perform: {action} on resource: {resource}")
}

/// Check that `grant` allows `operation` with request `body`; `Err` is the refusal's message,
/// naming `caller`, the action and the pipeline ARN (built by `arn`).
pub fn authorize(
    grant: &Grant,
    caller: &str,
    operation: &str,
    body: &Value,
    arn: impl Fn(&str) -> String,
) -> Result<(), String> {
    let (action, resource) = requested(operation, body, &arn);
    let pipeline = pipeline_of(operation, body);
    if grant.allows_action(&action) && grant.covers(pipeline.as_deref()) {
        Ok(())
    } else {
        Err(denied_message(caller, &action, &resource))
    }
}
