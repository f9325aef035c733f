//! `pipewright keys`: Pipewright access keys, managed through the control plane's IAM door
//! only (`Pipewright_20261207.*` operations). The CodePipeline SDK has no such operations, so
//! each call is signed here with the SDK's signer (`aws-sigv4`, service `lambda`, as the IAM
//! door's Function URL checks) and sent with a plain HTTP client.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use clap::Subcommand;
use pipewright_aws::config::{self, Target};
use pipewright_core::access::keys::TARGET_PREFIX;
use serde_json::{json, Value};

use super::{print_json, Ctx};
use crate::client::{
    local_credentials, CliError, Door, EXIT_SERVICE, EXIT_UNREACHABLE, EXIT_USAGE, LAMBDA,
};

/// `pipewright keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key; prints it once (the secret is never shown again).
    #[command(after_help = "Examples:\n  \
        pipewright keys create --name ci --allow 'codepipeline:Get*,codepipeline:List*,codepipeline:StartPipelineExecution' --pipelines 'web-*'\n  \
        pipewright keys create --name approver --allow codepipeline:PutApprovalResult --expires-in 90 --output json")]
    Create {
        /// Who or what holds the key (letters, digits, -_.@+=).
        #[arg(long)]
        name: String,
        /// CodePipeline IAM actions it may call, comma-separated, `*` allowed.
        #[arg(long, value_delimiter = ',', required = true, value_name = "ACTIONS")]
        allow: Vec<String>,
        /// Pipeline-name patterns it may act on, comma-separated (default: every pipeline).
        #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
        pipelines: Vec<String>,
        /// Days until it stops working (default: never).
        #[arg(long = "expires-in", value_name = "DAYS")]
        expires_in: Option<u32>,
    },
    /// List the keys (never a secret).
    List,
    /// Revoke a key for good (it stops working within a minute).
    Revoke {
        /// The key's access key id.
        access_key_id: String,
    },
    /// Replace a key with a new one of the same name and permissions; prints the new key once.
    Rotate {
        /// The key to replace.
        access_key_id: String,
        /// How long the old key keeps working, so clients can switch.
        #[arg(
            long = "old-key-valid-for",
            default_value_t = 3600,
            value_name = "SECONDS"
        )]
        old_key_valid_for: u64,
    },
}

/// Run `keys` against `ctx.endpoint`, which must be the IAM door.
pub async fn run(ctx: &Ctx, command: KeysCommand) -> Result<i32, CliError> {
    if ctx.endpoint.door != Door::Iam {
        return Err(CliError::new(
            "IamDoorRequired",
            "keys are managed through the control plane's IAM door only: pass \
             --iam-endpoint-url URL or set PIPEWRIGHT_IAM_ENDPOINT (stack output ApiIamUrl)",
            EXIT_USAGE,
        ));
    }
    let (operation, body) = match &command {
        KeysCommand::Create {
            name,
            allow,
            pipelines,
            expires_in,
        } => {
            let mut body = json!({ "name": name, "allow": allow });
            if !pipelines.is_empty() {
                body["pipelines"] = json!(pipelines);
            }
            if let Some(days) = expires_in {
                body["expiresInDays"] = json!(days);
            }
            ("CreateAccessKey", body)
        }
        KeysCommand::List => ("ListAccessKeys", json!({})),
        KeysCommand::Revoke { access_key_id } => {
            ("RevokeAccessKey", json!({ "accessKeyId": access_key_id }))
        }
        KeysCommand::Rotate {
            access_key_id,
            old_key_valid_for,
        } => (
            "RotateAccessKey",
            json!({ "accessKeyId": access_key_id, "oldKeyValidForSeconds": old_key_valid_for }),
        ),
    };
    let answer = call(ctx, operation, &body).await?;
    if ctx.json() {
        match &command {
            KeysCommand::Create { .. } | KeysCommand::Rotate { .. } => {
                print_json(&answer["accessKey"])
            }
            _ => print_json(&answer),
        }
        return Ok(0);
    }
    match command {
        KeysCommand::Create { .. } | KeysCommand::Rotate { .. } => {
            let key = &answer["accessKey"];
            println!("accessKeyId      {}", text(&key["accessKeyId"]));
            println!("secretAccessKey  {}", text(&key["secretAccessKey"]));
            println!(
                "(the secret is shown this once; keep it in a secret store or a named profile)"
            );
            if let Some(old) = answer.get("oldAccessKey") {
                println!(
                    "the old key {} works until {}",
                    text(&old["accessKeyId"]),
                    when(&old["expires"])
                );
            }
        }
        KeysCommand::List => {
            println!(
                "{:<22} {:<20} {:<12} {:<40} PIPELINES",
                "ACCESS KEY ID", "NAME", "EXPIRES", "ALLOW"
            );
            for key in answer["accessKeys"].as_array().into_iter().flatten() {
                println!(
                    "{:<22} {:<20} {:<12} {:<40} {}",
                    text(&key["accessKeyId"]),
                    text(&key["name"]),
                    when(&key["expires"]),
                    list(&key["allow"]),
                    list(&key["pipelines"])
                );
            }
        }
        KeysCommand::Revoke { access_key_id } => println!("revoked {access_key_id}"),
    }
    Ok(0)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

fn list(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn when(v: &Value) -> String {
    v.as_f64()
        .and_then(|s| chrono::DateTime::from_timestamp(s as i64, 0))
        .map_or_else(|| "never".to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// Send key-management `operation` with `body` through the IAM door, signed for `lambda`.
async fn call(ctx: &Ctx, operation: &str, body: &Value) -> Result<Value, CliError> {
    let sdk = config::load(&Target::default()).await;
    let credentials = match local_credentials(&ctx.endpoint) {
        Some(c) => c,
        None => sdk
            .credentials_provider()
            .ok_or_else(|| CliError::new("NoCredentials", "no AWS credentials found", EXIT_USAGE))?
            .provide_credentials()
            .await
            .map_err(|e| CliError::new("NoCredentials", e.to_string(), EXIT_USAGE))?,
    };
    let region = sdk
        .region()
        .map_or_else(|| config::DEFAULT_REGION.to_string(), ToString::to_string);
    let url = ctx.endpoint.url.clone();
    let host = url
        .split_once("://")
        .map_or(url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let payload = body.to_string();
    let target = format!("{TARGET_PREFIX}{operation}");
    let mut headers = vec![
        ("host".to_string(), host),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), target),
    ];
    let identity = credentials.into();
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(LAMBDA)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CliError::new("InvalidRequest", e.to_string(), EXIT_USAGE))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(payload.as_bytes()),
    )
    .map_err(|e| CliError::new("InvalidRequest", e.to_string(), EXIT_USAGE))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| CliError::new("InvalidRequest", e.to_string(), EXIT_USAGE))?
        .into_parts();
    headers.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let endpoint = ctx.endpoint.url.clone();
    tokio::task::spawn_blocking(move || send(&url, &headers, &payload, &endpoint))
        .await
        .map_err(|e| CliError::new("Runtime", e.to_string(), EXIT_SERVICE))?
}

fn send(
    url: &str,
    headers: &[(String, String)],
    payload: &str,
    endpoint: &str,
) -> Result<Value, CliError> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = agent.post(url);
    for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
        request = request.header(name, value);
    }
    let mut response = request.send(payload).map_err(|e| {
        CliError::new(
            "EndpointUnreachable",
            format!("cannot reach {endpoint}: {e}"),
            EXIT_UNREACHABLE,
        )
    })?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == 200 {
        return Ok(value);
    }
    let kind = value["__type"]
        .as_str()
        .or_else(|| (status == 403).then_some("Forbidden"))
        .unwrap_or("UnknownError")
        .to_string();
    let message = value["message"]
        .as_str()
        .or_else(|| value["Message"].as_str())
        .map_or_else(|| format!("HTTP {status} from {endpoint}"), str::to_string);
    let code = CliError::code_of(&kind);
    Err(CliError {
        kind,
        message,
        code,
    })
}
