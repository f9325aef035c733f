//! The console (`pipewright console`) against the local stack, driven by headless Chromium as a
//! person would use it: the pipelines list, a pipeline's stages updating live while an
//! execution runs, an approval approved by clicking, a failed stage retried, a running execution
//! stopped, a control-plane error shown as a message; and no page without the link's token.
//! Screenshots of each page go to `target/console/`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_codepipeline::types::{ActionExecutionFilter, PipelineExecutionStatus};
use pipewright_e2e::browser::Browser;
use pipewright_e2e::pipelines::{
    approve_when_asked, clients, eventually, source_bucket, start, wait_for, Clients,
    PipelineBuilder,
};
use pipewright_e2e::{root, stack, Stack};
use serde_json::json;

/// How long the page may take to show what the stack did.
const SHOWN: Duration = Duration::from_secs(120);

/// A running `pipewright console --no-open` on the stack's IAM door.
struct Console {
    child: Child,
    /// The URL it printed (with its one-time token).
    url: String,
    /// `http://127.0.0.1:<port>`.
    base: String,
}

impl Console {
    fn start(stack: &Stack) -> Self {
        let mut child = Command::new(crate::cli::binary())
            .args([
                "console",
                "--no-open",
                "--iam-endpoint-url",
                &stack.iam_endpoint,
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // Where the console reads action logs (the artifact bucket) with these credentials.
            .env("AWS_ENDPOINT_URL", &stack.endpoint)
            .env_remove("AWS_PROFILE")
            .env_remove("PIPEWRIGHT_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run pipewright console");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut url = String::new();
        while !url.starts_with("http://127.0.0.1:") {
            url.clear();
            let n = lines
                .read_line(&mut url)
                .expect("read the console's output");
            assert!(n > 0, "pipewright console ended without printing its URL");
        }
        let url = url.trim().to_string();
        let base = url.split("/?").next().expect("a base").to_string();
        Self { child, url, base }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shot(browser: &mut Browser, name: &str) {
    browser.screenshot(&root().join("target/console").join(format!("{name}.png")));
}

/// The HTTP status of a GET with `cookie` (no redirects followed).
fn status_of(url: &str, cookie: Option<&str>) -> u16 {
    let mut req = ureq::get(url);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.config()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .call()
        .expect("the console answers")
        .status()
        .as_u16()
}

/// GetPipelineState of `pipeline`.
async fn state_of(
    c: &Clients,
    pipeline: &str,
) -> aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput {
    c.codepipeline
        .get_pipeline_state()
        .name(pipeline)
        .send()
        .await
        .expect("GetPipelineState")
}

/// The runs of `stage`/`action` in execution `id` (ListActionExecutions).
async fn runs_of(c: &Clients, pipeline: &str, id: &str, action: &str) -> usize {
    c.codepipeline
        .list_action_executions()
        .pipeline_name(pipeline)
        .filter(
            ActionExecutionFilter::builder()
                .pipeline_execution_id(id)
                .build(),
        )
        .send()
        .await
        .expect("ListActionExecutions")
        .action_execution_details()
        .iter()
        .filter(|d| d.action_name() == Some(action))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_links_token_every_page_is_refused() {
    let stack = stack();
    let console = Console::start(stack);
    for path in ["/", "/pipelines/x", "/static/console.js"] {
        assert_eq!(
            status_of(&format!("{}{path}", console.base), None),
            401,
            "{path}"
        );
    }
    let forged = format!(
        "pipewright_console_{}=abc",
        console.base.rsplit(':').next().unwrap()
    );
    assert_eq!(status_of(&format!("{}/", console.base), Some(&forged)), 401);
    assert_eq!(
        status_of(&format!("{}/?token=0123", console.base), None),
        401
    );
    // The right token once: a session cookie and the page without the token.
    assert_eq!(status_of(&console.url, None), 303);
    // A second time: refused (it works once).
    assert_eq!(status_of(&console.url, None), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_watches_approves_retries_and_stops_from_the_console() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = source_bucket(&c).await;
    let approval = json!({"name": "Approve", "actions": [{
        "name": "Release",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
    }]});
    // SUPERSEDED: CodePipeline rolls back stages of SUPERSEDED and QUEUED pipelines only.
    let release = PipelineBuilder::new(stack, "console-release")
        .mode("SUPERSEDED")
        .s3_source(&bucket)
        .commands("Build", &["echo built"])
        .stage(approval)
        .commands("Deploy", &["echo deployed"])
        .create(stack);
    let broken = PipelineBuilder::new(stack, "console-broken")
        .s3_source(&bucket)
        .commands("Build", &["echo 'compiling'", "exit 3"])
        .create(stack);
    let slow = PipelineBuilder::new(stack, "console-slow")
        .s3_source(&bucket)
        .commands("Build", &["sleep 300"])
        .create(stack);
    let console = Console::start(stack);
    let mut b = Browser::launch();

    // The link opens the pipelines list (its token gone from the address), every pipeline there.
    b.goto(&console.url);
    assert_eq!(b.eval("location.pathname + location.search"), json!("/"));
    // Every pipeline, page after page (50 a page).
    let mut missing: Vec<&String> = vec![&release, &broken, &slow];
    loop {
        missing.retain(|name| {
            let row = format!("document.querySelector('tr[data-pipeline=\"{name}\"]') !== null");
            b.eval(&row) != json!(true)
        });
        if missing.is_empty()
            || b.eval("document.querySelector('a[rel=next]') === null") == json!(true)
        {
            break;
        }
        b.click("a[rel=next]");
    }
    assert!(missing.is_empty(), "{missing:?} not listed:\n{}", b.text());

    // A pipeline: Release change, then the stages move to the approval without a reload.
    b.goto(&format!("{}/pipelines/{release}", console.base));
    b.click("form[action$='/release'] button");
    assert!(b.text().contains("Started execution"), "{}", b.text());
    b.eval("window.__sameDocument = true");
    b.wait_for(
        "the approval to wait with its buttons",
        "document.querySelector('[data-action=\"Release\"] form.approval button[value=\"Approved\"]') !== null",
        SHOWN,
    );
    assert_eq!(
        b.eval("window.__sameDocument === true"),
        json!(true),
        "the page reloaded"
    );
    assert_eq!(
        b.eval(
            "document.querySelector('[data-stage=\"Build\"] .stage-status .badge').dataset.status"
        ),
        json!("Succeeded")
    );
    shot(&mut b, "pipeline-approval");
    // Approve with a comment, by clicking.
    b.eval("document.querySelector('[data-action=\"Release\"] textarea').value = 'ship it, from the console'");
    b.click("[data-action=\"Release\"] button[value=\"Approved\"]");
    assert!(b.text().contains("Approved Release"), "{}", b.text());
    b.eval("window.__sameDocument = true");
    b.wait_for(
        "Deploy to succeed on the page",
        "(document.querySelector('[data-stage=\"Deploy\"] .stage-status .badge') || {dataset: {}}).dataset.status === 'Succeeded'",
        SHOWN,
    );
    assert_eq!(
        b.eval("window.__sameDocument === true"),
        json!(true),
        "the page reloaded"
    );
    let state = state_of(&c, &release).await;
    let approved = state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("Approve"))
        .and_then(|s| s.action_states().first())
        .and_then(|a| a.latest_execution())
        .expect("the approval ran");
    assert_eq!(approved.summary(), Some("ship it, from the console"));
    assert_eq!(approved.status().map(|s| s.as_str()), Some("Succeeded"));
    shot(&mut b, "pipeline");

    // Its execution page: the timeline has a bar for every action.
    let id = b
        .eval("document.querySelector('[data-stage=\"Deploy\"] .stage-status a').textContent")
        .as_str()
        .expect("the execution's link")
        .to_string();
    b.click("[data-stage=\"Deploy\"] .stage-status a");
    assert!(b.eval("location.pathname").as_str().unwrap().contains(&id));
    assert_eq!(
        b.eval("document.querySelectorAll('.timeline .bar').length"),
        json!(4)
    );
    assert!(b.text().contains("ship it, from the console"));
    shot(&mut b, "execution");
    b.dark(true);
    shot(&mut b, "execution-dark");
    b.dark(false);

    // The transition into Build, disabled with a reason from the page, then enabled again.
    b.goto(&format!("{}/pipelines/{release}", console.base));
    b.eval("document.querySelector('[data-transition=\"Build\"] details').open = true");
    b.eval("document.querySelector('[data-transition=\"Build\"] input[name=reason]').value = 'freeze for the demo'");
    b.click("[data-transition=\"Build\"] details button[type=submit]");
    assert!(
        b.text().contains("Disabled the transition into Build"),
        "{}",
        b.text()
    );
    let transition =
        |state: &aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput| {
            state
                .stage_states()
                .iter()
                .find(|s| s.stage_name() == Some("Build"))
                .and_then(|s| s.inbound_transition_state())
                .map(|t| (t.enabled(), t.disabled_reason().map(str::to_string)))
        };
    let state = state_of(&c, &release).await;
    assert_eq!(
        transition(&state),
        Some((false, Some("freeze for the demo".to_string())))
    );
    assert!(b.text().contains("freeze for the demo"));
    b.click("[data-transition=\"Build\"] form button[type=submit]");
    assert!(
        b.text().contains("Enabled the transition into Build"),
        "{}",
        b.text()
    );
    let state = state_of(&c, &release).await;
    assert_eq!(transition(&state).map(|t| t.0), Some(true));

    // Roll Deploy back to the first execution, once a second one has succeeded.
    let second = start(&c, &release).await;
    approve_when_asked(&c, &release, "Approve", "Release").await;
    let (status, summary) = wait_for(&c, &release, &second).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    b.goto(&format!("{}/pipelines/{release}", console.base));
    b.eval("document.querySelector('[data-stage=\"Deploy\"] details.rollback').open = true");
    b.eval(&format!(
        "(() => {{ const s = document.querySelector('[data-stage=\"Deploy\"] select[name=target]'); \
         s.value = [...s.options].find(o => o.value.startsWith({})).value; }})()",
        json!(id)
    ));
    b.click("[data-stage=\"Deploy\"] details.rollback button[type=submit]");
    let text = b.text();
    assert!(text.contains("Rolling Deploy back to execution"), "{text}");
    let rollback = eventually(
        "the rollback execution",
        Duration::from_millis(500),
        || async {
            c.codepipeline
                .list_pipeline_executions()
                .pipeline_name(&release)
                .send()
                .await
                .expect("ListPipelineExecutions")
                .pipeline_execution_summaries()
                .iter()
                .find(|e| e.execution_type().map(|t| t.as_str()) == Some("ROLLBACK"))
                .and_then(|e| e.pipeline_execution_id().map(str::to_string))
        },
    )
    .await;
    let (status, summary) = wait_for(&c, &release, &rollback).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    // A failed stage, retried from its column.
    let failed = start(&c, &broken).await;
    let (status, summary) = wait_for(&c, &broken, &failed).await;
    assert_eq!(status, PipelineExecutionStatus::Failed, "{summary:?}");
    b.goto(&format!(
        "{}/pipelines/{broken}/executions/{failed}",
        console.base
    ));
    let text = b.text();
    assert!(
        text.contains("exit code 3") || text.contains("exit status 3"),
        "the failure shows:\n{text}"
    );
    shot(&mut b, "execution-failed");
    b.goto(&format!("{}/pipelines/{broken}", console.base));
    b.click("[data-stage=\"Build\"] form[action$='/retry'] button.primary");
    assert!(b.text().contains("Retrying stage Build"), "{}", b.text());
    eventually(
        "the retry to run Build again",
        Duration::from_millis(500),
        || async { (runs_of(&c, &broken, &failed, "Build").await >= 2).then_some(()) },
    )
    .await;

    // A running execution, stopped from the page.
    let running = start(&c, &slow).await;
    b.goto(&format!("{}/pipelines/{slow}", console.base));
    b.wait_for(
        "the running execution with its Stop buttons",
        &format!("document.querySelector('[data-execution=\"{running}\"] button[value=\"true\"]') !== null"),
        SHOWN,
    );
    b.click(&format!(
        "[data-execution=\"{running}\"] button[value=\"true\"]"
    ));
    assert!(b.text().contains("Stopping execution"), "{}", b.text());
    let (status, _) = wait_for(&c, &slow, &running).await;
    assert_eq!(status, PipelineExecutionStatus::Stopped);

    // History, filtered to failures.
    b.goto(&format!(
        "{}/pipelines/{broken}/history?status=Failed",
        console.base
    ));
    assert!(b.text().contains(&failed[..8]), "{}", b.text());
    shot(&mut b, "history");

    // The control plane's error, as a message.
    b.goto(&format!("{}/pipelines/no-such-pipeline-here", console.base));
    let text = b.text();
    assert!(text.contains("PipelineNotFoundException"), "{text}");
    b.goto(&format!("{}/", console.base));
    shot(&mut b, "pipelines");
}
