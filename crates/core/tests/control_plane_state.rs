//! GetPipelineState and ListActionExecutions through the control plane, with executions driven
//! through the engine over in-memory ports. Every response is checked against botocore's shapes
//! (`tests/model/codepipeline-state-shapes.json`, see `support::model`).

mod support;

use pipewright_core::control_plane::ApiError;
use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ActionOutcome, ExecutionIds, ExecutionStore, PreparedAction};
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{
    ActionExecutionResult, ExecutionTrigger, ExecutionType, FailureType, PipelineExecution,
    PipelineExecutionStatus, SourceRevision, StageExecutionStatus,
};
use pipewright_core::store::PipelineStore;
use serde_json::{json, Value};
use support::model::check_shape;

const PIPELINE: &str = "state-app";
const OTHER: &str = "other-app";

/// The S3 source's page (GetPipelineState's `entityUrl`).
const FETCH_URL: &str =
    "https://us-east-1.console.aws.amazon.com/s3/buckets/src?region=us-east-1&prefix=app.zip";

/// Source (S3) → Review (manual approval) → Build (two Commands actions in one group).
fn declaration(name: &str) -> Value {
    let commands = |action: &str, extra: Value| {
        let mut a = json!({
            "name": action,
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "runOrder": 1,
            "commands": [format!("echo {action}")],
            "inputArtifacts": [{"name": "Src"}],
        });
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };
    json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "PARALLEL",
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Fetch",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "runOrder": 1,
                "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}],
                "namespace": "SourceVariables"
            }]},
            {"name": "Review", "actions": [{
                "name": "Approve",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "runOrder": 1
            }]},
            {"name": "Build", "actions": [
                commands("Compile", json!({"roleArn": "arn:aws:iam::123456789012:role/compile"})),
                commands("Lint", json!({}))
            ]}
        ]
    })
}

/// The shared in-memory world (tests/support) holding [`PIPELINE`] and [`OTHER`] (created at 1,
/// updated at 2); every answer is checked against botocore's shapes.
struct World(support::World);

impl std::ops::Deref for World {
    type Target = support::World;
    fn deref(&self) -> &support::World {
        &self.0
    }
}

impl World {
    async fn new() -> Self {
        let world = support::World::default();
        for name in [PIPELINE, OTHER] {
            world.add_pipeline(declaration(name)).await;
            // As if updated once since creation, without a new version.
            let mut record = world.pipelines.get(name, None).await.unwrap().unwrap();
            record.updated = 2.0;
            world.pipelines.delete(name).await.unwrap();
            world.pipelines.create(&record).await.unwrap();
        }
        World(world)
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, ApiError> {
        let out = self.0.api(op, body).await;
        if let Ok(out) = &out {
            check_shape(&format!("{op}Output"), out, op);
        }
        out
    }

    async fn state(&self) -> Value {
        self.call("GetPipelineState", json!({ "name": PIPELINE }))
            .await
            .unwrap()
    }

    /// An execution of `pipeline` started at `now` (as StartPipelineExecution writes it).
    async fn start_of(&self, pipeline: &str, id: &str, now: f64) {
        let execution = PipelineExecution {
            pipeline_name: pipeline.into(),
            pipeline_version: 1,
            pipeline_execution_id: id.into(),
            status: PipelineExecutionStatus::InProgress,
            status_summary: None,
            trigger: ExecutionTrigger {
                trigger_type: TriggerType::StartPipelineExecution,
                trigger_detail: "test".into(),
            },
            variables: vec![],
            source_revisions: vec![],
            source_revision_overrides: vec![],
            execution_mode: ExecutionMode::Parallel,
            execution_type: ExecutionType::Standard,
            start_time: now,
            last_update_time: now,
            state_machine_execution_arn: None,
            stop_reason: None,
            rollback: None,
        };
        self.executions
            .create_execution(&execution, None, &[])
            .await
            .unwrap();
    }

    async fn start(&self, id: &str, now: f64) {
        self.start_of(PIPELINE, id, now).await;
    }

    async fn enter(&self, id: &str, stage: &str, now: f64) {
        self.engine()
            .enter_stage(&ids(id), stage, &format!("enter-{id}-{stage}-{now}"), now)
            .await
            .unwrap();
    }

    async fn leave(&self, id: &str, stage: &str, succeeded: bool, now: f64) {
        self.engine()
            .leave_stage(&ids(id), stage, succeeded, now)
            .await
            .unwrap();
    }

    async fn begin(&self, id: &str, stage: &str, action: &str, run: &str, now: f64) -> Run {
        self.engine()
            .begin_action(
                &ids(id),
                stage,
                action,
                run,
                &format!("task-token-{run}"),
                now,
            )
            .await
            .unwrap()
            .expect("the action is prepared")
    }

    async fn complete(&self, run: &Run, outcome: ActionOutcome, now: f64) {
        let _ = self
            .engine()
            .complete_action(&run.record, outcome, now)
            .await
            .unwrap();
    }

    /// A whole Source stage: Fetch succeeds with revision `v-<run>`.
    async fn run_source(&self, id: &str, run: &str, now: f64) {
        self.enter(id, "Source", now).await;
        let fetch = self.begin(id, "Source", "Fetch", run, now + 1.0).await;
        self.complete(&fetch, fetched(&fetch, &format!("v-{run}")), now + 2.0)
            .await;
        self.leave(id, "Source", true, now + 3.0).await;
    }
}

type Run = PreparedAction;

fn ids(id: &str) -> ExecutionIds {
    support::ids(PIPELINE, id)
}

fn succeeded(run: &Run) -> ActionOutcome {
    let mut outcome = support::success();
    outcome.output_artifacts = run
        .outputs
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.s3_location.version_id = Some(format!("ver-{}", o.name));
            o
        })
        .collect();
    outcome
}

/// The source action fetched `revision`.
fn fetched(run: &Run, revision: &str) -> ActionOutcome {
    let mut outcome = succeeded(run);
    outcome.result = ActionExecutionResult {
        external_execution_id: Some(revision.into()),
        external_execution_summary: Some("app.zip".into()),
        external_execution_url: Some(format!("https://console.example/{revision}")),
        error_details: None,
    };
    outcome.output_variables = [("VersionId".to_string(), revision.to_string())].into();
    outcome.source_revision = Some(SourceRevision {
        action_name: "Fetch".into(),
        revision_id: Some(revision.into()),
        revision_summary: Some("app.zip".into()),
        revision_url: Some(format!("https://console.example/{revision}")),
        revision_change_id: None,
    });
    outcome
}

fn exec_id(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

fn stage<'v>(state: &'v Value, name: &str) -> &'v Value {
    state["stageStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stageName"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {state:#}"))
}

fn action<'v>(state: &'v Value, stage_name: &str, name: &str) -> &'v Value {
    stage(state, stage_name)["actionStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actionName"] == name)
        .unwrap_or_else(|| panic!("no action {name} in {state:#}"))
}

// ---------------------------------------------------------------------- model check

#[test]
fn the_shape_check_catches_foreign_members() {
    let result = std::panic::catch_unwind(|| {
        check_shape(
            "ListActionExecutionsOutput",
            &json!({"actionExecutionDetails": [{"attempt": 1}]}),
            "x",
        )
    });
    assert!(result.is_err());
    let result = std::panic::catch_unwind(|| {
        check_shape(
            "GetPipelineStateOutput",
            &json!({"stageStates": [{"latestExecution": {"pipelineExecutionId": "e", "status": "Running"}}]}),
            "x",
        )
    });
    assert!(result.is_err());
}

// ---------------------------------------------------------------------- GetPipelineState

#[tokio::test]
async fn a_pipeline_that_never_ran_shows_its_stages_and_actions_only() {
    let world = World::new().await;
    let state = world.state().await;
    assert_eq!(
        state,
        json!({
            "pipelineName": PIPELINE,
            "pipelineVersion": 1,
            "created": 1.0,
            "updated": 2.0,
            "stageStates": [
                {"stageName": "Source",
                 "actionStates": [{"actionName": "Fetch", "entityUrl": FETCH_URL}]},
                {"stageName": "Review", "inboundTransitionState": {"enabled": true},
                 "actionStates": [{"actionName": "Approve"}]},
                {"stageName": "Build", "inboundTransitionState": {"enabled": true},
                 "actionStates": [{"actionName": "Compile"}, {"actionName": "Lint"}]},
            ]
        })
    );
}

#[tokio::test]
async fn the_state_follows_a_run_through_success_approval_and_failure() {
    let world = World::new().await;
    let e1 = exec_id(1);
    world.start(&e1, 10.0).await;
    world.enter(&e1, "Source", 11.0).await;
    let fetch = world.begin(&e1, "Source", "Fetch", "run-fetch", 12.0).await;

    // During the run.
    let state = world.state().await;
    assert_eq!(
        stage(&state, "Source")["latestExecution"],
        json!({"pipelineExecutionId": e1, "status": "InProgress", "type": "STANDARD"})
    );
    assert_eq!(
        action(&state, "Source", "Fetch"),
        &json!({"actionName": "Fetch", "entityUrl": FETCH_URL, "latestExecution": {
            "actionExecutionId": "run-fetch", "status": "InProgress",
            "lastStatusChange": 12.0, "lastUpdatedBy": "pipewright"
        }})
    );
    assert!(stage(&state, "Review").get("latestExecution").is_none());
    assert_eq!(
        stage(&state, "Build")["actionStates"],
        json!([{"actionName": "Compile"}, {"actionName": "Lint"}])
    );

    // After success.
    world.complete(&fetch, fetched(&fetch, "v-one"), 13.0).await;
    world.leave(&e1, "Source", true, 14.0).await;
    let state = world.state().await;
    assert_eq!(
        stage(&state, "Source")["latestExecution"]["status"],
        "Succeeded"
    );
    assert_eq!(
        action(&state, "Source", "Fetch"),
        &json!({"actionName": "Fetch", "entityUrl": FETCH_URL,
            "currentRevision": {"revisionId": "v-one", "revisionChangeId": "v-one", "created": 13.0},
            "revisionUrl": "https://console.example/v-one",
            "latestExecution": {
                "actionExecutionId": "run-fetch", "status": "Succeeded", "summary": "app.zip",
                "lastStatusChange": 13.0, "lastUpdatedBy": "pipewright",
                "externalExecutionId": "v-one",
                "externalExecutionUrl": "https://console.example/v-one"
        }})
    );

    // An approval waiting shows its token: the approval action's execution id.
    world.enter(&e1, "Review", 15.0).await;
    let approve = world
        .begin(&e1, "Review", "Approve", "approval-run-1", 16.0)
        .await;
    let state = world.state().await;
    assert_eq!(
        stage(&state, "Review")["latestExecution"]["status"],
        "InProgress"
    );
    let waiting = &action(&state, "Review", "Approve")["latestExecution"];
    assert_eq!(waiting["status"], "InProgress");
    assert_eq!(waiting["token"], "approval-run-1");
    assert_eq!(waiting["token"], waiting["actionExecutionId"]);
    // Never the task token.
    assert!(!state.to_string().contains("task-token"), "{state}");
    world.complete(&approve, succeeded(&approve), 17.0).await;
    world.leave(&e1, "Review", true, 17.5).await;
    let state = world.state().await;
    let decided = &action(&state, "Review", "Approve")["latestExecution"];
    assert_eq!(decided["status"], "Succeeded");
    assert!(decided.get("token").is_none(), "{decided}");

    // After a failure.
    world.enter(&e1, "Build", 18.0).await;
    let compile = world
        .begin(&e1, "Build", "Compile", "run-compile", 19.0)
        .await;
    let lint = world.begin(&e1, "Build", "Lint", "run-lint", 19.0).await;
    world
        .complete(
            &compile,
            ActionOutcome::failed(
                FailureType::JobFailed,
                "exit code 2: make: *** [all] Error 2",
            ),
            20.0,
        )
        .await;
    world.complete(&lint, succeeded(&lint), 20.5).await;
    world.leave(&e1, "Build", false, 21.0).await;
    let state = world.state().await;
    assert_eq!(
        stage(&state, "Build")["latestExecution"],
        json!({"pipelineExecutionId": e1, "status": "Failed", "type": "STANDARD"})
    );
    assert_eq!(
        action(&state, "Build", "Compile")["latestExecution"],
        json!({
            "actionExecutionId": "run-compile", "status": "Failed", "lastStatusChange": 20.0,
            "lastUpdatedBy": "pipewright",
            "errorDetails": {"code": "JobFailed", "message": "exit code 2: make: *** [all] Error 2"}
        })
    );
    let lint_state = &action(&state, "Build", "Lint")["latestExecution"];
    assert_eq!(lint_state["status"], "Succeeded");
    assert!(lint_state.get("errorDetails").is_none());
    // The earlier stages still show their latest execution.
    assert_eq!(
        stage(&state, "Source")["latestExecution"]["status"],
        "Succeeded"
    );
}

#[tokio::test]
async fn a_stage_shows_the_last_execution_to_enter_it_even_when_an_older_one_finishes_later() {
    let world = World::new().await;
    let (older, newer) = (exec_id(1), exec_id(2));
    world.start(&older, 10.0).await;
    world.start(&newer, 20.0).await;
    world.enter(&older, "Source", 11.0).await;
    let old_fetch = world
        .begin(&older, "Source", "Fetch", "old-fetch", 12.0)
        .await;
    world.enter(&newer, "Source", 21.0).await;
    // The older execution finishes Source after the newer one entered it.
    world
        .complete(&old_fetch, fetched(&old_fetch, "v-old"), 30.0)
        .await;
    world.leave(&older, "Source", true, 31.0).await;
    world.enter(&older, "Review", 32.0).await;

    let state = world.state().await;
    assert_eq!(
        stage(&state, "Source")["latestExecution"],
        json!({"pipelineExecutionId": newer, "status": "InProgress", "type": "STANDARD"})
    );
    // The action has not run in the stage's latest execution.
    assert_eq!(
        action(&state, "Source", "Fetch"),
        &json!({"actionName": "Fetch", "entityUrl": FETCH_URL})
    );
    // Another stage's latest execution is the older one.
    assert_eq!(
        stage(&state, "Review")["latestExecution"]["pipelineExecutionId"],
        json!(older)
    );

    let mut pointers = world
        .executions
        .latest_stage_executions(PIPELINE)
        .await
        .unwrap();
    pointers.sort_by(|a, b| a.stage_name.cmp(&b.stage_name));
    let named: Vec<(&str, &str, StageExecutionStatus)> = pointers
        .iter()
        .map(|p| {
            (
                p.stage_name.as_str(),
                p.pipeline_execution_id.as_str(),
                p.status,
            )
        })
        .collect();
    assert_eq!(
        named,
        vec![
            ("Review", older.as_str(), StageExecutionStatus::InProgress),
            ("Source", newer.as_str(), StageExecutionStatus::InProgress),
        ]
    );
    assert!(world
        .executions
        .latest_stage_executions(OTHER)
        .await
        .unwrap()
        .is_empty());

    // The newer one's own updates move its pointer.
    world.leave(&newer, "Source", false, 40.0).await;
    let state = world.state().await;
    assert_eq!(
        stage(&state, "Source")["latestExecution"],
        json!({"pipelineExecutionId": newer, "status": "Failed", "type": "STANDARD"})
    );
}

#[tokio::test]
async fn get_pipeline_state_refuses_bad_names_and_unknown_pipelines() {
    let world = World::new().await;
    let err = world
        .call("GetPipelineState", json!({"name": "missing"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineNotFoundException");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "bad name!"}),
    ] {
        let err = world.call("GetPipelineState", bad).await.unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(err.message.starts_with("name:"), "{}", err.message);
    }
    let err = world.call("GetPipelineState", json!({})).await.unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    assert!(err.message.contains("name"), "{}", err.message);
    let err = world
        .call("GetPipelineState", json!({"name": PIPELINE, "version": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
}

// ---------------------------------------------------------------------- ListActionExecutions

/// Three executions: e1 through Build (5 actions), e2 Source only (1), e3 Build running (Source
/// done, 1 action) — 7 actions.
async fn three_executions(world: &World) -> (String, String, String) {
    let (e1, e2, e3) = (exec_id(1), exec_id(2), exec_id(3));
    world.start(&e1, 10.0).await;
    world.run_source(&e1, "e1-fetch", 11.0).await;
    world.enter(&e1, "Review", 15.0).await;
    let approve = world
        .begin(&e1, "Review", "Approve", "e1-approve", 16.0)
        .await;
    world.complete(&approve, succeeded(&approve), 17.0).await;
    world.leave(&e1, "Review", true, 17.5).await;
    world.enter(&e1, "Build", 18.0).await;
    let compile = world
        .begin(&e1, "Build", "Compile", "e1-compile", 19.0)
        .await;
    let lint = world.begin(&e1, "Build", "Lint", "e1-lint", 19.0).await;
    world
        .complete(
            &compile,
            ActionOutcome::failed(FailureType::JobFailed, "exit code 2"),
            20.0,
        )
        .await;
    world.complete(&lint, succeeded(&lint), 20.5).await;
    world.leave(&e1, "Build", false, 21.0).await;
    // A retry of Build: the execution runs again (as RetryStageExecution makes it), a second
    // attempt of the stage, a second run of Compile.
    let mut resumed = world
        .executions
        .snapshot(&e1)
        .await
        .unwrap()
        .unwrap()
        .execution;
    resumed.status = PipelineExecutionStatus::InProgress;
    world
        .executions
        .put_execution(&resumed, &[PipelineExecutionStatus::Failed], &[])
        .await
        .unwrap();
    world.enter(&e1, "Build", 24.0).await;
    let retry = world
        .begin(&e1, "Build", "Compile", "e1-compile-2", 25.0)
        .await;
    world.complete(&retry, succeeded(&retry), 26.0).await;

    world.start(&e2, 30.0).await;
    world.run_source(&e2, "e2-fetch", 31.0).await;

    world.start(&e3, 40.0).await;
    world.run_source(&e3, "e3-fetch", 41.0).await;
    (e1, e2, e3)
}

fn run_ids(page: &Value) -> Vec<String> {
    page["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["actionExecutionId"].as_str().unwrap().to_string())
        .collect()
}

/// Every page of a listing with `request`, `max` at a time.
async fn all_pages(world: &World, request: Value, max: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut token: Option<Value> = None;
    for _ in 0..100 {
        let mut req = request.clone();
        req["maxResults"] = json!(max);
        if let Some(t) = &token {
            req["nextToken"] = t.clone();
        }
        let page = world.call("ListActionExecutions", req).await.unwrap();
        let ids = run_ids(&page);
        assert!(ids.len() <= max as usize, "page of {} > {max}", ids.len());
        seen.extend(ids);
        match page.get("nextToken") {
            Some(t) => {
                assert!(t.as_str().unwrap().len() <= 2048);
                token = Some(t.clone());
            }
            None => return seen,
        }
    }
    panic!("pagination does not end");
}

#[tokio::test]
async fn action_executions_of_one_execution_have_codepipelines_shape() {
    let world = World::new().await;
    let (e1, e2, _) = three_executions(&world).await;
    let out = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": e1}}),
        )
        .await
        .unwrap();
    assert_eq!(
        run_ids(&out),
        vec![
            "e1-compile-2",
            "e1-lint",
            "e1-compile",
            "e1-approve",
            "e1-fetch"
        ],
        "newest first"
    );
    assert!(out.get("nextToken").is_none());
    let details = out["actionExecutionDetails"].as_array().unwrap();
    let fetch = &details[4];
    assert_eq!(
        fetch,
        &json!({
            "pipelineExecutionId": e1,
            "actionExecutionId": "e1-fetch",
            "pipelineVersion": 1,
            "stageName": "Source",
            "actionName": "Fetch",
            "startTime": 12.0,
            "lastUpdateTime": 13.0,
            "updatedBy": "pipewright",
            "status": "Succeeded",
            "input": {
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
                "resolvedConfiguration": {"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
                "region": "us-east-1",
                "inputArtifacts": [],
                "namespace": "SourceVariables"
            },
            "output": {
                "outputArtifacts": [{"name": "Src", "s3location": {"bucket": "artifacts", "key": "state-app/Src/e1-fetch.zip"}}],
                "executionResult": {
                    "externalExecutionId": "v-e1-fetch",
                    "externalExecutionSummary": "app.zip",
                    "externalExecutionUrl": "https://console.example/v-e1-fetch"
                },
                "outputVariables": {"VersionId": "v-e1-fetch"}
            }
        })
    );
    let compile = &details[2];
    assert_eq!(compile["status"], "Failed");
    assert_eq!(
        compile["input"]["roleArn"],
        "arn:aws:iam::123456789012:role/compile"
    );
    assert_eq!(
        compile["input"]["inputArtifacts"],
        json!([{"name": "Src", "s3location": {"bucket": "artifacts", "key": "state-app/Src/e1-fetch.zip"}}])
    );
    assert_eq!(
        compile["output"],
        json!({"outputArtifacts": [], "executionResult": {"errorDetails": {"code": "JobFailed", "message": "exit code 2"}}, "outputVariables": {}})
    );
    assert!(details[1]["input"].get("roleArn").is_none());
    let text = out.to_string();
    for secret in ["task-token", "taskToken", "logTail", "attempt", "versionId"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    let out = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": e2}}),
        )
        .await
        .unwrap();
    assert_eq!(run_ids(&out), vec!["e2-fetch"]);

    for max in 1..=5 {
        let paged = all_pages(
            &world,
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": e1}}),
            max,
        )
        .await;
        assert_eq!(
            paged,
            vec![
                "e1-compile-2",
                "e1-lint",
                "e1-compile",
                "e1-approve",
                "e1-fetch"
            ],
            "maxResults {max}"
        );
    }
}

#[tokio::test]
async fn action_executions_of_a_pipeline_come_newest_first_each_exactly_once_across_pages() {
    let world = World::new().await;
    three_executions(&world).await;
    // Another pipeline's actions are not listed.
    world.start_of(OTHER, &exec_id(9), 50.0).await;

    let all = world
        .call("ListActionExecutions", json!({"pipelineName": PIPELINE}))
        .await
        .unwrap();
    let expected = vec![
        "e3-fetch",
        "e2-fetch",
        "e1-compile-2",
        "e1-lint",
        "e1-compile",
        "e1-approve",
        "e1-fetch",
    ];
    assert_eq!(run_ids(&all), expected);
    assert!(all.get("nextToken").is_none());
    for max in 1..=8 {
        let paged = all_pages(&world, json!({"pipelineName": PIPELINE}), max).await;
        assert_eq!(paged, expected, "maxResults {max}");
    }
    // No token when the page holds exactly what is left.
    let exact = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "maxResults": 7}),
        )
        .await
        .unwrap();
    assert!(exact.get("nextToken").is_none());
    let empty = world
        .call("ListActionExecutions", json!({"pipelineName": OTHER}))
        .await
        .unwrap();
    assert_eq!(empty, json!({"actionExecutionDetails": []}));
}

#[tokio::test]
async fn a_listing_resumes_after_its_cursor_while_executions_move_on() {
    let world = World::new().await;
    let (e1, e2) = (exec_id(1), exec_id(2));
    world.start(&e1, 10.0).await;
    world.run_source(&e1, "e1-fetch", 11.0).await;
    world.enter(&e1, "Review", 15.0).await;
    world
        .begin(&e1, "Review", "Approve", "e1-approve", 16.0)
        .await;
    world.start(&e2, 20.0).await;
    world.run_source(&e2, "e2-fetch", 21.0).await;
    world.enter(&e2, "Review", 25.0).await;
    world
        .begin(&e2, "Review", "Approve", "e2-approve", 26.0)
        .await;

    let first = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "maxResults": 1}),
        )
        .await
        .unwrap();
    assert_eq!(run_ids(&first), vec!["e2-approve"]);
    let token = first["nextToken"].clone();

    // Meanwhile: a new execution runs an action, and e2 starts another one.
    let e3 = exec_id(3);
    world.start(&e3, 30.0).await;
    world.run_source(&e3, "e3-fetch", 31.0).await;
    world.enter(&e2, "Build", 35.0).await;
    world.begin(&e2, "Build", "Lint", "e2-lint", 36.0).await;

    let second = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "maxResults": 2, "nextToken": token}),
        )
        .await
        .unwrap();
    assert_eq!(run_ids(&second), vec!["e2-fetch", "e1-approve"]);
    let third = world
        .call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "maxResults": 2, "nextToken": second["nextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(run_ids(&third), vec!["e1-fetch"]);
    assert!(third.get("nextToken").is_none());
}

#[tokio::test]
async fn list_action_executions_refuses_bad_requests() {
    let world = World::new().await;
    let (e1, e2, _) = three_executions(&world).await;
    let other = exec_id(9);
    world.start_of(OTHER, &other, 50.0).await;
    let list = |body: Value| world.call("ListActionExecutions", body);

    let page = list(json!({"pipelineName": PIPELINE, "maxResults": 1}))
        .await
        .unwrap();
    let token = page["nextToken"].as_str().unwrap().to_string();
    let filtered = list(json!({"pipelineName": PIPELINE, "maxResults": 1,
        "filter": {"pipelineExecutionId": e1}}))
    .await
    .unwrap();
    let filtered_token = filtered["nextToken"].as_str().unwrap().to_string();

    let cases = [
        (
            json!({"pipelineName": PIPELINE, "nextToken": "not a token"}),
            "InvalidNextTokenException",
        ),
        (
            json!({"pipelineName": PIPELINE, "nextToken": "eyJ4IjoxfQ"}),
            "InvalidNextTokenException",
        ),
        (
            json!({"pipelineName": PIPELINE, "nextToken": ""}),
            "InvalidNextTokenException",
        ),
        // A token of another pipeline, of another filter.
        (
            json!({"pipelineName": OTHER, "nextToken": token}),
            "InvalidNextTokenException",
        ),
        (
            json!({"pipelineName": PIPELINE, "nextToken": filtered_token,
                "filter": {"pipelineExecutionId": e2}}),
            "InvalidNextTokenException",
        ),
        (
            json!({"pipelineName": PIPELINE, "nextToken": token,
                "filter": {"pipelineExecutionId": e1}}),
            "InvalidNextTokenException",
        ),
        (
            json!({"pipelineName": "missing"}),
            "PipelineNotFoundException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": exec_id(7)}}),
            "PipelineExecutionNotFoundException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": other}}),
            "PipelineExecutionNotFoundException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": "nope"}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"latestInPipelineExecution": {
                "pipelineExecutionId": e1, "startTimeRange": "Newest"}}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"latestInPipelineExecution": {
                "startTimeRange": "Latest"}}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"pipelineExecutionId": e2,
                "latestInPipelineExecution": {"pipelineExecutionId": e1, "startTimeRange": "All"}}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"stageName": "Build"}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "maxResults": 0}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "maxResults": 101}),
            "ValidationException",
        ),
        (json!({"pipelineName": "bad name!"}), "ValidationException"),
        (json!({}), "ValidationException"),
    ];
    for (body, kind) in cases {
        let err = list(body.clone()).await.unwrap_err();
        assert_eq!(err.kind, kind, "{body}: {err}");
    }
    // The tokens still work where they belong.
    let next = list(json!({"pipelineName": PIPELINE, "nextToken": token}))
        .await
        .unwrap();
    assert_eq!(run_ids(&next)[0], "e2-fetch");
    let next = list(
        json!({"pipelineName": PIPELINE, "nextToken": filtered_token,
        "filter": {"pipelineExecutionId": e1}}),
    )
    .await
    .unwrap();
    assert_eq!(run_ids(&next)[0], "e1-lint");
}

#[tokio::test]
async fn latest_in_pipeline_execution_lists_the_last_run_of_each_action_or_all_runs() {
    let world = World::new().await;
    let (e1, _, _) = three_executions(&world).await;
    let list = |range: &str| {
        world.call(
            "ListActionExecutions",
            json!({"pipelineName": PIPELINE, "filter": {"latestInPipelineExecution": {
                "pipelineExecutionId": e1, "startTimeRange": range}}}),
        )
    };
    // Build ran twice (a retry): Latest shows the second Compile only.
    assert_eq!(
        run_ids(&list("Latest").await.unwrap()),
        ["e1-compile-2", "e1-lint", "e1-approve", "e1-fetch"]
    );
    assert_eq!(
        run_ids(&list("All").await.unwrap()),
        [
            "e1-compile-2",
            "e1-lint",
            "e1-compile",
            "e1-approve",
            "e1-fetch"
        ]
    );
    // Pages of one, each run once.
    let paged = all_pages(
        &world,
        json!({"pipelineName": PIPELINE, "filter": {"latestInPipelineExecution": {
            "pipelineExecutionId": e1, "startTimeRange": "Latest"}}}),
        1,
    )
    .await;
    assert_eq!(paged, ["e1-compile-2", "e1-lint", "e1-approve", "e1-fetch"]);
}

#[tokio::test]
async fn get_pipeline_execution_names_the_revision_of_each_source_artifact() {
    let world = World::new().await;
    let (e1, e2, _) = three_executions(&world).await;
    let got = world
        .call(
            "GetPipelineExecution",
            json!({"pipelineName": PIPELINE, "pipelineExecutionId": e2}),
        )
        .await
        .unwrap();
    assert_eq!(
        got["pipelineExecution"]["artifactRevisions"],
        json!([{
            "name": "Src",
            "revisionId": "v-e2-fetch",
            "revisionChangeIdentifier": "ver-Src",
            "revisionSummary": "app.zip",
            "revisionUrl": "https://console.example/v-e2-fetch",
            "created": 33.0
        }])
    );
    let got = world
        .call(
            "GetPipelineExecution",
            json!({"pipelineName": PIPELINE, "pipelineExecutionId": e1}),
        )
        .await
        .unwrap();
    assert_eq!(
        got["pipelineExecution"]["artifactRevisions"][0]["revisionId"],
        "v-e1-fetch"
    );
}

#[tokio::test]
async fn list_pipeline_executions_filters_on_the_stages_they_succeeded_in() {
    let world = World::new().await;
    let (e1, e2, e3) = three_executions(&world).await;
    let ids_of = |page: &Value| -> Vec<String> {
        page["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pipelineExecutionId"].as_str().unwrap().to_string())
            .collect()
    };
    let filtered = |stage: &str, max: u32, token: Option<&str>| {
        let mut body = json!({"pipelineName": PIPELINE, "maxResults": max,
            "filter": {"succeededInStage": {"stageName": stage}}});
        if let Some(t) = token {
            body["nextToken"] = json!(t);
        }
        world.call("ListPipelineExecutions", body)
    };
    assert_eq!(
        ids_of(&filtered("Review", 100, None).await.unwrap()),
        std::slice::from_ref(&e1)
    );
    // Build failed, then its retry is still running: no success there yet.
    assert!(ids_of(&filtered("Build", 100, None).await.unwrap()).is_empty());
    assert!(ids_of(&filtered("Nowhere", 100, None).await.unwrap()).is_empty());
    // Page by page, newest first, each once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = filtered("Source", 1, token.as_deref()).await.unwrap();
        seen.extend(ids_of(&page));
        match page.get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(seen, [e3, e2, e1]);

    for (body, kind) in [
        (
            json!({"pipelineName": PIPELINE, "filter": {"succeededInStage": {}}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"succeededInStage": {"stageName": "bad name!"}}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "filter": {"stageName": "Build"}}),
            "ValidationException",
        ),
        (
            json!({"pipelineName": PIPELINE, "nextToken": "bm9wZQ",
                "filter": {"succeededInStage": {"stageName": "Source"}}}),
            "InvalidNextTokenException",
        ),
    ] {
        let err = world
            .call("ListPipelineExecutions", body.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind, kind, "{body}: {err}");
    }
}

#[tokio::test]
async fn a_filtered_listing_looks_at_a_bounded_number_of_executions_per_call() {
    let world = World::new().await;
    let (e1, e2, e3) = three_executions(&world).await;
    // 520 newer executions that never got past their start.
    for i in 0..520 {
        world.start(&exec_id(1000 + i), 100.0 + f64::from(i)).await;
    }
    let call = |token: Option<String>| {
        let mut body = json!({"pipelineName": PIPELINE,
            "filter": {"succeededInStage": {"stageName": "Source"}}});
        if let Some(t) = token {
            body["nextToken"] = json!(t);
        }
        world.call("ListPipelineExecutions", body)
    };
    // The first call looks at 500 and finds none: a short (empty) page and a token.
    let first = call(None).await.unwrap();
    assert_eq!(first["pipelineExecutionSummaries"], json!([]));
    let token = first["nextToken"].as_str().unwrap().to_string();
    let second = call(Some(token)).await.unwrap();
    let ids: Vec<&str> = second["pipelineExecutionSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pipelineExecutionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [e3.as_str(), e2.as_str(), e1.as_str()]);
    assert!(second.get("nextToken").is_none());
    // Unfiltered listings still refuse tokens they cannot have issued.
    for token in ["", &"x".repeat(2049)] {
        let err = world
            .call(
                "ListPipelineExecutions",
                json!({"pipelineName": PIPELINE, "nextToken": token}),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind, "InvalidNextTokenException");
    }
}
