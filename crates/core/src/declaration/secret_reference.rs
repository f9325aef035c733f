//! Secret configuration values kept out of the pipeline's records.
//!
//! A secret configuration value (`OAuthToken`) is stored as a reference to a Secrets Manager
//! secret, written the way CloudFormation writes dynamic references:
//! `{{resolve:secretsmanager:<secret-id>[:SecretString[:<json-key>[:<version-stage>[:<version-id>]]]]}}`.
//! The action reads it at run time with the pipeline's role, so IAM decides which pipeline may
//! use which secret.
//!
//! A declaration may name a secret of the team's own that way; a plain value sent to
//! CreatePipeline or UpdatePipeline is moved by the pipeline store into the pipeline's own secret
//! (one per pipeline, a JSON object keyed `<stage>/<action>/<configuration key>`, see
//! [`PipelineDeclaration::take_secrets`]) and replaced by a reference to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

use super::configuration::SECRET_CONFIGURATION_KEYS;
use super::PipelineDeclaration;

const PREFIX: &str = "{{resolve:secretsmanager:";
const SUFFIX: &str = "}}";

/// A reference to (a JSON key of) a Secrets Manager secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    /// The secret's name or ARN.
    pub secret_id: String,
    /// The key of the secret's JSON object to read; the whole string when absent.
    pub json_key: Option<String>,
    /// The version stage to read (`AWSCURRENT` when absent).
    pub version_stage: Option<String>,
    /// The version to read.
    pub version_id: Option<String>,
}

impl SecretReference {
    /// A reference to key `json_key` of secret `secret_id`.
    pub fn to_key(secret_id: &str, json_key: &str) -> Self {
        Self {
            secret_id: secret_id.to_string(),
            json_key: Some(json_key.to_string()),
            version_stage: None,
            version_id: None,
        }
    }

    /// Whether `value` is written as a dynamic reference (`{{resolve:...`), well formed or not.
    pub fn is_reference(value: &str) -> bool {
        value.trim_start().starts_with("{{resolve:")
    }

    /// Read `value` as a reference. The error says what is wrong with it (never quoting it
    /// whole: a mistyped reference may be a token).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let Some(body) = value
            .strip_prefix(PREFIX)
            .and_then(|v| v.strip_suffix(SUFFIX))
        else {
            return Err(format!(
                "a reference is written {PREFIX}<secret name or ARN>[:SecretString[:<json key>]]{SUFFIX}; \
                 only Secrets Manager references are read"
            ));
        };
        // A secret ARN has colons of its own: `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`.
        let (secret_id, rest) = if body.starts_with("arn:") {
            let parts: Vec<&str> = body.splitn(8, ':').collect();
            if parts.len() < 7 || parts[2] != "secretsmanager" || parts[5] != "secret" {
                return Err("the secret ARN is not arn:<partition>:secretsmanager:<region>:<account>:secret:<name>".into());
            }
            (parts[..7].join(":"), parts.get(7).copied())
        } else {
            match body.split_once(':') {
                Some((id, rest)) => (id.to_string(), Some(rest)),
                None => (body.to_string(), None),
            }
        };
        if secret_id.is_empty() {
            return Err("the reference names no secret".into());
        }
        let mut fields = rest
            .map(|r| r.split(':').collect::<Vec<_>>())
            .unwrap_or_default();
        if fields.len() > 4 {
            return Err("a reference has at most SecretString, a JSON key, a version stage and a version id after the secret".into());
        }
        fields.resize(4, "");
        if !matches!(fields[0], "" | "SecretString") {
            return Err(format!(
                "`{}` after the secret: only SecretString is read",
                fields[0]
            ));
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if !fields[2].is_empty() && !fields[3].is_empty() {
            return Err("a reference names a version stage or a version id, not both".into());
        }
        Ok(Self {
            secret_id,
            json_key: some(fields[1]),
            version_stage: some(fields[2]),
            version_id: some(fields[3]),
        })
    }

    /// The value it stands for in `secret_string` (the secret's value): the whole string, or
    /// the string at its JSON key. The error names the secret and key, never the value.
    pub fn select(&self, secret_string: &str) -> Result<String, String> {
        let Some(key) = &self.json_key else {
            return Ok(secret_string.to_string());
        };
        let json: Value = serde_json::from_str(secret_string).map_err(|_| {
            format!(
                "secret {} is not a JSON object, so it has no key {key}",
                self.secret_id
            )
        })?;
        match json.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!(
                "key {key} of secret {} is not a string",
                self.secret_id
            )),
            None => Err(format!("secret {} has no key {key}", self.secret_id)),
        }
    }
}

impl fmt::Display for SecretReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.secret_id)?;
        let tail = [&self.json_key, &self.version_stage, &self.version_id];
        if let Some(last) = tail.iter().rposition(|v| v.is_some()) {
            f.write_str(":SecretString")?;
            for v in &tail[..=last] {
                write!(f, ":{}", v.as_deref().unwrap_or(""))?;
            }
        }
        f.write_str(SUFFIX)
    }
}

/// The key of a pipeline's own secret under which the value of configuration key `key` of
/// action `action` of stage `stage` is kept (`/` appears in no stage or action name).
pub fn pipeline_secret_key(stage: &str, action: &str, key: &str) -> String {
    format!("{stage}/{action}/{key}")
}

/// What [`PipelineDeclaration::take_secrets`] took out of a declaration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakenSecrets {
    /// Plain values taken out: key in the pipeline's secret → value.
    pub taken: BTreeMap<String, String>,
    /// Keys of the pipeline's secret that references already in the declaration read.
    pub kept: BTreeSet<String>,
}

impl TakenSecrets {
    /// The pipeline's secret as it should now read, from what it reads now (`current`, a JSON
    /// object, if it exists): the kept keys of `current` and the values taken. `None` when
    /// nothing is to be written (no value taken, no key to drop).
    pub fn merged(&self, current: Option<&str>) -> Option<String> {
        let current: BTreeMap<String, String> = current
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        let mut next: BTreeMap<String, String> = current
            .iter()
            .filter(|(k, _)| self.kept.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next.extend(self.taken.clone());
        if self.taken.is_empty() && next.len() == current.len() {
            return None;
        }
        Some(serde_json::to_string(&next).unwrap_or_default())
    }
}

impl PipelineDeclaration {
    /// Replace every plain secret configuration value by a reference to its key in the
    /// pipeline's own secret `secret_id`; answers the values taken and the keys of `secret_id`
    /// that references already read. References to other secrets are left as they are.
    pub fn take_secrets(&mut self, secret_id: &str) -> TakenSecrets {
        let mut out = TakenSecrets::default();
        for stage in &mut self.stages {
            for action in &mut stage.actions {
                let Some(configuration) = &mut action.configuration else {
                    continue;
                };
                for key in SECRET_CONFIGURATION_KEYS {
                    let Some(value) = configuration.get_mut(*key) else {
                        continue;
                    };
                    let secret_key = pipeline_secret_key(&stage.name, &action.name, key);
                    if SecretReference::is_reference(value) {
                        if let Ok(r) = SecretReference::parse(value) {
                            if r.secret_id == secret_id {
                                if let Some(k) = r.json_key {
                                    out.kept.insert(k);
                                }
                            }
                        }
                        continue;
                    }
                    let plain = std::mem::replace(
                        value,
                        SecretReference::to_key(secret_id, &secret_key).to_string(),
                    );
                    out.taken.insert(secret_key, plain);
                }
            }
        }
        out
    }

    /// Whether any secret configuration value is written plainly (not as a reference).
    pub fn has_plain_secrets(&self) -> bool {
        self.actions().any(|(_, _, a)| {
            a.configuration.as_ref().is_some_and(|c| {
                SECRET_CONFIGURATION_KEYS
                    .iter()
                    .any(|k| c.get(*k).is_some_and(|v| !SecretReference::is_reference(v)))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_and_write_as_cloudformation_writes_them() {
        for text in [
            "{{resolve:secretsmanager:github}}",
            "{{resolve:secretsmanager:github:SecretString:token}}",
            "{{resolve:secretsmanager:github:SecretString:token:AWSPREVIOUS}}",
            "{{resolve:secretsmanager:github:SecretString:::0f3c2a9e-1111-2222-3333-444455556666}}",
            "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:gh-AbCdEf:SecretString:token}}",
            "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:gh-AbCdEf}}",
        ] {
            let r = SecretReference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.to_string(), text);
        }
        let r = SecretReference::parse(
            "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:gh-AbCdEf:SecretString:token}}",
        )
        .unwrap();
        assert_eq!(
            r.secret_id,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gh-AbCdEf"
        );
        assert_eq!(r.json_key.as_deref(), Some("token"));
        assert!(SecretReference::is_reference("  {{resolve:ssm-secure:x}}"));
        for (bad, says) in [
            ("{{resolve:ssm-secure:param}}", "only Secrets Manager"),
            ("{{resolve:secretsmanager:}}", "names no secret"),
            (
                "{{resolve:secretsmanager:s:SecretBinary:k}}",
                "only SecretString",
            ),
            (
                "{{resolve:secretsmanager:s:SecretString:k:AWSCURRENT:v1}}",
                "not both",
            ),
            (
                "{{resolve:secretsmanager:s:SecretString:k:a:b:c}}",
                "at most",
            ),
            ("{{resolve:secretsmanager:arn:aws:s3:::b}}", "secret ARN"),
        ] {
            let e = SecretReference::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_reference_selects_its_key() {
        let whole = SecretReference::parse("{{resolve:secretsmanager:s}}").unwrap();
        assert_eq!(whole.select("ghp_x").unwrap(), "ghp_x");
        let key = SecretReference::to_key("s", "Source/GitHub/OAuthToken");
        assert_eq!(
            key.select(r#"{"Source/GitHub/OAuthToken":"ghp_y"}"#)
                .unwrap(),
            "ghp_y"
        );
        let e = key.select(r#"{"other":"ghp_y"}"#).unwrap_err();
        assert_eq!(e, "secret s has no key Source/GitHub/OAuthToken");
        let e = key.select("ghp_secret_value").unwrap_err();
        assert!(!e.contains("ghp_secret_value"), "{e}");
    }

    #[test]
    fn plain_values_are_taken_out_and_references_stay() {
        let text = include_str!("../../../../infra/pipelines/sample.json");
        let mut v: Value = serde_json::from_str(text).unwrap();
        if let Some(p) = v.get("pipeline").cloned() {
            v = p;
        }
        v["stages"][0]["actions"][0]["configuration"] =
            serde_json::json!({"OAuthToken": "ghp_plain"});
        let mut second = v["stages"][0]["actions"][0].clone();
        second["name"] = "Other".into();
        second["outputArtifacts"] = serde_json::json!([{"name": "OtherOut"}]);
        second["configuration"]["OAuthToken"] =
            "{{resolve:secretsmanager:mine:SecretString:Source/Other/OAuthToken}}".into();
        let mut third = second.clone();
        third["name"] = "Third".into();
        third["outputArtifacts"] = serde_json::json!([{"name": "ThirdOut"}]);
        third["configuration"]["OAuthToken"] = "{{resolve:secretsmanager:team/github}}".into();
        v["stages"][0]["actions"]
            .as_array_mut()
            .unwrap()
            .extend([second, third]);
        let mut declaration: PipelineDeclaration = serde_json::from_value(v).unwrap();
        let stage = declaration.stages[0].name.clone();
        let first = declaration.stages[0].actions[0].name.clone();
        assert!(declaration.has_plain_secrets());
        let taken = declaration.take_secrets("mine");
        let key = pipeline_secret_key(&stage, &first, "OAuthToken");
        assert_eq!(
            taken.taken,
            BTreeMap::from([(key.clone(), "ghp_plain".to_string())])
        );
        assert_eq!(
            taken.kept,
            BTreeSet::from(["Source/Other/OAuthToken".to_string()])
        );
        assert!(!declaration.has_plain_secrets());
        let token = |i: usize| {
            declaration.stages[0].actions[i]
                .configuration
                .as_ref()
                .unwrap()["OAuthToken"]
                .clone()
        };
        assert_eq!(
            token(0),
            format!("{{{{resolve:secretsmanager:mine:SecretString:{key}}}}}")
        );
        assert_eq!(token(2), "{{resolve:secretsmanager:team/github}}");
        assert!(!serde_json::to_string(&declaration)
            .unwrap()
            .contains("ghp_plain"));
    }

    #[test]
    fn merging_keeps_what_references_read_and_drops_the_rest() {
        let taken = TakenSecrets {
            taken: BTreeMap::from([("A/x/OAuthToken".into(), "new".into())]),
            kept: BTreeSet::from(["B/y/OAuthToken".into()]),
        };
        let merged = taken
            .merged(Some(r#"{"B/y/OAuthToken":"kept","C/z/OAuthToken":"gone"}"#))
            .unwrap();
        assert_eq!(
            merged,
            r#"{"A/x/OAuthToken":"new","B/y/OAuthToken":"kept"}"#
        );
        let nothing = TakenSecrets {
            taken: BTreeMap::new(),
            kept: BTreeSet::from(["B/y/OAuthToken".into()]),
        };
        assert_eq!(nothing.merged(Some(r#"{"B/y/OAuthToken":"kept"}"#)), None);
        assert_eq!(nothing.merged(None), None);
        assert_eq!(
            nothing.merged(Some(r#"{"B/y/OAuthToken":"kept","C":"gone"}"#)),
            Some(r#"{"B/y/OAuthToken":"kept"}"#.into())
        );
    }
}
