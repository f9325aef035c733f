//! `Invoke/AWS/StepFunctions`: start an execution of `StateMachineArn`, then let Step Functions
//! say when it ended.
//!
//! - The execution is named after the action execution id (after `ExecutionNamePrefix` and a
//!   hyphen when given), as CodePipeline names it; a repeated task starts nothing new (Step
//!   Functions answers the same execution for the same name and input).
//! - Its input is `Input` (`InputType` `Literal`, the default; `{}` when absent) or the file at
//!   the path `Input` of the input artifact (`FilePath`).
//! - A standard state machine's action stays in progress until Step Functions' "Step Functions
//!   Execution Status Change" event reaches the action function ([`complete`]); an express state
//!   machine's (which sends no such event) succeeds once its execution has started.
//! - Output variables: `StateMachineArn`, `ExecutionArn`. With an output artifact, the
//!   execution's output is written to it as `output.json`.
//!
//! Every call is made with the pipeline role's session.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_sfn::types::StateMachineType;
use pipewright_aws::artifacts::S3Artifacts;
use pipewright_core::engine::external::{step_functions_execution_name, WorkEnded};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{ActionExecutionResult, ActionExecutionStatus};

use super::{optional, remove_work_dir, required, write_output_file, ProviderError};

/// The largest input Step Functions takes, in bytes (256 KiB).
const MAX_INPUT_BYTES: u64 = 256 * 1024;

/// Longest execution name.
const MAX_NAME: usize = 80;

/// Start the execution; the outcome is in progress (a standard state machine) or succeeded (an
/// express one).
pub async fn run(
    sfn: &aws_sdk_sfn::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
) -> Result<ActionOutcome, ProviderError> {
    let machine = required(prepared, "StateMachineArn")?;
    let name = step_functions_execution_name(
        optional(prepared, "ExecutionNamePrefix"),
        &prepared.record.action_execution_id,
    );
    if name.len() > MAX_NAME {
        return Err(ProviderError::Configuration(format!(
            "configuration ExecutionNamePrefix: the execution name {name} is longer than Step \
             Functions' {MAX_NAME} characters; use a prefix of at most 43"
        )));
    }
    let input = input(artifacts, prepared, work_root).await?;
    let started = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(&name)
        .input(input)
        .send()
        .await
        .map_err(|e| sfn_error("StartExecution", machine, &e))?;
    let execution_arn = started.execution_arn().to_string();
    let express = sfn
        .describe_state_machine()
        .state_machine_arn(machine)
        .send()
        .await
        .map(|d| d.r#type() == &StateMachineType::Express)
        .map_err(|e| sfn_error("DescribeStateMachine", machine, &e))?;
    tracing::info!(%execution_arn, express, "state machine execution started");
    let region = prepared.record.input.region.clone().unwrap_or_default();
    Ok(ActionOutcome {
        status: if express {
            ActionExecutionStatus::Succeeded
        } else {
            ActionExecutionStatus::InProgress
        },
        output_artifacts: Vec::new(),
        output_variables: variables(machine, &execution_arn),
        result: ActionExecutionResult {
            external_execution_summary: Some(format!("started execution {name} of {machine}")),
            external_execution_url: Some(console_link(&region, &execution_arn)),
            external_execution_id: Some(execution_arn),
            ..Default::default()
        },
        source_revision: None,
        log_tail: None,
        log_location: None,
    })
}

/// The outcome of the execution `ended` names: succeeded (its output in the output artifact, if
/// the action has one) or failed with the status, error and cause.
pub async fn complete(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    ended: &WorkEnded,
    work_root: &Path,
) -> Result<ActionOutcome, ProviderError> {
    let started = &prepared.record;
    if !ended.succeeded() {
        let mut outcome = pipewright_core::engine::external::failed_outcome(ended, started);
        let region = started.input.region.clone().unwrap_or_default();
        outcome.result.external_execution_url = Some(console_link(&region, &ended.external_id));
        return Ok(outcome);
    }
    let mut output_artifacts = Vec::new();
    if let Some(output) = prepared.outputs.first() {
        let work = work_root.join(format!(
            "pipewright-{}",
            prepared.record.action_execution_id
        ));
        let contents = ended.output.as_deref().unwrap_or("null");
        let written = write_output_file(
            artifacts,
            output,
            ("outputArtifacts", "output.json"),
            contents.as_bytes(),
            &work,
        )
        .await;
        remove_work_dir(work).await;
        output_artifacts.push(written?);
    }
    let region = started.input.region.clone().unwrap_or_default();
    let result = ActionExecutionResult {
        external_execution_summary: Some(format!(
            "execution {} succeeded",
            ended.external_id.rsplit(':').next().unwrap_or_default()
        )),
        external_execution_url: Some(console_link(&region, &ended.external_id)),
        external_execution_id: Some(ended.external_id.clone()),
        ..Default::default()
    };
    // From the configuration and the event, not the record: the event may come before the
    // start was recorded.
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts,
        output_variables: variables(required(prepared, "StateMachineArn")?, &ended.external_id),
        result,
        source_revision: None,
        log_tail: None,
        log_location: None,
    })
}

/// The execution's input: `Input` itself, or the file it names in the input artifact.
async fn input(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
) -> Result<String, ProviderError> {
    let input = optional(prepared, "Input");
    match optional(prepared, "InputType").unwrap_or("Literal") {
        "Literal" => Ok(input.unwrap_or("{}").to_string()),
        "FilePath" => {
            let path = input.ok_or_else(|| {
                ProviderError::Configuration(
                    "configuration Input is required when InputType is FilePath: the path of \
                     the input file in the input artifact"
                        .into(),
                )
            })?;
            let artifact = prepared.inputs.first().ok_or_else(|| {
                ProviderError::Configuration(
                    "InputType FilePath reads a file of the input artifact, and the action has \
                     none"
                        .into(),
                )
            })?;
            super::read_input_file(
                artifacts,
                prepared,
                artifact,
                path,
                "Input",
                MAX_INPUT_BYTES,
                work_root,
            )
            .await
        }
        other => Err(ProviderError::Configuration(format!(
            "configuration InputType: {other:?} is not Literal or FilePath"
        ))),
    }
}

/// A Step Functions refusal as the failure it means.
fn sfn_error<E>(call: &str, machine: &str, err: &aws_sdk_sfn::error::SdkError<E>) -> ProviderError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    super::service_error("states", call, machine, err, |code| {
        matches!(
            code,
            "StateMachineDoesNotExist"
                | "InvalidArn"
                | "InvalidName"
                | "InvalidExecutionInput"
                | "StateMachineDeleting"
                | "ExecutionAlreadyExists"
                | "ValidationException"
        )
    })
}

/// The action's output variables, as CodePipeline names them.
fn variables(machine: &str, execution_arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("StateMachineArn".to_string(), machine.to_string()),
        ("ExecutionArn".to_string(), execution_arn.to_string()),
    ])
}

/// The execution's page in the Step Functions console.
fn console_link(region: &str, execution_arn: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
}
