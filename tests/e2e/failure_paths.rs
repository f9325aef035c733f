//! Failure paths of the engine on the local stack: when a task of the state machine fails where
//! the definition has no other path, the `Abort` task ends the execution Failed with a reason a
//! person can act on, and nothing stays InProgress or locked.

use std::time::Duration;

use pipewright_e2e::pipelines::{
    api_call, clients, eventually, execution_records, source_bucket, start, PipelineBuilder,
};
use pipewright_e2e::stack;
use pipewright_e2e::triggers::execution_record;
use serde_json::json;

/// Deleting a pipeline while an execution runs takes its declaration away: the execution's next
/// orchestrator task (the group check) fails. Before the `Abort` path that run failed in Step
/// Functions while DynamoDB kept the execution InProgress for good; now it ends Failed, naming
/// the error, with its stage and action recorded as ended.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_failure_ends_the_execution_failed_instead_of_leaving_it_in_progress() {
    let stack = stack();
    let c = clients(stack).await;
    let name = PipelineBuilder::new(stack, "abort")
        .mode("QUEUED")
        .s3_source(&source_bucket(&c).await)
        .commands("Build", &["sleep 6"])
        .commands("Deploy", &["true"])
        .create(stack);
    let id = start(&c, &name).await;
    let running = "ACTION#Build#Build#";
    eventually(
        "the Build action to run",
        Duration::from_millis(300),
        || async {
            execution_records(&c, stack, &id)
                .await
                .iter()
                .any(|(sk, r)| sk.starts_with(running) && r["status"] == "InProgress")
                .then_some(())
        },
    )
    .await;
    api_call(stack, "DeletePipeline", &json!({ "name": name }));

    let execution = eventually(
        "the execution to end",
        Duration::from_millis(500),
        || async {
            let record = execution_record(&c, stack, &id).await;
            (record["status"] != "InProgress").then_some(record)
        },
    )
    .await;
    assert_eq!(execution["status"], "Failed", "{execution:#}");
    let summary = execution["statusSummary"].as_str().unwrap_or_default();
    assert!(
        summary.contains("a step of its state machine failed") && summary.contains(&name),
        "{summary}"
    );
    let records = execution_records(&c, stack, &id).await;
    let unfinished: Vec<&String> = records
        .iter()
        .filter(|(_, r)| r["status"] == "InProgress")
        .map(|(sk, _)| sk)
        .collect();
    assert!(unfinished.is_empty(), "still InProgress: {unfinished:?}");
}
