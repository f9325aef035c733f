//! What keeps one run from reaching the next: every process a run started is killed and every
//! file it left in temporary storage is removed before the runner answers.
//!
//! The runner is the subreaper of everything the commands start (`PR_SET_CHILD_SUBREAPER`):
//! a process that leaves its session (`setsid`) or whose parent exits is re-parented to the
//! runner, so "every process started by the run" is "every descendant of the runner", found in
//! `/proc`. After they are killed, any other process of the runner's user that is not one of
//! its ancestors (a process that escaped some other way) leaves the sandbox marked unclean.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Rounds of kill-and-reap before giving up on a process tree that keeps forking.
const KILL_ROUNDS: usize = 200;

/// Make the runner non-dumpable (no `/proc/<pid>/environ` or `mem`, no ptrace by processes of
/// the same user) and the subreaper of the processes the commands start.
pub fn harden_self() {
    // SAFETY: prctl with integer arguments only changes flags of this process.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Where runs get their folders (`$TMPDIR`, `/tmp` on Lambda): emptied after every run.
pub fn temp_root() -> PathBuf {
    std::env::temp_dir()
}

/// Kill every process the run left, empty the temporary storage, and say whether the sandbox
/// is clean: no process of the runner's user but the runner and its ancestors, nothing in
/// temporary storage.
pub fn sweep() -> bool {
    let processes_gone = kill_descendants();
    let strays = stray_processes();
    if !strays.is_empty() {
        eprintln!("processes outside the run's tree are still alive: {strays:?}");
    }
    let mut files_gone = true;
    // `/dev/shm` only where the runner has a machine of its own (Lambda, a local sandbox):
    // there its temporary storage is `/tmp`. Run as a plain process on a host, it is the host's.
    let mut dirs = vec![temp_root()];
    if temp_root() == Path::new("/tmp") {
        dirs.push(PathBuf::from("/dev/shm"));
    }
    for dir in dirs {
        if let Err(e) = empty_dir(&dir) {
            eprintln!("{}: {e}", dir.display());
            files_gone = false;
        }
    }
    processes_gone && strays.is_empty() && files_gone
}

/// SIGKILL every descendant and reap them, round after round, until none is left; false when
/// some survived [`KILL_ROUNDS`].
pub fn kill_descendants() -> bool {
    let me = std::process::id() as i32;
    for _ in 0..KILL_ROUNDS {
        reap();
        let descendants = descendants_of(me, &parents());
        if descendants.is_empty() {
            return true;
        }
        for pid in descendants {
            // SAFETY: kill(2) on a pid read from /proc as our descendant.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    reap();
    descendants_of(me, &parents()).is_empty()
}

/// Reap every exited child (re-parented orphans included) without blocking.
fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child; status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

/// Every visible process: pid → (parent pid, uid, state).
fn processes() -> BTreeMap<i32, (i32, u32, char)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .map(str::to_string)
        };
        let ppid = field("PPid:").and_then(|v| v.parse().ok()).unwrap_or(0);
        let uid = field("Uid:")
            .and_then(|v| v.split_whitespace().next().and_then(|u| u.parse().ok()))
            .unwrap_or(u32::MAX);
        let state = field("State:")
            .and_then(|v| v.chars().next())
            .unwrap_or('?');
        out.insert(pid, (ppid, uid, state));
    }
    out
}

fn parents() -> BTreeMap<i32, i32> {
    processes()
        .into_iter()
        .filter(|(_, (_, _, state))| !matches!(state, 'Z' | 'X'))
        .map(|(pid, (ppid, _, _))| (pid, ppid))
        .collect()
}

/// The live descendants of `root` in a pid → parent map.
pub fn descendants_of(root: i32, parents: &BTreeMap<i32, i32>) -> Vec<i32> {
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&pid, &ppid) in parents {
            if ppid == p && pid != root && found.insert(pid) {
                frontier.push(pid);
            }
        }
    }
    found.into_iter().collect()
}

/// Live processes of the runner's user that are neither the runner nor one of its ancestors.
fn stray_processes() -> Vec<i32> {
    let me = std::process::id() as i32;
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let all = processes();
    let mut ancestors = BTreeSet::from([me]);
    let mut p = me;
    while let Some((ppid, _, _)) = all.get(&p) {
        if *ppid <= 0 || !ancestors.insert(*ppid) {
            break;
        }
        p = *ppid;
    }
    all.into_iter()
        .filter(|(pid, (_, u, state))| {
            *u == uid && !ancestors.contains(pid) && !matches!(state, 'Z' | 'X')
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Remove everything inside `dir` (not `dir` itself); a missing `dir` is empty.
pub fn empty_dir(dir: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_writable(&path);
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Give the owner write and search permission on every folder under `dir`, so a command that
/// made a folder read-only cannot keep its files.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    let _ = std::fs::set_permissions(dir, perms);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tests that start and kill processes take turns: the sweep kills every descendant of the
    /// test process.
    pub(crate) static PROCESSES: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn descendants_follow_the_tree() {
        let parents = BTreeMap::from([(10, 1), (11, 10), (12, 11), (13, 1), (14, 12)]);
        assert_eq!(descendants_of(10, &parents), vec![11, 12, 14]);
        assert!(descendants_of(13, &parents).is_empty());
    }

    #[test]
    fn empty_dir_removes_read_only_folders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("a/b");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        std::fs::write(dir.path().join("top"), "y").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        empty_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        empty_dir(&dir.path().join("missing")).unwrap();
    }

    #[test]
    fn a_setsid_daemon_is_killed_by_the_subreaper() {
        let _one = PROCESSES.lock().unwrap_or_else(|e| e.into_inner());
        harden_self();
        let marker = tempfile::tempdir().unwrap();
        let file = marker.path().join("alive");
        // A daemon that leaves the session and whose parent exits at once.
        let script = format!(
            "setsid sh -c 'sleep 2; touch {}' </dev/null >/dev/null 2>&1 &",
            file.display()
        );
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(200));
        let me = std::process::id() as i32;
        assert!(
            !descendants_of(me, &parents()).is_empty(),
            "the daemon was re-parented to the subreaper"
        );
        assert!(kill_descendants());
        std::thread::sleep(Duration::from_secs(3));
        assert!(!file.exists(), "the daemon outlived the sweep");
    }
}
