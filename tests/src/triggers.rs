//! Helpers for tests of what starts executions: sample events, invoking the trigger function,
//! and what started (as ListPipelineExecutions and the execution records show it).

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use crate::pipelines::{execution_records, Clients};
use crate::{root, Stack};

/// The sample event `events/<name>`.
pub fn sample(name: &str) -> Value {
    let path = root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample event"))
        .expect("sample event is JSON")
}

/// Invoke the trigger function with `event` (request-response); its answer. Panics when the
/// function fails.
pub async fn invoke_trigger(c: &Clients, stack: &Stack, event: &Value) -> Value {
    let out = c
        .lambda
        .invoke()
        .function_name(stack.output("TriggerFunctionName"))
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("Invoke trigger");
    assert!(out.function_error().is_none(), "{:?}", out.payload());
    serde_json::from_slice(out.payload().expect("a payload").as_ref()).expect("JSON answer")
}

/// What an answer of the trigger function lists as started: (pipeline, execution id, new).
pub fn started(answer: &Value) -> Vec<(String, String, bool)> {
    answer["started"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|s| {
            (
                s["pipelineName"].as_str().unwrap().to_string(),
                s["pipelineExecutionId"].as_str().unwrap().to_string(),
                s["new"].as_bool().unwrap_or(true),
            )
        })
        .collect()
}

/// The executions of `pipeline` as ListPipelineExecutions shows them, newest first: (id,
/// trigger type, trigger detail).
pub async fn executions(c: &Clients, pipeline: &str) -> Vec<(String, String, String)> {
    c.codepipeline
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .send()
        .await
        .expect("ListPipelineExecutions")
        .pipeline_execution_summaries()
        .iter()
        .map(|s| {
            let trigger = s.trigger().expect("a trigger");
            (
                s.pipeline_execution_id().unwrap_or_default().to_string(),
                trigger
                    .trigger_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                trigger.trigger_detail().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The execution record of `id` (its `EXECUTION` item's JSON).
pub async fn execution_record(c: &Clients, stack: &Stack, id: &str) -> Value {
    execution_records(c, stack, id)
        .await
        .into_iter()
        .find(|(sk, _)| sk == "EXECUTION")
        .unwrap_or_else(|| panic!("no record of execution {id}"))
        .1
}
