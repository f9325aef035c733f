//! Pipelines: every pipeline with its latest execution and a strip of recent results.

use aws_sdk_codepipeline::types::{PipelineExecutionSummary, PipelineSummary};
use maud::html;

use super::{badge, Flash, Page};
use crate::text::{ago, duration, execution_path, pipeline_path, short, status_class, timestamp};

/// One row: a pipeline and its recent executions, newest first.
pub struct Row {
    /// ListPipelines' summary.
    pub pipeline: PipelineSummary,
    /// ListPipelineExecutions, newest first (or why it could not be read).
    pub executions: Result<Vec<PipelineExecutionSummary>, String>,
}

fn secs(t: Option<&aws_sdk_codepipeline::primitives::DateTime>) -> Option<f64> {
    t.map(|t| t.as_secs_f64())
}

/// The pipelines page: `rows`, and a link to the next page when ListPipelines gave a `next`
/// token.
pub fn render(rows: &[Row], next: Option<&str>, flash: &Flash, now: f64) -> Page {
    let main = html! {
        h1 { "Pipelines" }
        (flash.render())
        @if rows.is_empty() {
            p.empty { "No pipelines yet. Create one with " code { "pipewright create -f pipeline.json" } "." }
        } @else {
            table.list {
                caption.visually-hidden { "Every pipeline with its latest execution" }
                thead { tr {
                    th scope="col" { "Pipeline" }
                    th scope="col" { "Latest execution" }
                    th scope="col" { "Started" }
                    th scope="col" { "Duration" }
                    th scope="col" { "Recent results" }
                } }
                tbody {
                    @for row in rows {
                        @let name = row.pipeline.name().unwrap_or_default();
                        tr data-pipeline=(name) {
                            th scope="row" {
                                a href=(pipeline_path(name)) { (name) }
                                @if let Some(mode) = row.pipeline.execution_mode() {
                                    span.meta { " " (mode.as_str()) }
                                }
                            }
                            @match &row.executions {
                                Err(why) => { td colspan="4" { span.problem-inline { (why) } } }
                                Ok(executions) => {
                                    @match executions.first() {
                                        None => { td { "never run" } td {} td {} }
                                        Some(latest) => {
                                            @let id = latest.pipeline_execution_id().unwrap_or_default();
                                            td.latest {
                                                (badge(latest.status().map(|s| s.as_str()).unwrap_or("Unknown")))
                                                " "
                                                a href=(execution_path(name, id)) { code { (short(id)) } }
                                            }
                                            @let start = secs(latest.start_time());
                                            td {
                                                @if let Some(s) = start {
                                                    time title=(timestamp(s)) { (ago(s, now)) }
                                                }
                                            }
                                            td {
                                                @if let (Some(s), Some(u)) = (start, secs(latest.last_update_time())) {
                                                    (duration(u - s))
                                                }
                                            }
                                        }
                                    }
                                    td {
                                        ol.strip aria-label={ "The last " (executions.len()) " executions, newest first" } {
                                            @for e in executions {
                                                @let status = e.status().map(|s| s.as_str()).unwrap_or("Unknown");
                                                @let id = e.pipeline_execution_id().unwrap_or_default();
                                                li {
                                                    a class={ "tick " (status_class(status)) }
                                                        href=(execution_path(name, id))
                                                        title={ (status) " · " (short(id)) }
                                                        aria-label={ (status) ", execution " (short(id)) } {}
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
        }
        @if let Some(token) = next {
            p.pager { a.button rel="next" href={ "/?next=" (crate::text::enc(token)) } { "Next pipelines" } }
        }
    };
    Page {
        title: "Pipelines".into(),
        crumbs: Vec::new(),
        main,
        refresh: Some(10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codepipeline::primitives::DateTime;
    use aws_sdk_codepipeline::types::PipelineExecutionStatus;

    fn execution(id: &str, status: PipelineExecutionStatus) -> PipelineExecutionSummary {
        PipelineExecutionSummary::builder()
            .pipeline_execution_id(id)
            .status(status)
            .start_time(DateTime::from_secs(1000))
            .last_update_time(DateTime::from_secs(1064))
            .build()
    }

    #[test]
    fn each_pipeline_shows_its_latest_execution_and_recent_results() {
        let rows = vec![
            Row {
                pipeline: PipelineSummary::builder().name("web <app>").build(),
                executions: Ok(vec![
                    execution("11111111-aaaa", PipelineExecutionStatus::Failed),
                    execution("22222222-bbbb", PipelineExecutionStatus::Succeeded),
                ]),
            },
            Row {
                pipeline: PipelineSummary::builder().name("idle").build(),
                executions: Ok(vec![]),
            },
        ];
        let html = render(&rows, Some("t/2"), &Flash::default(), 1180.0)
            .main
            .into_string();
        assert!(
            html.contains("web &lt;app&gt;"),
            "names are escaped: {html}"
        );
        assert!(html.contains("href=\"/pipelines/web%20%3Capp%3E/executions/11111111-aaaa\""));
        assert!(html.contains("data-status=\"Failed\""));
        assert!(html.contains("3 min ago"));
        assert!(html.contains("1 min 4 s"));
        assert_eq!(html.matches("class=\"tick ").count(), 2);
        assert!(html.contains("never run"));
        assert!(html.contains("href=\"/?next=t%2F2\""));
    }

    #[test]
    fn no_pipelines_says_how_to_make_one() {
        let html = render(&[], None, &Flash::default(), 0.0).main.into_string();
        assert!(html.contains("pipewright create"));
    }
}
