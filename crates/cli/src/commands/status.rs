//! `status` (GetPipelineState) and `history` (ListPipelineExecutions).

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
