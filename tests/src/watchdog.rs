//! The watchdog: the test run fails at once, with evidence, when the emulator stops answering.
//!
//! A hung emulator (fakecloud 0.51's S3 deadlocked once under concurrent CopyObject and
//! GetObject, see `docs/local-stack.md`) would otherwise leave every test polling until its own
//! deadline and CI waiting out its limit. A thread probes the emulator every
//! [`PROBE_EVERY`] — its health endpoint and an S3 call, each with a short timeout — and after
//! [`MISSES_ALLOWED`] failed probes in a row prints the emulator's thread stacks (gdb) and the
//! tail of its log, and ends the test process (the stack is stopped on the way out).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pipewright_local::LocalStack;

/// Time between probes.
const PROBE_EVERY: Duration = Duration::from_secs(5);

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed probes in a row before the run is failed (about a minute without an answer).
const MISSES_ALLOWED: u32 = 5;

/// The exit status of a run the watchdog ended.
const EXIT_STATUS: i32 = 70;

/// Start watching the emulator of `stack`, whose files are in `state_dir`.
pub(crate) fn start(stack: &LocalStack, state_dir: &Path) {
    let endpoint = stack.emulator.endpoint.clone();
    let pid = stack.emulator.pid;
    let bucket = stack.outputs.get("ArtifactBucketName").cloned();
    let log = state_dir.join("fakecloud.log");
    std::thread::Builder::new()
        .name("emulator-watchdog".into())
        .spawn(move || watch(&endpoint, pid, bucket.as_deref(), &log))
        .expect("start the watchdog thread");
}

fn watch(endpoint: &str, pid: u32, bucket: Option<&str>, log: &Path) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(PROBE_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut misses = 0;
    loop {
        std::thread::sleep(PROBE_EVERY);
        match probe(&agent, endpoint, bucket) {
            Ok(()) => misses = 0,
            Err(why) => {
                misses += 1;
                report(&format!(
                    "watchdog: the emulator did not answer ({misses}/{MISSES_ALLOWED}): {why}"
                ));
                // A process that is gone will not come back: say so at once, with its log.
                if misses >= MISSES_ALLOWED || !pipewright_local::emulator::is_alive(pid) {
                    fail(pid, log, &why);
                }
            }
        }
    }
}

/// One probe: the health endpoint, then a read of the artifact bucket (S3 holds the lock that
/// deadlocked; the health endpoint alone can stay green while S3 hangs).
fn probe(agent: &ureq::Agent, endpoint: &str, bucket: Option<&str>) -> Result<(), String> {
    let health = format!("{endpoint}/_fakecloud/health");
    match agent.get(&health).call() {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => return Err(format!("GET {health}: HTTP {}", r.status())),
        Err(e) => return Err(format!("GET {health}: {e}")),
    }
    if let Some(bucket) = bucket {
        // Any HTTP answer (even 403 for an unsigned request) shows S3 is serving.
        let url = format!("{endpoint}/{bucket}?max-keys=1");
        agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
    }
    Ok(())
}

fn fail(pid: u32, log: &Path, why: &str) -> ! {
    report(&format!(
        "\n==== watchdog: the emulator (pid {pid}) stopped answering: {why}"
    ));
    report(&format!("==== the process: {}", process_state(pid)));
    report(&format!("==== the machine: {}", memory_available()));
    report(&format!("==== disk space (df -h):\n{}", disk_free(log)));
    if pipewright_local::emulator::is_alive(pid) {
        report(&format!("==== its threads (gdb):\n{}", thread_stacks(pid)));
    }
    report(&format!(
        "==== the last lines of {}:\n{}",
        log.display(),
        pipewright_local::emulator::tail(log, 60)
    ));
    // The state folder goes at exit; keep the whole log beside it.
    if let Some(kept) = log
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("e2e-emulator-failed.log"))
    {
        if std::fs::copy(log, &kept).is_ok() {
            report(&format!("==== the whole log is kept in {}", kept.display()));
        }
    }
    report("==== watchdog: failing the test run instead of waiting for its deadline");
    // exit(3) runs the atexit handler that stops the stack.
    std::process::exit(EXIT_STATUS)
}

/// Write a line to the process's standard error itself. `eprintln!` would not do: the test
/// harness captures it for the test whose thread started the watchdog, and a run ended by
/// `exit` never prints captured output (CI then shows only the failed tests, not why).
fn report(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
    let _ = stderr.flush();
}

/// Whether process `pid` is alive, and its state and memory (from `/proc`).
fn process_state(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status
            .lines()
            .filter(|l| {
                ["State:", "VmRSS:", "VmPeak:", "Threads:"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(_) => format!(
            "gone, {} (see the end of its log; an out-of-memory kill, signal 9, leaves no line \
             there)",
            pipewright_local::emulator::how_it_ended(pid).unwrap_or_else(|| "how unknown".into())
        ),
    }
}

/// `df -h` of the file systems of the state folder and /tmp (a full disk kills the emulator
/// without a word: its log is on it).
fn disk_free(log: &Path) -> String {
    let dir = log.parent().unwrap_or(Path::new("."));
    match Command::new("df").arg("-h").arg(dir).arg("/tmp").output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("df could not run: {e}"),
    }
}

/// The machine's available memory (`/proc/meminfo`).
fn memory_available() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .map(|m| {
            m.lines()
                .filter(|l| l.starts_with("MemTotal:") || l.starts_with("MemAvailable:"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|e| format!("/proc/meminfo: {e}"))
}

/// Every thread's backtrace of process `pid`, as gdb prints them (or why there are none).
fn thread_stacks(pid: u32) -> String {
    let out = Command::new("timeout")
        .args(["120", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => format!(
            "gdb failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("gdb could not run: {e}"),
    }
}
