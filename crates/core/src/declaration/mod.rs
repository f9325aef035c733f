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
mod secret_reference;
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
pub use secret_reference::{pipeline_secret_key, SecretReference, TakenSecrets};
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
mod tests;
