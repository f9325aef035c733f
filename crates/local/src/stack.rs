//! Creating the template's stack in the emulator through its CloudFormation API.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use aws_sdk_s3::primitives::ByteStream;
use pipewright_aws::config::{self, Target};

use crate::package::PackagedFunction;
use crate::template::{host_architecture, Template};
use crate::LocalError;

/// The bucket the functions' zips are uploaded to before the stack is created.
pub const CODE_BUCKET: &str = "pipewright-local-code";

/// How long stack creation may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Upload the packaged functions, create the stack `stack_name` from `template` (with
/// `parameters` besides `StageName=local`) in the emulator at `endpoint`, wait for it, and return
/// its outputs.
pub async fn deploy(
    endpoint: &str,
    template: &Template,
    functions: &[PackagedFunction],
    stack_name: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, LocalError> {
    let target = Target::local(endpoint);
    let sdk = config::load(&target).await;
    let s3 = config::s3_client(&sdk, &target);
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);

    match s3.create_bucket().bucket(CODE_BUCKET).send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(LocalError::aws("s3:CreateBucket", e)),
    }
    let mut code = BTreeMap::new();
    for f in functions {
        let key = format!("{}.zip", f.logical_id);
        let body = ByteStream::from_path(&f.zip)
            .await
            .map_err(|e| LocalError::Deploy(format!("{}: {e}", f.zip.display())))?;
        s3.put_object()
            .bucket(CODE_BUCKET)
            .key(&key)
            .body(body)
            .send()
            .await
            .map_err(|e| LocalError::aws("s3:PutObject", e))?;
        code.insert(f.logical_id.clone(), (CODE_BUCKET.to_string(), key));
    }

    let body = template.for_local(&code, host_architecture());
    cfn.create_stack()
        .stack_name(stack_name)
        .template_body(body.to_string())
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .capabilities(Capability::CapabilityAutoExpand)
        .set_parameters(Some(
            std::iter::once(("StageName", "local"))
                .chain(parameters.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| LocalError::aws("cloudformation:CreateStack", e))?;

    let deadline = Instant::now() + CREATE_TIMEOUT;
    loop {
        let described = cfn
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| LocalError::aws("cloudformation:DescribeStacks", e))?;
        let stack = described
            .stacks()
            .first()
            .ok_or_else(|| LocalError::Deploy(format!("stack {stack_name} vanished")))?;
        match stack.stack_status() {
            Some(StackStatus::CreateComplete) => {
                return Ok(stack
                    .outputs()
                    .iter()
                    .filter_map(|o| {
                        Some((o.output_key()?.to_string(), o.output_value()?.to_string()))
                    })
                    .collect());
            }
            Some(StackStatus::CreateInProgress) | None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            status => {
                let reasons = failure_reasons(&cfn, stack_name).await;
                return Err(LocalError::Deploy(format!(
                    "stack {stack_name} ended {:?}: {}{reasons}",
                    status,
                    stack.stack_status_reason().unwrap_or("no reason given")
                )));
            }
        }
    }
}

/// The resources that failed, with CloudFormation's reasons, one per line.
async fn failure_reasons(cfn: &aws_sdk_cloudformation::Client, stack_name: &str) -> String {
    let Ok(events) = cfn
        .describe_stack_events()
        .stack_name(stack_name)
        .send()
        .await
    else {
        return String::new();
    };
    events
        .stack_events()
        .iter()
        .filter(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("FAILED"))
        })
        .map(|e| {
            format!(
                "\n  {}: {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_status_reason().unwrap_or("no reason given")
            )
        })
        .collect()
}
