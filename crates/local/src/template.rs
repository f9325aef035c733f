//! Reading `template.yaml` and rewriting it for the local emulator.
//!
//! The local stack is created from the very template that deploys to AWS. Only what a deploy
//! tool would change is changed: each Rust function's `CodeUri` (a crate folder, built by
//! `sam build`) becomes the S3 location of a zip built for this host, and the functions'
//! architecture becomes the host's. Two SAM properties the emulator's transform does not
//! translate are translated as SAM translates them: a function's `DeadLetterQueue` (`Type`,
//! `TargetArn`) becomes Lambda's `DeadLetterConfig` (`TargetArn`), and its `Tags` map (its own or
//! from `Globals`) becomes CloudFormation's `[{Key, Value}]` list. Nothing else is touched.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::LocalError;

/// A Lambda function the template builds from a crate of this workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSource {
    /// The function's logical id in the template, e.g. `ApiFunction`.
    pub logical_id: String,
    /// The crate folder its `CodeUri` names, relative to the template, e.g. `functions/api`.
    pub code_uri: String,
}

/// A parsed SAM template.
#[derive(Debug, Clone)]
pub struct Template {
    body: Value,
}

impl Template {
    /// Read and parse the template at `path`.
    pub fn load(path: &Path) -> Result<Self, LocalError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LocalError::Template(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| match e {
            LocalError::Template(msg) => LocalError::Template(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parse a template written in YAML (or JSON) in CloudFormation's long form.
    pub fn parse(text: &str) -> Result<Self, LocalError> {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| LocalError::Template(e.to_string()))?;
        let body = yaml_to_json(&yaml, "")?;
        if !body.get("Resources").is_some_and(Value::is_object) {
            return Err(LocalError::Template("no `Resources` mapping".into()));
        }
        Ok(Self { body })
    }

    /// The template as CloudFormation JSON.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// Every `AWS::Serverless::Function` built with cargo-lambda from a local crate folder.
    pub fn rust_functions(&self) -> Vec<FunctionSource> {
        self.resources()
            .filter(|(_, r)| {
                r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
            })
            .filter_map(|(id, r)| {
                let code_uri = if r.pointer("/Metadata/BuildMethod").and_then(Value::as_str)
                    == Some("rust-cargolambda")
                {
                    r.pointer("/Properties/CodeUri")
                        .and_then(Value::as_str)?
                        .to_string()
                } else {
                    image_crate(r)?
                };
                Some(FunctionSource {
                    logical_id: id.clone(),
                    code_uri,
                })
            })
            .collect()
    }

    /// The template as the emulator should get it: each function in `code` (logical id → S3
    /// bucket and key of its zip) points at that zip, and every function runs on `architecture`.
    pub fn for_local(
        &self,
        code: &BTreeMap<String, (String, String)>,
        architecture: &str,
    ) -> Value {
        let mut body = self.body.clone();
        if let Some(globals) = body
            .pointer_mut("/Globals/Function")
            .and_then(Value::as_object_mut)
        {
            if globals.contains_key("Architectures") {
                globals.insert("Architectures".into(), json!([architecture]));
            }
            tags_as_list(globals);
        }
        head_with_get(&mut body);
        drop_tls_only_statements(&mut body);
        if let Some(resources) = body.get_mut("Resources").and_then(Value::as_object_mut) {
            for (id, resource) in resources.iter_mut() {
                let Some((bucket, key)) = code.get(id) else {
                    continue;
                };
                let props = resource
                    .as_object_mut()
                    .map(|r| r.entry("Properties").or_insert_with(|| json!({})));
                if let Some(Value::Object(props)) = props {
                    if props.remove("PackageType").is_some() {
                        props.remove("ImageUri");
                        props.insert("Runtime".into(), json!("provided.al2023"));
                        props.insert("Handler".into(), json!("bootstrap"));
                    }
                    props.insert("CodeUri".into(), json!(format!("s3://{bucket}/{key}")));
                    tags_as_list(props);
                    if let Some(target) = props
                        .get("DeadLetterQueue")
                        .and_then(|q| q.get("TargetArn"))
                        .cloned()
                    {
                        props.remove("DeadLetterQueue");
                        props.insert("DeadLetterConfig".into(), json!({ "TargetArn": target }));
                    }
                    if props.contains_key("Architectures") {
                        props.insert("Architectures".into(), json!([architecture]));
                    }
                }
            }
        }
        body
    }

    fn resources(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.body
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(Map::iter)
    }
}

/// The crate folder of a container-image function whose `Metadata.Dockerfile` sits in one
/// (`functions/runner/Dockerfile` → `functions/runner`), with `DockerContext` `.`.
fn image_crate(resource: &Value) -> Option<String> {
    if resource
        .pointer("/Properties/PackageType")
        .and_then(Value::as_str)
        != Some("Image")
    {
        return None;
    }
    let context = resource
        .pointer("/Metadata/DockerContext")
        .and_then(Value::as_str)?;
    let dockerfile = resource
        .pointer("/Metadata/Dockerfile")
        .and_then(Value::as_str)?;
    if context != "." {
        return None;
    }
    let folder = Path::new(dockerfile).parent()?.to_str()?;
    (!folder.is_empty()).then(|| folder.to_string())
}

/// Wherever a policy statement names `s3:GetObject`, also `s3:HeadObject`: AWS authorizes a
/// HEAD of an object as `s3:GetObject`, while fakecloud 0.51's strict IAM (which the local stack
/// runs with) checks it as `s3:HeadObject`, an action AWS does not have.
pub fn head_with_get(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(action) = map.get_mut("Action") {
                let names = match action {
                    Value::String(one) => vec![Value::String(one.clone())],
                    Value::Array(many) => many.clone(),
                    _ => Vec::new(),
                };
                let has = |name: &str| names.iter().any(|n| n.as_str() == Some(name));
                if has("s3:GetObject") && !has("s3:HeadObject") {
                    let mut names = names;
                    names.push(json!("s3:HeadObject"));
                    *action = Value::Array(names);
                }
            }
            map.values_mut().for_each(head_with_get);
        }
        Value::Array(items) => items.iter_mut().for_each(head_with_get),
        _ => {}
    }
}

/// Without the bucket-policy statements that deny requests not made over TLS
/// (`aws:SecureTransport`): the emulator speaks plain HTTP on loopback, so with its IAM checks on
/// they would deny every request.
fn drop_tls_only_statements(body: &mut Value) {
    let Some(resources) = body.get_mut("Resources").and_then(Value::as_object_mut) else {
        return;
    };
    for resource in resources.values_mut() {
        if let Some(Value::Array(statements)) =
            resource.pointer_mut("/Properties/PolicyDocument/Statement")
        {
            statements.retain(|s| s.pointer("/Condition/Bool/aws:SecureTransport").is_none());
        }
    }
}

/// SAM's `Tags` map as CloudFormation's `[{Key, Value}]` list, in `props`.
fn tags_as_list(props: &mut Map<String, Value>) {
    if let Some(Value::Object(tags)) = props.get("Tags") {
        let list: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        props.insert("Tags".into(), Value::Array(list));
    }
}

/// Lambda's name for the architecture this process runs on.
pub fn host_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

/// YAML to JSON, refusing the short-form intrinsic tags (`!Ref`, `!GetAtt`, ...): they are not
/// plain YAML, and the long form says the same thing.
fn yaml_to_json(value: &serde_yaml::Value, path: &str) -> Result<Value, LocalError> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).map_err(|e| LocalError::Template(e.to_string()))?,
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| yaml_to_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => {
                        return Err(LocalError::Template(format!(
                            "{path}: unsupported key {other:?}"
                        )))
                    }
                };
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(key, yaml_to_json(v, &child)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            return Err(LocalError::Template(format!(
                "{path}: short-form intrinsic `{}` is not supported; write it in long form \
                 (e.g. `Fn::GetAtt: [Res, Attr]`, `Ref: Name`)",
                tagged.tag
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Architectures: [arm64]
    Tags:
      team: ci
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  ApiFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
    Properties:
      CodeUri: functions/api
      Architectures: [arm64]
      DeadLetterQueue:
        Type: SQS
        TargetArn: {"Fn::GetAtt": [Dlq, Arn]}
  PythonFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
Outputs:
  B:
    Value: 1
  A:
    Value: 2
"#;

    #[test]
    fn finds_only_the_rust_functions() {
        let t = Template::parse(SAMPLE).unwrap();
        assert_eq!(
            t.rust_functions(),
            vec![FunctionSource {
                logical_id: "ApiFunction".into(),
                code_uri: "functions/api".into()
            }]
        );
    }

    #[test]
    fn policies_are_translated_for_the_emulators_iam() {
        let t = Template {
            body: json!({"Resources": {
                "Role": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                    {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "*"}
                ]}}},
                "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {"PolicyDocument": {"Statement": [
                    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                     "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                    {"Sid": "Keep", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": "*"}
                ]}}}
            }}),
        };
        let local = t.for_local(&BTreeMap::new(), "x86_64");
        let role = local
            .pointer("/Resources/Role/Properties/PolicyDocument/Statement")
            .unwrap();
        assert_eq!(role[0]["Action"], json!(["s3:GetObject", "s3:HeadObject"]));
        assert_eq!(role[1]["Action"], json!(["s3:PutObject"]));
        let bucket = local
            .pointer("/Resources/BucketPolicy/Properties/PolicyDocument/Statement")
            .unwrap();
        assert_eq!(bucket.as_array().unwrap().len(), 1);
        assert_eq!(bucket[0]["Sid"], "Keep");
    }

    #[test]
    fn rewrites_code_and_architecture_and_nothing_else() {
        let t = Template::parse(SAMPLE).unwrap();
        let code = BTreeMap::from([(
            "ApiFunction".to_string(),
            ("code".to_string(), "api.zip".to_string()),
        )]);
        let local = t.for_local(&code, "x86_64");
        assert_eq!(
            local
                .pointer("/Resources/ApiFunction/Properties/CodeUri")
                .unwrap(),
            "s3://code/api.zip"
        );
        assert_eq!(
            local.pointer("/Globals/Function/Tags").unwrap(),
            &json!([{"Key": "team", "Value": "ci"}])
        );
        // SAM's dead-letter queue, as SAM translates it (the emulator's transform drops it).
        let props = local.pointer("/Resources/ApiFunction/Properties").unwrap();
        assert!(props.get("DeadLetterQueue").is_none());
        assert_eq!(
            props["DeadLetterConfig"],
            json!({"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}})
        );
        assert_eq!(
            local
                .pointer("/Resources/ApiFunction/Properties/Architectures")
                .unwrap(),
            &json!(["x86_64"])
        );
        assert_eq!(
            local.pointer("/Globals/Function/Architectures").unwrap(),
            &json!(["x86_64"])
        );
        assert_eq!(
            local
                .pointer("/Resources/PythonFunction/Properties/CodeUri")
                .unwrap(),
            "src/"
        );
        assert_eq!(
            local.pointer("/Resources/Table"),
            t.body().pointer("/Resources/Table")
        );
    }

    #[test]
    fn short_form_tags_are_refused_with_their_place() {
        let err = Template::parse("Resources:\n  X:\n    Properties:\n      Name: !Ref Other\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Resources.X.Properties.Name"), "{msg}");
        assert!(msg.contains("!Ref"), "{msg}");
    }

    /// Nothing asynchronous is dropped: every EventBridge rule and schedule of the template
    /// names a dead-letter queue for what EventBridge cannot deliver, and every function they
    /// invoke keeps what it failed on after Lambda's retries in a queue of its own. (fakecloud's
    /// SAM transform drops a rule's `DeadLetterConfig`, so the local stack cannot show the
    /// first; this keeps the template honest.)
    #[test]
    fn every_asynchronous_event_of_the_template_has_a_dead_letter_queue() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        let mut checked = 0;
        for (id, resource) in t.resources() {
            let props = &resource["Properties"];
            let events = props["Events"].as_object().cloned().unwrap_or_default();
            let asynchronous: Vec<&String> = events
                .iter()
                .filter(|(_, e)| matches!(e["Type"].as_str(), Some("EventBridgeRule" | "Schedule")))
                .map(|(name, _)| name)
                .collect();
            for name in &asynchronous {
                assert!(
                    events[name.as_str()]["Properties"]["DeadLetterConfig"]["Arn"].is_object(),
                    "{id}.Events.{name} has no DeadLetterConfig"
                );
                checked += 1;
            }
            if !asynchronous.is_empty() {
                assert!(
                    props["DeadLetterQueue"]["TargetArn"].is_object(),
                    "{id} is invoked asynchronously but has no DeadLetterQueue"
                );
                assert!(
                    props["EventInvokeConfig"]["MaximumRetryAttempts"].is_number(),
                    "{id} does not say how often Lambda retries it"
                );
            }
        }
        assert!(checked >= 10, "only {checked} rules and schedules found");
    }

    #[test]
    fn the_project_template_reads_and_names_its_functions() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        let functions = t.rust_functions();
        assert!(
            functions.iter().any(|f| f.logical_id == "ApiFunction"),
            "{functions:?}"
        );
        assert!(
            functions
                .iter()
                .any(|f| f.logical_id == "RunnerFunction" && f.code_uri == "functions/runner"),
            "the runner's image is built from its crate: {functions:?}"
        );
        let code = BTreeMap::from([(
            "RunnerFunction".to_string(),
            ("b".to_string(), "runner.zip".to_string()),
        )]);
        let local = t.for_local(&code, "x86_64");
        let runner = local
            .pointer("/Resources/RunnerFunction/Properties")
            .unwrap();
        assert_eq!(runner.get("PackageType"), None);
        assert_eq!(runner.get("ImageUri"), None);
        assert_eq!(runner["Runtime"], "provided.al2023");
        assert_eq!(runner["Handler"], "bootstrap");
        assert_eq!(runner["CodeUri"], "s3://b/runner.zip");
        for f in functions {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(&f.code_uri)
                .join("Cargo.toml");
            assert!(
                manifest.is_file(),
                "{} names {}, which has no Cargo.toml",
                f.logical_id,
                f.code_uri
            );
        }
    }
}
