//! The artifact store: artifacts are zip files in the versioned artifact bucket
//! (`<pipeline>/<artifact>/<id>.zip`, DESIGN.md), written once and read by S3 version id.
//!
//! Nothing here holds a whole artifact in memory:
//! - [`S3Artifacts::download`] streams an object version to a file;
//! - [`S3Artifacts::upload_dir`] zips a directory on a blocking thread ([`zip_to_writer`]) into
//!   8 MiB parts handed through a bounded channel to S3 multipart uploads (at most a few parts
//!   exist at once, whatever the artifact's size);
//! - [`extract`] unpacks an archive file, refusing entries that would land outside the
//!   destination.

mod archive;
mod patterns;

use std::path::Path;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use pipewright_core::execution::ArtifactLocation;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use archive::{
    extract, list_files, safe_relative, zip_to_writer, ExtractStats, ZipStats, DEFLATE_LEVEL,
};
pub use patterns::FilePatterns;

/// The size of every multipart-upload part but the last (S3 wants at least 5 MiB; 10,000 parts
/// of 8 MiB allow artifacts up to 80 GiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: i32 = 10_000;

/// Parts waiting in the channel between the zipper and the uploader.
const QUEUED_PARTS: usize = 1;

/// Parts being uploaded at once. With the part the zipper fills and the queued one, at most
/// `PARTS_IN_FLIGHT + QUEUED_PARTS + 1` parts (32 MiB) are in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// The content type of artifact objects.
const ZIP_CONTENT_TYPE: &str = "application/zip";

/// Why an artifact could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No file matched the output artifact's `files`.
    #[error("no file in {dir} matches {patterns}")]
    NoMatch {
        /// The directory searched.
        dir: String,
        /// The patterns, as given.
        patterns: String,
    },
    /// A `files` pattern is not valid.
    #[error("file pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An archive entry (or a file) has a path that cannot be used safely.
    #[error("unsafe path {path:?} in the artifact: {reason}; nothing outside the destination is written")]
    UnsafePath {
        /// The entry's name.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Local file I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An archive holds more than an artifact may (entries, or bytes once extracted).
    #[error("{0}")]
    TooBig(String),
    /// The zip format could not be read or written.
    #[error("{what}: {source}")]
    Zip {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: zip::result::ZipError,
    },
    /// An S3 call failed.
    #[error(transparent)]
    S3(Box<S3Failure>),
    /// The artifact needs more than S3's 10,000 parts.
    #[error("the artifact for s3://{bucket}/{key} is larger than {max} bytes, the most one upload of {PART_SIZE}-byte parts can hold")]
    TooLarge {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The limit.
        max: u64,
    },
    /// A blocking task panicked or was cancelled.
    #[error("{0}")]
    Task(String),
}

/// A failed S3 call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("S3 {operation} s3://{bucket}/{key}: {message}")]
pub struct S3Failure {
    /// The operation (`GetObject`, `UploadPart`, ...).
    pub operation: &'static str,
    /// Bucket.
    pub bucket: String,
    /// Key (or prefix).
    pub key: String,
    /// S3's error code (`AccessDenied`, `NoSuchKey`, ...), when it sent one.
    pub code: Option<String>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// What S3 (or the connection) said.
    pub message: String,
}

impl ArtifactError {
    /// True when S3 refused access (`AccessDenied`, HTTP 403).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Self::S3(f)
            if matches!(f.code.as_deref(), Some("AccessDenied" | "Forbidden")) || f.status == Some(403))
    }

    /// True when the bucket, key or version does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::S3(f)
            if matches!(f.code.as_deref(), Some("NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound"))
                || f.status == Some(404))
    }

    /// The S3 error code, when S3 sent one.
    pub fn s3_code(&self) -> Option<&str> {
        match self {
            Self::S3(f) => f.code.as_deref(),
            _ => None,
        }
    }
}

/// What [`S3Artifacts::copy_in`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedObject {
    /// The copy: the artifact, with its new version id.
    pub location: ArtifactLocation,
    /// The source object's version id (`None` when its bucket is not versioned).
    pub source_version_id: Option<String>,
    /// The source object's ETag, without quotes.
    pub source_etag: Option<String>,
    /// The source object's user metadata (keys lower case, without `x-amz-meta-`).
    pub source_metadata: std::collections::HashMap<String, String>,
}

/// Options of [`S3Artifacts::put_file`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// A canned ACL (`private`, `public-read`, ...).
    pub canned_acl: Option<String>,
    /// A KMS key for SSE-KMS.
    pub kms_key_id: Option<String>,
}

/// Artifacts in S3.
#[derive(Debug, Clone)]
pub struct S3Artifacts {
    client: Client,
}

impl S3Artifacts {
    /// The store over `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A presigned GET of the object at `location` (its version when given), valid for
    /// `expires_in`: what the Commands runner reads an input artifact with.
    pub async fn presign_get(
        &self,
        location: &ArtifactLocation,
        expires_in: std::time::Duration,
    ) -> Result<String, ArtifactError> {
        let config = presigning(expires_in, &location.bucket, &location.key)?;
        let request = self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .set_version_id(location.version_id.clone())
            .presigned(config)
            .await
            .map_err(|e| s3_error("GetObject", &location.bucket, &location.key, e))?;
        Ok(request.uri().to_string())
    }

    /// A presigned PUT of `bucket`/`key`, valid for `expires_in`: what the Commands runner
    /// writes an output artifact or its log with.
    pub async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, ArtifactError> {
        let config = presigning(expires_in, bucket, key)?;
        let request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| s3_error("PutObject", bucket, key, e))?;
        Ok(request.uri().to_string())
    }

    /// Stream the object at `location` (its `version_id` when given) to `dest_file`; returns the
    /// number of bytes written.
    pub async fn download(
        &self,
        location: &ArtifactLocation,
        dest_file: &Path,
    ) -> Result<u64, ArtifactError> {
        let object = self
            .client
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .set_version_id(location.version_id.clone())
            .send()
            .await
            .map_err(|e| s3_error("GetObject", &location.bucket, &location.key, e))?;
        let mut body = object.body;
        let mut file = tokio::fs::File::create(dest_file)
            .await
            .map_err(|e| io_error(format!("creating {}", dest_file.display()), e))?;
        let mut written = 0u64;
        loop {
            let chunk = body.try_next().await.map_err(|e| {
                ArtifactError::S3(Box::new(S3Failure {
                    operation: "GetObject",
                    bucket: location.bucket.clone(),
                    key: location.key.clone(),
                    code: None,
                    status: None,
                    message: format!("reading the body: {e}"),
                }))
            })?;
            let Some(chunk) = chunk else { break };
            file.write_all(&chunk)
                .await
                .map_err(|e| io_error(format!("writing {}", dest_file.display()), e))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| io_error(format!("writing {}", dest_file.display()), e))?;
        Ok(written)
    }

    /// Download the artifact at `location` to `scratch_file`, extract it into `dest_dir`, and
    /// remove the download.
    pub async fn download_and_extract(
        &self,
        location: &ArtifactLocation,
        scratch_file: &Path,
        dest_dir: &Path,
    ) -> Result<ExtractStats, ArtifactError> {
        self.download(location, scratch_file).await?;
        let (zip_file, dest) = (scratch_file.to_path_buf(), dest_dir.to_path_buf());
        let stats = blocking(move || extract(&zip_file, &dest)).await;
        let _ = tokio::fs::remove_file(scratch_file).await;
        stats
    }

    /// Zip the files of `src_dir` matching `patterns` (CodePipeline's `files`: relative paths,
    /// `**` for any depth; empty means everything) and write the archive to `bucket`/`key`.
    /// Returns the location with the new object's version id.
    ///
    /// The archive is streamed: parts of [`PART_SIZE`] go to a multipart upload as the zipper
    /// produces them, and an archive smaller than one part is written with one PutObject. A
    /// failed multipart upload is aborted.
    pub async fn upload_dir(
        &self,
        src_dir: &Path,
        patterns: &[String],
        bucket: &str,
        key: &str,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUED_PARTS);
        let (src, patterns) = (src_dir.to_path_buf(), patterns.to_vec());
        let zipper = tokio::task::spawn_blocking(move || {
            let mut sink = PartSink {
                part: Vec::with_capacity(PART_SIZE),
                tx,
            };
            zip_to_writer(&src, &patterns, &mut sink)?;
            sink.finish()
        });

        let first = rx.recv().await;
        let second = if first.is_some() {
            rx.recv().await
        } else {
            None
        };
        let (first, second) = match (first, second) {
            (Some(first), Some(second)) => (first, second),
            (first, _) => {
                // The zipper is done (or failed) within one part.
                drop(rx);
                join(zipper).await?;
                let version_id = self
                    .put_small(bucket, key, first.unwrap_or_default())
                    .await?;
                return Ok(ArtifactLocation {
                    bucket: bucket.into(),
                    key: key.into(),
                    version_id,
                });
            }
        };

        let upload_id = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .content_type(ZIP_CONTENT_TYPE)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e: SdkError<CreateMultipartUploadError>| {
                s3_error("CreateMultipartUpload", bucket, key, e)
            })?
            .upload_id
            .ok_or_else(|| {
                ArtifactError::S3(Box::new(S3Failure {
                    operation: "CreateMultipartUpload",
                    bucket: bucket.into(),
                    key: key.into(),
                    code: None,
                    status: None,
                    message: "the response has no UploadId".into(),
                }))
            })?;
        let uploaded = self
            .upload_parts(bucket, key, &upload_id, [first, second], rx)
            .await;
        // Whatever happened, the zipper ends now: the channel's receiver is gone.
        let zipped = join(zipper).await;
        let result = match (uploaded, zipped) {
            (Ok(parts), Ok(())) => self.complete(bucket, key, &upload_id, parts).await,
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
        match result {
            Ok(version_id) => Ok(ArtifactLocation {
                bucket: bucket.into(),
                key: key.into(),
                version_id,
            }),
            Err(e) => {
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(abort) = aborted {
                    tracing::warn!(bucket, key, error = %s3_error("AbortMultipartUpload", bucket, key, abort), "abandoned multipart upload");
                }
                Err(e)
            }
        }
    }

    /// The object another service wrote at `bucket`/`key` (a CodeBuild build's artifact), with
    /// its current version id.
    pub async fn locate(&self, bucket: &str, key: &str) -> Result<ArtifactLocation, ArtifactError> {
        let head = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", bucket, key, e))?;
        Ok(ArtifactLocation {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: head.version_id().map(str::to_string),
        })
    }

    /// Copy the source object `source_bucket`/`source_key` (its version `source_version` when
    /// given, else the current one) to `dest`; returns the copy with its new version id plus the
    /// source's version id, ETag and metadata.
    pub async fn copy_in(
        &self,
        source_bucket: &str,
        source_key: &str,
        source_version: Option<&str>,
        dest: &ArtifactLocation,
    ) -> Result<CopiedObject, ArtifactError> {
        let head = self
            .client
            .head_object()
            .bucket(source_bucket)
            .key(source_key)
            .set_version_id(source_version.map(str::to_string))
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", source_bucket, source_key, e))?;
        // Copy exactly the version just read, so the ETag and metadata describe the copy.
        let version = head.version_id().or(source_version).map(str::to_string);
        let copied = self
            .client
            .copy_object()
            .bucket(&dest.bucket)
            .key(&dest.key)
            .copy_source(copy_source(source_bucket, source_key, version.as_deref()))
            .send()
            .await
            .map_err(|e| s3_error("CopyObject", &dest.bucket, &dest.key, e))?;
        Ok(CopiedObject {
            location: ArtifactLocation {
                bucket: dest.bucket.clone(),
                key: dest.key.clone(),
                version_id: copied.version_id().map(str::to_string),
            },
            source_version_id: version,
            source_etag: head.e_tag().map(|t| t.trim_matches('"').to_string()),
            source_metadata: head.metadata().cloned().unwrap_or_default(),
        })
    }

    /// Copy the artifact at `source` (by version) to `bucket`/`key` (S3 deploy without
    /// extraction); returns the new object's version id.
    pub async fn copy_out(
        &self,
        source: &ArtifactLocation,
        bucket: &str,
        key: &str,
        options: &PutOptions,
    ) -> Result<Option<String>, ArtifactError> {
        let mut request = self
            .client
            .copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(copy_source(
                &source.bucket,
                &source.key,
                source.version_id.as_deref(),
            ));
        if let Some(t) = &options.content_type {
            request = request
                .content_type(t)
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace);
        }
        if let Some(c) = &options.cache_control {
            request = request
                .cache_control(c)
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace);
        }
        if let Some(acl) = &options.canned_acl {
            request = request.acl(acl.as_str().into());
        }
        if let Some(kms) = &options.kms_key_id {
            request = request
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        let copied = request
            .send()
            .await
            .map_err(|e| s3_error("CopyObject", bucket, key, e))?;
        Ok(copied.version_id().map(str::to_string))
    }

    /// Upload one local file (streamed from disk) to `bucket`/`key`; returns its version id.
    pub async fn put_file(
        &self,
        file: &Path,
        bucket: &str,
        key: &str,
        options: &PutOptions,
    ) -> Result<Option<String>, ArtifactError> {
        let body = ByteStream::from_path(file).await.map_err(|e| {
            io_error(
                format!("reading {}", file.display()),
                std::io::Error::other(e),
            )
        })?;
        let mut request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .set_content_type(options.content_type.clone())
            .set_cache_control(options.cache_control.clone());
        if let Some(acl) = &options.canned_acl {
            request = request.acl(acl.as_str().into());
        }
        if let Some(kms) = &options.kms_key_id {
            request = request
                .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                .ssekms_key_id(kms);
        }
        let put = request
            .send()
            .await
            .map_err(|e| s3_error("PutObject", bucket, key, e))?;
        Ok(put.version_id().map(str::to_string))
    }

    async fn put_small(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Option<String>, ArtifactError> {
        let put = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(ZIP_CONTENT_TYPE)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_error("PutObject", bucket, key, e))?;
        Ok(put.version_id().map(str::to_string))
    }

    /// Upload `first` parts then whatever arrives on `rx`, at most [`PARTS_IN_FLIGHT`] at once.
    async fn upload_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        first: [Vec<u8>; 2],
        mut rx: mpsc::Receiver<Vec<u8>>,
    ) -> Result<Vec<CompletedPart>, ArtifactError> {
        let mut in_flight: JoinSet<Result<CompletedPart, ArtifactError>> = JoinSet::new();
        let mut done = Vec::new();
        let mut number = 0i32;
        let mut pending = first.into_iter();
        loop {
            let part = match pending.next() {
                Some(part) => part,
                None => match rx.recv().await {
                    Some(part) => part,
                    None => break,
                },
            };
            while in_flight.len() >= PARTS_IN_FLIGHT {
                done.push(joined(in_flight.join_next().await)?);
            }
            number += 1;
            if number > MAX_PARTS {
                return Err(ArtifactError::TooLarge {
                    bucket: bucket.into(),
                    key: key.into(),
                    max: PART_SIZE as u64 * MAX_PARTS as u64,
                });
            }
            let request = self
                .client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(part));
            let (bucket, key) = (bucket.to_string(), key.to_string());
            in_flight.spawn(async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| s3_error("UploadPart", &bucket, &key, e))?;
                Ok(CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_string))
                    .build())
            });
        }
        while let Some(result) = in_flight.join_next().await {
            done.push(joined(Some(result))?);
        }
        done.sort_by_key(|p| p.part_number());
        Ok(done)
    }

    async fn complete(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<Option<String>, ArtifactError> {
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", bucket, key, e))?;
        Ok(completed.version_id().map(str::to_string))
    }
}

/// The `Write` end of the zipper: fills a part and hands each full one to the uploader through
/// the bounded channel (waiting while the channel is full, which bounds memory).
struct PartSink {
    part: Vec<u8>,
    tx: mpsc::Sender<Vec<u8>>,
}

impl PartSink {
    fn send(&mut self) -> std::io::Result<()> {
        let part = std::mem::replace(&mut self.part, Vec::with_capacity(PART_SIZE));
        self.tx
            .blocking_send(part)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Send what is left (the last, short part).
    fn finish(mut self) -> Result<(), ArtifactError> {
        if !self.part.is_empty() {
            self.send()
                .map_err(|e| io_error("handing the last part to the upload".into(), e))?;
        }
        Ok(())
    }
}

impl std::io::Write for PartSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(PART_SIZE - self.part.len());
        self.part.extend_from_slice(&buf[..n]);
        if self.part.len() == PART_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run blocking file work (zipping, extracting) off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    join(tokio::task::spawn_blocking(work)).await
}

async fn join<T>(
    handle: tokio::task::JoinHandle<Result<T, ArtifactError>>,
) -> Result<T, ArtifactError> {
    handle
        .await
        .map_err(|e| ArtifactError::Task(format!("an artifact task failed: {e}")))?
}

fn joined(
    result: Option<Result<Result<CompletedPart, ArtifactError>, tokio::task::JoinError>>,
) -> Result<CompletedPart, ArtifactError> {
    match result {
        Some(Ok(part)) => part,
        Some(Err(e)) => Err(ArtifactError::Task(format!("an upload task failed: {e}"))),
        None => Err(ArtifactError::Task("no upload task to wait for".into())),
    }
}

/// `x-amz-copy-source`: `bucket/key[?versionId=...]`, the key URL-encoded (`/` kept).
pub fn copy_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    let mut out = format!("{bucket}/{}", url_encode(key, true));
    if let Some(v) = version {
        out.push_str("?versionId=");
        out.push_str(&url_encode(v, false));
    }
    out
}

/// RFC 3986's unreserved characters stay as they are; everything else is percent-encoded.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// [`UNRESERVED`] and `/` (an S3 key's folders).
const UNRESERVED_AND_SLASH: &percent_encoding::AsciiSet = &UNRESERVED.remove(b'/');

fn url_encode(text: &str, keep_slash: bool) -> String {
    let set = if keep_slash {
        UNRESERVED_AND_SLASH
    } else {
        UNRESERVED
    };
    percent_encoding::utf8_percent_encode(text, set).to_string()
}

fn s3_error<E>(operation: &'static str, bucket: &str, key: &str, err: SdkError<E>) -> ArtifactError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let message = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => match status {
            Some(status) => format!(
                "HTTP {status}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            ),
            None => aws_sdk_s3::error::DisplayErrorContext(&err).to_string(),
        },
    };
    ArtifactError::S3(Box::new(S3Failure {
        operation,
        bucket: bucket.into(),
        key: key.into(),
        code,
        status,
        message,
    }))
}

fn io_error(what: String, source: std::io::Error) -> ArtifactError {
    ArtifactError::Io { what, source }
}

/// Presigning for `expires_in` (S3 allows one second to seven days).
fn presigning(
    expires_in: std::time::Duration,
    bucket: &str,
    key: &str,
) -> Result<aws_sdk_s3::presigning::PresigningConfig, ArtifactError> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in).map_err(|e| {
        ArtifactError::S3(Box::new(S3Failure {
            operation: "presigning",
            bucket: bucket.into(),
            key: key.into(),
            code: None,
            status: None,
            message: e.to_string(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn copy_source_encodes_the_key_and_version() {
        assert_eq!(
            copy_source("b", "dir/a b+c.zip", None),
            "b/dir/a%20b%2Bc.zip"
        );
        assert_eq!(
            copy_source("b", "k", Some("v/1=")),
            "b/k?versionId=v%2F1%3D"
        );
    }

    #[test]
    fn part_sink_hands_over_full_parts_then_the_rest() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut sink = PartSink {
            part: Vec::new(),
            tx,
        };
        let data = vec![7u8; PART_SIZE * 2 + 10];
        sink.write_all(&data).unwrap();
        sink.finish().unwrap();
        let sizes: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|p| p.len())
            .collect();
        assert_eq!(sizes, [PART_SIZE, PART_SIZE, 10]);
    }

    #[test]
    fn a_closed_upload_stops_the_sink() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut sink = PartSink {
            part: Vec::new(),
            tx,
        };
        let err = sink.write_all(&vec![0u8; PART_SIZE]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn error_kinds() {
        let s3 = |code: Option<&str>, status| {
            ArtifactError::S3(Box::new(S3Failure {
                operation: "GetObject",
                bucket: "b".into(),
                key: "k".into(),
                code: code.map(str::to_string),
                status,
                message: "m".into(),
            }))
        };
        assert!(s3(Some("AccessDenied"), Some(403)).is_access_denied());
        assert!(s3(None, Some(403)).is_access_denied());
        assert!(s3(Some("NoSuchKey"), Some(404)).is_not_found());
        assert!(s3(None, Some(404)).is_not_found());
        assert!(!s3(Some("SlowDown"), Some(503)).is_not_found());
        assert_eq!(
            s3(Some("SlowDown"), Some(503)).to_string(),
            "S3 GetObject s3://b/k: m"
        );
    }
}
