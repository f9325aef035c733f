use super::*;

const MINIMAL_JSON: &str = r#"{
        "name": "p",
        "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "bucket"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"},
                "outputArtifacts": [{"name": "Out"}],
                "inputArtifacts": []
            }]},
            {"name": "Approve", "actions": [{
                "name": "Ok",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
            }]}
        ]
    }"#;

#[test]
fn parses_bare_json() {
    let p = parse_pipeline(MINIMAL_JSON).expect("parses");
    assert_eq!(p.name, "p");
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].actions[0].action_type_id.provider, "S3");
    assert_eq!(p.stages[0].actions[0].run_order(), 1);
    assert_eq!(p.execution_mode(), ExecutionMode::Superseded);
    assert_eq!(p.pipeline_type(), PipelineType::V1);
}

#[test]
fn parses_wrapper_and_get_pipeline_output() {
    let wrapped = format!(r#"{{"pipeline": {MINIMAL_JSON}}}"#);
    let bare = parse_pipeline(MINIMAL_JSON).expect("bare");
    assert_eq!(parse_pipeline(&wrapped).expect("wrapped"), bare);
    let with_meta = format!(
        r#"{{"pipeline": {MINIMAL_JSON}, "metadata": {{"pipelineArn": "arn:aws:codepipeline:us-east-1:123456789012:p", "created": "2024-01-01T00:00:00+00:00", "updated": 1704067200.5}}}}"#
    );
    assert_eq!(parse_pipeline(&with_meta).expect("metadata"), bare);
}

#[test]
fn wrapper_refuses_other_top_level_fields() {
    let text = format!(r#"{{"pipeline": {MINIMAL_JSON}, "extra": 1}}"#);
    let err = parse_pipeline(&text).expect_err("extra field");
    assert!(err.message.contains("unknown field `extra`"), "{err}");
}

#[test]
fn parses_yaml_bare_and_wrapped() {
    let yaml = r#"
name: p
roleArn: arn:aws:iam::123456789012:role/r
artifactStore: {type: S3, location: bucket}
stages:
  - name: Source
    actions:
      - name: Src
        actionTypeId: {category: Source, owner: AWS, provider: S3, version: "1"}
        configuration:
          S3Bucket: b
          S3ObjectKey: k.zip
          PollForSourceChanges: false
        outputArtifacts: [{name: Out}]
  - name: Approve
    actions:
      - name: Ok
        actionTypeId: {category: Approval, owner: AWS, provider: Manual, version: "1"}
        runOrder: 2
"#;
    let p = parse_pipeline(yaml).expect("yaml");
    assert_eq!(p.stages[1].actions[0].run_order(), 2);
    assert_eq!(
        p.stages[0].actions[0].configuration()["PollForSourceChanges"],
        "false"
    );
    let wrapped = format!(
        "pipeline:\n{}",
        yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    assert_eq!(parse_pipeline(&wrapped).expect("wrapped yaml"), p);
}

#[test]
fn unknown_field_names_its_path_line_and_column() {
    let text = MINIMAL_JSON.replace(r#""name": "Ok","#, r#""name": "Ok", "foo": 1,"#);
    let err = parse_pipeline(&text).expect_err("unknown field");
    assert_eq!(err.path, "stages[1].actions[0].foo");
    assert!(
        err.message
            .starts_with("unknown field `foo`, expected one of"),
        "{err}"
    );
    assert_eq!(err.line, Some(14));
    assert!(err.column.is_some());
    let shown = err.to_string();
    assert!(
        shown.starts_with("line 14, column "),
        "display should start with the position: {shown}"
    );
    assert!(shown.contains(": stages[1].actions[0].foo: unknown field `foo`"));
}

#[test]
fn bad_enum_lists_allowed_values() {
    let text = MINIMAL_JSON.replace(r#""category": "Approval""#, r#""category": "Approve""#);
    let err = parse_pipeline(&text).expect_err("bad enum");
    assert_eq!(err.path, "stages[1].actions[0].actionTypeId.category");
    assert!(err.message.contains("unknown variant `Approve`"), "{err}");
    assert!(err.message.contains("`Approval`"), "{err}");
    assert!(err.message.contains("`Compute`"), "{err}");
}

#[test]
fn bad_execution_mode_in_yaml_is_located() {
    let yaml = "name: p\nroleArn: r\nexecutionMode: FAST\nstages: []\n";
    let err = parse_pipeline(yaml).expect_err("bad enum");
    assert_eq!(err.path, "executionMode");
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("unknown variant `FAST`"), "{err}");
    assert!(err.message.contains("SUPERSEDED"), "{err}");
    assert!(!err.message.contains(" at line "), "{err}");
}

#[test]
fn unknown_field_in_yaml_has_path_once() {
    let yaml = "name: p\nroleArn: r\nstages:\n  - name: S\n    actions: []\n    colour: red\n";
    let err = parse_pipeline(yaml).expect_err("unknown field");
    assert_eq!(err.path, "stages[0].colour");
    assert!(err.message.starts_with("unknown field `colour`"), "{err}");
    assert_eq!(err.line, Some(6));
}

#[test]
fn empty_document() {
    let err = parse_pipeline(" \n").expect_err("empty");
    assert_eq!(
        err.to_string(),
        "the document is empty; expected a pipeline declaration"
    );
}

#[test]
fn missing_required_field() {
    let err = parse_pipeline(r#"{"name": "p", "stages": []}"#).expect_err("missing");
    assert!(err.message.contains("missing field `roleArn`"), "{err}");
}

#[test]
fn wrong_type_is_located() {
    let text = MINIMAL_JSON.replace(r#""stages": ["#, r#""version": "two", "stages": ["#);
    let err = parse_pipeline(&text).expect_err("wrong type");
    assert_eq!(err.path, "version");
    assert!(err.message.starts_with("invalid type: string"), "{err}");
}

#[test]
fn syntax_error_has_position_and_no_path() {
    let err = parse_pipeline("{\n  \"name\": \"p\",\n  oops\n}").expect_err("syntax");
    assert_eq!(err.line, Some(3));
    assert_eq!(err.path, "");
    assert!(err.to_string().starts_with("line 3, column "), "{err}");
}

#[test]
fn trailing_garbage_after_json_is_refused() {
    let text = format!("{MINIMAL_JSON} x");
    assert!(parse_pipeline(&text).is_err());
}

#[test]
fn duplicate_configuration_key_is_refused() {
    let text = MINIMAL_JSON.replace(
        r#""S3Bucket": "b","#,
        r#""S3Bucket": "b", "S3Bucket": "c","#,
    );
    let err = parse_pipeline(&text).expect_err("duplicate");
    assert!(
        err.message
            .contains("duplicate configuration key `S3Bucket`"),
        "{err}"
    );
    assert_eq!(err.path, "stages[0].actions[0].configuration");
}

#[test]
fn nested_configuration_value_is_refused() {
    let text = MINIMAL_JSON.replace(r#""S3Bucket": "b""#, r#""S3Bucket": {"x": 1}"#);
    let err = parse_pipeline(&text).expect_err("map value");
    assert!(err.message.contains("expected a string"), "{err}");
}

#[test]
fn json_round_trip_keeps_empty_lists_and_nulls_become_absent() {
    let p = parse_pipeline(MINIMAL_JSON).expect("parses");
    let json = to_json_pretty(&p);
    assert!(json.contains("\"inputArtifacts\": []"), "{json}");
    assert!(!json.contains("runOrder"), "{json}");
    assert_eq!(parse_pipeline(&json).expect("again"), p);

    let with_null = MINIMAL_JSON.replace(r#""inputArtifacts": []"#, r#""inputArtifacts": null"#);
    let q = parse_pipeline(&with_null).expect("null");
    assert_eq!(q.stages[0].actions[0].input_artifacts, None);
}

#[test]
fn action_type_id_display() {
    let id = ActionTypeId {
        category: ActionCategory::Build,
        owner: ActionOwner::Aws,
        provider: "CodeBuild".into(),
        version: "1".into(),
    };
    assert_eq!(id.to_string(), "Build/AWS/CodeBuild (version 1)");
}

#[test]
fn parse_error_display_variants() {
    let e = ParseError {
        line: None,
        column: None,
        path: String::new(),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "m");
    let e = ParseError {
        line: Some(2),
        column: Some(5),
        path: "stages".into(),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "line 2, column 5: stages: m");
}
