//! One delivery: identify the host, check the signature, read the change, decide per pipeline
//! (`pipewright_core::triggers`), start what passes.
//!
//! `POST /<pipeline name>` is that pipeline's webhook: signed with the pipeline's own secret
//! when it has one, else with the stack's. `POST /` is the stack-wide webhook: signed with the
//! stack's secret, it may start every pipeline following the repository, except those with a
//! secret of their own (they take deliveries at their own URL only).
//!
//! Answers (JSON): 200 started or filtered out (with the reasons), 200 ping, 202 an event that
//! starts nothing, 400 not a webhook delivery or an unreadable payload, 401 a missing or wrong
//! signature (nothing starts), 404 no such pipeline (only after the signature held), 405 not a
//! POST, 500 a start failed (redeliver: the delivery id keeps it to one execution), 503 the
//! secret could not be read.

use std::collections::BTreeMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use pipewright_aws::engine::Adapters;
use pipewright_aws::webhooks::WebhookSecrets;
use pipewright_core::engine::{Engine, StartRequest};
use pipewright_core::execution::ExecutionTrigger;
use pipewright_core::store::{PipelineRecord, PipelineStore};
use pipewright_core::triggers::webhooks::{self, Delivery, Headers, WebhookEvent};
use pipewright_core::triggers::{plan_git_change, GitChange};
use serde_json::{json, Value};
use tracing::Instrument;

fn reply(status: u16, body: Value) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(StatusCode::from_u16(status)?)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))?)
}

fn refuse(status: u16, error: &str, message: impl Into<String>) -> Result<Response<Body>, Error> {
    reply(status, json!({ "error": error, "message": message.into() }))
}

/// The pipeline a path names (`/` names none); `Err` for a path that cannot be one.
fn path_pipeline(path: &str) -> Result<Option<&str>, ()> {
    let name = path.trim_matches('/');
    if name.is_empty() {
        return Ok(None);
    }
    let valid = name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'-' | b'_'));
    if valid {
        Ok(Some(name))
    } else {
        Err(())
    }
}

/// Answer one request.
pub async fn handle(
    adapters: &Adapters,
    secrets: &WebhookSecrets,
    request: Request,
) -> Result<Response<Body>, Error> {
    if request.method() != "POST" {
        return refuse(405, "MethodNotAllowed", "webhooks are delivered with POST");
    }
    let Ok(named) = path_pipeline(request.raw_http_path()) else {
        return refuse(404, "NotFound", "no webhook at this address");
    };
    let headers: Headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect::<BTreeMap<_, _>>();
    let body: &[u8] = request.body().as_ref();
    let Some(delivery) = webhooks::identify(&headers, body) else {
        return refuse(
            400,
            "NotAWebhook",
            "not a GitHub (X-GitHub-Event), GitLab (X-Gitlab-Event) or Bitbucket (X-Event-Key) delivery",
        );
    };
    let span = tracing::info_span!("delivery", provider = delivery.provider.as_str(), event = %delivery.event, delivery = %delivery.delivery_id, pipeline = named.unwrap_or(""));
    let function_arn = request
        .lambda_context_ref()
        .map(|c| c.invoked_function_arn.clone())
        .unwrap_or_default();
    let engine = adapters.engine(&function_arn);
    let ctx = Context {
        adapters,
        secrets,
        engine: &engine,
    };
    deliver(&ctx, &delivery, named, &headers, body)
        .instrument(span)
        .await
}

/// What a delivery needs.
struct Context<'a> {
    adapters: &'a Adapters,
    secrets: &'a WebhookSecrets,
    engine: &'a Engine<'a>,
}

/// Check an identified delivery and act on it.
async fn deliver(
    ctx: &Context<'_>,
    delivery: &Delivery,
    named: Option<&str>,
    headers: &Headers,
    body: &[u8],
) -> Result<Response<Body>, Error> {
    let pipeline = match named {
        Some(name) => match ctx.adapters.pipelines.get(name, None).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the pipeline failed");
                return refuse(503, "ServiceUnavailable", "try again later");
            }
        },
        None => None,
    };
    let secret_owner = pipeline.as_ref().map(|p| p.declaration.name.as_str());
    let secret = match ctx.secrets.secret_for(secret_owner).await {
        Ok((secret, _)) => secret,
        Err(e) => {
            tracing::error!(error = %e, "the webhook secret is unavailable");
            return refuse(
                503,
                "ServiceUnavailable",
                "the webhook secret cannot be read right now",
            );
        }
    };
    if let Err(e) = webhooks::verify_signature(delivery.provider, headers, body, &secret) {
        tracing::warn!(reason = %e, "delivery refused: bad signature");
        return refuse(401, "InvalidSignature", e.to_string());
    }
    let changes = match webhooks::parse_event(delivery, body) {
        Ok(WebhookEvent::Ping) => {
            tracing::info!("ping");
            return reply(
                200,
                json!({ "message": "pong: the webhook is set up", "delivery": delivery.delivery_id }),
            );
        }
        Ok(WebhookEvent::Ignored(why)) => {
            tracing::info!(reason = %why, "delivery ignored");
            return reply(
                202,
                json!({ "message": why, "delivery": delivery.delivery_id }),
            );
        }
        Ok(WebhookEvent::Changes(changes)) => changes,
        Err(why) => {
            tracing::warn!(reason = %why, "unreadable payload");
            return refuse(400, "InvalidPayload", why);
        }
    };
    let candidates = match (named, pipeline) {
        (Some(name), None) => {
            return refuse(
                404,
                "PipelineNotFound",
                format!("no pipeline is named {name}"),
            )
        }
        (Some(_), Some(p)) => vec![p],
        (None, None) => match all_pipelines(ctx.adapters).await {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "listing pipelines failed");
                return refuse(503, "ServiceUnavailable", "try again later");
            }
        },
        (None, Some(_)) => unreachable!("a pipeline is read only when the path names it"),
    };

    let mut report = Report::default();
    for (index, change) in changes.iter().enumerate() {
        act_on(
            ctx,
            delivery,
            named,
            &candidates,
            index,
            change,
            &mut report,
        )
        .await;
    }
    reply(
        if report.failed == 0 { 200 } else { 500 },
        json!({
            "delivery": delivery.delivery_id,
            "message": summary(&changes, report.started.len()),
            "started": report.started,
            "notStarted": report.not_started,
        }),
    )
}

/// What a delivery did, for its answer.
#[derive(Default)]
struct Report {
    started: Vec<Value>,
    not_started: Vec<Value>,
    failed: usize,
}

impl Report {
    fn skip(&mut self, pipeline: Option<&str>, reason: String) {
        tracing::info!(pipeline = pipeline.unwrap_or(""), reason = %reason, "not started");
        self.not_started.push(match pipeline {
            Some(name) => json!({ "pipelineName": name, "reason": reason }),
            None => json!({ "reason": reason }),
        });
    }
}

/// Decide change `index` of the delivery for every candidate pipeline; start those it passes.
async fn act_on(
    ctx: &Context<'_>,
    delivery: &Delivery,
    named: Option<&str>,
    candidates: &[PipelineRecord],
    index: usize,
    change: &GitChange,
    report: &mut Report,
) {
    let mut concerned = false;
    for pipeline in candidates {
        let name = pipeline.declaration.name.as_str();
        let Some(plan) = plan_git_change(&pipeline.declaration, change) else {
            continue;
        };
        concerned = true;
        if named.is_none() && owns_secret(ctx.secrets, name).await {
            let reason =
                format!("pipeline {name} has a webhook secret of its own: deliver to /{name}");
            report.skip(Some(name), reason);
            continue;
        }
        if !plan.start {
            report.skip(Some(name), format!("filtered out: {}", plan.reason));
            continue;
        }
        let request = StartRequest {
            pipeline_name: name.to_string(),
            pipeline_execution_id: uuid::Uuid::new_v4().to_string(),
            trigger: ExecutionTrigger {
                trigger_type: plan.trigger_type,
                trigger_detail: webhooks::trigger_detail(delivery, change),
            },
            variables: Vec::new(),
            source_revisions: plan.source_revisions.clone(),
            idempotency_key: Some(webhooks::idempotency_key(delivery, name, index)),
            now: pipewright_aws::now(),
        };
        match ctx.engine.start_execution(request).await {
            Ok(s) => {
                tracing::info!(pipeline = %name, execution = %s.pipeline_execution_id, new = s.new, reason = %plan.reason, "started");
                report.started.push(json!({ "pipelineName": name, "pipelineExecutionId": s.pipeline_execution_id, "new": s.new, "reason": plan.reason }));
            }
            Err(e) => {
                tracing::error!(pipeline = %name, error = %e, "could not start");
                report.failed += 1;
                report.skip(Some(name), format!("could not start: {e}"));
            }
        }
    }
    if !concerned {
        let repository = change.repository();
        report.skip(
            None,
            match named {
                Some(name) => format!("pipeline {name} has no git source action for {repository}"),
                None => format!("no pipeline has a git source action for {repository}"),
            },
        );
    }
}

fn summary(changes: &[GitChange], started: usize) -> String {
    let what: Vec<String> = changes.iter().map(ToString::to_string).collect();
    format!(
        "{}: {started} execution{} started",
        what.join(", "),
        if started == 1 { "" } else { "s" }
    )
}

/// Whether `pipeline` has a secret of its own (then it takes deliveries at its own URL only).
/// When that cannot be read, it counts as having one: nothing starts on a weaker secret.
async fn owns_secret(secrets: &WebhookSecrets, pipeline: &str) -> bool {
    match secrets.has_own_secret(pipeline).await {
        Ok(own) => own,
        Err(e) => {
            tracing::error!(pipeline, error = %e, "reading the pipeline's webhook secret failed");
            true
        }
    }
}

async fn all_pipelines(adapters: &Adapters) -> Result<Vec<PipelineRecord>, Error> {
    Ok(pipewright_core::store::all_pipelines(&adapters.pipelines).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_pipelines() {
        assert_eq!(path_pipeline("/"), Ok(None));
        assert_eq!(path_pipeline(""), Ok(None));
        assert_eq!(path_pipeline("/my-pipeline"), Ok(Some("my-pipeline")));
        assert_eq!(
            path_pipeline("/my.pipe@line_1/"),
            Ok(Some("my.pipe@line_1"))
        );
        assert_eq!(path_pipeline("/a/b"), Err(()));
        assert_eq!(path_pipeline("/%2e%2e"), Err(()));
        assert_eq!(path_pipeline(&format!("/{}", "a".repeat(101))), Err(()));
    }
}
