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

use std::collections::BTreeMap;
use std::fmt;

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

wire_enum! {
    /// `ActionCategory`: what kind of work an action does.
    ActionCategory {
        /// Produces the pipeline's source artifacts; only in the first stage.
        Source => "Source",
        /// Builds.
        Build => "Build",
        /// Deploys.
        Deploy => "Deploy",
        /// Tests.
        Test => "Test",
        /// Invokes a function or state machine.
        Invoke => "Invoke",
        /// Waits for a person (manual approval).
        Approval => "Approval",
        /// Runs commands (the V2 `Commands` action).
        Compute => "Compute",
    }
}

wire_enum! {
    /// `ActionOwner`: who provides the action type.
    ActionOwner {
        /// Provided by AWS.
        Aws => "AWS",
        /// Provided by a third party (e.g. GitHub version 1).
        ThirdParty => "ThirdParty",
        /// A custom action type.
        Custom => "Custom",
    }
}

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

wire_enum! {
    /// `BlockerType`: the kind of stage blocker.
    BlockerType {
        /// A schedule.
        Schedule => "Schedule",
    }
}

wire_enum! {
    /// `EnvironmentVariableType`: where an environment variable's value comes from.
    EnvironmentVariableType {
        /// The value is the text itself.
        Plaintext => "PLAINTEXT",
        /// The value names a Secrets Manager secret.
        SecretsManager => "SECRETS_MANAGER",
    }
}

wire_enum! {
    /// `Result`: what a stage condition (or `onFailure`) does.
    ConditionResult {
        /// Roll the stage back to the last successful execution.
        Rollback => "ROLLBACK",
        /// Fail the stage.
        Fail => "FAIL",
        /// Retry the stage.
        Retry => "RETRY",
        /// Skip the stage.
        Skip => "SKIP",
    }
}

wire_enum! {
    /// `StageRetryMode`: which actions a stage retry re-runs.
    StageRetryMode {
        /// Only the failed actions.
        FailedActions => "FAILED_ACTIONS",
        /// Every action of the stage.
        AllActions => "ALL_ACTIONS",
    }
}

wire_enum! {
    /// `RuleCategory`: the category of a condition rule.
    RuleCategory {
        /// The only category.
        Rule => "Rule",
    }
}

wire_enum! {
    /// `RuleOwner`: who provides a condition rule type.
    RuleOwner {
        /// Provided by AWS.
        Aws => "AWS",
    }
}

wire_enum! {
    /// `PipelineTriggerProviderType`: the kind of source a trigger watches.
    TriggerProviderType {
        /// A CodeStar connection (GitHub, GitLab, Bitbucket, ...).
        CodeStarSourceConnection => "CodeStarSourceConnection",
    }
}

wire_enum! {
    /// `GitPullRequestEventType`: a pull-request event a trigger reacts to.
    GitPullRequestEventType {
        /// A pull request was opened.
        Open => "OPEN",
        /// A pull request was updated.
        Updated => "UPDATED",
        /// A pull request was closed.
        Closed => "CLOSED",
    }
}

/// An action's or rule's `configuration`: configuration key to value.
pub type Configuration = BTreeMap<String, String>;

/// Configuration keys whose values are secrets: CodePipeline answers them masked
/// ([`MASKED`]) and never shows them again.
pub const SECRET_CONFIGURATION_KEYS: &[&str] = &["OAuthToken"];

/// What a secret configuration value reads as in every answer.
pub const MASKED: &str = "****";

/// `configuration` with its secret values masked.
pub fn masked_configuration(configuration: &Configuration) -> Configuration {
    let mut out = configuration.clone();
    for key in SECRET_CONFIGURATION_KEYS {
        if let Some(v) = out.get_mut(*key) {
            *v = MASKED.to_string();
        }
    }
    out
}

impl PipelineDeclaration {
    /// The declaration as the API shows it: secret configuration values masked.
    pub fn masked(&self) -> PipelineDeclaration {
        let mut out = self.clone();
        for action in out.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
            if let Some(c) = &mut action.configuration {
                *c = masked_configuration(c);
            }
        }
        out
    }

    /// Secret configuration values sent back masked (a GetPipeline answer round-tripped into
    /// UpdatePipeline) keep the value `previous` has for the same stage and action of the same
    /// type. A masked value with nothing to keep is an error naming the member.
    pub fn keep_masked_secrets(&mut self, previous: &PipelineDeclaration) -> Result<(), String> {
        for (i, stage) in self.stages.iter_mut().enumerate() {
            for (j, action) in stage.actions.iter_mut().enumerate() {
                let Some(configuration) = &mut action.configuration else {
                    continue;
                };
                let before = previous
                    .stages
                    .iter()
                    .find(|s| s.name == stage.name)
                    .and_then(|s| s.actions.iter().find(|a| a.name == action.name))
                    .filter(|a| a.action_type_id == action.action_type_id)
                    .and_then(|a| a.configuration.as_ref());
                for key in SECRET_CONFIGURATION_KEYS {
                    if configuration.get(*key).map(String::as_str) != Some(MASKED) {
                        continue;
                    }
                    match before.and_then(|b| b.get(*key)) {
                        Some(value) => {
                            configuration.insert(key.to_string(), value.clone());
                        }
                        None => {
                            return Err(format!(
                                "pipeline.stages[{i}].actions[{j}].configuration.{key}: \
                                 {MASKED} stands for a stored secret, and this action had \
                                 none; send the value itself"
                            ))
                        }
                    }
                }
            }
        }
        Ok(())
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

/// `StageDeclaration`: one stage.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDeclaration {
    /// The stage's name, unique in the pipeline.
    pub name: String,
    /// Reserved for future use by CodePipeline.
    #[serde(default)]
    pub blockers: Option<Vec<BlockerDeclaration>>,
    /// The stage's actions.
    pub actions: Vec<ActionDeclaration>,
    /// What happens when the stage fails.
    #[serde(default)]
    pub on_failure: Option<FailureConditions>,
    /// Conditions checked when the stage succeeds.
    #[serde(default)]
    pub on_success: Option<SuccessConditions>,
    /// Conditions checked before the stage is entered.
    #[serde(default)]
    pub before_entry: Option<BeforeEntryConditions>,
}

/// `BlockerDeclaration`: reserved by CodePipeline for future use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockerDeclaration {
    /// The blocker's name.
    pub name: String,
    /// The blocker's type.
    #[serde(rename = "type")]
    pub blocker_type: BlockerType,
}

/// `ActionDeclaration`: one action of a stage.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionDeclaration {
    /// The action's name, unique in its stage.
    pub name: String,
    /// Which action type (provider) runs the action.
    pub action_type_id: ActionTypeId,
    /// The action's position in the stage (1 when absent); equal run orders run in parallel.
    #[serde(default)]
    pub run_order: Option<u32>,
    /// Provider-specific configuration.
    ///
    /// Values are strings on the wire. As a convenience for YAML authors a
    /// boolean or number (`Extract: true`) is accepted and kept as its text.
    #[serde(default, deserialize_with = "lenient_configuration::deserialize")]
    pub configuration: Option<Configuration>,
    /// Shell commands (the `Compute`/`Commands` action).
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// The artifacts the action produces.
    #[serde(default)]
    pub output_artifacts: Option<Vec<OutputArtifact>>,
    /// The artifacts the action consumes.
    #[serde(default)]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    /// Environment variables the `Commands` action exports as output variables.
    #[serde(default)]
    pub output_variables: Option<Vec<String>>,
    /// The role the action runs as (the pipeline's role when absent).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The region the action runs in (the pipeline's region when absent).
    #[serde(default)]
    pub region: Option<String>,
    /// The namespace of the action's output variables (`#{namespace.key}`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The action's timeout (the action type's default when absent).
    #[serde(default)]
    pub timeout_in_minutes: Option<u32>,
    /// Environment variables for the action's compute.
    #[serde(default)]
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
}

impl ActionDeclaration {
    /// The run order in force (1 when not declared).
    pub fn run_order(&self) -> u32 {
        self.run_order.unwrap_or(1)
    }

    /// The configuration (empty when none).
    pub fn configuration(&self) -> &Configuration {
        static EMPTY: Configuration = BTreeMap::new();
        self.configuration.as_ref().unwrap_or(&EMPTY)
    }

    /// The input artifacts (empty when none).
    pub fn input_artifacts(&self) -> &[InputArtifact] {
        self.input_artifacts.as_deref().unwrap_or_default()
    }

    /// The output artifacts (empty when none).
    pub fn output_artifacts(&self) -> &[OutputArtifact] {
        self.output_artifacts.as_deref().unwrap_or_default()
    }

    /// The commands (empty when none).
    pub fn commands(&self) -> &[String] {
        self.commands.as_deref().unwrap_or_default()
    }
}

/// `ActionTypeId`: identifies an action type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionTypeId {
    /// The category (`Source`, `Build`, ...).
    pub category: ActionCategory,
    /// The owner (`AWS`, `ThirdParty`, `Custom`).
    pub owner: ActionOwner,
    /// The provider (`S3`, `CodeBuild`, `Manual`, ...).
    pub provider: String,
    /// The action type version (`1`).
    pub version: String,
}

impl fmt::Display for ActionTypeId {
    /// `Category/Owner/Provider (version V)`.
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        write!(
            f,
            "{}/{}/{} (version {})",
            self.category, self.owner, self.provider, self.version
        )
    }
}

/// `OutputArtifact`: an artifact an action produces.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputArtifact {
    /// The artifact's name, unique in the pipeline.
    pub name: String,
    /// Files to include (the `Commands` action).
    #[serde(default)]
    pub files: Option<Vec<String>>,
}

/// `InputArtifact`: an artifact an action consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputArtifact {
    /// The name of an artifact produced by an action that runs earlier.
    pub name: String,
}

/// `EnvironmentVariable`: an environment variable for an action's compute.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentVariable {
    /// The variable's name.
    pub name: String,
    /// The variable's value (may contain `#{namespace.key}` references).
    pub value: String,
    /// Where the value comes from (plain text when absent).
    #[serde(rename = "type", default)]
    pub variable_type: Option<EnvironmentVariableType>,
}

/// `FailureConditions`: what happens when a stage fails.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailureConditions {
    /// ROLLBACK, FAIL or RETRY.
    #[serde(default)]
    pub result: Option<ConditionResult>,
    /// How to retry (with `result: RETRY`).
    #[serde(default)]
    pub retry_configuration: Option<RetryConfiguration>,
    /// Conditions checked when the stage fails.
    #[serde(default)]
    pub conditions: Option<Vec<Condition>>,
}

/// `RetryConfiguration`: how a failed stage is retried.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryConfiguration {
    /// Which actions are re-run.
    #[serde(default)]
    pub retry_mode: Option<StageRetryMode>,
}

/// `SuccessConditions`: conditions checked when a stage succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuccessConditions {
    /// The conditions.
    pub conditions: Vec<Condition>,
}

/// `BeforeEntryConditions`: conditions checked before a stage is entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BeforeEntryConditions {
    /// The conditions.
    pub conditions: Vec<Condition>,
}

/// `Condition`: a result to apply when all of its rules pass.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// What happens when the condition is met.
    #[serde(default)]
    pub result: Option<ConditionResult>,
    /// The rules, all of which must pass.
    #[serde(default)]
    pub rules: Option<Vec<RuleDeclaration>>,
}

/// `RuleDeclaration`: one rule of a stage condition.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDeclaration {
    /// The rule's name.
    pub name: String,
    /// Which rule type checks the rule.
    pub rule_type_id: RuleTypeId,
    /// Rule-type-specific configuration.
    #[serde(default, deserialize_with = "lenient_configuration::deserialize")]
    pub configuration: Option<Configuration>,
    /// Shell commands (the `Commands` rule).
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    /// Artifacts the rule reads.
    #[serde(default)]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    /// The role the rule runs as.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The region the rule runs in.
    #[serde(default)]
    pub region: Option<String>,
    /// The rule's timeout.
    #[serde(default)]
    pub timeout_in_minutes: Option<u32>,
}

/// `RuleTypeId`: identifies a rule type.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleTypeId {
    /// The category (`Rule`).
    pub category: RuleCategory,
    /// The owner (`AWS`).
    #[serde(default)]
    pub owner: Option<RuleOwner>,
    /// The provider (`CloudWatchAlarm`, `VariableCheck`, ...).
    pub provider: String,
    /// The rule type version (`1`).
    #[serde(default)]
    pub version: Option<String>,
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

/// `PipelineTriggerDeclaration`: starts the pipeline on git events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineTriggerDeclaration {
    /// The source provider (`CodeStarSourceConnection`).
    pub provider_type: TriggerProviderType,
    /// Which source action and which git events.
    pub git_configuration: GitConfiguration,
}

/// `GitConfiguration`: the git events a trigger reacts to.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitConfiguration {
    /// The name of the source action the trigger starts the pipeline for.
    pub source_action_name: String,
    /// Push filters (any may match).
    #[serde(default)]
    pub push: Option<Vec<GitPushFilter>>,
    /// Pull-request filters (any may match).
    #[serde(default)]
    pub pull_request: Option<Vec<GitPullRequestFilter>>,
}

/// `GitPushFilter`: which pushes start the pipeline.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitPushFilter {
    /// Tag name patterns.
    #[serde(default)]
    pub tags: Option<GitFilterCriteria>,
    /// Branch name patterns.
    #[serde(default)]
    pub branches: Option<GitFilterCriteria>,
    /// Changed file path patterns.
    #[serde(default)]
    pub file_paths: Option<GitFilterCriteria>,
}

/// `GitPullRequestFilter`: which pull-request events start the pipeline.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitPullRequestFilter {
    /// The events.
    #[serde(default)]
    pub events: Option<Vec<GitPullRequestEventType>>,
    /// Branch name patterns.
    #[serde(default)]
    pub branches: Option<GitFilterCriteria>,
    /// Changed file path patterns.
    #[serde(default)]
    pub file_paths: Option<GitFilterCriteria>,
}

/// `GitTagFilterCriteria` / `GitBranchFilterCriteria` / `GitFilePathFilterCriteria`
/// (one shape): glob patterns to include and exclude.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitFilterCriteria {
    /// Patterns that match.
    #[serde(default)]
    pub includes: Option<Vec<String>>,
    /// Patterns that exclude.
    #[serde(default)]
    pub excludes: Option<Vec<String>>,
}

/// The document `aws codepipeline get-pipeline` prints: `{"pipeline": ..., "metadata": ...}`.
/// `create-pipeline --cli-input-json` takes the same wrapper without metadata.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineDocument {
    pipeline: PipelineDeclaration,
    // Read and dropped: the timestamps' format differs between the CLI
    // (ISO text) and the wire (epoch seconds), and nothing here needs them.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde::de::IgnoredAny>,
}

/// Configuration maps: string to string, with booleans and numbers accepted
/// (as their text) and duplicate keys refused.
mod lenient_configuration {
    use super::Configuration;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use std::fmt;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Configuration>, D::Error> {
        d.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Configuration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of configuration keys to string values")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(MapVisitor).map(Some)
        }
    }

    struct MapVisitor;

    impl<'de> Visitor<'de> for MapVisitor {
        type Value = Configuration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of configuration keys to string values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Configuration, A::Error> {
            let mut out = Configuration::new();
            while let Some(key) = map.next_key::<String>()? {
                let ScalarText(value) = map.next_value()?;
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "duplicate configuration key `{key}`"
                    )));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    /// A string, or a boolean / number kept as its text.
    struct ScalarText(String);

    impl<'de> de::Deserialize<'de> for ScalarText {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ScalarVisitor)
        }
    }

    struct ScalarVisitor;

    impl Visitor<'_> for ScalarVisitor {
        type Value = ScalarText;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<ScalarText, E> {
            Ok(ScalarText(v))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
            Ok(ScalarText(v.to_string()))
        }
    }
}

/// Why a declaration document could not be read.
///
/// Displays as `line L, column C: <path>: <message>`, leaving out the parts
/// that are unknown (a syntax error has no path; an error from a reader that
/// does not track positions has no line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line of the error, when known.
    pub line: Option<usize>,
    /// 1-based column of the error, when known.
    pub column: Option<usize>,
    /// Where in the document, e.g. `stages[0].actions[1]` (empty at the top level).
    pub path: String,
    /// What is wrong, e.g. ``unknown field `foo`, expected one of ...``.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Reads a pipeline declaration from JSON or YAML text.
///
/// The text is JSON when its first non-blank character is `{`, YAML
/// otherwise. Accepted shapes:
/// - the bare declaration `{"name": ..., "stages": [...]}`;
/// - the wrapper `{"pipeline": {...}}` that `create-pipeline --cli-input-json` takes;
/// - the whole `get-pipeline` output `{"pipeline": {...}, "metadata": {...}}`
///   (metadata is ignored).
///
/// Only the shape is checked here; use [`crate::validation::validate`] for
/// the rules.
pub fn parse_pipeline(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ParseError {
            line: None,
            column: None,
            path: String::new(),
            message: "the document is empty; expected a pipeline declaration".to_owned(),
        });
    }
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_yaml(text)
    }
}

/// Writes a declaration as pretty-printed JSON (camelCase, absent members left out).
pub fn to_json_pretty(pipeline: &PipelineDeclaration) -> String {
    // Serializing these types cannot fail: every map has string keys and
    // there are no non-finite floats.
    serde_json::to_string_pretty(pipeline)
        .unwrap_or_else(|e| unreachable!("a PipelineDeclaration always serializes to JSON: {e}"))
}

fn parse_json(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let wrapped = matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Object(ref top)) if top.contains_key("pipeline")
    );
    if wrapped {
        deserialize_json::<PipelineDocument>(text).map(|doc| doc.pipeline)
    } else {
        deserialize_json::<PipelineDeclaration>(text)
    }
}

fn parse_yaml(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let wrapped = matches!(
        serde_yaml::from_str::<serde_yaml::Value>(text),
        Ok(serde_yaml::Value::Mapping(ref top)) if top.contains_key("pipeline")
    );
    if wrapped {
        deserialize_yaml::<PipelineDocument>(text).map(|doc| doc.pipeline)
    } else {
        deserialize_yaml::<PipelineDeclaration>(text)
    }
}

fn deserialize_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = path_text(e.path());
        let inner = e.into_inner();
        json_error(&inner, path)
    })?;
    de.end().map_err(|e| json_error(&e, String::new()))?;
    Ok(value)
}

fn json_error(e: &serde_json::Error, path: String) -> ParseError {
    let full = e.to_string();
    let (line, column) = (e.line(), e.column());
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    ParseError {
        line: (line > 0).then_some(line),
        column: (line > 0).then_some(column),
        path,
        message,
    }
}

fn deserialize_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = path_text(e.path());
        let inner = e.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        // serde_yaml appends " at line L column C" and may prefix its own
        // path; both are reported separately here.
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        if let Some((prefix, rest)) = message.split_once(": ") {
            let looks_like_path = !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]-@".contains(c));
            if looks_like_path {
                message = rest.to_owned();
            }
        }
        ParseError {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            path,
            message,
        }
    })
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    // "." is the root; "?" a position serde could not name (a syntax error).
    if text == "." || text == "?" {
        String::new()
    } else {
        text
    }
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
