//! One place that builds the AWS SDK configuration, for the functions, the CLI, the local stack and
//! the tests alike.
//!
//! On AWS nothing is overridden: region, credentials and endpoints come from the Lambda environment.
//! Against the local emulator the endpoint is given (or read from `AWS_ENDPOINT_URL`, which the
//! emulator passes to functions it runs), S3 is addressed path-style (virtual-host names such as
//! `bucket.127.0.0.1` do not resolve) and, when no credentials are in the environment, fixed
//! local ones are used: the emulator accepts any.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// The region used when none is configured (the emulator's default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where the SDK clients should point.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// An endpoint override, e.g. `http://127.0.0.1:4566` for the local emulator.
    pub endpoint: Option<String>,
    /// A region override.
    pub region: Option<String>,
    /// The endpoint is the environment's `AWS_ENDPOINT_URL`: the SDK reads it itself, so that a
    /// service-specific `AWS_ENDPOINT_URL_<SERVICE>` still wins for its service, as in every AWS
    /// SDK (an endpoint set in code would override both).
    pub endpoint_from_env: bool,
}

impl Target {
    /// The local emulator at `endpoint`.
    pub fn local(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            region: None,
            endpoint_from_env: false,
        }
    }

    /// Whatever the environment says (`AWS_ENDPOINT_URL`, `AWS_REGION`): right both in Lambda and
    /// in a shell that sourced `.pipewright/local.env`.
    pub fn from_env() -> Self {
        Self {
            endpoint: std::env::var("AWS_ENDPOINT_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            region: None,
            endpoint_from_env: true,
        }
    }

    /// True when an endpoint override is in force (the local stack).
    pub fn is_local(&self) -> bool {
        self.endpoint.is_some()
    }
}

/// Load the shared SDK configuration for `target`.
pub async fn load(target: &Target) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    } else if std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new(DEFAULT_REGION));
    }
    if let Some(endpoint) = &target.endpoint {
        if !target.endpoint_from_env {
            loader = loader.endpoint_url(endpoint);
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "test",
                "test",
                None,
                None,
                "pipewright-local",
            ));
        }
    }
    loader.load().await
}

/// An S3 client for `config`, path-style when talking to the emulator.
pub fn s3_client(config: &SdkConfig, target: &Target) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(target.is_local())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
