//! Who may call the control plane, and what they may do (the authorization issue: "two doors,
//! one authorization").
//!
//! - [`sigv4`]: the key door's check that a request was signed (SigV4, service `codepipeline`)
//!   with a Pipewright-issued access key: the signature recomputed with the AWS SDK's own signer,
//!   compared in constant time, within 15 minutes of now.
//! - [`policy`]: one check for both doors, per operation and per pipeline, of a caller's
//!   [`policy::Grant`] (CodePipeline IAM action patterns and pipeline-name globs), before
//!   anything is read or written.
//!
//! - [`keys`]: Pipewright access keys, the [`keys::KeyStore`] port and its one-minute cache, and
//!   the key-management operations (IAM door only).
//! - [`gate`]: who is calling through which door, and the per-operation check.
//! - [`principals`]: the IAM door's check of the caller's own IAM policies
//!   (`iam:SimulatePrincipalPolicy`), cached a minute.
//!
//! The api function, the local gateways and the CLI's `keys` commands use these.

pub mod gate;
pub mod keys;
pub mod pipeline_roles;
pub mod policy;
pub mod principals;
pub mod sigv4;
