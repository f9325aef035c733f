//! # pipewright-core
//!
//! Pipewright's pure domain: no I/O, no AWS SDK, no async runtime.
//!
//! - [`declaration`]: CodePipeline's pipeline declaration (the JSON / YAML
//!   that `aws codepipeline create-pipeline` takes and `get-pipeline`
//!   prints), read with [`parse_pipeline`] and written with [`to_json_pretty`];
//! - [`providers`]: the action types Pipewright implements, with their
//!   artifact counts, required configuration and timeouts;
//! - [`variables`]: `#{namespace.key}` references, found and resolved;
//! - [`validation`]: every structural rule, reporting all problems at once
//!   with the path of the member at fault;
//! - [`store`]: the storage the domain needs, as traits (DynamoDB in
//!   `pipewright-aws`, in memory here for tests: the `memory` modules, compiled for core's
//!   own tests and with the `testing` feature);
//! - [`control_plane`]: CodePipeline's API operations over those traits;
//! - [`port_error`]: how a call through the engine's other ports (EventBridge, Step Functions,
//!   rule checks) failed, classified by what the engine decides on;
//! - [`asl`]: the Step Functions definition each pipeline version runs as;
//! - [`git_source`]: what a git source action fetches and produces;
//! - [`sources`]: what CodeCommit and ECR source actions fetch and produce.
//!
//! ```
//! use pipewright_core::{parse_pipeline, validate};
//!
//! let text = r#"{
//!   "name": "demo",
//!   "roleArn": "arn:aws:iam::123456789012:role/demo",
//!   "artifactStore": {"type": "S3", "location": "demo-artifacts"},
//!   "stages": [
//!     {"name": "Source", "actions": [{
//!       "name": "Fetch",
//!       "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
//!       "configuration": {"S3Bucket": "demo-src", "S3ObjectKey": "app.zip"},
//!       "outputArtifacts": [{"name": "App"}]
//!     }]},
//!     {"name": "Ship", "actions": [{
//!       "name": "Upload",
//!       "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
//!       "configuration": {"BucketName": "demo-site", "Extract": "true"},
//!       "inputArtifacts": [{"name": "Missing"}]
//!     }]}
//!   ]
//! }"#;
//! let pipeline = parse_pipeline(text).expect("well-formed");
//! let problems = validate(&pipeline).expect_err("an input is not produced");
//! assert_eq!(
//!     problems[0].to_string(),
//!     "stages[1].actions[0].inputArtifacts[0].name: artifact `Missing` is not produced by any action"
//! );
//! ```

#![warn(missing_docs)]

pub mod abort;
pub mod access;
pub mod asl;
pub mod cloudformation;
pub mod codebuild;
pub mod codedeploy;
pub mod conditions;
pub mod control_plane;
pub mod declaration;
pub mod ecs;
pub mod engine;
pub mod events;
pub mod execution;
pub mod git_source;
pub mod hex;
pub mod locks;
pub mod outbox;
pub mod port_error;
pub mod providers;
pub mod runner;
pub mod sources;
pub mod store;
pub mod sweep;
pub mod triggers;
pub mod validation;
pub mod variables;

// The engine's operations that have their own module paths (they live under `engine/`).
pub use engine::{approvals, control, jobs};

pub use declaration::{
    parse_pipeline, to_json_pretty, ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId,
    ExecutionMode, InputArtifact, OutputArtifact, ParseError, PipelineDeclaration, PipelineType,
    StageDeclaration,
};
pub use providers::{lookup, ActionTypeSpec};
pub use validation::{validate, Problem};
pub use variables::{references, resolve, UnresolvedVariable, VariableRef};
