//! One delivery to the `webhook` function: identify the host, check the signature, read the
//! change, decide per pipeline ([`plan_git_change`]), start what passes. The function decodes
//! the HTTP request, calls [`dispatch()`] with its adapters and encodes the [`WebhookAnswer`].
//!
//! `POST /<pipeline name>` is that pipeline's webhook: signed with the pipeline's own secret
//! when it has one, else with the stack's. `POST /` is the stack-wide webhook: signed with the
//! stack's secret, it may start every pipeline following the repository, except those with a
//! secret of their own (they take deliveries at their own URL only).
//!
//! Answers (JSON): 200 started or filtered out (with the reasons), 200 ping, 202 an event that
//! starts nothing, 400 not a webhook delivery or an unreadable payload, 401 a missing or wrong
//! signature (nothing starts), 404 no such pipeline (only after the signature held), 405 not a
//! POST, 500 a start failed before anything was recorded (redeliver: the signed body keeps it
//! to one execution; a start recorded but whose run did not start is answered 200, with its
//! status, since a redelivery would change nothing), 503 the secret could not be read.
//!
//! A pull request from a fork (another repository, whose code anyone may write) starts nothing
//! unless the pipeline opts in with the tag [`FORK_PULL_REQUESTS_TAG`] = `allow`: its commit
//! would otherwise run with the pipeline's roles.

use async_trait::async_trait;
use serde_json::{json, Value};
use tracing::Instrument;

use super::{Engine, StartRequest};
use crate::execution::ExecutionTrigger;
use crate::port_error::PortError;
use crate::store::{PipelineRecord, PipelineStore};
use crate::triggers::webhooks::{self as wire, Delivery, Headers, WebhookEvent};
use crate::triggers::{plan_git_change, GitChange};

/// The pipeline tag that lets pull requests from forks start the pipeline (value `allow`).
pub const FORK_PULL_REQUESTS_TAG: &str = "pipewright:fork-pull-requests";

/// Why `pipeline` does not run `change`, when it comes from a fork the pipeline did not opt in to.
fn fork_refused(pipeline: &PipelineRecord, change: &GitChange) -> Option<String> {
    let GitChange::PullRequest(pr) = change else {
        return None;
    };
    let fork = pr.from_fork.as_deref()?;
    let allowed = pipeline
        .tags
        .iter()
        .any(|t| t.key == FORK_PULL_REQUESTS_TAG && t.value.eq_ignore_ascii_case("allow"));
    (!allowed).then(|| {
        format!(
            "pull request #{} comes from a fork ({fork}): pipelines run pull requests from forks \
             only when tagged {FORK_PULL_REQUESTS_TAG}=allow",
            pr.number
        )
    })
}

/// The webhook secrets (the `webhook` function reads them from Secrets Manager). Values are
/// never logged.
#[async_trait]
pub trait WebhookSecrets: Send + Sync {
    /// The secret for deliveries to `pipeline` (its own when it has one, else the stack's when
    /// the stack-wide secret is on), or the stack's for the stack-wide URL (`None`). `Ok(None)`:
    /// no secret takes deliveries there (the stack-wide secret is off, the default).
    async fn secret_for(&self, pipeline: Option<&str>) -> Result<Option<Vec<u8>>, PortError>;

    /// Whether `pipeline` has a secret of its own.
    async fn has_own_secret(&self, pipeline: &str) -> Result<bool, PortError>;
}

/// One request to the webhook's URL.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The raw path: `/` or `/<pipeline name>`.
    pub path: &'a str,
    /// The headers, names in lower case.
    pub headers: &'a Headers,
    /// The raw body (signatures cover it byte for byte).
    pub body: &'a [u8],
}

/// The answer to send: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAnswer {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

/// What a delivery works with.
pub struct WebhookContext<'a> {
    /// Pipeline declarations.
    pub pipelines: &'a dyn PipelineStore,
    /// The webhook secrets.
    pub secrets: &'a dyn WebhookSecrets,
    /// Starts executions.
    pub engine: &'a Engine<'a>,
    /// Makes execution ids.
    pub new_id: &'a (dyn Fn() -> String + Sync),
    /// The clock (seconds since the epoch).
    pub now: &'a (dyn Fn() -> f64 + Sync),
}

fn reply(status: u16, body: Value) -> WebhookAnswer {
    WebhookAnswer { status, body }
}

fn refuse(status: u16, error: &str, message: impl Into<String>) -> WebhookAnswer {
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
pub async fn dispatch(ctx: &WebhookContext<'_>, request: &WebhookRequest<'_>) -> WebhookAnswer {
    if request.method != "POST" {
        return refuse(405, "MethodNotAllowed", "webhooks are delivered with POST");
    }
    let Ok(named) = path_pipeline(request.path) else {
        return refuse(404, "NotFound", "no webhook at this address");
    };
    let headers = request.headers;
    let body = request.body;
    let Some(delivery) = wire::identify(headers, body) else {
        return refuse(
            400,
            "NotAWebhook",
            "not a GitHub (X-GitHub-Event), GitLab (X-Gitlab-Event) or Bitbucket (X-Event-Key) delivery",
        );
    };
    let span = tracing::info_span!("delivery", provider = delivery.provider.as_str(), event = %delivery.event, delivery = %delivery.delivery_id, pipeline = named.unwrap_or(""));
    deliver(ctx, &delivery, named, headers, body)
        .instrument(span)
        .await
}

/// Check an identified delivery and act on it.
async fn deliver(
    ctx: &WebhookContext<'_>,
    delivery: &Delivery,
    named: Option<&str>,
    headers: &Headers,
    body: &[u8],
) -> WebhookAnswer {
    // The signature is checked before any table is read: the secret is found from the URL's
    // pipeline name alone.
    let secret = match ctx.secrets.secret_for(named).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            let why = match named {
                Some(name) => format!(
                    "pipeline {name} has no webhook secret of its own, and the stack-wide secret \
                     is off (template parameter WebhookStackSecret)"
                ),
                None => "the stack-wide webhook URL is off (template parameter \
                         WebhookStackSecret): deliver to <url>/<pipeline name>, signed with that \
                         pipeline's own secret"
                    .to_string(),
            };
            tracing::warn!(reason = %why, "delivery refused: no secret");
            return refuse(401, "NoWebhookSecret", why);
        }
        Err(e) => {
            tracing::error!(error = %e, "the webhook secret is unavailable");
            return refuse(
                503,
                "ServiceUnavailable",
                "the webhook secret cannot be read right now",
            );
        }
    };
    if let Err(e) = wire::verify_signature(delivery.provider, headers, body, &secret) {
        tracing::warn!(reason = %e, "delivery refused: bad signature");
        return refuse(401, "InvalidSignature", e.to_string());
    }
    let pipeline = match named {
        Some(name) => match ctx.pipelines.get(name, None).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "reading the pipeline failed");
                return refuse(503, "ServiceUnavailable", "try again later");
            }
        },
        None => None,
    };
    let changes = match wire::parse_event(delivery, body) {
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
        (None, None) => match crate::store::all_pipelines(ctx.pipelines).await {
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
    ctx: &WebhookContext<'_>,
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
        if let Some(reason) = fork_refused(pipeline, change) {
            tracing::warn!(pipeline = %name, %reason, "not started");
            report.skip(Some(name), reason);
            continue;
        }
        let request_id = (ctx.new_id)();
        let request = StartRequest {
            pipeline_name: name.to_string(),
            pipeline_execution_id: request_id.clone(),
            trigger: ExecutionTrigger {
                trigger_type: plan.trigger_type,
                trigger_detail: wire::trigger_detail(delivery, change),
            },
            variables: Vec::new(),
            source_revisions: plan.source_revisions.clone(),
            idempotency_key: Some(wire::idempotency_key(delivery, name, index)),
            now: (ctx.now)(),
        };
        match ctx.engine.start_execution(request).await {
            Ok(s) => {
                tracing::info!(pipeline = %name, execution = %s.pipeline_execution_id, new = s.new, reason = %plan.reason, "started");
                report.started.push(json!({ "pipelineName": name, "pipelineExecutionId": s.pipeline_execution_id, "new": s.new, "reason": plan.reason }));
            }
            Err(e) => {
                tracing::error!(pipeline = %name, error = %e, "could not start");
                // Recorded already (its run did not start: the execution ended Failed saying
                // why, or the sweep resumes it): a redelivery would change nothing, so the
                // sender is not asked for one. Nothing recorded: it is.
                match ctx.engine.executions.snapshot(&request_id).await {
                    Ok(Some(recorded)) => report.started.push(json!({
                        "pipelineName": name,
                        "pipelineExecutionId": request_id,
                        "new": true,
                        "status": recorded.execution.status,
                        "reason": format!("recorded, but its run did not start: {e}"),
                    })),
                    _ => {
                        report.failed += 1;
                        report.skip(Some(name), format!("could not start: {e}"));
                    }
                }
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
async fn owns_secret(secrets: &dyn WebhookSecrets, pipeline: &str) -> bool {
    match secrets.has_own_secret(pipeline).await {
        Ok(own) => own,
        Err(e) => {
            tracing::error!(pipeline, error = %e, "reading the pipeline's webhook secret failed");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::asl::AslTargets;
    use crate::engine::memory::{
        MemoryExecutionStore, MemoryFunctions, MemoryMachines, MemoryRuleChecks, MemoryTasks,
    };
    use crate::engine::EngineConfig;
    use crate::store::memory::MemoryPipelineStore;
    use crate::store::{Page, StoreError, Tag};
    use crate::triggers::webhooks::sign;

    const STACK_SECRET: &[u8] = b"the stack's secret";
    const OWN_SECRET: &[u8] = b"the pipeline's own secret";
    const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

    /// The secrets: the stack's, and the pipelines' own.
    #[derive(Default)]
    struct Secrets {
        own: BTreeMap<String, Vec<u8>>,
        /// Nothing can be read.
        unreadable: bool,
        /// Whether a pipeline has its own secret cannot be read.
        own_unreadable: bool,
        /// The stack-wide secret is off (the template's default).
        stack_secret_off: bool,
    }

    #[async_trait]
    impl WebhookSecrets for Secrets {
        async fn secret_for(&self, pipeline: Option<&str>) -> Result<Option<Vec<u8>>, PortError> {
            if self.unreadable {
                return Err(PortError::Other(
                    "secretsmanager:GetSecretValue: AccessDeniedException".into(),
                ));
            }
            Ok(pipeline
                .and_then(|p| self.own.get(p))
                .cloned()
                .or_else(|| (!self.stack_secret_off).then(|| STACK_SECRET.to_vec())))
        }

        async fn has_own_secret(&self, pipeline: &str) -> Result<bool, PortError> {
            if self.unreadable || self.own_unreadable {
                return Err(PortError::Other(
                    "secretsmanager:GetSecretValue: AccessDeniedException".into(),
                ));
            }
            Ok(self.own.contains_key(pipeline))
        }
    }

    /// The pipelines in memory, counting reads; every read fails when `failing`.
    #[derive(Default)]
    struct Pipelines {
        inner: MemoryPipelineStore,
        reads: AtomicUsize,
        failing: bool,
    }

    impl Pipelines {
        fn read(&self) -> Result<(), StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.failing {
                return Err(StoreError::Backend("the table is unavailable".into()));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl PipelineStore for Pipelines {
        async fn create(&self, record: &PipelineRecord) -> Result<(), StoreError> {
            self.inner.create(record).await
        }
        async fn update(&self, record: &PipelineRecord) -> Result<(), StoreError> {
            self.inner.update(record).await
        }
        async fn get(
            &self,
            name: &str,
            version: Option<u32>,
        ) -> Result<Option<PipelineRecord>, StoreError> {
            self.read()?;
            self.inner.get(name, version).await
        }
        async fn delete(&self, name: &str) -> Result<bool, StoreError> {
            self.inner.delete(name).await
        }
        async fn list(
            &self,
            next_token: Option<&str>,
            limit: usize,
        ) -> Result<Page<PipelineRecord>, StoreError> {
            self.read()?;
            self.inner.list(next_token, limit).await
        }
        async fn put_tags(&self, current: &PipelineRecord, tags: &[Tag]) -> Result<(), StoreError> {
            self.inner.put_tags(current, tags).await
        }
    }

    /// The ports in memory.
    #[derive(Default)]
    struct World {
        pipelines: Pipelines,
        secrets: Secrets,
        executions: MemoryExecutionStore,
        tasks: MemoryTasks,
        machines: MemoryMachines,
        functions: MemoryFunctions,
        checks: MemoryRuleChecks,
        /// The engine is not configured to start executions: every start fails.
        cannot_start: bool,
        /// Step Functions refuses every StartExecution (after the execution is recorded).
        machines_refuse: bool,
        ids: AtomicUsize,
    }

    impl World {
        /// Store pipeline `name`, following the GitHub repository `repo` on `branch`.
        async fn add(&self, name: &str, repo: &str, branch: &str) {
            let (owner, repo) = repo.split_once('/').unwrap();
            let mut declaration = crate::parse_pipeline(
                &json!({
                    "name": name, "roleArn": "arn:aws:iam::123456789012:role/x",
                    "artifactStore": {"type": "S3", "location": "b"},
                    "stages": [
                        {"name": "Source", "actions": [{"name": "Checkout",
                            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                            "configuration": {"Owner": owner, "Repo": repo, "Branch": branch, "OAuthToken": "t"},
                            "outputArtifacts": [{"name": "Src"}]}]},
                        {"name": "Build", "actions": [{"name": "Run",
                            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                            "inputArtifacts": [{"name": "Src"}],
                            "commands": ["true"]}]}
                    ]
                })
                .to_string(),
            )
            .unwrap();
            declaration.version = Some(1);
            let record = PipelineRecord {
                declaration,
                created: 1.0,
                updated: 1.0,
                tags: vec![],
            };
            self.pipelines.create(&record).await.unwrap();
        }

        fn reads(&self) -> usize {
            self.pipelines.reads.load(Ordering::SeqCst)
        }

        /// How many state-machine executions were started.
        fn launched(&self) -> usize {
            self.machines.started.lock().unwrap().len()
        }

        async fn send(
            &self,
            method: &str,
            path: &str,
            headers: &Headers,
            body: &[u8],
        ) -> WebhookAnswer {
            let targets = AslTargets {
                orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:orchestrator"
                    .into(),
                action_arn: "arn:aws:lambda:us-east-1:123456789012:function:action".into(),
                approval_arn: "arn:aws:lambda:us-east-1:123456789012:function:approval".into(),
                action_timeout_cap_seconds: None,
            };
            let engine = Engine {
                pipelines: &self.pipelines,
                executions: &self.executions,
                tasks: &self.tasks,
                machines: if self.machines_refuse {
                    &RefusingMachines
                } else {
                    &self.machines
                },
                functions: &self.functions,
                checks: &self.checks,
                config: EngineConfig {
                    region: "us-east-1".into(),
                    account_id: "123456789012".into(),
                    artifact_bucket: "artifacts".into(),
                    targets: (!self.cannot_start).then_some(targets),
                    action_timeout_cap_seconds: None,
                },
            };
            let new_id = || {
                let n = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
                format!("00000000-0000-4000-8000-{n:012}")
            };
            let ctx = WebhookContext {
                pipelines: &self.pipelines,
                secrets: &self.secrets,
                engine: &engine,
                new_id: &new_id,
                now: &|| 1_700_000_000.0,
            };
            let request = WebhookRequest {
                method,
                path,
                headers,
                body,
            };
            dispatch(&ctx, &request).await
        }

        /// POST a GitHub delivery of `event` to `path`, signed with `secret`.
        async fn github(
            &self,
            path: &str,
            event: &str,
            body: &[u8],
            secret: &[u8],
        ) -> WebhookAnswer {
            self.send("POST", path, &github(event, body, secret), body)
                .await
        }
    }

    /// The headers of a GitHub delivery of `event`, signed with `secret`.
    fn github(event: &str, body: &[u8], secret: &[u8]) -> Headers {
        [
            ("x-github-event", event.to_string()),
            ("x-github-delivery", DELIVERY.to_string()),
            ("x-hub-signature-256", sign(secret, body)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The body of `events/webhook-github-push.json`: a push to `main` of pipewright/app.
    fn push() -> Vec<u8> {
        let event: Value =
            serde_json::from_str(include_str!("../../../../events/webhook-github-push.json"))
                .unwrap();
        event["body"].as_str().unwrap().as_bytes().to_vec()
    }

    fn error(answer: &WebhookAnswer) -> &str {
        answer.body["error"].as_str().unwrap_or_default()
    }

    fn reasons(answer: &WebhookAnswer) -> Vec<String> {
        answer.body["notStarted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["reason"].as_str().unwrap().to_string())
            .collect()
    }

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

    #[test]
    fn a_delivery_can_be_answered_on_any_thread() {
        fn send<T: Send>(_: &T) {}
        let world = World::default();
        let headers = Headers::new();
        // The function's runtime needs the future of a delivery to be `Send`.
        let delivery = world.send("POST", "/", &headers, b"");
        send(&delivery);
    }

    #[tokio::test]
    async fn only_post_is_answered() {
        let world = World::default();
        let answer = world.send("GET", "/", &Headers::new(), b"").await;
        assert_eq!(answer.status, 405);
        assert_eq!(error(&answer), "MethodNotAllowed");
        assert_eq!(answer.body["message"], "webhooks are delivered with POST");
    }

    #[tokio::test]
    async fn a_path_that_cannot_name_a_pipeline_is_not_found() {
        let world = World::default();
        let body = push();
        let answer = world.github("/a/b", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 404);
        assert_eq!(error(&answer), "NotFound");
        assert_eq!(world.reads(), 0);
    }

    #[tokio::test]
    async fn a_request_from_no_git_host_is_refused() {
        let world = World::default();
        let mut headers = Headers::new();
        headers.insert("content-type".into(), "application/json".into());
        let answer = world.send("POST", "/", &headers, b"{}").await;
        assert_eq!(answer.status, 400);
        assert_eq!(error(&answer), "NotAWebhook");
        assert_eq!(world.reads(), 0);
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused_before_any_pipeline_is_read() {
        let world = World::default();
        world.add("app", "pipewright/app", "main").await;
        let body = push();
        let answer = world.github("/", "push", &body, b"a guess").await;
        assert_eq!(answer.status, 401);
        assert_eq!(error(&answer), "InvalidSignature");
        assert_eq!(world.reads(), 0, "the stack-wide hook read a pipeline");
        let mut unsigned = github("push", &body, STACK_SECRET);
        unsigned.remove("x-hub-signature-256");
        let answer = world.send("POST", "/", &unsigned, &body).await;
        assert_eq!(answer.status, 401);
        assert_eq!(world.reads(), 0);
        // At a pipeline's own URL too, nothing starts.
        let answer = world.github("/app", "push", &body, b"a guess").await;
        assert_eq!(answer.status, 401);
        assert_eq!(world.launched(), 0);
    }

    #[tokio::test]
    async fn a_ping_is_answered() {
        let world = World::default();
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let answer = world.github("/", "ping", body, STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.body,
            json!({ "message": "pong: the webhook is set up", "delivery": DELIVERY })
        );
    }

    #[tokio::test]
    async fn an_event_that_starts_nothing_is_accepted() {
        let world = World::default();
        let body = br#"{"action":"opened"}"#;
        let answer = world.github("/", "issues", body, STACK_SECRET).await;
        assert_eq!(answer.status, 202);
        assert_eq!(
            answer.body,
            json!({ "message": "GitHub event `issues` starts nothing", "delivery": DELIVERY })
        );
        assert_eq!(world.reads(), 0);
    }

    #[tokio::test]
    async fn an_unreadable_payload_is_refused() {
        let world = World::default();
        let body = b"{}";
        let answer = world.github("/", "push", body, STACK_SECRET).await;
        assert_eq!(answer.status, 400);
        assert_eq!(error(&answer), "InvalidPayload");
    }

    #[tokio::test]
    async fn a_pipeline_that_does_not_exist_is_not_found_once_the_signature_holds() {
        let world = World::default();
        let body = push();
        let answer = world.github("/nope", "push", &body, b"a guess").await;
        assert_eq!(answer.status, 401);
        let answer = world.github("/nope", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 404);
        assert_eq!(error(&answer), "PipelineNotFound");
        assert_eq!(answer.body["message"], "no pipeline is named nope");
    }

    #[tokio::test]
    async fn a_push_starts_the_pipelines_it_passes_once_and_reports_the_others() {
        let world = World::default();
        world.add("app", "pipewright/app", "main").await;
        world.add("release", "pipewright/app", "release").await;
        world.add("other", "pipewright/other", "main").await;
        let body = push();

        let answer = world.github("/", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["delivery"], DELIVERY);
        assert_eq!(
            answer.body["message"],
            "push to branch `main` of pipewright/app: 1 execution started"
        );
        let started = answer.body["started"].as_array().unwrap();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0]["pipelineName"], "app");
        assert_eq!(started[0]["new"], true);
        let id = started[0]["pipelineExecutionId"].clone();
        let not_started = answer.body["notStarted"].as_array().unwrap();
        assert_eq!(not_started.len(), 1);
        assert_eq!(not_started[0]["pipelineName"], "release");
        assert!(
            reasons(&answer)[0].starts_with("filtered out: "),
            "{}",
            answer.body
        );
        assert_eq!(world.launched(), 1);

        // The same delivery again starts nothing new.
        let again = world.github("/", "push", &body, STACK_SECRET).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body["started"][0]["pipelineExecutionId"], id);
        assert_eq!(again.body["started"][0]["new"], false);
        assert_eq!(world.launched(), 1);

        // A captured delivery replayed under a new delivery id (the id is not signed) is the
        // same change: nothing new starts.
        let mut replayed = github("push", &body, STACK_SECRET);
        replayed.insert("x-github-delivery".into(), "replayed-1234".into());
        let replay = world.send("POST", "/", &replayed, &body).await;
        assert_eq!(replay.status, 200, "{}", replay.body);
        assert_eq!(replay.body["started"][0]["pipelineExecutionId"], id);
        assert_eq!(replay.body["started"][0]["new"], false);
        assert_eq!(world.launched(), 1);
        // Another change (another body) starts another execution.
        let other = String::from_utf8(body.clone())
            .unwrap()
            .replacen("\"ref\"", "\"pusher_note\": \"again\", \"ref\"", 1)
            .into_bytes();
        let answer = world.github("/", "push", &other, STACK_SECRET).await;
        assert_eq!(answer.body["started"][0]["new"], true, "{}", answer.body);
        assert_eq!(world.launched(), 2);

        // At a pipeline's own URL: only that pipeline is decided.
        let answer = world.github("/other", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            reasons(&answer),
            vec!["pipeline other has no git source action for pipewright/app"]
        );
        let answer = world.github("/release", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["notStarted"][0]["pipelineName"], "release");
        assert!(reasons(&answer)[0].starts_with("filtered out: "));
    }

    #[tokio::test]
    async fn a_push_no_pipeline_follows_starts_nothing() {
        let world = World::default();
        world.add("other", "pipewright/other", "main").await;
        let answer = world.github("/", "push", &push(), STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            reasons(&answer),
            vec!["no pipeline has a git source action for pipewright/app"]
        );
        assert_eq!(
            answer.body["message"],
            "push to branch `main` of pipewright/app: 0 executions started"
        );
    }

    #[tokio::test]
    async fn a_pipeline_with_its_own_secret_takes_deliveries_at_its_own_url_only() {
        let mut world = World::default();
        world.secrets.own.insert("app".into(), OWN_SECRET.to_vec());
        world.add("app", "pipewright/app", "main").await;
        let body = push();

        let answer = world.github("/", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["started"], json!([]));
        assert_eq!(answer.body["notStarted"][0]["pipelineName"], "app");
        assert_eq!(
            reasons(&answer),
            vec!["pipeline app has a webhook secret of its own: deliver to /app"]
        );

        let answer = world.github("/app", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 401);
        let answer = world.github("/app", "push", &body, OWN_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["started"][0]["pipelineName"], "app");
        assert_eq!(world.launched(), 1);
    }

    #[tokio::test]
    async fn with_the_stack_wide_secret_off_only_a_pipelines_own_secret_is_taken() {
        let mut world = World::default();
        world.secrets.stack_secret_off = true;
        world.secrets.own.insert("own".into(), OWN_SECRET.to_vec());
        world.add("app", "pipewright/app", "main").await;
        world.add("own", "pipewright/app", "main").await;
        let body = push();
        let reads_before = world.pipelines.reads.load(Ordering::SeqCst);

        // No secret of its own: refused, naming why, before any table read.
        let answer = world.github("/app", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body["error"], "NoWebhookSecret");
        let message = answer.body["message"].as_str().unwrap();
        assert!(
            message.contains("pipeline app has no webhook secret of its own"),
            "{message}"
        );
        assert!(message.contains("WebhookStackSecret"), "{message}");
        // The stack-wide URL is off too.
        let answer = world.github("/", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body["error"], "NoWebhookSecret");
        // A forged signature at a pipeline's own URL reads nothing either.
        let answer = world.github("/own", "push", &body, STACK_SECRET).await;
        assert_eq!(answer.status, 401);
        assert_eq!(world.pipelines.reads.load(Ordering::SeqCst), reads_before);
        assert_eq!(world.launched(), 0);

        let answer = world.github("/own", "push", &body, OWN_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["started"][0]["pipelineName"], "own");
        assert_eq!(world.launched(), 1);
    }

    #[tokio::test]
    async fn a_pipeline_whose_own_secret_cannot_be_read_is_not_started_by_the_stack_wide_hook() {
        let mut world = World::default();
        world.secrets.own_unreadable = true;
        world.add("app", "pipewright/app", "main").await;
        let answer = world.github("/", "push", &push(), STACK_SECRET).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            reasons(&answer),
            vec!["pipeline app has a webhook secret of its own: deliver to /app"]
        );
        assert_eq!(world.launched(), 0);
    }

    #[tokio::test]
    async fn a_start_that_fails_asks_for_a_redelivery() {
        let world = World {
            cannot_start: true,
            ..World::default()
        };
        world.add("app", "pipewright/app", "main").await;
        let answer = world.github("/", "push", &push(), STACK_SECRET).await;
        assert_eq!(answer.status, 500);
        assert_eq!(answer.body["started"], json!([]));
        assert_eq!(answer.body["notStarted"][0]["pipelineName"], "app");
        assert!(
            reasons(&answer)[0].starts_with("could not start: state machine: "),
            "{}",
            answer.body
        );
    }

    /// Step Functions unavailable: StartExecution always fails.
    struct RefusingMachines;

    #[async_trait]
    impl crate::engine::StateMachines for RefusingMachines {
        async fn ensure(&self, name: &str, _definition: &Value) -> Result<String, PortError> {
            Ok(format!(
                "arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
            ))
        }
        async fn start(
            &self,
            _arn: &str,
            _name: &str,
            _input: &Value,
        ) -> Result<String, PortError> {
            Err(PortError::Unavailable(
                "states:StartExecution: ServiceUnavailable".into(),
            ))
        }
        async fn delete(&self, _name: &str) -> Result<(), PortError> {
            Ok(())
        }
        async fn run_status(&self, _run: &str) -> Result<crate::sweep::RunStatus, PortError> {
            Ok(crate::sweep::RunStatus::Missing)
        }
        async fn has_running(&self, _name: &str) -> Result<Option<bool>, PortError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_start_recorded_whose_run_did_not_start_asks_for_no_redelivery() {
        let world = World {
            machines_refuse: true,
            ..World::default()
        };
        world.add("app", "pipewright/app", "main").await;
        let answer = world.github("/", "push", &push(), STACK_SECRET).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let started = &answer.body["started"][0];
        assert_eq!(started["pipelineName"], "app");
        assert_eq!(started["status"], "Failed");
        assert!(
            started["reason"]
                .as_str()
                .unwrap()
                .contains("its run did not start"),
            "{}",
            answer.body
        );
    }

    #[tokio::test]
    async fn an_unreadable_secret_is_unavailable() {
        let mut world = World::default();
        world.secrets.unreadable = true;
        world.add("app", "pipewright/app", "main").await;
        let body = push();
        for path in ["/", "/app"] {
            let answer = world.github(path, "push", &body, STACK_SECRET).await;
            assert_eq!(answer.status, 503);
            assert_eq!(error(&answer), "ServiceUnavailable");
            assert_eq!(
                answer.body["message"],
                "the webhook secret cannot be read right now"
            );
        }
        assert_eq!(world.launched(), 0);
    }

    #[tokio::test]
    async fn unreadable_pipelines_are_unavailable() {
        let mut world = World::default();
        world.add("app", "pipewright/app", "main").await;
        world.pipelines.failing = true;
        let body = push();
        for path in ["/", "/app"] {
            let answer = world.github(path, "push", &body, STACK_SECRET).await;
            assert_eq!(answer.status, 503);
            assert_eq!(answer.body["message"], "try again later");
        }
        // The stack-wide hook lists pipelines only once the signature holds.
        let answer = world.github("/", "push", &body, b"a guess").await;
        assert_eq!(answer.status, 401);
    }
}
