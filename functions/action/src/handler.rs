//! Decode a `runAction` task, run the action, complete it (unless it is pending: a job-worker
//! action completes with its job result; a Step Functions, CloudFormation, CodeBuild,
//! CodeDeploy or ECS action with its service's event, which reaches this function too).

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::cloudformation::{stack_status_changed, StackChanged};
use pipewright_core::codebuild::{build_ended, BuildEnded};
use pipewright_core::codedeploy::{deployment_ended, DeploymentEnded};
use pipewright_core::engine::external::step_functions_ended;
use pipewright_core::engine::{ActionOutcome, TaskRequest};
use pipewright_core::execution::ActionExecutionStatus;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::providers::Providers;

/// What the action function receives: a `runAction` task, or the status event of work an
/// action started (EventBridge).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum ActionEvent {
    /// A task of a pipeline's state machine (it has `op`).
    Task(TaskRequest),
    /// A service's event.
    Event(Value),
}

/// Handle one event.
pub async fn handle(
    adapters: &Adapters,
    providers: &Providers,
    event: LambdaEvent<ActionEvent>,
) -> Result<Value, Error> {
    let context = event.context;
    match event.payload {
        ActionEvent::Task(task) => run_task(adapters, providers, task, &context).await,
        ActionEvent::Event(event) if event.get("op").is_some() => {
            let task: TaskRequest =
                serde_json::from_value(event).map_err(|e| format!("bad task payload: {e}"))?;
            run_task(adapters, providers, task, &context).await
        }
        ActionEvent::Event(event) => {
            if let Some(changed) = stack_status_changed(&event) {
                stack_rests(adapters, providers, &changed, &context).await
            } else if let Some(ended) = build_ended(&event) {
                build_ends(adapters, providers, &ended, &context).await
            } else if let Some(ended) = deployment_ended(&event) {
                deployment_ends(adapters, providers, &ended, &context).await
            } else if let Some(ended) = pipewright_core::ecs::deployment_ended(&event) {
                service_deployment_ends(adapters, providers, &ended, &context).await
            } else {
                work_ended(adapters, providers, &event, &context).await
            }
        }
    }
}

/// A stack an action started work on rests: complete the action. Events of other stacks change
/// nothing.
async fn stack_rests(
    adapters: &Adapters,
    providers: &Providers,
    changed: &StackChanged,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let span =
        tracing::info_span!("stack rests", stack = %changed.stack_id, status = %changed.status);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_stack(changed).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers.complete_stack(&prepared, changed).await {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        finish(&engine, &prepared, outcome).await
    }
    .instrument(span)
    .await
}

/// A build an action started ended: complete the action. Events of other builds change nothing.
async fn build_ends(
    adapters: &Adapters,
    providers: &Providers,
    ended: &BuildEnded,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let span = tracing::info_span!("build ended", build = %ended.build_id, status = %ended.status);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_build(ended).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers.complete_build(&prepared, ended).await {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        finish(&engine, &prepared, outcome).await
    }
    .instrument(span)
    .await
}

/// A deployment an action started ended: complete the action. Events of other deployments
/// change nothing.
async fn deployment_ends(
    adapters: &Adapters,
    providers: &Providers,
    ended: &DeploymentEnded,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let span = tracing::info_span!("deployment ended", deployment = %ended.deployment_id, state = %ended.state);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_deployment(ended).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers.complete_deployment(&prepared, ended).await {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        finish(&engine, &prepared, outcome).await
    }
    .instrument(span)
    .await
}

/// A service deployment an action started ended: complete the action. Events of other
/// deployments change nothing.
async fn service_deployment_ends(
    adapters: &Adapters,
    providers: &Providers,
    ended: &pipewright_core::ecs::DeploymentEnded,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let span = tracing::info_span!("service deployment ended", deployment = %ended.deployment_id, event = %ended.event_name);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_service_deployment(ended).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers
            .complete_service_deployment(&prepared, ended)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        finish(&engine, &prepared, outcome).await
    }
    .instrument(span)
    .await
}

/// Complete `prepared` with `outcome`; the answer says so.
async fn finish(
    engine: &pipewright_core::engine::Engine<'_>,
    prepared: &pipewright_core::engine::PreparedAction,
    outcome: ActionOutcome,
) -> Result<Value, Error> {
    let status = outcome.status;
    tracing::info!(status = %status, "action finished");
    let completed = engine
        .complete_action(&prepared.record, outcome, pipewright_aws::now())
        .await?;
    Ok(json!({ "completed": completed, "status": status.as_str() }))
}

/// A state machine execution an action started ended: complete the action. Events of other
/// executions change nothing.
async fn work_ended(
    adapters: &Adapters,
    providers: &Providers,
    event: &Value,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let Some(ended) = step_functions_ended(event) else {
        return Err("neither a runAction task nor the status event of a Step Functions execution that ended".into());
    };
    let span = tracing::info_span!("work ended", job = %ended.job_id, work = %ended.external_id, status = %ended.status);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_external(&ended).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers.complete(&prepared, &ended).await {
            Ok(outcome) => outcome,
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        finish(&engine, &prepared, outcome).await
    }
    .instrument(span)
    .await
}

/// Handle one `runAction` task. The result is recorded and the task token answered here, so the
/// Lambda's own return value only says what happened.
async fn run_task(
    adapters: &Adapters,
    providers: &Providers,
    task: TaskRequest,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let TaskRequest::RunAction {
        ids,
        stage,
        action,
        task_token,
        ..
    } = task
    else {
        return Err("the action function runs only runAction tasks".into());
    };
    // From the task token: a repeated task is the same action execution.
    let action_execution_id = pipewright_core::engine::action_execution_id(&task_token);
    let span = tracing::info_span!("action", execution = %ids.pipeline_execution_id, %stage, %action, %action_execution_id);
    let run = async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine
            .begin_action(
                &ids,
                &stage,
                &action,
                &action_execution_id,
                &task_token,
                pipewright_aws::now(),
            )
            .await?
        else {
            tracing::info!("action could not start (configuration); recorded as failed");
            return Ok(json!({ "status": "Failed" }));
        };
        let deadline = crate::providers::lambda_deadline(context.deadline);
        let outcome = match providers.run(&prepared, deadline).await {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                // Started; whoever finishes the work completes the action with its task token.
                tracing::info!("action pending: it completes with its job result");
                return Ok(json!({ "status": "InProgress" }));
            }
            Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
        };
        let status = outcome.status;
        if status == ActionExecutionStatus::InProgress {
            // Started elsewhere; the service's event completes it (see `work_ended`,
            // `stack_rests`), unless it ended already.
            tracing::info!(work = ?outcome.result.external_execution_id, "action pending: its service's event completes it");
            engine
                .record_started(&prepared.record, outcome.clone(), pipewright_aws::now())
                .await?;
            let settled = match providers.settled(&prepared, &outcome).await {
                Ok(settled) => settled,
                Err(e) => Some(ActionOutcome::failed(e.code(), e.to_string())),
            };
            let Some(settled) = settled else {
                return Ok(json!({ "status": status.as_str() }));
            };
            return finish(&engine, &prepared, settled).await;
        }
        tracing::info!(status = %status, "action finished");
        engine
            .complete_action(&prepared.record, outcome, pipewright_aws::now())
            .await?;
        Ok::<_, Error>(json!({ "status": status.as_str() }))
    };
    run.instrument(span).await
}
