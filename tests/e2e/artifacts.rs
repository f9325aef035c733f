//! The artifact store against the local stack's artifact bucket: a directory zipped and streamed
//! up (multipart and single PutObject), read back by S3 version, extracted, compared; versions
//! of one key stay readable; copies keep track of their source's version.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pipewright_aws::artifacts::{ArtifactError, S3Artifacts, PART_SIZE};
use pipewright_aws::config::{self, Target};
use pipewright_core::execution::{artifact_key, ArtifactLocation};
use pipewright_e2e::{stack, unique};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("pipewright-artifacts-test"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(root: &Path, name: &str, content: &[u8], mode: u32) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file under `root`: relative name → (content, mode).
fn tree(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    fn visit(dir: &Path, prefix: &str, out: &mut BTreeMap<String, (Vec<u8>, u32)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_str().unwrap());
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                visit(&entry.path(), &format!("{name}/"), out);
            } else {
                out.insert(
                    name,
                    (
                        std::fs::read(entry.path()).unwrap(),
                        meta.permissions().mode() & 0o777,
                    ),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, "", &mut out);
    out
}

fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn store() -> (S3Artifacts, String) {
    let stack = stack();
    let sdk = stack.sdk().await;
    let client = config::s3_client(&sdk, &Target::local(stack.endpoint.clone()));
    (
        S3Artifacts::new(client),
        stack.output("ArtifactBucketName").to_string(),
    )
}

/// Download `location` by its version and extract it into a new directory.
async fn fetch(store: &S3Artifacts, location: &ArtifactLocation) -> TempDir {
    let scratch = TempDir::new();
    let out = TempDir::new();
    store
        .download_and_extract(location, &scratch.path().join("a.zip"), out.path())
        .await
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_directory_comes_back_by_version_and_older_versions_stay_readable() {
    let (store, bucket) = store().await;
    let pipeline = unique("artifacts");

    // Bigger than two parts: the multipart path.
    let src = TempDir::new();
    write(src.path(), "dist/index.html", b"<h1>v1</h1>\n", 0o644);
    write(
        src.path(),
        "dist/bin/run.sh",
        b"#!/bin/sh\necho run\n",
        0o755,
    );
    write(
        src.path(),
        "dist/data/big.bin",
        &random_bytes(2 * PART_SIZE + 12_345, 7),
        0o600,
    );
    write(src.path(), "notes.txt", b"not part of the artifact", 0o644);
    let key = artifact_key(&pipeline, "BuildOutput", "first");
    let first = store
        .upload_dir(src.path(), &["dist/**/*".to_string()], &bucket, &key)
        .await
        .unwrap();
    assert_eq!(
        (first.bucket.as_str(), first.key.as_str()),
        (bucket.as_str(), key.as_str())
    );
    assert!(
        first.version_id.is_some(),
        "the artifact bucket is versioned"
    );

    let expected: BTreeMap<_, _> = tree(src.path())
        .into_iter()
        .filter(|(name, _)| name.starts_with("dist/"))
        .collect();
    assert_eq!(tree(fetch(&store, &first).await.path()), expected);

    // A small artifact to the same key: one PutObject, a new version.
    let src2 = TempDir::new();
    write(src2.path(), "dist/index.html", b"<h1>v2</h1>\n", 0o644);
    let second = store
        .upload_dir(src2.path(), &[], &bucket, &key)
        .await
        .unwrap();
    assert!(second.version_id.is_some());
    assert_ne!(second.version_id, first.version_id);
    assert_eq!(tree(fetch(&store, &second).await.path()), tree(src2.path()));

    // The first version is still what readers pinned to it get.
    assert_eq!(tree(fetch(&store, &first).await.path()), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_matching_file_names_the_patterns_and_writes_nothing() {
    let (store, bucket) = store().await;
    let src = TempDir::new();
    write(src.path(), "a.txt", b"a", 0o644);
    let key = artifact_key(&unique("artifacts"), "Out", "none");
    let err = store
        .upload_dir(src.path(), &["dist/**/*".to_string()], &bucket, &key)
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::NoMatch { .. }), "{err}");
    assert!(err.to_string().contains("`dist/**/*`"), "{err}");
    let missing = ArtifactLocation {
        bucket: bucket.clone(),
        key,
        version_id: None,
    };
    let scratch = TempDir::new();
    let err = store
        .download(&missing, &scratch.path().join("x.zip"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_keeps_its_source_version_and_etag() {
    let (store, bucket) = store().await;
    let pipeline = unique("artifacts");
    let src = TempDir::new();
    write(src.path(), "app/index.html", b"<h1>source</h1>\n", 0o644);
    // The "source object": an archive written to the bucket, then overwritten.
    let source_key = format!("{pipeline}/source/app.zip");
    let v1 = store
        .upload_dir(src.path(), &[], &bucket, &source_key)
        .await
        .unwrap();
    write(src.path(), "app/index.html", b"<h1>newer</h1>\n", 0o644);
    store
        .upload_dir(src.path(), &[], &bucket, &source_key)
        .await
        .unwrap();

    let dest = ArtifactLocation {
        bucket: bucket.clone(),
        key: artifact_key(&pipeline, "SourceArtifact", "copy"),
        version_id: None,
    };
    let copied = store
        .copy_in(&bucket, &source_key, v1.version_id.as_deref(), &dest)
        .await
        .unwrap();
    assert_eq!(copied.source_version_id, v1.version_id);
    assert!(
        copied
            .source_etag
            .as_deref()
            .is_some_and(|e| !e.is_empty() && !e.contains('"')),
        "{copied:?}"
    );
    assert!(copied.location.version_id.is_some());
    let out = fetch(&store, &copied.location).await;
    assert_eq!(
        std::fs::read(out.path().join("app/index.html")).unwrap(),
        b"<h1>source</h1>\n"
    );
}
