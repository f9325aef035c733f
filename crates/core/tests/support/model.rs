//! Botocore's model of the control plane's answers: a response checked here has only members
//! CodePipeline's clients know, with the types and enum values they parse.

use serde_json::Value;

/// Botocore's shapes reachable from GetPipelineStateOutput, ListActionExecutionsOutput,
/// ListPipelineExecutionsOutput, GetPipelineExecutionOutput and ListRuleExecutionsOutput,
/// generated from `botocore/data/codepipeline/2015-07-09/service-2.json.gz` (structure members
/// and required members, list members, map values, scalar types and enums).
fn shapes() -> Value {
    serde_json::from_str(include_str!("../model/codepipeline-state-shapes.json")).unwrap()
}

/// Panics unless `value` has shape `shape`: only the model's member names, its required members,
/// JSON types matching (timestamps are epoch seconds), enum values from the enum.
pub fn check_shape(shape: &str, value: &Value, path: &str) {
    let shapes = shapes();
    check(&shapes["shapes"], shape, value, path);
}

fn check(shapes: &Value, shape: &str, value: &Value, path: &str) {
    let s = &shapes[shape];
    assert!(
        s.is_object(),
        "{path}: shape {shape} is not in the model file"
    );
    match s["type"].as_str().unwrap() {
        "structure" => {
            let members = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: {shape} must be an object, got {value}"));
            for (name, v) in members {
                let member = s["members"][name].as_str().unwrap_or_else(|| {
                    panic!("{path}.{name}: {shape} has no member {name} in botocore's model")
                });
                check(shapes, member, v, &format!("{path}.{name}"));
            }
            for required in s["required"].as_array().unwrap() {
                let required = required.as_str().unwrap();
                assert!(
                    members.contains_key(required),
                    "{path}: {shape} requires {required}"
                );
            }
        }
        "list" => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{path}: {shape} must be an array"));
            let member = s["member"].as_str().unwrap();
            for (i, v) in items.iter().enumerate() {
                check(shapes, member, v, &format!("{path}[{i}]"));
            }
        }
        "map" => {
            let entries = value
                .as_object()
                .unwrap_or_else(|| panic!("{path}: {shape} must be an object"));
            let member = s["value"].as_str().unwrap();
            for (k, v) in entries {
                check(shapes, member, v, &format!("{path}.{k}"));
            }
        }
        "string" => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {shape} must be a string, got {value}"));
            if let Some(values) = s["enum"].as_array() {
                assert!(
                    values.iter().any(|v| v == text),
                    "{path}: {text} is not a {shape} ({values:?})"
                );
            }
        }
        "integer" | "long" => assert!(value.is_i64(), "{path}: {shape} must be an integer"),
        "timestamp" => assert!(value.is_number(), "{path}: {shape} must be epoch seconds"),
        "boolean" => assert!(value.is_boolean(), "{path}: {shape} must be a boolean"),
        other => panic!("{path}: unexpected type {other} of {shape}"),
    }
}
