//! One pipeline: its stages as columns of action cards, live, with what a person does from
//! there (release a change, approve, retry, stop, roll back, enable or disable a transition).

use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionState, PipelineDeclaration, PipelineExecutionStatus,
    PipelineExecutionSummary, StageDeclaration, StageState,
};
use maud::{html, Markup};

use super::{badge, button_form, Flash, Page};
use crate::text::{ago, enc, execution_path, history_path, pipeline_path, short, timestamp};

/// What the pipeline page shows.
pub struct View<'a> {
    /// GetPipeline's declaration.
    pub declaration: &'a PipelineDeclaration,
    /// GetPipelineState.
    pub state: &'a GetPipelineStateOutput,
    /// ListPipelineExecutions, newest first.
    pub recent: &'a [PipelineExecutionSummary],
}

fn running(e: &PipelineExecutionSummary) -> bool {
    matches!(
        e.status(),
        Some(PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping)
    )
}

/// The pipeline page.
pub fn render(view: &View<'_>, flash: &Flash, now: f64) -> Page {
    let name = view.declaration.name();
    let base = pipeline_path(name);
    let parallel = view.declaration.execution_mode()
        == Some(&aws_sdk_codepipeline::types::ExecutionMode::Parallel);
    let main = html! {
        div.title-row {
            h1 { (name) }
            span.meta {
                "version " (view.declaration.version().unwrap_or(1))
                @if let Some(t) = view.declaration.pipeline_type() { " · " (t.as_str()) }
                @if let Some(m) = view.declaration.execution_mode() { " · " (m.as_str()) " mode" }
            }
            div.toolbar {
                (button_form(&format!("{base}/release"), &[], "Release change", "primary"))
                a.button href=(history_path(name)) { "Execution history" }
            }
        }
        (flash.render())
        (running_executions(name, &base, view.recent, now))
        div.stages role="list" {
            @for (i, stage) in view.declaration.stages().iter().enumerate() {
                @let state = view.state.stage_states().iter().find(|s| s.stage_name() == Some(stage.name()));
                @if i > 0 {
                    (transition(&base, stage.name(), state))
                }
                (stage_column(name, &base, parallel, i, stage, state, view.recent, now))
            }
        }
    };
    Page {
        title: name.to_string(),
        crumbs: vec![(name.to_string(), base.clone())],
        main,
        refresh: Some(2),
    }
}

/// Executions in progress, each with its Stop buttons.
fn running_executions(
    name: &str,
    base: &str,
    recent: &[PipelineExecutionSummary],
    now: f64,
) -> Markup {
    let running: Vec<_> = recent.iter().filter(|e| running(e)).collect();
    html! {
        @if !running.is_empty() {
            section.running aria-label="Executions in progress" {
                h2 { "In progress" }
                ul {
                    @for e in running {
                        @let id = e.pipeline_execution_id().unwrap_or_default();
                        li data-execution=(id) {
                            (badge(e.status().map(|s| s.as_str()).unwrap_or("InProgress")))
                            " "
                            a href=(execution_path(name, id)) { code { (short(id)) } }
                            @if let Some(t) = e.start_time() {
                                span { "started " time title=(timestamp(t.as_secs_f64())) { (ago(t.as_secs_f64(), now)) } }
                            }
                            @if e.status() == Some(&PipelineExecutionStatus::InProgress) {
                                form.inline.stop method="post" action={ (base) "/stop" } {
                                    input type="hidden" name="execution" value=(id);
                                    label { "Reason " input type="text" name="reason" maxlength="200"; }
                                    button type="submit" name="abandon" value="false" { "Stop and wait" }
                                    button.danger type="submit" name="abandon" value="true" { "Stop and abandon" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The arrow between two stages: its inbound transition, enabled or disabled, with the switch.
fn transition(base: &str, stage: &str, state: Option<&StageState>) -> Markup {
    let t = state.and_then(|s| s.inbound_transition_state());
    let enabled = t.map(|t| t.enabled()).unwrap_or(true);
    html! {
        div.transition data-transition=(stage) data-enabled=(enabled) {
            @if enabled {
                span.arrow aria-hidden="true" { "→" }
                details {
                    summary { "Disable" span.visually-hidden { " the transition into " (stage) } }
                    form method="post" action={ (base) "/transition" } {
                        input type="hidden" name="stage" value=(stage);
                        input type="hidden" name="enable" value="false";
                        label { span.visually-hidden { "Why disable the transition into " (stage) } input type="text" name="reason" placeholder="reason" maxlength="300" required; }
                        button type="submit" { "Disable" }
                    }
                }
            } @else {
                span.arrow.disabled aria-hidden="true" { "⊘" }
                p.meta { "Disabled"
                    @if let Some(r) = t.and_then(|t| t.disabled_reason()) { ": " (r) }
                }
                (button_form(&format!("{base}/transition"), &[("stage", stage), ("enable", "true")], "Enable", ""))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn stage_column(
    name: &str,
    base: &str,
    parallel: bool,
    index: usize,
    stage: &StageDeclaration,
    state: Option<&StageState>,
    recent: &[PipelineExecutionSummary],
    now: f64,
) -> Markup {
    let latest = state.and_then(|s| s.latest_execution());
    let mut actions: Vec<&ActionDeclaration> = stage.actions().iter().collect();
    actions.sort_by_key(|a| a.run_order().unwrap_or(1));
    let heading = format!("stage-{}", enc(stage.name()));
    html! {
        section.stage role="listitem" data-stage=(stage.name()) aria-labelledby=(heading) {
            h2 id=(heading) { (stage.name()) }
            @if let Some(l) = latest {
                p.stage-status {
                    (badge(l.status().as_str()))
                    " "
                    a href=(execution_path(name, l.pipeline_execution_id())) { code { (short(l.pipeline_execution_id())) } }
                }
            } @else {
                p.stage-status.meta { "not run yet" }
            }
            @if let Some(s) = state {
                @if !s.inbound_executions().is_empty() {
                    p.waiting {
                        "Waiting to enter: "
                        @for (i, w) in s.inbound_executions().iter().enumerate() {
                            @if i > 0 { ", " }
                            a href=(execution_path(name, w.pipeline_execution_id())) { code { (short(w.pipeline_execution_id())) } }
                        }
                    }
                }
                (conditions(s))
            }
            ol.actions {
                @for action in actions {
                    @let action_state = state.and_then(|s| s.action_states().iter().find(|a| a.action_name() == Some(action.name())));
                    (action_card(base, stage.name(), action, action_state, now))
                }
            }
            @if let Some(l) = latest {
                @if l.status().as_str() == "Failed" {
                    div.stage-actions {
                        (button_form(&format!("{base}/retry"), &[("stage", stage.name()), ("execution", l.pipeline_execution_id()), ("mode", "FAILED_ACTIONS")], "Retry failed actions", "primary"))
                        (button_form(&format!("{base}/retry"), &[("stage", stage.name()), ("execution", l.pipeline_execution_id()), ("mode", "ALL_ACTIONS")], "Retry all actions", ""))
                    }
                }
            }
            // CodePipeline rolls back stages of SUPERSEDED and QUEUED pipelines only.
            @if index > 0 && !parallel {
                (rollback(base, stage.name(), latest.map(|l| l.pipeline_execution_id()), recent))
            }
        }
    }
}

/// The latest result of each condition of the stage.
fn conditions(s: &StageState) -> Markup {
    let sites = [
        ("Before entry", s.before_entry_condition_state()),
        ("On success", s.on_success_condition_state()),
        ("On failure", s.on_failure_condition_state()),
    ];
    html! {
        @for (site, state) in sites {
            @if let Some(c) = state {
                @if let Some(l) = c.latest_execution() {
                    p.condition {
                        (site) " condition: "
                        (badge(l.status().map(|s| s.as_str()).unwrap_or("Unknown")))
                        @if let Some(summary) = l.summary() { " " span.meta { (summary) } }
                    }
                }
            }
        }
    }
}

fn action_card(
    base: &str,
    stage: &str,
    action: &ActionDeclaration,
    state: Option<&ActionState>,
    now: f64,
) -> Markup {
    let latest = state.and_then(|s| s.latest_execution());
    let type_id = action.action_type_id();
    let status = latest.and_then(|l| l.status()).map(|s| s.as_str());
    let is_approval = type_id
        .map(|t| t.category() == &ActionCategory::Approval)
        .unwrap_or(false);
    html! {
        li.card data-action=(action.name()) {
            div.card-head {
                h3 { (action.name()) }
                @if let Some(t) = type_id {
                    span.meta { (t.provider()) }
                }
            }
            @match status {
                Some(s) => { p { (badge(s)) } }
                None => { p.meta { "not run yet" } }
            }
            @if let Some(l) = latest {
                @if let Some(t) = l.last_status_change() {
                    p.meta { time title=(timestamp(t.as_secs_f64())) { (ago(t.as_secs_f64(), now)) } }
                }
                @if let Some(summary) = l.summary().filter(|s| !s.is_empty()) {
                    p.summary { (summary) }
                }
                @if let Some(e) = l.error_details().and_then(|e| e.message()) {
                    p.error { (e) }
                }
                @if let Some(p) = l.percent_complete() {
                    progress max="100" value=(p) { (p) "%" }
                }
                @if let Some(url) = l.external_execution_url().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                    p { a href=(url) rel="noopener noreferrer" target="_blank" { "Details" span.visually-hidden { " of " (action.name()) } } }
                }
                @if is_approval && status == Some("InProgress") {
                    @if let Some(token) = l.token() {
                        form.approval method="post" action={ (base) "/approval" } {
                            input type="hidden" name="stage" value=(stage);
                            input type="hidden" name="action" value=(action.name());
                            input type="hidden" name="token" value=(token);
                            label { "Comment" textarea name="summary" rows="2" maxlength="512" {} }
                            div.buttons {
                                button.primary type="submit" name="decision" value="Approved" { "Approve" }
                                button.danger type="submit" name="decision" value="Rejected" { "Reject" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Roll the stage back to an earlier execution that succeeded (RollbackStage).
fn rollback(
    base: &str,
    stage: &str,
    current: Option<&str>,
    recent: &[PipelineExecutionSummary],
) -> Markup {
    let targets: Vec<&str> = recent
        .iter()
        .filter(|e| e.status() == Some(&PipelineExecutionStatus::Succeeded))
        .filter_map(|e| e.pipeline_execution_id())
        .filter(|id| Some(*id) != current)
        .take(5)
        .collect();
    html! {
        @if !targets.is_empty() {
            details.rollback {
                summary { "Roll back" }
                form method="post" action={ (base) "/rollback" } {
                    input type="hidden" name="stage" value=(stage);
                    label { "To the execution "
                        select name="target" {
                            @for id in &targets { option value=(id) { (short(id)) } }
                        }
                    }
                    button type="submit" { "Roll back " (stage) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::types::{
        ActionExecution, ActionExecutionStatus, ActionOwner, ActionTypeId, StageExecution,
        StageExecutionStatus, TransitionState,
    };

    fn action(name: &str, category: ActionCategory, provider: &str) -> ActionDeclaration {
        ActionDeclaration::builder()
            .name(name)
            .action_type_id(
                ActionTypeId::builder()
                    .category(category)
                    .owner(ActionOwner::Aws)
                    .provider(provider)
                    .version("1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
        StageDeclaration::builder()
            .name(name)
            .set_actions(Some(actions))
            .build()
            .unwrap()
    }

    fn stage_state(
        name: &str,
        status: StageExecutionStatus,
        action: Option<(&str, ActionExecutionStatus, Option<&str>)>,
    ) -> StageState {
        let mut s = StageState::builder().stage_name(name).latest_execution(
            StageExecution::builder()
                .pipeline_execution_id("e1")
                .status(status)
                .build()
                .unwrap(),
        );
        if let Some((a, st, token)) = action {
            s = s.action_states(
                ActionState::builder()
                    .action_name(a)
                    .latest_execution(
                        ActionExecution::builder()
                            .status(st)
                            .set_token(token.map(str::to_string))
                            .build(),
                    )
                    .build(),
            );
        }
        s.build()
    }

    #[test]
    fn a_waiting_approval_gets_its_buttons_a_failed_stage_its_retry_a_disabled_transition_its_reason(
    ) {
        let declaration = PipelineDeclaration::builder()
            .name("web")
            .role_arn("arn:aws:iam::1:role/r")
            .stages(stage(
                "Source",
                vec![action("Fetch", ActionCategory::Source, "S3")],
            ))
            .stages(stage(
                "Build",
                vec![action("Compile", ActionCategory::Build, "CodeBuild")],
            ))
            .stages(stage(
                "Approve",
                vec![action("Release", ActionCategory::Approval, "Manual")],
            ))
            .build()
            .unwrap();
        let state = GetPipelineStateOutput::builder()
            .pipeline_name("web")
            .stage_states(stage_state("Source", StageExecutionStatus::Succeeded, None))
            .stage_states(stage_state(
                "Build",
                StageExecutionStatus::Failed,
                Some(("Compile", ActionExecutionStatus::Failed, None)),
            ))
            .stage_states({
                let mut s = stage_state(
                    "Approve",
                    StageExecutionStatus::InProgress,
                    Some((
                        "Release",
                        ActionExecutionStatus::InProgress,
                        Some("tok-<1>"),
                    )),
                );
                s.inbound_transition_state = Some(
                    TransitionState::builder()
                        .enabled(false)
                        .disabled_reason("freeze <friday>")
                        .build(),
                );
                s
            })
            .build();
        let view = View {
            declaration: &declaration,
            state: &state,
            recent: &[],
        };
        let html = render(&view, &Flash::default(), 0.0).main.into_string();
        // The approval's form carries its token (escaped) and both decisions.
        assert!(html.contains("value=\"tok-&lt;1&gt;\""), "{html}");
        assert!(html.contains("value=\"Approved\"") && html.contains("value=\"Rejected\""));
        // Only the failed stage offers a retry, in both modes.
        assert_eq!(html.matches("Retry failed actions").count(), 1);
        assert!(html.contains("value=\"ALL_ACTIONS\""));
        // The disabled transition says why and offers Enable.
        assert!(html.contains("data-enabled=\"false\""));
        assert!(html.contains("freeze &lt;friday&gt;"));
        assert!(html.contains(">Enable<"));
        // No execution runs: no Stop button.
        assert!(!html.contains("Stop and abandon"));
    }
}
