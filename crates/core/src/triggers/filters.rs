//! Git changes (pushes and pull requests from webhooks) and the decision whether they start a
//! pipeline: V2 trigger filters (`triggers[].gitConfiguration`) with CodePipeline's rules, and
//! the default behaviour of a git source action that has no trigger.
//!
//! The rules:
//! - a criteria list (`branches`, `tags`, `filePaths`) passes a name when no `excludes` pattern
//!   matches it (excludes win) and, if `includes` is given, one of its patterns does; a missing
//!   criteria list, or a missing `includes`, lets every name through;
//! - `filePaths` passes a change when ANY changed path passes;
//! - a push filter with `tags` applies to tag pushes only, one without `tags` to branch pushes
//!   only (CodePipeline filters a push on tags or on branches and paths, not both);
//! - pull-request filters look at the event (`OPEN`, `UPDATED`, `CLOSED`; a missing list: all),
//!   the destination branch and the changed paths;
//! - any filter of any trigger naming the source action may start it;
//! - **unknown file lists**: when the payload does not carry every changed path (GitHub and
//!   GitLab list at most 20 commits, Bitbucket lists no files, pull-request events carry none,
//!   a new branch lists no commits), the file paths cannot be checked and the filePaths
//!   criteria count as passed: a missed deployment is worse than an extra run. The decision's
//!   reason says so, and the webhook function logs it;
//! - without a trigger for it, a git source action starts on pushes to its configured branch
//!   (`BranchName` / `Branch`) unless it opted out of change detection (`DetectChanges: false`,
//!   or `PollForSourceChanges: true` for GitHub version 1); pull requests and tags do not start
//!   it;
//! - a push that deletes a branch or a tag never starts anything.

use std::fmt;

use crate::declaration::{
    ActionCategory, ActionDeclaration, ActionOwner, GitConfiguration, GitFilterCriteria,
    GitPullRequestEventType, PipelineDeclaration, PipelineType,
};
use crate::events::TriggerType;
use crate::execution::SourceRevisionOverride;

use super::glob::glob_match;

/// The reference a push updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// A branch (`refs/heads/<name>`).
    Branch(String),
    /// A tag (`refs/tags/<name>`).
    Tag(String),
}

impl GitRef {
    /// `refs/heads/main` → branch `main`, `refs/tags/v1` → tag `v1`; `None` for other refs.
    pub fn parse(full: &str) -> Option<Self> {
        if let Some(b) = full.strip_prefix("refs/heads/") {
            Some(GitRef::Branch(b.to_string()))
        } else {
            full.strip_prefix("refs/tags/")
                .map(|t| GitRef::Tag(t.to_string()))
        }
    }

    /// The branch or tag name.
    pub fn name(&self) -> &str {
        match self {
            GitRef::Branch(n) | GitRef::Tag(n) => n,
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitRef::Branch(b) => write!(f, "branch `{b}`"),
            GitRef::Tag(t) => write!(f, "tag `{t}`"),
        }
    }
}

/// The paths a change touched, as far as the payload tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedFiles {
    /// Every changed path (added, modified, removed).
    Known(Vec<String>),
    /// The payload does not list them all; why.
    Unknown(String),
}

/// A push to a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPush {
    /// The repository's full name (`owner/repo`, `group/subgroup/project`).
    pub repository: String,
    /// The branch or tag pushed.
    pub reference: GitRef,
    /// The commit the reference points at now (empty when deleted).
    pub commit_id: String,
    /// That commit's message, when the payload has it.
    pub commit_message: Option<String>,
    /// The push deleted the reference.
    pub deleted: bool,
    /// The paths the pushed commits changed.
    pub files: ChangedFiles,
}

/// A pull-request (merge-request) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPullRequest {
    /// The repository's full name.
    pub repository: String,
    /// Opened, updated or closed.
    pub event: GitPullRequestEventType,
    /// Its number (id) in the repository.
    pub number: u64,
    /// The branch it comes from.
    pub source_branch: String,
    /// The branch it goes into.
    pub destination_branch: String,
    /// The source branch's head commit.
    pub commit_id: String,
    /// Its title.
    pub title: Option<String>,
    /// The paths it changes.
    pub files: ChangedFiles,
    /// The repository it comes from when that is not `repository` (a fork: its code, which
    /// anyone may write, would run with the pipeline's roles), e.g. `someone/app`.
    pub from_fork: Option<String>,
}

/// A git change a webhook reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitChange {
    /// A push.
    Push(GitPush),
    /// A pull-request event.
    PullRequest(GitPullRequest),
}

impl GitChange {
    /// The repository's full name.
    pub fn repository(&self) -> &str {
        match self {
            GitChange::Push(p) => &p.repository,
            GitChange::PullRequest(p) => &p.repository,
        }
    }

    /// The commit to run.
    pub fn commit_id(&self) -> &str {
        match self {
            GitChange::Push(p) => &p.commit_id,
            GitChange::PullRequest(p) => &p.commit_id,
        }
    }
}

impl fmt::Display for GitChange {
    /// `push to branch `main` of acme/app`, `pull request #4 (OPEN) into `main` of acme/app`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitChange::Push(p) if p.deleted => {
                write!(f, "deletion of {} of {}", p.reference, p.repository)
            }
            GitChange::Push(p) => write!(f, "push to {} of {}", p.reference, p.repository),
            GitChange::PullRequest(p) => write!(
                f,
                "pull request #{} ({}) from `{}` into `{}` of {}",
                p.number, p.event, p.source_branch, p.destination_branch, p.repository
            ),
        }
    }
}

/// Whether to start, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Start an execution.
    pub start: bool,
    /// Why (or why not), for the log and the webhook's answer.
    pub reason: String,
}

impl Decision {
    fn start(reason: impl Into<String>) -> Self {
        Self {
            start: true,
            reason: reason.into(),
        }
    }

    fn skip(reason: impl Into<String>) -> Self {
        Self {
            start: false,
            reason: reason.into(),
        }
    }
}

/// Whether `name` passes `criteria`: `Ok(why)` or `Err(why not)`.
fn criteria_pass(
    what: &str,
    name: &str,
    criteria: Option<&GitFilterCriteria>,
) -> Result<String, String> {
    let Some(criteria) = criteria else {
        return Ok(format!("any {what}"));
    };
    for pattern in criteria.excludes.iter().flatten() {
        if glob_match(pattern, name) {
            return Err(format!("{what} `{name}` excluded by `{pattern}`"));
        }
    }
    match &criteria.includes {
        None => Ok(format!("{what} `{name}` not excluded")),
        Some(includes) => match includes.iter().find(|p| glob_match(p, name)) {
            Some(pattern) => Ok(format!("{what} `{name}` included by `{pattern}`")),
            None => Err(format!(
                "{what} `{name}` not included by {}",
                list(includes)
            )),
        },
    }
}

fn list(patterns: &[String]) -> String {
    let quoted: Vec<String> = patterns.iter().map(|p| format!("`{p}`")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Whether the changed files pass `criteria` (any path passing is enough).
fn files_pass(
    files: &ChangedFiles,
    criteria: Option<&GitFilterCriteria>,
) -> Result<String, String> {
    if criteria.is_none() {
        return Ok("any files".into());
    }
    match files {
        ChangedFiles::Unknown(why) => Ok(format!(
            "the changed files are unknown ({why}): file paths treated as matching"
        )),
        ChangedFiles::Known(paths) if paths.is_empty() => {
            Err("the change lists no changed files".into())
        }
        ChangedFiles::Known(paths) => {
            let mut first_refusal = None;
            for path in paths {
                match criteria_pass("file", path, criteria) {
                    Ok(why) => return Ok(why),
                    Err(why) => {
                        first_refusal.get_or_insert(why);
                    }
                }
            }
            Err(format!(
                "none of the {} changed file{} passes ({}{})",
                paths.len(),
                if paths.len() == 1 { "" } else { "s" },
                first_refusal.unwrap_or_default(),
                if paths.len() > 1 { ", ..." } else { "" }
            ))
        }
    }
}

/// Whether `change` passes the trigger's filters (`config` is one trigger's
/// `gitConfiguration`). The reason names the filter that passed, or why each refused.
pub fn filter_decision(config: &GitConfiguration, change: &GitChange) -> Decision {
    match change {
        GitChange::Push(push) if push.deleted => {
            Decision::skip(format!("{change}: a deletion starts nothing"))
        }
        GitChange::Push(push) => {
            let Some(filters) = config.push.as_deref().filter(|f| !f.is_empty()) else {
                return Decision::skip(format!(
                    "{change}: the trigger for `{}` has no push filter",
                    config.source_action_name
                ));
            };
            let mut refusals = Vec::new();
            for (i, filter) in filters.iter().enumerate() {
                let verdict = match &push.reference {
                    GitRef::Tag(tag) => match &filter.tags {
                        None => Err("filters branches, not tags".to_string()),
                        Some(tags) => criteria_pass("tag", tag, Some(tags)),
                    },
                    GitRef::Branch(branch) => {
                        if filter.tags.is_some() {
                            Err("filters tags, not branches".to_string())
                        } else {
                            criteria_pass("branch", branch, filter.branches.as_ref()).and_then(
                                |b| {
                                    files_pass(&push.files, filter.file_paths.as_ref())
                                        .map(|f| format!("{b}; {f}"))
                                },
                            )
                        }
                    }
                };
                match verdict {
                    Ok(why) => {
                        return Decision::start(format!("{change}: push[{i}] passes ({why})"))
                    }
                    Err(why) => refusals.push(format!("push[{i}]: {why}")),
                }
            }
            Decision::skip(format!("{change}: {}", refusals.join("; ")))
        }
        GitChange::PullRequest(pr) => {
            let Some(filters) = config.pull_request.as_deref().filter(|f| !f.is_empty()) else {
                return Decision::skip(format!(
                    "{change}: the trigger for `{}` has no pull request filter",
                    config.source_action_name
                ));
            };
            let mut refusals = Vec::new();
            for (i, filter) in filters.iter().enumerate() {
                let event_ok = match &filter.events {
                    None => Ok("any event".to_string()),
                    Some(events) if events.contains(&pr.event) => Ok(format!("event {}", pr.event)),
                    Some(events) => Err(format!(
                        "event {} not in [{}]",
                        pr.event,
                        events
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                let verdict = event_ok.and_then(|e| {
                    criteria_pass(
                        "destination branch",
                        &pr.destination_branch,
                        filter.branches.as_ref(),
                    )
                    .and_then(|b| {
                        files_pass(&pr.files, filter.file_paths.as_ref())
                            .map(|f| format!("{e}; {b}; {f}"))
                    })
                });
                match verdict {
                    Ok(why) => {
                        return Decision::start(format!(
                            "{change}: pullRequest[{i}] passes ({why})"
                        ))
                    }
                    Err(why) => refusals.push(format!("pullRequest[{i}]: {why}")),
                }
            }
            Decision::skip(format!("{change}: {}", refusals.join("; ")))
        }
    }
}

/// A git source action: the repository it follows and its configured branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource<'p> {
    /// The action.
    pub action: &'p ActionDeclaration,
    /// `owner/repo` (`FullRepositoryId`, or `Owner`/`Repo` for GitHub version 1).
    pub repository: String,
    /// `BranchName` (`Branch` for GitHub version 1).
    pub branch: Option<String>,
    /// Whether pushes to `branch` start the pipeline when no trigger says otherwise.
    pub detects_changes: bool,
}

/// The git source actions of `pipeline` (`Source/AWS/CodeStarSourceConnection`,
/// `Source/ThirdParty/GitHub`), in declaration order.
pub fn git_sources(pipeline: &PipelineDeclaration) -> Vec<GitSource<'_>> {
    let Some(first) = pipeline.stages.first() else {
        return Vec::new();
    };
    first
        .actions
        .iter()
        .filter(|a| a.action_type_id.category == ActionCategory::Source)
        .filter_map(|action| {
            let id = &action.action_type_id;
            let config = action.configuration();
            let get = |k: &str| config.get(k).map(String::as_str);
            match (id.owner, id.provider.as_str()) {
                (ActionOwner::Aws, "CodeStarSourceConnection") => Some(GitSource {
                    action,
                    repository: get("FullRepositoryId")
                        .or_else(|| get("FullRepositoryName"))?
                        .to_string(),
                    branch: get("BranchName").map(str::to_string),
                    detects_changes: !get("DetectChanges")
                        .is_some_and(|v| v.eq_ignore_ascii_case("false")),
                }),
                (ActionOwner::ThirdParty, "GitHub") => Some(GitSource {
                    action,
                    repository: format!("{}/{}", get("Owner")?, get("Repo")?),
                    branch: get("Branch").map(str::to_string),
                    detects_changes: !get("PollForSourceChanges")
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                }),
                _ => None,
            }
        })
        .collect()
}

/// Whether a git source action starts on `change` (its repository already matched): the
/// triggers naming it decide, else its default (pushes to its branch).
pub fn source_decision(
    pipeline: &PipelineDeclaration,
    source: &GitSource<'_>,
    change: &GitChange,
) -> Decision {
    let triggers: Vec<(usize, &GitConfiguration)> = pipeline
        .triggers()
        .iter()
        .enumerate()
        .map(|(i, t)| (i, &t.git_configuration))
        .filter(|(_, g)| g.source_action_name == source.action.name)
        .collect();
    if triggers.is_empty() {
        return default_decision(source, change);
    }
    let mut refusals = Vec::new();
    for (i, config) in triggers {
        let decision = filter_decision(config, change);
        if decision.start {
            return Decision::start(format!("triggers[{i}]: {}", decision.reason));
        }
        refusals.push(format!("triggers[{i}]: {}", decision.reason));
    }
    Decision::skip(refusals.join(" | "))
}

fn default_decision(source: &GitSource<'_>, change: &GitChange) -> Decision {
    let action = &source.action.name;
    match change {
        GitChange::Push(p) if p.deleted => {
            Decision::skip(format!("{change}: a deletion starts nothing"))
        }
        GitChange::Push(GitPush {
            reference: GitRef::Branch(branch),
            ..
        }) => {
            if !source.detects_changes {
                Decision::skip(format!(
                    "{change}: source action `{action}` does not detect changes"
                ))
            } else if source.branch.as_deref() == Some(branch.as_str()) {
                Decision::start(format!(
                    "{change}: the branch of source action `{action}` (no trigger filters)"
                ))
            } else {
                Decision::skip(format!(
                    "{change}: source action `{action}` follows branch `{}` (no trigger filters)",
                    source.branch.as_deref().unwrap_or_default()
                ))
            }
        }
        GitChange::Push(_) => Decision::skip(format!(
            "{change}: tags start source action `{action}` only through a trigger with tag filters"
        )),
        GitChange::PullRequest(_) => Decision::skip(format!(
            "{change}: pull requests start source action `{action}` only through a trigger with pull request filters"
        )),
    }
}

/// What a git change means for one pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPlan {
    /// Start an execution.
    pub start: bool,
    /// Why (or why not): one reason per git source action on the repository.
    pub reason: String,
    /// The commit, pinned for every source action that starts.
    pub source_revisions: Vec<SourceRevisionOverride>,
    /// `WebhookV2` for V2 pipelines, `Webhook` for V1.
    pub trigger_type: TriggerType,
}

/// What `change` means for `pipeline`: `None` when no git source action of it follows that
/// repository (names compared without regard to case, as git hosts do).
pub fn plan_git_change(pipeline: &PipelineDeclaration, change: &GitChange) -> Option<GitPlan> {
    let sources: Vec<GitSource<'_>> = git_sources(pipeline)
        .into_iter()
        .filter(|s| s.repository.eq_ignore_ascii_case(change.repository()))
        .collect();
    if sources.is_empty() {
        return None;
    }
    let mut reasons = Vec::new();
    let mut source_revisions = Vec::new();
    for source in &sources {
        let decision = source_decision(pipeline, source, change);
        if decision.start && !change.commit_id().is_empty() {
            source_revisions.push(SourceRevisionOverride {
                action_name: source.action.name.clone(),
                revision_type: "COMMIT_ID".into(),
                revision_value: change.commit_id().to_string(),
            });
        }
        reasons.push(format!("{}: {}", source.action.name, decision.reason));
    }
    Some(GitPlan {
        start: !source_revisions.is_empty(),
        reason: reasons.join(" || "),
        source_revisions,
        trigger_type: match pipeline.pipeline_type() {
            PipelineType::V2 => TriggerType::WebhookV2,
            _ => TriggerType::Webhook,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declaration::{GitPullRequestFilter, GitPushFilter};

    fn criteria(includes: &[&str], excludes: &[&str]) -> Option<GitFilterCriteria> {
        let v = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| s.to_string()).collect());
        Some(GitFilterCriteria {
            includes: v(includes),
            excludes: v(excludes),
        })
    }

    fn push_to(reference: GitRef, files: &[&str]) -> GitChange {
        GitChange::Push(GitPush {
            repository: "acme/app".into(),
            reference,
            commit_id: "0123456789abcdef0123456789abcdef01234567".into(),
            commit_message: None,
            deleted: false,
            files: ChangedFiles::Known(files.iter().map(|s| s.to_string()).collect()),
        })
    }

    fn branch(name: &str, files: &[&str]) -> GitChange {
        push_to(GitRef::Branch(name.into()), files)
    }

    fn pr(event: GitPullRequestEventType, into: &str) -> GitChange {
        GitChange::PullRequest(GitPullRequest {
            repository: "acme/app".into(),
            event,
            number: 7,
            source_branch: "feature/x".into(),
            destination_branch: into.into(),
            commit_id: "feedface".into(),
            title: None,
            files: ChangedFiles::Unknown("pull request payloads list no files".into()),
            from_fork: None,
        })
    }

    fn push_config(filters: Vec<GitPushFilter>) -> GitConfiguration {
        GitConfiguration {
            source_action_name: "Source".into(),
            push: Some(filters),
            pull_request: None,
        }
    }

    fn push_filter(
        branches: Option<GitFilterCriteria>,
        paths: Option<GitFilterCriteria>,
        tags: Option<GitFilterCriteria>,
    ) -> GitPushFilter {
        GitPushFilter {
            branches,
            file_paths: paths,
            tags,
        }
    }

    /// The documentation's example trigger (monorepo).
    fn documented() -> GitConfiguration {
        push_config(vec![push_filter(
            criteria(&["feature/**", "release/**"], &["mainline"]),
            criteria(
                &["projectA/**", "common/**/*.js"],
                &["**/README.md", "**/LICENSE", "**/CONTRIBUTING.md"],
            ),
            None,
        )])
    }

    #[test]
    fn push_filters_decide_on_branches_and_paths() {
        let config = documented();
        // (change, start, a piece of the reason)
        let table: Vec<(GitChange, bool, &str)> = vec![
            (
                branch("feature/login", &["projectA/src/a.rs"]),
                true,
                "file `projectA/src/a.rs` included by `projectA/**`",
            ),
            (
                branch("release/1.2/hotfix", &["common/x/y.js"]),
                true,
                "included by `common/**/*.js`",
            ),
            (
                branch("release/1.2", &["common/y.js"]),
                true,
                "included by `common/**/*.js`",
            ),
            (
                branch("mainline", &["projectA/a.rs"]),
                false,
                "branch `mainline` excluded by `mainline`",
            ),
            (
                branch("feature/x", &["projectB/a.rs"]),
                false,
                "none of the 1 changed file passes (file `projectB/a.rs` not included",
            ),
            (
                branch("feature/x", &["projectA/README.md"]),
                false,
                "file `projectA/README.md` excluded by `**/README.md`",
            ),
            (
                branch(
                    "feature/x",
                    &["projectA/README.md", "docs/x", "projectA/lib.rs"],
                ),
                true,
                "file `projectA/lib.rs` included by `projectA/**`",
            ),
            (branch("feature/x", &[]), false, "lists no changed files"),
            (
                branch("hotfix", &["projectA/a.rs"]),
                false,
                "branch `hotfix` not included by [`feature/**`, `release/**`]",
            ),
            (
                push_to(GitRef::Tag("release-v1".into()), &[]),
                false,
                "filters branches, not tags",
            ),
        ];
        for (change, start, reason) in table {
            let d = filter_decision(&config, &change);
            assert_eq!(d.start, start, "{change}: {}", d.reason);
            assert!(d.reason.contains(reason), "{change}: {}", d.reason);
        }
    }

    #[test]
    fn excludes_win_and_missing_lists_mean_all() {
        let table: Vec<(Option<GitFilterCriteria>, &str, bool)> = vec![
            (None, "anything", true),
            (criteria(&[], &["main"]), "main", false),
            (criteria(&[], &["main"]), "dev", true),
            (criteria(&["*"], &["main"]), "main", false),
            (criteria(&["main"], &["main"]), "main", false),
            (criteria(&["main"], &[]), "main", true),
            (criteria(&["main"], &[]), "dev", false),
        ];
        for (branches, name, start) in table {
            let config = push_config(vec![push_filter(branches.clone(), None, None)]);
            let d = filter_decision(&config, &branch(name, &["x"]));
            assert_eq!(d.start, start, "{branches:?} {name}: {}", d.reason);
        }
    }

    #[test]
    fn tag_filters_apply_to_tag_pushes_only() {
        let config = push_config(vec![
            push_filter(None, None, criteria(&["release-v*"], &["release-v2"])),
            push_filter(criteria(&["main"], &[]), None, None),
        ]);
        let table = [
            (push_to(GitRef::Tag("release-v1".into()), &[]), true),
            (push_to(GitRef::Tag("release-v2".into()), &[]), false),
            (push_to(GitRef::Tag("v1".into()), &[]), false),
            (branch("main", &["a"]), true),
            (branch("release-v1", &["a"]), false),
        ];
        for (change, start) in table {
            let d = filter_decision(&config, &change);
            assert_eq!(d.start, start, "{change}: {}", d.reason);
        }
        let d = filter_decision(&config, &branch("release-v1", &["a"]));
        assert!(
            d.reason.contains("push[0]: filters tags, not branches"),
            "{}",
            d.reason
        );
        assert!(
            d.reason
                .contains("push[1]: branch `release-v1` not included"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn unknown_file_lists_count_as_matching_and_say_so() {
        let config = documented();
        let mut change = branch("feature/x", &[]);
        if let GitChange::Push(p) = &mut change {
            p.files = ChangedFiles::Unknown("GitHub lists at most 20 commits".into());
        }
        let d = filter_decision(&config, &change);
        assert!(d.start, "{}", d.reason);
        assert!(
            d.reason
                .contains("the changed files are unknown (GitHub lists at most 20 commits)"),
            "{}",
            d.reason
        );
        // Without file path criteria the list does not matter at all.
        let d = filter_decision(&push_config(vec![push_filter(None, None, None)]), &change);
        assert!(d.start && d.reason.contains("any files"), "{}", d.reason);
    }

    #[test]
    fn deletions_never_start() {
        let mut change = branch("feature/x", &["projectA/a"]);
        if let GitChange::Push(p) = &mut change {
            p.deleted = true;
        }
        let d = filter_decision(&documented(), &change);
        assert!(!d.start);
        assert!(d.reason.contains("deletion"), "{}", d.reason);
    }

    #[test]
    fn pull_request_filters_decide_on_events_and_destination_branch() {
        let config = GitConfiguration {
            source_action_name: "Source".into(),
            push: None,
            pull_request: Some(vec![GitPullRequestFilter {
                events: Some(vec![
                    GitPullRequestEventType::Open,
                    GitPullRequestEventType::Updated,
                ]),
                branches: criteria(&["main", "release/*"], &[]),
                file_paths: criteria(&["src/**"], &[]),
            }]),
        };
        use GitPullRequestEventType::*;
        let table = [
            (pr(Open, "main"), true, "event OPEN; destination branch `main` included by `main`; the changed files are unknown"),
            (pr(Updated, "release/2"), true, "included by `release/*`"),
            (pr(Closed, "main"), false, "event CLOSED not in [OPEN, UPDATED]"),
            (pr(Open, "dev"), false, "destination branch `dev` not included"),
            (branch("main", &["src/a"]), false, "has no push filter"),
        ];
        for (change, start, reason) in table {
            let d = filter_decision(&config, &change);
            assert_eq!(d.start, start, "{change}: {}", d.reason);
            assert!(d.reason.contains(reason), "{change}: {}", d.reason);
        }
        // No events list: every event.
        let mut all = config.clone();
        all.pull_request.as_mut().unwrap()[0].events = None;
        assert!(filter_decision(&all, &pr(Closed, "main")).start);
        // A push-only trigger ignores pull requests.
        let d = filter_decision(&documented(), &pr(Open, "main"));
        assert!(
            !d.start && d.reason.contains("has no pull request filter"),
            "{}",
            d.reason
        );
    }

    fn git_pipeline(triggers: &str) -> PipelineDeclaration {
        crate::parse_pipeline(&format!(
            r#"{{
              "name": "app", "roleArn": "arn:aws:iam::123456789012:role/x", "pipelineType": "V2",
              "artifactStore": {{"type": "S3", "location": "b"}},
              "triggers": {triggers},
              "stages": [
                {{"name": "Source", "actions": [
                  {{"name": "App", "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"}},
                    "configuration": {{"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/x", "FullRepositoryId": "Acme/App", "BranchName": "main"}},
                    "outputArtifacts": [{{"name": "Src"}}]}},
                  {{"name": "Other", "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"}},
                    "configuration": {{"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/x", "FullRepositoryId": "acme/other", "BranchName": "main"}},
                    "outputArtifacts": [{{"name": "Other"}}]}}
                ]}},
                {{"name": "Build", "actions": [
                  {{"name": "Run", "actionTypeId": {{"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}},
                    "commands": ["true"], "inputArtifacts": [{{"name": "Src"}}]}}
                ]}}
              ]
            }}"#
        ))
        .unwrap()
    }

    #[test]
    fn without_triggers_pushes_to_the_configured_branch_start() {
        let p = git_pipeline("[]");
        let plan = plan_git_change(&p, &branch("main", &["x"])).unwrap();
        assert!(plan.start, "{}", plan.reason);
        assert_eq!(plan.trigger_type, TriggerType::WebhookV2);
        assert_eq!(
            plan.source_revisions,
            vec![SourceRevisionOverride {
                action_name: "App".into(),
                revision_type: "COMMIT_ID".into(),
                revision_value: "0123456789abcdef0123456789abcdef01234567".into(),
            }]
        );
        let plan = plan_git_change(&p, &branch("dev", &["x"])).unwrap();
        assert!(!plan.start);
        assert!(
            plan.reason.contains("follows branch `main`"),
            "{}",
            plan.reason
        );
        assert!(
            !plan_git_change(&p, &pr(GitPullRequestEventType::Open, "main"))
                .unwrap()
                .start
        );
        assert!(
            !plan_git_change(&p, &push_to(GitRef::Tag("v1".into()), &[]))
                .unwrap()
                .start
        );
        // Another repository: not this pipeline's business at all.
        let mut elsewhere = branch("main", &["x"]);
        if let GitChange::Push(push) = &mut elsewhere {
            push.repository = "acme/unrelated".into();
        }
        assert_eq!(plan_git_change(&p, &elsewhere), None);
        // V1 pipelines record `Webhook`.
        let mut v1 = p.clone();
        v1.pipeline_type = Some(PipelineType::V1);
        assert_eq!(
            plan_git_change(&v1, &branch("main", &["x"]))
                .unwrap()
                .trigger_type,
            TriggerType::Webhook
        );
        // Opting out of change detection.
        let mut quiet = p.clone();
        quiet.stages[0].actions[0]
            .configuration
            .as_mut()
            .unwrap()
            .insert("DetectChanges".into(), "false".into());
        assert!(
            !plan_git_change(&quiet, &branch("main", &["x"]))
                .unwrap()
                .start
        );
    }

    #[test]
    fn triggers_replace_the_configured_branch() {
        let p = git_pipeline(
            r#"[{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
                 "sourceActionName": "App",
                 "push": [{"branches": {"includes": ["release/**"]}, "filePaths": {"excludes": ["docs/**"]}}],
                 "pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]}}]}}]"#,
        );
        let table = [
            (branch("release/1", &["src/a"]), true),
            (branch("main", &["src/a"]), false),
            (branch("release/1", &["docs/a.md"]), false),
            (branch("release/1", &["docs/a.md", "src/b"]), true),
            (pr(GitPullRequestEventType::Open, "main"), true),
            (pr(GitPullRequestEventType::Closed, "main"), false),
        ];
        for (change, start) in table {
            let plan = plan_git_change(&p, &change).unwrap();
            assert_eq!(plan.start, start, "{change}: {}", plan.reason);
            assert_eq!(plan.source_revisions.len(), usize::from(start));
            assert!(
                plan.reason.starts_with("App: triggers[0]: "),
                "{}",
                plan.reason
            );
        }
        let plan = plan_git_change(&p, &pr(GitPullRequestEventType::Open, "main")).unwrap();
        assert_eq!(plan.source_revisions[0].revision_value, "feedface");
    }

    #[test]
    fn refs_parse() {
        assert_eq!(
            GitRef::parse("refs/heads/a/b"),
            Some(GitRef::Branch("a/b".into()))
        );
        assert_eq!(
            GitRef::parse("refs/tags/v1"),
            Some(GitRef::Tag("v1".into()))
        );
        assert_eq!(GitRef::parse("refs/pull/1/head"), None);
    }
}
