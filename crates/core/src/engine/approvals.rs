//! Manual approvals (`Approval/AWS/Manual`): the notice, the signed one-click links, and the
//! decision.
//!
//! An approval action waits on its Step Functions task token like any action. The `approval`
//! function records it as started ([`Engine::begin_approval`]), signs two links (approve and
//! reject, [`sign_link`]) and publishes the notice ([`ApprovalNotice`]) to SNS. The decision
//! comes either from a link (a `POST` from the confirmation page the link opens) or from
//! `PutApprovalResult`; both go through [`Engine::decide_approval`], which completes the action
//! exactly once.
//!
//! ## The approval token
//!
//! CodePipeline's approval token (GetPipelineState's `actionStates[].latestExecution.token`,
//! PutApprovalResult's `token`) is the approval action's action execution id: a fresh UUID per
//! run of the action, so a token from an earlier run (or another execution) never decides the
//! current one.
//!
//! ## Links
//!
//! Signed, expiring, single-use links ([`approval_links`](super::approval_links), re-exported
//! here): the review link (`approvalReviewLink`, `consoleLink`) shows the approval; the approve
//! and reject links, the "one-click" links, decide it from the page they open. One-click links
//! can be turned off per stack (the approval function's `APPROVAL_ONE_CLICK_LINKS=Disabled`) and
//! per action (configuration `OneClickLinks: "false"`): the notice then carries the review link
//! only, and the approver decides signed in, with `PutApprovalResult` through either door of the
//! control plane.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::declaration::{ActionCategory, ActionDeclaration};
use crate::engine::{ActionOutcome, Engine, EngineError, ExecutionIds};
use crate::execution::{
    ActionExecution, ActionExecutionResult, ActionExecutionStatus, ErrorCode, ErrorDetails,
    ExecutionSnapshot, FailureType, PipelineExecutionStatus, SourceRevision,
};
use crate::store::StoreError;

pub use super::approval_links::*;

/// The configuration key naming the SNS topic the notice goes to.
pub const NOTIFICATION_ARN: &str = "NotificationArn";
/// The configuration key with the reviewer's instructions.
pub const CUSTOM_DATA: &str = "CustomData";
/// The configuration key with a link to what is to be reviewed.
pub const EXTERNAL_ENTITY_LINK: &str = "ExternalEntityLink";

/// The longest summary PutApprovalResult accepts (botocore: `ApprovalSummary` max 512).
pub const MAX_SUMMARY: usize = 512;

/// The configuration key that turns one approval's one-click links off (`"false"`); Pipewright's
/// own (CodePipeline has no one-click links).
pub const ONE_CLICK_LINKS: &str = "OneClickLinks";

// ---------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------

/// `ApprovalStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The action succeeds and the pipeline goes on.
    Approved,
    /// The action fails, and so do its stage and the execution.
    Rejected,
}

impl Decision {
    /// `Approved` / `Rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
        }
    }

    /// `approve` / `reject`: the verb on buttons and in messages.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Approved => "approve",
            Self::Rejected => "reject",
        }
    }
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "Approved" => Ok(Self::Approved),
            "Rejected" => Ok(Self::Rejected),
            other => Err(format!(
                "{other:?} is not an approval status (Approved or Rejected)"
            )),
        }
    }
}

/// Which approval a decision is for, as the caller names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalTarget {
    /// Pipeline name.
    pub pipeline_name: String,
    /// Stage.
    pub stage_name: String,
    /// Action.
    pub action_name: String,
    /// The pipeline execution, when the caller knows it (a link does; PutApprovalResult does not).
    pub pipeline_execution_id: Option<String>,
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalAnswer {
    /// The approval token.
    pub token: String,
    /// What the caller believes the token is for; a mismatch is an invalid token.
    pub target: ApprovalTarget,
    /// Approved or Rejected.
    pub decision: Decision,
    /// The approver's summary (may be empty).
    pub summary: String,
    /// Who decided: the API caller's ARN, or the link's recipient.
    pub decided_by: String,
}

/// Why a decision was refused. Nothing was recorded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ApprovalError {
    /// No waiting approval has this token, or it is not for the named pipeline/stage/action
    /// (CodePipeline's `InvalidApprovalTokenException`).
    #[error("{0}")]
    InvalidToken(String),
    /// The approval was already decided or ended (`ApprovalAlreadyCompletedException`).
    #[error("{0}")]
    AlreadyCompleted(String),
    /// The approval's time is up (it fails as timed out).
    #[error("{0}")]
    Expired(String),
    /// The execution is no longer running (stopped, superseded, failed).
    #[error("{0}")]
    NotWaiting(String),
    /// The summary is too long, or the like.
    #[error("{0}")]
    Invalid(String),
    /// The engine or its store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for ApprovalError {
    fn from(e: StoreError) -> Self {
        Self::Engine(e.into())
    }
}

/// What a recorded decision gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The decision.
    pub decision: Decision,
    /// When it was recorded (`approvedAt`).
    pub at: f64,
    /// The execution it decided.
    pub pipeline_execution_id: String,
}

/// An approval waiting for its decision: what the notice and the confirmation page show.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    /// The execution.
    pub ids: ExecutionIds,
    /// Stage.
    pub stage_name: String,
    /// Action.
    pub action_name: String,
    /// The approval token (the action execution id).
    pub token: String,
    /// When the action started.
    pub started: f64,
    /// When it times out (and its links expire), seconds since the epoch.
    pub expires: f64,
    /// `NotificationArn`, resolved.
    pub notification_arn: Option<String>,
    /// `CustomData`, resolved.
    pub custom_data: Option<String>,
    /// `ExternalEntityLink`, resolved.
    pub external_entity_link: Option<String>,
    /// The execution's source revisions so far.
    pub source_revisions: Vec<SourceRevision>,
    /// Whether the action allows one-click links (`OneClickLinks` is not `"false"`); the stack
    /// may still forbid them.
    pub one_click_links: bool,
}

impl PendingApproval {
    /// The approval of `action` (started at `started`, its links dying at `expires`), with the
    /// action's resolved configuration `config` and the execution's snapshot.
    fn new(
        ids: ExecutionIds,
        action: &ActionExecution,
        expires: f64,
        config: impl Fn(&str) -> Option<String>,
        snapshot: &ExecutionSnapshot,
    ) -> Self {
        let config = |key: &str| {
            config(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Self {
            ids,
            stage_name: action.stage_name.clone(),
            action_name: action.action_name.clone(),
            token: action.action_execution_id.clone(),
            started: action.start_time,
            expires,
            notification_arn: config(NOTIFICATION_ARN),
            custom_data: config(CUSTOM_DATA),
            external_entity_link: config(EXTERNAL_ENTITY_LINK),
            source_revisions: snapshot
                .actions
                .iter()
                .filter_map(|a| a.source_revision.clone())
                .collect(),
            one_click_links: !config(ONE_CLICK_LINKS)
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
        }
    }

    /// How to decide this approval signed in: the CLI and the AWS CLI commands.
    pub fn signed_in_commands(&self) -> String {
        format!(
            "pipewright approve {p} {s} {a} --summary \"...\"   (or pipewright reject ...)\n\
             aws codepipeline put-approval-result --pipeline-name {p} --stage-name {s} \
             --action-name {a} --token {t} --result 'summary=...,status=Approved'",
            p = shell_word(&self.ids.pipeline_name),
            s = shell_word(&self.stage_name),
            a = shell_word(&self.action_name),
            t = self.token,
        )
    }
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The seconds an action may run: its `timeoutInMinutes`, else its type's default, capped by
/// `cap` (a deployment's `ActionTimeoutCapSeconds`, for local runs).
pub fn action_timeout_seconds(action: &ActionDeclaration, cap: Option<u64>) -> u64 {
    crate::asl::timeout_seconds(action, cap)
}

impl Engine<'_> {
    /// Start approval `stage`/`action`: record it (with the task token that completes it) and
    /// return what the notice needs. `Ok(None)` when it could not even start (an unresolvable
    /// variable in its configuration): it was recorded as failed.
    pub async fn begin_approval(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        action: &str,
        action_execution_id: &str,
        task_token: &str,
        now: f64,
    ) -> Result<Option<PendingApproval>, EngineError> {
        let Some(prepared) = self
            .begin_action(ids, stage, action, action_execution_id, task_token, now)
            .await?
        else {
            return Ok(None);
        };
        if prepared.declaration.action_type_id.category != ActionCategory::Approval {
            let outcome = ActionOutcome::failed(
                FailureType::ConfigurationError,
                format!(
                    "action {action} is {}, not a manual approval",
                    prepared.declaration.action_type_id
                ),
            );
            self.complete_action(&prepared.record, outcome, now).await?;
            return Ok(None);
        }
        let snapshot = self
            .executions
            .snapshot(&ids.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(ids.pipeline_execution_id.clone()))?;
        let timeout = action_timeout_seconds(
            &prepared.declaration,
            self.config.action_timeout_cap_seconds,
        );
        Ok(Some(PendingApproval::new(
            ids.clone(),
            &prepared.record,
            prepared.record.start_time + timeout as f64,
            |key| prepared.configuration.get(key).cloned(),
            &snapshot,
        )))
    }

    /// The approval `token` stands for, while it waits; the error says why it cannot be decided
    /// (the same checks as [`Self::decide_approval`], so a confirmation page never offers a
    /// decision that would be refused).
    pub async fn pending_approval(
        &self,
        token: &str,
        target: &ApprovalTarget,
        now: f64,
    ) -> Result<PendingApproval, ApprovalError> {
        let action = self
            .executions
            .find_job(token)
            .await?
            .filter(|a| a.input.action_type_id.category == ActionCategory::Approval)
            .ok_or_else(|| {
                ApprovalError::InvalidToken(format!(
                    "token {token} is not the token of an approval"
                ))
            })?;
        let snapshot = self
            .executions
            .snapshot(&action.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(action.pipeline_execution_id.clone()))?;
        let execution = &snapshot.execution;
        let matches = execution.pipeline_name == target.pipeline_name
            && action.stage_name == target.stage_name
            && action.action_name == target.action_name
            && target
                .pipeline_execution_id
                .as_ref()
                .is_none_or(|id| *id == action.pipeline_execution_id);
        if !matches {
            return Err(ApprovalError::InvalidToken(format!(
                "token {token} is not the token of approval {}/{}/{}",
                target.pipeline_name, target.stage_name, target.action_name
            )));
        }
        if action.status != ActionExecutionStatus::InProgress {
            // Decided, but the pipeline may never have heard it (a lost callback): deliver it.
            if action.task_token.is_some() {
                if let Err(e) = self.answer_unsent(&action).await {
                    tracing::warn!(error = %e, "re-sending a decided approval's callback failed");
                }
            }
            let how = match (&action.status, &action.updated_by) {
                (ActionExecutionStatus::Succeeded, Some(by)) => format!("approved by {by}"),
                (ActionExecutionStatus::Failed, _)
                    if action
                        .output
                        .execution_result
                        .error_details
                        .as_ref()
                        .is_some_and(|e| e.code == ErrorCode::TimedOut) =>
                {
                    "timed out".to_string()
                }
                (ActionExecutionStatus::Failed, Some(by)) if by != "pipewright" => {
                    format!("rejected by {by}")
                }
                (status, _) => status.as_str().to_string(),
            };
            return Err(ApprovalError::AlreadyCompleted(format!(
                "approval {}/{} of execution {} is already complete: {how}",
                action.stage_name, action.action_name, action.pipeline_execution_id
            )));
        }
        if execution.status != PipelineExecutionStatus::InProgress {
            return Err(ApprovalError::NotWaiting(format!(
                "pipeline execution {} is {}: its approvals can no longer be decided",
                execution.pipeline_execution_id,
                execution.status.as_str()
            )));
        }
        let pipeline = self
            .pipelines
            .get(&execution.pipeline_name, Some(execution.pipeline_version))
            .await?
            .ok_or_else(|| EngineError::PipelineNotFound(execution.pipeline_name.clone()))?;
        let declaration = pipeline
            .declaration
            .stages
            .iter()
            .find(|s| s.name == action.stage_name)
            .and_then(|s| s.actions.iter().find(|a| a.name == action.action_name))
            .ok_or_else(|| {
                EngineError::NotInPipeline(format!(
                    "pipeline {} version {} has no action {}/{}",
                    execution.pipeline_name,
                    execution.pipeline_version,
                    action.stage_name,
                    action.action_name
                ))
            })?;
        let timeout = action_timeout_seconds(declaration, self.config.action_timeout_cap_seconds);
        let expires = action.start_time + timeout as f64;
        if now >= expires {
            return Err(ApprovalError::Expired(format!(
                "approval {}/{} of execution {} expired at {}",
                action.stage_name,
                action.action_name,
                action.pipeline_execution_id,
                crate::events::format_time(expires)
            )));
        }
        let ids = ExecutionIds {
            pipeline_name: execution.pipeline_name.clone(),
            pipeline_version: execution.pipeline_version,
            pipeline_execution_id: execution.pipeline_execution_id.clone(),
        };
        Ok(PendingApproval::new(
            ids,
            &action,
            expires,
            |key| action.input.resolved_configuration.get(key).cloned(),
            &snapshot,
        ))
    }

    /// Record a decision: Approved completes the action as Succeeded (the summary is its
    /// execution summary); Rejected completes it as Failed with the summary in its error, which
    /// fails the stage and the execution. Exactly one decision wins: a concurrent or later one is
    /// [`ApprovalError::AlreadyCompleted`].
    pub async fn decide_approval(
        &self,
        answer: &ApprovalAnswer,
        now: f64,
    ) -> Result<Decided, ApprovalError> {
        if answer.summary.chars().count() > MAX_SUMMARY {
            return Err(ApprovalError::Invalid(format!(
                "result.summary: longer than {MAX_SUMMARY} characters"
            )));
        }
        let pending = self
            .pending_approval(&answer.token, &answer.target, now)
            .await?;
        let started = self
            .executions
            .find_job(&pending.token)
            .await?
            .ok_or_else(|| {
                ApprovalError::InvalidToken(format!("token {} vanished", pending.token))
            })?;
        let summary = answer.summary.trim();
        let outcome = match answer.decision {
            Decision::Approved => ActionOutcome {
                status: ActionExecutionStatus::Succeeded,
                output_artifacts: Vec::new(),
                output_variables: BTreeMap::new(),
                result: ActionExecutionResult {
                    external_execution_summary: Some(if summary.is_empty() {
                        format!("Approved by {}", answer.decided_by)
                    } else {
                        summary.to_string()
                    }),
                    ..Default::default()
                },
                source_revision: None,
                log_tail: None,
                log_location: None,
            },
            Decision::Rejected => {
                let message = if summary.is_empty() {
                    format!("Rejected by {}", answer.decided_by)
                } else {
                    format!("Rejected by {}: {summary}", answer.decided_by)
                };
                let mut outcome = ActionOutcome::failed(FailureType::JobFailed, message);
                outcome.result.external_execution_summary =
                    Some(summary.to_string()).filter(|s| !s.is_empty());
                outcome
            }
        };
        let mut record = started;
        record.updated_by = Some(answer.decided_by.clone());
        if !self.complete_action(&record, outcome, now).await? {
            return Err(ApprovalError::AlreadyCompleted(format!(
                "approval {}/{} of execution {} was decided meanwhile",
                pending.stage_name, pending.action_name, pending.ids.pipeline_execution_id
            )));
        }
        Ok(Decided {
            decision: answer.decision,
            at: now,
            pipeline_execution_id: pending.ids.pipeline_execution_id,
        })
    }
}

// ---------------------------------------------------------------------------
// The notice
// ---------------------------------------------------------------------------

/// The approval notice: CodePipeline's approval JSON for programs, a readable text with the
/// links for people.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalNotice<'a> {
    /// The approval.
    pub pending: &'a PendingApproval,
    /// The region (`region`).
    pub region: &'a str,
    /// The review link: the page that shows the approval (`approvalReviewLink`, `consoleLink`).
    pub review_url: String,
    /// The one-click links (approve, reject), when one-click approval is on.
    pub one_click: Option<(String, String)>,
    /// The console's base URL (stack parameter `ConsoleUrl`), when the stack knows it: then
    /// `consoleLink` opens the execution's page there ([`console_page`]).
    pub console: Option<String>,
}

/// The console's page of execution `execution` of `pipeline`, under the console's `base` URL.
/// (Pipeline names and execution ids need no escaping in a path.)
pub fn console_page(base: &str, pipeline: &str, execution: &str) -> String {
    format!(
        "{}/pipelines/{pipeline}/executions/{execution}",
        base.trim_end_matches('/')
    )
}

impl ApprovalNotice<'_> {
    /// The execution's console page, when the stack knows the console's URL.
    fn console_link(&self) -> Option<String> {
        self.console.as_deref().map(|base| {
            console_page(
                base,
                &self.pending.ids.pipeline_name,
                &self.pending.ids.pipeline_execution_id,
            )
        })
    }

    /// The SNS subject (at most 100 characters, as SNS requires).
    pub fn subject(&self) -> String {
        let subject = format!(
            "APPROVAL NEEDED: Pipewright pipeline {} for action {}",
            self.pending.ids.pipeline_name, self.pending.action_name
        );
        let mut cut: String = subject.chars().take(100).collect();
        // SNS subjects are ASCII-printable without line breaks.
        cut.retain(|c| !c.is_control());
        cut
    }

    /// CodePipeline's approval message JSON (`approvalReviewLink` is the review page;
    /// `consoleLink` the execution's console page when the stack knows the console, else the
    /// review page too), plus Pipewright's members inside `approval`: `pipelineExecutionId`,
    /// `sourceRevisions`, and `approveLink`/`rejectLink` when one-click approval is on.
    pub fn json(&self) -> Value {
        let p = self.pending;
        let mut approval = json!({
            "pipelineName": p.ids.pipeline_name,
            "stageName": p.stage_name,
            "actionName": p.action_name,
            "token": p.token,
            "expires": expires_text(p.expires),
            "externalEntityLink": p.external_entity_link,
            "approvalReviewLink": self.review_url,
            "customData": p.custom_data,
            "pipelineExecutionId": p.ids.pipeline_execution_id,
        });
        if let Some((approve, reject)) = &self.one_click {
            approval["approveLink"] = json!(approve);
            approval["rejectLink"] = json!(reject);
        }
        if !p.source_revisions.is_empty() {
            approval["sourceRevisions"] = json!(p.source_revisions);
        }
        json!({
            "region": self.region,
            "consoleLink": self.console_link().unwrap_or_else(|| self.review_url.clone()),
            "approval": approval,
        })
    }

    /// The text email subscribers read.
    pub fn email_text(&self) -> String {
        let p = self.pending;
        let mut text = format!(
            "Pipeline {} needs your approval.\n\n\
             Pipeline:  {}\nStage:     {}\nAction:    {}\nExecution: {}\n",
            p.ids.pipeline_name,
            p.ids.pipeline_name,
            p.stage_name,
            p.action_name,
            p.ids.pipeline_execution_id
        );
        for r in &p.source_revisions {
            text.push_str(&format!(
                "Source:    {}: {}{}\n",
                r.action_name,
                r.revision_id.as_deref().unwrap_or("(unknown revision)"),
                r.revision_summary
                    .as_deref()
                    .map(|s| format!(" ({})", one_line(s)))
                    .unwrap_or_default()
            ));
        }
        if let Some(data) = &p.custom_data {
            text.push_str(&format!("\n{data}\n"));
        }
        if let Some(link) = &p.external_entity_link {
            text.push_str(&format!("\nContent to review: {link}\n"));
        }
        text.push_str(&format!("\nReview:  {}\n", self.review_url));
        match self.console_link() {
            Some(page) => text.push_str(&format!("Console: {page}\n")),
            None => text.push_str(&format!(
                "Console: run `pipewright console` and open /pipelines/{}/executions/{}\n",
                p.ids.pipeline_name, p.ids.pipeline_execution_id
            )),
        }
        match &self.one_click {
            Some((approve, reject)) => text.push_str(&format!(
                "\nApprove: {approve}\n\nReject:  {reject}\n\n\
                 Each link opens a page that shows these details and asks you to confirm; nothing \
                 is decided until you press its button. The links work once, for this execution \
                 only, until {}.\n",
                expires_text(p.expires)
            )),
            None => text.push_str(&format!(
                "\nThis approval is decided signed in (one-click links are off), until {}:\n\n{}\n",
                expires_text(p.expires),
                p.signed_in_commands()
            )),
        }
        text
    }

    /// The SNS message with `MessageStructure: json`: the approval JSON by default, the text
    /// for email subscribers.
    pub fn sns_message(&self) -> String {
        let json = self.json().to_string();
        json!({
            "default": json,
            "email": self.email_text(),
            "email-json": json,
        })
        .to_string()
    }
}

/// CodePipeline writes `expires` to the minute: `2016-07-07T20:22Z`.
pub fn expires_text(epoch_seconds: f64) -> String {
    crate::events::instant(epoch_seconds)
        .format("%Y-%m-%dT%H:%MZ")
        .to_string()
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() > 100 {
        format!("{}...", line.chars().take(100).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `ErrorDetails` of an approval that was rejected or timed out, for pages and messages.
pub fn ended_reason(details: Option<&ErrorDetails>) -> Option<String> {
    details.map(|e| format!("{}: {}", e.code, e.message))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pending() -> PendingApproval {
        PendingApproval {
            ids: ExecutionIds {
                pipeline_name: "app".into(),
                pipeline_version: 2,
                pipeline_execution_id: "exec-1".into(),
            },
            stage_name: "Approve".into(),
            action_name: "Release".into(),
            token: "tok-1".into(),
            started: 1_000.0,
            expires: 1_000.0 + 600.0,
            notification_arn: Some("arn:aws:sns:us-east-1:123456789012:approvals".into()),
            custom_data: Some("Check the staging site.".into()),
            external_entity_link: Some("https://example.com/diff".into()),
            source_revisions: vec![SourceRevision {
                action_name: "Source".into(),
                revision_id: Some("v123".into()),
                revision_summary: Some("Fix the login\n\nlong body".into()),
                revision_url: None,
                revision_change_id: None,
            }],
            one_click_links: true,
        }
    }

    #[test]
    fn the_notice_has_codepipelines_members_and_both_links() {
        let p = pending();
        let notice = ApprovalNotice {
            pending: &p,
            region: "us-east-1",
            review_url: "https://x/?t=v".into(),
            one_click: Some(("https://x/?t=a".into(), "https://x/?t=r".into())),
            console: None,
        };
        let v = notice.json();
        assert_eq!(v["region"], "us-east-1");
        for member in [
            "pipelineName",
            "stageName",
            "actionName",
            "token",
            "expires",
            "externalEntityLink",
            "approvalReviewLink",
            "customData",
        ] {
            assert!(v["approval"].get(member).is_some(), "{member}");
        }
        assert_eq!(v["approval"]["token"], "tok-1");
        assert_eq!(v["approval"]["expires"], "1970-01-01T00:26Z");
        // The review page, never a link that decides, is where CodePipeline's links point.
        assert_eq!(v["consoleLink"], "https://x/?t=v");
        assert_eq!(v["approval"]["approvalReviewLink"], "https://x/?t=v");
        assert_eq!(v["approval"]["approveLink"], "https://x/?t=a");
        let text = notice.email_text();
        assert!(text.contains("Review:  https://x/?t=v"), "{text}");
        assert!(
            text.contains("Content to review: https://example.com/diff"),
            "{text}"
        );
        assert!(text.contains("Approve: https://x/?t=a"), "{text}");
        assert!(text.contains("Reject:  https://x/?t=r"), "{text}");
        assert!(
            text.contains("Source:    Source: v123 (Fix the login)"),
            "{text}"
        );
        assert!(text.contains("Check the staging site."));
        let sns: Value = serde_json::from_str(&notice.sns_message()).unwrap();
        let default: Value = serde_json::from_str(sns["default"].as_str().unwrap()).unwrap();
        assert_eq!(default, v);
        assert_eq!(sns["email"], text);
        assert!(notice.subject().len() <= 100);
    }

    #[test]
    fn without_one_click_links_the_notice_has_the_review_link_and_the_signed_in_commands() {
        let mut p = pending();
        p.stage_name = "Go live".into();
        p.one_click_links = false;
        let notice = ApprovalNotice {
            pending: &p,
            region: "us-east-1",
            review_url: "https://x/?t=v".into(),
            one_click: None,
            console: None,
        };
        let v = notice.json();
        assert!(v["approval"].get("approveLink").is_none(), "{v}");
        assert!(v["approval"].get("rejectLink").is_none(), "{v}");
        assert_eq!(v["consoleLink"], "https://x/?t=v");
        let text = notice.email_text();
        assert!(!text.contains("Approve:"), "{text}");
        assert!(
            text.contains(
                "aws codepipeline put-approval-result --pipeline-name app --stage-name 'Go live' \
                 --action-name Release --token tok-1"
            ),
            "{text}"
        );
        assert!(
            text.contains("pipewright approve app 'Go live' Release"),
            "{text}"
        );
    }

    #[test]
    fn a_stack_that_knows_its_console_links_the_execution_page() {
        let p = pending();
        let mut notice = ApprovalNotice {
            pending: &p,
            region: "us-east-1",
            review_url: "https://x/?t=v".into(),
            one_click: None,
            console: Some("https://console.example/".into()),
        };
        let page = format!(
            "https://console.example/pipelines/app/executions/{}",
            p.ids.pipeline_execution_id
        );
        assert_eq!(notice.json()["consoleLink"], json!(page));
        assert_eq!(
            notice.json()["approval"]["approvalReviewLink"],
            "https://x/?t=v"
        );
        assert!(notice.email_text().contains(&format!("Console: {page}")));
        notice.console = None;
        let text = notice.email_text();
        assert!(
            text.contains(&format!(
                "Console: run `pipewright console` and open /pipelines/app/executions/{}",
                p.ids.pipeline_execution_id
            )),
            "{text}"
        );
    }

    #[test]
    fn shell_words_are_quoted_when_they_need_it() {
        assert_eq!(shell_word("web-app_1.2"), "web-app_1.2");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
