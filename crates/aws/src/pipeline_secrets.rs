//! The pipelines' own secrets: where the pipeline store puts the secret configuration values
//! (`OAuthToken`) a declaration gives plainly, so no pipeline item, action record or event
//! ever holds one.
//!
//! Pipeline `<name>`'s secret is `<PIPELINE_SECRET_PREFIX><name>` (the template sets
//! `pipewright-pipelines/<stack>/`), a JSON object keyed `<stage>/<action>/<configuration
//! key>`; the stored declaration reads `{{resolve:secretsmanager:<secret>:SecretString:<key>}}`
//! instead of the value (see [`pipewright_core::declaration::SecretReference`]). Actions read
//! it with the pipeline's role, whose session policy allows that pipeline's secret only.
//!
//! Keys no reference reads any more are dropped at the next write; DeletePipeline deletes the
//! secret at once (no recovery window, so a pipeline made again under the name starts clean).

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use pipewright_core::store::{PipelineRecord, StoreError};

use crate::error_chain;

/// The pipelines' own secrets.
#[derive(Debug, Clone)]
pub struct PipelineSecrets {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl PipelineSecrets {
    /// Secrets named `<prefix><pipeline>`, through `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_string(),
        }
    }

    /// The secrets of the process environment: `PIPELINE_SECRET_PREFIX`, if set.
    pub fn from_env(sdk: &SdkConfig) -> Option<Self> {
        let prefix = std::env::var("PIPELINE_SECRET_PREFIX")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        Some(Self::new(aws_sdk_secretsmanager::Client::new(sdk), &prefix))
    }

    /// The name of `pipeline`'s secret.
    pub fn name(&self, pipeline: &str) -> String {
        format!("{}{pipeline}", self.prefix)
    }

    /// `record` as it is to be stored: every plain secret value moved into the pipeline's
    /// secret and replaced by a reference to it. Writes the secret only when a value was given.
    pub async fn seal(&self, record: &PipelineRecord) -> Result<PipelineRecord, StoreError> {
        let mut sealed = record.clone();
        let name = self.name(&record.declaration.name);
        let taken = sealed.declaration.take_secrets(&name);
        if taken.taken.is_empty() {
            return Ok(sealed);
        }
        let current = self.current(&name).await?;
        if let Some(value) = taken.merged(current.as_deref()) {
            self.write(&name, &value, current.is_some()).await?;
        }
        Ok(sealed)
    }

    /// Delete `pipeline`'s secret, if it has one.
    pub async fn delete(&self, pipeline: &str) -> Result<(), StoreError> {
        let name = self.name(pipeline);
        match self
            .client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(failure(&format!("secretsmanager:DeleteSecret {name}"), &e)),
        }
    }

    /// The secret's value now, `None` when there is no such secret.
    async fn current(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => Ok(out.secret_string().map(str::to_string)),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(failure(
                &format!("secretsmanager:GetSecretValue {name}"),
                &e,
            )),
        }
    }

    async fn write(&self, name: &str, value: &str, exists: bool) -> Result<(), StoreError> {
        if exists {
            return self
                .client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failure(&format!("secretsmanager:PutSecretValue {name}"), &e));
        }
        match self
            .client
            .create_secret()
            .name(name)
            .description("Secret configuration values (OAuthToken) of a Pipewright pipeline")
            .secret_string(value)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Made by a concurrent writer since it was read: write a new version of it.
            Err(e) if e.code() == Some("ResourceExistsException") => {
                Box::pin(self.write(name, value, true)).await
            }
            Err(e) => Err(failure(&format!("secretsmanager:CreateSecret {name}"), &e)),
        }
    }
}

fn failure<E: std::error::Error + 'static>(call: &str, e: &E) -> StoreError {
    StoreError::Backend(error_chain(call, e))
}
