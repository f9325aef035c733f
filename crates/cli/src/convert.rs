//! Our pipeline declaration ([`pipewright_core::declaration`]) as the SDK's
//! [`aws_sdk_codepipeline::types::PipelineDeclaration`], member by member.
//!
//! Every optional member keeps its presence: an absent member stays unset and an empty list
//! stays an empty list, so that what the server receives is exactly what the file says
//! ([`crate::json::pipeline_declaration`] writes it back for the round-trip test).

use std::collections::HashMap;

use aws_sdk_codepipeline::error::BuildError;
use aws_sdk_codepipeline::types as sdk;
use pipewright_core::declaration as decl;

/// The SDK's declaration of `p`.
pub fn pipeline(p: &decl::PipelineDeclaration) -> Result<sdk::PipelineDeclaration, BuildError> {
    sdk::PipelineDeclaration::builder()
        .name(&p.name)
        .role_arn(&p.role_arn)
        .set_artifact_store(p.artifact_store.as_ref().map(artifact_store).transpose()?)
        .set_artifact_stores(
            p.artifact_stores
                .as_ref()
                .map(|stores| {
                    stores
                        .iter()
                        .map(|(region, store)| Ok((region.clone(), artifact_store(store)?)))
                        .collect::<Result<HashMap<_, _>, BuildError>>()
                })
                .transpose()?,
        )
        .set_stages(Some(collect(&p.stages, stage)?))
        .set_version(p.version.map(int))
        .set_execution_mode(p.execution_mode.map(|m| m.as_str().into()))
        .set_pipeline_type(p.pipeline_type.map(|t| t.as_str().into()))
        .set_variables(opt_list(&p.variables, variable)?)
        .set_triggers(opt_list(&p.triggers, trigger)?)
        .build()
}

fn artifact_store(s: &decl::ArtifactStore) -> Result<sdk::ArtifactStore, BuildError> {
    sdk::ArtifactStore::builder()
        .r#type(s.store_type.as_str().into())
        .location(&s.location)
        .set_encryption_key(
            s.encryption_key
                .as_ref()
                .map(|k| {
                    sdk::EncryptionKey::builder()
                        .id(&k.id)
                        .r#type(k.key_type.as_str().into())
                        .build()
                })
                .transpose()?,
        )
        .build()
}

fn stage(s: &decl::StageDeclaration) -> Result<sdk::StageDeclaration, BuildError> {
    sdk::StageDeclaration::builder()
        .name(&s.name)
        .set_blockers(opt_list(&s.blockers, |b| {
            sdk::BlockerDeclaration::builder()
                .name(&b.name)
                .r#type(b.blocker_type.as_str().into())
                .build()
        })?)
        .set_actions(Some(collect(&s.actions, action)?))
        .set_on_failure(
            s.on_failure
                .as_ref()
                .map(|f| -> Result<_, BuildError> {
                    Ok(sdk::FailureConditions::builder()
                        .set_result(f.result.map(|r| r.as_str().into()))
                        .set_retry_configuration(f.retry_configuration.as_ref().map(|r| {
                            sdk::RetryConfiguration::builder()
                                .set_retry_mode(r.retry_mode.map(|m| m.as_str().into()))
                                .build()
                        }))
                        .set_conditions(opt_list(&f.conditions, condition)?)
                        .build())
                })
                .transpose()?,
        )
        .set_on_success(
            s.on_success
                .as_ref()
                .map(|c| {
                    sdk::SuccessConditions::builder()
                        .set_conditions(Some(collect(&c.conditions, condition)?))
                        .build()
                })
                .transpose()?,
        )
        .set_before_entry(
            s.before_entry
                .as_ref()
                .map(|c| {
                    sdk::BeforeEntryConditions::builder()
                        .set_conditions(Some(collect(&c.conditions, condition)?))
                        .build()
                })
                .transpose()?,
        )
        .build()
}

fn action(a: &decl::ActionDeclaration) -> Result<sdk::ActionDeclaration, BuildError> {
    let id = &a.action_type_id;
    sdk::ActionDeclaration::builder()
        .name(&a.name)
        .action_type_id(
            sdk::ActionTypeId::builder()
                .category(id.category.as_str().into())
                .owner(id.owner.as_str().into())
                .provider(&id.provider)
                .version(&id.version)
                .build()?,
        )
        .set_run_order(a.run_order.map(int))
        .set_configuration(a.configuration.as_ref().map(configuration))
        .set_commands(a.commands.clone())
        .set_output_artifacts(opt_list(&a.output_artifacts, |o| {
            sdk::OutputArtifact::builder()
                .name(&o.name)
                .set_files(o.files.clone())
                .build()
        })?)
        .set_input_artifacts(opt_list(&a.input_artifacts, input_artifact)?)
        .set_output_variables(a.output_variables.clone())
        .set_role_arn(a.role_arn.clone())
        .set_region(a.region.clone())
        .set_namespace(a.namespace.clone())
        .set_timeout_in_minutes(a.timeout_in_minutes.map(int))
        .set_environment_variables(opt_list(&a.environment_variables, |v| {
            sdk::EnvironmentVariable::builder()
                .name(&v.name)
                .value(&v.value)
                .set_type(v.variable_type.map(|t| t.as_str().into()))
                .build()
        })?)
        .build()
}

fn input_artifact(i: &decl::InputArtifact) -> Result<sdk::InputArtifact, BuildError> {
    sdk::InputArtifact::builder().name(&i.name).build()
}

fn condition(c: &decl::Condition) -> Result<sdk::Condition, BuildError> {
    Ok(sdk::Condition::builder()
        .set_result(c.result.map(|r| r.as_str().into()))
        .set_rules(opt_list(&c.rules, rule)?)
        .build())
}

fn rule(r: &decl::RuleDeclaration) -> Result<sdk::RuleDeclaration, BuildError> {
    let id = &r.rule_type_id;
    sdk::RuleDeclaration::builder()
        .name(&r.name)
        .rule_type_id(
            sdk::RuleTypeId::builder()
                .category(id.category.as_str().into())
                .set_owner(id.owner.map(|o| o.as_str().into()))
                .provider(&id.provider)
                .set_version(id.version.clone())
                .build()?,
        )
        .set_configuration(r.configuration.as_ref().map(configuration))
        .set_commands(r.commands.clone())
        .set_input_artifacts(opt_list(&r.input_artifacts, input_artifact)?)
        .set_role_arn(r.role_arn.clone())
        .set_region(r.region.clone())
        .set_timeout_in_minutes(r.timeout_in_minutes.map(int))
        .build()
}

fn variable(
    v: &decl::PipelineVariableDeclaration,
) -> Result<sdk::PipelineVariableDeclaration, BuildError> {
    sdk::PipelineVariableDeclaration::builder()
        .name(&v.name)
        .set_default_value(v.default_value.clone())
        .set_description(v.description.clone())
        .build()
}

fn trigger(
    t: &decl::PipelineTriggerDeclaration,
) -> Result<sdk::PipelineTriggerDeclaration, BuildError> {
    let git = &t.git_configuration;
    sdk::PipelineTriggerDeclaration::builder()
        .provider_type(t.provider_type.as_str().into())
        .git_configuration(
            sdk::GitConfiguration::builder()
                .source_action_name(&git.source_action_name)
                .set_push(opt_list(&git.push, |p| {
                    Ok(sdk::GitPushFilter::builder()
                        .set_tags(p.tags.as_ref().map(|c| {
                            sdk::GitTagFilterCriteria::builder()
                                .set_includes(c.includes.clone())
                                .set_excludes(c.excludes.clone())
                                .build()
                        }))
                        .set_branches(p.branches.as_ref().map(branches))
                        .set_file_paths(p.file_paths.as_ref().map(file_paths))
                        .build())
                })?)
                .set_pull_request(opt_list(&git.pull_request, |p| {
                    Ok(sdk::GitPullRequestFilter::builder()
                        .set_events(
                            p.events
                                .as_ref()
                                .map(|e| e.iter().map(|e| e.as_str().into()).collect()),
                        )
                        .set_branches(p.branches.as_ref().map(branches))
                        .set_file_paths(p.file_paths.as_ref().map(file_paths))
                        .build())
                })?)
                .build()?,
        )
        .build()
}

fn branches(c: &decl::GitFilterCriteria) -> sdk::GitBranchFilterCriteria {
    sdk::GitBranchFilterCriteria::builder()
        .set_includes(c.includes.clone())
        .set_excludes(c.excludes.clone())
        .build()
}

fn file_paths(c: &decl::GitFilterCriteria) -> sdk::GitFilePathFilterCriteria {
    sdk::GitFilePathFilterCriteria::builder()
        .set_includes(c.includes.clone())
        .set_excludes(c.excludes.clone())
        .build()
}

fn configuration(c: &decl::Configuration) -> HashMap<String, String> {
    c.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The SDK's integers are `i32`; ours are `u32` bounded far below `i32::MAX` by validation.
fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn collect<T, U>(
    items: &[T],
    f: impl Fn(&T) -> Result<U, BuildError>,
) -> Result<Vec<U>, BuildError> {
    items.iter().map(f).collect()
}

fn opt_list<T, U>(
    items: &Option<Vec<T>>,
    f: impl Fn(&T) -> Result<U, BuildError>,
) -> Result<Option<Vec<U>>, BuildError> {
    items.as_deref().map(|items| collect(items, f)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn pipelines_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/pipelines")
    }

    /// Declaration → SDK → CodePipeline JSON equals the declaration's own JSON.
    fn assert_round_trip(path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let declaration = pipewright_core::parse_pipeline(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sdk = pipeline(&declaration).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let back = crate::json::pipeline_declaration(&sdk);
        let expected = serde_json::to_value(&declaration).unwrap();
        assert_eq!(
            back,
            expected,
            "{}: the SDK declaration lost or changed a member\nsent: {}\nfile: {}",
            path.display(),
            serde_json::to_string_pretty(&back).unwrap(),
            serde_json::to_string_pretty(&expected).unwrap()
        );
        // And it still reads as the same declaration.
        let reparsed = pipewright_core::parse_pipeline(&back.to_string()).unwrap();
        assert_eq!(reparsed, declaration);
    }

    #[test]
    fn sample_survives_the_sdk_round_trip() {
        let path = pipelines_dir().join("sample.json");
        assert_round_trip(&path);
        // The members the sample relies on are really there on the SDK side.
        let declaration =
            pipewright_core::parse_pipeline(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let sdk = pipeline(&declaration).unwrap();
        let compile = &sdk.stages()[1].actions()[0];
        assert_eq!(compile.commands().len(), 4);
        assert_eq!(compile.output_artifacts()[0].files(), ["dist/**/*"]);
        assert_eq!(compile.output_variables(), ["BUILD_ID"]);
        assert_eq!(compile.namespace(), Some("BuildVariables"));
        assert_eq!(sdk.pipeline_type(), Some(&sdk::PipelineType::V2));
        assert_eq!(
            sdk.variables()[0].default_value(),
            Some("pipewright-sample-site")
        );
    }

    #[test]
    fn every_readable_declaration_in_infra_survives_the_round_trip() {
        // The invalid ones too: conditions, triggers, environment variables, cross-region
        // stores; conversion does not validate.
        let mut checked = 0;
        for dir in [pipelines_dir(), pipelines_dir().join("invalid")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                if !matches!(ext, "json" | "yaml" | "yml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                if pipewright_core::parse_pipeline(&text).is_ok() {
                    assert_round_trip(&path);
                    checked += 1;
                }
            }
        }
        assert!(checked >= 5, "only {checked} declarations checked");
    }

    #[test]
    fn every_member_of_a_full_declaration_survives() {
        let text = r#"{
          "name": "full", "roleArn": "arn:aws:iam::123456789012:role/r", "version": 7,
          "artifactStores": {
            "us-east-1": {"type": "S3", "location": "a", "encryptionKey": {"id": "k", "type": "KMS"}},
            "eu-west-1": {"type": "S3", "location": "b"}
          },
          "pipelineType": "V2", "executionMode": "QUEUED",
          "variables": [{"name": "V"}],
          "triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
            "sourceActionName": "Src",
            "push": [{"tags": {"includes": ["v*"]}, "branches": {"excludes": ["x"]}, "filePaths": {"includes": ["a/**"]}}],
            "pullRequest": [{"events": ["OPEN", "CLOSED"], "branches": {"includes": ["main"]}}]
          }}],
          "stages": [{
            "name": "S", "blockers": [{"name": "b", "type": "Schedule"}],
            "actions": [{
              "name": "A",
              "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "P", "version": "2"},
              "runOrder": 3, "configuration": {"K": "V", "L": ""}, "commands": [],
              "outputArtifacts": [{"name": "O"}], "inputArtifacts": [],
              "outputVariables": ["X"], "roleArn": "arn:aws:iam::123456789012:role/a",
              "region": "eu-west-1", "namespace": "N", "timeoutInMinutes": 30,
              "environmentVariables": [{"name": "E", "value": "v", "type": "SECRETS_MANAGER"}, {"name": "F", "value": "w"}]
            }],
            "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"},
              "conditions": [{"result": "FAIL", "rules": [{"name": "r",
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
                "configuration": {"AlarmName": "a"}, "commands": ["x"], "inputArtifacts": [{"name": "O"}],
                "roleArn": "arn:aws:iam::123456789012:role/q", "region": "us-east-1", "timeoutInMinutes": 5}]}]},
            "onSuccess": {"conditions": [{"rules": [{"name": "s", "ruleTypeId": {"category": "Rule", "provider": "VariableCheck"}}]}]},
            "beforeEntry": {"conditions": [{"result": "SKIP"}]}
          }]
        }"#;
        let dir = std::env::temp_dir().join(format!("pipewright-convert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("full.json");
        std::fs::write(&path, text).unwrap();
        assert_round_trip(&path);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
