//! Zip archives of artifacts: written as a stream (no seeking, so the output can go straight to
//! an S3 multipart upload) and read back safely (no entry may land outside the destination).
//!
//! Both sides are blocking file I/O: call them from `tokio::task::spawn_blocking`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, Timelike};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::patterns::FilePatterns;
use super::ArtifactError;

/// The deflate level of artifact entries: fast, since a pipeline waits for it, and the artifact
/// bucket's storage is cheap next to an action's minutes.
pub const DEFLATE_LEVEL: i64 = 1;

/// Files at least this big are written with zip64 sizes (a streamed entry's sizes are decided
/// before its data is written).
const LARGE_FILE: u64 = 1 << 31;

/// The longest symbolic-link target accepted when extracting.
const MAX_LINK_TARGET: u64 = 4096;

/// What one extraction may write: an archive is outside input (a source bucket, an earlier
/// action's output), and its headers may lie about sizes (a zip bomb), so the bytes actually
/// written are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractBudget {
    /// The most entries (files, links and directories).
    pub entries: u64,
    /// The most bytes written, all files together.
    pub bytes: u64,
}

impl Default for ExtractBudget {
    /// 100,000 entries and 8 GiB: the action function has 10 GiB of ephemeral storage, and the
    /// archive itself is on it too.
    fn default() -> Self {
        Self {
            entries: 100_000,
            bytes: 8 << 30,
        }
    }
}

/// Extensions of files that are compressed already: stored as they are.
const STORED_EXTENSIONS: &[&str] = &[
    "zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "jar", "war", "ear", "whl", "png", "jpg", "jpeg",
    "gif", "webp", "avif", "mp3", "mp4", "woff", "woff2", "br", "lz4",
];

/// What [`zip_to_writer`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZipStats {
    /// Entries written (files and symbolic links).
    pub entries: u64,
    /// Bytes read from the files.
    pub bytes_in: u64,
}

/// What [`extract`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Files and symbolic links written.
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Zip the files of `src_dir` selected by `patterns` (see [`FilePatterns`]) into `out`, as a
/// stream: entries carry data descriptors, nothing is ever sought back, and memory use does not
/// grow with the files' sizes.
///
/// Paths in the archive are relative to `src_dir`; unix modes and modification times are kept;
/// symbolic links are stored as links (never followed). No selected file is an error naming
/// the patterns.
pub fn zip_to_writer<W: Write>(
    src_dir: &Path,
    patterns: &[String],
    out: W,
) -> Result<ZipStats, ArtifactError> {
    let patterns = FilePatterns::new(patterns)?;
    let mut files = Vec::new();
    walk(src_dir, "", &mut files)?;
    files.retain(|f| patterns.matches(&f.name));
    if files.is_empty() {
        return Err(ArtifactError::NoMatch {
            dir: src_dir.display().to_string(),
            patterns: patterns.describe(),
        });
    }

    let mut zip = ZipWriter::new_stream(out);
    let mut stats = ZipStats::default();
    let mut buf = vec![0u8; 256 * 1024];
    for file in &files {
        let zip_err = |source| ArtifactError::Zip {
            what: format!("writing {}", file.name),
            source,
        };
        let mut options = SimpleFileOptions::default()
            .unix_permissions(file.mode & 0o7777)
            .last_modified_time(zip_time(file.modified));
        if file.is_symlink {
            let target = fs::read_link(&file.path)
                .map_err(|e| io_error(format!("reading link {}", file.path.display()), e))?;
            let target = target.to_str().ok_or_else(|| ArtifactError::UnsafePath {
                path: file.name.clone(),
                reason: "the link target is not UTF-8",
            })?;
            zip.add_symlink(&file.name, target, options)
                .map_err(zip_err)?;
            stats.entries += 1;
            continue;
        }
        options = if is_stored(&file.name) {
            options.compression_method(CompressionMethod::Stored)
        } else {
            options
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(DEFLATE_LEVEL))
        };
        options = options.large_file(file.size >= LARGE_FILE);
        let mut input = File::open(&file.path)
            .map_err(|e| io_error(format!("opening {}", file.path.display()), e))?;
        zip.start_file(&file.name, options).map_err(zip_err)?;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(format!("reading {}", file.path.display()), e)),
            };
            zip.write_all(&buf[..n])
                .map_err(|e| io_error(format!("writing {} to the archive", file.name), e))?;
            stats.bytes_in += n as u64;
        }
        stats.entries += 1;
    }
    let mut out = zip.finish().map_err(|source| ArtifactError::Zip {
        what: "finishing the archive".into(),
        source,
    })?;
    out.flush()
        .map_err(|e| io_error("flushing the archive".into(), e))?;
    Ok(stats)
}

/// Extract the archive `zip_file` into `dest_dir` (created if missing).
///
/// Refuses, naming the entry, any entry whose path is absolute or has a `..` component, and any
/// entry that would be written through a symbolic link (so a link in the archive cannot point
/// later entries outside `dest_dir`). Unix modes and modification times are kept.
pub fn extract(zip_file: &Path, dest_dir: &Path) -> Result<ExtractStats, ArtifactError> {
    extract_within(zip_file, dest_dir, ExtractBudget::default())
}

/// [`extract`], refusing an archive that holds more entries than `budget` allows before writing
/// anything, and stopping (with an error naming the entry) as soon as the bytes written would
/// pass it, whatever the entries' headers claim.
pub fn extract_within(
    zip_file: &Path,
    dest_dir: &Path,
    budget: ExtractBudget,
) -> Result<ExtractStats, ArtifactError> {
    let file =
        File::open(zip_file).map_err(|e| io_error(format!("opening {}", zip_file.display()), e))?;
    let mut archive =
        ZipArchive::new(BufReader::with_capacity(256 * 1024, file)).map_err(|source| {
            ArtifactError::Zip {
                what: format!("reading {}", zip_file.display()),
                source,
            }
        })?;
    if archive.len() as u64 > budget.entries {
        return Err(ArtifactError::TooBig(format!(
            "{} holds {} entries, more than the {} an artifact may hold",
            zip_file.display(),
            archive.len(),
            budget.entries
        )));
    }
    fs::create_dir_all(dest_dir)
        .map_err(|e| io_error(format!("creating {}", dest_dir.display()), e))?;
    let mut known_dirs = HashSet::new();
    let mut dir_modes = Vec::new();
    let mut stats = ExtractStats::default();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|source| ArtifactError::Zip {
            what: format!("reading entry {i} of {}", zip_file.display()),
            source,
        })?;
        let name = entry
            .name()
            .map_err(|source| ArtifactError::Zip {
                what: format!("reading the name of entry {i}"),
                source,
            })?
            .into_owned();
        let parts = safe_relative(&name)?;
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let mode = entry.unix_mode().map(|m| m & 0o777);
        if entry.is_dir() {
            let path = ensure_dirs(dest_dir, &parts, &name, &mut known_dirs)?;
            if let Some(mode) = mode {
                dir_modes.push((path, mode | 0o700));
            }
            continue;
        }
        let parent = ensure_dirs(dest_dir, parents, &name, &mut known_dirs)?;
        let path = parent.join(last);
        remove_non_dir(&path, &name)?;
        if entry.is_symlink() {
            let mut target = String::new();
            entry
                .by_ref()
                .take(MAX_LINK_TARGET)
                .read_to_string(&mut target)
                .map_err(|e| io_error(format!("reading the link target of {name}"), e))?;
            std::os::unix::fs::symlink(&target, &path)
                .map_err(|e| io_error(format!("creating link {}", path.display()), e))?;
            stats.entries += 1;
            continue;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(0o644))
            .open(&path)
            .map_err(|e| io_error(format!("creating {}", path.display()), e))?;
        // One byte more than the room left tells an entry that does not fit.
        let room = budget.bytes - stats.bytes;
        let n = io::copy(&mut entry.by_ref().take(room + 1), &mut out)
            .map_err(|e| io_error(format!("extracting {name}"), e))?;
        if n > room {
            drop(out);
            let _ = fs::remove_file(&path);
            return Err(ArtifactError::TooBig(format!(
                "entry {name}: the artifact would take more than the {} bytes it may take \
                 once extracted",
                budget.bytes
            )));
        }
        if let Some(mode) = mode {
            out.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| io_error(format!("setting the mode of {}", path.display()), e))?;
        }
        if let Some(time) = entry.last_modified().and_then(system_time) {
            // A time the file system refuses is not worth failing the artifact for.
            let _ = out.set_modified(time);
        }
        stats.entries += 1;
        stats.bytes += n;
    }
    // Deepest first, so a directory made read-only does not stop its children's modes.
    dir_modes.sort_by(|a, b| b.0.cmp(&a.0));
    for (path, mode) in dir_modes {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(format!("setting the mode of {}", path.display()), e))?;
    }
    Ok(stats)
}

/// The components of an entry name, refusing absolute paths and `..` (zip slip). `\` counts as a
/// separator too (archives made on Windows); empty and `.` components are dropped.
pub fn safe_relative(name: &str) -> Result<Vec<&str>, ArtifactError> {
    let unsafe_path = |reason| ArtifactError::UnsafePath {
        path: name.to_string(),
        reason,
    };
    if name.contains('\0') {
        return Err(unsafe_path("the name has a NUL character"));
    }
    let bytes = name.as_bytes();
    if name.starts_with('/')
        || name.starts_with('\\')
        || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic())
    {
        return Err(unsafe_path("the path is absolute"));
    }
    let mut parts = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                return Err(unsafe_path(
                    "a `..` component would write outside the destination",
                ))
            }
            _ => parts.push(part),
        }
    }
    Ok(parts)
}

/// The regular files under `dir`, as (relative `/`-separated name, path) in name order, and
/// the number of symbolic links skipped (links are never followed).
pub fn list_files(dir: &Path) -> Result<(Vec<(String, PathBuf)>, usize), ArtifactError> {
    let mut entries = Vec::new();
    walk(dir, "", &mut entries)?;
    let links = entries.iter().filter(|e| e.is_symlink).count();
    let files = entries
        .into_iter()
        .filter(|e| !e.is_symlink)
        .map(|e| (e.name, e.path))
        .collect();
    Ok((files, links))
}

struct FileEntry {
    /// Relative name, `/` separated.
    name: String,
    path: PathBuf,
    size: u64,
    mode: u32,
    modified: Option<SystemTime>,
    is_symlink: bool,
}

/// Files and links under `dir` (links are not followed), in name order.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<FileEntry>) -> Result<(), ArtifactError> {
    let read = fs::read_dir(dir).map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
    let mut entries = read
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error(format!("listing {}", dir.display()), e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let file_name = file_name
            .to_str()
            .ok_or_else(|| ArtifactError::UnsafePath {
                path: path.display().to_string(),
                reason: "the file name is not UTF-8",
            })?;
        let name = if prefix.is_empty() {
            file_name.to_string()
        } else {
            format!("{prefix}/{file_name}")
        };
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| io_error(format!("reading {}", path.display()), e))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            walk(&path, &name, out)?;
        } else if kind.is_file() || kind.is_symlink() {
            out.push(FileEntry {
                name,
                path,
                size: meta.len(),
                mode: meta.permissions().mode(),
                modified: meta.modified().ok(),
                is_symlink: kind.is_symlink(),
            });
        }
        // Sockets, pipes and devices are not artifact content.
    }
    Ok(())
}

/// Create (or check) the directories `parts` under `root`; none may be a symbolic link.
fn ensure_dirs(
    root: &Path,
    parts: &[&str],
    entry: &str,
    known: &mut HashSet<PathBuf>,
) -> Result<PathBuf, ArtifactError> {
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(part);
        if known.contains(&path) {
            continue;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ArtifactError::UnsafePath {
                    path: entry.to_string(),
                    reason: "the entry would be written through a symbolic link",
                })
            }
            Ok(_) => {
                return Err(ArtifactError::UnsafePath {
                    path: entry.to_string(),
                    reason: "a parent of the entry is a file",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path)
                    .map_err(|e| io_error(format!("creating {}", path.display()), e))?;
            }
            Err(e) => return Err(io_error(format!("reading {}", path.display()), e)),
        }
        known.insert(path.clone());
    }
    Ok(path)
}

/// A later entry replaces an earlier file or link of the same name; never a directory.
fn remove_non_dir(path: &Path, entry: &str) -> Result<(), ArtifactError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(ArtifactError::UnsafePath {
            path: entry.to_string(),
            reason: "a directory of the same name was extracted before",
        }),
        Ok(_) => {
            fs::remove_file(path).map_err(|e| io_error(format!("replacing {}", path.display()), e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("reading {}", path.display()), e)),
    }
}

fn is_stored(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => STORED_EXTENSIONS
            .iter()
            .any(|e| e.eq_ignore_ascii_case(ext)),
        _ => false,
    }
}

fn io_error(what: String, source: io::Error) -> ArtifactError {
    ArtifactError::Io { what, source }
}

/// A file time as a zip (MS-DOS, taken as UTC) time; 1980-01-01 when out of its range.
fn zip_time(time: Option<SystemTime>) -> DateTime {
    let Some(time) = time.filter(|t| *t >= UNIX_EPOCH) else {
        return DateTime::default();
    };
    let utc = chrono::DateTime::<chrono::Utc>::from(time);
    u16::try_from(utc.year())
        .ok()
        .and_then(|year| {
            DateTime::from_date_and_time(
                year,
                utc.month() as u8,
                utc.day() as u8,
                utc.hour() as u8,
                utc.minute() as u8,
                utc.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// A zip time (taken as UTC) as a system time.
fn system_time(time: DateTime) -> Option<SystemTime> {
    let utc = chrono::NaiveDate::from_ymd_opt(
        i32::from(time.year()),
        u32::from(time.month()),
        u32::from(time.day()),
    )?
    .and_hms_opt(
        u32::from(time.hour()),
        u32::from(time.minute()),
        u32::from(time.second()),
    )?
    .and_utc();
    u64::try_from(utc.timestamp())
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, content: &[u8], mode: u32) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn tree(root: &Path) -> Vec<(String, Vec<u8>, u32)> {
        let mut files = Vec::new();
        walk(root, "", &mut files).unwrap();
        files
            .into_iter()
            .map(|f| {
                let content = if f.is_symlink {
                    format!("-> {}", fs::read_link(&f.path).unwrap().display()).into_bytes()
                } else {
                    fs::read(&f.path).unwrap()
                };
                (f.name, content, f.mode & 0o777)
            })
            .collect()
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut zip = ZipWriter::new_stream(&mut out);
            for (name, content) in entries {
                zip.start_file(*name, SimpleFileOptions::default()).unwrap();
                zip.write_all(content).unwrap();
            }
            zip.finish().unwrap();
        }
        out
    }

    #[test]
    fn streaming_zip_round_trips_through_a_vec_and_extract() {
        let src = tempfile::tempdir().unwrap();
        let random: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        write(src.path(), "dist/index.html", b"<h1>hi</h1>", 0o644);
        write(
            src.path(),
            "dist/app/run.sh",
            b"#!/bin/sh\necho hi\n",
            0o755,
        );
        write(src.path(), "dist/blob.bin", &random, 0o600);
        write(src.path(), "dist/logo.png", &random[..1000], 0o644);
        write(src.path(), "notes.txt", b"not selected", 0o644);
        std::os::unix::fs::symlink("index.html", src.path().join("dist/home.html")).unwrap();

        let mut sink = Vec::new();
        let stats = zip_to_writer(src.path(), &["dist/**/*".to_string()], &mut sink).unwrap();
        assert_eq!(stats.entries, 5);
        assert_eq!(stats.bytes_in, 11 + 18 + 300_000 + 1000);

        let zip_path = src.path().join("out.zip");
        fs::write(&zip_path, &sink).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let extracted = extract(&zip_path, dest.path()).unwrap();
        assert_eq!(extracted.entries, 5);
        let expected: Vec<_> = tree(src.path())
            .into_iter()
            .filter(|(n, _, _)| n.starts_with("dist/"))
            .collect();
        assert_eq!(tree(dest.path()), expected);
        // Modification times survive (to the zip format's two seconds).
        let before = fs::metadata(src.path().join("dist/index.html"))
            .unwrap()
            .modified()
            .unwrap();
        let after = fs::metadata(dest.path().join("dist/index.html"))
            .unwrap()
            .modified()
            .unwrap();
        let diff = before
            .duration_since(after)
            .unwrap_or_else(|e| e.duration());
        assert!(diff <= Duration::from_secs(2), "{diff:?}");
    }

    #[test]
    fn no_match_names_the_patterns() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "a.txt", b"a", 0o644);
        let err = zip_to_writer(src.path(), &["dist/**/*".into(), "*.md".into()], io::sink())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`dist/**/*`, `*.md`"), "{text}");
        assert!(matches!(err, ArtifactError::NoMatch { .. }));
    }

    #[test]
    fn zip_slip_is_refused() {
        for name in [
            "../evil.txt",
            "a/../../evil.txt",
            "/etc/evil",
            "\\evil",
            "C:\\evil",
            "a\\..\\..\\evil",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let zip_path = dir.path().join("bad.zip");
            fs::write(&zip_path, zip_of(&[("ok.txt", b"ok"), (name, b"evil")])).unwrap();
            let dest = dir.path().join("out");
            let err = extract(&zip_path, &dest).expect_err(name);
            assert!(
                matches!(err, ArtifactError::UnsafePath { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
            assert!(!dir.path().join("evil.txt").exists());
        }
        assert_eq!(safe_relative("./a//b/./c").unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn entries_through_a_symlink_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        {
            let mut zip = ZipWriter::new_stream(&mut out);
            zip.add_symlink("link", "..", SimpleFileOptions::default())
                .unwrap();
            zip.start_file("link/evil.txt", SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b"evil").unwrap();
            zip.finish().unwrap();
        }
        let zip_path = dir.path().join("bad.zip");
        fs::write(&zip_path, out).unwrap();
        let err = extract(&zip_path, &dir.path().join("out")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!dir.path().join("evil.txt").exists());
    }

    #[test]
    fn archives_over_the_budget_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("big.zip");
        let body = vec![b'x'; 100];
        fs::write(
            &zip_path,
            zip_of(&[("a", &body), ("b", &body), ("c", &body)]),
        )
        .unwrap();
        // Too many entries: refused before anything is written.
        let dest = dir.path().join("many");
        let budget = ExtractBudget {
            entries: 2,
            bytes: 1 << 20,
        };
        let err = extract_within(&zip_path, &dest, budget).unwrap_err();
        assert!(matches!(err, ArtifactError::TooBig(_)), "{err}");
        assert!(err.to_string().contains("3 entries"), "{err}");
        assert!(!dest.exists());
        // Too many bytes: it stops at the entry that does not fit, which is not left behind.
        let dest = dir.path().join("bytes");
        let budget = ExtractBudget {
            entries: 10,
            bytes: 250,
        };
        let err = extract_within(&zip_path, &dest, budget).unwrap_err();
        assert!(err.to_string().contains("entry c"), "{err}");
        assert!(dest.join("a").exists() && dest.join("b").exists());
        assert!(!dest.join("c").exists());
        // Exactly at the budget: fine.
        let budget = ExtractBudget {
            entries: 3,
            bytes: 300,
        };
        let stats = extract_within(&zip_path, &dir.path().join("fits"), budget).unwrap();
        assert_eq!((stats.entries, stats.bytes), (3, 300));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any bytes, as an archive: an answer (never a panic), nothing outside the
        /// destination, never more than the budget written.
        #[test]
        fn any_bytes_extract_or_are_refused_within_the_budget(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            cut in 0usize..2048,
            flip in proptest::prelude::any::<u8>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let zip_path = dir.path().join("any.zip");
            // Half the cases start from a real archive, damaged: past the first parser checks.
            let mut data = if cut % 2 == 0 {
                zip_of(&[("a/b.txt", &bytes), ("c", b"c")])
            } else {
                bytes.clone()
            };
            if !data.is_empty() {
                let i = cut % data.len();
                data[i] ^= flip;
            }
            fs::write(&zip_path, &data).unwrap();
            let dest = dir.path().join("out");
            let budget = ExtractBudget { entries: 8, bytes: 1024 };
            if let Ok(stats) = extract_within(&zip_path, &dest, budget) {
                proptest::prop_assert!(stats.bytes <= budget.bytes);
                proptest::prop_assert!(stats.entries <= budget.entries);
            }
            let outside: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != "any.zip" && n != "out")
                .collect();
            proptest::prop_assert!(outside.is_empty(), "{outside:?}");
        }
    }

    #[test]
    fn dates_convert_both_ways() {
        let leap_day = UNIX_EPOCH + Duration::from_secs(19_782 * 86_400);
        let zipped = zip_time(Some(leap_day));
        assert_eq!((zipped.year(), zipped.month(), zipped.day()), (2024, 2, 29));
        assert_eq!(system_time(zipped), Some(leap_day));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(system_time(zip_time(Some(t))), Some(t));
        assert_eq!(zip_time(Some(UNIX_EPOCH)), DateTime::default());
    }

    #[test]
    fn compressed_formats_are_stored() {
        assert!(is_stored("a/b/logo.PNG"));
        assert!(is_stored("x.tar.gz"));
        assert!(!is_stored("index.html"));
        assert!(!is_stored(".gz"));
    }
}
