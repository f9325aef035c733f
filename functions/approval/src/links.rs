//! The approval links, behind the function's Function URL.
//!
//! `GET /?t=<link>` checks the link and shows a page that decides nothing (mail scanners and link
//! previews fetch links): for the review link, the approval with Approve and Reject buttons (or,
//! when one-click approval is off, how to decide signed in); for an approve or reject link, the
//! confirmation page. `POST /` with the form fields `t` and `summary` (sent by those pages)
//! records the decision. Forged, expired, used and revoked links, links whose execution is no
//! longer waiting, and one-click links where one-click approval is off get a page that says so,
//! and change nothing.

use std::sync::Arc;

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use pipewright_aws::approvals::ApprovalChannel;
use pipewright_core::approvals::{
    link_key_id, sign_link, verify_link, ApprovalAnswer, ApprovalError, Decision, LinkClaims,
    LinkError, LinkKeys, PendingApproval,
};
use pipewright_core::engine::Engine;
use serde_json::Value;

use crate::pages;

/// The largest form accepted (a link is well under 2 KB, a summary at most 512 characters).
const MAX_FORM: usize = 16 * 1024;

/// Answer one HTTP request.
pub async fn handle(
    engine: &Engine<'_>,
    channel: &ApprovalChannel,
    request: &LambdaFunctionUrlRequest,
    now: f64,
) -> Value {
    let method = request
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let result = match method.as_str() {
        "GET" | "HEAD" => {
            let link = query_value(request, "t");
            review(engine, channel, link.as_deref(), now).await
        }
        "POST" => match form(request) {
            Ok(fields) => {
                let get = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let summary = get("summary").unwrap_or_default();
                decide(engine, channel, get("t").as_deref(), &summary, now).await
            }
            Err(reason) => Err((400, "Not a decision", reason)),
        },
        _ => Err((
            405,
            "Not allowed",
            "approval links are opened (GET) and confirmed (POST)".to_string(),
        )),
    };
    match result {
        Ok(html) => pages::response(200, html),
        Err((status, title, reason)) => {
            tracing::info!(status, title, reason = %reason, "approval link refused");
            pages::response(status, pages::refused(title, &reason))
        }
    }
}

type Refusal = (u16, &'static str, String);

/// A checked link: its claims, the link itself, and the keys it was checked with (the review
/// page signs its buttons' links with the current one).
struct Checked {
    claims: LinkClaims,
    link: String,
    keys: Arc<LinkKeys>,
}

async fn claims(
    channel: &ApprovalChannel,
    link: Option<&str>,
    now: f64,
) -> Result<Checked, Refusal> {
    let link = link.filter(|l| !l.trim().is_empty()).ok_or((
        400,
        "Not an approval link",
        "this address needs the approval link from the notice".to_string(),
    ))?;
    let keys = channel.keys_for(link_key_id(link)).await.map_err(|e| {
        tracing::error!(error = %e, "the approval link key is unavailable");
        (
            503,
            "Try again later",
            "approvals cannot be checked right now".to_string(),
        )
    })?;
    match verify_link(&keys, link, now) {
        Ok(claims) => Ok(Checked {
            claims,
            link: link.trim().to_string(),
            keys,
        }),
        Err(e @ LinkError::Malformed) => Err((400, "Not an approval link", e.to_string())),
        Err(e @ (LinkError::Forged | LinkError::UnknownKey)) => {
            Err((403, "Link not valid", e.to_string()))
        }
        Err(e @ LinkError::Expired(_)) => Err((410, "Link expired", e.to_string())),
    }
}

fn refusal(e: ApprovalError) -> Refusal {
    match e {
        ApprovalError::InvalidToken(m) => (404, "No such approval", m),
        ApprovalError::AlreadyCompleted(m) => (409, "Already decided", m),
        ApprovalError::Expired(m) => (410, "Approval expired", m),
        ApprovalError::NotWaiting(m) => (409, "No longer waiting", m),
        ApprovalError::Invalid(m) => (400, "Not a decision", m),
        ApprovalError::Engine(e) => {
            tracing::error!(error = %e, "approval lookup failed");
            (
                503,
                "Try again later",
                "the approval could not be read right now".to_string(),
            )
        }
    }
}

/// Whether this approval may be decided through its links: the stack and the action allow it.
fn one_click(channel: &ApprovalChannel, pending: &PendingApproval) -> bool {
    channel.one_click_links() && pending.one_click_links
}

/// The refusal of a one-click link where one-click approval is off.
fn one_click_off(pending: &PendingApproval) -> Refusal {
    (
        403,
        "Decide signed in",
        format!(
            "one-click approval is off for this approval: approve or reject it signed in, \
             with codepipeline:PutApprovalResult on this pipeline. {}",
            pending.signed_in_commands()
        ),
    )
}

async fn review(
    engine: &Engine<'_>,
    channel: &ApprovalChannel,
    link: Option<&str>,
    now: f64,
) -> Result<String, Refusal> {
    let Checked { claims, link, keys } = claims(channel, link, now).await?;
    let pending = engine
        .pending_approval(&claims.token, &claims.target(), now)
        .await
        .map_err(refusal)?;
    let one_click = one_click(channel, &pending);
    match claims.purpose.decision() {
        None => {
            let buttons = one_click.then(|| {
                let sign = |d: Decision| sign_link(&keys.current, &claims.with_purpose(d));
                (sign(Decision::Approved), sign(Decision::Rejected))
            });
            Ok(pages::review(&pending, buttons))
        }
        Some(_) if !one_click => Err(one_click_off(&pending)),
        Some(decision) => Ok(pages::confirm(&pending, decision, &link)),
    }
}

async fn decide(
    engine: &Engine<'_>,
    channel: &ApprovalChannel,
    link: Option<&str>,
    summary: &str,
    now: f64,
) -> Result<String, Refusal> {
    let Checked { claims, .. } = claims(channel, link, now).await?;
    let Some(decision) = claims.purpose.decision() else {
        return Err((
            400,
            "Not a decision",
            "a review link decides nothing: press Approve or Reject on its page".to_string(),
        ));
    };
    let answer = ApprovalAnswer {
        token: claims.token.clone(),
        target: claims.target(),
        decision,
        summary: summary.to_string(),
        decided_by: claims.decided_by(),
    };
    let pending = engine
        .pending_approval(&claims.token, &claims.target(), now)
        .await
        .map_err(refusal)?;
    if !one_click(channel, &pending) {
        return Err(one_click_off(&pending));
    }
    let decided = engine
        .decide_approval(&answer, now)
        .await
        .map_err(refusal)?;
    tracing::info!(
        execution = %decided.pipeline_execution_id,
        stage = %claims.stage_name,
        action = %claims.action_name,
        decision = decided.decision.as_str(),
        "approval decided through its link"
    );
    Ok(pages::decided(&pending, decided.decision))
}

fn query_value(request: &LambdaFunctionUrlRequest, name: &str) -> Option<String> {
    if let Some(raw) = request.raw_query_string.as_deref() {
        if let Some((_, v)) = form_urlencoded::parse(raw.as_bytes()).find(|(k, _)| k == name) {
            return Some(v.into_owned());
        }
    }
    request.query_string_parameters.get(name).cloned()
}

fn form(request: &LambdaFunctionUrlRequest) -> Result<Vec<(String, String)>, String> {
    let body = request.body.as_deref().unwrap_or_default();
    let bytes = if request.is_base64_encoded {
        BASE64
            .decode(body.trim())
            .map_err(|_| "the request body is not valid base64".to_string())?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.len() > MAX_FORM {
        return Err(format!("the form is larger than {MAX_FORM} bytes"));
    }
    Ok(form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}
