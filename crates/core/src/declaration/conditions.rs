//! Stage conditions: what happens before a stage is entered, when it
//! succeeds and when it fails (`onFailure` with rollback and retry), and the
//! rules a condition checks.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::configuration::lenient_configuration;
use super::{Configuration, InputArtifact};

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
