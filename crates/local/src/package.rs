//! Building the template's functions for this host and packing each as a Lambda zip.
//!
//! On AWS, `sam build` (cargo-lambda) cross-compiles for arm64. Locally the emulator runs each
//! `bootstrap` as a process of this machine, so the same crates are built with plain cargo for
//! the host. Which binary belongs to which function is read from `cargo metadata`, never assumed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::template::FunctionSource;
use crate::LocalError;

/// The package and binary names of the local stand-in for a container engine.
pub const LAMBDA_HOST_PACKAGE: &str = "pipewright-lambda-host";

/// Cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `cargo build` (fast to build; what the tests use).
    #[default]
    Dev,
    /// `cargo build --release`.
    Release,
}

impl Profile {
    fn dir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }
}

/// A function ready to upload: its logical id and the zip holding its `bootstrap`.
#[derive(Debug, Clone)]
pub struct PackagedFunction {
    /// Logical id in the template.
    pub logical_id: String,
    /// The zip on disk.
    pub zip: PathBuf,
}

/// What `cargo metadata` says of the workspace, the parts used here.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The workspace: where its crates and its target folder are.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    metadata: Metadata,
}

impl Workspace {
    /// Read the workspace whose root (the folder of `template.yaml` and the top `Cargo.toml`) is `root`.
    pub fn open(root: &Path) -> Result<Self, LocalError> {
        let output = Command::new(cargo())
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(root.join("Cargo.toml"))
            .output()
            .map_err(|e| LocalError::Build(format!("cannot run cargo metadata: {e}")))?;
        if !output.status.success() {
            return Err(LocalError::Build(format!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let metadata: Metadata = serde_json::from_slice(&output.stdout)
            .map_err(|e| LocalError::Build(format!("cannot read cargo metadata: {e}")))?;
        Ok(Self {
            root: root.to_path_buf(),
            metadata,
        })
    }

    /// The folder cargo builds into.
    pub fn target_dir(&self) -> &Path {
        &self.metadata.target_directory
    }

    /// Path of binary `bin` built with `profile`.
    pub fn binary(&self, profile: Profile, bin: &str) -> PathBuf {
        self.target_dir().join(profile.dir()).join(bin)
    }

    /// The package and binary a function's `CodeUri` folder builds.
    fn function_binary(&self, f: &FunctionSource) -> Result<(&str, &str), LocalError> {
        let manifest = self.root.join(&f.code_uri).join("Cargo.toml");
        let manifest = manifest.canonicalize().map_err(|e| {
            LocalError::Build(format!(
                "{}: CodeUri {} has no Cargo.toml ({e})",
                f.logical_id, f.code_uri
            ))
        })?;
        let package = self
            .metadata
            .packages
            .iter()
            .find(|p| p.manifest_path.canonicalize().ok().as_deref() == Some(manifest.as_path()))
            .ok_or_else(|| {
                LocalError::Build(format!(
                    "{}: {} is not a member of the workspace",
                    f.logical_id, f.code_uri
                ))
            })?;
        let bins: Vec<&Target> = package
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .collect();
        match bins.as_slice() {
            [bin] => Ok((package.name.as_str(), bin.name.as_str())),
            _ => Err(LocalError::Build(format!(
                "{}: package {} must have exactly one binary, it has {}",
                f.logical_id,
                package.name,
                bins.len()
            ))),
        }
    }

    /// Build every function in `functions` and the Lambda stand-in for this host, then zip each
    /// function's binary as `bootstrap` into `out_dir`.
    pub fn build_functions(
        &self,
        functions: &[FunctionSource],
        profile: Profile,
        out_dir: &Path,
    ) -> Result<Vec<PackagedFunction>, LocalError> {
        let bins = functions
            .iter()
            .map(|f| self.function_binary(f))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cmd = Command::new(cargo());
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(self.root.join("Cargo.toml"));
        if profile == Profile::Release {
            cmd.arg("--release");
        }
        // Every binary of the workspace, not `-p` per function: one set of features for the
        // whole workspace, so this reuses what `cargo build --workspace` built (a `-p` subset
        // resolves other features and compiles the AWS SDK crates once more).
        cmd.args(["--workspace", "--bins"]);
        let status = cmd
            .status()
            .map_err(|e| LocalError::Build(format!("cannot run cargo build: {e}")))?;
        if !status.success() {
            return Err(LocalError::Build(format!("cargo build failed ({status})")));
        }
        std::fs::create_dir_all(out_dir).map_err(|e| LocalError::io(out_dir, e))?;
        functions
            .iter()
            .zip(bins)
            .map(|(f, (_, bin))| {
                let zip = out_dir.join(format!("{}.zip", f.logical_id));
                zip_bootstrap(&self.binary(profile, bin), &zip)?;
                Ok(PackagedFunction {
                    logical_id: f.logical_id.clone(),
                    zip,
                })
            })
            .collect()
    }
}

/// Write a Lambda deployment zip holding `binary` as an executable named `bootstrap`.
pub fn zip_bootstrap(binary: &Path, zip_path: &Path) -> Result<(), LocalError> {
    let mut input = std::fs::File::open(binary).map_err(|e| LocalError::io(binary, e))?;
    let file = std::fs::File::create(zip_path).map_err(|e| LocalError::io(zip_path, e))?;
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    writer
        .start_file("bootstrap", options)
        .map_err(|e| LocalError::Build(format!("zip: {e}")))?;
    std::io::copy(&mut input, &mut writer).map_err(|e| LocalError::io(zip_path, e))?;
    writer
        .finish()
        .map_err(|e| LocalError::Build(format!("zip: {e}")))?
        .flush()
        .map_err(|e| LocalError::io(zip_path, e))?;
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn zip_holds_an_executable_bootstrap_with_the_binary_bytes() {
        let dir = std::env::temp_dir().join(format!("pipewright-zip-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("fn");
        std::fs::write(&bin, b"#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let zip_path = dir.join("fn.zip");
        zip_bootstrap(&bin, &zip_path).unwrap();

        let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"#!/bin/sh\necho hi\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
