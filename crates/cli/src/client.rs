//! The CodePipeline client the remote commands share: where it points, how it authenticates, and
//! what its errors mean for the exit status.

use aws_sdk_codepipeline::config::http::HttpResponse;
use aws_sdk_codepipeline::config::Credentials;
use aws_sdk_codepipeline::error::{ProvideErrorMetadata, SdkError};
use pipewright_aws::config::{self, Target};

/// Exit status: done.
pub const EXIT_OK: i32 = 0;
/// Exit status: the execution failed (or stopped, was superseded...), or the pipeline is invalid.
pub const EXIT_FAILED: i32 = 1;
/// Exit status: bad usage, an unreadable file, or no endpoint to talk to.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the pipeline, execution, stage or action does not exist.
pub const EXIT_NOT_FOUND: i32 = 3;
/// Exit status: the endpoint could not be reached.
pub const EXIT_UNREACHABLE: i32 = 4;
/// Exit status: any other error the service answered.
pub const EXIT_SERVICE: i32 = 5;

/// The exceptions that mean "no such thing".
const NOT_FOUND: &[&str] = &[
    "PipelineNotFoundException",
    "PipelineExecutionNotFoundException",
    "StageNotFoundException",
    "ActionNotFoundException",
    "PipelineVersionNotFoundException",
];

/// A failed command: printed as `pipewright <command>: <kind>: <message>`, exits with `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exception name (or a name of ours, e.g. `EndpointUnreachable`).
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// The exit status.
    pub code: i32,
}

impl CliError {
    /// An error of `kind` exiting with `code`.
    pub fn new(kind: &str, message: impl Into<String>, code: i32) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            code,
        }
    }

    /// The exit status an exception name maps to.
    pub fn code_of(kind: &str) -> i32 {
        if NOT_FOUND.contains(&kind) {
            EXIT_NOT_FOUND
        } else {
            EXIT_SERVICE
        }
    }

    /// An error the service answered with (or could not be reached for).
    pub fn from_sdk<E>(err: SdkError<E, HttpResponse>, endpoint: &str) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Self::new(
                "EndpointUnreachable",
                format!("cannot reach {endpoint}: {}", chain(&err)),
                EXIT_UNREACHABLE,
            ),
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let kind = ctx.err().code().unwrap_or("UnknownError").to_owned();
                let message = ctx
                    .err()
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP {status} from {endpoint}"));
                let code = Self::code_of(&kind);
                Self {
                    kind,
                    message,
                    code,
                }
            }
            SdkError::ConstructionFailure(_) => {
                Self::new("InvalidRequest", chain(&err), EXIT_USAGE)
            }
            _ => Self::new(
                "InvalidResponse",
                format!(
                    "{endpoint} answered something that is not CodePipeline's protocol: {}",
                    chain(&err)
                ),
                EXIT_SERVICE,
            ),
        }
    }
}

/// An error and its sources, `: `-separated, each once (`dispatch failure: io error: ...`).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Which door of the control plane a client goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The `AWS_IAM` Function URL: requests signed for the service `lambda` with IAM
    /// credentials.
    Iam,
    /// The key door: requests signed for the service `codepipeline` with a Pipewright key.
    Key,
}

/// Where the control plane is, which door, and whether it is a local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL.
    pub url: String,
    /// True for the local stack (or any loopback address): fixed test credentials when the
    /// environment has none.
    pub local: bool,
    /// The door the URL is.
    pub door: Door,
}

impl Endpoint {
    fn new(url: String, door: Door) -> Self {
        Self {
            local: is_loopback(&url),
            url,
            door,
        }
    }
}

/// The endpoint: `--endpoint-url` (the key door), else `--iam-endpoint-url` or
/// `$PIPEWRIGHT_IAM_ENDPOINT` (the IAM door), else `$PIPEWRIGHT_ENDPOINT` (the key door), else
/// the running local stack's IAM door (found from `.pipewright/` in the project folder above
/// the current one).
pub fn resolve_endpoint(flag: Option<&str>, iam_flag: Option<&str>) -> Result<Endpoint, CliError> {
    let env = |name: &str| std::env::var(name).ok();
    let given = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    if let Some(url) = given(flag.map(str::to_owned)) {
        return Ok(Endpoint::new(url, Door::Key));
    }
    if let Some(url) = given(
        iam_flag
            .map(str::to_owned)
            .or_else(|| env("PIPEWRIGHT_IAM_ENDPOINT")),
    ) {
        return Ok(Endpoint::new(url, Door::Iam));
    }
    if let Some(url) = given(env("PIPEWRIGHT_ENDPOINT")) {
        return Ok(Endpoint::new(url, Door::Key));
    }
    let running = crate::local::project_root(None)
        .and_then(|root| pipewright_local::status(&root.join(".pipewright")));
    match running {
        Some(stack) => Ok(Endpoint {
            url: stack.iam_gateway.endpoint,
            local: true,
            door: Door::Iam,
        }),
        None => Err(CliError::new(
            "NoEndpoint",
            "no control plane to talk to: pass --endpoint-url URL or --iam-endpoint-url URL, \
             set PIPEWRIGHT_IAM_ENDPOINT (stack output ApiIamUrl) or PIPEWRIGHT_ENDPOINT (ApiUrl), \
             or start the local stack with `pipewright local up`",
            EXIT_USAGE,
        )),
    }
}

/// An endpoint resolver for the IAM door: the URL as given, signed for the service `lambda`
/// (what an `AWS_IAM` Function URL checks) instead of `codepipeline`.
#[derive(Debug)]
struct SignedForLambda {
    url: String,
}

impl aws_sdk_codepipeline::config::endpoint::ResolveEndpoint for SignedForLambda {
    fn resolve_endpoint<'a>(
        &'a self,
        _params: &'a aws_sdk_codepipeline::config::endpoint::Params,
    ) -> aws_sdk_codepipeline::config::endpoint::EndpointFuture<'a> {
        use aws_smithy_types::Document;
        let scheme = Document::Object(
            [
                ("name".to_string(), Document::String("sigv4".into())),
                ("signingName".to_string(), Document::String(LAMBDA.into())),
            ]
            .into_iter()
            .collect(),
        );
        let endpoint = aws_sdk_codepipeline::config::endpoint::Endpoint::builder()
            .url(self.url.clone())
            .property("authSchemes", Document::Array(vec![scheme]))
            .build();
        aws_sdk_codepipeline::config::endpoint::EndpointFuture::ready(Ok(endpoint))
    }
}

/// The signing name of Function URLs with IAM auth.
pub const LAMBDA: &str = "lambda";

/// True when `url`'s host is 127.0.0.1, ::1 or localhost.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A CodePipeline client for `endpoint`. Region from `AWS_REGION` / `AWS_DEFAULT_REGION`
/// (default us-east-1), credentials from the environment's chain (never the EC2 metadata
/// service); a local endpoint with no credentials in the environment gets `test`/`test`, which
/// the local stack accepts.
pub async fn codepipeline(endpoint: &Endpoint) -> aws_sdk_codepipeline::Client {
    let sdk = config::load(&Target::default()).await;
    let mut builder = aws_sdk_codepipeline::config::Builder::from(&sdk);
    builder = match endpoint.door {
        Door::Key => builder.endpoint_url(&endpoint.url),
        Door::Iam => builder.endpoint_resolver(SignedForLambda {
            url: endpoint.url.clone(),
        }),
    };
    if let Some(credentials) = local_credentials(endpoint) {
        builder = builder.credentials_provider(credentials);
    }
    aws_sdk_codepipeline::Client::from_conf(builder.build())
}

/// The local stack's credentials, for a local endpoint when the environment names none.
pub fn local_credentials(endpoint: &Endpoint) -> Option<Credentials> {
    let env_has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some();
    (endpoint.local && !env_has_credentials).then(|| {
        Credentials::new(
            pipewright_local::LOCAL_ACCESS_KEY_ID,
            pipewright_local::LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "pipewright-local",
        )
    })
}

/// Never ask the EC2 instance metadata service (a laptop has none, and asking it takes seconds).
/// Call before any thread starts.
pub fn disable_instance_metadata() {
    if std::env::var_os("AWS_EC2_METADATA_DISABLED").is_none() {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:4566"));
        assert!(is_loopback("http://localhost:9/"));
        assert!(is_loopback("http://[::1]:80/x"));
        assert!(!is_loopback("https://abc.lambda-url.us-east-1.on.aws/"));
        assert!(!is_loopback("https://127.example.com/"));
    }

    #[test]
    fn not_found_exceptions_exit_3() {
        assert_eq!(
            CliError::code_of("PipelineNotFoundException"),
            EXIT_NOT_FOUND
        );
        assert_eq!(CliError::code_of("ActionNotFoundException"), EXIT_NOT_FOUND);
        assert_eq!(CliError::code_of("ValidationException"), EXIT_SERVICE);
        assert_eq!(
            CliError::code_of("UnsupportedOperationException"),
            EXIT_SERVICE
        );
    }

    #[test]
    fn explicit_endpoint_wins() {
        let e = resolve_endpoint(Some("http://127.0.0.1:9"), Some("http://127.0.0.1:8")).unwrap();
        assert_eq!(e.url, "http://127.0.0.1:9");
        assert!(e.local);
        assert_eq!(e.door, Door::Key);
        let e = resolve_endpoint(None, Some("https://x.lambda-url.us-east-1.on.aws/")).unwrap();
        assert_eq!(e.door, Door::Iam);
        assert!(!e.local);
    }
}
