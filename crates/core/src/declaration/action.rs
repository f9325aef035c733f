//! Actions: `ActionDeclaration`, the action type that runs it, and the
//! artifacts and environment variables it declares.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::configuration::lenient_configuration;
use super::Configuration;

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
    /// `EnvironmentVariableType`: where an environment variable's value comes from.
    EnvironmentVariableType {
        /// The value is the text itself.
        Plaintext => "PLAINTEXT",
        /// The value names a Secrets Manager secret.
        SecretsManager => "SECRETS_MANAGER",
    }
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
