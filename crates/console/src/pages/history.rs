//! A pipeline's execution history, filtered by status or by a stage the execution got through.

use aws_sdk_codepipeline::types::PipelineExecutionSummary;
use maud::html;

use super::{badge, Flash, Page};
use crate::text::{duration, execution_path, history_path, pipeline_path, short, timestamp};

/// The filters (the page's query).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filters {
    /// Only executions with this status.
    pub status: Option<String>,
    /// Only executions that succeeded in this stage (ListPipelineExecutions' own filter).
    pub stage: Option<String>,
}

/// Every status an execution can have, for the filter.
pub const STATUSES: &[&str] = &[
    "InProgress",
    "Stopping",
    "Stopped",
    "Succeeded",
    "Superseded",
    "Failed",
    "Cancelled",
];

impl Filters {
    /// The status filter, when it names a status.
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref().filter(|s| STATUSES.contains(s))
    }

    /// The stage filter, when given.
    pub fn stage(&self) -> Option<&str> {
        self.stage
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The history page.
pub fn render(
    name: &str,
    stages: &[String],
    executions: &[PipelineExecutionSummary],
    filters: &Filters,
    flash: &Flash,
) -> Page {
    let shown: Vec<_> = executions
        .iter()
        .filter(|e| match filters.status() {
            Some(s) => e.status().map(|x| x.as_str()) == Some(s),
            None => true,
        })
        .collect();
    let main = html! {
        h1 { "Execution history" }
        (flash.render())
        form.filters method="get" action=(history_path(name)) {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in STATUSES {
                        option value=(s) selected[filters.status() == Some(*s)] { (s) }
                    }
                }
            }
            label { "Succeeded in stage "
                select name="stage" {
                    option value="" { "any" }
                    @for s in stages {
                        option value=(s) selected[filters.stage() == Some(s.as_str())] { (s) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            p.empty { "No executions match." }
        } @else {
            table.list {
                caption.visually-hidden { "Executions of " (name) ", newest first" }
                thead { tr {
                    th scope="col" { "Execution" }
                    th scope="col" { "Status" }
                    th scope="col" { "Trigger" }
                    th scope="col" { "Source revisions" }
                    th scope="col" { "Started" }
                    th scope="col" { "Duration" }
                    th scope="col" { "Summary" }
                } }
                tbody {
                    @for e in &shown {
                        @let id = e.pipeline_execution_id().unwrap_or_default();
                        tr data-execution=(id) {
                            th scope="row" { a href=(execution_path(name, id)) { code { (short(id)) } } }
                            td { (badge(e.status().map(|s| s.as_str()).unwrap_or("Unknown"))) }
                            td {
                                @if let Some(t) = e.trigger() {
                                    (t.trigger_type().map(|t| t.as_str()).unwrap_or_default())
                                    @if let Some(d) = t.trigger_detail().filter(|d| !d.is_empty()) {
                                        br; span.meta { (d) }
                                    }
                                }
                            }
                            td {
                                @for r in e.source_revisions() {
                                    div {
                                        (r.action_name()) ": "
                                        code { (short(r.revision_id().unwrap_or_default())) }
                                        @if let Some(s) = r.revision_summary().filter(|s| !s.is_empty()) {
                                            " " span.meta { (s) }
                                        }
                                    }
                                }
                            }
                            td { @if let Some(t) = e.start_time() { (timestamp(t.as_secs_f64())) } }
                            td {
                                @if let (Some(s), Some(u)) = (e.start_time(), e.last_update_time()) {
                                    (duration(u.as_secs_f64() - s.as_secs_f64()))
                                }
                            }
                            td { (e.status_summary().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    };
    Page {
        title: format!("{name} history"),
        crumbs: vec![
            (name.to_string(), pipeline_path(name)),
            ("History".into(), history_path(name)),
        ],
        main,
        refresh: Some(5),
    }
}
