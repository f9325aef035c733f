//! SDK responses → the plain structs [`crate::render`] draws. Pure: no I/O.

use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
use aws_sdk_codepipeline::primitives::DateTime;
use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, ActionState, PipelineExecution, PipelineExecutionSummary,
};

use crate::render::{
    HistoryRow, StatusAction, StatusStage, StatusView, WatchAction, WatchStage, WatchState,
};

fn secs(t: Option<&DateTime>) -> Option<f64> {
    t.map(DateTime::as_secs_f64)
}

fn text(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `pipewright status` from GetPipelineState.
pub fn status_view(state: &GetPipelineStateOutput) -> StatusView {
    StatusView {
        pipeline: state.pipeline_name().unwrap_or_default().to_owned(),
        version: state.pipeline_version(),
        stages: state
            .stage_states()
            .iter()
            .map(|s| StatusStage {
                name: s.stage_name().unwrap_or_default().to_owned(),
                status: s.latest_execution().map(|e| e.status().as_str().to_owned()),
                execution_id: s
                    .latest_execution()
                    .map(|e| e.pipeline_execution_id().to_owned()),
                actions: s.action_states().iter().map(status_action).collect(),
            })
            .collect(),
    }
}

fn status_action(a: &ActionState) -> StatusAction {
    let latest = a.latest_execution();
    StatusAction {
        name: a.action_name().unwrap_or_default().to_owned(),
        status: latest
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_owned()),
        last_change: secs(latest.and_then(|e| e.last_status_change())),
        summary: text(latest.and_then(|e| e.summary())),
        error: text(
            latest
                .and_then(|e| e.error_details())
                .and_then(|e| e.message()),
        ),
        token: text(latest.and_then(|e| e.token())),
    }
}

/// `pipewright history` rows from ListPipelineExecutions.
pub fn history_rows(summaries: &[PipelineExecutionSummary]) -> Vec<HistoryRow> {
    summaries
        .iter()
        .map(|s| HistoryRow {
            execution_id: s.pipeline_execution_id().unwrap_or_default().to_owned(),
            status: s
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            trigger: s
                .trigger()
                .and_then(|t| t.trigger_type())
                .map(|t| t.as_str().to_owned()),
            started: secs(s.start_time()),
            updated: secs(s.last_update_time()),
            summary: text(s.status_summary()),
        })
        .collect()
}

/// True for the statuses an execution ends in.
pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "Succeeded" | "Failed" | "Stopped" | "Superseded" | "Cancelled"
    )
}

/// `pipewright watch` of `execution`: the stages and actions of the pipeline (from `state`), each
/// with its latest attempt in this execution (from `actions`, ListActionExecutions filtered by
/// the execution), and the approval token of a waiting approval (from `state`). `summary` is
/// the execution's ListPipelineExecutions entry (start and last update time), when known.
pub fn watch_state(
    pipeline: &str,
    execution: &PipelineExecution,
    summary: Option<&PipelineExecutionSummary>,
    state: &GetPipelineStateOutput,
    actions: &[ActionExecutionDetail],
) -> WatchState {
    let id = execution.pipeline_execution_id().unwrap_or_default();
    let status = execution
        .status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    let mine: Vec<&ActionExecutionDetail> = actions
        .iter()
        .filter(|d| d.pipeline_execution_id().is_none_or(|e| e == id))
        .collect();

    // The structure: the stages and actions the pipeline declares, then any the execution ran
    // that the current version no longer has.
    let mut stages: Vec<(String, Vec<String>)> = state
        .stage_states()
        .iter()
        .map(|s| {
            (
                s.stage_name().unwrap_or_default().to_owned(),
                s.action_states()
                    .iter()
                    .map(|a| a.action_name().unwrap_or_default().to_owned())
                    .collect(),
            )
        })
        .collect();
    let mut by_start = mine.clone();
    by_start.sort_by(|a, b| {
        secs(a.start_time())
            .unwrap_or(0.0)
            .total_cmp(&secs(b.start_time()).unwrap_or(0.0))
    });
    for d in by_start {
        let (stage, action) = (
            d.stage_name().unwrap_or_default(),
            d.action_name().unwrap_or_default(),
        );
        match stages.iter_mut().find(|(s, _)| s == stage) {
            Some((_, names)) if !names.iter().any(|n| n == action) => names.push(action.into()),
            Some(_) => {}
            None => stages.push((stage.into(), vec![action.into()])),
        }
    }

    let stages = stages
        .into_iter()
        .map(|(stage_name, action_names)| {
            let stage_state = state
                .stage_states()
                .iter()
                .find(|s| s.stage_name() == Some(stage_name.as_str()));
            let actions: Vec<WatchAction> = action_names
                .iter()
                .map(|action_name| {
                    // The latest attempt: the newest start (the listing is newest first, so on
                    // a tie the first one).
                    let latest = mine
                        .iter()
                        .filter(|d| {
                            d.stage_name() == Some(stage_name.as_str())
                                && d.action_name() == Some(action_name.as_str())
                        })
                        .fold(None::<&&ActionExecutionDetail>, |best, d| match best {
                            Some(b)
                                if secs(b.start_time()).unwrap_or(0.0)
                                    >= secs(d.start_time()).unwrap_or(0.0) =>
                            {
                                Some(b)
                            }
                            _ => Some(d),
                        });
                    let action_state = stage_state.and_then(|s| {
                        s.action_states()
                            .iter()
                            .find(|a| a.action_name() == Some(action_name.as_str()))
                    });
                    watch_action(action_name, latest.copied(), action_state)
                })
                .collect();
            let status = stage_state
                .and_then(|s| s.latest_execution())
                .filter(|e| e.pipeline_execution_id() == id)
                .map(|e| e.status().as_str().to_owned())
                .or_else(|| derived_stage_status(&actions, &status));
            WatchStage {
                name: stage_name,
                status,
                actions,
            }
        })
        .collect::<Vec<_>>();

    let started = secs(summary.and_then(|s| s.start_time())).or_else(|| {
        stages
            .iter()
            .flat_map(|s| s.actions.iter().filter_map(|a| a.started))
            .min_by(f64::total_cmp)
    });
    let finished = if is_final(&status) {
        secs(summary.and_then(|s| s.last_update_time())).or_else(|| {
            stages
                .iter()
                .flat_map(|s| s.actions.iter().filter_map(|a| a.updated))
                .max_by(f64::total_cmp)
        })
    } else {
        None
    };
    WatchState {
        pipeline: pipeline.to_owned(),
        execution_id: id.to_owned(),
        status,
        summary: text(execution.status_summary()),
        trigger: execution
            .trigger()
            .and_then(|t| t.trigger_type())
            .map(|t| t.as_str().to_owned()),
        started,
        finished,
        stages,
    }
}

fn watch_action(
    name: &str,
    detail: Option<&ActionExecutionDetail>,
    state: Option<&ActionState>,
) -> WatchAction {
    let Some(d) = detail else {
        return WatchAction {
            name: name.to_owned(),
            ..WatchAction::default()
        };
    };
    let result = d.output().and_then(|o| o.execution_result());
    // The token GetPipelineState shows for this very attempt.
    let token = state
        .and_then(|s| s.latest_execution())
        .filter(|e| {
            e.action_execution_id().is_some() && e.action_execution_id() == d.action_execution_id()
        })
        .and_then(|e| e.token());
    let status = d.status().map(|s| s.as_str().to_owned());
    WatchAction {
        name: name.to_owned(),
        started: secs(d.start_time()),
        updated: secs(d.last_update_time()),
        summary: text(result.and_then(|r| r.external_execution_summary())),
        error: text(
            result
                .and_then(|r| r.error_details())
                .and_then(|e| e.message()),
        ),
        token: text(token).filter(|_| status.as_deref() == Some("InProgress")),
        status,
    }
}

/// A stage's status in this execution when GetPipelineState's latest execution of the stage is
/// another one: from its actions.
fn derived_stage_status(actions: &[WatchAction], execution_status: &str) -> Option<String> {
    let statuses: Vec<Option<&str>> = actions.iter().map(|a| a.status.as_deref()).collect();
    if statuses.iter().all(Option::is_none) {
        return None;
    }
    let status = if statuses.contains(&Some("InProgress")) {
        "InProgress"
    } else if statuses.contains(&Some("Failed")) {
        "Failed"
    } else if statuses.iter().all(|s| *s == Some("Succeeded")) {
        "Succeeded"
    } else if statuses.contains(&Some("Abandoned")) || is_final(execution_status) {
        "Stopped"
    } else {
        "InProgress"
    };
    Some(status.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::types::{
        ActionExecution, ActionExecutionOutput, ActionExecutionResult, ActionExecutionStatus,
        ErrorDetails, PipelineExecutionStatus, StageExecution, StageExecutionStatus, StageState,
    };

    fn detail(
        stage: &str,
        action: &str,
        id: &str,
        status: ActionExecutionStatus,
        start: i64,
    ) -> ActionExecutionDetail {
        ActionExecutionDetail::builder()
            .pipeline_execution_id("e1")
            .action_execution_id(id)
            .stage_name(stage)
            .action_name(action)
            .status(status)
            .start_time(DateTime::from_secs(start))
            .last_update_time(DateTime::from_secs(start + 2))
            .build()
    }

    fn state() -> GetPipelineStateOutput {
        let stage = |name: &str, actions: &[&str]| {
            StageState::builder()
                .stage_name(name)
                .set_action_states(Some(
                    actions
                        .iter()
                        .map(|a| ActionState::builder().action_name(*a).build())
                        .collect(),
                ))
        };
        GetPipelineStateOutput::builder()
            .pipeline_name("p")
            .stage_states(stage("Source", &["Src"]).build())
            .stage_states(
                stage("Build", &["Compile"])
                    // Another execution is the stage's latest.
                    .latest_execution(
                        StageExecution::builder()
                            .pipeline_execution_id("e2")
                            .status(StageExecutionStatus::InProgress)
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .stage_states(
                StageState::builder()
                    .stage_name("Approve")
                    .action_states(
                        ActionState::builder()
                            .action_name("Ok")
                            .latest_execution(
                                ActionExecution::builder()
                                    .action_execution_id("a3")
                                    .status(ActionExecutionStatus::InProgress)
                                    .token("a3")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .stage_states(stage("Deploy", &["Ship"]).build())
            .build()
    }

    #[test]
    fn watch_state_takes_each_actions_latest_attempt_of_this_execution() {
        let execution = PipelineExecution::builder()
            .pipeline_execution_id("e1")
            .status(PipelineExecutionStatus::InProgress)
            .build();
        let failed = ActionExecutionDetail::builder()
            .output(
                ActionExecutionOutput::builder()
                    .execution_result(
                        ActionExecutionResult::builder()
                            .error_details(ErrorDetails::builder().message("boom").build())
                            .build(),
                    )
                    .build(),
            )
            .build();
        let mut first_try = detail("Build", "Compile", "a1", ActionExecutionStatus::Failed, 10);
        first_try.output = failed.output;
        let actions = vec![
            detail("Approve", "Ok", "a3", ActionExecutionStatus::InProgress, 30),
            detail(
                "Build",
                "Compile",
                "a2",
                ActionExecutionStatus::Succeeded,
                20,
            ),
            first_try,
            detail("Source", "Src", "a0", ActionExecutionStatus::Succeeded, 1),
        ];
        let w = watch_state("p", &execution, None, &state(), &actions);
        assert_eq!(w.started, Some(1.0));
        assert_eq!(w.finished, None);
        let names: Vec<&str> = w.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Source", "Build", "Approve", "Deploy"]);
        let build = &w.stages[1];
        assert_eq!(
            build.status.as_deref(),
            Some("Succeeded"),
            "derived, not e2's"
        );
        assert_eq!(build.actions[0].status.as_deref(), Some("Succeeded"));
        assert_eq!(build.actions[0].error, None);
        assert_eq!(w.stages[2].actions[0].token.as_deref(), Some("a3"));
        assert_eq!(w.stages[2].status.as_deref(), Some("InProgress"));
        assert_eq!(w.stages[3].status, None);
        assert_eq!(w.stages[3].actions[0].status, None);
    }
}
