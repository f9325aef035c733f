//! `Source/AWS/ECR`: the action's configuration, the pinned image digest, the image's URIs
//! and `imageDetail.json`, the output variables, and what an ECR error answer means.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_with::skip_serializing_none;

use super::{configuration_value, console_host, required, SourceError};
use crate::execution::SourceRevisionOverride;
use crate::git_source;

/// The tag an ECR source follows when the configuration names none.
pub const DEFAULT_IMAGE_TAG: &str = "latest";

/// The file an ECR source's artifact holds.
pub const IMAGE_DETAIL_FILE: &str = "imageDetail.json";

/// A `Source/AWS/ECR` action, read from its (resolved) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrSource {
    /// `RepositoryName`.
    pub repository: String,
    /// `ImageTag` (default `latest`).
    pub tag: String,
}

impl EcrSource {
    /// Read `RepositoryName` and `ImageTag`; errors name the key.
    pub fn from_configuration(
        configuration: &BTreeMap<String, String>,
    ) -> Result<Self, SourceError> {
        let get = |key: &str| configuration_value(configuration, key);
        let repository = get("RepositoryName").ok_or_else(|| required("RepositoryName"))?;
        if !is_ecr_repository_name(repository) {
            return Err(SourceError::Configuration(format!(
                "configuration RepositoryName: `{repository}` is not an ECR repository name (2 to 256 lower-case letters, digits, `.`, `_`, `-`, in `/`-separated parts)"
            )));
        }
        let tag = get("ImageTag").unwrap_or(DEFAULT_IMAGE_TAG);
        let tag_ok = tag.len() <= 300
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !tag_ok {
            return Err(SourceError::Configuration(format!(
                "configuration ImageTag: `{tag}` is not an image tag (at most 300 letters, digits, `-`, `_`, `.`)"
            )));
        }
        Ok(Self {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// ECR's repository names: 2 to 256 characters, `/`-separated parts of lower-case letters and
/// digits joined by single `.`, `_` or `-`.
pub fn is_ecr_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            let bytes = part.as_bytes();
            !part.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && part.chars().all(|c| {
                    c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, '.' | '_' | '-')
                })
                && !bytes
                    .windows(2)
                    .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
        })
}

/// The image the execution pins for this action: the value of its `IMAGE_DIGEST` source
/// revision override (`sha256:` and 64 hexadecimal digits), if any. `overrides` are the
/// action's own; any other revision type is refused.
pub fn pinned_image_digest(
    overrides: &[SourceRevisionOverride],
) -> Result<Option<String>, SourceError> {
    let mut pinned = None;
    for o in overrides {
        if o.revision_type != "IMAGE_DIGEST" {
            return Err(SourceError::Configuration(format!(
                "source revision override {} does not apply to an ECR source (use IMAGE_DIGEST)",
                o.revision_type
            )));
        }
        let digest = o.revision_value.trim().to_ascii_lowercase();
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(SourceError::Configuration(format!(
                "source revision override IMAGE_DIGEST: `{}` is not an image digest (sha256: and 64 hexadecimal digits)",
                o.revision_value.trim()
            )));
        }
        pinned = Some(digest);
    }
    Ok(pinned)
}

/// An image, as `DescribeImages` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `registryId`: the account of the registry.
    pub registry_id: String,
    /// `repositoryName`.
    pub repository_name: String,
    /// `imageDigest`.
    pub digest: String,
    /// `imageTags`.
    pub tags: Vec<String>,
    /// `imageSizeInBytes`.
    pub size_in_bytes: Option<i64>,
    /// `imagePushedAt`, seconds since the epoch.
    pub pushed_at: Option<f64>,
}

/// The registry's host for `registry_id` in `region`
/// (`<account>.dkr.ecr.<region>.amazonaws.com`, `.amazonaws.com.cn` in China).
pub fn registry_host(registry_id: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{registry_id}.dkr.ecr.{region}.{domain}")
}

/// The image's URI by digest: `<registry host>/<repository>@<digest>`.
pub fn image_uri(image: &Image, region: &str) -> String {
    format!(
        "{}/{}@{}",
        registry_host(&image.registry_id, region),
        image.repository_name,
        image.digest
    )
}

/// The image's page in the ECR console.
pub fn image_console_url(image: &Image, region: &str) -> String {
    format!(
        "https://{}/ecr/repositories/private/{}/{}/_/image/{}/details?region={region}",
        console_host(region),
        image.registry_id,
        image.repository_name,
        image.digest
    )
}

/// When the image was pushed, as CodePipeline writes it in `imageDetail.json`:
/// `Mon Jan 21 20:04:00 UTC 2019`.
pub fn pushed_at_text(epoch_seconds: f64) -> String {
    let seconds = epoch_seconds.floor() as i64;
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(t) => t.format("%a %b %d %H:%M:%S UTC %Y").to_string(),
        None => crate::events::format_time(epoch_seconds),
    }
}

/// `imageDetail.json` as CodePipeline's ECR source action writes it.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImageDetailFile<'a> {
    image_size_in_bytes: Option<String>,
    image_digest: &'a str,
    version: &'static str,
    image_pushed_at: Option<String>,
    registry_id: &'a str,
    repository_name: &'a str,
    #[serde(rename = "ImageURI")]
    image_uri: String,
    image_tags: &'a [String],
}

/// The `imageDetail.json` document of `image` in `region`, in the layout CodePipeline
/// documents (`ImageSizeInBytes` as a string, `Version` `1.0`, `ImagePushedAt` as
/// [`pushed_at_text`], `ImageURI` by digest).
pub fn image_detail_json(image: &Image, region: &str) -> String {
    let file = ImageDetailFile {
        image_size_in_bytes: image.size_in_bytes.map(|s| s.to_string()),
        image_digest: &image.digest,
        version: "1.0",
        image_pushed_at: image.pushed_at.map(pushed_at_text),
        registry_id: &image.registry_id,
        repository_name: &image.repository_name,
        image_uri: image_uri(image, region),
        image_tags: &image.tags,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("plain data serializes");
    text.push('\n');
    text
}

/// The output variables, as CodePipeline names them for ECR: `RegistryId`, `RepositoryName`,
/// `ImageTag` (the tag followed), `ImageDigest`, `ImageURI`.
pub fn ecr_output_variables(
    source: &EcrSource,
    image: &Image,
    region: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("RegistryId".to_string(), image.registry_id.clone()),
        ("RepositoryName".to_string(), image.repository_name.clone()),
        ("ImageTag".to_string(), source.tag.clone()),
        ("ImageDigest".to_string(), image.digest.clone()),
        ("ImageURI".to_string(), image_uri(image, region)),
    ])
}

/// What an ECR `DescribeImages` error answer means; `pinned` is the digest asked for, if any.
pub fn ecr_error(
    source: &EcrSource,
    pinned: Option<&str>,
    code: Option<&str>,
    status: Option<u16>,
    message: &str,
) -> SourceError {
    let repo = &source.repository;
    let asked = match pinned {
        Some(digest) => format!("image {digest}"),
        None => format!("the image tagged `{}`", source.tag),
    };
    let said = match code {
        Some(code) if !message.is_empty() => format!("{code}: {}", git_source::cut(message, 300)),
        Some(code) => code.to_string(),
        None => git_source::cut(message, 300),
    };
    let head = format!("ECR repository {repo}: DescribeImages ({asked}) failed: {said}");
    match code.unwrap_or_default() {
        "RepositoryNotFoundException" => SourceError::Configuration(format!(
            "{head}; there is no repository {repo} in this account's registry in this region: check RepositoryName"
        )),
        "ImageNotFoundException" => image_not_found(source, pinned, Some(&head)),
        "AccessDeniedException" => SourceError::Permission(format!(
            "{head}; the action function may not describe images of repository {repo} (ecr:DescribeImages)"
        )),
        _ if status == Some(403) => SourceError::Permission(format!(
            "{head}; the action function may not describe images of repository {repo}"
        )),
        _ => SourceError::Failed(head),
    }
}

/// No image answers the action: a missing tag is the configuration's fault, a missing pinned
/// digest the revision's. `head` is what the failed call said, if one failed.
pub fn image_not_found(
    source: &EcrSource,
    pinned: Option<&str>,
    head: Option<&str>,
) -> SourceError {
    let head = head.map(|h| format!("{h}; ")).unwrap_or_default();
    match pinned {
        Some(digest) => SourceError::RevisionUnavailable(format!(
            "{head}image {digest} is not in ECR repository {}",
            source.repository
        )),
        None => SourceError::Configuration(format!(
            "{head}ECR repository {} has no image tagged `{}`: push one, or check ImageTag",
            source.repository, source.tag
        )),
    }
}
