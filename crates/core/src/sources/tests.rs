use super::*;
use crate::execution::FailureType;
use crate::execution::SourceRevisionOverride;
use crate::git_source;

const SHA: &str = "3e0f3b5a1c9e1a7c5d6b2f4e8a9c0d1e2f3a4b5c";
const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd";

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn codecommit() -> CodeCommitSource {
    CodeCommitSource::from_configuration(&config(&[
        ("RepositoryName", "my-app"),
        ("BranchName", "main"),
    ]))
    .unwrap()
}

fn ecr() -> EcrSource {
    EcrSource::from_configuration(&config(&[("RepositoryName", "team/web-app")])).unwrap()
}

fn o(kind: &str, value: &str) -> SourceRevisionOverride {
    SourceRevisionOverride {
        action_name: "Source".into(),
        revision_type: kind.into(),
        revision_value: value.into(),
    }
}

#[test]
fn a_codecommit_configuration_is_read_and_checked() {
    let source = CodeCommitSource::from_configuration(&config(&[
        ("RepositoryName", " MyWebsite "),
        ("BranchName", "refs/heads/feature/x"),
        ("PollForSourceChanges", "false"),
        ("OutputArtifactFormat", "CODE_ZIP"),
    ]))
    .unwrap();
    assert_eq!(
        source,
        CodeCommitSource {
            repository: "MyWebsite".into(),
            branch: "feature/x".into()
        }
    );
    let err = |pairs: &[(&str, &str)]| {
        CodeCommitSource::from_configuration(&config(pairs))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[("BranchName", "main")]),
        "configuration RepositoryName is required"
    );
    assert_eq!(
        err(&[("RepositoryName", "r"), ("BranchName", " ")]),
        "configuration BranchName is required"
    );
    assert!(err(&[("RepositoryName", "a b"), ("BranchName", "main")])
        .starts_with("configuration RepositoryName: `a b` is not a CodeCommit repository name"));
    assert!(err(&[("RepositoryName", "r.git"), ("BranchName", "main")])
        .contains("not a CodeCommit repository name"));
    assert!(err(&[("RepositoryName", "r"), ("BranchName", "a..b")])
        .starts_with("configuration BranchName: `a..b` is not a branch name"));
    let clone_ref = CodeCommitSource::from_configuration(&config(&[
        ("RepositoryName", "r"),
        ("BranchName", "main"),
        ("OutputArtifactFormat", "CODEBUILD_CLONE_REF"),
    ]))
    .unwrap_err();
    assert_eq!(clone_ref.code(), FailureType::ConfigurationError);
    assert!(clone_ref
        .to_string()
        .starts_with("configuration OutputArtifactFormat: CODEBUILD_CLONE_REF"));
    assert!(err(&[
        ("RepositoryName", "r"),
        ("BranchName", "main"),
        ("OutputArtifactFormat", "TAR")
    ])
    .contains("`TAR` is neither CODE_ZIP nor CODEBUILD_CLONE_REF"));
}

#[test]
fn codecommit_pins_commit_ids_only() {
    assert_eq!(
        pinned_commit(&[o("COMMIT_ID", &SHA.to_uppercase())]).unwrap(),
        Some(SHA.to_string())
    );
    assert_eq!(pinned_commit(&[]).unwrap(), None);
    assert_eq!(
        pinned_commit(&[o("IMAGE_DIGEST", DIGEST)])
            .unwrap_err()
            .code(),
        FailureType::ConfigurationError
    );
}

#[test]
fn git_dates_become_iso_8601_in_utc() {
    assert_eq!(git_date("1484167798 -0800"), "2017-01-11T20:49:58Z");
    assert_eq!(git_date("1484167798 +0000"), "2017-01-11T20:49:58Z");
    assert_eq!(git_date("1484167798"), "2017-01-11T20:49:58Z");
    assert_eq!(git_date("2017-01-11T20:49:58Z"), "2017-01-11T20:49:58Z");
    assert_eq!(git_date("1484167798 PST"), "1484167798 PST");
    assert_eq!(git_date("soon"), "soon");
}

#[test]
fn a_codecommit_commit_has_its_variables_and_console_page() {
    let commit = codecommit_commit(
        "eu-west-1",
        "my-app",
        &SHA.to_uppercase(),
        Some("Fix the build\n"),
        Some("1484167798 -0800"),
        Some("1484167800 -0800"),
    );
    assert_eq!(commit.sha, SHA);
    assert_eq!(commit.message, "Fix the build");
    assert_eq!(
        commit.html_url.as_deref(),
        Some(format!("https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-app/commit/{SHA}?region=eu-west-1").as_str())
    );
    assert_eq!(
        codecommit_output_variables(&codecommit(), &commit),
        config(&[
            ("CommitId", SHA),
            ("CommitMessage", "Fix the build"),
            ("RepositoryName", "my-app"),
            ("BranchName", "main"),
            ("AuthorDate", "2017-01-11T20:49:58Z"),
            ("CommitterDate", "2017-01-11T20:50:00Z"),
        ])
    );
    let bare = codecommit_commit("cn-north-1", "r", SHA, None, None, None);
    assert_eq!(bare.message, "");
    assert!(bare
        .html_url
        .as_deref()
        .unwrap()
        .starts_with("https://console.amazonaws.cn/codesuite/"));
    let vars = codecommit_output_variables(&codecommit(), &bare);
    assert!(!vars.contains_key("AuthorDate") && !vars.contains_key("CommitterDate"));
    let long = "x".repeat(git_source::MAX_MESSAGE_CHARS + 10);
    let cut = codecommit_commit("us-east-1", "r", SHA, Some(&long), None, None);
    assert_eq!(cut.message.chars().count(), git_source::MAX_MESSAGE_CHARS);
    assert!(cut.message.ends_with("..."));
}

fn file(path: &str, blob: &str, mode: &str) -> ListedFile {
    ListedFile {
        absolute_path: path.into(),
        blob_id: blob.into(),
        mode: Some(mode.into()),
    }
}

#[test]
fn the_walk_lists_every_folder_once_and_plans_the_files() {
    let mut walk = TreeWalk::new("my-app", SHA);
    assert_eq!(walk.next_folder().as_deref(), Some("/"));
    assert!(walk.is_done());
    walk.add(FolderListing {
        sub_folders: vec!["src".into(), "bin".into()],
        files: vec![
            file("README.md", "b1", "NORMAL"),
            file("latest", "b9", "SYMLINK"),
        ],
        symbolic_links: 1,
        sub_modules: 1,
    })
    .unwrap();
    assert_eq!(walk.next_folder().as_deref(), Some("src"));
    walk.add(FolderListing {
        sub_folders: vec!["src/lib".into()],
        files: vec![file("src/main.rs", "b2", "NORMAL")],
        ..FolderListing::default()
    })
    .unwrap();
    assert_eq!(walk.next_folder().as_deref(), Some("bin"));
    walk.add(FolderListing {
        // A folder listed again (or a root-relative path) is not listed twice.
        sub_folders: vec!["/src/".into()],
        files: vec![ListedFile {
            absolute_path: "/bin/run.sh".into(),
            blob_id: "b3".into(),
            mode: Some("EXECUTABLE".into()),
        }],
        ..FolderListing::default()
    })
    .unwrap();
    assert_eq!(walk.next_folder().as_deref(), Some("src/lib"));
    walk.add(FolderListing::default()).unwrap();
    assert_eq!(walk.next_folder(), None);
    assert!(walk.is_done());
    let planned = walk.files();
    assert_eq!(
        planned,
        vec![
            PlannedFile {
                path: "README.md".into(),
                blob_id: "b1".into(),
                executable: false
            },
            PlannedFile {
                path: "bin/run.sh".into(),
                blob_id: "b3".into(),
                executable: true
            },
            PlannedFile {
                path: "src/main.rs".into(),
                blob_id: "b2".into(),
                executable: false
            },
        ]
    );
    // The symbolic link listed under symbolicLinks and the one with a SYMLINK mode.
    assert_eq!(walk.links_skipped(), 2);
    assert_eq!(walk.sub_modules_skipped(), 1);
}

#[test]
fn the_walk_refuses_unusable_listings() {
    let mut walk = TreeWalk::new("my-app", SHA);
    walk.next_folder();
    let err = walk
        .add(FolderListing {
            files: vec![file("/", "b1", "NORMAL")],
            ..FolderListing::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("listed a file of commit"), "{err}");
    let err = walk
        .add(FolderListing {
            files: vec![file("a.txt", "", "NORMAL")],
            ..FolderListing::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("without a blob id"), "{err}");

    let mut small = TreeWalk::with_max_folders("my-app", SHA, 2);
    small.next_folder();
    let err = small
        .add(FolderListing {
            sub_folders: vec!["a".into(), "b".into()],
            ..FolderListing::default()
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("CodeCommit repository my-app: commit {SHA} has more than 2 folders")
    );
}

#[test]
fn the_content_budget_stops_at_its_limit() {
    let mut budget = ContentBudget::new(10);
    budget.take(6, "r", SHA).unwrap();
    budget.take(4, "r", SHA).unwrap();
    assert_eq!(budget.used(), 10);
    let err = budget.take(1, "r", SHA).unwrap_err();
    assert_eq!(err.code(), FailureType::JobFailed);
    assert!(
        err.to_string().contains(&format!(
            "the files of commit {SHA} come to more than 10 bytes"
        )),
        "{err}"
    );
}

#[test]
fn codecommit_errors_name_the_repository_and_what_to_check() {
    let source = codecommit();
    let case = |call, code: Option<&str>, status| {
        codecommit_error(&source, call, code, status, "The thing does not exist.")
    };
    let repo = case(
        CodeCommitCall::BranchHead("main"),
        Some("RepositoryDoesNotExistException"),
        Some(400),
    );
    assert_eq!(repo.code(), FailureType::ConfigurationError);
    assert_eq!(
        repo.to_string(),
        "CodeCommit repository my-app: GetBranch (the head of branch `main`) failed: RepositoryDoesNotExistException: The thing does not exist.; there is no repository my-app in this account and region: check RepositoryName"
    );
    let branch = case(
        CodeCommitCall::BranchHead("main"),
        Some("BranchDoesNotExistException"),
        Some(400),
    );
    assert_eq!(branch.code(), FailureType::ConfigurationError);
    assert!(branch
        .to_string()
        .contains("has no branch `main`: check BranchName"));
    let commit = case(
        CodeCommitCall::Commit(SHA),
        Some("CommitIdDoesNotExistException"),
        Some(400),
    );
    assert_eq!(commit.code(), FailureType::RevisionUnavailable);
    assert!(commit
        .to_string()
        .ends_with(&format!("commit {SHA} is not in repository my-app")));
    let denied = case(
        CodeCommitCall::Blob("a.txt"),
        Some("AccessDeniedException"),
        Some(400),
    );
    assert_eq!(denied.code(), FailureType::PermissionError);
    let forbidden = case(CodeCommitCall::Folder("/"), None, Some(403));
    assert_eq!(forbidden.code(), FailureType::PermissionError);
    let other = codecommit_error(
        &source,
        CodeCommitCall::Blob("big.bin"),
        Some("FileTooLargeException"),
        Some(400),
        "",
    );
    assert_eq!(other.code(), FailureType::JobFailed);
    assert_eq!(
        other.to_string(),
        "CodeCommit repository my-app: GetBlob (file big.bin) failed: FileTooLargeException"
    );
    let transport = codecommit_error(
        &source,
        CodeCommitCall::Folder("src"),
        None,
        None,
        "dispatch failure: connection refused",
    );
    assert_eq!(transport.code(), FailureType::JobFailed);
    assert!(transport
        .to_string()
        .contains("GetFolder src failed: dispatch failure"));
}

#[test]
fn an_ecr_configuration_is_read_and_checked() {
    assert_eq!(
        ecr(),
        EcrSource {
            repository: "team/web-app".into(),
            tag: "latest".into()
        }
    );
    let tagged = EcrSource::from_configuration(&config(&[
        ("RepositoryName", "app"),
        ("ImageTag", "v1.2_rc-1"),
    ]))
    .unwrap();
    assert_eq!(tagged.tag, "v1.2_rc-1");
    let err = |pairs: &[(&str, &str)]| {
        EcrSource::from_configuration(&config(pairs))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(&[]), "configuration RepositoryName is required");
    for bad in ["App", "a", "a//b", "-app", "app-", "a..b", "a b"] {
        assert!(
            err(&[("RepositoryName", bad)]).contains("is not an ECR repository name"),
            "{bad}"
        );
    }
    for good in ["ab", "a.b_c-d", "team/web/app", "a1"] {
        assert!(is_ecr_repository_name(good), "{good}");
    }
    assert!(err(&[("RepositoryName", "app"), ("ImageTag", "v 1")])
        .starts_with("configuration ImageTag: `v 1` is not an image tag"));
}

#[test]
fn ecr_pins_image_digests_only() {
    assert_eq!(pinned_image_digest(&[]).unwrap(), None);
    assert_eq!(
        pinned_image_digest(&[o("IMAGE_DIGEST", &format!(" {} ", DIGEST.to_uppercase()))]).unwrap(),
        Some(DIGEST.to_string())
    );
    let err = pinned_image_digest(&[o("COMMIT_ID", SHA)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source revision override COMMIT_ID does not apply to an ECR source (use IMAGE_DIGEST)"
    );
    for bad in [
        "sha256:abc",
        "7f5b2640",
        "md5:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd",
    ] {
        assert!(
            pinned_image_digest(&[o("IMAGE_DIGEST", bad)])
                .unwrap_err()
                .to_string()
                .contains("is not an image digest"),
            "{bad}"
        );
    }
}

fn image() -> Image {
    Image {
        registry_id: "123456789012".into(),
        repository_name: "team/web-app".into(),
        digest: DIGEST.into(),
        tags: vec!["latest".into(), "v1".into()],
        size_in_bytes: Some(44_728_918),
        pushed_at: Some(1_548_101_040.0),
    }
}

#[test]
fn image_detail_json_is_codepipelines() {
    let text = image_detail_json(&image(), "us-west-2");
    let uri = format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/team/web-app@{DIGEST}");
    let expected = format!(
        r#"{{
  "ImageSizeInBytes": "44728918",
  "ImageDigest": "{DIGEST}",
  "Version": "1.0",
  "ImagePushedAt": "Mon Jan 21 20:04:00 UTC 2019",
  "RegistryId": "123456789012",
  "RepositoryName": "team/web-app",
  "ImageURI": "{uri}",
  "ImageTags": [
    "latest",
    "v1"
  ]
}}
"#
    );
    assert_eq!(text, expected);
    // Without size and push time (not every registry answers them), those keys are left out.
    let bare = Image {
        size_in_bytes: None,
        pushed_at: None,
        tags: vec![],
        ..image()
    };
    let json: serde_json::Value =
        serde_json::from_str(&image_detail_json(&bare, "cn-north-1")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "ImageDigest": DIGEST,
            "Version": "1.0",
            "RegistryId": "123456789012",
            "RepositoryName": "team/web-app",
            "ImageURI": format!("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/web-app@{DIGEST}"),
            "ImageTags": []
        })
    );
    assert_eq!(
        pushed_at_text(1_704_070_861.9),
        "Mon Jan 01 01:01:01 UTC 2024"
    );
}

#[test]
fn ecr_variables_and_console_page() {
    let source = EcrSource {
        tag: "v1".into(),
        ..ecr()
    };
    assert_eq!(
        ecr_output_variables(&source, &image(), "us-east-1"),
        config(&[
            ("RegistryId", "123456789012"),
            ("RepositoryName", "team/web-app"),
            ("ImageTag", "v1"),
            ("ImageDigest", DIGEST),
            (
                "ImageURI",
                &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web-app@{DIGEST}")
            ),
        ])
    );
    assert_eq!(
        image_console_url(&image(), "us-east-1"),
        format!("https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team/web-app/_/image/{DIGEST}/details?region=us-east-1")
    );
}

#[test]
fn ecr_errors_name_the_repository_and_what_to_check() {
    let source = ecr();
    let repo = ecr_error(
        &source,
        None,
        Some("RepositoryNotFoundException"),
        Some(400),
        "The repository with name 'team/web-app' does not exist",
    );
    assert_eq!(repo.code(), FailureType::ConfigurationError);
    assert!(repo.to_string().starts_with(
        "ECR repository team/web-app: DescribeImages (the image tagged `latest`) failed: RepositoryNotFoundException: "
    ));
    assert!(repo.to_string().ends_with("check RepositoryName"));
    let tag = ecr_error(&source, None, Some("ImageNotFoundException"), Some(400), "");
    assert_eq!(tag.code(), FailureType::ConfigurationError);
    assert!(tag.to_string().ends_with(
        "ECR repository team/web-app has no image tagged `latest`: push one, or check ImageTag"
    ));
    let digest = ecr_error(
        &source,
        Some(DIGEST),
        Some("ImageNotFoundException"),
        Some(400),
        "",
    );
    assert_eq!(digest.code(), FailureType::RevisionUnavailable);
    assert!(digest.to_string().ends_with(&format!(
        "image {DIGEST} is not in ECR repository team/web-app"
    )));
    assert_eq!(
        ecr_error(
            &source,
            None,
            Some("AccessDeniedException"),
            Some(400),
            "no"
        )
        .code(),
        FailureType::PermissionError
    );
    assert_eq!(
        ecr_error(&source, None, None, Some(503), "Service Unavailable").code(),
        FailureType::JobFailed
    );
    assert_eq!(
        image_not_found(&source, None, None).to_string(),
        "ECR repository team/web-app has no image tagged `latest`: push one, or check ImageTag"
    );
}
