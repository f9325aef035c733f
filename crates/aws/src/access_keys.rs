//! Pipewright access keys in Secrets Manager ([`pipewright_core::access::keys::KeyStore`]).
//!
//! Each key is the secret named `<prefix><access key id>` (`API_KEY_PREFIX`, set by
//! `template.yaml` to `pipewright/<stack>/access-keys/`), whose value is the key as JSON (its
//! secret, name, grant, expiry). Secrets Manager encrypts it at rest with KMS; the template lets
//! only the api functions read the prefix (and only the IAM door's write it). Revoking deletes
//! the secret without a recovery window, so the key cannot be brought back.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::Filter;
use pipewright_core::access::keys::{AccessKey, KeyStore};
use pipewright_core::engine::PortError;

use crate::port_errors::call_failed;

/// The access keys under one name prefix.
#[derive(Debug, Clone)]
pub struct SecretsKeyStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
}

impl SecretsKeyStore {
    /// Keys named `<prefix><id>`.
    pub fn new(sdk: &SdkConfig, prefix: &str) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
            prefix: prefix.to_string(),
        }
    }

    /// The store `API_KEY_PREFIX` names.
    pub fn from_env(sdk: &SdkConfig) -> Result<Self, String> {
        let prefix = std::env::var("API_KEY_PREFIX")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .ok_or("environment variable API_KEY_PREFIX is not set")?;
        Ok(Self::new(sdk, &prefix))
    }

    fn name(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

fn decode(name: &str, value: Option<&str>) -> Result<AccessKey, PortError> {
    serde_json::from_str(value.unwrap_or_default()).map_err(|e| {
        PortError::Other(format!(
            "the access key secret {name} does not hold a Pipewright key: {e}"
        ))
    })
}

#[async_trait::async_trait]
impl KeyStore for SecretsKeyStore {
    async fn get(&self, id: &str) -> Result<Option<AccessKey>, PortError> {
        // Only ids that could name a secret are looked up (a forged id is just unknown).
        if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let name = self.name(id);
        match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => {
                let key = decode(&name, out.secret_string())?;
                Ok((key.access_key_id == id).then_some(key))
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(call_failed(
                &format!("secretsmanager:GetSecretValue {name}"),
                &e,
            )),
        }
    }

    async fn put(&self, key: &AccessKey) -> Result<(), PortError> {
        let name = self.name(&key.access_key_id);
        let value = serde_json::to_string(key).map_err(|e| PortError::Other(e.to_string()))?;
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(format!(
                "Pipewright access key {} ({})",
                key.access_key_id, key.name
            ))
            .secret_string(&value)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceExistsException") => self
                .client
                .put_secret_value()
                .secret_id(&name)
                .secret_string(&value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| call_failed(&format!("secretsmanager:PutSecretValue {name}"), &e)),
            Err(e) => Err(call_failed(
                &format!("secretsmanager:CreateSecret {name}"),
                &e,
            )),
        }
    }

    async fn list(&self) -> Result<Vec<AccessKey>, PortError> {
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_secrets()
            .filters(
                Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(&self.prefix)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_failed("secretsmanager:ListSecrets", &e))?;
            names.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    // The filter matches by prefix on AWS; check it here too.
                    .filter_map(|n| n.strip_prefix(&self.prefix))
                    .map(str::to_string),
            );
        }
        let mut keys = Vec::new();
        for id in names {
            if let Some(key) = self.get(&id).await? {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    async fn delete(&self, id: &str) -> Result<bool, PortError> {
        let name = self.name(id);
        match self
            .client
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(call_failed(
                &format!("secretsmanager:DeleteSecret {name}"),
                &e,
            )),
        }
    }
}
