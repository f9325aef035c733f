//! `.pipewright/local.env`: the local stack's endpoints as `KEY=value` lines that any tool (a
//! shell, the AWS CLI, boto3, the tests) can read.

use std::collections::BTreeMap;
use std::path::Path;

use crate::LocalError;

/// Name of the file inside the state folder.
pub const FILE_NAME: &str = "local.env";

/// Render `pairs` as `KEY=value` lines.
pub fn render(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Parse `KEY=value` lines; blank lines and `#` comments are skipped.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Write the file into `state_dir`.
pub fn write(state_dir: &Path, pairs: &[(String, String)]) -> Result<(), LocalError> {
    let path = state_dir.join(FILE_NAME);
    std::fs::write(&path, render(pairs)).map_err(|e| LocalError::io(&path, e))
}

/// Read the file from `state_dir`, if there is one.
pub fn read(state_dir: &Path) -> Option<BTreeMap<String, String>> {
    std::fs::read_to_string(state_dir.join(FILE_NAME))
        .ok()
        .map(|t| parse(&t))
}

/// `ApprovalTopicArn` → `PIPEWRIGHT_APPROVAL_TOPIC_ARN`.
pub fn output_key(output: &str) -> String {
    let mut key = String::from("PIPEWRIGHT_");
    for (i, c) in output.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            key.push('_');
        }
        key.push(c.to_ascii_uppercase());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_parse_round_trip() {
        let pairs = vec![
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:4566".to_string(),
            ),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ];
        let parsed = parse(&format!("# comment\n\n{}", render(&pairs)));
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["AWS_ENDPOINT_URL"], "http://127.0.0.1:4566");
    }

    #[test]
    fn output_names_become_env_keys() {
        assert_eq!(
            output_key("ApprovalTopicArn"),
            "PIPEWRIGHT_APPROVAL_TOPIC_ARN"
        );
        assert_eq!(output_key("ApiUrl"), "PIPEWRIGHT_API_URL");
    }
}
