//! ListActionTypes, GetActionType and ListRuleTypes: the action and rule types Pipewright runs,
//! with their configuration properties ([`crate::providers`]), in CodePipeline's shapes. Every
//! type is answered in one page.

use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::providers::{self, ActionTypeSpec, ConfigurationProperty};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListActionTypesInput {
    action_owner_filter: Option<String>,
    next_token: Option<String>,
    region_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListRuleTypesInput {
    rule_owner_filter: Option<String>,
    region_filter: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetActionTypeInput {
    category: String,
    owner: String,
    provider: String,
    version: String,
}

/// One page holds every type: any token is one this service never gave.
fn no_token(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(t) => Err(ApiError::new(
            "InvalidNextTokenException",
            format!(
                "nextToken {t:?} was not returned by ListActionTypes: every type is on one page"
            ),
        )),
        None => Ok(()),
    }
}

fn check_owner(member: &str, owner: Option<&str>, allowed: &[&str]) -> Result<(), ApiError> {
    match owner {
        Some(o) if !allowed.contains(&o) => Err(ApiError::validation(format!(
            "{member}: {o:?} is not one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

fn check_region(region: Option<&str>) -> Result<(), ApiError> {
    match region {
        Some(r) if r.is_empty() || r.len() > 30 => Err(ApiError::validation(format!(
            "regionFilter: {r:?} is not a region name"
        ))),
        _ => Ok(()),
    }
}

fn configuration_property(p: &ConfigurationProperty) -> Value {
    json!({
        "name": p.name,
        "required": p.required,
        "key": true,
        "secret": p.secret,
        "queryable": false,
        "description": p.description,
        "type": p.kind,
    })
}

fn artifact_details(count: providers::ArtifactCount) -> Value {
    json!({"minimumCount": count.min, "maximumCount": count.max})
}

fn type_id(spec: &ActionTypeSpec) -> Value {
    json!({
        "category": spec.category,
        "owner": spec.owner,
        "provider": spec.provider,
        "version": spec.version,
    })
}

pub(super) fn list_action_types(input: ListActionTypesInput) -> Result<Value, ApiError> {
    check_owner(
        "actionOwnerFilter",
        input.action_owner_filter.as_deref(),
        &["AWS", "ThirdParty", "Custom"],
    )?;
    check_region(input.region_filter.as_deref())?;
    no_token(input.next_token.as_deref())?;
    let types: Vec<Value> = providers::supported()
        .filter(|spec| {
            input
                .action_owner_filter
                .as_deref()
                .is_none_or(|o| spec.owner.to_string() == o)
        })
        .map(|spec| {
            json!({
                "id": type_id(spec),
                "actionConfigurationProperties": providers::configuration_properties(spec)
                    .iter()
                    .map(configuration_property)
                    .collect::<Vec<_>>(),
                "inputArtifactDetails": artifact_details(spec.input_artifacts),
                "outputArtifactDetails": artifact_details(spec.output_artifacts),
            })
        })
        .collect();
    Ok(json!({ "actionTypes": types }))
}

pub(super) fn get_action_type(input: GetActionTypeInput) -> Result<Value, ApiError> {
    let spec = providers::supported().find(|spec| {
        spec.category.to_string() == input.category
            && spec.owner.to_string() == input.owner
            && spec.provider == input.provider
            && spec.version == input.version
    });
    let Some(spec) = spec else {
        return Err(ApiError::new(
            "ActionTypeNotFoundException",
            format!(
                "action type {}/{}/{} (version {}) is not one Pipewright runs; ListActionTypes \
                 lists them",
                input.category, input.owner, input.provider, input.version
            ),
        ));
    };
    let timeout_seconds = u64::from(spec.timeout.default_minutes) * 60;
    let properties: Vec<Value> = providers::configuration_properties(spec)
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "optional": !p.required,
                "key": true,
                "noEcho": p.secret,
                "queryable": false,
                "description": p.description,
            })
        })
        .collect();
    Ok(json!({
        "actionType": {
            "id": type_id(spec),
            "description": format!("{}, run by Pipewright's action function", spec.short_name()),
            "executor": {
                "type": "JobWorker",
                "configuration": {"jobWorkerExecutorConfiguration": {}},
                "jobTimeout": timeout_seconds.min(43_200),
            },
            "inputArtifactDetails": artifact_details(spec.input_artifacts),
            "outputArtifactDetails": artifact_details(spec.output_artifacts),
            "properties": properties,
        }
    }))
}

pub(super) fn list_rule_types(input: ListRuleTypesInput) -> Result<Value, ApiError> {
    check_owner(
        "ruleOwnerFilter",
        input.rule_owner_filter.as_deref(),
        &["AWS"],
    )?;
    check_region(input.region_filter.as_deref())?;
    let types: Vec<Value> = providers::RULE_PROVIDERS
        .iter()
        .map(|provider| {
            json!({
                "id": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
                "ruleConfigurationProperties": providers::rule_properties(provider)
                    .iter()
                    .map(configuration_property)
                    .collect::<Vec<_>>(),
                "inputArtifactDetails": {
                    "minimumCount": 0,
                    "maximumCount": if matches!(*provider, "Commands" | "CodeBuild") { 5 } else { 0 },
                },
            })
        })
        .collect();
    Ok(json!({ "ruleTypes": types }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_types_list_codepipelines_shape() {
        let all = list_action_types(ListActionTypesInput {
            action_owner_filter: None,
            next_token: None,
            region_filter: None,
        })
        .unwrap();
        let types = all["actionTypes"].as_array().unwrap();
        let codebuild = types
            .iter()
            .find(|t| t["id"] == json!({"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}))
            .unwrap();
        let project = &codebuild["actionConfigurationProperties"][0];
        assert_eq!(project["name"], "ProjectName");
        assert_eq!(project["required"], true);
        assert_eq!(
            codebuild["inputArtifactDetails"],
            json!({"minimumCount": 1, "maximumCount": 5})
        );
        let third_party = list_action_types(ListActionTypesInput {
            action_owner_filter: Some("ThirdParty".into()),
            next_token: None,
            region_filter: None,
        })
        .unwrap();
        let github = &third_party["actionTypes"].as_array().unwrap();
        assert_eq!(github.len(), 1);
        assert!(github[0]["actionConfigurationProperties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "OAuthToken" && p["secret"] == true));
        let err = list_action_types(ListActionTypesInput {
            action_owner_filter: Some("Nobody".into()),
            next_token: None,
            region_filter: None,
        })
        .unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert!(err.message.starts_with("actionOwnerFilter:"));
        let err = list_action_types(ListActionTypesInput {
            action_owner_filter: None,
            next_token: Some("x".into()),
            region_filter: None,
        })
        .unwrap_err();
        assert_eq!(err.kind, "InvalidNextTokenException");
    }

    #[test]
    fn one_action_type_and_the_rule_types() {
        let got = get_action_type(GetActionTypeInput {
            category: "Deploy".into(),
            owner: "AWS".into(),
            provider: "CloudFormation".into(),
            version: "1".into(),
        })
        .unwrap();
        let properties = got["actionType"]["properties"].as_array().unwrap();
        assert!(properties
            .iter()
            .any(|p| p["name"] == "ActionMode" && p["optional"] == false));
        assert_eq!(got["actionType"]["executor"]["type"], "JobWorker");
        let err = get_action_type(GetActionTypeInput {
            category: "Deploy".into(),
            owner: "AWS".into(),
            provider: "ElasticBeanstalk".into(),
            version: "1".into(),
        })
        .unwrap_err();
        assert_eq!(err.kind, "ActionTypeNotFoundException");
        let rules = list_rule_types(ListRuleTypesInput {
            rule_owner_filter: None,
            region_filter: None,
        })
        .unwrap();
        let rules = rules["ruleTypes"].as_array().unwrap();
        assert_eq!(rules.len(), providers::RULE_PROVIDERS.len());
        assert!(rules
            .iter()
            .any(|r| r["id"]["provider"] == "DeploymentWindow"
                && r["ruleConfigurationProperties"][0]["name"] == "Cron"));
    }
}
