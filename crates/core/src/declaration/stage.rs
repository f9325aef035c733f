//! Stages: `StageDeclaration` and its (reserved) blockers.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{ActionDeclaration, BeforeEntryConditions, FailureConditions, SuccessConditions};

wire_enum! {
    /// `BlockerType`: the kind of stage blocker.
    BlockerType {
        /// A schedule.
        Schedule => "Schedule",
    }
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
