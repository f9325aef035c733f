//! Two stacks side by side in one emulator (one account, as two teams or a staging and a
//! production stack would be), with faults injected into the second one's calls: each stack
//! runs a pipeline of the same name on its own tables and state machines (the second, keeping
//! CodePipeline's default, runs it on creation), deleting it in one
//! leaves the other's untouched, a callback Step Functions never received does not stall the
//! execution, and an event PutEvents reported as refused is sent again (same id) so every event
//! arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codepipeline::types::{PipelineExecutionStatus, TriggerType as ExecutionTriggerType};
use aws_sdk_lambda::types::Environment;
use pipewright_e2e::faults::{self, Fault};
use pipewright_e2e::pipelines::{
    clients, drain_events, execution_records, function_of, latest_action, outbox_ids,
    source_bucket, start, subscribe, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, stack_beside, unique, Stack};
use serde_json::{json, Value};

/// Add `key=value` to function `name`'s environment (before its first invocation: a sandbox
/// keeps the environment it started with).
async fn set_env(c: &Clients, name: &str, key: &str, value: &str) {
    let current = c
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .expect("GetFunctionConfiguration");
    let mut variables: BTreeMap<String, String> = current
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    variables.insert(key.into(), value.into());
    c.lambda
        .update_function_configuration()
        .function_name(name)
        .environment(
            Environment::builder()
                .set_variables(Some(variables.into_iter().collect()))
                .build(),
        )
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
}

/// The state machines (names) whose runs executions `ids` recorded, read from `stack`'s table.
async fn machine_of(c: &Clients, stack: &Stack, id: &str) -> String {
    let records = execution_records(c, stack, id).await;
    let (_, execution) = records
        .iter()
        .find(|(sk, _)| sk == "EXECUTION")
        .unwrap_or_else(|| panic!("no execution record of {id}: {records:?}"));
    let run = execution["stateMachineExecutionArn"]
        .as_str()
        .expect("a recorded run");
    // arn:aws:states:<region>:<account>:execution:<machine>:<run>
    run.split(':').nth(6).expect("a machine name").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stacks_in_one_account_keep_apart_and_ride_out_lost_callbacks_and_refused_events() {
    let first = stack();
    let second_name = unique("pipewright-second");
    let (second, _gateways) = stack_beside(&second_name).await;
    let c1 = clients(first).await;
    let c2 = clients(&second).await;

    // Faults, in the second stack only. Its action function's first callback never reaches Step
    // Functions (every attempt of SendTaskSuccess for that token fails); its publisher's first
    // PutEvents goes through but is answered as if its first entry had been refused.
    let lost: Arc<Mutex<Option<String>>> = Arc::default();
    let lost_token = lost.clone();
    let sfn = faults::start(&first.endpoint, move |call| {
        if call.target.as_deref() != Some("AWSStepFunctions.SendTaskSuccess") {
            return Fault::Pass;
        }
        let token = serde_json::from_str::<Value>(&call.body)
            .ok()
            .and_then(|v| v["taskToken"].as_str().map(str::to_string));
        let mut lost = lost_token.lock().unwrap();
        if lost.is_none() {
            lost.clone_from(&token);
        }
        if *lost == token {
            Fault::Refuse {
                status: 500,
                body: json!({"__type": "InternalFailure",
                             "message": "injected by the test: SendTaskSuccess failed"})
                .to_string(),
            }
        } else {
            Fault::Pass
        }
    });
    let refused = Arc::new(AtomicBool::new(false));
    let refused_once = refused.clone();
    let events = faults::start(&first.endpoint, move |call| {
        if call.target.as_deref() != Some("AWSEvents.PutEvents")
            || refused_once.swap(true, Ordering::SeqCst)
        {
            return Fault::Pass;
        }
        Fault::Rewrite(Box::new(|text| {
            let mut answer: Value = serde_json::from_str(text).expect("a PutEvents answer");
            answer["FailedEntryCount"] = json!(1);
            answer["Entries"][0] = json!({"ErrorCode": "InternalFailure",
                                          "ErrorMessage": "injected by the test"});
            answer.to_string()
        }))
    });
    let action = function_of(&c2, &second_name, "ActionFunction").await;
    set_env(&c2, &action, "AWS_ENDPOINT_URL_SFN", &sfn.endpoint).await;
    let publisher = function_of(&c2, &second_name, "PublisherFunction").await;
    set_env(
        &c2,
        &publisher,
        "AWS_ENDPOINT_URL_EVENTBRIDGE",
        &events.endpoint,
    )
    .await;

    // One pipeline name, declared in both stacks.
    let name = unique("twin");
    let bucket = source_bucket(&c1).await;
    let declare = |stack: &Stack| {
        PipelineBuilder::new(stack, "twin")
            .named(&name)
            .mode("QUEUED")
            .s3_source(&bucket)
            .commands("Build", &["echo built in $CODEBUILD_BUILD_ID"])
            .create(stack)
    };
    let queue = subscribe(&c1, &name).await;
    declare(first);
    declare(&second);

    // The suite's stack runs a pipeline when asked; the second keeps CodePipeline's default
    // (StartExecutionOnCreate): creating the pipeline ran it, as its creator.
    let id1 = start(&c1, &name).await;
    let created = c2
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(&name)
        .send()
        .await
        .expect("ListPipelineExecutions in the second stack");
    let [run] = created.pipeline_execution_summaries() else {
        panic!("CreatePipeline started one execution: {created:?}");
    };
    let trigger = run.trigger().expect("a trigger");
    assert_eq!(
        trigger.trigger_type(),
        Some(&ExecutionTriggerType::CreatePipeline)
    );
    let id2 = run.pipeline_execution_id().expect("an id").to_string();
    // Its trigger names the creator, as a start names its caller (the same key here).
    let started = c1
        .codepipeline
        .get_pipeline_execution()
        .pipeline_name(&name)
        .pipeline_execution_id(&id1)
        .send()
        .await
        .expect("GetPipelineExecution");
    let starter = started
        .pipeline_execution()
        .and_then(|e| e.trigger())
        .and_then(|t| t.trigger_detail())
        .expect("a trigger detail");
    assert_eq!(trigger.trigger_detail(), Some(starter), "{trigger:?}");
    assert!(starter.starts_with("pipewright-key/"), "{starter}");
    let listed = c1
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(&name)
        .send()
        .await
        .expect("ListPipelineExecutions in the first stack");
    assert_eq!(
        listed.pipeline_execution_summaries().len(),
        1,
        "the suite's stack starts nothing on CreatePipeline: {listed:?}"
    );
    for (c, id) in [(&c1, &id1), (&c2, &id2)] {
        let (status, summary) = wait_for(c, &name, id).await;
        assert_eq!(
            status,
            PipelineExecutionStatus::Succeeded,
            "{id}: {summary:?}"
        );
    }

    // Apart: each stack's table holds its own execution only, on a machine of its own.
    assert!(execution_records(&c1, first, &id2).await.is_empty());
    assert!(execution_records(&c2, &second, &id1).await.is_empty());
    let (m1, m2) = (
        machine_of(&c1, first, &id1).await,
        machine_of(&c2, &second, &id2).await,
    );
    assert_ne!(m1, m2, "the two stacks share a state machine");

    // The lost callback happened, and cost nothing: the action it reported is recorded
    // Succeeded once, and the execution went on.
    assert!(sfn.faults() >= 1, "no SendTaskSuccess was refused");
    let records = execution_records(&c2, &second, &id2).await;
    let actions: Vec<&Value> = records
        .iter()
        .filter(|(sk, _)| sk.starts_with("ACTION#"))
        .map(|(_, r)| r)
        .collect();
    assert!(
        actions.iter().all(|a| a["status"] == "Succeeded"),
        "{actions:#?}"
    );
    assert_eq!(
        latest_action(&records, "Build", "Build")["status"],
        "Succeeded"
    );

    // Every event of the second stack's execution arrived, the refused one again under the same
    // id (a consumer de-duplicates by `detail.event-id`).
    assert_eq!(
        events.faults(),
        1,
        "PutEvents was not answered with a refusal"
    );
    let raw = drain_events(&c1, &queue, Duration::from_secs(5)).await;
    let mut by_id: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for event in raw
        .iter()
        .filter(|e| e["detail"]["execution-id"] == json!(id2))
    {
        let key = event["detail"]["event-id"].as_str().expect("an event id");
        by_id.entry(key.to_string()).or_default().push(event);
    }
    let outbox = outbox_ids(&c2, &second, &id2).await;
    assert!(!outbox.is_empty());
    assert_eq!(
        by_id.keys().cloned().collect::<BTreeSet<_>>(),
        outbox,
        "every event of the outbox arrived"
    );
    for copies in by_id.values() {
        assert!(
            copies.iter().all(|e| e["detail"] == copies[0]["detail"]),
            "copies under one id differ: {copies:#?}"
        );
    }
    assert!(
        by_id.values().any(|copies| copies.len() > 1),
        "the refused batch was not sent again"
    );

    // Deleting the pipeline in the second stack leaves the first stack's alone.
    c2.codepipeline
        .delete_pipeline()
        .name(&name)
        .send()
        .await
        .expect("DeletePipeline in the second stack");
    let sfn_client = aws_sdk_sfn::Client::new(&c1.sdk);
    let machines: Vec<String> = sfn_client
        .list_state_machines()
        .max_results(1000)
        .send()
        .await
        .expect("ListStateMachines")
        .state_machines()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert!(machines.contains(&m1), "the first stack's machine went");
    assert!(!machines.contains(&m2), "the second stack's machine stayed");
    c1.codepipeline
        .get_pipeline()
        .name(&name)
        .send()
        .await
        .expect("the first stack's pipeline is still there");
    let again = start(&c1, &name).await;
    let (status, summary) = wait_for(&c1, &name, &again).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
}
