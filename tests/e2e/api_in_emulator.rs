//! The `api` function runs as a real binary inside the emulator (through pipewright-lambda-host)
//! and keeps pipelines in the emulator's DynamoDB table.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use pipewright_e2e::{function_url_event, stack, unique};
use serde_json::{json, Value};

/// Invoke the api function with a Function URL event; returns (HTTP status, JSON body).
async fn call_api(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    operation: &str,
    body: &Value,
) -> (u16, Value) {
    let target = format!("CodePipeline_20150709.{operation}");
    // The IAM door's function; the event (an AWS_IAM Function URL's) names the IAM caller,
    // user/admin, whose IAM policies the function checks: the emulator holds them.
    admin_user().await;
    let event = function_url_event(&[("X-Amz-Target", &target)], &body.to_string());
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .expect("lambda:Invoke");
    let payload: Value =
        serde_json::from_slice(out.payload().expect("a payload").as_ref()).expect("JSON payload");
    assert!(out.function_error().is_none(), "function failed: {payload}");
    let status = payload["statusCode"].as_u64().expect("statusCode") as u16;
    let body = payload["body"].as_str().expect("body");
    // lambda_http base64-encodes bodies whose content type it does not know as text, as
    // application/x-amz-json-1.1; the Function URL decodes them before the client sees them.
    let body = if payload["isBase64Encoded"] == json!(true) {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64 body")
    } else {
        body.as_bytes().to_vec()
    };
    let body: Value = serde_json::from_slice(&body).expect("JSON body");
    (status, body)
}

/// IAM user `admin` of the sample events, allowed every CodePipeline action and to pass the
/// pipeline roles (creating a pipeline takes `iam:PassRole` on its role, as in CodePipeline).
async fn admin_user() {
    let iam = aws_sdk_iam::Client::new(&stack().sdk().await);
    let _ = iam.create_user().user_name("admin").send().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole",
         "Resource": "arn:aws:iam::123456789012:role/pipewright/*"}]});
    iam.put_user_policy()
        .user_name("admin")
        .policy_name("codepipeline-admin")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("iam:PutUserPolicy");
}

fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(pipewright_e2e::root().join("infra/pipelines/sample.json"))
        .unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    if let Some(inner) = v.get("pipeline").cloned() {
        v = inner;
    }
    v["name"] = json!(name);
    v
}

async fn stored_item(dynamo: &aws_sdk_dynamodb::Client, table: &str, name: &str) -> Option<Value> {
    let out = dynamo
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("PIPELINES".into()))
        .key("sk", AttributeValue::S(name.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("dynamodb:GetItem");
    out.item()
        .map(|item| serde_json::from_str(item["record"].as_s().unwrap()).unwrap())
}

#[tokio::test]
async fn create_pipeline_is_written_to_dynamodb_once() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let function = stack.output("ApiFunctionName");
    let table = stack.output("PipelinesTableName");
    let name = unique("e2e-create");

    let (status, body) = call_api(
        &lambda,
        function,
        "CreatePipeline",
        &json!({ "pipeline": sample(&name) }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pipeline"]["version"], 1);

    let item = stored_item(&dynamo, table, &name)
        .await
        .expect("the pipeline is in the table");
    assert_eq!(item["declaration"]["name"], json!(name));
    assert_eq!(item["declaration"]["stages"], sample(&name)["stages"]);

    // The same name again is refused and the stored record is untouched.
    let mut changed = sample(&name);
    changed["stages"][1]["name"] = json!("Renamed");
    let (status, body) = call_api(
        &lambda,
        function,
        "CreatePipeline",
        &json!({ "pipeline": changed }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "PipelineNameInUseException");
    assert_eq!(stored_item(&dynamo, table, &name).await, Some(item));

    let (status, body) = call_api(&lambda, function, "GetPipeline", &json!({ "name": name })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["metadata"]["pipelineArn"],
        json!(format!(
            "arn:aws:codepipeline:us-east-1:123456789012:{name}"
        ))
    );
}

#[tokio::test]
async fn an_invalid_declaration_is_refused_with_every_problem_and_nothing_is_written() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let name = unique("e2e-invalid");

    let mut pipeline = sample(&name);
    pipeline["stages"][1]["actions"][0]["inputArtifacts"] = json!([{ "name": "NoSuchArtifact" }]);
    pipeline["stages"][1]["actions"][0]["runOrder"] = json!(1000);
    let (status, body) = call_api(
        &lambda,
        stack.output("ApiFunctionName"),
        "CreatePipeline",
        &json!({ "pipeline": pipeline }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidStructureException");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("pipeline.stages[1].actions[0].inputArtifacts[0]"),
        "{message}"
    );
    assert!(
        message.contains("pipeline.stages[1].actions[0].runOrder"),
        "{message}"
    );
    assert_eq!(
        stored_item(&dynamo, stack.output("PipelinesTableName"), &name).await,
        None
    );
}
