//! Failure paths of the engine on the local stack: when a task of the state machine fails where
//! the definition has no other path, the `Abort` task ends the execution Failed with a reason a
//! person can act on, and nothing stays InProgress or locked.

use std::time::Duration;

use pipewright_e2e::pipelines::{
    api_call, clients, eventually, execution_records, source_bucket, start, wait_for,
    PipelineBuilder,
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

/// The reconciler: someone stops a pipeline's state machine run by hand (the Step Functions
/// console, `aws stepfunctions stop-execution`). No task of the run records anything, so the
/// execution would stay InProgress and keep its stage; the run's status change, delivered to the
/// orchestrator by the stack's EventBridge rule, ends it Failed and hands the stage to the
/// execution waiting for it. fakecloud 0.51 does not emit Step Functions status events, so the
/// test delivers the event as the rule would, built from DescribeExecution.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_by_hand_is_reconciled_and_the_waiting_execution_goes_on() {
    let stack = stack();
    let c = clients(stack).await;
    let name = PipelineBuilder::new(stack, "reconcile")
        .mode("QUEUED")
        .variable("Sleep", "20")
        .s3_source(&source_bucket(&c).await)
        .commands("Build", &["sleep #{variables.Sleep}"])
        .commands("Deploy", &["true"])
        .create(stack);
    let first = start(&c, &name).await;
    let running = "ACTION#Build#Build#";
    eventually(
        "the first execution's Build action to run",
        Duration::from_millis(300),
        || async {
            execution_records(&c, stack, &first)
                .await
                .iter()
                .any(|(sk, r)| sk.starts_with(running) && r["status"] == "InProgress")
                .then_some(())
        },
    )
    .await;
    let second = c
        .codepipeline
        .start_pipeline_execution()
        .name(&name)
        .variables(
            aws_sdk_codepipeline::types::PipelineVariable::builder()
                .name("Sleep")
                .value("0")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_string();

    // Stop the first execution's run behind Pipewright's back.
    let run = execution_record(&c, stack, &first).await["stateMachineExecutionArn"]
        .as_str()
        .expect("the run is recorded")
        .to_string();
    let sfn = aws_sdk_sfn::Client::new(&c.sdk);
    sfn.stop_execution()
        .execution_arn(&run)
        .send()
        .await
        .expect("StopExecution");
    let described = sfn
        .describe_execution()
        .execution_arn(&run)
        .send()
        .await
        .expect("DescribeExecution");
    assert_eq!(described.status().as_str(), "ABORTED");
    let event = json!({
        "version": "0",
        "id": format!("{first}-status"),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [run],
        "detail": {
            "executionArn": run,
            "stateMachineArn": described.state_machine_arn(),
            "name": described.name(),
            "status": "ABORTED",
            "input": described.input(),
            "error": described.error(),
            "cause": described.cause()
        }
    });
    let reconcile = || async {
        let out = c
            .lambda
            .invoke()
            .function_name(stack.output("OrchestratorFunctionArn"))
            .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
            .send()
            .await
            .expect("Invoke orchestrator");
        assert!(out.function_error().is_none(), "{:?}", out.payload());
        serde_json::from_slice::<serde_json::Value>(out.payload().unwrap().as_ref()).unwrap()
    };
    assert_eq!(reconcile().await, json!({"reconciled": true}));

    let record = execution_record(&c, stack, &first).await;
    assert_eq!(record["status"], "Failed", "{record:#}");
    let summary = record["statusSummary"].as_str().unwrap_or_default();
    assert!(summary.contains("stopped outside Pipewright"), "{summary}");
    // The stage went to the waiting execution, which runs to the end.
    let (status, summary) = wait_for(&c, &name, &second).await;
    assert_eq!(
        status,
        aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded,
        "{summary:?}"
    );
    // The same event again (EventBridge delivers at least once) changes nothing.
    assert_eq!(reconcile().await, json!({"reconciled": false}));
}
