//! `approve` and `reject`: PutApprovalResult, with the token read from GetPipelineState unless
//! given.

use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};

use super::{print_json, ApprovalArgs, Ctx};
use crate::client::{CliError, EXIT_NOT_FOUND, EXIT_OK, EXIT_SERVICE, EXIT_USAGE};
use crate::{json, render};

/// The token of the approval waiting in `stage`.`action` of `pipeline`.
async fn waiting_token(ctx: &Ctx, args: &ApprovalArgs) -> Result<String, CliError> {
    let state = ctx
        .client
        .get_pipeline_state()
        .name(&args.name)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    let stage = state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some(args.stage.as_str()))
        .ok_or_else(|| {
            CliError::new(
                "StageNotFoundException",
                format!("pipeline {} has no stage {}", args.name, args.stage),
                EXIT_NOT_FOUND,
            )
        })?;
    let action = stage
        .action_states()
        .iter()
        .find(|a| a.action_name() == Some(args.action.as_str()))
        .ok_or_else(|| {
            CliError::new(
                "ActionNotFoundException",
                format!("stage {} has no action {}", args.stage, args.action),
                EXIT_NOT_FOUND,
            )
        })?;
    action
        .latest_execution()
        .and_then(|e| e.token())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::new(
                "InvalidApprovalTokenException",
                format!(
                    "no approval is waiting in {}.{} of {} (pass --token to answer a specific one)",
                    args.stage, args.action, args.name
                ),
                EXIT_SERVICE,
            )
        })
}

/// Approve (`approve` true) or reject.
pub async fn decide(ctx: &Ctx, args: &ApprovalArgs, approve: bool) -> Result<i32, CliError> {
    let token = match &args.token {
        Some(t) => t.clone(),
        None => waiting_token(ctx, args).await?,
    };
    let (status, verb) = if approve {
        (ApprovalStatus::Approved, "approved")
    } else {
        (ApprovalStatus::Rejected, "rejected")
    };
    let summary = args
        .summary
        .clone()
        .unwrap_or_else(|| format!("{verb} with the pipewright command line"));
    let result = ApprovalResult::builder()
        .status(status)
        .summary(summary)
        .build()
        .map_err(|e| CliError::new("InvalidRequest", e.to_string(), EXIT_USAGE))?;
    let out = ctx
        .client
        .put_approval_result()
        .pipeline_name(&args.name)
        .stage_name(&args.stage)
        .action_name(&args.action)
        .token(&token)
        .result(result)
        .send()
        .await
        .map_err(|e| ctx.sdk(e))?;
    if ctx.json() {
        print_json(&json::put_approval_result(&out));
    } else {
        let at = out
            .approved_at()
            .map(|t| format!(" at {} UTC", render::fmt_time(t.as_secs_f64())))
            .unwrap_or_default();
        println!(
            "{verb} {}.{} of {}{at} (token {token})",
            args.stage, args.action, args.name
        );
    }
    Ok(EXIT_OK)
}
