//! Log setup shared by every function: JSON lines in Lambda (CloudWatch reads them), plain text
//! elsewhere; level from `RUST_LOG` (default `info`). Never log a secret, token or signature.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber once, at the start of `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        let _ = builder
            .json()
            .without_time()
            .with_current_span(true)
            .try_init();
    } else {
        let _ = builder.try_init();
    }
}
