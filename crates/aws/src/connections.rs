//! Git connection tokens (Secrets Manager), for the git source actions of the `action` function.
//!
//! A `CodeStarSourceConnection` action's token is the secret named
//! `<CONNECTION_SECRET_PREFIX><connection id>` (the id is the last part of the connection ARN;
//! the prefix defaults to `pipewright/connections/`), read at each run so a rotated token takes
//! effect at once. Values are never logged.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use pipewright_core::declaration::SecretReference;
use pipewright_core::git_source::DEFAULT_CONNECTION_SECRET_PREFIX;

use crate::error_chain;

/// Where connection tokens are.
#[derive(Debug, Clone)]
pub struct ConnectionSecrets {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

/// Why a connection's secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// There is no such secret.
    #[error("no secret {0}")]
    NotFound(String),
    /// Secrets Manager refused access.
    #[error("{0}")]
    AccessDenied(String),
    /// The secret has no value where the reference points (no such JSON key).
    #[error("{0}")]
    NoSuchValue(String),
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

impl ConnectionSecrets {
    /// Secrets read with `client` under `prefix`.
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_string(),
        }
    }

    /// The secrets of the process environment (`CONNECTION_SECRET_PREFIX`, else
    /// [`DEFAULT_CONNECTION_SECRET_PREFIX`]).
    pub fn from_env(sdk: &SdkConfig) -> Self {
        let prefix = std::env::var("CONNECTION_SECRET_PREFIX")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CONNECTION_SECRET_PREFIX.to_string());
        Self::new(aws_sdk_secretsmanager::Client::new(sdk), &prefix)
    }

    /// The prefix of connection secret names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The value reference `r` stands for: the version it names (else the current one), the
    /// JSON key it names (else the whole string).
    pub async fn read_reference(&self, r: &SecretReference) -> Result<String, SecretError> {
        let value = self
            .read_version(
                &r.secret_id,
                r.version_stage.as_deref(),
                r.version_id.as_deref(),
            )
            .await?;
        r.select(&value).map_err(SecretError::NoSuchValue)
    }

    /// The string value of secret `name`.
    pub async fn read(&self, name: &str) -> Result<String, SecretError> {
        self.read_version(name, None, None).await
    }

    async fn read_version(
        &self,
        name: &str,
        stage: Option<&str>,
        version: Option<&str>,
    ) -> Result<String, SecretError> {
        let request = self
            .client
            .get_secret_value()
            .secret_id(name)
            .set_version_stage(stage.map(str::to_string))
            .set_version_id(version.map(str::to_string));
        match request.send().await {
            Ok(out) => Ok(out
                .secret_string()
                .map(str::to_string)
                .or_else(|| {
                    out.secret_binary()
                        .and_then(|b| String::from_utf8(b.as_ref().to_vec()).ok())
                })
                .unwrap_or_default()),
            Err(e) => {
                let call = format!("secretsmanager:GetSecretValue {name}");
                Err(match e.code() {
                    Some("ResourceNotFoundException") => SecretError::NotFound(name.to_string()),
                    Some("AccessDeniedException") => {
                        SecretError::AccessDenied(error_chain(&call, &e))
                    }
                    _ => SecretError::Other(error_chain(&call, &e)),
                })
            }
        }
    }
}
