//! `Commands` and `CodeBuild` rules of stage conditions on the local stack: a `runRules` task
//! of the action function runs them as the actions they would be (the commands in the runner, a
//! build of the project in the emulator's CodeBuild) — after the stage's actions for onSuccess,
//! once the execution holds the stage for beforeEntry — and the conditions are checked with
//! what they found.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use pipewright_e2e::pipelines::{
    clients, commands_action, s3_source_with, start, wait_for, PipelineBuilder,
};
use pipewright_e2e::stack;
use serde_json::{json, Value};

/// A stage `Build` (one Commands action) whose onSuccess condition has `rules`.
fn guarded_build(rules: Value) -> Value {
    json!({
        "name": "Build",
        "actions": [commands_action("Build", &["echo built > built.txt"])],
        "onSuccess": {"conditions": [{"result": "FAIL", "rules": rules}]}
    })
}

fn commands_rule(name: &str, commands: &[&str]) -> Value {
    json!({
        "name": name,
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": commands,
        "inputArtifacts": [{"name": "Src"}]
    })
}

#[tokio::test]
async fn commands_and_codebuild_rules_run_after_the_stage_and_decide_it() {
    let stack = stack();
    let c = clients(stack).await;
    let project = crate::codebuild::project(&c).await;
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f README.md\n";
    let src = s3_source_with(
        &c,
        &[("README.md", "# app\n"), ("buildspec.yml", buildspec)],
    )
    .await;
    let name = PipelineBuilder::new(stack, "rules")
        .source(src.clone())
        .stage(guarded_build(json!([
            commands_rule("Smoke", &["test -f README.md", "grep -q app README.md"]),
            {
                "name": "Tests",
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "configuration": {"ProjectName": project},
                "inputArtifacts": [{"name": "Src"}]
            }
        ])))
        .stage(json!({
            "name": "Deploy",
            "actions": [commands_action("Deploy", &["echo deployed"])],
            "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
                commands_rule("Ready", &["test -s README.md"])
            ]}]}
        }))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    // Each rule's run, as CodePipeline lists them.
    let listed = c
        .codepipeline
        .list_rule_executions()
        .pipeline_name(&name)
        .send()
        .await
        .expect("ListRuleExecutions");
    let mut runs: Vec<(String, String, String)> = listed
        .rule_execution_details()
        .iter()
        .map(|r| {
            (
                r.rule_name().unwrap_or_default().to_string(),
                r.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                r.output()
                    .and_then(|o| o.execution_result())
                    .and_then(|e| e.external_execution_summary())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    runs.sort();
    let found: Vec<(&str, &str)> = runs
        .iter()
        .map(|(name, status, _)| (name.as_str(), status.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("Ready", "Succeeded"),
            ("Smoke", "Succeeded"),
            ("Tests", "Succeeded")
        ],
        "{runs:?}"
    );
    assert!(runs[1].2.contains("the commands succeeded"), "{runs:?}");
    assert!(runs[2].2.contains("the build succeeded"), "{runs:?}");

    // A rule whose commands fail fails the stage, naming it and why; the next stage never runs.
    let failing = PipelineBuilder::new(stack, "rules-fail")
        .source(src)
        .stage(guarded_build(json!([commands_rule(
            "Gate",
            &["echo checking", "exit 3"]
        )])))
        .commands("Deploy", &["echo deployed"])
        .create(stack);
    let id = start(&c, &failing).await;
    let (status, summary) = wait_for(&c, &failing, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed, "{summary:?}");
    let summary = summary.unwrap_or_default();
    assert!(
        summary.contains("onSuccess") && summary.contains("Gate"),
        "{summary}"
    );
    let state = c
        .codepipeline
        .get_pipeline_state()
        .name(&failing)
        .send()
        .await
        .expect("GetPipelineState");
    let deploy = state
        .stage_states()
        .iter()
        .find(|s| s.stage_name() == Some("Deploy"))
        .expect("the Deploy stage");
    assert!(
        deploy.latest_execution().is_none(),
        "Deploy ran: {deploy:?}"
    );
}
