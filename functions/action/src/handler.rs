//! Decode a `runAction` task, run the action, complete it (unless it is pending: a job-worker
//! action completes with its job result; a Step Functions, CloudFormation, CodeBuild,
//! CodeDeploy or ECS action with its service's event, which reaches this function too).

use lambda_runtime::{Error, LambdaEvent};
use pipewright_aws::engine::Adapters;
use pipewright_core::engine::external::WorkEvent;
use pipewright_core::engine::{ActionOutcome, TaskRequest};
use pipewright_core::execution::ActionExecutionStatus;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::providers::{ProviderError, Providers};

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
        ActionEvent::Event(event) => match WorkEvent::read(&event) {
            Some(work) => work_ends(adapters, providers, &work, &context).await,
            None => Err("neither a runAction task nor the event of work an action started".into()),
        },
    }
}

/// A service says work an action started ended: complete the action. Events of work no pending
/// action started change nothing. When the service does not yet show what its event says, the
/// invocation fails, so the event is delivered again.
async fn work_ends(
    adapters: &Adapters,
    providers: &Providers,
    event: &WorkEvent,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let span = tracing::info_span!("work ended", work = %event.work_id(), state = %event.state());
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let Some(prepared) = engine.pending_for(event).await? else {
            return Ok(json!({ "completed": false }));
        };
        let outcome = match providers.complete(&prepared, event).await {
            Ok(outcome) => outcome,
            Err(ProviderError::NotYet(reason)) => return Err(reason.into()),
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

/// Handle one `runAction` task. The result is recorded and the task token answered here, so the
/// Lambda's own return value only says what happened.
async fn run_task(
    adapters: &Adapters,
    providers: &Providers,
    task: TaskRequest,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let (ids, stage, action, task_token) = match task {
        TaskRequest::RunAction {
            ids,
            stage,
            action,
            task_token,
            ..
        } => (ids, stage, action, task_token),
        TaskRequest::RunRules {
            ids,
            stage,
            kind,
            task_token,
            run,
        } => {
            return crate::rules::run(
                adapters,
                providers,
                crate::rules::RulesTask {
                    ids: &ids,
                    stage: &stage,
                    kind,
                    run: run.as_deref(),
                    token: &task_token,
                },
                context,
            )
            .await
        }
        _ => return Err("the action function runs only runAction and runRules tasks".into()),
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
            // A look that fails leaves the action waiting for its event (or its timeout).
            let settled = match providers.settled(&prepared, &outcome).await {
                Ok(settled) => settled,
                Err(e) => {
                    tracing::warn!(error = %e, "could not tell whether the work already ended");
                    None
                }
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
