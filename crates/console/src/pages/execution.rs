//! One execution: a timeline of its stages and actions, its source revisions, variables,
//! artifacts, action details (external links, output variables, errors, the log tail) and
//! condition results; Stop and Retry from here too.

use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, PipelineExecution, PipelineExecutionStatus, RuleExecutionDetail,
};
use maud::{html, Markup};

use super::{badge, button_form, Flash, Page};
use crate::text::{duration, execution_path, pipeline_path, short, timestamp};

/// What the execution page shows.
pub struct View<'a> {
    /// GetPipelineExecution.
    pub execution: &'a PipelineExecution,
    /// The stage names in the order of the execution's pipeline version.
    pub stages: &'a [String],
    /// ListActionExecutions for the execution, any order.
    pub actions: &'a [ActionExecutionDetail],
    /// ListRuleExecutions for the execution, any order.
    pub rules: &'a [RuleExecutionDetail],
    /// The log tail of each action execution that has one (by action execution id).
    pub logs: &'a [(String, String)],
}

fn secs(t: Option<&aws_sdk_codepipeline::primitives::DateTime>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}

/// The execution page.
pub fn render(view: &View<'_>, flash: &Flash, now: f64) -> Page {
    let e = view.execution;
    let name = e.pipeline_name().unwrap_or_default();
    let id = e.pipeline_execution_id().unwrap_or_default();
    let base = pipeline_path(name);
    let status = e.status().map(|s| s.as_str()).unwrap_or("Unknown");
    let mut actions: Vec<&ActionExecutionDetail> = view.actions.iter().collect();
    actions.sort_by(|a, b| {
        let stage = |x: &ActionExecutionDetail| {
            view.stages
                .iter()
                .position(|s| Some(s.as_str()) == x.stage_name())
                .unwrap_or(usize::MAX)
        };
        stage(a).cmp(&stage(b)).then(
            secs(a.start_time())
                .partial_cmp(&secs(b.start_time()))
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    let main = html! {
        div.title-row {
            h1 { "Execution " code { (short(id)) } }
            (badge(status))
            div.toolbar {
                @if e.status() == Some(&PipelineExecutionStatus::InProgress) {
                    form.inline.stop method="post" action={ (base) "/stop" } {
                        input type="hidden" name="execution" value=(id);
                        input type="hidden" name="back" value=(execution_path(name, id));
                        label { "Reason " input type="text" name="reason" maxlength="200"; }
                        button type="submit" name="abandon" value="false" { "Stop and wait" }
                        button.danger type="submit" name="abandon" value="true" { "Stop and abandon" }
                    }
                }
            }
        }
        (flash.render())
        @if let Some(summary) = e.status_summary().filter(|s| !s.is_empty()) {
            p.summary { (summary) }
        }
        dl.facts {
            dt { "Execution id" } dd { code { (id) } }
            dt { "Pipeline version" } dd { (e.pipeline_version().unwrap_or_default()) }
            @if let Some(t) = e.trigger() {
                dt { "Trigger" }
                dd { (t.trigger_type().map(|t| t.as_str()).unwrap_or_default())
                    @if let Some(d) = t.trigger_detail().filter(|d| !d.is_empty()) { " · " (d) } }
            }
            @if let Some(m) = e.execution_mode() { dt { "Mode" } dd { (m.as_str()) } }
            @if let Some(t) = e.execution_type() { dt { "Type" } dd { (t.as_str()) } }
            @if let Some(r) = e.rollback_metadata().and_then(|r| r.rollback_target_pipeline_execution_id()) {
                dt { "Rolls back to" } dd { a href=(execution_path(name, r)) { code { (short(r)) } } }
            }
        }
        (timeline(view.stages, &actions, view.rules, now))
        @if retryable(view) {
            section aria-label="Retry" {
                h2 { "Retry" }
                @for stage in failed_stages(view) {
                    div.stage-actions {
                        span { (stage) ": " }
                        (button_form(&format!("{base}/retry"), &[("stage", stage), ("execution", id), ("mode", "FAILED_ACTIONS"), ("back", &execution_path(name, id))], "Retry failed actions", "primary"))
                        (button_form(&format!("{base}/retry"), &[("stage", stage), ("execution", id), ("mode", "ALL_ACTIONS"), ("back", &execution_path(name, id))], "Retry all actions", ""))
                    }
                }
            }
        }
        section aria-label="Source revisions" {
            h2 { "Source revisions" }
            @if e.artifact_revisions().is_empty() { p.meta { "none" } }
            ul {
                @for r in e.artifact_revisions() {
                    li {
                        (r.name().unwrap_or_default()) ": " code { (r.revision_id().unwrap_or_default()) }
                        @if let Some(s) = r.revision_summary().filter(|s| !s.is_empty()) { " · " (s) }
                        @if let Some(u) = r.revision_url().filter(|u| u.starts_with("https://")) {
                            " " a href=(u) rel="noopener noreferrer" target="_blank" { "view" }
                        }
                    }
                }
            }
        }
        @if !e.variables().is_empty() {
            section aria-label="Variables" {
                h2 { "Variables" }
                table.list { tbody {
                    @for v in e.variables() {
                        tr { th scope="row" { (v.name().unwrap_or_default()) } td { code { (v.resolved_value().unwrap_or_default()) } } }
                    }
                } }
            }
        }
        section aria-label="Actions" {
            h2 { "Actions" }
            @if actions.is_empty() { p.meta { "No action has run yet." } }
            @for a in &actions {
                (action_detail(a, view.logs))
            }
        }
        @if !view.rules.is_empty() {
            section aria-label="Condition rules" {
                h2 { "Condition rules" }
                table.list {
                    thead { tr { th scope="col" { "Stage" } th scope="col" { "Rule" } th scope="col" { "Status" } th scope="col" { "Result" } } }
                    tbody {
                        @for r in view.rules {
                            tr {
                                td { (r.stage_name().unwrap_or_default()) }
                                td { (r.rule_name().unwrap_or_default()) }
                                td { (badge(r.status().map(|s| s.as_str()).unwrap_or("Unknown"))) }
                                td {
                                    @if let Some(res) = r.output().and_then(|o| o.execution_result()) {
                                        (res.external_execution_summary().unwrap_or_default())
                                        @if let Some(err) = res.error_details().and_then(|e| e.message()) { " " span.error { (err) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Page {
        title: format!("{name} execution {}", short(id)),
        crumbs: vec![
            (name.to_string(), base.clone()),
            (short(id).to_string(), execution_path(name, id)),
        ],
        main,
        refresh: Some(2),
    }
}

fn failed_stages<'a>(view: &'a View<'_>) -> Vec<&'a str> {
    // The latest run of each stage: its actions' latest runs decide.
    let mut out = Vec::new();
    for stage in view.stages {
        let latest: Vec<_> = view
            .actions
            .iter()
            .filter(|a| a.stage_name() == Some(stage.as_str()))
            .collect();
        let newest = latest
            .iter()
            .filter_map(|a| secs(a.start_time()))
            .fold(f64::MIN, f64::max);
        let failed = latest.iter().any(|a| {
            a.status().map(|s| s.as_str()) == Some("Failed")
                && !latest.iter().any(|b| {
                    b.action_name() == a.action_name()
                        && secs(b.start_time()) > secs(a.start_time())
                })
        });
        if failed && newest > f64::MIN {
            out.push(stage.as_str());
        }
    }
    out
}

fn retryable(view: &View<'_>) -> bool {
    view.execution.status() == Some(&PipelineExecutionStatus::Failed)
        && !failed_stages(view).is_empty()
}

/// Stages as rows, each action run as a bar on one time axis (from the first start to the
/// last update, or now while running).
fn timeline(
    stages: &[String],
    actions: &[&ActionExecutionDetail],
    rules: &[RuleExecutionDetail],
    now: f64,
) -> Markup {
    let starts = actions.iter().filter_map(|a| secs(a.start_time()));
    let start = starts.fold(f64::MAX, f64::min);
    let end = actions
        .iter()
        .map(|a| {
            if a.status().map(|s| s.as_str()) == Some("InProgress") {
                now
            } else {
                secs(a.last_update_time()).unwrap_or(now)
            }
        })
        .fold(f64::MIN, f64::max);
    let span = (end - start).max(0.001);
    html! {
        section.timeline aria-label="Timeline" {
            h2 { "Timeline" }
            @if actions.is_empty() {
                p.meta { "Nothing has run yet." }
            } @else {
                p.meta { (duration(end - start)) " from the first action to the last" }
                @for stage in stages {
                    @let runs: Vec<_> = actions.iter().filter(|a| a.stage_name() == Some(stage.as_str())).collect();
                    @let checks = rules.iter().filter(|r| r.stage_name() == Some(stage.as_str())).count();
                    div.lane data-stage=(stage) {
                        div.lane-name { (stage) @if checks > 0 { span.meta { " · " (checks) " rule runs" } } }
                        div.lane-bars {
                            @if runs.is_empty() { span.meta { "not run" } }
                            @for a in runs {
                                @let s = secs(a.start_time()).unwrap_or(start);
                                @let status = a.status().map(|s| s.as_str()).unwrap_or("Unknown");
                                @let e = if status == "InProgress" { now } else { secs(a.last_update_time()).unwrap_or(now) };
                                @let left = ((s - start) / span * 100.0).clamp(0.0, 100.0);
                                @let width = ((e - s) / span * 100.0).clamp(0.6, 100.0 - left);
                                @let label = format!("{} · {}", a.action_name().unwrap_or_default(), duration(e - s));
                                // The label beside its bar, on the side with room.
                                @let late = left + width > 70.0;
                                div.run.late[late] {
                                    @if late {
                                        span.bar-label { (label) }
                                    }
                                    @let place = if late {
                                        format!("margin-right:{:.2}%;width:{width:.2}%", (100.0 - left - width).max(0.0))
                                    } else {
                                        format!("margin-left:{left:.2}%;width:{width:.2}%")
                                    };
                                    div class={ "bar " (crate::text::status_class(status)) }
                                        style=(place)
                                        title={ (a.action_name().unwrap_or_default()) ": " (status) ", " (duration(e - s)) } {}
                                    @if !late {
                                        span.bar-label { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn sorted_pairs(map: &std::collections::HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort();
    pairs
}

fn action_detail(a: &ActionExecutionDetail, logs: &[(String, String)]) -> Markup {
    let status = a.status().map(|s| s.as_str()).unwrap_or("Unknown");
    let result = a.output().and_then(|o| o.execution_result());
    let log = logs
        .iter()
        .find(|(id, _)| Some(id.as_str()) == a.action_execution_id())
        .map(|(_, text)| text.as_str());
    html! {
        article.action-run data-action=(a.action_name().unwrap_or_default()) data-stage=(a.stage_name().unwrap_or_default()) {
            h3 {
                (a.stage_name().unwrap_or_default()) " / " (a.action_name().unwrap_or_default()) " "
                (badge(status))
            }
            p.meta {
                @if let Some(t) = a.input().and_then(|i| i.action_type_id()) {
                    (t.category().as_str()) " · " (t.provider()) " · "
                }
                @if let (Some(s), Some(u)) = (secs(a.start_time()), secs(a.last_update_time())) {
                    "started " (timestamp(s)) ", " (duration(u - s))
                }
            }
            @if let Some(r) = result {
                @if let Some(s) = r.external_execution_summary().filter(|s| !s.is_empty()) { p.summary { (s) } }
                @if let Some(err) = r.error_details() {
                    p.error { (err.code().unwrap_or_default()) ": " (err.message().unwrap_or_default()) }
                }
                @if let Some(u) = r.external_execution_url().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                    p { a href=(u) rel="noopener noreferrer" target="_blank" { "Details" } }
                }
            }
            @if let Some(input) = a.input() {
                @if !input.input_artifacts().is_empty() {
                    p.meta { "In: " @for (i, art) in input.input_artifacts().iter().enumerate() { @if i > 0 { ", " } (art.name().unwrap_or_default()) } }
                }
            }
            @if let Some(output) = a.output() {
                @if !output.output_artifacts().is_empty() {
                    p.meta { "Out: "
                        @for (i, art) in output.output_artifacts().iter().enumerate() {
                            @if i > 0 { ", " }
                            (art.name().unwrap_or_default())
                            @if let Some(loc) = art.s3_location() {
                                " " code { "s3://" (loc.bucket().unwrap_or_default()) "/" (loc.key().unwrap_or_default()) }
                            }
                        }
                    }
                }
                @if let Some(vars) = output.output_variables().filter(|v| !v.is_empty()) {
                    @let sorted = sorted_pairs(vars);
                    table.vars { caption { "Output variables" } tbody {
                        @for (k, v) in sorted { tr { th scope="row" { (k) } td { code { (v) } } } }
                    } }
                }
            }
            @if let Some(text) = log {
                details.log open[status != "Succeeded"] {
                    summary { "Log (the last lines)" }
                    pre { (text) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::primitives::DateTime;
    use aws_sdk_codepipeline::types::{
        ActionExecutionOutput, ActionExecutionResult, ActionExecutionStatus, ErrorDetails,
    };

    fn run(
        stage: &str,
        action: &str,
        status: ActionExecutionStatus,
        start: i64,
        end: i64,
    ) -> ActionExecutionDetail {
        ActionExecutionDetail::builder()
            .pipeline_execution_id("e1")
            .action_execution_id(format!("{stage}-{action}-{start}"))
            .stage_name(stage)
            .action_name(action)
            .status(status)
            .start_time(DateTime::from_secs(start))
            .last_update_time(DateTime::from_secs(end))
            .build()
    }

    #[test]
    fn the_timeline_places_each_run_on_one_axis_and_failures_offer_a_retry() {
        let execution = PipelineExecution::builder()
            .pipeline_name("web")
            .pipeline_execution_id("e1")
            .status(PipelineExecutionStatus::Failed)
            .status_summary("stage Build failed")
            .build();
        let mut failed = run("Build", "Compile", ActionExecutionStatus::Failed, 110, 200);
        failed.output = Some(
            ActionExecutionOutput::builder()
                .execution_result(
                    ActionExecutionResult::builder()
                        .error_details(
                            ErrorDetails::builder()
                                .code("JobFailed")
                                .message("exit code 2 <b>")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        );
        let actions = vec![
            run(
                "Source",
                "Fetch",
                ActionExecutionStatus::Succeeded,
                100,
                110,
            ),
            failed,
        ];
        let stages = vec![
            "Source".to_string(),
            "Build".to_string(),
            "Deploy".to_string(),
        ];
        let logs = vec![(
            "Build-Compile-110".to_string(),
            "make: *** [all] Error 2".to_string(),
        )];
        let view = View {
            execution: &execution,
            stages: &stages,
            actions: &actions,
            rules: &[],
            logs: &logs,
        };
        let html = render(&view, &Flash::default(), 300.0).main.into_string();
        assert!(html.contains("margin-left:0.00%;width:10.00%"), "{html}");
        assert!(html.contains("margin-right:0.00%;width:90.00%"), "{html}");
        assert!(html.contains("exit code 2 &lt;b&gt;"));
        assert!(html.contains("Retry failed actions"));
        assert!(html.contains("make: *** [all] Error 2"));
        assert!(html.contains("not run"), "Deploy never ran");
    }
}
