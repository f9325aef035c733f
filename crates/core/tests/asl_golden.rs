//! Golden files: the ASL definition of every valid sample pipeline in
//! `infra/pipelines` and of a few pipelines built here is compared with
//! `tests/golden/asl/<name>.asl.json`.
//!
//! Run with `PIPEWRIGHT_BLESS=1` to rewrite the golden files from the current
//! output (then review the diff, and run `infra/asl-validator/validate.sh`).

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use pipewright_core::asl::{compile, state_machine_name, AslTargets};
use pipewright_core::{parse_pipeline, validate, PipelineDeclaration};
use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/asl")
}

fn targets() -> AslTargets {
    AslTargets {
        orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:pipewright-orchestrator"
            .into(),
        action_arn: "arn:aws:lambda:us-east-1:123456789012:function:pipewright-action".into(),
        approval_arn: "arn:aws:lambda:us-east-1:123456789012:function:pipewright-approval".into(),
        action_timeout_cap_seconds: None,
    }
}

/// The valid samples (`infra/pipelines/*.json|yaml`), named after their pipeline.
fn samples() -> Vec<(String, PipelineDeclaration)> {
    support::sample_files()
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).expect("read sample");
            let p = parse_pipeline(&text).expect("sample parses");
            (p.name.clone(), p)
        })
        .collect()
}

/// Three runOrder groups in one stage, parallel actions, an action name of
/// more than 80 characters, explicit and default timeouts.
const THREE_GROUPS: &str = r#"{
  "name": "three-groups", "version": 4, "pipelineType": "V2", "executionMode": "QUEUED",
  "roleArn": "arn:aws:iam::123456789012:role/three-groups",
  "artifactStore": {"type": "S3", "location": "three-groups-artifacts"},
  "stages": [
    {"name": "Source", "actions": [{
      "name": "Checkout",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]
    }]},
    {"name": "Build", "actions": [
      {"name": "Compile", "runOrder": 1,
       "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
       "configuration": {"ProjectName": "compile"},
       "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Bin"}]},
      {"name": "Lint", "runOrder": 1,
       "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
       "commands": ["make lint"], "inputArtifacts": [{"name": "Src"}]},
      {"name": "UnitTests", "runOrder": 2, "timeoutInMinutes": 30,
       "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
       "configuration": {"ProjectName": "unit-tests"},
       "inputArtifacts": [{"name": "Bin"}]},
      {"name": "Package-the-application-bundle-with-its-runtime-dependencies-for-every-target-region", "runOrder": 3,
       "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
       "commands": ["make package"], "inputArtifacts": [{"name": "Bin"}],
       "outputArtifacts": [{"name": "Bundle", "files": ["dist/**/*"]}]},
      {"name": "Notify", "runOrder": 3,
       "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
       "configuration": {"FunctionName": "notify"}}
    ]},
    {"name": "Release", "actions": [
      {"name": "Approve", "runOrder": 1,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      {"name": "Publish", "runOrder": 2,
       "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
       "configuration": {"BucketName": "site", "Extract": "true"},
       "inputArtifacts": [{"name": "Bundle"}]}
    ]}
  ]
}"#;

/// Names too long for readable state names: a 100-character pipeline name,
/// stage names of 70 (its enter state fits, its group states do not) and 100
/// characters, source action names of 73 (`Source.<name>` fits, its
/// `.Failed` does not) and 100 characters.
fn long_names() -> String {
    let pipeline = format!("long-names-{}", "p".repeat(89));
    let stage70 = format!("Stage-{}", "s".repeat(64));
    let stage100 = format!("Deploy-{}", "d".repeat(93));
    let action73 = format!("Action-{}", "a".repeat(66));
    let action100 = format!("Action-{}", "b".repeat(93));
    format!(
        r#"{{
  "name": "{pipeline}", "version": 12,
  "roleArn": "arn:aws:iam::123456789012:role/long",
  "artifactStore": {{"type": "S3", "location": "long-artifacts"}},
  "stages": [
    {{"name": "Source", "actions": [{{
      "name": "{action100}",
      "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}},
      "configuration": {{"S3Bucket": "src", "S3ObjectKey": "app.zip"}},
      "outputArtifacts": [{{"name": "Src"}}]
    }}, {{
      "name": "{action73}",
      "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}},
      "configuration": {{"S3Bucket": "src", "S3ObjectKey": "other.zip"}},
      "outputArtifacts": [{{"name": "Other"}}]
    }}]}},
    {{"name": "{stage70}", "actions": [
      {{"name": "Short", "runOrder": 1,
       "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
       "configuration": {{"FunctionName": "f"}}}},
      {{"name": "Invoke", "runOrder": 2,
       "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "StepFunctions", "version": "1"}},
       "configuration": {{"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:x"}},
       "inputArtifacts": [{{"name": "Other"}}]}}
    ]}},
    {{"name": "{stage100}", "actions": [
      {{"name": "Deploy",
       "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}},
       "configuration": {{"ActionMode": "CREATE_UPDATE", "StackName": "app",
                         "RoleArn": "arn:aws:iam::123456789012:role/cfn", "TemplatePath": "Src::template.yaml"}},
       "inputArtifacts": [{{"name": "Src"}}]}}
    ]}}
  ]
}}"#
    )
}

/// Names whose readable state names clash: actions named like a stage's own
/// states (`Enter`, `Group1`, `Failed`), an action `X.Failed` next to `X`, a
/// stage `Build.Group1` whose action `Check` reads like `Build`'s group check,
/// and a stage `S2` (with an action `A1`) whose names read like index forms.
const NAME_CLASHES: &str = r#"{
  "name": "name-clashes", "version": 1,
  "roleArn": "arn:aws:iam::123456789012:role/clashes",
  "artifactStore": {"type": "S3", "location": "clashes-artifacts"},
  "stages": [
    {"name": "Source", "actions": [{
      "name": "Source",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
      "configuration": {"RepositoryName": "app"},
      "outputArtifacts": [{"name": "Image"}]
    }]},
    {"name": "Build", "actions": [
      {"name": "Enter", "runOrder": 1,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      {"name": "Group1", "runOrder": 1,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      {"name": "Failed", "runOrder": 2,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      {"name": "X", "runOrder": 2,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      {"name": "X.Failed", "runOrder": 3,
       "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}
    ]},
    {"name": "Build.Group1", "actions": [
      {"name": "Check",
       "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
       "configuration": {"FunctionName": "check"}}
    ]},
    {"name": "S2", "actions": [
      {"name": "A1",
       "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
       "configuration": {"ClusterName": "c", "ServiceName": "s"},
       "inputArtifacts": [{"name": "Image"}]}
    ]}
  ]
}"#;

/// Every case: golden name and pipeline.
fn cases() -> Vec<(String, PipelineDeclaration)> {
    let mut cases = samples();
    for (name, text) in [
        ("three-groups", THREE_GROUPS.to_owned()),
        ("long-names", long_names()),
        ("name-clashes", NAME_CLASHES.to_owned()),
    ] {
        cases.push((
            name.to_owned(),
            parse_pipeline(&text).expect("test pipeline parses"),
        ));
    }
    cases
}

#[test]
fn every_case_is_a_valid_pipeline() {
    for (name, p) in cases() {
        if let Err(problems) = validate(&p) {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("{name} is not valid:\n{}", lines.join("\n"));
        }
    }
}

#[test]
fn definitions_match_their_golden_files() {
    let bless = std::env::var_os("PIPEWRIGHT_BLESS").is_some();
    let dir = golden_dir();
    if bless {
        fs::create_dir_all(&dir).expect("create golden dir");
    }
    let mut failures = Vec::new();
    let mut expected_files = Vec::new();
    for (name, p) in cases() {
        let asl = compile(&p, &targets());
        let problems = support::asl::problems(&p, &asl);
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        // Compiling is deterministic.
        assert_eq!(asl, compile(&p, &targets()), "{name}");

        let file = format!("{name}.asl.json");
        let path = dir.join(&file);
        expected_files.push(file);
        let pretty = serde_json::to_string_pretty(&asl).expect("serialize") + "\n";
        if bless {
            fs::write(&path, pretty).expect("write golden file");
            continue;
        }
        let golden: Value = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).expect("golden file is JSON"),
            Err(e) => {
                failures.push(format!(
                    "{}: {e} (run with PIPEWRIGHT_BLESS=1)",
                    path.display()
                ));
                continue;
            }
        };
        if golden != asl {
            failures.push(format!(
                "{} differs; the definition is now:\n{pretty}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // No stale golden file is left behind (asl-validator checks them all).
    let mut present: Vec<String> = fs::read_dir(&dir)
        .expect("list golden dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(present, expected_files, "golden files without a case");
}

#[test]
fn long_and_clashing_names_take_index_forms() {
    let cases: Vec<(String, PipelineDeclaration)> = cases();
    let find = |name: &str| {
        let p = &cases.iter().find(|(n, _)| n == name).expect("case").1;
        compile(p, &targets())
    };

    let long = find("long-names");
    let states = long["States"].as_object().expect("states");
    // Stage 2's name is 70 characters: `.Enter` would fit, `.Group1.Outcome` not,
    // so the whole stage takes index forms; same for the 100-character stage 3.
    for name in ["S2.Enter", "S2.Group2.Outcome", "S2.Leave", "S3.Failed"] {
        assert!(states.contains_key(name), "{name} missing");
    }
    let group = &states["S2.Group2"]["Branches"][0]["States"];
    assert!(group.get("S2.A2").is_some() && group.get("S2.A2.Failed").is_some());
    let sources = &states["Source.Group1"]["Branches"];
    assert!(sources[0]["States"].get("S1.A1").is_some(), "{sources}");
    assert!(
        sources[1]["States"].get("S1.A2.Failed").is_some(),
        "{sources}"
    );

    let three = find("three-groups");
    let branches = &three["States"]["Build.Group3"]["Branches"];
    assert!(branches[0]["States"].get("S2.A4").is_some(), "{branches}");
    assert!(
        branches[1]["States"].get("Build.Notify").is_some(),
        "{branches}"
    );

    let clashes = find("name-clashes");
    let states = clashes["States"].as_object().expect("states");
    for name in [
        "Build.Enter",
        "Build.Group1",
        "Build.Failed",
        "Build.Group1.Check",
    ] {
        assert_eq!(
            states[name]["Type"],
            match name {
                "Build.Group1" => "Parallel",
                _ => "Task",
            },
            "{name} belongs to the stage"
        );
    }
    let group1 = &states["Build.Group1"]["Branches"];
    assert!(group1[0]["States"].get("S2.A1").is_some(), "action Enter");
    assert!(group1[1]["States"].get("S2.A2").is_some(), "action Group1");
    let group2 = &states["Build.Group2"]["Branches"];
    assert!(group2[0]["States"].get("S2.A3").is_some(), "action Failed");
    assert!(group2[1]["States"].get("Build.X").is_some(), "action X");
    let group3 = &states["Build.Group3"]["Branches"];
    assert!(
        group3[0]["States"].get("S2.A5").is_some(),
        "action X.Failed"
    );
    let check = &states["Build.Group1.Group1"]["Branches"][0]["States"];
    assert!(
        check.get("S3.A1").is_some(),
        "action Check of stage Build.Group1"
    );
    // Stage `S2`'s readable names are stage 2's index forms: it takes its own.
    let s2 = &states["S4.Group1"]["Branches"][0]["States"];
    assert!(s2.get("S4.A1").is_some(), "action A1 of stage S2: {s2}");
}

#[test]
fn state_machine_names_fit() {
    for (_, p) in cases() {
        let version = p.version.unwrap_or(1);
        let name = state_machine_name(&p.name, version);
        assert!(name.len() <= 80, "{name}");
        assert!(name.ends_with(&format!("-v{version}")), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{name}"
        );
    }
    assert_eq!(
        state_machine_name("pipewright-sample", 1),
        "pipewright-pipewright-sample-v1"
    );
}
