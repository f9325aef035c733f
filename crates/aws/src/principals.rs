//! IAM for the IAM door's policy check ([`pipewright_core::access::principals`]):
//! `iam:SimulatePrincipalPolicy` for the caller's identity policies, `iam:GetRole` for the ARN
//! (with its path) of an assumed role.

use aws_config::SdkConfig;
use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_sdk_iam::types::PolicyEvaluationDecisionType;
use pipewright_core::access::principals::PrincipalPolicies;
use pipewright_core::engine::PortError;

use crate::port_errors::call_failed;

/// IAM, through the SDK.
#[derive(Debug, Clone)]
pub struct IamPolicies {
    client: aws_sdk_iam::Client,
}

impl IamPolicies {
    /// IAM for `sdk`'s account.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_iam::Client::new(sdk),
        }
    }
}

#[async_trait::async_trait]
impl PrincipalPolicies for IamPolicies {
    async fn role_arn(&self, name: &str) -> Result<Option<String>, PortError> {
        match self.client.get_role().role_name(name).send().await {
            Ok(out) => Ok(out.role().map(|r| r.arn().to_string())),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(call_failed(&format!("iam:GetRole {name}"), &e)),
        }
    }

    async fn allows(
        &self,
        source_arn: &str,
        action: &str,
        resource: &str,
    ) -> Result<bool, PortError> {
        let out = self
            .client
            .simulate_principal_policy()
            .policy_source_arn(source_arn)
            .action_names(action)
            .resource_arns(resource)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // A user or role deleted since it signed: nothing allows it.
            Err(e) if e.code() == Some("NoSuchEntity") => return Ok(false),
            Err(e) => {
                return Err(call_failed(
                    &format!("iam:SimulatePrincipalPolicy {source_arn} {action} {resource}"),
                    &e,
                ))
            }
        };
        let results = out.evaluation_results();
        Ok(!results.is_empty()
            && results
                .iter()
                .all(|r| *r.eval_decision() == PolicyEvaluationDecisionType::Allowed))
    }
}
