//! `api`: CodePipeline's control plane (AWS JSON 1.1, `X-Amz-Target: CodePipeline_20150709.*`)
//! behind a Function URL. The template deploys it twice, one function per door (`API_DOOR`):
//! `iam` behind the `AWS_IAM` URL (stack output `ApiIamUrl`), `key` behind the `NONE` URL whose
//! requests must be signed with a Pipewright access key (`ApiUrl`). Clients are built once; each
//! request goes to [`handler::Service`].

mod handler;

use lambda_http::{run, service_fn, Error, Request, RequestExt};
use pipewright_aws::access_keys::SecretsKeyStore;
use pipewright_aws::engine::Adapters;
use pipewright_aws::principals::IamPolicies;
use pipewright_core::access::gate::Door;
use pipewright_core::access::keys::CachedKeys;
use pipewright_core::access::principals::{CachedPolicies, IamDoorAuthorization};

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let door = std::env::var("API_DOOR").unwrap_or_else(|_| "iam".into());
    let door =
        Door::parse(&door).ok_or_else(|| format!("API_DOOR must be iam or key, not {door:?}"))?;
    let adapters = Adapters::from_env().await?;
    let keys = CachedKeys::new(SecretsKeyStore::from_env(&adapters.sdk)?);
    // Through the IAM door, the caller's IAM policies decide unless the stack says otherwise.
    let authorization = std::env::var("IAM_DOOR_AUTHORIZATION")
        .ok()
        .filter(|v| !v.is_empty())
        .map_or(Ok(IamDoorAuthorization::IamPolicies), |v| {
            IamDoorAuthorization::parse(&v)
        })?;
    let iam_policies = (door == Door::Iam && authorization == IamDoorAuthorization::IamPolicies)
        .then(|| CachedPolicies::new(IamPolicies::new(&adapters.sdk)));
    // CodePipeline runs a pipeline once it is created; a stack may turn that off.
    let start_on_create = match std::env::var("START_ON_CREATE").as_deref() {
        Ok("Enabled") | Err(_) => true,
        Ok("Disabled") => false,
        Ok(other) => {
            return Err(
                format!("START_ON_CREATE must be Enabled or Disabled, not {other:?}").into(),
            )
        }
    };
    let region = adapters.region();
    run(service_fn(|request: Request| {
        let function_arn = request
            .lambda_context_ref()
            .map(|c| c.invoked_function_arn.clone())
            .unwrap_or_default();
        let (adapters, region, keys, iam_policies) =
            (&adapters, &region, &keys, iam_policies.as_ref());
        async move {
            let engine = adapters.engine(&function_arn);
            let service = handler::Service {
                store: &adapters.pipelines,
                engine: Some(&engine),
                region,
                door,
                start_on_create,
                keys,
                iam_policies,
            };
            service.handle(request).await
        }
    }))
    .await
}
