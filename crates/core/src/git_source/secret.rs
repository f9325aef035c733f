//! Tokens: kept out of `Debug` output, and read from a connection's secret.

use std::fmt;

use serde_json::Value;

use super::GitSourceError;

/// A token, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token; `None` when blank.
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.to_string()))
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// What a connection's secret holds: the token alone, or a JSON object
/// `{"token": "...", "apiBaseUrl": "...", "pipelines": ["..."]}` (the base URL of the
/// connection's host, for a GitHub Enterprise Server connection in a stack whose default is
/// github.com; the pipelines that may use the connection, when not every pipeline whose role
/// can read the secret may).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSecret {
    /// The token.
    pub token: Token,
    /// The connection's own API base URL.
    pub api_base_url: Option<String>,
    /// The only pipelines that may use the connection; any pipeline when absent.
    pub pipelines: Option<Vec<String>>,
}

impl ConnectionSecret {
    /// Read a secret's value; `name` is only for the error (the value never appears in one).
    pub fn parse(name: &str, value: &str) -> Result<Self, GitSourceError> {
        let value = value.trim();
        if value.starts_with('{') {
            let json: Value = serde_json::from_str(value).map_err(|_| {
                GitSourceError::Configuration(format!(
                    "the connection secret {name} starts with `{{` but is not a JSON object"
                ))
            })?;
            let token = json
                .get("token")
                .and_then(Value::as_str)
                .and_then(Token::new)
                .ok_or_else(|| {
                    GitSourceError::Configuration(format!(
                        "the connection secret {name} has no `token`"
                    ))
                })?;
            let api_base_url = json
                .get("apiBaseUrl")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let pipelines = match json.get("pipelines") {
                None | Some(Value::Null) => None,
                Some(Value::Array(names)) => Some(
                    names
                        .iter()
                        .map(|n| n.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| not_names(name))?,
                ),
                Some(_) => return Err(not_names(name)),
            };
            return Ok(Self {
                token,
                api_base_url,
                pipelines,
            });
        }
        let token = Token::new(value).ok_or_else(|| {
            GitSourceError::Configuration(format!("the connection secret {name} is empty"))
        })?;
        Ok(Self {
            token,
            api_base_url: None,
            pipelines: None,
        })
    }

    /// Whether pipeline `pipeline` may use the connection whose secret is `name`: refused,
    /// naming both, when the secret lists the pipelines allowed and this is not one of them.
    pub fn check_pipeline(&self, name: &str, pipeline: &str) -> Result<(), GitSourceError> {
        match &self.pipelines {
            Some(allowed) if !allowed.iter().any(|p| p == pipeline) => {
                Err(GitSourceError::Configuration(format!(
                    "pipeline {pipeline} may not use this connection: its secret {name} lists \
                     the pipelines that may ({})",
                    allowed.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }
}

fn not_names(name: &str) -> GitSourceError {
    GitSourceError::Configuration(format!(
        "the connection secret {name} has `pipelines` that is not a list of pipeline names"
    ))
}
