//! The Commands runner's contract: what the action function sends the runner function
//! (`functions/runner`) for one `Compute/AWS/Commands` run, what comes back, and the pure logic
//! both sides share (the script, the exported variables, the failure message).
//!
//! The runner holds nothing of the stack: its execution role has no permissions. It gets
//! presigned URLs for exactly the objects of this run (each input artifact's version to read,
//! each output artifact's key and the log's key to write) and, in the commands' environment,
//! the pipeline role's short-lived credentials. Whatever it answers is written by code the
//! pipeline's author controls (a command can take over the runner's sandbox), so the action
//! function treats the answer as untrusted input: bounded, checked, never trusted for more
//! than the commands could do themselves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// CodePipeline's limit on an action's output variables, in bytes.
pub const MAX_OUTPUT_VARIABLE_BYTES: usize = 122_880;

/// The end of the log kept in the action's record (the whole log goes to S3).
pub const LOG_TAIL_BYTES: usize = 8 * 1024;

/// Log lines quoted in the failure message.
const MESSAGE_LINES: usize = 10;

/// Bytes of log quoted in the failure message, at most.
const MESSAGE_LOG_BYTES: usize = 1500;

/// One run of a Commands action. Its `Debug` shows no environment value and no URL: they hold
/// credentials and presigned URLs that work for whoever has them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    /// The action execution id (`CODEBUILD_BUILD_ID` is `pipewright:<id>`).
    pub action_execution_id: String,
    /// The commands, variables resolved, run in one shell.
    pub commands: Vec<String>,
    /// The commands' environment besides what the runner sets itself (`PATH`, `HOME`, `TMPDIR`,
    /// `CODEBUILD_SRC_DIR*`): the action's variables, the execution id, the region and the
    /// pipeline role's credentials. Ordered; a later entry wins.
    pub environment: Vec<(String, String)>,
    /// Names exported as output variables when the shell ends.
    pub output_variables: Vec<String>,
    /// The input artifacts, the primary one first.
    pub inputs: Vec<RunInput>,
    /// The output artifacts.
    pub outputs: Vec<RunOutput>,
    /// Presigned PUT of the whole log.
    pub log_url: String,
    /// When the run must be over (milliseconds since the epoch): the caller's own deadline,
    /// less the time it needs to record the outcome. The runner stops the commands early
    /// enough to upload before it (or before its own deadline, if sooner).
    #[serde(default)]
    pub deadline_epoch_ms: Option<u64>,
}

impl std::fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRequest")
            .field("action_execution_id", &self.action_execution_id)
            .field("commands", &self.commands.len())
            .field(
                "environment",
                &self.environment.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("output_variables", &self.output_variables)
            .field(
                "inputs",
                &self.inputs.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field(
                "outputs",
                &self.outputs.iter().map(|o| &o.name).collect::<Vec<_>>(),
            )
            .field("deadline_epoch_ms", &self.deadline_epoch_ms)
            .finish_non_exhaustive()
    }
}

/// An input artifact: its name and a presigned GET of its zip (one S3 version).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInput {
    /// The artifact's name.
    pub name: String,
    /// Presigned GET.
    pub url: String,
}

/// An output artifact: its name, its `files` and a presigned PUT of its zip.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutput {
    /// The artifact's name.
    pub name: String,
    /// CodePipeline's `files` patterns, relative to the working directory.
    pub files: Vec<String>,
    /// Presigned PUT.
    pub url: String,
}

/// How the shell ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ShellEnd {
    /// It exited with `code`, or was ended by `signal`.
    Exited {
        /// The exit code.
        code: Option<i32>,
        /// The signal that ended it.
        signal: Option<i32>,
    },
    /// It was stopped before the runner's deadline.
    TimedOut,
}

/// Why a run failed before or after the commands (a download, an upload, a missing file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFailure {
    /// `JobFailed`, `PermissionError` or `ConfigurationError`.
    pub kind: String,
    /// What failed, for the action's error message.
    pub message: String,
}

/// What the runner answers (every member may be missing: a runner image of another release
/// still answers readably).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunResponse {
    /// How the shell ended; `None` when the run failed before the commands started.
    pub ended: Option<ShellEnd>,
    /// A failure outside the commands.
    pub failure: Option<RunFailure>,
    /// The end of the log.
    pub log_tail: String,
    /// The S3 version of the whole log, when it was written.
    pub log_version_id: Option<String>,
    /// The output variables (only when the shell exited 0).
    pub output_variables: BTreeMap<String, String>,
    /// The output artifacts written: name and S3 version id.
    pub outputs: Vec<RunOutputWritten>,
    /// Whether the runner's sandbox was left clean (every process it started gone, its
    /// temporary storage empty); when not, the runner ends its sandbox after answering.
    pub sandbox_clean: bool,
}

/// An output artifact the runner wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutputWritten {
    /// The artifact's name.
    pub name: String,
    /// The S3 version id the PUT returned.
    pub version_id: Option<String>,
}

impl ShellEnd {
    /// Why the commands failed, or `None` when they succeeded.
    pub fn failure(&self) -> Option<String> {
        match self {
            Self::Exited { code: Some(0), .. } => None,
            Self::Exited {
                code: Some(code), ..
            } => Some(format!("the commands failed with exit code {code}")),
            Self::Exited {
                signal: Some(signal),
                ..
            } => Some(format!("the commands were stopped by signal {signal}")),
            Self::Exited { .. } => Some("the commands ended without an exit code".into()),
            Self::TimedOut => Some(
                "the commands timed out: they were stopped before the runner's deadline".into(),
            ),
        }
    }
}

/// The `Instant` of a time given in milliseconds since the epoch (a Lambda deadline).
pub fn instant_from_epoch_ms(ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(ms.saturating_sub(now_ms))
}

/// Milliseconds since the epoch of `at` (an `Instant` in the future or now).
pub fn epoch_ms_of(at: Instant) -> u64 {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (epoch + at.saturating_duration_since(Instant::now())).as_millis() as u64
}

/// The script: an EXIT trap that writes the output variables (`NAME=value`, NUL-separated) to
/// `variables_file` whenever the shell ends, then the commands, one per line.
pub fn script_text(commands: &[String], output_names: &[String], variables_file: &str) -> String {
    let mut s = String::from("# Written by Pipewright: the action's commands, run in one shell.\n");
    if !output_names.is_empty() {
        s.push_str("__pipewright_exit() {\n  __pipewright_status=$?\n  {\n");
        for name in output_names {
            s.push_str(&format!("    printf '%s=%s\\0' {name} \"${{{name}-}}\"\n"));
        }
        s.push_str(&format!(
            "  }} > {} 2>/dev/null\n  exit \"$__pipewright_status\"\n}}\ntrap __pipewright_exit EXIT\n",
            shell_quote(variables_file)
        ));
    }
    for command in commands {
        s.push_str(command);
        s.push('\n');
    }
    s
}

/// `NAME=value` records separated by NUL, as the script's trap writes them; only `names` are
/// kept, and a name with no record exports as empty.
pub fn parse_exported(bytes: &[u8], names: &[String]) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for record in bytes.split(|b| *b == 0) {
        let text = String::from_utf8_lossy(record);
        if let Some((name, value)) = text.split_once('=') {
            if names.iter().any(|n| n == name) {
                found.insert(name.to_string(), value.to_string());
            }
        }
    }
    names
        .iter()
        .map(|n| (n.clone(), found.remove(n).unwrap_or_default()))
        .collect()
}

/// The bytes output variables take (names and values), as CodePipeline counts them.
pub fn output_variables_size(values: &BTreeMap<String, String>) -> usize {
    values.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A name a POSIX shell can hold: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The last `max` bytes of `text`, cut at a line start when it was cut at all.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let rest = &text[cut..];
    match rest.find('\n') {
        Some(nl) if nl + 1 < rest.len() => &rest[nl + 1..],
        _ => rest,
    }
}

/// `failure`, then the log's last lines (bounded), for the action's error message.
pub fn with_last_lines(failure: &str, log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let mut last = lines[lines.len().saturating_sub(MESSAGE_LINES)..].join("\n");
    if last.len() > MESSAGE_LOG_BYTES {
        let mut cut = last.len() - MESSAGE_LOG_BYTES;
        while !last.is_char_boundary(cut) {
            cut += 1;
        }
        last = format!("...{}", &last[cut..]);
    }
    if last.trim().is_empty() {
        format!("{failure} (the log is empty)")
    } else {
        format!("{failure}; last lines of the log:\n{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_variables_parse_and_unset_ones_are_empty() {
        let names = vec!["A".to_string(), "B".to_string(), "C".to_string()];
        let bytes = b"A=1\0B=x=y\nz\0OTHER=no\0";
        let vars = parse_exported(bytes, &names);
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "x=y\nz");
        assert_eq!(vars["C"], "");
        assert!(!vars.contains_key("OTHER"));
        assert_eq!(output_variables_size(&vars), 1 + 1 + 1 + 5 + 1);
    }

    #[test]
    fn shell_names() {
        assert!(is_shell_name("BUILD_ID"));
        assert!(is_shell_name("_x1"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn the_script_traps_exit_and_quotes_the_variables_file() {
        let s = script_text(
            &["echo hi".into(), "make".into()],
            &["OUT".into()],
            "/tmp/it's",
        );
        assert!(s.contains("trap __pipewright_exit EXIT"), "{s}");
        assert!(s.contains("printf '%s=%s\\0' OUT \"${OUT-}\""), "{s}");
        assert!(s.contains("> '/tmp/it'\\''s'"), "{s}");
        assert!(s.ends_with("echo hi\nmake\n"), "{s}");
        let plain = script_text(&["true".into()], &[], "/v");
        assert!(!plain.contains("trap"), "{plain}");
    }

    #[test]
    fn failure_message_quotes_the_last_lines() {
        let log: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let msg = with_last_lines("the commands failed with exit code 2", &log);
        assert!(
            msg.starts_with(
                "the commands failed with exit code 2; last lines of the log:\nline 21\n"
            ),
            "{msg}"
        );
        assert!(msg.ends_with("line 30"), "{msg}");
        let long = "é".repeat(2000);
        let msg = with_last_lines("f", &long);
        assert!(msg.len() < MESSAGE_LOG_BYTES + 100);
        assert_eq!(with_last_lines("f", ""), "f (the log is empty)");
    }

    #[test]
    fn requests_debug_without_secrets() {
        let request = RunRequest {
            action_execution_id: "a".into(),
            commands: vec!["echo".into()],
            environment: vec![("AWS_SECRET_ACCESS_KEY".into(), "s3cr3t".into())],
            output_variables: vec![],
            inputs: vec![RunInput {
                name: "Src".into(),
                url: "https://b/k?X-Amz-Signature=sig".into(),
            }],
            outputs: vec![],
            log_url: "https://b/log?X-Amz-Signature=sig2".into(),
            deadline_epoch_ms: None,
        };
        let shown = format!("{request:?}");
        assert!(
            shown.contains("AWS_SECRET_ACCESS_KEY") && shown.contains("Src"),
            "{shown}"
        );
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("sig"),
            "{shown}"
        );
        let answer: RunResponse = serde_json::from_str("{}").unwrap();
        assert_eq!(answer, RunResponse::default());
    }

    #[test]
    fn epoch_times_round_trip() {
        let at = Instant::now() + Duration::from_secs(30);
        let back = instant_from_epoch_ms(epoch_ms_of(at));
        let gap = if back > at { back - at } else { at - back };
        assert!(gap < Duration::from_millis(50), "{gap:?}");
    }

    #[test]
    fn tails_cut_at_a_line_start() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("aaaa\nbbbb\ncc", 7), "cc");
        assert_eq!(tail("ééé", 3), "é");
    }

    #[test]
    fn shell_ends_name_their_failure() {
        let ok = ShellEnd::Exited {
            code: Some(0),
            signal: None,
        };
        assert_eq!(ok.failure(), None);
        let failed = ShellEnd::Exited {
            code: Some(3),
            signal: None,
        };
        assert_eq!(
            failed.failure().unwrap(),
            "the commands failed with exit code 3"
        );
        assert!(ShellEnd::TimedOut.failure().unwrap().contains("timed out"));
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["type"], "exited");
    }
}
