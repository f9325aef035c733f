//! CloudFormation deploy actions (`Deploy/AWS/CloudFormation`): what their configuration means
//! and what a stack's status says, as CodePipeline's CloudFormation action reference documents
//! them. The calls are the action function's (`functions/action/src/providers/cloudformation.rs`).

use std::collections::BTreeMap;

use serde_json::Value;

/// The `detail-type` of CloudFormation's stack status events.
pub const STACK_STATUS_CHANGE: &str = "CloudFormation Stack Status Change";

/// `Artifact::path`: an artifact's name and a file in it.
pub fn artifact_path(key: &str, value: &str) -> Result<(String, String), String> {
    match value.trim().split_once("::") {
        Some((artifact, path)) if !artifact.is_empty() && !path.is_empty() => {
            Ok((artifact.to_string(), path.to_string()))
        }
        _ => Err(format!(
            "configuration {key}: {value:?} is not ArtifactName::path/in/the/artifact"
        )),
    }
}

/// A parameter's value in `ParameterOverrides`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterValue {
    /// A string.
    Literal(String),
    /// `{"Fn::GetParam": ["Artifact", "file.json", "key"]}`: a key of a JSON file of an input
    /// artifact.
    GetParam {
        /// The artifact.
        artifact: String,
        /// The JSON file in it.
        file: String,
        /// The key of the file's object.
        key: String,
    },
    /// `{"Fn::GetArtifactAtt": ["Artifact", "BucketName" | "ObjectKey" | "URL"]}`.
    GetArtifactAtt {
        /// The artifact.
        artifact: String,
        /// The attribute.
        attribute: String,
    },
}

/// The attributes `Fn::GetArtifactAtt` gives.
pub const ARTIFACT_ATTRIBUTES: &[&str] = &["BucketName", "ObjectKey", "URL"];

/// Read `ParameterOverrides`: a JSON object of parameter names to strings, `Fn::GetParam` or
/// `Fn::GetArtifactAtt`. Errors name the parameter.
pub fn parameter_overrides(text: &str) -> Result<BTreeMap<String, ParameterValue>, String> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| format!("configuration ParameterOverrides is not a JSON object: {e}"))?;
    let Value::Object(map) = json else {
        return Err("configuration ParameterOverrides is not a JSON object".into());
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let bad = |why: &str| format!("configuration ParameterOverrides.{name}: {why}");
        let parsed = match &value {
            Value::String(s) => ParameterValue::Literal(s.clone()),
            Value::Number(n) => ParameterValue::Literal(n.to_string()),
            Value::Bool(b) => ParameterValue::Literal(b.to_string()),
            Value::Object(o) if o.len() == 1 => {
                let (function, args) = o.iter().next().expect("one member");
                let args: Vec<&str> = args
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match (function.as_str(), args.as_slice()) {
                    ("Fn::GetParam", [artifact, file, key]) => ParameterValue::GetParam {
                        artifact: artifact.to_string(),
                        file: file.to_string(),
                        key: key.to_string(),
                    },
                    ("Fn::GetParam", _) => {
                        return Err(bad("Fn::GetParam takes [artifact, JSON file, key]"))
                    }
                    ("Fn::GetArtifactAtt", [artifact, attribute])
                        if ARTIFACT_ATTRIBUTES.contains(attribute) =>
                    {
                        ParameterValue::GetArtifactAtt {
                            artifact: artifact.to_string(),
                            attribute: attribute.to_string(),
                        }
                    }
                    ("Fn::GetArtifactAtt", _) => {
                        return Err(bad(
                            "Fn::GetArtifactAtt takes [artifact, BucketName | ObjectKey | URL]",
                        ))
                    }
                    (other, _) => {
                        return Err(bad(&format!(
                            "{other} is not a function parameter overrides take \
                             (Fn::GetParam, Fn::GetArtifactAtt)"
                        )))
                    }
                }
            }
            _ => {
                return Err(bad(
                    "a value is a string, Fn::GetParam or Fn::GetArtifactAtt",
                ))
            }
        };
        out.insert(name, parsed);
    }
    Ok(out)
}

/// What a template configuration file holds (`TemplateConfiguration`):
/// `{"Parameters": {...}, "Tags": {...}, "StackPolicy": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateConfiguration {
    /// Parameter values.
    pub parameters: BTreeMap<String, String>,
    /// Stack tags.
    pub tags: BTreeMap<String, String>,
    /// The stack policy, as JSON text.
    pub stack_policy: Option<String>,
}

/// Read a template configuration file (`file` names it in errors).
pub fn template_configuration(file: &str, text: &str) -> Result<TemplateConfiguration, String> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| format!("template configuration {file} is not JSON: {e}"))?;
    let strings = |member: &str| -> Result<BTreeMap<String, String>, String> {
        match json.get(member) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    _ => Err(format!(
                        "template configuration {file}: {member}.{k} is not a string"
                    )),
                })
                .collect(),
            Some(_) => Err(format!(
                "template configuration {file}: {member} is not an object"
            )),
        }
    };
    Ok(TemplateConfiguration {
        parameters: strings("Parameters")?,
        tags: strings("Tags")?,
        stack_policy: json
            .get("StackPolicy")
            .filter(|p| !p.is_null())
            .map(Value::to_string),
    })
}

/// What a stack status means for the action waiting on it: `Some(true)` it ended well,
/// `Some(false)` it ended badly, `None` still in progress.
pub fn stack_status_ended(status: &str) -> Option<bool> {
    match status {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE" | "IMPORT_COMPLETE" => Some(true),
        s if s.ends_with("_IN_PROGRESS") => None,
        "REVIEW_IN_PROGRESS" => None,
        _ => Some(false),
    }
}

/// A stack status event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackChanged {
    /// The stack's id (ARN).
    pub stack_id: String,
    /// Its status.
    pub status: String,
    /// Why, as CloudFormation says it.
    pub reason: Option<String>,
}

/// A CloudFormation "Stack Status Change" event of a stack that reached an end state; `None`
/// for anything else.
pub fn stack_status_changed(event: &Value) -> Option<StackChanged> {
    if event.get("source").and_then(Value::as_str) != Some("aws.cloudformation")
        || event.get("detail-type").and_then(Value::as_str) != Some(STACK_STATUS_CHANGE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    let status = detail
        .get("status-details")
        .and_then(|s| s.get("status"))
        .and_then(Value::as_str)?
        .to_string();
    stack_status_ended(&status)?;
    Some(StackChanged {
        stack_id: detail.get("stack-id").and_then(Value::as_str)?.to_string(),
        reason: detail
            .get("status-details")
            .and_then(|s| s.get("status-reason"))
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        status,
    })
}

/// The stack states in which CREATE_UPDATE cannot update a stack (it must be deleted first:
/// REPLACE_ON_FAILURE does that), CodePipeline's list of failed states.
pub fn needs_replacing(status: &str) -> bool {
    matches!(
        status,
        "ROLLBACK_COMPLETE"
            | "ROLLBACK_FAILED"
            | "CREATE_FAILED"
            | "DELETE_FAILED"
            | "UPDATE_ROLLBACK_FAILED"
    )
}

/// Whether a change set's `StatusReason` says it failed only because it changes nothing (which
/// CodePipeline counts as success, as it does "No updates are to be performed").
pub fn change_set_without_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes")
        || reason.contains("No updates are to be performed")
        || reason.contains("does not contain any changes")
}

/// Where a template too large to send in the request (over 51,200 bytes) is put for
/// CloudFormation to read (`TemplateURL`): beside the action's log, under the pipeline's own
/// prefix of the artifact bucket (`<pipeline>/logs/<id>.log` → `<pipeline>/templates/<id>.template`).
pub fn template_key(log_key: &str, action_execution_id: &str) -> String {
    let pipeline = log_key.split('/').next().unwrap_or_default();
    format!("{pipeline}/templates/{action_execution_id}.template")
}

/// The URL CloudFormation reads a template at `bucket`/`key` from: virtual-hosted, or
/// path-style for a bucket name with dots (which a virtual host's certificate does not cover);
/// China's regions are under `amazonaws.com.cn`.
pub fn template_url(region: &str, bucket: &str, key: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    if bucket.contains('.') {
        format!("https://s3.{region}.{domain}/{bucket}/{key}")
    } else {
        format!("https://{bucket}.s3.{region}.{domain}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn change_sets_without_changes_and_large_templates() {
        assert!(change_set_without_changes(
            "The submitted information didn't contain changes. Submit different information to \
             create a change set."
        ));
        assert!(!change_set_without_changes("Template format error"));
        assert!(needs_replacing("UPDATE_ROLLBACK_FAILED"));
        assert!(!needs_replacing("UPDATE_ROLLBACK_COMPLETE"));
        assert_eq!(
            template_key("web/logs/aaaa.log", "aaaa"),
            "web/templates/aaaa.template"
        );
        assert_eq!(
            template_url("eu-west-1", "artifacts", "web/templates/aaaa.template"),
            "https://artifacts.s3.eu-west-1.amazonaws.com/web/templates/aaaa.template"
        );
        assert_eq!(
            template_url("cn-north-1", "my.artifacts", "k"),
            "https://s3.cn-north-1.amazonaws.com.cn/my.artifacts/k"
        );
    }

    #[test]
    fn artifact_paths_and_overrides_read_as_codepipeline_writes_them() {
        assert_eq!(
            artifact_path("TemplatePath", "BuildOutput::infra/template.yaml").unwrap(),
            ("BuildOutput".to_string(), "infra/template.yaml".to_string())
        );
        for bad in ["template.yaml", "::x", "A::"] {
            let e = artifact_path("TemplatePath", bad).unwrap_err();
            assert!(e.starts_with("configuration TemplatePath:"), "{e}");
        }
        let overrides = parameter_overrides(
            r#"{"Env": "prod", "Count": 3,
                "Version": {"Fn::GetParam": ["Build", "build.json", "version"]},
                "Bucket": {"Fn::GetArtifactAtt": ["Build", "BucketName"]}}"#,
        )
        .unwrap();
        assert_eq!(overrides["Env"], ParameterValue::Literal("prod".into()));
        assert_eq!(overrides["Count"], ParameterValue::Literal("3".into()));
        assert_eq!(
            overrides["Version"],
            ParameterValue::GetParam {
                artifact: "Build".into(),
                file: "build.json".into(),
                key: "version".into()
            }
        );
        assert_eq!(
            overrides["Bucket"],
            ParameterValue::GetArtifactAtt {
                artifact: "Build".into(),
                attribute: "BucketName".into()
            }
        );
        for (bad, says) in [
            ("[]", "not a JSON object"),
            (
                r#"{"A": {"Fn::GetParam": ["x"]}}"#,
                "ParameterOverrides.A: Fn::GetParam takes",
            ),
            (
                r#"{"A": {"Fn::GetArtifactAtt": ["x", "Size"]}}"#,
                "BucketName | ObjectKey | URL",
            ),
            (r#"{"A": {"Fn::Sub": "x"}}"#, "Fn::Sub is not a function"),
            (r#"{"A": [1]}"#, "ParameterOverrides.A"),
        ] {
            let e = parameter_overrides(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn template_configurations_and_statuses() {
        let c = template_configuration(
            "cfg.json",
            r#"{"Parameters": {"Env": "prod", "Size": 2}, "Tags": {"team": "web"},
                "StackPolicy": {"Statement": []}}"#,
        )
        .unwrap();
        assert_eq!(c.parameters["Size"], "2");
        assert_eq!(c.tags["team"], "web");
        assert_eq!(c.stack_policy.as_deref(), Some(r#"{"Statement":[]}"#));
        assert!(template_configuration("cfg.json", "{")
            .unwrap_err()
            .contains("cfg.json"));
        assert_eq!(stack_status_ended("CREATE_COMPLETE"), Some(true));
        assert_eq!(stack_status_ended("UPDATE_ROLLBACK_COMPLETE"), Some(false));
        assert_eq!(stack_status_ended("ROLLBACK_COMPLETE"), Some(false));
        assert_eq!(
            stack_status_ended("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            None
        );
        let event = json!({"source": "aws.cloudformation", "detail-type": STACK_STATUS_CHANGE,
            "detail": {"stack-id": "arn:aws:cloudformation:us-east-1:1:stack/web/x",
                "status-details": {"status": "CREATE_FAILED", "status-reason": "boom"}}});
        assert_eq!(
            stack_status_changed(&event),
            Some(StackChanged {
                stack_id: "arn:aws:cloudformation:us-east-1:1:stack/web/x".into(),
                status: "CREATE_FAILED".into(),
                reason: Some("boom".into())
            })
        );
        let mut going = event.clone();
        going["detail"]["status-details"]["status"] = json!("CREATE_IN_PROGRESS");
        assert_eq!(stack_status_changed(&going), None);
    }
}
