//! Execution modes under real concurrency on the local stack: many executions started at once
//! on a three-stage pipeline whose middle stage is slow. The recorded stage executions must
//! satisfy the mode's rules (`crates/core/src/locks.rs`), every execution must end, and every
//! recorded transition must have gone out as exactly one event.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pipewright_e2e::pipelines::{
    api_call, clients, commands_action, drain_events, eventually, execution_records, source_bucket,
    start, subscribe, versioned_source, wait_until_ended, zip_of, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, Stack};
use serde_json::{json, Value};

/// Executions started at once per mode, as the issue asks.
const EXECUTIONS: usize = 30;
/// Executions started at once in PARALLEL mode, where all of them run their actions at once.
const PARALLEL_EXECUTIONS: usize = 30;

/// One test at a time in this binary: bursts of executions next to other tests overload the
/// local emulator (fakecloud 0.51 was seen to stop answering) without testing anything more.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

const STAGES: [&str; 3] = ["Source", "Build", "Deploy"];

async fn modes_pipeline(c: &Clients, stack: &Stack, mode: &str) -> String {
    let bucket = source_bucket(c).await;
    PipelineBuilder::new(stack, &format!("mode-{}", mode.to_ascii_lowercase()))
        .mode(mode)
        .s3_source(&bucket)
        .commands("Build", &["sleep 1"])
        .commands("Deploy", &["true"])
        .create(stack)
}

/// One execution's history: its final status and, per stage it entered, (start, end).
#[derive(Debug)]
struct History {
    id: String,
    status: String,
    started: f64,
    stages: BTreeMap<String, (f64, f64)>,
    actions: usize,
}

async fn histories(c: &Clients, stack: &Stack, name: &str, ids: &[String]) -> Vec<History> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut out = Vec::new();
    for id in ids {
        let (status, _) = wait_until_ended(c, name, id, deadline).await;
        let records = execution_records(c, stack, id).await;
        let mut stages = BTreeMap::new();
        let mut actions = 0;
        let mut started = 0.0;
        for (sk, record) in &records {
            if sk.starts_with("STAGE#") {
                stages.insert(
                    record["stageName"].as_str().unwrap().to_string(),
                    (
                        record["startTime"].as_f64().unwrap(),
                        record["lastUpdateTime"].as_f64().unwrap(),
                    ),
                );
            } else if sk.starts_with("ACTION#") {
                actions += 1;
            } else if sk == "EXECUTION" {
                started = record["startTime"].as_f64().unwrap();
            }
        }
        out.push(History {
            id: id.clone(),
            status: status.as_str().to_string(),
            started,
            stages,
            actions,
        });
    }
    out
}

/// Start [`EXECUTIONS`] executions at once, wait for all, and check what every mode promises:
/// each ends, each recorded transition went out as exactly one event. Returns the histories.
async fn run(mode: &str) -> Vec<History> {
    let executions = if mode == "PARALLEL" {
        PARALLEL_EXECUTIONS
    } else {
        EXECUTIONS
    };
    // PIPEWRIGHT_BURST=<n> runs bursts of n in every mode (for trying the emulator's limits).
    let executions = std::env::var("PIPEWRIGHT_BURST")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(executions);
    let stack = stack();
    let c = clients(stack).await;
    let name = modes_pipeline(&c, stack, mode).await;
    let queue = subscribe(&c, &name).await;
    let ids: Vec<String> =
        futures::future::join_all((0..executions).map(|_| start(&c, &name))).await;
    let histories = histories(&c, stack, &name, &ids).await;
    // Events go out at least once (the publisher and SQS may each deliver one twice under
    // load), each with a stable `detail.event-id`, by which consumers de-duplicate: so do we,
    // checking that a repeat is the same event.
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    let mut events = Vec::new();
    for event in drain_events(&c, &queue, Duration::from_secs(5)).await {
        let id = event["detail"]["event-id"]
            .as_str()
            .expect("detail.event-id")
            .to_string();
        match by_id.get(&id) {
            Some(first) => assert_eq!(first["detail"], event["detail"], "copies under {id} differ"),
            None => {
                by_id.insert(id, event.clone());
                events.push(event);
            }
        }
    }

    // Transitions recorded: pipeline STARTED + its end; per stage entered STARTED + end; per
    // action STARTED + end.
    let expected: usize = histories
        .iter()
        .map(|h| 2 + 2 * h.stages.len() + 2 * h.actions)
        .sum();
    let mut per_execution: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &events {
        *per_execution
            .entry(e["detail"]["execution-id"].as_str().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        events.len(),
        expected,
        "events per execution: {per_execution:?}; histories: {histories:#?}"
    );
    for h in &histories {
        let finals: Vec<&str> = events
            .iter()
            .filter(|e| {
                e["detail"]["execution-id"] == h.id.as_str()
                    && e["detail-type"] == "CodePipeline Pipeline Execution State Change"
                    && e["detail"]["state"] != "STARTED"
            })
            .map(|e| e["detail"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(finals, [h.status.to_ascii_uppercase().as_str()], "{}", h.id);
    }
    histories
}

/// No two executions were inside the same stage at once.
fn assert_one_at_a_time(histories: &[History]) {
    for stage in STAGES {
        let mut spans: Vec<(f64, f64, &str)> = histories
            .iter()
            .filter_map(|h| h.stages.get(stage).map(|(a, b)| (*a, *b, h.id.as_str())))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{stage}: {} (until {}) and {} (from {}) overlap",
                pair[0].2,
                pair[0].1,
                pair[1].2,
                pair[1].0
            );
        }
    }
}

/// The order in which executions entered `stage`.
fn entry_order<'h>(histories: &'h [History], stage: &str) -> Vec<&'h str> {
    let mut entered: Vec<(f64, &str)> = histories
        .iter()
        .filter_map(|h| h.stages.get(stage).map(|(a, _)| (*a, h.id.as_str())))
        .collect();
    entered.sort_by(|a, b| a.0.total_cmp(&b.0));
    entered.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn superseded_mode_runs_one_execution_per_stage_and_supersedes_only_waiters() {
    let _serial = one_at_a_time().await;
    let histories = run("SUPERSEDED").await;
    assert_one_at_a_time(&histories);
    let succeeded = histories.iter().filter(|h| h.status == "Succeeded").count();
    let superseded = histories
        .iter()
        .filter(|h| h.status == "Superseded")
        .count();
    assert_eq!(succeeded + superseded, histories.len(), "{histories:#?}");
    assert!(succeeded >= 1 && superseded >= 1, "{histories:#?}");
    for h in &histories {
        if h.status == "Superseded" {
            // Superseded while waiting: every stage it entered, it finished.
            assert!(h.stages.len() < STAGES.len(), "{h:?}");
        } else {
            assert_eq!(h.stages.len(), STAGES.len(), "{h:?}");
        }
    }
    // The newest execution is never overtaken.
    let newest = histories
        .iter()
        .max_by(|a, b| a.started.total_cmp(&b.started))
        .unwrap();
    assert_eq!(newest.status, "Succeeded", "{newest:?}");
    // Executions keep their order: whoever entered Deploy entered Build in the same order.
    let deploy = entry_order(&histories, "Deploy");
    let mut build = entry_order(&histories, "Build");
    build.retain(|id| deploy.contains(id));
    assert_eq!(build, deploy);
}

#[tokio::test]
async fn queued_mode_runs_every_execution_one_at_a_time_in_arrival_order() {
    let _serial = one_at_a_time().await;
    let histories = run("QUEUED").await;
    assert_one_at_a_time(&histories);
    assert!(
        histories.iter().all(|h| h.status == "Succeeded"),
        "{histories:#?}"
    );
    let source = entry_order(&histories, "Source");
    assert_eq!(entry_order(&histories, "Build"), source);
    assert_eq!(entry_order(&histories, "Deploy"), source);
}

#[tokio::test]
async fn parallel_mode_runs_executions_independently() {
    let _serial = one_at_a_time().await;
    let histories = run("PARALLEL").await;
    assert!(
        histories.iter().all(|h| h.status == "Succeeded"),
        "{histories:#?}"
    );
    // Without locks, executions share the slow stage.
    let mut spans: Vec<(f64, f64)> = histories.iter().map(|h| h.stages["Build"]).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        spans.windows(2).any(|p| p[1].0 < p[0].1),
        "no two executions were in Build at once: {spans:?}"
    );
}

// ---------------------------------------------------------------------- stopping

/// Source → Build (Commands `sleep #{variables.Sleep}`) → Deploy, QUEUED.
async fn sleepy_pipeline(c: &Clients, stack: &Stack) -> String {
    let bucket = source_bucket(c).await;
    PipelineBuilder::new(stack, "stop")
        .mode("QUEUED")
        .variable("Sleep", "4")
        .s3_source(&bucket)
        .commands("Build", &["sleep #{variables.Sleep}"])
        .commands("Deploy", &["true"])
        .create(stack)
}

async fn start_with_sleep(c: &Clients, name: &str, sleep: &str) -> String {
    c.codepipeline
        .start_pipeline_execution()
        .name(name)
        .variables(
            aws_sdk_codepipeline::types::PipelineVariable::builder()
                .name("Sleep")
                .value(sleep)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_string()
}

/// Wait until execution `id`'s `stage`/`action` is recorded InProgress.
async fn wait_until_running(c: &Clients, stack: &Stack, id: &str, stage: &str, action: &str) {
    let prefix = format!("ACTION#{stage}#{action}#");
    eventually(
        &format!("{stage}/{action} of {id} to run"),
        Duration::from_millis(300),
        || async {
            let records = execution_records(c, stack, id).await;
            records
                .iter()
                .any(|(sk, r)| sk.starts_with(&prefix) && r["status"] == "InProgress")
                .then_some(())
        },
    )
    .await
}

async fn stop(c: &Clients, name: &str, id: &str, abandon: bool) {
    c.codepipeline
        .stop_pipeline_execution()
        .pipeline_name(name)
        .pipeline_execution_id(id)
        .abandon(abandon)
        .reason("stopped by the test")
        .send()
        .await
        .expect("StopPipelineExecution");
}

fn record<'r>(records: &'r [(String, Value)], prefix: &str) -> Option<&'r Value> {
    records
        .iter()
        .find(|(sk, _)| sk.starts_with(prefix))
        .map(|(_, r)| r)
}

#[tokio::test]
async fn stop_and_wait_finishes_the_running_action_and_starts_nothing_else() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let name = sleepy_pipeline(&c, stack).await;
    let id = start_with_sleep(&c, &name, "4").await;
    wait_until_running(&c, stack, &id, "Build", "Build").await;
    stop(&c, &name, &id, false).await;
    let history = &histories(&c, stack, &name, std::slice::from_ref(&id)).await[0];
    assert_eq!(history.status, "Stopped");
    let records = execution_records(&c, stack, &id).await;
    assert_eq!(
        record(&records, "ACTION#Build#Build#").unwrap()["status"],
        "Succeeded"
    );
    assert_eq!(
        record(&records, "STAGE#Build#").unwrap()["status"],
        "Stopped"
    );
    assert!(
        record(&records, "STAGE#Deploy#").is_none(),
        "Deploy started"
    );
}

#[tokio::test]
async fn stop_and_abandon_ends_at_once_and_the_next_execution_takes_the_stage() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let name = sleepy_pipeline(&c, stack).await;
    let first = start_with_sleep(&c, &name, "60").await;
    wait_until_running(&c, stack, &first, "Build", "Build").await;
    let second = start_with_sleep(&c, &name, "0").await;
    let stopped_at = Instant::now();
    stop(&c, &name, &first, true).await;
    let histories = histories(&c, stack, &name, &[first.clone(), second.clone()]).await;
    assert_eq!(histories[0].status, "Stopped");
    assert_eq!(histories[1].status, "Succeeded", "{histories:#?}");
    // Well before the abandoned 60-second command could have finished.
    assert!(stopped_at.elapsed() < Duration::from_secs(50));
    let records = execution_records(&c, stack, &first).await;
    assert_eq!(
        record(&records, "ACTION#Build#Build#").unwrap()["status"],
        "Abandoned"
    );
    assert!(record(&records, "STAGE#Deploy#").is_none());
}

#[tokio::test]
async fn a_structure_update_cancels_running_and_waiting_executions_at_their_next_stage() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let name = sleepy_pipeline(&c, stack).await;
    let queue = subscribe(&c, &name).await;
    let inside = start_with_sleep(&c, &name, "6").await;
    wait_until_running(&c, stack, &inside, "Build", "Build").await;
    let waiting = start_with_sleep(&c, &name, "0").await;
    // QUEUED: the second one waits in front of Build (its Source done).
    let deadline = Instant::now() + Duration::from_secs(60);
    while record(
        &execution_records(&c, stack, &waiting).await,
        "STAGE#Source#",
    )
    .is_none_or(|r| r["status"] != "Succeeded")
    {
        assert!(Instant::now() < deadline, "{waiting} never left Source");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut declaration =
        api_call(stack, "GetPipeline", &json!({"name": name}))["pipeline"].clone();
    declaration["stages"][2]["name"] = json!("Release");
    declaration["stages"][2]["actions"][0]["name"] = json!("Release");
    api_call(stack, "UpdatePipeline", &json!({"pipeline": declaration}));

    let ended = histories(&c, stack, &name, &[inside.clone(), waiting.clone()]).await;
    assert_eq!(ended[0].status, "Cancelled", "{ended:#?}");
    assert_eq!(ended[1].status, "Cancelled", "{ended:#?}");
    // The one inside Build finished it; neither started another stage.
    let records = execution_records(&c, stack, &inside).await;
    assert_eq!(
        record(&records, "STAGE#Build#").unwrap()["status"],
        "Succeeded"
    );
    assert!(record(&records, "STAGE#Deploy#").is_none());
    assert!(record(
        &execution_records(&c, stack, &waiting).await,
        "STAGE#Build#"
    )
    .is_none());
    let got = c
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&inside)
        .send()
        .await
        .unwrap();
    let summary = got
        .pipeline_execution()
        .and_then(|e| e.status_summary())
        .unwrap_or_default()
        .to_string();
    assert!(
        summary.contains("pipeline structure was updated"),
        "{summary}"
    );
    let events = drain_events(&c, &queue, Duration::from_secs(5)).await;
    let canceled: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["detail-type"] == "CodePipeline Pipeline Execution State Change"
                && e["detail"]["state"] == "CANCELED"
        })
        .map(|e| e["detail"]["execution-id"].as_str().unwrap())
        .collect();
    assert_eq!(canceled.len(), 2, "{canceled:?}");
    assert!(canceled.contains(&inside.as_str()) && canceled.contains(&waiting.as_str()));
    // The new structure runs.
    let next = start_with_sleep(&c, &name, "0").await;
    let history = &histories(&c, stack, &name, std::slice::from_ref(&next)).await[0];
    assert_eq!(history.status, "Succeeded", "{history:?}");
    assert!(history.stages.contains_key("Release"), "{history:?}");
}

// ---------------------------------------------------------------------- retrying

#[tokio::test]
async fn retry_failed_actions_after_fixing_the_cause_and_refused_once_another_ran() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let pipeline = PipelineBuilder::new(stack, "retry");
    // The "fix": an object the Check action reads with its pipeline role (the commands run in
    // a sandbox of their own, which sees nothing of this machine).
    let bucket = source_bucket(&c).await;
    let marker = format!("{}.fixed", pipeline.name());
    let check = pipewright_e2e::pipelines::s3_object_exists_command(&bucket, &marker);
    let name = pipeline
        .mode("QUEUED")
        .s3_source(&bucket)
        .stage(json!({"name": "Build", "actions": [
            commands_action("Compile", &["echo compiled"]),
            commands_action("Check", &[&check])
        ]}))
        .stage(json!({"name": "Deploy", "actions": [commands_action("Ship", &["true"])]}))
        .create(stack);
    let first = start(&c, &name).await;
    assert_eq!(
        histories(&c, stack, &name, std::slice::from_ref(&first)).await[0].status,
        "Failed"
    );
    let second = start(&c, &name).await;
    assert_eq!(
        histories(&c, stack, &name, std::slice::from_ref(&second)).await[0].status,
        "Failed"
    );
    let retry = |id: String| {
        c.codepipeline
            .retry_stage_execution()
            .pipeline_name(&name)
            .stage_name("Build")
            .pipeline_execution_id(id)
            .retry_mode(aws_sdk_codepipeline::types::StageRetryMode::FailedActions)
            .send()
    };
    // The second execution has entered Build since: the first can no longer be retried there.
    let err = retry(first.clone()).await.unwrap_err();
    assert_eq!(
        aws_sdk_codepipeline::error::ProvideErrorMetadata::code(&err),
        Some("NotLatestPipelineExecutionException"),
        "{err:?}"
    );
    c.s3.put_object()
        .bucket(&bucket)
        .key(&marker)
        .body(b"fixed".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    retry(second.clone()).await.expect("RetryStageExecution");
    let history = &histories(&c, stack, &name, std::slice::from_ref(&second)).await[0];
    assert_eq!(history.status, "Succeeded", "{history:?}");
    let records = execution_records(&c, stack, &second).await;
    let compile: Vec<&Value> = records
        .iter()
        .filter(|(sk, _)| sk.starts_with("ACTION#Build#Compile#"))
        .map(|(_, r)| r)
        .collect();
    assert_eq!(compile.len(), 2, "one record per attempt");
    assert_eq!(
        compile[0]["logTail"], compile[1]["logTail"],
        "Compile kept its first run's result"
    );
    assert_eq!(
        record(&records, "ACTION#Build#Check#002").unwrap()["status"],
        "Succeeded"
    );
    assert_eq!(
        record(&records, "STAGE#Deploy#").unwrap()["status"],
        "Succeeded"
    );
}

// ---------------------------------------------------------------------- transitions

#[tokio::test]
async fn a_disabled_transition_holds_the_execution_until_it_is_enabled() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let name = modes_pipeline(&c, stack, "QUEUED").await;
    c.codepipeline
        .disable_stage_transition()
        .pipeline_name(&name)
        .stage_name("Build")
        .transition_type(aws_sdk_codepipeline::types::StageTransitionType::Inbound)
        .reason("change freeze")
        .send()
        .await
        .expect("DisableStageTransition");
    let id = start(&c, &name).await;
    // It waits in front of Build, as GetPipelineState shows.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = c
            .codepipeline
            .get_pipeline_state()
            .name(&name)
            .send()
            .await
            .expect("GetPipelineState");
        let build = &state.stage_states()[1];
        let transition = build.inbound_transition_state().unwrap();
        assert!(!transition.enabled());
        assert_eq!(transition.disabled_reason(), Some("change freeze"));
        if build
            .inbound_executions()
            .iter()
            .any(|e| e.pipeline_execution_id() == id.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{id} never reached Build");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let records = execution_records(&c, stack, &id).await;
    assert!(
        record(&records, "STAGE#Build#").is_none(),
        "held out of Build"
    );
    c.codepipeline
        .enable_stage_transition()
        .pipeline_name(&name)
        .stage_name("Build")
        .transition_type(aws_sdk_codepipeline::types::StageTransitionType::Inbound)
        .send()
        .await
        .expect("EnableStageTransition");
    let history = &histories(&c, stack, &name, std::slice::from_ref(&id)).await[0];
    assert_eq!(history.status, "Succeeded");
}

// ---------------------------------------------------------------------- rolling back

#[tokio::test]
async fn rollback_redeploys_what_an_earlier_success_deployed() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-src");
    let site = unique("pipewright-site");
    c.s3.create_bucket()
        .bucket(&site)
        .send()
        .await
        .expect("CreateBucket");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("README.md", "one\n")])).await;
    let mut build = commands_action("Build", &["mkdir -p out", "cp README.md out/index.txt"]);
    build["outputArtifacts"] = json!([{"name": "Site", "files": ["out/**/*"]}]);
    let name = PipelineBuilder::new(stack, "rollback")
        .mode("QUEUED")
        .s3_source(&bucket)
        .stage(json!({"name": "Build", "actions": [build]}))
        .stage(json!({"name": "Deploy", "actions": [{
            "name": "Publish",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": site, "Extract": "true"},
            "inputArtifacts": [{"name": "Site"}]
        }]}))
        .create(stack);
    let deployed = || async {
        let object =
            c.s3.get_object()
                .bucket(&site)
                .key("out/index.txt")
                .send()
                .await
                .expect("deployed file");
        String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap()
    };
    let first = start(&c, &name).await;
    assert_eq!(
        histories(&c, stack, &name, std::slice::from_ref(&first)).await[0].status,
        "Succeeded"
    );
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("README.md", "two\n")])).await;
    let second = start(&c, &name).await;
    assert_eq!(
        histories(&c, stack, &name, std::slice::from_ref(&second)).await[0].status,
        "Succeeded"
    );
    assert_eq!(deployed().await, "two\n");

    let rollback = c
        .codepipeline
        .rollback_stage()
        .pipeline_name(&name)
        .stage_name("Deploy")
        .target_pipeline_execution_id(&first)
        .send()
        .await
        .expect("RollbackStage")
        .pipeline_execution_id()
        .to_string();
    let history = &histories(&c, stack, &name, std::slice::from_ref(&rollback)).await[0];
    assert_eq!(history.status, "Succeeded", "{history:?}");
    assert_eq!(
        history.stages.keys().collect::<Vec<_>>(),
        ["Deploy"],
        "only Deploy ran"
    );
    assert_eq!(deployed().await, "one\n");
    let execution = c
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&rollback)
        .send()
        .await
        .unwrap();
    let execution = execution.pipeline_execution().unwrap();
    assert_eq!(
        execution.execution_type().map(|t| t.as_str()),
        Some("ROLLBACK")
    );
    assert_eq!(
        execution
            .rollback_metadata()
            .and_then(|m| m.rollback_target_pipeline_execution_id()),
        Some(first.as_str())
    );
    // The source stage cannot be rolled back.
    let err = c
        .codepipeline
        .rollback_stage()
        .pipeline_name(&name)
        .stage_name("Source")
        .target_pipeline_execution_id(&first)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_codepipeline::error::ProvideErrorMetadata::code(&err),
        Some("UnableToRollbackStageException")
    );
}

// ---------------------------------------------------------------------- stage conditions

#[tokio::test]
async fn stage_conditions_skip_fail_and_retry_on_the_local_stack() {
    let _serial = one_at_a_time().await;
    let stack = stack();
    let c = clients(stack).await;
    let alarm = unique("errors");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&c.sdk);
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .metric_name("Errors")
        .namespace("App")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("the test")
        .send()
        .await
        .expect("SetAlarmState");
    let rule = |name: &str, provider: &str, configuration: Value| json!({"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"}, "configuration": configuration});
    let name = PipelineBuilder::new(stack, "conditions")
        .mode("QUEUED")
        .variable("Mode", "skip-test")
        .variable("Fail", "no")
        .s3_source(&source_bucket(&c).await)
        .stage(json!({"name": "Test", "actions": [commands_action("Test", &["test #{variables.Fail} = no"])],
             "beforeEntry": {"conditions": [{"result": "SKIP", "rules": [
                 rule("NotSkipped", "VariableCheck", json!({"Variable": "#{variables.Mode}", "Operator": "NE", "Value": "skip-test"}))]}]},
             "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}}))
        .stage(json!({"name": "Deploy", "actions": [commands_action("Deploy", &["true"])],
             "onSuccess": {"conditions": [{"result": "FAIL", "rules": [
                 rule("Healthy", "CloudWatchAlarm", json!({"AlarmName": alarm}))]}]}}))
        .create(stack);
    let start_with = |mode: &'static str, fail: &'static str| {
        let (c, name) = (&c, &name);
        async move {
            let var = |k: &str, v: &str| {
                aws_sdk_codepipeline::types::PipelineVariable::builder()
                    .name(k)
                    .value(v)
                    .build()
                    .unwrap()
            };
            c.codepipeline
                .start_pipeline_execution()
                .name(name)
                .variables(var("Mode", mode))
                .variables(var("Fail", fail))
                .send()
                .await
                .expect("StartPipelineExecution")
                .pipeline_execution_id()
                .unwrap()
                .to_string()
        }
    };
    // Test is skipped; Deploy runs and then fails its onSuccess condition (the alarm).
    let skipped = start_with("skip-test", "no").await;
    let history = &histories(&c, stack, &name, std::slice::from_ref(&skipped)).await[0];
    assert_eq!(history.status, "Failed", "{history:?}");
    let records = execution_records(&c, stack, &skipped).await;
    assert_eq!(
        record(&records, "STAGE#Test#").unwrap()["status"],
        "Skipped"
    );
    assert!(
        record(&records, "ACTION#Test#").is_none(),
        "a skipped stage runs nothing"
    );
    assert_eq!(
        record(&records, "ACTION#Deploy#Deploy#").unwrap()["status"],
        "Succeeded"
    );
    let summary = c
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&skipped)
        .send()
        .await
        .unwrap()
        .pipeline_execution()
        .and_then(|e| e.status_summary().map(str::to_string))
        .unwrap_or_default();
    assert!(
        summary.contains(&format!("alarm {alarm} is in ALARM")),
        "{summary}"
    );

    // Test runs and fails: onFailure RETRY runs it once more, then the failure stands.
    let retried = start_with("run-test", "yes").await;
    let history = &histories(&c, stack, &name, std::slice::from_ref(&retried)).await[0];
    assert_eq!(history.status, "Failed", "{history:?}");
    let records = execution_records(&c, stack, &retried).await;
    let attempts = records
        .iter()
        .filter(|(sk, _)| sk.starts_with("ACTION#Test#Test#"))
        .count();
    assert_eq!(attempts, 2, "tried, then retried once");
    assert!(record(&records, "STAGE#Deploy#").is_none());
}
