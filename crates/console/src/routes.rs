//! The handlers: each reads what its page needs from the control plane (concurrently where it
//! can), renders it, or does what a form asked and goes back to the page it came from.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, ActionExecutionFilter, ApprovalResult, ApprovalStatus,
    PipelineExecutionFilter, PipelineExecutionSummary, RuleExecutionDetail, RuleExecutionFilter,
    StageRetryMode, StageTransitionType, SucceededInStageFilter,
};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures::StreamExt;
use serde::Deserialize;

use crate::auth::Verdict;
use crate::pages::{self, Flash, Page};
use crate::text::{enc, pipeline_path};
use crate::Console;

type Shared = State<Arc<Console>>;

/// Every route, behind [`guard`].
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/pipelines/{name}", get(pipeline))
        .route("/pipelines/{name}/history", get(history))
        .route("/pipelines/{name}/executions/{id}", get(execution))
        .route("/pipelines/{name}/release", post(release))
        .route("/pipelines/{name}/stop", post(stop))
        .route("/pipelines/{name}/retry", post(retry))
        .route("/pipelines/{name}/approval", post(approval))
        .route("/pipelines/{name}/transition", post(transition))
        .route("/pipelines/{name}/rollback", post(rollback))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

/// What every response carries: no caching of pages, no framing, no inline scripts.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The Host / Origin checks and the token or session (see [`crate::auth`]).
async fn guard(State(c): Shared, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let mut response = if !c.auth.host_allowed(text(header::HOST)) {
        (
            StatusCode::FORBIDDEN,
            "the console answers only at 127.0.0.1 or localhost on its own port\n",
        )
            .into_response()
    } else if req.method() == Method::POST && !c.auth.origin_allowed(text(header::ORIGIN)) {
        (StatusCode::FORBIDDEN, "a form from another site\n").into_response()
    } else {
        let token = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_owned)
        });
        match c.auth.check(text(header::COOKIE), token.as_deref()) {
            Verdict::Session => next.run(req).await,
            Verdict::Opened { session } => {
                let rest: Vec<&str> = req
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter(|p| !p.is_empty() && !p.starts_with("token="))
                    .collect();
                let mut target = req.uri().path().to_string();
                if !rest.is_empty() {
                    target = format!("{target}?{}", rest.join("&"));
                }
                let mut r = Redirect::to(&target).into_response();
                if let Ok(v) = HeaderValue::from_str(&c.auth.set_cookie(&session)) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                r
            }
            Verdict::Refused(why) => (
                StatusCode::UNAUTHORIZED,
                Html(pages::refused_page(why).into_string()),
            )
                .into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A call the control plane refused or could not answer, as the page says it.
#[derive(Debug)]
struct Problem {
    kind: String,
    message: String,
    status: StatusCode,
}

impl Problem {
    fn from_sdk<E>(
        err: SdkError<E, aws_sdk_codepipeline::config::http::HttpResponse>,
        endpoint: &str,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::ServiceError(ctx) => {
                let kind = ctx.err().code().unwrap_or("UnknownError").to_string();
                let status = if kind.ends_with("NotFoundException") {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::BAD_GATEWAY
                };
                Self {
                    message: ctx
                        .err()
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {}", ctx.raw().status().as_u16())),
                    kind,
                    status,
                }
            }
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Self {
                kind: "EndpointUnreachable".into(),
                message: format!("the control plane at {endpoint} cannot be reached"),
                status: StatusCode::BAD_GATEWAY,
            },
            _ => Self {
                kind: "InvalidResponse".into(),
                message: format!(
                    "{endpoint} answered something that is not CodePipeline's protocol: {err}"
                ),
                status: StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn one_line(&self) -> String {
        format!("{}: {}", self.kind, self.message)
    }
}

/// `?` for SDK calls in handlers.
macro_rules! call {
    ($c:expr, $fut:expr) => {
        $fut.await.map_err(|e| Problem::from_sdk(e, &$c.endpoint))
    };
}

/// Render `page` whole, or only its main part for the live refresh.
fn respond(c: &Console, headers: &HeaderMap, page: Page) -> Response {
    if headers
        .get("x-pipewright-fragment")
        .is_some_and(|v| v.as_bytes() == b"main")
    {
        return Html(page.main.into_string()).into_response();
    }
    Html(pages::document(&page, &c.endpoint).into_string()).into_response()
}

fn problem(c: &Console, headers: &HeaderMap, title: &str, p: Problem) -> Response {
    let page = pages::problem_page(title, &p.kind, &p.message);
    let mut r = respond(c, headers, page);
    *r.status_mut() = p.status;
    r
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::JS,
    )
        .into_response()
}

async fn not_found(State(c): Shared, headers: HeaderMap) -> Response {
    let p = Problem {
        kind: "NotFound".into(),
        message: "the console has no such page".into(),
        status: StatusCode::NOT_FOUND,
    };
    problem(&c, &headers, "No such page", p)
}

/// Every pipeline (ListPipelines, all pages), each with its 10 latest executions.
#[derive(Deserialize)]
struct ListQuery {
    /// ListPipelines' token of the page to show.
    next: Option<String>,
    #[serde(flatten)]
    flash: Flash,
}

/// Pipelines shown on one page of the list (each costs a ListPipelineExecutions per refresh).
const PIPELINES_PER_PAGE: i32 = 50;

/// One page of pipelines (ListPipelines), each with its 10 latest executions.
async fn list(State(c): Shared, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    match list_rows(&c, q.next.filter(|t| !t.is_empty())).await {
        Ok((rows, next)) => respond(
            &c,
            &headers,
            pages::list::render(&rows, next.as_deref(), &q.flash, now()),
        ),
        Err(p) => problem(&c, &headers, "Pipelines", p),
    }
}

async fn list_rows(
    c: &Console,
    next: Option<String>,
) -> Result<(Vec<pages::list::Row>, Option<String>), Problem> {
    let page = call!(
        c,
        c.client
            .list_pipelines()
            .max_results(PIPELINES_PER_PAGE)
            .set_next_token(next)
            .send()
    )?;
    let next = page
        .next_token()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut pipelines = page.pipelines().to_vec();
    pipelines.sort_by(|a, b| a.name().cmp(&b.name()));
    let names: Vec<String> = pipelines
        .iter()
        .map(|p| p.name().unwrap_or_default().to_string())
        .collect();
    let reads = names.into_iter().map(|name| async move {
        call!(
            c,
            c.client
                .list_pipeline_executions()
                .pipeline_name(name)
                .max_results(10)
                .send()
        )
        .map(|o| o.pipeline_execution_summaries().to_vec())
        .map_err(|p| p.one_line())
    });
    // At most 8 at once: a list of hundreds of pipelines must not flood the control plane.
    let executions: Vec<_> = futures::stream::iter(reads).buffered(8).collect().await;
    let rows = pipelines
        .into_iter()
        .zip(executions)
        .map(|(pipeline, executions)| pages::list::Row {
            pipeline,
            executions,
        })
        .collect();
    Ok((rows, next))
}

/// GetPipeline, GetPipelineState and the recent executions, side by side.
async fn pipeline(
    State(c): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let (declaration, state, recent) = tokio::join!(
        async { call!(c, c.client.get_pipeline().name(&name).send()) },
        async { call!(c, c.client.get_pipeline_state().name(&name).send()) },
        async {
            call!(
                c,
                c.client
                    .list_pipeline_executions()
                    .pipeline_name(&name)
                    .max_results(20)
                    .send()
            )
        },
    );
    let result = (|| {
        let declaration = declaration?;
        let declaration = declaration.pipeline().cloned().ok_or_else(|| Problem {
            kind: "InvalidResponse".into(),
            message: "GetPipeline answered without a pipeline".into(),
            status: StatusCode::BAD_GATEWAY,
        })?;
        Ok::<_, Problem>((declaration, state?, recent?))
    })();
    match result {
        Ok((declaration, state, recent)) => {
            let view = pages::pipeline::View {
                declaration: &declaration,
                state: &state,
                recent: recent.pipeline_execution_summaries(),
            };
            respond(&c, &headers, pages::pipeline::render(&view, &flash, now()))
        }
        Err(p) => problem(&c, &headers, &name, p),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(flatten)]
    filters: pages::history::Filters,
    #[serde(flatten)]
    flash: Flash,
}

/// ListPipelineExecutions (up to 200, the stage filter applied by the service).
async fn history(
    State(c): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let read = async {
        let declaration = call!(c, c.client.get_pipeline().name(&name).send())?;
        let stages: Vec<String> = declaration
            .pipeline()
            .map(|p| p.stages().iter().map(|s| s.name().to_string()).collect())
            .unwrap_or_default();
        let filter = q.filters.stage().map(|stage| {
            PipelineExecutionFilter::builder()
                .succeeded_in_stage(SucceededInStageFilter::builder().stage_name(stage).build())
                .build()
        });
        let mut executions: Vec<PipelineExecutionSummary> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = call!(
                c,
                c.client
                    .list_pipeline_executions()
                    .pipeline_name(&name)
                    .set_filter(filter.clone())
                    .max_results(100)
                    .set_next_token(next.clone())
                    .send()
            )?;
            executions.extend(page.pipeline_execution_summaries().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() && executions.len() < 200 => next = Some(t.to_string()),
                _ => break,
            }
        }
        Ok::<_, Problem>((stages, executions))
    };
    match read.await {
        Ok((stages, executions)) => respond(
            &c,
            &headers,
            pages::history::render(&name, &stages, &executions, &q.filters, &q.flash),
        ),
        Err(p) => problem(&c, &headers, &format!("{name} history"), p),
    }
}

/// GetPipelineExecution, the version's stage order, and every action and rule run of it.
async fn execution(
    State(c): Shared,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(flash): Query<Flash>,
) -> Response {
    let read = async {
        let execution = call!(
            c,
            c.client
                .get_pipeline_execution()
                .pipeline_name(&name)
                .pipeline_execution_id(&id)
                .send()
        )?;
        let execution = execution
            .pipeline_execution()
            .cloned()
            .ok_or_else(|| Problem {
                kind: "InvalidResponse".into(),
                message: "GetPipelineExecution answered without an execution".into(),
                status: StatusCode::BAD_GATEWAY,
            })?;
        let (declaration, actions, rules) = tokio::join!(
            async {
                call!(
                    c,
                    c.client
                        .get_pipeline()
                        .name(&name)
                        .set_version(execution.pipeline_version())
                        .send()
                )
            },
            action_runs(&c, &name, &id),
            rule_runs(&c, &name, &id),
        );
        let declaration = declaration?;
        let stages: Vec<String> = declaration
            .pipeline()
            .map(|p| p.stages().iter().map(|s| s.name().to_string()).collect())
            .unwrap_or_default();
        let actions = actions?;
        let bucket = declaration.pipeline().and_then(artifact_bucket);
        let logs = match bucket {
            Some(bucket) => log_tails(&c, &name, &bucket, &actions).await,
            None => Vec::new(),
        };
        Ok::<_, Problem>((execution, stages, actions, rules.unwrap_or_default(), logs))
    };
    match read.await {
        Ok((execution, stages, actions, rules, logs)) => {
            let view = pages::execution::View {
                execution: &execution,
                stages: &stages,
                actions: &actions,
                rules: &rules,
                logs: &logs,
            };
            respond(&c, &headers, pages::execution::render(&view, &flash, now()))
        }
        Err(p) => problem(&c, &headers, &format!("{name} execution"), p),
    }
}

/// The pipeline's artifact bucket (its one store, or the first of its regional ones).
fn artifact_bucket(p: &aws_sdk_codepipeline::types::PipelineDeclaration) -> Option<String> {
    p.artifact_store()
        .map(|s| s.location().to_string())
        .or_else(|| {
            p.artifact_stores()
                .and_then(|m| m.values().next())
                .map(|s| s.location().to_string())
        })
}

/// How much of a log the page shows: its end.
const LOG_TAIL_BYTES: u64 = 16 * 1024;

/// The end of the log of each Commands action run (`<pipeline>/logs/<id>.log` in the artifact
/// bucket), read with the user's own S3 client, 4 at once; a log that cannot be read says why.
async fn log_tails(
    c: &Console,
    pipeline: &str,
    bucket: &str,
    actions: &[ActionExecutionDetail],
) -> Vec<(String, String)> {
    let ids: Vec<String> = actions
        .iter()
        .filter(|a| {
            a.input()
                .and_then(|i| i.action_type_id())
                .is_some_and(|t| t.provider() == "Commands")
        })
        .filter_map(|a| a.action_execution_id().map(str::to_string))
        .collect();
    let reads = ids.into_iter().map(|id| async move {
        let key = pipewright_core::execution::log_key(pipeline, &id);
        let read =
            c.s3.get_object()
                .bucket(bucket)
                .key(&key)
                .range(format!("bytes=-{LOG_TAIL_BYTES}"))
                .send()
                .await;
        let text = match read {
            Ok(o) => match o.body.collect().await {
                Ok(bytes) => {
                    let bytes = bytes.into_bytes();
                    let mut text = String::from_utf8_lossy(&bytes).into_owned();
                    if bytes.len() as u64 >= LOG_TAIL_BYTES {
                        // Cut at a line: the first one is likely a part.
                        if let Some(i) = text.find('\n') {
                            text = format!("[...]\n{}", &text[i + 1..]);
                        }
                    }
                    text
                }
                Err(e) => format!("(the log s3://{bucket}/{key} could not be read: {e})"),
            },
            Err(e) => {
                let code = e.as_service_error().and_then(|s| {
                    aws_sdk_s3::error::ProvideErrorMetadata::code(s).map(str::to_string)
                });
                match code.as_deref() {
                    Some("NoSuchKey") => return None,
                    Some(code) => {
                        format!("(the log s3://{bucket}/{key} could not be read: {code})")
                    }
                    None => format!("(the log s3://{bucket}/{key} could not be read)"),
                }
            }
        };
        Some((id, text))
    });
    futures::stream::iter(reads)
        .buffered(4)
        .filter_map(|x| async move { x })
        .collect()
        .await
}

async fn action_runs(
    c: &Console,
    name: &str,
    id: &str,
) -> Result<Vec<ActionExecutionDetail>, Problem> {
    let filter = ActionExecutionFilter::builder()
        .pipeline_execution_id(id)
        .build();
    let mut runs = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = call!(
            c,
            c.client
                .list_action_executions()
                .pipeline_name(name)
                .filter(filter.clone())
                .max_results(100)
                .set_next_token(next.clone())
                .send()
        )?;
        runs.extend(page.action_execution_details().iter().cloned());
        match page.next_token() {
            Some(t) if !t.is_empty() && runs.len() < 1000 => next = Some(t.to_string()),
            _ => return Ok(runs),
        }
    }
}

async fn rule_runs(c: &Console, name: &str, id: &str) -> Result<Vec<RuleExecutionDetail>, Problem> {
    let filter = RuleExecutionFilter::builder()
        .pipeline_execution_id(id)
        .build();
    let page = call!(
        c,
        c.client
            .list_rule_executions()
            .pipeline_name(name)
            .filter(filter)
            .max_results(100)
            .send()
    )?;
    Ok(page.rule_execution_details().to_vec())
}

/// Back to `back` (a console path) or the pipeline page, saying what happened.
fn done(name: &str, back: Option<&str>, result: Result<String, Problem>) -> Response {
    let page = back
        .filter(|b| b.starts_with("/pipelines/") && !b.contains("//") && !b.contains('\\'))
        .map(str::to_string)
        .unwrap_or_else(|| pipeline_path(name));
    let (key, text) = match result {
        Ok(notice) => ("notice", notice),
        Err(p) => ("error", p.one_line()),
    };
    Redirect::to(&format!("{page}?{key}={}", enc(&text))).into_response()
}

async fn release(State(c): Shared, Path(name): Path<String>) -> Response {
    let result = call!(c, c.client.start_pipeline_execution().name(&name).send()).map(|o| {
        format!(
            "Started execution {}",
            o.pipeline_execution_id().unwrap_or_default()
        )
    });
    done(&name, None, result)
}

#[derive(Deserialize)]
struct StopForm {
    execution: String,
    abandon: Option<String>,
    reason: Option<String>,
    back: Option<String>,
}

async fn stop(State(c): Shared, Path(name): Path<String>, Form(f): Form<StopForm>) -> Response {
    let abandon = f.abandon.as_deref() == Some("true");
    let reason = f.reason.filter(|r| !r.trim().is_empty());
    let result = call!(
        c,
        c.client
            .stop_pipeline_execution()
            .pipeline_name(&name)
            .pipeline_execution_id(&f.execution)
            .abandon(abandon)
            .set_reason(reason)
            .send()
    )
    .map(|_| {
        if abandon {
            format!(
                "Stopping execution {}, abandoning its running actions",
                f.execution
            )
        } else {
            format!(
                "Stopping execution {} once its running actions finish",
                f.execution
            )
        }
    });
    done(&name, f.back.as_deref(), result)
}

#[derive(Deserialize)]
struct RetryForm {
    stage: String,
    execution: String,
    mode: String,
    back: Option<String>,
}

async fn retry(State(c): Shared, Path(name): Path<String>, Form(f): Form<RetryForm>) -> Response {
    let result = call!(
        c,
        c.client
            .retry_stage_execution()
            .pipeline_name(&name)
            .stage_name(&f.stage)
            .pipeline_execution_id(&f.execution)
            .retry_mode(StageRetryMode::from(f.mode.as_str()))
            .send()
    )
    .map(|_| format!("Retrying stage {} of execution {}", f.stage, f.execution));
    done(&name, f.back.as_deref(), result)
}

#[derive(Deserialize)]
struct ApprovalForm {
    stage: String,
    action: String,
    token: String,
    decision: String,
    summary: Option<String>,
}

async fn approval(
    State(c): Shared,
    Path(name): Path<String>,
    Form(f): Form<ApprovalForm>,
) -> Response {
    let approved = f.decision == "Approved";
    let summary = f
        .summary
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("{} in the Pipewright console", f.decision));
    let decision = ApprovalResult::builder()
        .summary(summary)
        .status(if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        })
        .build();
    let result = match decision {
        Ok(d) => call!(
            c,
            c.client
                .put_approval_result()
                .pipeline_name(&name)
                .stage_name(&f.stage)
                .action_name(&f.action)
                .token(&f.token)
                .result(d)
                .send()
        )
        .map(|_| {
            format!(
                "{} {} in stage {}",
                if approved { "Approved" } else { "Rejected" },
                f.action,
                f.stage
            )
        }),
        Err(e) => Err(Problem {
            kind: "InvalidRequest".into(),
            message: e.to_string(),
            status: StatusCode::BAD_REQUEST,
        }),
    };
    done(&name, None, result)
}

#[derive(Deserialize)]
struct TransitionForm {
    stage: String,
    enable: String,
    reason: Option<String>,
}

async fn transition(
    State(c): Shared,
    Path(name): Path<String>,
    Form(f): Form<TransitionForm>,
) -> Response {
    let result = if f.enable == "true" {
        call!(
            c,
            c.client
                .enable_stage_transition()
                .pipeline_name(&name)
                .stage_name(&f.stage)
                .transition_type(StageTransitionType::Inbound)
                .send()
        )
        .map(|_| format!("Enabled the transition into {}", f.stage))
    } else {
        let reason = f
            .reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "Disabled in the Pipewright console".into());
        call!(
            c,
            c.client
                .disable_stage_transition()
                .pipeline_name(&name)
                .stage_name(&f.stage)
                .transition_type(StageTransitionType::Inbound)
                .reason(reason)
                .send()
        )
        .map(|_| format!("Disabled the transition into {}", f.stage))
    };
    done(&name, None, result)
}

#[derive(Deserialize)]
struct RollbackForm {
    stage: String,
    target: String,
}

async fn rollback(
    State(c): Shared,
    Path(name): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Response {
    let result = call!(
        c,
        c.client
            .rollback_stage()
            .pipeline_name(&name)
            .stage_name(&f.stage)
            .target_pipeline_execution_id(&f.target)
            .send()
    )
    .map(|o| {
        format!(
            "Rolling {} back to execution {} (execution {})",
            f.stage,
            f.target,
            o.pipeline_execution_id()
        )
    });
    done(&name, None, result)
}
