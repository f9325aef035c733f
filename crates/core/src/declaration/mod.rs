//! The pipeline declaration: CodePipeline's `PipelineDeclaration` and every
//! shape nested in it, exactly as `aws codepipeline get-pipeline` prints it and
//! `aws codepipeline create-pipeline` takes it.
//!
//! Member names, required members and closed value sets follow botocore's
//! service model for `codepipeline` (API version 2015-07-09). Every struct
//! refuses unknown fields, every closed value set is an enum, and every
//! optional member is an [`Option`] that is left out on output, so that a
//! document read with [`parse_pipeline`] and written with [`to_json_pretty`]
//! keeps all its content.
//!
//! This module only checks *shape* (names, types, enum values). The rules
//! about what makes a pipeline runnable live in [`crate::validation`].
//!
//! The shapes are split by where they sit: the pipeline itself here,
//! `stage`, `action`, `conditions` (stage conditions and their rules),
//! `triggers`, `configuration` (configuration maps and secret masking) and
//! `parse` (reading and writing documents); every type is re-exported here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Declares a closed set of wire strings as a Rust enum: serde renames each
/// variant to its exact wire spelling, and the enum gets `ALL`, `as_str` and
/// `Display`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// Other modules of the crate declare their wire enums the same way.
pub(crate) use wire_enum;

mod action;
mod conditions;
mod configuration;
mod parse;
mod stage;
mod triggers;

pub use action::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, EnvironmentVariable,
    EnvironmentVariableType, InputArtifact, OutputArtifact,
};
pub use conditions::{
    BeforeEntryConditions, Condition, ConditionResult, FailureConditions, RetryConfiguration,
    RuleCategory, RuleDeclaration, RuleOwner, RuleTypeId, StageRetryMode, SuccessConditions,
};
pub use configuration::{masked_configuration, Configuration, MASKED, SECRET_CONFIGURATION_KEYS};
pub use parse::{parse_pipeline, to_json_pretty, ParseError};
pub use stage::{BlockerDeclaration, BlockerType, StageDeclaration};
pub use triggers::{
    GitConfiguration, GitFilterCriteria, GitPullRequestEventType, GitPullRequestFilter,
    GitPushFilter, PipelineTriggerDeclaration, TriggerProviderType,
};

wire_enum! {
    /// `ExecutionMode`: how executions share the pipeline's stages.
    #[derive(Default)]
    ExecutionMode {
        /// A stage holds one execution; a newer waiting execution supersedes an older one.
        #[default]
        Superseded => "SUPERSEDED",
        /// Executions go through one by one in arrival order.
        Queued => "QUEUED",
        /// Executions run independently of each other.
        Parallel => "PARALLEL",
    }
}

wire_enum! {
    /// `PipelineType`: V1 or V2 (V2 adds variables, triggers, execution modes, ...).
    PipelineType {
        /// The original pipeline type.
        V1 => "V1",
        /// The pipeline type with pipeline variables, triggers and execution modes.
        V2 => "V2",
    }
}

wire_enum! {
    /// `ArtifactStoreType`: the kind of artifact store.
    ArtifactStoreType {
        /// An S3 bucket.
        S3 => "S3",
    }
}

wire_enum! {
    /// `EncryptionKeyType`: the kind of key encrypting the artifact store.
    EncryptionKeyType {
        /// An AWS KMS key (symmetric).
        Kms => "KMS",
    }
}

/// `PipelineDeclaration`: the whole pipeline structure.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineDeclaration {
    /// The pipeline's name.
    pub name: String,
    /// The service role CodePipeline (here: Pipewright) acts as.
    pub role_arn: String,
    /// The single-region artifact store. Exactly one of this and `artifact_stores`.
    #[serde(default)]
    pub artifact_store: Option<ArtifactStore>,
    /// Cross-region artifact stores, by region name.
    #[serde(default)]
    pub artifact_stores: Option<BTreeMap<String, ArtifactStore>>,
    /// The stages, in order.
    pub stages: Vec<StageDeclaration>,
    /// The pipeline version (starts at 1, incremented on every update).
    #[serde(default)]
    pub version: Option<u32>,
    /// The execution mode (SUPERSEDED when absent).
    #[serde(default)]
    pub execution_mode: Option<ExecutionMode>,
    /// The pipeline type (V1 when absent).
    #[serde(default)]
    pub pipeline_type: Option<PipelineType>,
    /// Pipeline-level variables (`#{variables.name}`), V2 only.
    #[serde(default)]
    pub variables: Option<Vec<PipelineVariableDeclaration>>,
    /// Triggers on git pushes and pull requests, V2 only.
    #[serde(default)]
    pub triggers: Option<Vec<PipelineTriggerDeclaration>>,
}

impl PipelineDeclaration {
    /// The execution mode in force (SUPERSEDED when not declared).
    pub fn execution_mode(&self) -> ExecutionMode {
        self.execution_mode.unwrap_or_default()
    }

    /// The pipeline type in force (V1 when not declared, as CodePipeline does).
    pub fn pipeline_type(&self) -> PipelineType {
        self.pipeline_type.unwrap_or(PipelineType::V1)
    }

    /// The declared pipeline variables (empty when none).
    pub fn variables(&self) -> &[PipelineVariableDeclaration] {
        self.variables.as_deref().unwrap_or_default()
    }

    /// The declared triggers (empty when none).
    pub fn triggers(&self) -> &[PipelineTriggerDeclaration] {
        self.triggers.as_deref().unwrap_or_default()
    }

    /// Every action with its stage index and action index, in declaration order.
    pub fn actions(&self) -> impl Iterator<Item = (usize, usize, &ActionDeclaration)> {
        self.stages.iter().enumerate().flat_map(|(s, stage)| {
            stage
                .actions
                .iter()
                .enumerate()
                .map(move |(a, action)| (s, a, action))
        })
    }
}

/// `ArtifactStore`: where artifacts are kept.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactStore {
    /// The store type (`S3`).
    #[serde(rename = "type")]
    pub store_type: ArtifactStoreType,
    /// The bucket name.
    pub location: String,
    /// The KMS key encrypting the artifacts (the AWS-managed key when absent).
    #[serde(default)]
    pub encryption_key: Option<EncryptionKey>,
}

/// `EncryptionKey`: the key encrypting an artifact store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionKey {
    /// The key id, ARN or alias ARN.
    pub id: String,
    /// The key type (`KMS`).
    #[serde(rename = "type")]
    pub key_type: EncryptionKeyType,
}

/// `PipelineVariableDeclaration`: a pipeline-level variable.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineVariableDeclaration {
    /// The variable's name (`#{variables.name}`).
    pub name: String,
    /// The value used when an execution does not override it.
    #[serde(default)]
    pub default_value: Option<String>,
    /// A description.
    #[serde(default)]
    pub description: Option<String>,
}

#[cfg(test)]
mod tests {
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

        let with_null =
            MINIMAL_JSON.replace(r#""inputArtifacts": []"#, r#""inputArtifacts": null"#);
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
}
