//! Process groups, signals and liveness, over `libc`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the SIGTERM/SIGINT/SIGHUP handler of the `serve` process.
static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_signal: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Route SIGTERM, SIGINT and SIGHUP to [`terminate_requested`] instead of
/// ending the process, so `serve` can take its bootstrap down with it.
pub fn install_terminate_handler() {
    let handler = on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// Whether a terminating signal has arrived.
pub fn terminate_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// Send `signal` to the process group `pgid`. Errors (the group is gone)
/// are ignored.
pub fn signal_group(pgid: i32, signal: libc::c_int) {
    if pgid > 1 {
        // SAFETY: kill with a negative pid addresses a process group; any
        // value is safe to pass.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Send `signal` to the single process `pid`.
pub fn signal_process(pid: i32, signal: libc::c_int) {
    if pid > 1 {
        // SAFETY: as above, for one process.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// True when `pid` names a live process. A zombie (exited, not yet reaped by
/// whoever inherited it) counts as gone.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only probes for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Whether `pid` still looks like the process we recorded, so a recycled pid
/// is never signalled: its command line has to mention `marker`. Without a
/// readable `/proc` (not Linux) the recorded pid is trusted.
pub fn cmdline_mentions(pid: i32, marker: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => raw.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Whether `pid` runs in `dir` (its working directory), the check for a
/// recorded bootstrap pid. Trusted without `/proc`.
pub fn cwd_is(pid: i32, dir: &Path) -> bool {
    match std::fs::read_link(format!("/proc/{pid}/cwd")) {
        Ok(cwd) => cwd == dir || dir.canonicalize().is_ok_and(|d| d == cwd),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Poll until `pid` is gone or `timeout` passes; returns whether it is gone.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !pid_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `pre_exec` hook body: detach into a new session (and process group) of
/// our own, away from the caller's terminal and signals.
pub fn new_session() -> std::io::Result<()> {
    // SAFETY: setsid is async-signal-safe; it fails only if we already lead
    // a process group, which a freshly forked child does not.
    if unsafe { libc::setsid() } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-5));
        let argv0 = std::env::args().next().unwrap_or_default();
        assert!(cmdline_mentions(std::process::id() as i32, &argv0));
        assert!(!cmdline_mentions(
            std::process::id() as i32,
            "no-such-argument"
        ));
    }

    #[test]
    fn reaped_child_is_gone_and_zombie_counts_as_gone() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        // Unreaped: a zombie once it exits.
        assert!(wait_gone(pid, Duration::from_secs(5)));
        let _ = child.wait();
        assert!(!pid_alive(pid));
    }
}
