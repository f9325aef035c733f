//! The sample events in `events/` stay in step with what they stand for.

use serde_json::Value;

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(pipewright_e2e::root().join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_create_pipeline_event_carries_the_sample_pipeline_unchanged() {
    let event = read("events/api-create-pipeline.json");
    assert_eq!(
        event["headers"]["x-amz-target"],
        "CodePipeline_20150709.CreatePipeline"
    );
    let body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, read("infra/pipelines/sample.json"));
}

#[test]
fn every_api_event_is_a_function_url_post_with_a_codepipeline_target() {
    for entry in std::fs::read_dir(pipewright_e2e::root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("api-") {
            continue;
        }
        let event = read(&format!("events/{name}"));
        assert_eq!(event["version"], "2.0", "{name}");
        assert_eq!(event["requestContext"]["http"]["method"], "POST", "{name}");
        let target = event["headers"]["x-amz-target"].as_str().unwrap();
        assert!(
            target.starts_with("CodePipeline_20150709."),
            "{name}: {target}"
        );
        serde_json::from_str::<Value>(event["body"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
