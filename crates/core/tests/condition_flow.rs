//! Stage conditions over in-memory ports: each result (FAIL, SKIP, ROLLBACK, RETRY) and each rule
//! kind, as the state machine would drive them.

mod support;

use pipewright_core::engine::{ActionOutcome, Engine, ExecutionIds};
use pipewright_core::execution::{
    ActionExecutionStatus, ExecutionType, FailureType, PipelineExecutionStatus,
    StageExecutionStatus,
};
use serde_json::{json, Value};
use support::World;

const A: &str = "aaaaaaaa-0000-4000-8000-0000000000c1";
const B: &str = "bbbbbbbb-0000-4000-8000-0000000000c2";

fn rule(name: &str, provider: &str, configuration: Value) -> Value {
    json!({"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"}, "configuration": configuration})
}

/// Source → Build (Commands, with `build` conditions) → Deploy (Commands), QUEUED, variable
/// `Env` (default `dev`).
fn pipeline(build: Value) -> Value {
    let mut build_stage = json!({"name": "Build", "actions": [{
        "name": "Build",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": ["true"],
        "inputArtifacts": [{"name": "Src"}]
    }]});
    for (k, v) in build.as_object().unwrap() {
        build_stage[k] = v.clone();
    }
    json!({
        "name": "guarded",
        "roleArn": "arn:aws:iam::123456789012:role/guarded",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "variables": [{"name": "Env", "defaultValue": "dev"}],
        "stages": [
            support::s3_source_stage("Src"),
            build_stage,
            {"name": "Deploy", "actions": [{
                "name": "Deploy",
                "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["true"],
                "inputArtifacts": [{"name": "Src"}]
            }]}
        ]
    })
}

/// Conditions at `site` (`beforeEntry`, `onSuccess`) with one Commands rule `name` running
/// `commands` on the artifact `Src`, result FAIL.
fn commands_rule_at(site: &str, name: &str, commands: &[&str]) -> Value {
    json!({site: {"conditions": [{"result": "FAIL", "rules": [{
        "name": name,
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": commands,
        "inputArtifacts": [{"name": "Src"}]
    }]}]}})
}

fn ids(id: &str) -> ExecutionIds {
    support::ids("guarded", id)
}

/// Enter Build and run its action (succeeding or not) through the group check; returns
/// whether the group failed. `None` when the enter token was not answered with success.
async fn build(
    engine: &Engine<'_>,
    world: &World,
    id: &str,
    tag: &str,
    succeed: bool,
) -> Option<bool> {
    let token = format!("t-enter-{tag}");
    engine
        .enter_stage(&ids(id), "Build", &token, 20.0)
        .await
        .unwrap();
    if world.answer(&token) != Some(Ok(json!({}))) {
        return None;
    }
    let prepared = engine
        .begin_action(
            &ids(id),
            "Build",
            "Build",
            &format!("b-{tag}-{id}"),
            &format!("t-b-{tag}"),
            21.0,
        )
        .await
        .unwrap()
        .unwrap();
    let mut outcome = ActionOutcome::failed(FailureType::JobFailed, "broke");
    if succeed {
        outcome.status = ActionExecutionStatus::Succeeded;
        outcome.result = Default::default();
    }
    engine
        .complete_action(&prepared.record, outcome, 22.0)
        .await
        .unwrap();
    Some(
        engine
            .check_group(&ids(id), "Build", 1, 23.0)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn a_failing_before_entry_condition_fails_the_stage_without_running_it() {
    let world = World::with_pipeline(pipeline(json!({"beforeEntry": {"conditions": [{
        "result": "FAIL",
        "rules": [rule("OnlyProd", "VariableCheck", json!({"Variable": "#{variables.Env}", "Operator": "EQ", "Value": "prod"}))]
    }]}}))).await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, None);
    assert_eq!(
        world.answer("t-enter-1"),
        Some(Err("Pipewright.ConditionFailed".into()))
    );
    // The state machine's catch → the stage fails.
    engine
        .leave_stage(&ids(A), "Build", false, 24.0)
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    let summary = snapshot.execution.status_summary.clone().unwrap();
    assert!(
        summary.contains("OnlyProd") && summary.contains("\"dev\" is not EQ \"prod\""),
        "{summary}"
    );
    let stage = snapshot.stage("Build").unwrap();
    assert_eq!(stage.status, StageExecutionStatus::Failed);
    assert_eq!(stage.conditions[0].status, "Failed");
    assert!(
        snapshot.latest_action("Build", "Build").is_none(),
        "nothing ran"
    );
    let state = world
        .api("GetPipelineState", json!({"name": "guarded"}))
        .await
        .unwrap();
    let before = &state["stageStates"][1]["beforeEntryConditionState"];
    assert_eq!(before["latestExecution"]["status"], "Failed", "{state}");
    assert_eq!(
        before["conditionStates"][0]["ruleStates"][0]["ruleName"],
        "OnlyProd"
    );
    assert_eq!(
        before["conditionStates"][0]["ruleStates"][0]["latestExecution"]["status"],
        "Failed"
    );
}

#[tokio::test]
async fn a_skip_result_skips_the_stage_and_the_execution_goes_on() {
    let world = World::with_pipeline(pipeline(json!({"beforeEntry": {"conditions": [{
        "result": "SKIP",
        "rules": [rule("OnlyProd", "VariableCheck", json!({"Variable": "#{variables.Env}", "Operator": "EQ", "Value": "prod"}))]
    }]}}))).await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, None);
    assert_eq!(
        world.answer("t-enter-1"),
        Some(Err("Pipewright.Skipped".into()))
    );
    // The catch goes to the stage's leave task, then to Deploy.
    engine
        .leave_stage(&ids(A), "Build", true, 24.0)
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.stage("Build").unwrap().status,
        StageExecutionStatus::Skipped
    );
    // The skip is reported: one SKIPPED stage event, and nothing started in it.
    let build_events: Vec<_> = world
        .events()
        .into_iter()
        .filter(|e| e.0 == "Stage Execution State Change" && e.1 == "Build")
        .collect();
    assert_eq!(
        build_events,
        vec![(
            "Stage Execution State Change".into(),
            "Build".into(),
            "SKIPPED".into()
        )]
    );
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy", 25.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-deploy"), Some(Ok(json!({}))));
    // The lock went back: another execution enters Build.
    world.run_source(&engine, "guarded", B, "v2").await;
    assert_eq!(build(&engine, &world, B, "2", true).await, None);
    assert_eq!(
        world.answer("t-enter-2"),
        Some(Err("Pipewright.Skipped".into()))
    );
    // ListRuleExecutions shows each run of the rule, newest first, as botocore reads it.
    let listed = world
        .api("ListRuleExecutions", json!({"pipelineName": "guarded"}))
        .await
        .unwrap();
    support::model::check_shape("ListRuleExecutionsOutput", &listed, "ListRuleExecutions");
    let runs = listed["ruleExecutionDetails"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{listed:#}");
    assert_eq!(runs[0]["pipelineExecutionId"], B);
    assert_eq!(runs[1]["pipelineExecutionId"], A);
    let run = &runs[1];
    assert_eq!(run["ruleName"], "OnlyProd");
    assert_eq!(run["stageName"], "Build");
    assert_eq!(run["status"], "Failed");
    assert_eq!(run["input"]["ruleTypeId"]["provider"], "VariableCheck");
    assert_eq!(run["input"]["configuration"]["Operator"], "EQ");
    assert!(
        run["output"]["executionResult"]["externalExecutionSummary"]
            .as_str()
            .is_some_and(|s| s.contains("dev")),
        "{run:#}"
    );
    assert_ne!(runs[0]["ruleExecutionId"], runs[1]["ruleExecutionId"]);
    // One execution's, one per page.
    let page = world
        .api(
            "ListRuleExecutions",
            json!({"pipelineName": "guarded", "filter": {"pipelineExecutionId": A}, "maxResults": 1}),
        )
        .await
        .unwrap();
    assert_eq!(page["ruleExecutionDetails"], json!([run.clone()]));
    // Its only rule run fit the page: no next page.
    assert!(page.get("nextToken").is_none(), "{page:#}");
    let both = world
        .api(
            "ListRuleExecutions",
            json!({"pipelineName": "guarded", "maxResults": 1}),
        )
        .await
        .unwrap();
    assert_eq!(both["ruleExecutionDetails"], json!([runs[0].clone()]));
    let rest = world
        .api(
            "ListRuleExecutions",
            json!({"pipelineName": "guarded", "maxResults": 1, "nextToken": both["nextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(rest["ruleExecutionDetails"], json!([run.clone()]));
    let missing = world
        .api("ListRuleExecutions", json!({"pipelineName": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(missing.kind, "PipelineNotFoundException");
}

#[tokio::test]
async fn passing_rules_let_the_stage_run() {
    let world = World::with_pipeline(pipeline(json!({"beforeEntry": {"conditions": [{
        "rules": [
            rule("Always", "DeploymentWindow", json!({"Cron": "cron(* * ? * * *)"})),
            rule("Gate", "LambdaInvoke", json!({"FunctionName": "gate", "UserParameters": "env=#{variables.Env}"})),
            rule("Quiet", "CloudWatchAlarm", json!({"AlarmName": "errors"}))
        ]
    }]}}))).await;
    world
        .checks
        .functions
        .lock()
        .unwrap()
        .insert("gate".into(), json!({"status": "SUCCEEDED"}));
    world
        .checks
        .alarms
        .lock()
        .unwrap()
        .insert("errors".into(), "OK".into());
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, Some(false));
    let invoked = world.checks.invoked.lock().unwrap().clone();
    assert_eq!(invoked[0].0, "gate");
    assert_eq!(invoked[0].1["userParameters"], "env=dev");
    assert_eq!(invoked[0].1["pipelineExecutionId"], A);
    let stage = world.snapshot(A).await.stage("Build").unwrap().clone();
    assert_eq!(stage.conditions.len(), 1);
    assert_eq!(stage.conditions[0].status, "Succeeded");
    assert_eq!(stage.conditions[0].rules.len(), 3);
}

#[tokio::test]
async fn an_alarm_after_success_fails_the_stage_and_rolls_it_back() {
    let world = World::with_pipeline(pipeline(json!({"onSuccess": {"conditions": [{
        "result": "ROLLBACK",
        "rules": [rule("Healthy", "CloudWatchAlarm", json!({"AlarmName": "errors"}))]
    }]}})))
    .await;
    world
        .checks
        .alarms
        .lock()
        .unwrap()
        .insert("errors".into(), "OK".into());
    let engine = world.engine();
    // A good run first: the rollback target.
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "a", true).await, Some(false));
    engine
        .leave_stage(&ids(A), "Build", true, 24.0)
        .await
        .unwrap();
    engine
        .enter_stage(&ids(A), "Deploy", "t-da", 25.0)
        .await
        .unwrap();
    engine
        .leave_stage(&ids(A), "Deploy", true, 26.0)
        .await
        .unwrap();
    engine.finish_execution(&ids(A), 27.0).await.unwrap();
    // Then the alarm goes off after B's Build.
    world
        .checks
        .alarms
        .lock()
        .unwrap()
        .insert("errors".into(), "ALARM".into());
    world.run_source(&engine, "guarded", B, "v2").await;
    assert_eq!(build(&engine, &world, B, "b", true).await, Some(false));
    engine
        .leave_stage(&ids(B), "Build", true, 28.0)
        .await
        .unwrap();
    let b = world.snapshot(B).await;
    assert_eq!(b.execution.status, PipelineExecutionStatus::Failed);
    assert!(b
        .execution
        .status_summary
        .clone()
        .unwrap()
        .contains("alarm errors is in ALARM"));
    assert_eq!(
        b.stage("Build").unwrap().status,
        StageExecutionStatus::Failed
    );
    // B does not go on; a rollback of Build to A started.
    engine
        .enter_stage(&ids(B), "Deploy", "t-db", 29.0)
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-db"),
        Some(Err("Pipewright.Finished".into()))
    );
    let started = world.machines.started.lock().unwrap().clone();
    let (_, name, input) = started.last().unwrap();
    assert_eq!(input["startStage"], "Build");
    let rollback = world.snapshot(name).await;
    assert_eq!(rollback.execution.execution_type, ExecutionType::Rollback);
    assert_eq!(
        rollback.execution.trigger.trigger_type.as_str(),
        "AutomatedRollback"
    );
    assert_eq!(
        rollback
            .execution
            .rollback
            .unwrap()
            .target_pipeline_execution_id,
        A
    );
    // The same leave again (a retried task) starts nothing twice.
    let before = world.machines.started.lock().unwrap().len();
    let _ = engine.leave_stage(&ids(B), "Build", true, 30.0).await;
    assert_eq!(world.machines.started.lock().unwrap().len(), before);
}

/// The pipeline with Build retried once, automatically, when it fails.
async fn retrying() -> World {
    World::with_pipeline(pipeline(json!({"onFailure": {
        "result": "RETRY",
        "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}
    }})))
    .await
}

#[tokio::test]
async fn on_failure_retry_retries_the_stage_once() {
    let world = retrying().await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", false).await, Some(true));
    engine
        .leave_stage(&ids(A), "Build", false, 24.0)
        .await
        .unwrap();
    // Retried at once: the same execution runs again from Build.
    let snapshot = world.snapshot(A).await;
    assert_eq!(
        snapshot.execution.status,
        PipelineExecutionStatus::InProgress
    );
    let started = world.machines.started.lock().unwrap().clone();
    assert_eq!(started.last().unwrap().1, format!("{A}-retry-2"));
    // It never showed as failed in between: no pipeline FAILED event, and the stage resumes.
    assert!(!world
        .events()
        .iter()
        .any(|e| e.0 == "Pipeline Execution State Change" && e.2 == "FAILED"));
    // It keeps the stage while it retries; the second failure is final.
    assert_eq!(build(&engine, &world, A, "2", false).await, Some(true));
    assert!(world.events().contains(&(
        "Stage Execution State Change".into(),
        "Build".into(),
        "RESUMED".into()
    )));
    engine
        .leave_stage(&ids(A), "Build", false, 25.0)
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    assert_eq!(snapshot.stage("Build").unwrap().attempt, 2);
    assert_eq!(world.machines.started.lock().unwrap().len(), 2);
    // GetPipelineState counts the automatic retry.
    let state = world
        .api("GetPipelineState", json!({"name": "guarded"}))
        .await
        .unwrap();
    assert_eq!(
        state["stageStates"][1]["retryStageMetadata"],
        json!({"autoStageRetryAttempt": 1, "manualStageRetryAttempt": 0,
               "latestRetryTrigger": "AutomatedStageRetry"})
    );
}

/// Step Functions retries a leave whose first delivery already started the automatic retry (its
/// answer was lost): the repeat comes from the replaced run and changes nothing — the retry's
/// new attempt is not ended, no second retry starts, no event is published twice.
#[tokio::test]
async fn a_repeated_leave_from_the_run_a_retry_replaced_does_nothing() {
    let world = retrying().await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    let first_run = world
        .snapshot(A)
        .await
        .execution
        .state_machine_execution_arn
        .expect("a run");
    assert_eq!(build(&engine, &world, A, "1", false).await, Some(true));
    engine
        .leave_stage_of_run(
            &ids(A),
            "Build",
            false,
            Some(&first_run),
            &Default::default(),
            24.0,
        )
        .await
        .unwrap();
    let retried = world.snapshot(A).await;
    let new_run = retried
        .execution
        .state_machine_execution_arn
        .clone()
        .unwrap();
    assert_ne!(new_run, first_run);
    let events = world.events().len();
    let started = world.machines.started.lock().unwrap().len();

    // The repeat, from the first run.
    engine
        .leave_stage_of_run(
            &ids(A),
            "Build",
            false,
            Some(&first_run),
            &Default::default(),
            24.5,
        )
        .await
        .unwrap();
    let after = world.snapshot(A).await;
    assert_eq!(after.execution.status, PipelineExecutionStatus::InProgress);
    assert_eq!(
        after.stage("Build").unwrap().status,
        retried.stage("Build").unwrap().status
    );
    assert_eq!(after.stage("Build").unwrap().attempt, 2);
    assert_eq!(world.events().len(), events, "{:#?}", world.events());
    assert_eq!(world.machines.started.lock().unwrap().len(), started);

    // The new run's own leave still counts.
    assert_eq!(build(&engine, &world, A, "2", false).await, Some(true));
    engine
        .leave_stage_of_run(
            &ids(A),
            "Build",
            false,
            Some(&new_run),
            &Default::default(),
            25.0,
        )
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
}

fn override_body(id: &str, kind: &str) -> Value {
    json!({"pipelineName": "guarded", "stageName": "Build", "pipelineExecutionId": id, "conditionType": kind})
}

#[tokio::test]
async fn overriding_a_failed_entry_condition_lets_the_execution_enter() {
    let world = World::with_pipeline(pipeline(json!({"beforeEntry": {"conditions": [{
        "rules": [rule("OnlyProd", "VariableCheck", json!({"Variable": "#{variables.Env}", "Operator": "EQ", "Value": "prod"}))]
    }]}}))).await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, None);
    engine
        .leave_stage(&ids(A), "Build", false, 24.0)
        .await
        .unwrap();
    let err = world
        .api("OverrideStageCondition", override_body(A, "ON_SUCCESS"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ConditionNotOverridableException");
    let err = world
        .api("OverrideStageCondition", override_body(A, "ON_FAILURE"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    assert_eq!(
        world
            .api("OverrideStageCondition", override_body(A, "BEFORE_ENTRY"))
            .await
            .unwrap(),
        json!({})
    );
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::InProgress
    );
    let started = world.machines.started.lock().unwrap().clone();
    assert_eq!(started.last().unwrap().2["startStage"], "Build");
    // The state machine enters Build: the condition is not checked again.
    assert_eq!(build(&engine, &world, A, "2", true).await, Some(false));
    let snapshot = world.snapshot(A).await;
    let first = snapshot
        .stages
        .iter()
        .find(|s| s.stage_name == "Build" && s.attempt == 1)
        .unwrap();
    assert_eq!(first.conditions[0].status, "Overridden");
    assert!(first.conditions[0].summary.contains(support::CALLER));
}

#[tokio::test]
async fn overriding_a_failed_success_condition_moves_on_to_the_next_stage() {
    let world = World::with_pipeline(pipeline(json!({"onSuccess": {"conditions": [{
        "rules": [rule("Healthy", "CloudWatchAlarm", json!({"AlarmName": "errors"}))]
    }]}})))
    .await;
    world
        .checks
        .alarms
        .lock()
        .unwrap()
        .insert("errors".into(), "ALARM".into());
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, Some(false));
    engine
        .leave_stage(&ids(A), "Build", true, 24.0)
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
    world
        .api("OverrideStageCondition", override_body(A, "ON_SUCCESS"))
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(
        snapshot.execution.status,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Succeeded
    );
    let started = world.machines.started.lock().unwrap().clone();
    assert_eq!(started.last().unwrap().2["startStage"], "Deploy");
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy", 30.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-deploy"), Some(Ok(json!({}))));
}

/// A Commands rule of onSuccess: prepared as the Commands action it runs as (its commands, its
/// input artifacts where they are, the pipeline's role); what its task found decides the stage,
/// and a rule whose task never answered fails saying so.
#[tokio::test]
async fn work_rules_are_prepared_as_actions_and_their_results_decide_the_stage() {
    use pipewright_core::conditions::{work_rule_key, ConditionKind, WorkRuleResult};
    let world = World::with_pipeline(pipeline(commands_rule_at(
        "onSuccess",
        "Smoke",
        &["test \"#{variables.Env}\" = dev", "exit 1"],
    )))
    .await;
    let engine = world.engine();
    for (id, tag, found) in [
        (
            A,
            "1",
            Some(WorkRuleResult {
                passed: false,
                summary: "the commands failed: exit 1".into(),
            }),
        ),
        (B, "2", None),
    ] {
        world
            .run_source(&engine, "guarded", id, &format!("v{tag}"))
            .await;
        assert_eq!(build(&engine, &world, id, tag, true).await, Some(false));
        let rules = engine
            .prepare_work_rules(&ids(id), "Build", ConditionKind::OnSuccess, None, 23.5)
            .await
            .unwrap();
        assert_eq!(rules.len(), 1);
        let key = work_rule_key("Build", ConditionKind::OnSuccess, "Smoke");
        assert_eq!(rules[0].key, key);
        let prepared = rules[0].prepared.as_ref().expect("runnable");
        assert_eq!(prepared.declaration.action_type_id.provider, "Commands");
        assert_eq!(prepared.commands, ["test \"dev\" = dev", "exit 1"]);
        assert_eq!(prepared.inputs.len(), 1);
        assert_eq!(prepared.inputs[0].name, "Src");
        assert!(prepared.outputs.is_empty());
        assert!(prepared.role_arn.is_some());
        // Nothing is recorded for it.
        assert!(world
            .snapshot(id)
            .await
            .actions
            .iter()
            .all(|a| a.action_name != "Smoke"));

        let work = found.iter().map(|f| (key.clone(), f.clone())).collect();
        engine
            .leave_stage_of_run(&ids(id), "Build", true, None, &work, 24.0)
            .await
            .unwrap();
        let snapshot = world.snapshot(id).await;
        assert_eq!(
            snapshot.stage("Build").unwrap().status,
            StageExecutionStatus::Failed
        );
        let summary = snapshot
            .execution
            .status_summary
            .clone()
            .unwrap_or_default();
        let expected = if found.is_some() {
            "the commands failed: exit 1"
        } else {
            "did not finish"
        };
        assert!(
            summary.contains("onSuccess")
                && summary.contains("Smoke")
                && summary.contains(expected),
            "{summary}"
        );
    }
}

/// A Commands rule of beforeEntry: the execution is admitted without checking, its runRules
/// task runs, and checkEntry decides with what it found (once: a repeat answers the same).
#[tokio::test]
async fn before_entry_work_rules_are_checked_once_they_ran() {
    use pipewright_core::conditions::{work_rule_key, ConditionKind, WorkRuleResult};
    let world = World::with_pipeline(pipeline(commands_rule_at(
        "beforeEntry",
        "Ready",
        &["./ready.sh"],
    )))
    .await;
    let engine = world.engine();
    let key = work_rule_key("Build", ConditionKind::BeforeEntry, "Ready");
    for (id, tag, passed) in [(A, "1", false), (B, "2", true)] {
        world
            .run_source(&engine, "guarded", id, &format!("v{tag}"))
            .await;
        let token = format!("t-enter-{tag}");
        engine
            .enter_stage(&ids(id), "Build", &token, 20.0)
            .await
            .unwrap();
        // Admitted: the rules run in the execution's own next task.
        assert_eq!(world.answer(&token), Some(Ok(json!({}))));
        let rules = engine
            .prepare_work_rules(&ids(id), "Build", ConditionKind::BeforeEntry, None, 20.5)
            .await
            .unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].key, key);
        let work = [(
            key.clone(),
            WorkRuleResult {
                passed,
                summary: format!("ready: {passed}"),
            },
        )]
        .into_iter()
        .collect();
        let refused = engine
            .check_entry(&ids(id), "Build", &work, 21.0)
            .await
            .unwrap();
        assert_eq!(refused, !passed);
        // Delivered again (even without the results): the same answer.
        assert_eq!(
            engine
                .check_entry(&ids(id), "Build", &Default::default(), 21.5)
                .await
                .unwrap(),
            !passed
        );
        let stage = world.snapshot(id).await.stage("Build").unwrap().clone();
        let run = stage
            .conditions
            .iter()
            .find(|c| c.kind == ConditionKind::BeforeEntry)
            .unwrap();
        assert_eq!(run.rules[0].summary, format!("ready: {passed}"));
        if !passed {
            // The state machine goes to the failed stage's leave.
            engine
                .leave_stage(&ids(id), "Build", false, 22.0)
                .await
                .unwrap();
            let snapshot = world.snapshot(id).await;
            assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
            assert!(
                snapshot
                    .execution
                    .status_summary
                    .clone()
                    .unwrap_or_default()
                    .contains("Ready"),
                "{:?}",
                snapshot.execution.status_summary
            );
        }
    }
}

/// Work rules run only when their result decides something: not for a run a retry replaced,
/// not once the execution is stopping, not for onFailure after a beforeEntry condition failed
/// the stage.
#[tokio::test]
async fn work_rules_run_only_when_their_result_is_read() {
    use pipewright_core::conditions::ConditionKind;
    let world =
        World::with_pipeline(pipeline(commands_rule_at("onSuccess", "Smoke", &["true"]))).await;
    let engine = world.engine();
    world.run_source(&engine, "guarded", A, "v1").await;
    assert_eq!(build(&engine, &world, A, "1", true).await, Some(false));
    let current = world
        .snapshot(A)
        .await
        .execution
        .state_machine_execution_arn
        .expect("a recorded run");
    let prepare = |run: Option<String>| {
        let engine = &engine;
        async move {
            engine
                .prepare_work_rules(
                    &ids(A),
                    "Build",
                    ConditionKind::OnSuccess,
                    run.as_deref(),
                    23.5,
                )
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(prepare(Some(current.clone())).await, 1);
    assert_eq!(prepare(None).await, 1);
    assert_eq!(
        prepare(Some(format!("{current}-replaced"))).await,
        0,
        "a run a retry replaced runs nothing"
    );
    world
        .api(
            "StopPipelineExecution",
            json!({"pipelineName": "guarded", "pipelineExecutionId": A, "reason": "enough"}),
        )
        .await
        .unwrap();
    assert_eq!(
        prepare(Some(current)).await,
        0,
        "a stopping execution checks no condition"
    );
}

/// A listing of rule runs over a long history with none reads a bounded number of executions
/// per call and pages on, never repeating or losing one.
#[tokio::test]
async fn rule_listings_read_a_bounded_history_per_call() {
    use pipewright_core::engine::ExecutionStore;
    let world = World::with_pipeline(pipeline(json!({}))).await;
    let template = {
        let engine = world.engine();
        world.run_source(&engine, "guarded", A, "v1").await;
        world.snapshot(A).await.execution
    };
    for n in 0..450u32 {
        let mut execution = template.clone();
        execution.pipeline_execution_id = format!("{n:08x}-0000-4000-8000-000000000000");
        execution.start_time = 100.0 + f64::from(n);
        world
            .executions
            .create_execution(&execution, None, &[])
            .await
            .unwrap();
    }
    let mut token: Option<Value> = None;
    let mut calls = 0;
    loop {
        let mut body = json!({"pipelineName": "guarded"});
        if let Some(t) = &token {
            body["nextToken"] = t.clone();
        }
        let page = world.api("ListRuleExecutions", body).await.unwrap();
        calls += 1;
        assert_eq!(page["ruleExecutionDetails"], json!([]));
        match page.get("nextToken") {
            Some(t) => token = Some(t.clone()),
            None => break,
        }
        assert!(calls < 10, "the listing does not end");
    }
    assert_eq!(calls, 3, "451 executions, at most 200 read per call");
}
