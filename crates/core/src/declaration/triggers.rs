//! Triggers: `PipelineTriggerDeclaration` and the git push and pull-request
//! filters that start a pipeline.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

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
