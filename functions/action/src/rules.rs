//! A `runRules` task: run the work rules (`Commands`, `CodeBuild`) of a stage's `onSuccess` or
//! `onFailure` conditions, each as the action it would be, all at once, and answer the task
//! token with what each found (`pipewright_core::engine::work_rules`). A Commands rule passes
//! when its commands exit 0; a CodeBuild rule when its build succeeds (this invocation watches
//! the build until it ends, or fails the rule when the function's time runs out).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lambda_runtime::Error;
use pipewright_aws::engine::Adapters;
use pipewright_core::conditions::{ConditionKind, WorkRuleResult};
use pipewright_core::engine::work_rules::WorkRule;
use pipewright_core::engine::{ActionOutcome, ExecutionIds};
use pipewright_core::execution::ActionExecutionStatus;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::providers::{lambda_deadline, Providers};

/// How often a running build is looked at.
const POLL: Duration = Duration::from_secs(5);
/// What is kept of the function's time to answer the token.
const ANSWER_MARGIN: Duration = Duration::from_secs(20);

/// One `runRules` task.
pub struct RulesTask<'a> {
    /// The execution.
    pub ids: &'a ExecutionIds,
    /// The stage.
    pub stage: &'a str,
    /// Which conditions.
    pub kind: ConditionKind,
    /// The run that asks.
    pub run: Option<&'a str>,
    /// The token to answer.
    pub token: &'a str,
}

/// Run the work rules of the task's stage and conditions and answer its token (at once, with
/// nothing, when they would decide nothing: `rules_matter`).
pub async fn run(
    adapters: &Adapters,
    providers: &Providers,
    task: RulesTask<'_>,
    context: &lambda_runtime::Context,
) -> Result<Value, Error> {
    let RulesTask {
        ids,
        stage,
        kind,
        run,
        token,
    } = task;
    let span =
        tracing::info_span!("work rules", execution = %ids.pipeline_execution_id, %stage, ?kind);
    async {
        let engine = adapters.engine(&context.invoked_function_arn);
        let rules = engine
            .prepare_work_rules(ids, stage, kind, run, pipewright_aws::now())
            .await?;
        let deadline = lambda_deadline(context.deadline);
        let runs = rules
            .iter()
            .map(|rule| async move { (rule.key.clone(), run_rule(providers, rule, deadline).await) });
        let results: BTreeMap<String, WorkRuleResult> =
            futures::future::join_all(runs).await.into_iter().collect();
        for (key, result) in &results {
            tracing::info!(rule = %key, passed = result.passed, summary = %result.summary, "work rule ran");
        }
        engine.answer_work_rules(token, &results).await?;
        Ok::<_, Error>(json!({ "rules": results.len() }))
    }
    .instrument(span)
    .await
}

/// Run one work rule to its end (or the function's deadline).
async fn run_rule(
    providers: &Providers,
    rule: &WorkRule,
    deadline: Option<Instant>,
) -> WorkRuleResult {
    let provider = &rule.rule.rule_type_id.provider;
    let prepared = match &rule.prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            return WorkRuleResult {
                passed: false,
                summary: format!("the {provider} rule could not run: {why}"),
            }
        }
    };
    let outcome = match providers.run(prepared, deadline).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => ActionOutcome::failed(
            pipewright_core::execution::FailureType::JobFailed,
            "the rule started nothing",
        ),
        Err(e) => ActionOutcome::failed(e.code(), e.to_string()),
    };
    let outcome = if outcome.status == ActionExecutionStatus::InProgress {
        watch(providers, prepared, outcome, deadline).await
    } else {
        outcome
    };
    result_of(provider, &outcome)
}

/// Look at work a rule started (a build) until it ends, or the deadline comes.
async fn watch(
    providers: &Providers,
    prepared: &pipewright_core::engine::PreparedAction,
    started: ActionOutcome,
    deadline: Option<Instant>,
) -> ActionOutcome {
    let until = deadline.map(|d| d.checked_sub(ANSWER_MARGIN).unwrap_or(d));
    loop {
        match providers.settled(prepared, &started).await {
            Ok(Some(ended)) => return ended,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not tell whether the rule's work ended"),
        }
        if until.is_some_and(|u| Instant::now() + POLL >= u) {
            let id = started
                .result
                .external_execution_id
                .clone()
                .unwrap_or_default();
            return ActionOutcome::failed(
                pipewright_core::execution::FailureType::JobFailed,
                format!("{id} did not end while the rule could wait for it (15 minutes)"),
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What an ended rule found, for the condition check and a person.
fn result_of(provider: &str, outcome: &ActionOutcome) -> WorkRuleResult {
    let result = &outcome.result;
    let with_id = |text: String| match &result.external_execution_id {
        Some(id) => format!("{text} ({id})"),
        None => text,
    };
    match outcome.status {
        ActionExecutionStatus::Succeeded => WorkRuleResult {
            passed: true,
            summary: with_id(match provider {
                "CodeBuild" => "the build succeeded".to_string(),
                _ => "the commands succeeded".to_string(),
            }),
        },
        _ => WorkRuleResult {
            passed: false,
            summary: with_id(
                result
                    .error_details
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| format!("the {provider} rule failed")),
            ),
        },
    }
}
