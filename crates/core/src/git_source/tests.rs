use std::collections::BTreeMap;

use serde_json::Value;

use super::*;
use crate::execution::FailureType;
use crate::execution::SourceRevisionOverride;

const ARN: &str = "arn:aws:codeconnections:us-east-1:123456789012:connection/7d2469ff-514a-4e4f-9003-5ca4a43cdc41";
const SHA: &str = "4b2c2f0a8e3d1c5b7a9f6e4d2c0b8a6f4e2d0c9b";

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn connection() -> GitSource {
    GitSource::from_configuration(
        GitSourceKind::Connection,
        &config(&[
            ("ConnectionArn", ARN),
            ("FullRepositoryId", "acme/app"),
            ("BranchName", "main"),
        ]),
        DEFAULT_CONNECTION_SECRET_PREFIX,
    )
    .unwrap()
}

fn github_v1() -> GitSource {
    GitSource::from_configuration(
        GitSourceKind::GitHubV1,
        &config(&[
            ("Owner", "acme"),
            ("Repo", "app"),
            ("Branch", "release/1.x"),
            ("OAuthToken", "ghp_secret"),
        ]),
        DEFAULT_CONNECTION_SECRET_PREFIX,
    )
    .unwrap()
}

fn commit() -> Commit {
    parse_commit(
        serde_json::json!({
            "sha": SHA,
            "url": format!("https://api.github.com/repos/acme/app/commits/{SHA}"),
            "html_url": format!("https://github.com/acme/app/commit/{SHA}"),
            "commit": {
                "message": "Fix the build\n\nlonger text",
                "author": {"name": "A", "email": "a@example.com", "date": "2026-11-20T10:00:00Z"},
                "committer": {"name": "C", "email": "c@example.com", "date": "2026-11-20T10:05:00Z"}
            }
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

#[test]
fn kinds_come_from_the_action_type() {
    let id = |category, owner, provider: &str, version: &str| ActionTypeId {
        category,
        owner,
        provider: provider.into(),
        version: version.into(),
    };
    use ActionCategory::*;
    use ActionOwner::*;
    assert_eq!(
        GitSourceKind::of(&id(Source, Aws, "CodeStarSourceConnection", "1")),
        Some(GitSourceKind::Connection)
    );
    assert_eq!(
        GitSourceKind::of(&id(Source, ThirdParty, "GitHub", "1")),
        Some(GitSourceKind::GitHubV1)
    );
    assert_eq!(
        GitSourceKind::of(&id(Source, ThirdParty, "GitHub", "2")),
        None
    );
    assert_eq!(GitSourceKind::of(&id(Source, Aws, "S3", "1")), None);
}

#[test]
fn a_connection_source_reads_its_configuration() {
    let s = connection();
    assert_eq!((s.owner.as_str(), s.repo.as_str()), ("acme", "app"));
    assert_eq!(s.full_name(), "acme/app");
    assert_eq!(s.branch, "main");
    assert_eq!(s.format, OutputArtifactFormat::CodeZip);
    assert_eq!(
        s.token,
        TokenSource::Secret("pipewright/connections/7d2469ff-514a-4e4f-9003-5ca4a43cdc41".into())
    );
    assert!(s.check_format().is_ok());
}

#[test]
fn a_github_v1_source_reads_its_configuration() {
    let s = github_v1();
    assert_eq!(s.full_name(), "acme/app");
    assert_eq!(s.branch, "release/1.x");
    assert_eq!(s.token, TokenSource::OAuthToken);
    assert_eq!(s.connection_arn, None);
}

/// A table row: the action kind, its configuration, what the error says.
type ConfigCase<'a> = (GitSourceKind, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn configuration_errors_name_the_key() {
    let cases: &[ConfigCase] = &[
        (
            GitSourceKind::Connection,
            &[("FullRepositoryId", "a/b"), ("BranchName", "main")],
            "configuration ConnectionArn is required",
        ),
        (
            GitSourceKind::Connection,
            &[("ConnectionArn", "nope"), ("FullRepositoryId", "a/b"), ("BranchName", "m")],
            "configuration ConnectionArn: `nope` is not an ARN",
        ),
        (
            GitSourceKind::Connection,
            &[
                ("ConnectionArn", "arn:aws:s3:::bucket/connection"),
                ("FullRepositoryId", "a/b"),
                ("BranchName", "m"),
            ],
            "is not a connection ARN",
        ),
        (
            GitSourceKind::Connection,
            &[("ConnectionArn", ARN), ("FullRepositoryId", "just-a-name"), ("BranchName", "m")],
            "configuration FullRepositoryId: `just-a-name` is not <owner>/<repository>",
        ),
        (
            GitSourceKind::Connection,
            &[("ConnectionArn", ARN), ("FullRepositoryId", "group/sub/repo"), ("BranchName", "m")],
            "is not <owner>/<repository>",
        ),
        (
            GitSourceKind::Connection,
            &[("ConnectionArn", ARN), ("FullRepositoryId", "a/b c"), ("BranchName", "m")],
            "configuration FullRepositoryId: `b c` is not a repository owner or name",
        ),
        (
            GitSourceKind::Connection,
            &[("ConnectionArn", ARN), ("FullRepositoryId", "a/b"), ("BranchName", "a..b")],
            "configuration BranchName: `a..b` is not a branch name",
        ),
        (
            GitSourceKind::Connection,
            &[
                ("ConnectionArn", ARN),
                ("FullRepositoryId", "a/b"),
                ("BranchName", "m"),
                ("OutputArtifactFormat", "TARBALL"),
            ],
            "configuration OutputArtifactFormat: `TARBALL` is neither CODE_ZIP nor CODEBUILD_CLONE_REF",
        ),
        (
            GitSourceKind::GitHubV1,
            &[("Owner", "a"), ("Repo", "b"), ("Branch", "m")],
            "configuration OAuthToken is required",
        ),
        (
            GitSourceKind::GitHubV1,
            &[("Owner", "a"), ("Repo", "b"), ("Branch", "  "), ("OAuthToken", "t")],
            "configuration Branch is required",
        ),
    ];
    for (kind, pairs, want) in cases {
        let err = GitSource::from_configuration(*kind, &config(pairs), "p/").unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError, "{pairs:?}");
        assert!(err.to_string().contains(want), "{pairs:?}: {err}");
    }
}

#[test]
fn codebuild_clone_ref_is_refused_naming_the_key() {
    let s = GitSource::from_configuration(
        GitSourceKind::Connection,
        &config(&[
            ("ConnectionArn", ARN),
            ("FullRepositoryId", "acme/app"),
            ("BranchName", "main"),
            ("OutputArtifactFormat", "CODEBUILD_CLONE_REF"),
        ]),
        "p/",
    )
    .unwrap();
    let err = s.check_format().unwrap_err();
    assert_eq!(err.code(), FailureType::ConfigurationError);
    assert!(
        err.to_string()
            .starts_with("configuration OutputArtifactFormat: CODEBUILD_CLONE_REF"),
        "{err}"
    );
}

#[test]
fn connection_ids_come_from_both_arn_services() {
    assert_eq!(
        connection_id("arn:aws:codestar-connections:eu-west-1:1:connection/abc-123").unwrap(),
        "abc-123"
    );
    assert_eq!(
        connection_id("arn:aws-cn:codeconnections:cn-north-1:1:connection/x").unwrap(),
        "x"
    );
    assert!(connection_id("arn:aws:codeconnections:r:1:host/x").is_err());
    assert!(connection_id("arn:aws:codeconnections:r:1:connection/../x").is_err());
    assert!(connection_id("arn:aws:codeconnections:r:1:connection/").is_err());
}

#[test]
fn full_repository_ids_split_into_owner_and_repo() {
    assert_eq!(
        parse_full_repository_id("Acme-Corp/my.app_2").unwrap(),
        ("Acme-Corp".into(), "my.app_2".into())
    );
    assert_eq!(
        parse_full_repository_id("acme/app.git").unwrap(),
        ("acme".into(), "app".into())
    );
    for bad in [
        "", "/", "a/", "/b", "a/b/c", "../b", "a/..", "a/b?x", "a/%2e",
    ] {
        assert!(parse_full_repository_id(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_pinned_commit_is_the_commit_id_override() {
    let o = |t: &str, v: &str| SourceRevisionOverride {
        action_name: "Src".into(),
        revision_type: t.into(),
        revision_value: v.into(),
    };
    assert_eq!(pinned_commit(&[]).unwrap(), None);
    assert_eq!(
        pinned_commit(&[o("COMMIT_ID", &SHA.to_uppercase())]).unwrap(),
        Some(SHA.to_string())
    );
    assert_eq!(
        pinned_commit(&[o("COMMIT_ID", "4b2c2f0")]).unwrap(),
        Some("4b2c2f0".into())
    );
    let err = pinned_commit(&[o("S3_OBJECT_VERSION_ID", "v1")]).unwrap_err();
    assert_eq!(err.code(), FailureType::ConfigurationError);
    assert!(err.to_string().contains("S3_OBJECT_VERSION_ID"), "{err}");
    for bad in ["main", "4b2c2f", "4b2c2f0/../x", &"a".repeat(65)] {
        assert!(pinned_commit(&[o("COMMIT_ID", bad)]).is_err(), "{bad}");
    }
}

#[test]
fn urls_are_built_on_the_base() {
    let s = connection();
    let api = GitApi::new("https://ghe.example.com/api/v3/").unwrap();
    assert_eq!(api.base(), "https://ghe.example.com/api/v3");
    assert_eq!(
        api.commit_url(&s, "feature/new thing#1"),
        "https://ghe.example.com/api/v3/repos/acme/app/commits/feature/new%20thing%231"
    );
    assert_eq!(
        api.tarball_url(&s, SHA),
        format!("https://ghe.example.com/api/v3/repos/acme/app/tarball/{SHA}")
    );
    assert_eq!(api.provider_type(), "GitHubEnterpriseServer");
    assert_eq!(
        GitApi::new(DEFAULT_API_BASE_URL).unwrap().provider_type(),
        "GitHub"
    );
    assert_eq!(
        GitApi::new("http://127.0.0.1:8080").unwrap().base(),
        "http://127.0.0.1:8080"
    );
    for bad in [
        "",
        "ftp://x",
        "https://",
        "https:///x",
        "api.github.com",
        "https://x?y=1",
        "https://u:p@x",
    ] {
        let err = GitApi::new(bad).unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError, "{bad}");
    }
    // A credential in the URL is never echoed.
    let err = GitApi::new("https://user:ghp_secret@ghe.example.com").unwrap_err();
    assert!(!err.to_string().contains("ghp_secret"), "{err}");
}

#[test]
fn redirects_resolve_and_drop_the_token_off_origin() {
    let from = "https://api.github.com/repos/a/b/tarball/abc";
    assert_eq!(origin(from).as_deref(), Some("https://api.github.com"));
    assert_eq!(
        origin("http://127.0.0.1:8080").as_deref(),
        Some("http://127.0.0.1:8080")
    );
    assert_eq!(origin("ftp://x/y"), None);
    assert_eq!(origin("https:///y"), None);
    // Credentials and default ports are not part of an origin.
    assert_eq!(
        origin("https://user:ghp_secret@ghe.example.com:443/api/v3").as_deref(),
        Some("https://ghe.example.com")
    );
    assert_eq!(
        redirect_target(
            from,
            "https://codeload.github.com/a/b/legacy.tar.gz/abc?token=x"
        )
        .as_deref(),
        Some("https://codeload.github.com/a/b/legacy.tar.gz/abc?token=x")
    );
    assert_eq!(
        redirect_target("http://127.0.0.1:9/x/y", "/archive/1.tar.gz").as_deref(),
        Some("http://127.0.0.1:9/archive/1.tar.gz")
    );
    assert_eq!(redirect_target(from, "//evil.example/x"), None);
    assert_eq!(redirect_target(from, "relative/path"), None);
    assert_eq!(redirect_target(from, "file:///etc/passwd"), None);
    assert!(keeps_authorization(from, "https://API.github.com/other"));
    assert!(!keeps_authorization(from, "https://codeload.github.com/x"));
    assert!(!keeps_authorization(from, "http://api.github.com/x"));
}

#[test]
fn commits_are_read_from_the_api_json() {
    let c = commit();
    assert_eq!(c.sha, SHA);
    assert_eq!(c.message, "Fix the build\n\nlonger text");
    assert_eq!(c.author_date.as_deref(), Some("2026-11-20T10:00:00Z"));
    assert_eq!(c.committer_date.as_deref(), Some("2026-11-20T10:05:00Z"));
    assert_eq!(
        c.html_url.as_deref(),
        Some(format!("https://github.com/acme/app/commit/{SHA}").as_str())
    );
    for bad in [&b"not json"[..], b"{}", br#"{"sha": "xyz"}"#, br#"[1]"#] {
        let err = parse_commit(bad).unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
    }
    let long = serde_json::json!({"sha": SHA, "commit": {"message": "x".repeat(5000)}});
    let c = parse_commit(long.to_string().as_bytes()).unwrap();
    assert_eq!(c.message.chars().count(), MAX_MESSAGE_CHARS);
    assert!(c.message.ends_with("..."));
    assert_eq!(c.author_date, None);
}

#[test]
fn the_answer_must_be_the_pinned_commit() {
    let s = connection();
    assert!(check_pinned(&s, "4b2c2f0", &commit()).is_ok());
    let err = check_pinned(&s, "0000000", &commit()).unwrap_err();
    assert_eq!(err.code(), FailureType::RevisionUnavailable);
}

#[test]
fn connection_variables_are_codepipelines() {
    let vars = output_variables(&connection(), &commit());
    let want = BTreeMap::from([
        ("CommitId".to_string(), SHA.to_string()),
        ("BranchName".to_string(), "main".to_string()),
        ("AuthorDate".to_string(), "2026-11-20T10:00:00Z".to_string()),
        (
            "CommitMessage".to_string(),
            "Fix the build\n\nlonger text".to_string(),
        ),
        ("FullRepositoryName".to_string(), "acme/app".to_string()),
        ("ConnectionArn".to_string(), ARN.to_string()),
    ]);
    assert_eq!(vars, want);
}

#[test]
fn github_v1_variables_are_codepipelines() {
    let vars = output_variables(&github_v1(), &commit());
    let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "AuthorDate",
            "BranchName",
            "CommitId",
            "CommitMessage",
            "CommitUrl",
            "CommitterDate",
            "RepositoryName"
        ]
    );
    assert_eq!(vars["BranchName"], "release/1.x");
    assert_eq!(vars["RepositoryName"], "app");
    assert_eq!(vars["CommitterDate"], "2026-11-20T10:05:00Z");
    assert_eq!(
        vars["CommitUrl"],
        format!("https://api.github.com/repos/acme/app/commits/{SHA}")
    );
}

#[test]
fn revision_summaries_are_codepipelines() {
    let api = GitApi::new(DEFAULT_API_BASE_URL).unwrap();
    let summary = revision_summary(&connection(), &api, &commit());
    let json: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"ProviderType": "GitHub", "CommitMessage": "Fix the build\n\nlonger text"})
    );
    assert_eq!(
        revision_summary(&github_v1(), &api, &commit()),
        "Fix the build\n\nlonger text"
    );
}

#[test]
fn archive_paths_lose_the_top_level_folder() {
    let mut paths = ArchivePaths::default();
    let top = "acme-app-4b2c2f0";
    assert_eq!(paths.relative("pax_global_header").unwrap(), None);
    assert_eq!(paths.relative(&format!("{top}/")).unwrap(), None);
    assert_eq!(
        paths
            .relative(&format!("{top}/README.md"))
            .unwrap()
            .as_deref(),
        Some("README.md")
    );
    assert_eq!(
        paths.relative(&format!("{top}/src/")).unwrap().as_deref(),
        Some("src")
    );
    assert_eq!(
        paths
            .relative(&format!("./{top}/src/main.rs"))
            .unwrap()
            .as_deref(),
        Some("src/main.rs")
    );
    let err = paths.relative("other/README.md").unwrap_err();
    assert_eq!(err.code(), FailureType::JobFailed);
    assert!(err.to_string().contains("outside its folder"), "{err}");
}

#[test]
fn tokens_stay_out_of_debug_output() {
    let secret = ConnectionSecret::parse("s", " ghp_abc \n").unwrap();
    assert_eq!(secret.token.expose(), "ghp_abc");
    assert_eq!(secret.api_base_url, None);
    assert!(!format!("{secret:?}").contains("ghp_abc"));
    let secret = ConnectionSecret::parse(
        "s",
        r#"{"token": "ghp_x", "apiBaseUrl": "https://ghe.example.com/api/v3"}"#,
    )
    .unwrap();
    assert_eq!(secret.token.expose(), "ghp_x");
    assert_eq!(
        secret.api_base_url.as_deref(),
        Some("https://ghe.example.com/api/v3")
    );
    for (bad, want) in [
        ("", "is empty"),
        ("{not json", "not a JSON object"),
        (r#"{"apiBaseUrl": "x"}"#, "has no `token`"),
    ] {
        let err = ConnectionSecret::parse("pipewright/connections/x", bad).unwrap_err();
        assert!(err.to_string().contains(want), "{bad}: {err}");
        assert!(err.to_string().contains("pipewright/connections/x"));
    }
}

#[test]
fn a_connection_may_list_the_pipelines_that_may_use_it() {
    let open = ConnectionSecret::parse("s", r#"{"token": "t"}"#).unwrap();
    assert_eq!(open.pipelines, None);
    open.check_pipeline("s", "anyone").unwrap();
    let listed =
        ConnectionSecret::parse("s", r#"{"token": "t", "pipelines": ["web", "api"]}"#).unwrap();
    listed.check_pipeline("s", "web").unwrap();
    let err = listed.check_pipeline("s", "other").unwrap_err().to_string();
    assert!(
        err.contains("pipeline other may not use this connection")
            && err.contains("secret s")
            && err.contains("web, api"),
        "{err}"
    );
    for bad in [
        r#"{"token": "t", "pipelines": "web"}"#,
        r#"{"token": "t", "pipelines": [1]}"#,
    ] {
        let err = ConnectionSecret::parse("s", bad).unwrap_err().to_string();
        assert!(err.contains("not a list of pipeline names"), "{err}");
    }
}

#[test]
fn http_failures_say_what_and_why() {
    let s = connection();
    let api = GitApi::new("https://ghe.example.com/api/v3").unwrap();
    let table: &[(ApiCall, u16, bool, FailureType, &str)] = &[
        (
            ApiCall::BranchHead("main"),
            401,
            false,
            FailureType::PermissionError,
            "refused the token in secret pipewright/connections/",
        ),
        (
            ApiCall::Archive(SHA),
            403,
            true,
            FailureType::JobFailed,
            "rate limit",
        ),
        (
            ApiCall::Commit(SHA),
            429,
            false,
            FailureType::JobFailed,
            "rate limit",
        ),
        (
            ApiCall::Commit(SHA),
            403,
            false,
            FailureType::PermissionError,
            "may not read this repository",
        ),
        (
            ApiCall::BranchHead("main"),
            404,
            false,
            FailureType::ConfigurationError,
            "no repository acme/app with a branch `main`",
        ),
        (
            ApiCall::BranchHead("main"),
            422,
            false,
            FailureType::ConfigurationError,
            "no repository acme/app with a branch `main`",
        ),
        (
            ApiCall::Commit(SHA),
            422,
            false,
            FailureType::RevisionUnavailable,
            "is not in repository acme/app",
        ),
        (
            ApiCall::Archive(SHA),
            404,
            false,
            FailureType::RevisionUnavailable,
            "is not in repository acme/app",
        ),
        (
            ApiCall::BranchHead("main"),
            409,
            false,
            FailureType::ConfigurationError,
            "the repository is empty",
        ),
        (
            ApiCall::Archive(SHA),
            502,
            false,
            FailureType::JobFailed,
            "HTTP 502",
        ),
    ];
    for (call, status, limited, code, want) in table {
        let err = http_error(&s, &api, *call, *status, Some("Not Found"), *limited);
        assert_eq!(err.code(), *code, "{call} {status}");
        let text = err.to_string();
        assert!(
            text.starts_with("repository acme/app at https://ghe.example.com/api/v3: "),
            "{text}"
        );
        assert!(
            text.contains(&format!("HTTP {status}: Not Found")),
            "{text}"
        );
        assert!(text.contains(want), "{text}");
    }
    let v1 = http_error(
        &github_v1(),
        &api,
        ApiCall::BranchHead("m"),
        401,
        None,
        false,
    );
    assert!(
        v1.to_string().contains("the OAuthToken configuration"),
        "{v1}"
    );
    assert!(!v1.to_string().contains("ghp_secret"));
}

#[test]
fn api_messages_are_read_from_error_bodies() {
    assert_eq!(
        api_message(br#"{"message": "Bad credentials", "documentation_url": "x"}"#).as_deref(),
        Some("Bad credentials")
    );
    assert_eq!(api_message(b"<html>"), None);
    assert_eq!(api_message(br#"{"message": ""}"#), None);
}

#[test]
fn size_errors_name_the_repository() {
    let s = connection();
    let err = archive_too_large(&s, SHA, 100);
    assert_eq!(err.code(), FailureType::JobFailed);
    assert!(err.to_string().contains("repository acme/app"));
    assert!(err.to_string().contains("larger than 100 bytes"));
    assert!(content_too_large(&s, SHA, 7)
        .to_string()
        .contains("more than 7 bytes"));
}
