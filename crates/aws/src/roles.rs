//! Sessions of pipeline roles (`sts:AssumeRole`), for the action function: an action's AWS work
//! runs with the pipeline's role, never with the function's own (see
//! `pipewright_core::access::pipeline_roles` for the external id, session name and session
//! policy).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;

use crate::config::{self, Target};

/// STS's limits on a session's duration.
const MIN_DURATION: Duration = Duration::from_secs(900);
/// The default maximum of a role (a longer request fails unless the role allows it).
const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Assumes pipeline roles.
#[derive(Debug, Clone)]
pub struct PipelineRoles {
    sts: aws_sdk_sts::Client,
    sdk: SdkConfig,
    target: Target,
}

/// Why a role could not be assumed: the role, STS's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the action's role {role_arn} cannot be assumed: {reason}")]
pub struct AssumeRoleError {
    /// The role.
    pub role_arn: String,
    /// STS's error code and message.
    pub reason: String,
    /// STS's error code, when it answered with one.
    pub code: Option<String>,
}

/// STS codes that say the role, its trust or the request is wrong (not a passing failure).
const REFUSALS: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "NoSuchEntity",
    "ValidationError",
    "MalformedPolicyDocument",
    "PackedPolicyTooLarge",
    "RegionDisabledException",
];

impl AssumeRoleError {
    /// True when STS refused (the role, its trust policy or the session policy is at fault);
    /// false for throttling, server errors and no answer, which may pass.
    pub fn is_refusal(&self) -> bool {
        self.code.as_deref().is_some_and(|c| REFUSALS.contains(&c))
    }
}

/// A session of a pipeline role: its credentials, and SDK configuration that uses them.
#[derive(Debug, Clone)]
pub struct RoleSession {
    /// The role assumed.
    pub role_arn: String,
    /// The session's name.
    pub session_name: String,
    credentials: Credentials,
    sdk: SdkConfig,
    target: Target,
}

impl PipelineRoles {
    /// Roles assumed with the function's own identity (`sdk`); sessions' clients point where
    /// `target` says.
    pub fn new(sdk: &SdkConfig, target: &Target) -> Self {
        Self {
            sts: aws_sdk_sts::Client::new(sdk),
            sdk: sdk.clone(),
            target: target.clone(),
        }
    }

    /// Assume `role_arn` with `external_id`, `session_name` and the session `policy` (JSON),
    /// for at least `lasting` (within STS's 15 minutes to one hour).
    pub async fn assume(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
        policy: &str,
        lasting: Duration,
    ) -> Result<RoleSession, AssumeRoleError> {
        let duration = lasting.clamp(MIN_DURATION, MAX_DURATION);
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .external_id(external_id)
            .policy(policy)
            .duration_seconds(duration.as_secs() as i32)
            .send()
            .await
            .map_err(|err| AssumeRoleError {
                role_arn: role_arn.to_string(),
                code: err.code().map(str::to_string),
                reason: match err.code() {
                    Some(code) => format!(
                        "sts:AssumeRole: {code}: {}",
                        err.message().unwrap_or_default()
                    ),
                    None => crate::error_chain("sts:AssumeRole", &err),
                },
            })?;
        let Some(c) = out.credentials() else {
            return Err(AssumeRoleError {
                role_arn: role_arn.to_string(),
                reason: "sts:AssumeRole returned no credentials".into(),
                code: None,
            });
        };
        let expires = SystemTime::try_from(*c.expiration()).ok();
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expires,
            "pipewright-pipeline-role",
        );
        let sdk = self
            .sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials.clone()))
            .build();
        Ok(RoleSession {
            role_arn: role_arn.to_string(),
            session_name: session_name.to_string(),
            credentials,
            sdk,
            target: self.target.clone(),
        })
    }
}

impl RoleSession {
    /// SDK configuration with the session's credentials.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// An S3 client with the session's credentials.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        config::s3_client(&self.sdk, &self.target)
    }

    /// The session's credentials as the environment variables every AWS SDK and the AWS CLI read
    /// (what a Commands action's commands get).
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                self.credentials.access_key_id().to_string(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                self.credentials.secret_access_key().to_string(),
            ),
        ];
        if let Some(token) = self.credentials.session_token() {
            env.push(("AWS_SESSION_TOKEN".to_string(), token.to_string()));
        }
        env
    }
}
