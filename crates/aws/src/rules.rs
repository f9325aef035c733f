//! [`RuleChecks`] over the SDK: stage-condition rules that read AWS (`LambdaInvoke` invokes a
//! function synchronously; `CloudWatchAlarm` reads an alarm's state).

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use pipewright_core::conditions::RuleChecks;
use pipewright_core::port_error::PortError;
use serde_json::Value;

use crate::port_errors::call_failed;

/// Lambda and CloudWatch clients.
#[derive(Debug, Clone)]
pub struct AwsRuleChecks {
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsRuleChecks {
    /// Checks through `lambda` and `cloudwatch`.
    pub fn new(lambda: aws_sdk_lambda::Client, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        Self { lambda, cloudwatch }
    }
}

#[async_trait]
impl RuleChecks for AwsRuleChecks {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, PortError> {
        let body = serde_json::to_vec(payload).map_err(|e| PortError::Other(e.to_string()))?;
        let out = self
            .lambda
            .invoke()
            .function_name(function)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| call_failed("lambda:Invoke", &e))?;
        let answer = out
            .payload()
            .map(|b| serde_json::from_slice(b.as_ref()).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        if let Some(kind) = out.function_error() {
            let message = answer
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(PortError::Other(format!(
                "the function failed ({kind}): {message}"
            )));
        }
        Ok(answer)
    }

    async fn alarm_state(&self, name: &str) -> Result<String, PortError> {
        let out = self
            .cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .map_err(|e| call_failed("cloudwatch:DescribeAlarms", &e))?;
        out.metric_alarms()
            .first()
            .and_then(|a| a.state_value())
            .map(|s| s.as_str().to_string())
            .or_else(|| {
                out.composite_alarms()
                    .first()
                    .and_then(|a| a.state_value())
                    .map(|s| s.as_str().to_string())
            })
            .ok_or_else(|| PortError::Other(format!("no alarm named {name}")))
    }
}
