//! A function's sandbox, as isolated as a Lambda microVM wherever this machine allows: the
//! bootstrap runs under bubblewrap (`bwrap`) with
//!
//! - its own PID namespace (it sees its own processes only; when the sandbox's init dies, the
//!   kernel kills everything left in it, `setsid` daemons included), IPC and UTS namespaces;
//! - its own mount namespace holding only the host's system folders read-only (`/usr`, `/etc`
//!   and the `/bin`, `/lib`, `/sbin` links), its code at `/var/task`, `/var/runtime` and `/opt`
//!   read-only, a private writable `/tmp` (the container's `tmp` folder), fresh `/proc` and
//!   `/dev`: no other function's folders, no state of the stack, nothing of the workspace;
//! - no capabilities (`--cap-drop ALL`), so the root user of these machines cannot mount,
//!   trace or signal its way out.
//!
//! The network is the host's: functions reach the emulator and their Runtime API on loopback,
//! as Lambda functions reach AWS.
//!
//! `PIPEWRIGHT_LAMBDA_SANDBOX`: `bwrap` (the default) requires bubblewrap and fails the
//! function's start without it, naming the fix; `off` runs the bootstrap as a plain process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// Environment variable choosing the sandbox.
pub const SANDBOX_ENV: &str = "PIPEWRIGHT_LAMBDA_SANDBOX";

/// Where a function's folders appear inside its sandbox (Lambda's own paths).
pub const TASK: &str = "/var/task";
/// `/var/runtime`.
pub const RUNTIME: &str = "/var/runtime";
/// `/opt`.
pub const OPT: &str = "/opt";
/// `/tmp`.
pub const TMP: &str = "/tmp";

/// The host folders of one container, mapped into its sandbox.
#[derive(Debug, Clone)]
pub struct Mounts {
    pub task: PathBuf,
    pub runtime: PathBuf,
    pub opt: PathBuf,
    pub tmp: PathBuf,
}

/// How bootstraps are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    /// Under bubblewrap at this path.
    Bwrap(PathBuf),
    /// As a plain process (`PIPEWRIGHT_LAMBDA_SANDBOX=off`).
    Off,
    /// Bubblewrap was asked for and is not installed.
    Missing,
}

impl Sandbox {
    /// The sandbox the environment asks for.
    pub fn from_env() -> Sandbox {
        match std::env::var(SANDBOX_ENV).ok().as_deref() {
            Some("off") => Sandbox::Off,
            _ => find_in_path("bwrap").map_or(Sandbox::Missing, Sandbox::Bwrap),
        }
    }

    /// Whether bootstraps see Lambda's paths (`/var/task`, `/tmp`, ...) rather than the host's.
    pub fn isolated(&self) -> bool {
        !matches!(self, Sandbox::Off)
    }

    /// The command that starts `bootstrap` (a host path under one of `mounts`) in the sandbox.
    pub fn command(&self, bootstrap: &Path, mounts: &Mounts) -> Result<Command, String> {
        match self {
            Sandbox::Off => {
                let mut c = Command::new(bootstrap);
                c.current_dir(&mounts.task);
                Ok(c)
            }
            Sandbox::Missing => Err(format!(
                "bubblewrap (bwrap) is not installed: function sandboxes need it for their own \
                 PID and mount namespaces (apt-get install bubblewrap, or scripts/install-tools); \
                 {SANDBOX_ENV}=off runs functions unisolated"
            )),
            Sandbox::Bwrap(bwrap) => {
                let inside = inside_path(bootstrap, mounts).ok_or_else(|| {
                    format!("{} is not in the function's folders", bootstrap.display())
                })?;
                let mut c = Command::new(bwrap);
                c.args(bwrap_args(mounts)).arg(inside);
                // The outer bwrap's own folder: what `stop` checks a recorded pid against.
                c.current_dir(&mounts.task);
                Ok(c)
            }
        }
    }
}

/// A request to the spawner thread: the command, and where its child goes.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Start `command` from one thread that lives as long as the process.
///
/// bubblewrap's `--die-with-parent` ties the sandbox's life to its parent *thread* (the
/// kernel's parent-death signal fires when the thread that forked it ends), and the server
/// starts bootstraps from short-lived request threads: spawned from those, a sandbox would be
/// killed mid-invocation. From this thread, the sandbox dies with the server and not before.
pub fn spawn(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("sandbox-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("starting the sandbox spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the sandbox spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the sandbox spawner thread is gone"))?
}

/// bubblewrap's arguments for a sandbox over `mounts` (the command comes after).
pub fn bwrap_args(mounts: &Mounts) -> Vec<String> {
    let mut args = system_args();
    for (host, inside, flag) in [
        (&mounts.task, TASK, "--ro-bind"),
        (&mounts.runtime, RUNTIME, "--ro-bind"),
        (&mounts.opt, OPT, "--ro-bind"),
        (&mounts.tmp, TMP, "--bind"),
    ] {
        args.extend([flag.into(), host.display().to_string(), inside.into()]);
    }
    args.extend(["--proc", "/proc", "--dev", "/dev", "--chdir", TASK].map(String::from));
    args
}

/// The folders of a CodeBuild build container, mapped into its sandbox: `/codebuild` (the
/// sources and the build's working directory), `/tmp` and `/root`, all writable and its own.
#[derive(Debug, Clone)]
pub struct BuildMounts {
    pub codebuild: PathBuf,
    pub tmp: PathBuf,
    pub home: PathBuf,
}

/// The `PATH` of a build's commands (the one of CodeBuild's Linux images).
const BUILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// bubblewrap's arguments for one command of a build container (the command comes after): the
/// same isolation as a function's sandbox, the container's own folders writable, and an
/// environment of `env` only (nothing of the emulator's own environment leaks in).
pub fn build_args(mounts: &BuildMounts, workdir: &str, env: &[(String, String)]) -> Vec<String> {
    let mut args = system_args();
    for (host, inside) in [
        (&mounts.codebuild, "/codebuild"),
        (&mounts.tmp, TMP),
        (&mounts.home, "/root"),
    ] {
        args.extend(["--bind".into(), host.display().to_string(), inside.into()]);
    }
    args.extend(["--proc", "/proc", "--dev", "/dev", "--chdir", workdir].map(String::from));
    args.push("--clearenv".into());
    for (key, value) in [("PATH", BUILD_PATH), ("HOME", "/root")]
        .into_iter()
        .chain(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        args.extend(["--setenv".into(), key.into(), value.into()]);
    }
    args
}

/// The namespaces, capabilities and read-only system folders every sandbox starts from.
fn system_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        "--ro-bind",
        "/etc",
        "/etc",
    ]
    .map(String::from)
    .to_vec();
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let path = Path::new(top);
        match std::fs::read_link(path) {
            Ok(target) => {
                args.extend(["--symlink".into(), target.display().to_string(), top.into()])
            }
            Err(_) if path.is_dir() => {
                args.extend(["--ro-bind".into(), top.into(), top.into()]);
            }
            Err(_) => {}
        }
    }
    args
}

/// Where the host path `path` appears inside the sandbox.
pub fn inside_path(path: &Path, mounts: &Mounts) -> Option<PathBuf> {
    [
        (&mounts.task, TASK),
        (&mounts.runtime, RUNTIME),
        (&mounts.opt, OPT),
        (&mounts.tmp, TMP),
    ]
    .into_iter()
    .find_map(|(host, inside)| {
        path.strip_prefix(host)
            .ok()
            .map(|rest| Path::new(inside).join(rest))
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(root: &Path) -> Mounts {
        Mounts {
            task: root.join("task"),
            runtime: root.join("runtime"),
            opt: root.join("opt"),
            tmp: root.join("tmp"),
        }
    }

    #[test]
    fn host_paths_map_to_lambdas() {
        let m = mounts(Path::new("/state/c1"));
        assert_eq!(
            inside_path(Path::new("/state/c1/task/bootstrap"), &m).unwrap(),
            Path::new("/var/task/bootstrap")
        );
        assert_eq!(
            inside_path(Path::new("/state/c1/opt/bootstrap"), &m).unwrap(),
            Path::new("/opt/bootstrap")
        );
        assert_eq!(inside_path(Path::new("/elsewhere/bootstrap"), &m), None);
        let args = bwrap_args(&m).join(" ");
        assert!(args.contains("--unshare-pid"), "{args}");
        assert!(args.contains("--cap-drop ALL"), "{args}");
        assert!(
            args.contains("--ro-bind /state/c1/task /var/task"),
            "{args}"
        );
        assert!(args.contains("--bind /state/c1/tmp /tmp"), "{args}");
        assert!(!args.contains("/state/c1 "), "{args}");
    }

    /// What a function sees, run for real when bubblewrap is installed.
    #[test]
    fn a_sandbox_sees_its_own_processes_and_tmp_only() {
        let Sandbox::Bwrap(bwrap) = Sandbox::from_env() else {
            eprintln!("bubblewrap is not installed: skipped");
            return;
        };
        let root = tempfile::tempdir().unwrap();
        let m = mounts(root.path());
        for dir in [&m.task, &m.runtime, &m.opt, &m.tmp] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let script = m.task.join("bootstrap");
        std::fs::write(
            &script,
            "#!/bin/sh\nls /proc | grep -c '^[0-9]'\ntouch /tmp/mine\nls /tmp\ntouch /var/task/x 2>/dev/null && echo task-writable\nls /work /root 2>/dev/null | head -1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let out = Sandbox::Bwrap(bwrap)
            .command(&script, &m)
            .unwrap()
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let processes: usize = lines[0].parse().unwrap();
        assert!(processes <= 4, "the sandbox sees {processes} processes");
        assert_eq!(lines[1], "mine");
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            m.tmp.join("mine").exists(),
            "/tmp is the container's tmp folder"
        );
    }
}
