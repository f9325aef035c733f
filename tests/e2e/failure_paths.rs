//! Failure paths of the engine on the local stack: when a task of the state machine fails where
//! the definition has no other path, the `Abort` task ends the execution Failed with a reason a
//! person can act on, and nothing stays InProgress or locked.

use std::time::Duration;

use pipewright_e2e::pipelines::{
    api_call, clients, eventually, execution_records, source_bucket, start, wait_for, Clients,
    PipelineBuilder,
};
use pipewright_e2e::stack;
use pipewright_e2e::triggers::execution_record;
use serde_json::json;

/// The declaration an execution runs disappears under it (its version items deleted from the
/// pipelines table behind Pipewright's back): the execution's next orchestrator task (the group
/// check) fails. Before the `Abort` path that run failed in Step Functions while DynamoDB kept
/// the execution InProgress for good; now it ends Failed, naming the error, with its stage and
/// action recorded as ended.
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
    delete_versions(&c, &name).await;

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
    let stopped = stop_a_run_by_hand(&c, "reconcile").await;
    let run = &stopped.run;
    let sfn = aws_sdk_sfn::Client::new(&c.sdk);
    let described = sfn
        .describe_execution()
        .execution_arn(run)
        .send()
        .await
        .expect("DescribeExecution");
    let event = json!({
        "version": "0",
        "id": format!("{}-status", stopped.first),
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
    // The stack's sweep (another test's, or its schedule) may have got there first: then the
    // event finds the execution ended already. Either way the records agree with the run.
    let answer = invoke_orchestrator(&c, &event).await;
    assert!(
        answer == json!({"reconciled": true}) || answer == json!({"reconciled": false}),
        "{answer}"
    );
    stopped.first_failed_and_second_succeeds(&c).await;
    // The same event again (EventBridge delivers at least once) changes nothing.
    assert_eq!(
        invoke_orchestrator(&c, &event).await,
        json!({"reconciled": false})
    );
}

/// The sweep: the same run stopped by hand, and no status event ever comes (the emulator emits
/// none; on AWS a rule can be disabled or its target throttled). The periodic sweep asks Step
/// Functions how each in-progress execution's run is, and reconciles the one that ended.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_reconciles_a_run_whose_status_event_never_came() {
    let stack = stack();
    let c = clients(stack).await;
    let stopped = stop_a_run_by_hand(&c, "sweep").await;
    // A sweep of this pipeline alone: on a stack of many pipelines a whole sweep stops at its
    // time budget and may begin elsewhere.
    let swept = invoke_orchestrator(
        &c,
        &json!({"sweep": {"now": true, "pipeline": stopped.name}}),
    )
    .await;
    assert!(swept["reconciled"].is_array(), "{swept:#}");
    assert_eq!(swept["unswept"], 0, "{swept:#}");
    // This sweep reconciled it, or one running beside it did (other tests sweep too, and so
    // does the stack's schedule); nothing else reports a run stopped by hand here.
    stopped.first_failed_and_second_succeeds(&c).await;
}

/// A QUEUED pipeline whose first execution's run was stopped by hand (Step Functions'
/// StopExecution) while it held Build, and a second execution queued behind it.
struct StoppedByHand {
    name: String,
    first: String,
    second: String,
    run: String,
}

async fn stop_a_run_by_hand(c: &Clients, prefix: &str) -> StoppedByHand {
    let stack = stack();
    let name = PipelineBuilder::new(stack, prefix)
        .mode("QUEUED")
        .variable("Sleep", "20")
        .s3_source(&source_bucket(c).await)
        .commands("Build", &["sleep #{variables.Sleep}"])
        .commands("Deploy", &["true"])
        .create(stack);
    let first = start(c, &name).await;
    let running = "ACTION#Build#Build#";
    eventually(
        "the first execution's Build action to run",
        Duration::from_millis(300),
        || async {
            execution_records(c, stack, &first)
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
    let run = execution_record(c, stack, &first).await["stateMachineExecutionArn"]
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
    StoppedByHand {
        name,
        first,
        second,
        run,
    }
}

impl StoppedByHand {
    /// Once reconciled: the first execution Failed, saying why; the stage went to the second,
    /// which runs to the end.
    async fn first_failed_and_second_succeeds(&self, c: &Clients) {
        let stack = stack();
        let record = execution_record(c, stack, &self.first).await;
        assert_eq!(record["status"], "Failed", "{record:#}");
        let summary = record["statusSummary"].as_str().unwrap_or_default();
        assert!(summary.contains("stopped outside Pipewright"), "{summary}");
        let (status, summary) = wait_for(c, &self.name, &self.second).await;
        assert_eq!(
            status,
            aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded,
            "{summary:?}"
        );
    }
}

/// Delete every version item of pipeline `name` from the pipelines table (its current item
/// stays): what a corrupted or hand-edited table would look like.
async fn delete_versions(c: &Clients, name: &str) {
    let dynamo = &c.dynamo;
    let table = stack().output("PipelinesTableName");
    let items = dynamo
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PIPELINE#{name}")),
        )
        .send()
        .await
        .expect("Query");
    for item in items.items() {
        dynamo
            .delete_item()
            .table_name(table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .send()
            .await
            .expect("DeleteItem");
    }
}

/// DeletePipeline while an execution runs Build and another waits for it: both end Failed at
/// once, saying the pipeline was deleted; the pipeline's state machine is deleted; a pipeline
/// created again under the name has no history and runs from a clean slate.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_running_pipeline_ends_its_executions_and_a_new_one_starts_clean() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = source_bucket(&c).await;
    let builder = |sleep: &str| {
        PipelineBuilder::new(stack, "recreate")
            .mode("QUEUED")
            .s3_source(&bucket)
            .commands("Build", &[sleep])
            .commands("Deploy", &["true"])
    };
    let name = builder("sleep 30").create(stack);
    let first = start(&c, &name).await;
    eventually(
        "the first execution's Build action to run",
        Duration::from_millis(300),
        || async {
            execution_records(&c, stack, &first)
                .await
                .iter()
                .any(|(sk, r)| sk.starts_with("ACTION#Build#Build#") && r["status"] == "InProgress")
                .then_some(())
        },
    )
    .await;
    let second = start(&c, &name).await;
    let machine = execution_record(&c, stack, &first).await["stateMachineExecutionArn"]
        .as_str()
        .expect("the run is recorded")
        .rsplit_once(':')
        .map(|(machine, _)| machine.replace(":execution:", ":stateMachine:"))
        .unwrap();

    api_call(stack, "DeletePipeline", &json!({ "name": name }));
    for id in [&first, &second] {
        let record = execution_record(&c, stack, id).await;
        assert_eq!(record["status"], "Failed", "{record:#}");
        let summary = record["statusSummary"].as_str().unwrap_or_default();
        assert!(summary.contains("was deleted"), "{summary}");
    }
    let sfn = aws_sdk_sfn::Client::new(&c.sdk);
    let described = sfn
        .describe_state_machine()
        .state_machine_arn(&machine)
        .send()
        .await;
    assert!(
        described.as_ref().map_or(true, |d| d
            .status()
            .is_some_and(|s| s.as_str() == "DELETING")),
        "{described:?}"
    );

    // The same name again.
    builder("true").named(&name).create(stack);
    let listed = api_call(
        stack,
        "ListPipelineExecutions",
        &json!({ "pipelineName": name }),
    );
    assert_eq!(
        listed["pipelineExecutionSummaries"],
        json!([]),
        "{listed:#}"
    );
    let third = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &third).await;
    assert_eq!(
        status,
        aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded,
        "{summary:?}"
    );
}

/// Invoke the stack's orchestrator function with `event`; its answer.
async fn invoke_orchestrator(c: &Clients, event: &serde_json::Value) -> serde_json::Value {
    let out = c
        .lambda
        .invoke()
        .function_name(stack().output("OrchestratorFunctionArn"))
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .expect("Invoke orchestrator");
    assert!(out.function_error().is_none(), "{:?}", out.payload());
    serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap()
}

/// Whatever an action prints or exports, its record fits its DynamoDB item (400 KB; JSON escapes
/// a control character sixfold): the whole log goes to S3 and the record keeps its end; output
/// variables too big to record fail the action saying so, instead of a failed write leaving it
/// to time out.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_output_fits_the_record_and_the_whole_log_is_in_s3() {
    let stack = stack();
    let c = clients(stack).await;
    let flood = "head -c 300000 /dev/zero | tr '\\000' '\\001'; echo; echo the end";
    let mut exporting = pipewright_e2e::pipelines::commands_action(
        "Export",
        &["export BLOB=$(head -c 100000 /dev/zero | tr '\\000' '\\001')"],
    );
    exporting["outputVariables"] = json!(["BLOB"]);
    exporting["namespace"] = json!("ExportVariables");
    let name = PipelineBuilder::new(stack, "flood")
        .s3_source(&source_bucket(&c).await)
        .commands("Build", &[flood])
        .stage(json!({"name": "Deploy", "actions": [exporting]}))
        .create(stack);
    let id = start(&c, &name).await;
    let records = failed_records(&c, stack, &name, &id).await;
    let build = pipewright_e2e::pipelines::latest_action(&records, "Build", "Build");
    assert_eq!(build["status"], "Succeeded", "{build:#}");
    let tail = build["logTail"].as_str().unwrap();
    assert!(
        tail.ends_with("the end\n"),
        "{:?}",
        &tail[tail.len().saturating_sub(40)..]
    );
    assert!(tail.len() <= 8 * 1024, "{}", tail.len());
    let log = &build["logLocation"];
    let object =
        c.s3.get_object()
            .bucket(log["bucket"].as_str().unwrap())
            .key(log["key"].as_str().unwrap())
            .send()
            .await
            .expect("the whole log in S3");
    let body = object.body.collect().await.unwrap().into_bytes();
    assert!(body.len() > 300_000, "{}", body.len());
    assert!(body.ends_with(b"the end\n"));

    let export = pipewright_e2e::pipelines::latest_action(&records, "Deploy", "Export");
    assert_eq!(export["status"], "Failed", "{export:#}");
    let message = export["output"]["executionResult"]["errorDetails"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("output variables"), "{message}");
    assert!(export["output"]["outputVariables"]
        .as_object()
        .is_none_or(|v| v.is_empty()));
}

/// Wait until execution `id` of pipeline `name` ends, check that it failed, and return its
/// records.
async fn failed_records(
    c: &Clients,
    stack: &pipewright_e2e::Stack,
    name: &str,
    id: &str,
) -> Vec<(String, serde_json::Value)> {
    let (status, summary) = wait_for(c, name, id).await;
    assert_eq!(
        status,
        aws_sdk_codepipeline::types::PipelineExecutionStatus::Failed,
        "{summary:?}"
    );
    execution_records(c, stack, id).await
}

/// The process of the function that runs `command` (a `sleep` of a duration no other test uses):
/// the nearest ancestor of the command's process whose program is a Lambda `bootstrap`.
fn bootstrap_running(command: &[&str]) -> Option<i32> {
    let ppid = |pid: i32| -> Option<i32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
    };
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        if args.len() != command.len() || args.iter().zip(command).any(|(a, c)| *a != c.as_bytes())
        {
            continue;
        }
        let mut at = ppid(pid)?;
        while at > 1 {
            let exe = std::fs::read_link(format!("/proc/{at}/exe")).ok();
            if exe.is_some_and(|e| e.file_name().is_some_and(|n| n == "bootstrap")) {
                return Some(at);
            }
            at = ppid(at)?;
        }
    }
    None
}

/// The process the commands run in (the Commands runner's sandbox) is killed (SIGKILL) mid-run:
/// the action is recorded Failed naming what happened (the runner's exit, not left InProgress,
/// not mislabelled a timeout), the execution ends Failed, and the stage is free for the next
/// execution, which runs through in a new sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_runner_killed_mid_run_fails_the_action_and_the_next_execution_runs() {
    let stack = stack();
    let c = clients(stack).await;
    let name = PipelineBuilder::new(stack, "killed")
        .mode("QUEUED")
        .variable("nap", "0")
        .s3_source(&source_bucket(&c).await)
        .commands("Build", &["sleep #{variables.nap}"])
        .create(stack);
    let nap = format!(
        "4{}.{}",
        std::process::id() % 10,
        17 + std::process::id() % 80
    );
    let id = pipewright_e2e::pipelines::start_with(&c, &name, &[("nap", &nap)]).await;
    let bootstrap = eventually(
        "the action's command to run",
        Duration::from_millis(200),
        || {
            let nap = nap.clone();
            async move { bootstrap_running(&["sleep", &nap]) }
        },
    )
    .await;
    // SAFETY: signalling a process this test found by its command line.
    assert_eq!(unsafe { libc::kill(bootstrap, libc::SIGKILL) }, 0);

    let records = failed_records(&c, stack, &name, &id).await;
    let build = pipewright_e2e::pipelines::latest_action(&records, "Build", "Build");
    assert_eq!(build["status"], "Failed", "{build:#}");
    let details = &build["output"]["executionResult"]["errorDetails"];
    assert_eq!(details["code"], "JobFailed", "{build:#}");
    assert!(
        details["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Runtime exited"),
        "{build:#}"
    );

    let next = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &next).await;
    assert_eq!(
        status,
        aws_sdk_codepipeline::types::PipelineExecutionStatus::Succeeded,
        "{summary:?}"
    );
}

/// What EventBridge hands the orchestrator (run status events, sweeps), the trigger (source
/// changes, schedules) and the action function (service status events) and they fail on after
/// Lambda's retries is kept in a dead-letter queue of the stack, not dropped.
#[tokio::test(flavor = "multi_thread")]
async fn asynchronous_invocations_that_keep_failing_land_in_dead_letter_queues() {
    let stack = stack();
    let c = clients(stack).await;
    let sqs = aws_sdk_sqs::Client::new(&c.sdk);
    for (logical, output) in [
        ("OrchestratorFunction", "OrchestratorDeadLetterQueueUrl"),
        ("TriggerFunction", "TriggerDeadLetterQueueUrl"),
        ("ActionFunction", "ActionDeadLetterQueueUrl"),
    ] {
        let function =
            pipewright_e2e::pipelines::function_of(&c, pipewright_local::STACK_NAME, logical).await;
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(stack.output(output))
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("GetQueueAttributes")
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("a queue ARN");
        let config = c
            .lambda
            .get_function_configuration()
            .function_name(&function)
            .send()
            .await
            .expect("GetFunctionConfiguration");
        assert_eq!(
            config.dead_letter_config().and_then(|d| d.target_arn()),
            Some(queue_arn.as_str()),
            "{logical}"
        );
    }
}

/// The webhook function (behind a public URL) gets the reserved concurrency the stack's
/// `PublicFunctionConcurrency` names (the local stack sets 10; the default, 0, reserves nothing):
/// a flood of deliveries is throttled there instead of taking the engine's concurrency. The key
/// door has its own (`KeyDoorConcurrency`, 0 by default and locally: every test's control-plane
/// call goes through it). The
/// approval function, which also runs the approval tasks of the state machines, reserves none (a
/// flood of link requests must not throttle those tasks).
#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_function_has_reserved_concurrency() {
    let stack = stack();
    let c = clients(stack).await;
    for (output, expected) in [
        ("WebhookFunctionName", Some(10)),
        ("ApiKeyFunctionName", None),
        ("ApprovalFunctionName", None),
    ] {
        let concurrency = c
            .lambda
            .get_function_concurrency()
            .function_name(stack.output(output))
            .send()
            .await
            .expect("GetFunctionConcurrency");
        assert_eq!(
            concurrency.reserved_concurrent_executions(),
            expected,
            "{output}"
        );
        // Every Pipewright function carries the tag the template's deny on invoking them keys on.
        let function = c
            .lambda
            .get_function()
            .function_name(stack.output(output))
            .send()
            .await
            .expect("GetFunction");
        assert_eq!(
            function
                .tags()
                .and_then(|t| t.get("pipewright:function"))
                .map(String::as_str),
            Some("true"),
            "{output}"
        );
    }
}
