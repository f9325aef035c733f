//! `watch`: poll GetPipelineExecution, GetPipelineState and ListActionExecutions (filtered by the
//! execution) every interval and draw [`render::render_watch`] until the execution ends.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, ActionExecutionFilter, PipelineExecution, PipelineExecutionSummary,
};
use serde_json::Value;

use super::status::now;
use super::{print_json, Ctx};
use crate::client::{CliError, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK};
use crate::render::{self, WatchState};
use crate::{json, views};

/// How often the spinner turns on a terminal between polls.
const FRAME: Duration = Duration::from_millis(200);

/// Follow `execution` (default: the latest) of `name` until it ends.
pub async fn watch(
    ctx: &Ctx,
    name: &str,
    execution: Option<String>,
    interval: Duration,
) -> Result<i32, CliError> {
    let id = match execution {
        Some(id) => id,
        None => latest_execution(ctx, name).await?,
    };
    let mut summary = find_summary(ctx, name, &id).await?;
    let tty = !ctx.json() && std::io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none();
    let mut screen = Screen::new(tty);
    let mut frame = 0usize;
    loop {
        let polled = Instant::now();
        let (execution, state, mut actions) = tokio::try_join!(
            async {
                ctx.client
                    .get_pipeline_execution()
                    .pipeline_name(name)
                    .pipeline_execution_id(&id)
                    .send()
                    .await
                    .map_err(|e| ctx.sdk(e))
            },
            async {
                ctx.client
                    .get_pipeline_state()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| ctx.sdk(e))
            },
            action_executions(ctx, name, &id),
        )?;
        let execution = execution
            .pipeline_execution
            .unwrap_or_else(|| PipelineExecution::builder().build());
        let status = execution
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let done = views::is_final(&status);
        if done {
            // The listing's entry now has the end time; the actions, read alongside, may predate
            // the end: every action ended before the execution did, so read them once more.
            summary = find_summary(ctx, name, &id).await.unwrap_or(summary);
            actions = action_executions(ctx, name, &id).await?;
        }
        let view = views::watch_state(name, &execution, summary.as_ref(), &state, &actions);
        if done {
            if ctx.json() {
                print_json(&serde_json::json!({
                    "pipelineExecution": json::pipeline_execution(&execution),
                    "actionExecutionDetails": actions
                        .iter()
                        .map(json::action_execution_detail)
                        .collect::<Vec<Value>>(),
                }));
            } else {
                screen.draw(&view, now(), frame, color);
            }
            return Ok(if status == "Succeeded" {
                EXIT_OK
            } else {
                EXIT_FAILED
            });
        }
        if ctx.json() {
            tokio::time::sleep(interval).await;
            continue;
        }
        // Redraw (the spinner and the running times) until the next poll is due.
        loop {
            screen.draw(&view, now(), frame, color);
            frame += 1;
            let left = interval.saturating_sub(polled.elapsed());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(if tty { left.min(FRAME) } else { left }).await;
        }
    }
}

/// The newest execution's id.
async fn latest_execution(ctx: &Ctx, name: &str) -> Result<String, CliError> {
    let out = ctx
        .client
        .list_pipeline_executions()
        .pipeline_name(name)
        .max_results(1)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    out.pipeline_execution_summaries()
        .first()
        .and_then(|s| s.pipeline_execution_id())
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::new(
                "PipelineExecutionNotFoundException",
                format!("pipeline {name} has no executions yet"),
                EXIT_NOT_FOUND,
            )
        })
}

/// The execution's entry in the first page of ListPipelineExecutions (start and end times).
async fn find_summary(
    ctx: &Ctx,
    name: &str,
    id: &str,
) -> Result<Option<PipelineExecutionSummary>, CliError> {
    let out = ctx
        .client
        .list_pipeline_executions()
        .pipeline_name(name)
        .max_results(100)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    Ok(out
        .pipeline_execution_summaries()
        .iter()
        .find(|s| s.pipeline_execution_id() == Some(id))
        .cloned())
}

/// Every action execution of execution `id`, across pages.
async fn action_executions(
    ctx: &Ctx,
    name: &str,
    id: &str,
) -> Result<Vec<ActionExecutionDetail>, CliError> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .client
            .list_action_executions()
            .pipeline_name(name)
            .filter(
                ActionExecutionFilter::builder()
                    .pipeline_execution_id(id)
                    .build(),
            )
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| ctx.sdk(e))?;
        all.extend(out.action_execution_details().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() && all.len() < 10_000 => token = Some(t.to_owned()),
            _ => return Ok(all),
        }
    }
}

/// Where the view goes: redrawn in place on a terminal, changed lines appended otherwise.
struct Screen {
    tty: bool,
    /// Terminal rows the last frame took (to move back over it).
    rows: usize,
    /// Append mode: the text last printed for each line.
    printed: HashMap<String, String>,
}

impl Screen {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            rows: 0,
            printed: HashMap::new(),
        }
    }

    fn draw(&mut self, view: &WatchState, now: f64, frame: usize, color: bool) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            let text = render::render_watch(view, now, frame, color);
            let columns = terminal_columns();
            let mut buf = String::new();
            if self.rows > 0 {
                buf.push_str(&format!("\x1b[{}A\r", self.rows));
            }
            let mut rows = 0;
            for line in text.lines() {
                buf.push_str("\x1b[2K");
                buf.push_str(line);
                buf.push('\n');
                rows += render::visible_width(line).max(1).div_ceil(columns);
            }
            buf.push_str("\x1b[J");
            self.rows = rows;
            let _ = out.write_all(buf.as_bytes());
        } else {
            // The changed lines, the overall status last (under what changed).
            let mut lines = render::watch_lines(view, now, None, false);
            if let Some(i) = lines.iter().position(|l| l.key == "header") {
                let header = lines.remove(i);
                lines.push(header);
            }
            for line in lines {
                if line.key.is_empty() || self.printed.get(&line.key) == Some(&line.text) {
                    continue;
                }
                let _ = writeln!(out, "{}", line.text);
                self.printed.insert(line.key, line.text);
            }
        }
        let _ = out.flush();
    }
}

/// The terminal's width in columns (80 when unknown).
fn terminal_columns() -> usize {
    // SAFETY: TIOCGWINSZ fills a `winsize` we own; stdout is a valid descriptor.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|c| *c > 0)
            .unwrap_or(80)
    }
}
