//! Loads every sample declaration in `infra/pipelines`.
//!
//! - Each `*.json` / `*.yaml` directly in `infra/pipelines` must parse and validate.
//! - Each file in `infra/pipelines/invalid` must fail with exactly the lines
//!   of its sibling `*.expected` file: one `path: reason` line per problem,
//!   or the one parse error line.
//!
//! Run with `PIPEWRIGHT_BLESS=1` to rewrite the `.expected` files from the
//! current output (then review the diff).

mod support;

use std::fs;
use std::path::Path;

use pipewright_core::{parse_pipeline, to_json_pretty, validate};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// What `pipewright validate` would report for `text`, one line per problem.
fn report(text: &str) -> Vec<String> {
    match parse_pipeline(text) {
        Err(e) => vec![e.to_string()],
        Ok(pipeline) => match validate(&pipeline) {
            Ok(()) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        },
    }
}

#[test]
fn valid_samples_parse_and_validate() {
    let files = support::sample_files();
    assert!(files.len() >= 3, "expected the samples, found {files:?}");
    for path in files {
        let lines = report(&read(&path));
        assert!(
            lines.is_empty(),
            "{} should be valid, but:\n{}",
            path.display(),
            lines.join("\n")
        );
    }
}

#[test]
fn invalid_samples_report_exactly_their_expected_lines() {
    let dir = support::pipelines_dir().join("invalid");
    let files = support::declaration_files(&dir);
    assert!(
        files.len() >= 5,
        "expected invalid samples, found {files:?}"
    );
    let bless = std::env::var_os("PIPEWRIGHT_BLESS").is_some();
    let mut failures = Vec::new();
    for path in files {
        let actual = report(&read(&path));
        assert!(!actual.is_empty(), "{} should be invalid", path.display());
        let expected_path = path.with_extension("expected");
        if bless {
            fs::write(&expected_path, actual.join("\n") + "\n").expect("write .expected");
            continue;
        }
        let expected: Vec<String> = read(&expected_path)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        if actual != expected {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{}",
                path.display(),
                expected.join("\n"),
                actual.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_expected_file_has_its_declaration() {
    let dir = support::pipelines_dir().join("invalid");
    for entry in fs::read_dir(&dir).expect("list invalid") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("expected") {
            let has_sibling = ["json", "yaml", "yml"]
                .iter()
                .any(|ext| path.with_extension(ext).exists());
            assert!(has_sibling, "{} has no declaration", path.display());
        }
    }
}

#[test]
fn get_pipeline_output_loads_unchanged() {
    let text = read(&support::pipelines_dir().join("get-pipeline-output.json"));
    let original: serde_json::Value = serde_json::from_str(&text).expect("json");
    let pipeline = parse_pipeline(&text).expect("parses");
    let written: serde_json::Value =
        serde_json::from_str(&to_json_pretty(&pipeline)).expect("written json");
    assert_eq!(written, original["pipeline"]);
}

#[test]
fn json_and_yaml_samples_are_the_same_pipeline() {
    let json = parse_pipeline(&read(&support::pipelines_dir().join("sample.json"))).expect("json");
    let mut yaml =
        parse_pipeline(&read(&support::pipelines_dir().join("sample.yaml"))).expect("yaml");
    assert_eq!(json.name, "pipewright-sample");
    assert_eq!(yaml.name, "pipewright-sample-yaml");
    yaml.name = json.name.clone();
    assert_eq!(yaml, json);
}

/// Pipelines as CodePipeline users have them (`infra/pipelines/published`, `get-pipeline`
/// output of the documented shapes: S3 or CodeCommit sources, CodeBuild, every CloudFormation
/// change-set step with an approval between, CodeDeploy, ECS, Step Functions with variables and
/// stage conditions, a connection source with git triggers, ECR and Commands feeding
/// CloudFormation parameters) load and validate unchanged; the end-to-end suite runs four of them
/// on the emulator's services (`tests/e2e/published.rs`).
#[test]
fn published_pipeline_definitions_load_and_validate_unchanged() {
    let files = support::declaration_files(&support::pipelines_dir().join("published"));
    let mut providers = std::collections::BTreeSet::new();
    for path in &files {
        let text = read(path);
        let lines = report(&text);
        assert!(
            lines.is_empty(),
            "{} should be valid, but:\n{}",
            path.display(),
            lines.join("\n")
        );
        let pipeline = parse_pipeline(&text).unwrap();
        for stage in &pipeline.stages {
            for action in &stage.actions {
                providers.insert(action.action_type_id.provider.clone());
            }
        }
    }
    for provider in [
        "CodeBuild",
        "CloudFormation",
        "CodeDeploy",
        "ECS",
        "StepFunctions",
        "Manual",
    ] {
        assert!(
            providers.contains(provider),
            "no published definition uses {provider}: {providers:?}"
        );
    }
}
