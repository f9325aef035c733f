//! `Deploy/AWS/CloudFormation`: create, update or delete a stack with the pipeline role, then
//! let CloudFormation say when it is done.
//!
//! - `CREATE_UPDATE`: the template at `TemplatePath` (`Artifact::path`) creates the stack
//!   `StackName`, or updates it; an update with nothing to change ("No updates are to be
//!   performed") succeeds at once, as in CodePipeline.
//! - `REPLACE_ON_FAILURE`: as `CREATE_UPDATE`, except that a stack in a failed state
//!   (`ROLLBACK_COMPLETE`, `ROLLBACK_FAILED`, `CREATE_FAILED`, `DELETE_FAILED`,
//!   `UPDATE_ROLLBACK_FAILED`) is deleted first (the action waits for the deletion), then
//!   created again.
//! - `DELETE_ONLY`: deletes the stack; a stack that does not exist is a success.
//! - `CHANGE_SET_REPLACE`: deletes the change set `ChangeSetName` if the stack has one, and
//!   creates it again from the template (a stack that does not exist is created in review).
//!   CloudFormation sends no event for change sets, so the action waits (at most until the
//!   function's deadline) for it to be created; one that changes nothing succeeds, as in
//!   CodePipeline.
//! - `CHANGE_SET_EXECUTE`: executes the change set; the stack's event completes the action (a
//!   change set without changes succeeds at once).
//! - A template of more than 51,200 bytes is put beside the action's log in the artifact bucket
//!   and given to CloudFormation by `TemplateURL`.
//! - Parameters: the template configuration file's (`TemplateConfiguration`, `Artifact::path`,
//!   with its `Tags` and `StackPolicy`), then `ParameterOverrides` (strings, `Fn::GetParam`,
//!   `Fn::GetArtifactAtt`); `Capabilities` (comma separated), `RoleArn` (the stack's service
//!   role).
//! - The action stays in progress until CloudFormation's "CloudFormation Stack Status Change"
//!   event for the stack reaches the action function ([`complete`]); then the stack's outputs
//!   become output variables (and the `OutputFileName` file of the output artifact, JSON); a
//!   stack that ended badly fails the action with its first failed resource and reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetType, ExecutionStatus, Parameter, Stack, Tag,
};
use pipewright_aws::artifacts::{safe_relative, S3Artifacts};
use pipewright_core::cloudformation::{
    artifact_path, change_set_without_changes, needs_replacing, parameter_overrides,
    template_configuration, template_key, template_url, ParameterValue, StackChanged,
    TemplateConfiguration,
};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, FailureType,
};

use super::{
    aws_failure, optional, remove_work_dir, required, write_output_file, Context, ProviderError,
};

/// The largest template CloudFormation takes in the request itself.
const MAX_TEMPLATE_BODY: u64 = 51_200;
/// The largest file read from an artifact (templates, configurations, parameter files).
const MAX_FILE: u64 = 1024 * 1024;
/// How long the action waits for what CloudFormation announces no event for (a change set
/// being created, a failed stack being deleted before it is created again) when the function's
/// deadline is unknown.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// What is kept of the function's time when waiting: enough to record the outcome.
const WAIT_MARGIN: Duration = Duration::from_secs(20);
/// How often a wait asks (CloudFormation's Describe calls are throttled at a few per second
/// per account).
const POLL: Duration = Duration::from_secs(2);

/// Start the stack operation: in progress (CloudFormation's event completes it), or done
/// already (nothing to update, nothing to delete).
pub async fn run(
    cfn: &aws_sdk_cloudformation::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
    deadline: Option<Instant>,
) -> Result<ActionOutcome, ProviderError> {
    let mode = required(prepared, "ActionMode")?;
    let stack_name = required(prepared, "StackName")?;
    let current = describe(cfn, stack_name).await?;
    let wait_until = deadline
        .map(|d| d.checked_sub(WAIT_MARGIN).unwrap_or(d))
        .unwrap_or_else(|| Instant::now() + DEFAULT_WAIT);
    match mode {
        "DELETE_ONLY" => {
            let Some(stack) = current else {
                return Ok(done(
                    prepared,
                    None,
                    format!("stack {stack_name} does not exist"),
                ));
            };
            let stack_id = stack.stack_id().unwrap_or(stack_name).to_string();
            let mut request = cfn.delete_stack().stack_name(&stack_id);
            if let Some(role) = optional(prepared, "RoleArn") {
                request = request.role_arn(role);
            }
            request
                .send()
                .await
                .map_err(|e| cfn_error("DeleteStack", stack_name, &e))?;
            Ok(started(
                prepared,
                &stack_id,
                format!("deleting stack {stack_name}"),
            ))
        }
        "CREATE_UPDATE" | "REPLACE_ON_FAILURE" => {
            let request = StackRequest::read_once(artifacts, prepared, work_root).await?;
            match current {
                Some(stack) if needs_replacing(status_of(&stack)) => {
                    if mode == "CREATE_UPDATE" {
                        return Err(ProviderError::Configuration(format!(
                            "stack {stack_name} is {} and cannot be updated: delete it, or use \
                             ActionMode REPLACE_ON_FAILURE",
                            status_of(&stack)
                        )));
                    }
                    delete_and_wait(cfn, prepared, stack_name, &stack, wait_until).await?;
                    create(cfn, prepared, stack_name, request).await
                }
                Some(stack) => update(cfn, prepared, stack_name, &stack, request).await,
                None => create(cfn, prepared, stack_name, request).await,
            }
        }
        "CHANGE_SET_REPLACE" => {
            let request = StackRequest::read_once(artifacts, prepared, work_root).await?;
            replace_change_set(
                cfn,
                prepared,
                stack_name,
                current.as_ref(),
                request,
                wait_until,
            )
            .await
        }
        "CHANGE_SET_EXECUTE" => {
            execute_change_set(cfn, prepared, stack_name, current.as_ref()).await
        }
        other => Err(ProviderError::Configuration(format!(
            "configuration ActionMode: {other:?} is not a CloudFormation action mode"
        ))),
    }
}

/// What a create or update sends.
struct StackRequest {
    template: Template,
    parameters: Vec<Parameter>,
    tags: Vec<Tag>,
    stack_policy: Option<String>,
    capabilities: Vec<Capability>,
    role_arn: Option<String>,
}

/// A template: in the request, or (too large for it) at a URL CloudFormation reads.
enum Template {
    Body(String),
    Url(String),
}

impl StackRequest {
    /// [`Self::read`] in a scratch folder of its own, removed afterwards.
    async fn read_once(
        artifacts: &S3Artifacts,
        prepared: &PreparedAction,
        work_root: &Path,
    ) -> Result<Self, ProviderError> {
        let work = work_root.join(format!(
            "pipewright-{}",
            prepared.record.action_execution_id
        ));
        let request = Self::read(artifacts, prepared, &work).await;
        remove_work_dir(work).await;
        request
    }

    /// The template body, or its URL.
    fn template_body(&self) -> Option<String> {
        match &self.template {
            Template::Body(body) => Some(body.clone()),
            Template::Url(_) => None,
        }
    }

    fn template_url(&self) -> Option<String> {
        match &self.template {
            Template::Url(url) => Some(url.clone()),
            Template::Body(_) => None,
        }
    }

    async fn read(
        artifacts: &S3Artifacts,
        prepared: &PreparedAction,
        work: &Path,
    ) -> Result<Self, ProviderError> {
        let mut files = ArtifactFiles {
            artifacts,
            prepared,
            work,
            extracted: BTreeMap::new(),
        };
        let (artifact, path) = artifact_path("TemplatePath", required(prepared, "TemplatePath")?)
            .map_err(ProviderError::Configuration)?;
        let text = files.read(&artifact, &path, "TemplatePath").await?;
        let template = if text.len() as u64 > MAX_TEMPLATE_BODY {
            Template::Url(put_template(artifacts, prepared, text).await?)
        } else {
            Template::Body(text)
        };
        let mut configuration = TemplateConfiguration::default();
        if let Some(value) = optional(prepared, "TemplateConfiguration") {
            let (artifact, path) = artifact_path("TemplateConfiguration", value)
                .map_err(ProviderError::Configuration)?;
            let text = files
                .read(&artifact, &path, "TemplateConfiguration")
                .await?;
            configuration =
                template_configuration(&path, &text).map_err(ProviderError::Configuration)?;
        }
        let mut values = configuration.parameters.clone();
        if let Some(text) = optional(prepared, "ParameterOverrides") {
            for (name, value) in parameter_overrides(text).map_err(ProviderError::Configuration)? {
                let value = match value {
                    ParameterValue::Literal(s) => s,
                    ParameterValue::GetParam {
                        artifact,
                        file,
                        key,
                    } => {
                        let text = files.read(&artifact, &file, "ParameterOverrides").await?;
                        let json: serde_json::Value =
                            serde_json::from_str(&text).map_err(|_| {
                                ProviderError::Configuration(format!(
                                    "configuration ParameterOverrides.{name}: {file} of \
                                     artifact {artifact} is not JSON"
                                ))
                            })?;
                        match json.get(&key) {
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(v) if !v.is_null() => v.to_string(),
                            _ => {
                                return Err(ProviderError::Configuration(format!(
                                    "configuration ParameterOverrides.{name}: {file} of \
                                     artifact {artifact} has no key {key}"
                                )))
                            }
                        }
                    }
                    ParameterValue::GetArtifactAtt {
                        artifact,
                        attribute,
                    } => {
                        let detail = files.artifact(&artifact)?;
                        let location = &detail.s3_location;
                        match attribute.as_str() {
                            "BucketName" => location.bucket.clone(),
                            "ObjectKey" => location.key.clone(),
                            _ => format!(
                                "https://s3.amazonaws.com/{}/{}",
                                location.bucket, location.key
                            ),
                        }
                    }
                };
                values.insert(name, value);
            }
        }
        let capabilities = optional(prepared, "Capabilities")
            .map(|c| {
                c.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(Capability::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            template,
            parameters: values
                .into_iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
            tags: configuration
                .tags
                .into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
            stack_policy: configuration.stack_policy,
            capabilities,
            role_arn: optional(prepared, "RoleArn").map(str::to_string),
        })
    }
}

async fn create(
    cfn: &aws_sdk_cloudformation::Client,
    prepared: &PreparedAction,
    stack_name: &str,
    r: StackRequest,
) -> Result<ActionOutcome, ProviderError> {
    let created = cfn
        .create_stack()
        .stack_name(stack_name)
        .set_template_body(r.template_body())
        .set_template_url(r.template_url())
        .set_parameters(Some(r.parameters))
        .set_tags((!r.tags.is_empty()).then_some(r.tags))
        .set_stack_policy_body(r.stack_policy)
        .set_capabilities(Some(r.capabilities))
        .set_role_arn(r.role_arn)
        .client_request_token(&prepared.record.action_execution_id)
        .send()
        .await
        .map_err(|e| cfn_error("CreateStack", stack_name, &e))?;
    let stack_id = created.stack_id().unwrap_or(stack_name).to_string();
    Ok(started(
        prepared,
        &stack_id,
        format!("creating stack {stack_name}"),
    ))
}

async fn update(
    cfn: &aws_sdk_cloudformation::Client,
    prepared: &PreparedAction,
    stack_name: &str,
    stack: &Stack,
    r: StackRequest,
) -> Result<ActionOutcome, ProviderError> {
    let stack_id = stack.stack_id().unwrap_or(stack_name).to_string();
    let updated = cfn
        .update_stack()
        .stack_name(&stack_id)
        .set_template_body(r.template_body())
        .set_template_url(r.template_url())
        .set_parameters(Some(r.parameters))
        .set_tags((!r.tags.is_empty()).then_some(r.tags))
        .set_stack_policy_body(r.stack_policy)
        .set_capabilities(Some(r.capabilities))
        .set_role_arn(r.role_arn)
        .client_request_token(&prepared.record.action_execution_id)
        .send()
        .await;
    match updated {
        Ok(_) => Ok(started(
            prepared,
            &stack_id,
            format!("updating stack {stack_name}"),
        )),
        Err(e)
            if e.message()
                .is_some_and(|m| m.contains("No updates are to be performed")) =>
        {
            Ok(done(
                prepared,
                Some(stack),
                format!("stack {stack_name}: no updates are to be performed"),
            ))
        }
        Err(e) => Err(cfn_error("UpdateStack", stack_name, &e)),
    }
}

/// Put a template too large for the request beside the action's log; its URL.
async fn put_template(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    text: String,
) -> Result<String, ProviderError> {
    let bucket = &prepared.log_location.bucket;
    let key = template_key(
        &prepared.log_location.key,
        &prepared.record.action_execution_id,
    );
    artifacts
        .client()
        .put_object()
        .bucket(bucket)
        .key(&key)
        .body(text.into_bytes().into())
        .send()
        .await
        .map_err(|e| {
            let (code, _, message) = aws_failure(&e);
            let text = format!(
                "configuration TemplatePath: the template is larger than CloudFormation takes \
                 in a request ({MAX_TEMPLATE_BODY} bytes), and putting it at s3://{bucket}/{key} \
                 for CloudFormation to read failed: {}{message}",
                code.as_deref()
                    .map(|c| format!("{c}: "))
                    .unwrap_or_default()
            );
            if code.as_deref() == Some("AccessDenied") {
                ProviderError::Permission(text)
            } else {
                ProviderError::Job(text)
            }
        })?;
    let region = prepared.record.input.region.clone().unwrap_or_default();
    Ok(template_url(&region, bucket, &key))
}

/// A stack's status.
fn status_of(stack: &Stack) -> &str {
    stack.stack_status().map_or("", |s| s.as_str())
}

/// Delete `stack` (in a failed state) and wait until it is gone, for REPLACE_ON_FAILURE.
async fn delete_and_wait(
    cfn: &aws_sdk_cloudformation::Client,
    prepared: &PreparedAction,
    stack_name: &str,
    stack: &Stack,
    wait_until: Instant,
) -> Result<(), ProviderError> {
    let stack_id = stack.stack_id().unwrap_or(stack_name).to_string();
    tracing::info!(stack = %stack_id, status = status_of(stack), "replacing a failed stack");
    cfn.delete_stack()
        .stack_name(&stack_id)
        .set_role_arn(optional(prepared, "RoleArn").map(str::to_string))
        .send()
        .await
        .map_err(|e| cfn_error("DeleteStack", stack_name, &e))?;
    loop {
        match describe(cfn, &stack_id).await? {
            None => return Ok(()),
            Some(s) if status_of(&s) == "DELETE_FAILED" => {
                let reason = first_failure(cfn, &stack_id)
                    .await
                    .or_else(|| s.stack_status_reason().map(str::to_string))
                    .unwrap_or_else(|| "no reason given".into());
                return Err(ProviderError::Job(format!(
                    "stack {stack_name} was {} and could not be deleted to be replaced: {reason}",
                    status_of(stack)
                )));
            }
            Some(_) => {}
        }
        if Instant::now() >= wait_until {
            return Err(ProviderError::Job(format!(
                "stack {stack_name} was still being deleted (to be replaced) when the action \
                 had to stop waiting; run the action again once it is gone"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CHANGE_SET_REPLACE: the change set `ChangeSetName` made again from the template, waited for.
async fn replace_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    prepared: &PreparedAction,
    stack_name: &str,
    current: Option<&Stack>,
    r: StackRequest,
    wait_until: Instant,
) -> Result<ActionOutcome, ProviderError> {
    let change_set = required(prepared, "ChangeSetName")?;
    let kind = match current {
        Some(stack) if needs_replacing(status_of(stack)) => {
            return Err(ProviderError::Configuration(format!(
                "stack {stack_name} is {} and cannot take a change set: delete it first",
                status_of(stack)
            )))
        }
        Some(stack) if status_of(stack) != "REVIEW_IN_PROGRESS" => ChangeSetType::Update,
        _ => ChangeSetType::Create,
    };
    if let Some(stack) = current {
        let stack_id = stack.stack_id().unwrap_or(stack_name);
        match cfn
            .delete_change_set()
            .stack_name(stack_id)
            .change_set_name(change_set)
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(%change_set, "the earlier change set is being deleted");
                // The deletion may finish after the call: a change set of the same name can be
                // created only once it is gone.
                loop {
                    match cfn
                        .describe_change_set()
                        .stack_name(stack_id)
                        .change_set_name(change_set)
                        .send()
                        .await
                    {
                        Err(e) if e.code() == Some("ChangeSetNotFound") => break,
                        Err(e) => return Err(cfn_error("DescribeChangeSet", stack_name, &e)),
                        Ok(_) if Instant::now() >= wait_until => {
                            return Err(ProviderError::Job(format!(
                                "change set {change_set} of stack {stack_name} was still being \
                                 deleted when the action had to stop waiting"
                            )))
                        }
                        Ok(_) => tokio::time::sleep(POLL).await,
                    }
                }
            }
            Err(e) if e.code() == Some("ChangeSetNotFound") => {}
            Err(e) => return Err(cfn_error("DeleteChangeSet", stack_name, &e)),
        }
    }
    let created = cfn
        .create_change_set()
        .stack_name(stack_name)
        .change_set_name(change_set)
        .change_set_type(kind)
        .set_template_body(r.template_body())
        .set_template_url(r.template_url())
        .set_parameters(Some(r.parameters))
        .set_tags((!r.tags.is_empty()).then_some(r.tags))
        .set_capabilities(Some(r.capabilities))
        .set_role_arn(r.role_arn)
        .description(format!(
            "Pipewright action execution {}",
            prepared.record.action_execution_id
        ))
        .send()
        .await
        .map_err(|e| cfn_error("CreateChangeSet", stack_name, &e))?;
    let id = created.id().unwrap_or(change_set).to_string();
    let stack_id = created.stack_id().unwrap_or(stack_name).to_string();
    loop {
        let described = cfn
            .describe_change_set()
            .change_set_name(&id)
            .send()
            .await
            .map_err(|e| cfn_error("DescribeChangeSet", stack_name, &e))?;
        let reason = described.status_reason().unwrap_or_default();
        let summary = match described.status() {
            Some(ChangeSetStatus::CreateComplete) => Some(format!(
                "change set {change_set} of stack {stack_name} created: {} changes",
                described.changes().len()
            )),
            Some(ChangeSetStatus::Failed) if change_set_without_changes(reason) => Some(format!(
                "change set {change_set} of stack {stack_name}: no changes"
            )),
            Some(ChangeSetStatus::Failed) => {
                return Err(ProviderError::Job(format!(
                    "change set {change_set} of stack {stack_name} failed: {reason}"
                )))
            }
            _ => None,
        };
        if let Some(summary) = summary {
            let mut outcome = done(prepared, current, summary);
            outcome.result.external_execution_id = Some(id);
            outcome.result.external_execution_url = Some(console_link(prepared, &stack_id));
            return Ok(outcome);
        }
        if Instant::now() >= wait_until {
            return Err(ProviderError::Job(format!(
                "change set {change_set} of stack {stack_name} was still being created when the \
                 action had to stop waiting"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// CHANGE_SET_EXECUTE: execute the change set; the stack's event completes the action.
async fn execute_change_set(
    cfn: &aws_sdk_cloudformation::Client,
    prepared: &PreparedAction,
    stack_name: &str,
    current: Option<&Stack>,
) -> Result<ActionOutcome, ProviderError> {
    let change_set = required(prepared, "ChangeSetName")?;
    let described = match cfn
        .describe_change_set()
        .stack_name(stack_name)
        .change_set_name(change_set)
        .send()
        .await
    {
        Ok(d) => d,
        Err(e) if e.code() == Some("ChangeSetNotFound") || current.is_none() => {
            return Err(ProviderError::Configuration(format!(
                "change set {change_set} of stack {stack_name} does not exist: a \
                 CHANGE_SET_REPLACE action before this one creates it"
            )))
        }
        Err(e) => return Err(cfn_error("DescribeChangeSet", stack_name, &e)),
    };
    let reason = described.status_reason().unwrap_or_default();
    if described.status() == Some(&ChangeSetStatus::Failed) && change_set_without_changes(reason) {
        return Ok(done(
            prepared,
            current,
            format!("change set {change_set} of stack {stack_name} has no changes"),
        ));
    }
    if described.execution_status() != Some(&ExecutionStatus::Available) {
        return Err(ProviderError::Configuration(format!(
            "change set {change_set} of stack {stack_name} is {} ({}) and cannot be executed{}",
            described.status().map_or("?", |s| s.as_str()),
            described.execution_status().map_or("?", |s| s.as_str()),
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        )));
    }
    cfn.execute_change_set()
        .stack_name(stack_name)
        .change_set_name(change_set)
        .client_request_token(&prepared.record.action_execution_id)
        .send()
        .await
        .map_err(|e| cfn_error("ExecuteChangeSet", stack_name, &e))?;
    let stack_id = described.stack_id().unwrap_or(stack_name).to_string();
    Ok(started(
        prepared,
        &stack_id,
        format!("executing change set {change_set} on stack {stack_name}"),
    ))
}

/// In progress on stack `stack_id`.
fn started(prepared: &PreparedAction, stack_id: &str, summary: String) -> ActionOutcome {
    ActionOutcome::in_progress(
        ActionExecutionResult {
            external_execution_id: Some(stack_id.to_string()),
            external_execution_summary: Some(summary),
            external_execution_url: Some(console_link(prepared, stack_id)),
            ..Default::default()
        },
        BTreeMap::new(),
    )
}

/// Succeeded at once, with `stack`'s outputs (its output file is not written: nothing changed
/// or nothing exists).
fn done(prepared: &PreparedAction, stack: Option<&Stack>, summary: String) -> ActionOutcome {
    ActionOutcome::succeeded(
        ActionExecutionResult {
            external_execution_id: stack.and_then(|s| s.stack_id()).map(str::to_string),
            external_execution_summary: Some(summary),
            external_execution_url: stack
                .and_then(|s| s.stack_id())
                .map(|id| console_link(prepared, id)),
            ..Default::default()
        },
        Vec::new(),
        stack.map(outputs).unwrap_or_default(),
    )
}

/// The outcome of the stack operation `changed` says ended.
pub async fn complete(
    cfn: &aws_sdk_cloudformation::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    changed: &StackChanged,
    work_root: &Path,
) -> Result<ActionOutcome, ProviderError> {
    let stack_name = required(prepared, "StackName")?;
    let deleting = required(prepared, "ActionMode")? == "DELETE_ONLY";
    let link = console_link(prepared, &changed.stack_id);
    let succeeded = match changed.status.as_str() {
        "DELETE_COMPLETE" => deleting,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => !deleting,
        _ => false,
    };
    if !succeeded {
        let reason = first_failure(cfn, &changed.stack_id)
            .await
            .or_else(|| changed.reason.clone())
            .unwrap_or_else(|| "no reason given".into());
        let mut outcome = ActionOutcome::failed(
            FailureType::JobFailed,
            format!("stack {stack_name} ended {}: {reason}", changed.status),
        );
        outcome.result.external_execution_id = Some(changed.stack_id.clone());
        outcome.result.external_execution_url = Some(link);
        return Ok(outcome);
    }
    let stack = if deleting {
        None
    } else {
        describe(cfn, &changed.stack_id).await?
    };
    let variables = stack.as_ref().map(outputs).unwrap_or_default();
    let mut output_artifacts = Vec::new();
    if let (Some(output), Some(file)) = (
        prepared.outputs.first(),
        optional(prepared, "OutputFileName"),
    ) {
        let work = work_root.join(format!(
            "pipewright-{}",
            prepared.record.action_execution_id
        ));
        let json = serde_json::to_string_pretty(&variables).unwrap_or_default();
        let written = write_output_file(
            artifacts,
            output,
            ("OutputFileName", file),
            json.as_bytes(),
            &work,
        )
        .await;
        remove_work_dir(work).await;
        output_artifacts.push(written?);
    }
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts,
        output_variables: variables,
        result: ActionExecutionResult {
            external_execution_id: Some(changed.stack_id.clone()),
            external_execution_summary: Some(format!("stack {stack_name} {}", changed.status)),
            external_execution_url: Some(link),
            ..Default::default()
        },
        source_revision: None,
        log_tail: None,
        log_location: None,
    })
}

/// The outcome of stack operation `outcome` (just started) when the stack already rests (a
/// quick failure, an emulator that finishes within the call), so an action whose event came
/// before the start was recorded still completes; `None` while it is in progress.
pub async fn settled(
    cfn: &aws_sdk_cloudformation::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    outcome: &ActionOutcome,
    work_root: &Path,
) -> Result<Option<ActionOutcome>, ProviderError> {
    let Some(stack_id) = outcome.result.external_execution_id.as_deref() else {
        return Ok(None);
    };
    // Until CloudFormation takes up an executed change set, the stack may still rest in the
    // status of its previous operation.
    if optional(prepared, "ActionMode") == Some("CHANGE_SET_EXECUTE") {
        let change_set = required(prepared, "ChangeSetName")?;
        let taken_up = match cfn
            .describe_change_set()
            .stack_name(stack_id)
            .change_set_name(change_set)
            .send()
            .await
        {
            Ok(d) => !matches!(
                d.execution_status(),
                Some(ExecutionStatus::Available | ExecutionStatus::Unavailable)
            ),
            // Executed change sets may be gone; any other error says nothing.
            Err(e) => e.code() == Some("ChangeSetNotFound"),
        };
        if !taken_up {
            return Ok(None);
        }
    }
    let stacks = match cfn.describe_stacks().stack_name(stack_id).send().await {
        Ok(stacks) => stacks,
        // Gone already: deleted.
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => {
            let changed = StackChanged {
                stack_id: stack_id.to_string(),
                status: "DELETE_COMPLETE".into(),
                reason: None,
            };
            return complete(cfn, artifacts, prepared, &changed, work_root)
                .await
                .map(Some);
        }
        Err(e) => return Err(cfn_error("DescribeStacks", stack_id, &e)),
    };
    let Some(stack) = stacks.stacks().first() else {
        return Ok(None);
    };
    let status = stack.stack_status().map_or("", |s| s.as_str()).to_string();
    if pipewright_core::cloudformation::stack_status_ended(&status).is_none() {
        return Ok(None);
    }
    let changed = StackChanged {
        stack_id: stack_id.to_string(),
        status,
        reason: stack.stack_status_reason().map(str::to_string),
    };
    complete(cfn, artifacts, prepared, &changed, work_root)
        .await
        .map(Some)
}

/// The stack, `None` when it does not exist.
async fn describe(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<Stack>, ProviderError> {
    match cfn.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out
            .stacks()
            .first()
            .filter(|s| s.stack_status().map_or("", |s| s.as_str()) != "DELETE_COMPLETE")
            .cloned()),
        Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
        Err(e) => Err(cfn_error("DescribeStacks", stack, &e)),
    }
}

/// The stack's outputs, as output variables.
fn outputs(stack: &Stack) -> BTreeMap<String, String> {
    stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect()
}

/// The first resource that failed, and why (`None` when CloudFormation names none).
async fn first_failure(cfn: &aws_sdk_cloudformation::Client, stack_id: &str) -> Option<String> {
    let events = cfn
        .describe_stack_events()
        .stack_name(stack_id)
        .send()
        .await
        .ok()?;
    // Newest first: the first failure is the last one listed.
    events
        .stack_events()
        .iter()
        .rev()
        .find(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
                && e.physical_resource_id() != Some(stack_id)
        })
        .map(|e| {
            format!(
                "resource {} ({}) {}: {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_type().unwrap_or("?"),
                e.resource_status().map_or("", |s| s.as_str()),
                e.resource_status_reason().unwrap_or("no reason given")
            )
        })
}

/// Files of the action's input artifacts, each artifact downloaded once.
struct ArtifactFiles<'a> {
    artifacts: &'a S3Artifacts,
    prepared: &'a PreparedAction,
    work: &'a Path,
    extracted: BTreeMap<String, PathBuf>,
}

impl ArtifactFiles<'_> {
    fn artifact(&self, name: &str) -> Result<&ArtifactDetail, ProviderError> {
        self.prepared
            .inputs
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .prepared
                    .inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect();
                ProviderError::Configuration(format!(
                    "artifact {name} is not an input artifact of the action (it has: {})",
                    names.join(", ")
                ))
            })
    }

    /// The text of `path` in input artifact `artifact`; `key` names the configuration in errors.
    async fn read(
        &mut self,
        artifact: &str,
        path: &str,
        key: &str,
    ) -> Result<String, ProviderError> {
        let detail = self.artifact(artifact)?.clone();
        if !self.extracted.contains_key(artifact) {
            let dir = self.work.join(format!("artifact-{}", self.extracted.len()));
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| ProviderError::Job(format!("creating {}: {e}", dir.display())))?;
            self.artifacts
                .download_and_extract(
                    &detail.s3_location,
                    &dir.join("artifact.zip"),
                    &dir.join("files"),
                )
                .await
                .context(|| format!("input artifact {artifact}"))?;
            self.extracted
                .insert(artifact.to_string(), dir.join("files"));
        }
        let parts = safe_relative(path).context(|| format!("configuration {key}"))?;
        super::read_extracted(
            &self.extracted[artifact],
            &parts,
            path,
            artifact,
            key,
            MAX_FILE,
        )
        .await
    }
}

/// A CloudFormation refusal as the failure it means.
fn cfn_error<E>(
    call: &str,
    stack: &str,
    err: &aws_sdk_cloudformation::error::SdkError<E>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::service_error("cloudformation", call, stack, err, |code| {
        matches!(
            code,
            "ValidationError" | "InsufficientCapabilitiesException" | "AlreadyExistsException"
        )
    })
}

/// The stack's page in the CloudFormation console.
fn console_link(prepared: &PreparedAction, stack_id: &str) -> String {
    let region = prepared.record.input.region.clone().unwrap_or_default();
    format!(
        "https://{region}.console.aws.amazon.com/cloudformation/home?region={region}#/stacks/stackinfo?stackId={}",
        percent_encoding::utf8_percent_encode(stack_id, percent_encoding::NON_ALPHANUMERIC)
    )
}
