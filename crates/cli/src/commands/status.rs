//! `list` (ListPipelines and each one's latest execution), `status` (GetPipelineState) and
//! `history` (ListPipelineExecutions).

use std::time::{SystemTime, UNIX_EPOCH};

use super::{print_json, Ctx};
use crate::client::{CliError, EXIT_OK};
use crate::{json, render, views};

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// GetPipelineState as a table, or its JSON.
pub async fn status(ctx: &Ctx, name: &str) -> Result<i32, CliError> {
    let out = ctx
        .client
        .get_pipeline_state()
        .name(name)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    if ctx.json() {
        print_json(&json::get_pipeline_state(&out));
    } else {
        print!("{}", render::render_status(&views::status_view(&out)));
    }
    Ok(EXIT_OK)
}

/// ListPipelineExecutions (up to `max`, across pages) as a table, or its JSON.
pub async fn history(ctx: &Ctx, name: &str, max: usize) -> Result<i32, CliError> {
    let mut summaries = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page_size =
            i32::try_from(max.saturating_sub(summaries.len()).clamp(1, 100)).unwrap_or(100);
        let out = ctx
            .client
            .list_pipeline_executions()
            .pipeline_name(name)
            .max_results(page_size)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ctx.sdk(e))?;
        summaries.extend(out.pipeline_execution_summaries().iter().cloned());
        token = out.next_token().map(str::to_owned);
        if token.is_none() || summaries.len() >= max {
            break;
        }
    }
    summaries.truncate(max);
    if ctx.json() {
        print_json(&json::list_pipeline_executions(
            &summaries,
            token.as_deref(),
        ));
    } else {
        print!(
            "{}",
            render::render_history(&views::history_rows(&summaries), now())
        );
    }
    Ok(EXIT_OK)
}

/// Every pipeline (ListPipelines, all pages) with its latest execution (ListPipelineExecutions,
/// one each, side by side) as a table, or as JSON: ListPipelines' summaries, each with a
/// `latestExecution` (a PipelineExecutionSummary, or null when it never ran).
pub async fn list(ctx: &Ctx) -> Result<i32, CliError> {
    let mut pipelines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .client
            .list_pipelines()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ctx.sdk(e))?;
        pipelines.extend(out.pipelines().iter().cloned());
        token = out
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    pipelines.sort_by(|a, b| a.name().cmp(&b.name()));
    let latest = futures_latest(ctx, &pipelines).await?;
    if ctx.json() {
        let items: Vec<serde_json::Value> = pipelines
            .iter()
            .zip(&latest)
            .map(|(p, l)| {
                let mut v = json::pipeline_summary(p);
                v["latestExecution"] = l
                    .as_ref()
                    .map(json::pipeline_execution_summary)
                    .unwrap_or(serde_json::Value::Null);
                v
            })
            .collect();
        print_json(&serde_json::json!({ "pipelines": items }));
    } else {
        let rows: Vec<render::ListRow> = pipelines
            .iter()
            .zip(&latest)
            .map(|(p, l)| render::ListRow {
                pipeline: p.name().unwrap_or_default().to_owned(),
                mode: p.execution_mode().map(|m| m.as_str().to_owned()),
                latest: l
                    .as_ref()
                    .and_then(|l| views::history_rows(std::slice::from_ref(l)).pop()),
            })
            .collect();
        print!("{}", render::render_list(&rows, now()));
    }
    Ok(EXIT_OK)
}

/// The latest execution of each pipeline, read 8 at a time (an account of hundreds of pipelines
/// must not flood the control plane).
async fn futures_latest(
    ctx: &Ctx,
    pipelines: &[aws_sdk_codepipeline::types::PipelineSummary],
) -> Result<Vec<Option<aws_sdk_codepipeline::types::PipelineExecutionSummary>>, CliError> {
    let mut latest = vec![None; pipelines.len()];
    for (chunk_index, chunk) in pipelines.chunks(8).enumerate() {
        let mut reads = tokio::task::JoinSet::new();
        for (i, p) in chunk.iter().enumerate() {
            let client = ctx.client.clone();
            let name = p.name().unwrap_or_default().to_owned();
            let index = chunk_index * 8 + i;
            reads.spawn(async move {
                let out = client
                    .list_pipeline_executions()
                    .pipeline_name(name)
                    .max_results(1)
                    .send()
                    .await;
                (index, out)
            });
        }
        while let Some(joined) = reads.join_next().await {
            let Ok((i, out)) = joined else { continue };
            match out {
                Ok(out) => latest[i] = out.pipeline_execution_summaries().first().cloned(),
                // Deleted between the two calls: shown as never run.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_pipeline_not_found_exception()) => {}
                Err(e) => return Err(ctx.sdk(e)),
            }
        }
    }
    Ok(latest)
}
