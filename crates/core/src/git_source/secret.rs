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
/// `{"token": "...", "apiBaseUrl": "..."}` (the base URL of the connection's host, for a
/// GitHub Enterprise Server connection in a stack whose default is github.com).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSecret {
    /// The token.
    pub token: Token,
    /// The connection's own API base URL.
    pub api_base_url: Option<String>,
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
            return Ok(Self {
                token,
                api_base_url,
            });
        }
        let token = Token::new(value).ok_or_else(|| {
            GitSourceError::Configuration(format!("the connection secret {name} is empty"))
        })?;
        Ok(Self {
            token,
            api_base_url: None,
        })
    }
}
