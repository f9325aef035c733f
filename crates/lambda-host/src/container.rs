//! The on-disk state of one "container": a directory under the state root.
//!
//! ```text
//! <root>/host.log             one line per CLI call, for debugging
//! <root>/<id>/config.json     image, command, env, labels (mode 0600: holds credentials)
//! <root>/<id>/container.log   serve's and the function's stdout/stderr
//! <root>/<id>/serve.pid       the detached server (leader of its own session)
//! <root>/<id>/bootstrap.pid   the function's runtime process (leader of its own group)
//! <root>/<id>/port            the server's 127.0.0.1 port, once it listens
//! <root>/<id>/task/           /var/task
//! <root>/<id>/runtime/        /var/runtime
//! <root>/<id>/opt/            /opt
//! <root>/<id>/tmp/            /tmp
//! <root>/<id>/codebuild/      /codebuild (build containers only)
//! <root>/<id>/home/           /root (build containers only)
//! <root>/<id>/exec-<pid>      one per `exec` running in a build container
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable naming the state root.
pub const ROOT_ENV: &str = "PIPEWRIGHT_LAMBDA_HOST_DIR";

/// What `create` recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub id: String,
    pub image: String,
    /// Everything after the image on the `create` line; the first entry is
    /// the handler.
    pub command: Vec<String>,
    /// `-e` variables in order, `-e KEY` already resolved.
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    pub name: Option<String>,
    pub created_unix: u64,
    /// `run --entrypoint`: set for CodeBuild build containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
}

/// The directory holding every container.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// `$PIPEWRIGHT_LAMBDA_HOST_DIR`, else `$TMPDIR/pipewright-lambda-host`.
    pub fn from_env() -> Root {
        let dir = match std::env::var_os(ROOT_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => std::env::temp_dir().join("pipewright-lambda-host"),
        };
        // Absolute, so the detached server and the bootstrap (which run in
        // other working directories) agree on it.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Root { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn ensure(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
    }

    /// Append one line to `<root>/host.log`; failures are ignored (logging
    /// must never fail a command).
    pub fn log(&self, line: &str) {
        if self.ensure().is_err() {
            return;
        }
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.dir.join("host.log"))
        {
            let _ = writeln!(f, "{} [{}] {line}", unix_now(), std::process::id());
        }
    }

    /// Create a container directory for `config` (whose `id` is filled in).
    pub fn create(&self, mut config: Config) -> io::Result<Container> {
        self.ensure()?;
        loop {
            config.id = random_hex(32);
            let dir = self.dir.join(&config.id);
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let c = Container {
                        id: config.id.clone(),
                        dir,
                    };
                    for sub in ["task", "runtime", "opt", "tmp"] {
                        fs::create_dir(c.dir.join(sub))?;
                    }
                    write_private(&c.dir.join("config.json"), &serde_json::to_vec(&config)?)?;
                    return Ok(c);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The container `id`, or the single one whose id starts with it (as
    /// docker accepts a unique prefix).
    pub fn find(&self, id: &str) -> io::Result<Container> {
        let not_found =
            || io::Error::new(io::ErrorKind::NotFound, format!("No such container: {id}"));
        if id.is_empty() || id.contains(['/', '\\']) || id == "." || id == ".." {
            return Err(not_found());
        }
        let exact = self.dir.join(id);
        if exact.join("config.json").is_file() {
            return Ok(Container {
                id: id.to_string(),
                dir: exact,
            });
        }
        let mut matches = self.list().into_iter().filter(|c| c.id.starts_with(id));
        match (matches.next(), matches.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(not_found()),
        }
    }

    /// Every container, in id order.
    pub fn list(&self) -> Vec<Container> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<Container> = entries
            .flatten()
            .filter(|e| e.path().join("config.json").is_file())
            .filter_map(|e| {
                Some(Container {
                    id: e.file_name().into_string().ok()?,
                    dir: e.path(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// One container directory.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
}

impl Container {
    pub fn config(&self) -> io::Result<Config> {
        let raw = fs::read(self.dir.join("config.json"))?;
        serde_json::from_slice(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn task_dir(&self) -> PathBuf {
        self.dir.join("task")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("runtime")
    }

    pub fn opt_dir(&self) -> PathBuf {
        self.dir.join("opt")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// `/codebuild` of a build container.
    pub fn codebuild_dir(&self) -> PathBuf {
        self.dir.join("codebuild")
    }

    /// `/root` of a build container.
    pub fn home_dir(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// Whether this is a CodeBuild build container (made by `run`), not a function's.
    pub fn is_build(&self) -> bool {
        self.config().is_ok_and(|c| c.entrypoint.is_some())
    }

    /// `container_path` on the host, for a copy out of a build container: it must stay inside
    /// the container's folders once every symbolic link on the way (which the build's commands
    /// may have made) is followed.
    pub fn resolved_path(&self, container_path: &str) -> Result<PathBuf, String> {
        let path = self.host_path(container_path)?;
        let base =
            fs::canonicalize(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let resolved = fs::canonicalize(&path).map_err(|e| format!("{container_path}: {e}"))?;
        if !resolved.starts_with(&base) {
            return Err(format!(
                "{container_path} leads out of the container (through a symbolic link)"
            ));
        }
        Ok(resolved)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("container.log")
    }

    pub fn serve_pid_path(&self) -> PathBuf {
        self.dir.join("serve.pid")
    }

    pub fn bootstrap_pid_path(&self) -> PathBuf {
        self.dir.join("bootstrap.pid")
    }

    pub fn port_path(&self) -> PathBuf {
        self.dir.join("port")
    }

    /// Open the log for appending (created 0600 if missing).
    pub fn open_log(&self) -> io::Result<fs::File> {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.log_path())
    }

    pub fn read_port(&self) -> Option<u16> {
        read_number(&self.port_path())
    }

    /// Publish the port: written aside and renamed, so a reader never sees a
    /// half-written file.
    pub fn write_port(&self, port: u16) -> io::Result<()> {
        write_atomic(&self.port_path(), port.to_string().as_bytes())
    }

    pub fn read_pid(path: &Path) -> Option<i32> {
        read_number(path)
    }

    pub fn write_pid(path: &Path, pid: u32) -> io::Result<()> {
        write_atomic(path, pid.to_string().as_bytes())
    }

    /// Where a container path lives on the host: `/var/task` → `task/`,
    /// `/var/runtime` → `runtime/`, `/opt` → `opt/`, `/tmp` → `tmp/`, with
    /// any subpath below them.
    pub fn host_path(&self, container_path: &str) -> Result<PathBuf, String> {
        let trimmed = container_path.trim_end_matches('/');
        for (prefix, sub) in [
            ("/var/task", "task"),
            ("/var/runtime", "runtime"),
            ("/opt", "opt"),
            ("/tmp", "tmp"),
            ("/codebuild", "codebuild"),
            ("/root", "home"),
        ] {
            let rest = match trimmed.strip_prefix(prefix) {
                Some("") => "",
                Some(r) if r.starts_with('/') => &r[1..],
                _ => continue,
            };
            let mut out = self.dir.join(sub);
            for part in rest.split('/').filter(|p| !p.is_empty() && *p != ".") {
                if part == ".." {
                    return Err(format!("container path escapes {prefix}: {container_path}"));
                }
                out.push(part);
            }
            return Ok(out);
        }
        Err(format!(
            "unsupported container path {container_path}: only /var/task, /var/runtime, /opt, /tmp, /codebuild and /root exist"
        ))
    }

    /// The last `lines` lines of the log (all of it for `None`). Reads at
    /// most the final 8 MiB.
    pub fn log_tail(&self, lines: Option<usize>) -> io::Result<String> {
        const MAX: u64 = 8 << 20;
        let mut f = match fs::File::open(self.log_path()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        let len = f.metadata()?.len();
        if len > MAX {
            f.seek(SeekFrom::Start(len - MAX))?;
        }
        let mut raw = Vec::new();
        f.read_to_end(&mut raw)?;
        Ok(tail_lines(&String::from_utf8_lossy(&raw), lines))
    }
}

/// The last `n` lines of `text`, each newline-terminated.
pub fn tail_lines(text: &str, n: Option<usize>) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = n.map_or(0, |n| all.len().saturating_sub(n));
    let mut out = String::new();
    for line in &all[start..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn read_number<T: std::str::FromStr>(path: &Path) -> Option<T> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp, data)?;
    fs::rename(&tmp, path)
}

/// Copy `src` into `dest` the way `docker cp` does for a host source:
/// `SRC/.` copies the directory's contents into `dest`; a directory copies
/// itself (into `dest/<name>` when `dest` exists); a file lands at
/// `dest/<name>` when `dest` is a directory, else at `dest`. Permission bits
/// (so `bootstrap` stays executable) and symlinks are preserved.
pub fn docker_cp(src: &str, dest: &Path) -> io::Result<()> {
    let contents_only = src.ends_with("/.") || src == ".";
    let src_path = Path::new(src);
    let meta = fs::symlink_metadata(src_path)?;
    if meta.is_dir() {
        if contents_only || !dest.exists() {
            fs::create_dir_all(dest)?;
            copy_dir_contents(src_path, dest)
        } else {
            let name = src_path
                .file_name()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "source has no name"))?;
            let target = dest.join(name);
            fs::create_dir_all(&target)?;
            copy_dir_contents(src_path, &target)
        }
    } else {
        let target = match (dest.is_dir(), src_path.file_name()) {
            (true, Some(name)) => dest.join(name),
            _ => dest.to_path_buf(),
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        copy_entry(src_path, &target, &meta)
    }
}

fn copy_dir_contents(src: &Path, dest: &Path) -> io::Result<()> {
    copy_tree(src, dest, Links::Keep)
}

/// What a copy does with symbolic links.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// Copied as links (a function's code).
    Keep,
    /// Left out: a build's commands made them, and whoever reads the copy on the host would
    /// follow them to wherever they point.
    Skip,
}

fn copy_tree(src: &Path, dest: &Path, links: Links) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let meta = fs::symlink_metadata(entry.path())?;
        let target = dest.join(entry.file_name());
        if meta.is_dir() {
            fs::create_dir_all(&target)?;
            fs::set_permissions(&target, meta.permissions())?;
            copy_tree(&entry.path(), &target, links)?;
        } else if meta.file_type().is_symlink() && links == Links::Skip {
            continue;
        } else {
            copy_entry(&entry.path(), &target, &meta)?;
        }
    }
    Ok(())
}

/// Copy `src` (a resolved path inside a build container; its contents only with
/// `contents_only`) out to `dest` as `docker cp CONTAINER:SRC DEST` does, leaving out every
/// symbolic link.
pub fn copy_out(src: &Path, contents_only: bool, dest: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        let target = if contents_only || !dest.exists() {
            dest.to_path_buf()
        } else {
            dest.join(src.file_name().unwrap_or_default())
        };
        fs::create_dir_all(&target)?;
        copy_tree(src, &target, Links::Skip)
    } else if meta.is_file() {
        let target = match (dest.is_dir(), src.file_name()) {
            (true, Some(name)) => dest.join(name),
            _ => dest.to_path_buf(),
        };
        copy_entry(src, &target, &meta)
    } else {
        Ok(())
    }
}

fn copy_entry(src: &Path, target: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        let link = fs::read_link(src)?;
        match fs::remove_file(target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(link, target)
    } else {
        // A hard link when source and sandbox share a file system: the emulator copies a
        // function's code (tens of megabytes) into every new sandbox and then deletes its own
        // extraction, so linking saves the copy's time and the second copy's disk. Else a copy
        // (fs::copy carries the permission bits over).
        match fs::remove_file(target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::hard_link(src, target).or_else(|_| fs::copy(src, target).map(|_| ()))
    }
}

/// `2 * bytes` lowercase hex characters from the kernel's random source,
/// falling back to a time/pid mix if it can't be read.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let read = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        let mut x = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        for b in &mut buf {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lambda-host-unit-{name}-{}-{}",
            std::process::id(),
            random_hex(4)
        ));
        fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn tail() {
        assert_eq!(tail_lines("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail_lines("a\nb\nc", Some(5)), "a\nb\nc\n");
        assert_eq!(tail_lines("a\nb\n", None), "a\nb\n");
        assert_eq!(tail_lines("", Some(3)), "");
    }

    #[test]
    fn create_find_and_paths() {
        let base = scratch("root");
        let root = Root { dir: base.clone() };
        let c = root
            .create(Config {
                image: "img".into(),
                ..Config::default()
            })
            .expect("create");
        assert_eq!(c.id.len(), 64);
        assert_eq!(root.find(&c.id).expect("exact").dir, c.dir);
        assert_eq!(root.find(&c.id[..12]).expect("prefix").id, c.id);
        assert!(root.find("../etc").is_err());
        assert!(root.find("").is_err());
        assert_eq!(c.config().expect("config").id, c.id);
        let mode = fs::metadata(c.dir.join("config.json"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        assert_eq!(c.host_path("/var/task").expect("task"), c.task_dir());
        assert_eq!(c.host_path("/var/task/").expect("task/"), c.task_dir());
        assert_eq!(
            c.host_path("/opt/bin").expect("opt/bin"),
            c.opt_dir().join("bin")
        );
        assert!(c.host_path("/var/taskforce").is_err());
        assert!(c.host_path("/etc").is_err());
        assert!(c.host_path("/opt/../etc").is_err());
        fs::remove_dir_all(base).expect("cleanup");
    }

    #[test]
    fn cp_keeps_modes_and_symlinks() {
        let base = scratch("cp");
        let src = base.join("src");
        fs::create_dir_all(src.join("lib")).expect("src");
        fs::write(src.join("bootstrap"), "#!/bin/sh\n").expect("write");
        fs::set_permissions(src.join("bootstrap"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        fs::write(src.join("lib/data.txt"), "x").expect("write");
        std::os::unix::fs::symlink("lib/data.txt", src.join("link")).expect("symlink");

        let dest = base.join("task");
        fs::create_dir_all(&dest).expect("dest");
        docker_cp(&format!("{}/.", src.display()), &dest).expect("cp contents");
        let mode = fs::metadata(dest.join("bootstrap"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_to_string(dest.join("lib/data.txt")).expect("read"),
            "x"
        );
        assert_eq!(
            fs::read_link(dest.join("link")).expect("link"),
            PathBuf::from("lib/data.txt")
        );
        // Again over the top: overwrites, including the symlink.
        docker_cp(&format!("{}/.", src.display()), &dest).expect("cp again");

        // A directory without `/.` nests under an existing destination.
        let nested = base.join("opt");
        fs::create_dir_all(&nested).expect("opt");
        docker_cp(&src.display().to_string(), &nested).expect("cp dir");
        assert!(nested.join("src/bootstrap").is_file());

        // A file into a directory.
        docker_cp(&src.join("bootstrap").display().to_string(), &nested).expect("cp file");
        assert!(nested.join("bootstrap").is_file());
        fs::remove_dir_all(base).expect("cleanup");
    }

    #[test]
    fn random_hex_shape() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16));
    }
}
