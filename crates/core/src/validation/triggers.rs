//! Trigger rules: each trigger names a source action of its provider, and
//! its push and pull-request filters are within limits.

use super::limits::{check_count, check_len};
use super::Problems;
use crate::declaration::{ActionCategory, GitFilterCriteria, PipelineDeclaration};

/// Triggers name a CodeStarSourceConnection source action; filters are within limits.
pub(super) fn check_triggers(p: &PipelineDeclaration, out: &mut Problems) {
    let triggers = p.triggers();
    if triggers.len() > 50 {
        out.add(
            "triggers",
            format!(
                "a pipeline may declare at most 50 triggers, found {}",
                triggers.len()
            ),
        );
    }
    for (t, trigger) in triggers.iter().enumerate() {
        let git = &trigger.git_configuration;
        let path = format!("triggers[{t}].gitConfiguration");
        let name_path = format!("{path}.sourceActionName");
        let source = p
            .actions()
            .map(|(_, _, action)| action)
            .find(|action| action.name == git.source_action_name);
        match source {
            None => out.add(
                &name_path,
                format!("no action is named `{}`", git.source_action_name),
            ),
            Some(action) if action.action_type_id.category != ActionCategory::Source => out.add(
                &name_path,
                format!("`{}` is not a source action", git.source_action_name),
            ),
            Some(action) if action.action_type_id.provider != trigger.provider_type.as_str() => out
                .add(
                    &name_path,
                    format!(
                        "a {} trigger needs a {} source action; `{}` is {}",
                        trigger.provider_type,
                        trigger.provider_type,
                        git.source_action_name,
                        action.action_type_id
                    ),
                ),
            Some(_) => {}
        }
        if let Some(push) = &git.push {
            check_count(
                out,
                &format!("{path}.push"),
                push.len(),
                1,
                3,
                "push filters",
            );
            for (f, filter) in push.iter().enumerate() {
                let fp = format!("{path}.push[{f}]");
                check_git_criteria(out, &format!("{fp}.tags"), filter.tags.as_ref());
                check_git_criteria(out, &format!("{fp}.branches"), filter.branches.as_ref());
                check_git_criteria(out, &format!("{fp}.filePaths"), filter.file_paths.as_ref());
            }
        }
        if let Some(pulls) = &git.pull_request {
            let pp = format!("{path}.pullRequest");
            check_count(out, &pp, pulls.len(), 1, 3, "pull request filters");
            for (f, filter) in pulls.iter().enumerate() {
                let fp = format!("{pp}[{f}]");
                if let Some(events) = &filter.events {
                    check_count(out, &format!("{fp}.events"), events.len(), 1, 3, "events");
                }
                check_git_criteria(out, &format!("{fp}.branches"), filter.branches.as_ref());
                check_git_criteria(out, &format!("{fp}.filePaths"), filter.file_paths.as_ref());
            }
        }
    }
}

fn check_git_criteria(out: &mut Problems, path: &str, criteria: Option<&GitFilterCriteria>) {
    let Some(criteria) = criteria else {
        return;
    };
    for (member, patterns) in [
        ("includes", &criteria.includes),
        ("excludes", &criteria.excludes),
    ] {
        let Some(patterns) = patterns else {
            continue;
        };
        let list_path = format!("{path}.{member}");
        check_count(out, &list_path, patterns.len(), 1, 8, "patterns");
        for (i, pattern) in patterns.iter().enumerate() {
            check_len(out, &format!("{list_path}[{i}]"), pattern, 1, 255);
        }
    }
}
