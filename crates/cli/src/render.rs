//! Text rendering of the read commands, pure: plain structs in ([`crate::views`] fills them from
//! SDK responses), strings out. Times are epoch seconds and "now" is a parameter, so every output
//! can be snapshot-tested (`tests/snapshots/*.txt`).

use std::fmt::Write as _;

/// What `pipewright watch` shows of one execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchState {
    /// The pipeline's name.
    pub pipeline: String,
    /// The execution watched.
    pub execution_id: String,
    /// `PipelineExecutionStatus` (`InProgress`, `Succeeded`, ...).
    pub status: String,
    /// The execution's status summary, when it has one.
    pub summary: Option<String>,
    /// What started it (`StartPipelineExecution`, `CloudWatchEvent`, ...).
    pub trigger: Option<String>,
    /// When it started.
    pub started: Option<f64>,
    /// When it finished (its last update, once it is no longer running).
    pub finished: Option<f64>,
    /// The stages, in pipeline order.
    pub stages: Vec<WatchStage>,
}

/// One stage of a watched execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchStage {
    /// The stage's name.
    pub name: String,
    /// `StageExecutionStatus` in this execution; none: not reached.
    pub status: Option<String>,
    /// The actions, in declaration order.
    pub actions: Vec<WatchAction>,
}

/// One action of a watched execution (its latest attempt in that execution).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchAction {
    /// The action's name.
    pub name: String,
    /// `ActionExecutionStatus`; none: not started.
    pub status: Option<String>,
    /// When it started.
    pub started: Option<f64>,
    /// Its last status change.
    pub updated: Option<f64>,
    /// Its summary (external execution summary).
    pub summary: Option<String>,
    /// Its error message, when it failed.
    pub error: Option<String>,
    /// The approval token, while an approval waits.
    pub token: Option<String>,
}

/// What `pipewright status` shows (GetPipelineState).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusView {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its current version.
    pub version: Option<i32>,
    /// Its stages.
    pub stages: Vec<StatusStage>,
}

/// A stage in `pipewright status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusStage {
    /// The stage's name.
    pub name: String,
    /// Its latest execution's status; none: never ran.
    pub status: Option<String>,
    /// Its latest execution's pipeline execution id.
    pub execution_id: Option<String>,
    /// Its actions.
    pub actions: Vec<StatusAction>,
}

/// An action in `pipewright status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusAction {
    /// The action's name.
    pub name: String,
    /// Its latest execution's status; none: never ran.
    pub status: Option<String>,
    /// Its last status change.
    pub last_change: Option<f64>,
    /// Its summary.
    pub summary: Option<String>,
    /// Its error message.
    pub error: Option<String>,
    /// The approval token, while an approval waits.
    pub token: Option<String>,
}

/// A row of `pipewright history` (ListPipelineExecutions).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryRow {
    /// The execution id.
    pub execution_id: String,
    /// `PipelineExecutionStatus`.
    pub status: String,
    /// The trigger type.
    pub trigger: Option<String>,
    /// When it started.
    pub started: Option<f64>,
    /// Its last update.
    pub updated: Option<f64>,
    /// Its status summary.
    pub summary: Option<String>,
}

impl HistoryRow {
    /// How long the execution has taken: until `now` while it runs, else until its last update.
    fn duration(&self, now: f64) -> String {
        let end = if is_running(Some(&self.status)) {
            Some(now)
        } else {
            self.updated
        };
        match (self.started, end) {
            (Some(start), Some(end)) => fmt_duration(end - start),
            _ => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small pieces.

const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// ANSI styles, or nothing.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// The color of a status word.
    fn status(self, status: Option<&str>, text: &str) -> String {
        match status {
            Some("Succeeded") => self.paint("32", text),
            Some("Failed") => self.paint("31", text),
            Some("InProgress") => self.paint("33", text),
            Some("Stopped" | "Stopping" | "Abandoned" | "Cancelled" | "Superseded") => {
                self.paint("35", text)
            }
            _ => self.paint("2", text),
        }
    }
}

/// The status symbol; `frame` animates the running one (none: a fixed symbol).
fn symbol(status: Option<&str>, frame: Option<usize>) -> char {
    match status {
        Some("Succeeded") => '✔',
        Some("Failed") => '✖',
        Some("InProgress") => frame.map_or('…', |f| SPINNER[f % SPINNER.len()]),
        Some("Stopped" | "Stopping" | "Abandoned" | "Cancelled" | "Superseded") => '■',
        Some("Skipped") => '↷',
        _ => '·',
    }
}

fn is_running(status: Option<&str>) -> bool {
    matches!(status, Some("InProgress" | "Stopping"))
}

/// `2024-05-01 12:00:03` (UTC).
pub fn fmt_time(epoch: f64) -> String {
    chrono::DateTime::from_timestamp(epoch.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{epoch}"))
}

/// `0.4s`, `42s`, `1m 05s`, `2h 03m`.
pub fn fmt_duration(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 60.0 {
        format!("{}s", secs.floor() as u64)
    } else if secs < 3600.0 {
        let s = secs.floor() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).floor() as u64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

/// One line of free text: newlines folded, long text cut.
fn one_line(text: &str, max: usize) -> String {
    let folded: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() > max {
        let cut: String = folded.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        folded
    }
}

fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(n)))
}

/// `styled` (the styled form of `plain`) followed by the blanks that pad `plain` to `width`:
/// padding stays outside the escapes, so a line's trailing blanks can be trimmed.
fn padded(styled: String, plain: &str, width: usize) -> String {
    let n = plain.chars().count();
    format!("{styled}{}", " ".repeat(width.saturating_sub(n)))
}

/// A table: columns padded to their widest cell, two spaces apart, no trailing blanks.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                line.push_str(&pad(cell, widths[i] + 2));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// status

/// `pipewright status`: one row per stage (its latest execution) and per action.
pub fn render_status(view: &StatusView) -> String {
    let mut out = format!("Pipeline {}", view.pipeline);
    if let Some(v) = view.version {
        let _ = write!(out, ", version {v}");
    }
    out.push_str("\n\n");
    let dash = || "-".to_owned();
    let mut rows = Vec::new();
    for stage in &view.stages {
        rows.push(vec![
            stage.name.clone(),
            String::new(),
            stage.status.clone().unwrap_or_else(dash),
            String::new(),
            stage.execution_id.clone().unwrap_or_default(),
        ]);
        for action in &stage.actions {
            let details = if let Some(token) = &action.token {
                format!("waiting for approval, token {token}")
            } else if let Some(error) = &action.error {
                format!("error: {}", one_line(error, 200))
            } else {
                action
                    .summary
                    .as_deref()
                    .map(|s| one_line(s, 200))
                    .unwrap_or_default()
            };
            rows.push(vec![
                String::new(),
                action.name.clone(),
                action.status.clone().unwrap_or_else(dash),
                action.last_change.map(fmt_time).unwrap_or_default(),
                details,
            ]);
        }
    }
    out.push_str(&table(
        &[
            "STAGE",
            "ACTION",
            "STATUS",
            "LAST CHANGE (UTC)",
            "EXECUTION / DETAILS",
        ],
        &rows,
    ));
    out
}

// ---------------------------------------------------------------------------------------------
// history

/// `pipewright history`: one row per execution, newest first. `now` times running ones.
pub fn render_history(rows: &[HistoryRow], now: f64) -> String {
    if rows.is_empty() {
        return "no executions\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let duration = r.duration(now);
            vec![
                r.execution_id.clone(),
                r.status.clone(),
                r.trigger.clone().unwrap_or_default(),
                r.started.map(fmt_time).unwrap_or_default(),
                duration,
                r.summary
                    .as_deref()
                    .map(|s| one_line(s, 120))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "EXECUTION",
            "STATUS",
            "TRIGGER",
            "STARTED (UTC)",
            "DURATION",
            "SUMMARY",
        ],
        &cells,
    )
}

/// A row of `pipewright list`: a pipeline and its latest execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRow {
    /// The pipeline.
    pub pipeline: String,
    /// Its execution mode.
    pub mode: Option<String>,
    /// Its latest execution, if it ever ran.
    pub latest: Option<HistoryRow>,
}

/// `pipewright list`: every pipeline with its latest execution.
pub fn render_list(rows: &[ListRow], now: f64) -> String {
    if rows.is_empty() {
        return "no pipelines\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let Some(latest) = &r.latest else {
                return vec![
                    r.pipeline.clone(),
                    r.mode.clone().unwrap_or_default(),
                    "never run".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ];
            };
            let duration = latest.duration(now);
            vec![
                r.pipeline.clone(),
                r.mode.clone().unwrap_or_default(),
                latest.status.clone(),
                latest.execution_id.clone(),
                latest.started.map(fmt_time).unwrap_or_default(),
                duration,
            ]
        })
        .collect();
    table(
        &[
            "PIPELINE",
            "MODE",
            "LATEST",
            "EXECUTION",
            "STARTED (UTC)",
            "DURATION",
        ],
        &cells,
    )
}

// ---------------------------------------------------------------------------------------------
// watch

/// A line of the watch view with the identity it is redrawn under (for append mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchLine {
    /// `header`, `stage:<name>`, `action:<stage>.<name>`, or empty for a spacer.
    pub key: String,
    /// The text, without a newline.
    pub text: String,
}

/// The live view of `state`: a header, then each stage and its actions with status, elapsed time
/// (running ones against `now`, with spinner frame `frame`) and the failing action's error.
pub fn render_watch(state: &WatchState, now: f64, frame: usize, color: bool) -> String {
    watch_lines(state, now, Some(frame), color)
        .into_iter()
        .map(|l| l.text + "\n")
        .collect()
}

/// The lines of the watch view. With `frame` none (append mode, not a terminal) running items
/// show no ticking time, so a line changes only when its state does.
pub fn watch_lines(
    state: &WatchState,
    now: f64,
    frame: Option<usize>,
    color: bool,
) -> Vec<WatchLine> {
    let style = Style { color };
    let live = frame.is_some();
    let mut lines = Vec::new();

    // Header: pipeline, execution, status, elapsed, trigger.
    let status = Some(state.status.as_str());
    let elapsed = match (state.started, state.finished) {
        (Some(start), Some(end)) if !is_running(status) => Some(fmt_duration(end - start)),
        (Some(start), _) if live && is_running(status) => Some(fmt_duration(now - start)),
        _ => None,
    };
    lines.push(WatchLine {
        key: "title".into(),
        text: format!(
            "{}  {}",
            style.paint("1", &state.pipeline),
            style.paint("2", &state.execution_id)
        ),
    });
    let mut header = format!(
        "{} {}",
        style.status(status, &symbol(status, frame).to_string()),
        style.status(status, &state.status)
    );
    if let Some(elapsed) = elapsed {
        let _ = write!(header, "  {elapsed}");
    }
    if let Some(started) = state.started {
        let _ = write!(header, "  started {} UTC", fmt_time(started));
    }
    if let Some(trigger) = &state.trigger {
        let _ = write!(header, "  by {trigger}");
    }
    if let Some(summary) = state.summary.as_deref().filter(|s| !s.is_empty()) {
        if !is_running(status) {
            let _ = write!(header, "  {}", one_line(summary, 160));
        }
    }
    lines.push(WatchLine {
        key: "header".into(),
        text: header,
    });
    lines.push(WatchLine {
        key: String::new(),
        text: String::new(),
    });

    // Appended lines stand alone, so there an action is named with its stage.
    let label = |stage: &WatchStage, action: &WatchAction| {
        if live {
            action.name.clone()
        } else {
            format!("{}.{}", stage.name, action.name)
        }
    };
    let width = state
        .stages
        .iter()
        .flat_map(|s| {
            std::iter::once(s.name.chars().count())
                .chain(s.actions.iter().map(|a| label(s, a).chars().count() + 4))
        })
        .max()
        .unwrap_or(0);
    for stage in &state.stages {
        let status = stage.status.as_deref();
        let started = stage
            .actions
            .iter()
            .filter_map(|a| a.started)
            .min_by(f64::total_cmp);
        let ended = if is_running(status) {
            live.then_some(now)
        } else {
            stage
                .actions
                .iter()
                .filter_map(|a| a.updated)
                .max_by(f64::total_cmp)
        };
        let elapsed = match (started, ended, status) {
            (Some(s), Some(e), Some(_)) => fmt_duration(e - s),
            _ => String::new(),
        };
        let word = status.unwrap_or(if live { "" } else { "pending" });
        let text = format!(
            "{} {}  {} {:>7}",
            style.status(status, &symbol(status, frame).to_string()),
            padded(style.paint("1", &stage.name), &stage.name, width),
            padded(style.status(status, word), word, 10),
            elapsed
        );
        lines.push(WatchLine {
            key: format!("stage:{}", stage.name),
            text: text.trim_end().to_owned(),
        });
        for action in &stage.actions {
            let status = action.status.as_deref();
            let end = if is_running(status) {
                live.then_some(now)
            } else {
                action.updated
            };
            let elapsed = match (action.started, end) {
                (Some(s), Some(e)) => fmt_duration(e - s),
                _ => String::new(),
            };
            let detail = if let Some(token) = &action.token {
                style.paint("33", &format!("waiting for approval, token {token}"))
            } else if let Some(error) = action.error.as_deref().filter(|_| status == Some("Failed"))
            {
                style.paint("31", &format!("error: {}", one_line(error, 200)))
            } else if let Some(error) = &action.error {
                style.paint("31", &one_line(error, 200))
            } else {
                action
                    .summary
                    .as_deref()
                    .map(|s| style.paint("2", &one_line(s, 120)))
                    .unwrap_or_default()
            };
            let word = status.unwrap_or(if live { "" } else { "pending" });
            let text = format!(
                "    {} {}  {} {:>7}  {}",
                style.status(status, &symbol(status, frame).to_string()),
                pad(&label(stage, action), width - 4),
                padded(style.status(status, word), word, 10),
                elapsed,
                detail
            );
            lines.push(WatchLine {
                key: format!("action:{}.{}", stage.name, action.name),
                text: text.trim_end().to_owned(),
            });
        }
    }
    lines
}

/// The number of terminal columns `line` takes (ANSI escapes take none).
pub fn visible_width(line: &str) -> usize {
    let mut width = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            width += 1;
        }
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// 2024-05-01 12:00:00 UTC.
    const T0: f64 = 1_714_564_800.0;

    /// Compare `actual` with `tests/snapshots/<name>.txt`; with `PIPEWRIGHT_BLESS=1`, write it.
    fn snapshot(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{name}.txt"));
        if std::env::var("PIPEWRIGHT_BLESS").as_deref() == Ok("1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with PIPEWRIGHT_BLESS=1 to write it",
                path.display()
            )
        });
        if expected != actual {
            panic!(
                "{} differs (run with PIPEWRIGHT_BLESS=1 to accept):\n{}",
                path.display(),
                diff(&expected, actual)
            );
        }
    }

    /// A line diff: `-` expected, `+` actual, ` ` both (a plain LCS; snapshots are small).
    fn diff(expected: &str, actual: &str) -> String {
        let a: Vec<&str> = expected.lines().collect();
        let b: Vec<&str> = actual.lines().collect();
        let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut out) = (0, 0, String::new());
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                out += &format!("  {}\n", a[i]);
                i += 1;
                j += 1;
            } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
                out += &format!("- {}\n", a[i]);
                i += 1;
            } else {
                out += &format!("+ {}\n", b[j]);
                j += 1;
            }
        }
        out
    }

    fn action(name: &str, status: &str, start: f64, end: f64) -> WatchAction {
        WatchAction {
            name: name.into(),
            status: Some(status.into()),
            started: Some(T0 + start),
            updated: Some(T0 + end),
            ..WatchAction::default()
        }
    }

    fn stage(name: &str, status: Option<&str>, actions: Vec<WatchAction>) -> WatchStage {
        WatchStage {
            name: name.into(),
            status: status.map(Into::into),
            actions,
        }
    }

    fn succeeded_run() -> WatchState {
        WatchState {
            pipeline: "pipewright-sample".into(),
            execution_id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
            status: "Succeeded".into(),
            summary: None,
            trigger: Some("StartPipelineExecution".into()),
            started: Some(T0),
            finished: Some(T0 + 9.3),
            stages: vec![
                stage(
                    "Source",
                    Some("Succeeded"),
                    vec![WatchAction {
                        summary: Some(
                            "Amazon S3 version id: 3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into(),
                        ),
                        ..action("Source", "Succeeded", 0.2, 0.6)
                    }],
                ),
                stage(
                    "Build",
                    Some("Succeeded"),
                    vec![
                        action("Compile", "Succeeded", 1.0, 4.1),
                        action("Docs", "Succeeded", 1.0, 2.7),
                    ],
                ),
                stage(
                    "Test",
                    Some("Succeeded"),
                    vec![action("UnitTests", "Succeeded", 4.6, 6.0)],
                ),
                stage(
                    "Deploy",
                    Some("Succeeded"),
                    vec![WatchAction {
                        summary: Some(
                            "uploaded 1 file(s) of artifact BuildOutput to s3://site/".into(),
                        ),
                        ..action("Publish", "Succeeded", 6.5, 9.1)
                    }],
                ),
            ],
        }
    }

    fn failed_run() -> WatchState {
        let mut state = succeeded_run();
        state.status = "Failed".into();
        state.summary = Some("action UnitTests of stage Test failed".into());
        state.finished = Some(T0 + 6.2);
        state.stages[2] = stage(
            "Test",
            Some("Failed"),
            vec![WatchAction {
                error: Some(
                    "command `test -f dist/index.html` exited with status 1\n(stderr: none)".into(),
                ),
                ..action("UnitTests", "Failed", 4.6, 6.0)
            }],
        );
        state.stages[3] = stage(
            "Deploy",
            None,
            vec![WatchAction {
                name: "Publish".into(),
                ..WatchAction::default()
            }],
        );
        state
    }

    #[test]
    fn watch_of_a_successful_execution() {
        let out = render_watch(&succeeded_run(), T0 + 60.0, 3, false);
        snapshot("watch-succeeded", &out);
    }

    #[test]
    fn watch_of_a_failed_execution_shows_the_error() {
        let out = render_watch(&failed_run(), T0 + 60.0, 3, false);
        assert!(out.contains(
            "error: command `test -f dist/index.html` exited with status 1 (stderr: none)"
        ));
        snapshot("watch-failed", &out);
        // Appended (not a terminal): the action named with its stage, the error on its line.
        let lines = watch_lines(&failed_run(), T0 + 60.0, None, false);
        let failed = lines
            .iter()
            .find(|l| l.key == "action:Test.UnitTests")
            .unwrap();
        assert!(
            failed
                .text
                .starts_with("    ✖ Test.UnitTests  Failed        1.4s  error: command "),
            "{failed:?}"
        );
    }

    #[test]
    fn watch_while_running_spins_and_ticks() {
        let mut state = failed_run();
        state.status = "InProgress".into();
        state.summary = None;
        state.finished = None;
        state.stages[2] = stage(
            "Test",
            Some("InProgress"),
            vec![WatchAction {
                updated: None,
                ..action("UnitTests", "InProgress", 4.6, 0.0)
            }],
        );
        let a = render_watch(&state, T0 + 7.0, 0, false);
        let b = render_watch(&state, T0 + 8.0, 1, false);
        assert!(a.contains("⠋ InProgress  7.0s"), "{a}");
        assert!(a.contains("    ⠋ UnitTests  InProgress    2.4s"), "{a}");
        assert!(b.contains("    ⠙ UnitTests  InProgress    3.4s"), "{b}");
        snapshot("watch-running", &a);
        // Append mode: nothing ticks, so an unchanged state gives the same lines.
        assert_eq!(
            watch_lines(&state, T0 + 7.0, None, false),
            watch_lines(&state, T0 + 99.0, None, false)
        );
        let lines = watch_lines(&state, T0 + 7.0, None, false);
        let deploy = lines.iter().find(|l| l.key == "stage:Deploy").unwrap();
        assert_eq!(deploy.text, "· Deploy              pending");
        let publish = lines
            .iter()
            .find(|l| l.key == "action:Deploy.Publish")
            .unwrap();
        assert_eq!(publish.text, "    · Deploy.Publish  pending");
    }

    #[test]
    fn color_is_ansi_and_takes_no_columns() {
        let plain = render_watch(&failed_run(), T0 + 60.0, 3, false);
        let colored = render_watch(&failed_run(), T0 + 60.0, 3, true);
        assert!(colored.contains("\x1b[31m"));
        for (p, c) in plain.lines().zip(colored.lines()) {
            assert_eq!(visible_width(c), p.chars().count(), "{c:?}");
        }
    }

    #[test]
    fn status_table() {
        let view = StatusView {
            pipeline: "pipewright-sample".into(),
            version: Some(3),
            stages: vec![
                StatusStage {
                    name: "Source".into(),
                    status: Some("Succeeded".into()),
                    execution_id: Some("1b4e28ba-2fa1-41d2-883f-0016d3cca427".into()),
                    actions: vec![StatusAction {
                        name: "Source".into(),
                        status: Some("Succeeded".into()),
                        last_change: Some(T0 + 0.6),
                        summary: Some("Amazon S3 version id: 3sL4kqtJlcpXroDTDmJ".into()),
                        ..StatusAction::default()
                    }],
                },
                StatusStage {
                    name: "Build".into(),
                    status: Some("Failed".into()),
                    execution_id: Some("1b4e28ba-2fa1-41d2-883f-0016d3cca427".into()),
                    actions: vec![
                        StatusAction {
                            name: "Compile".into(),
                            status: Some("Succeeded".into()),
                            last_change: Some(T0 + 4.1),
                            ..StatusAction::default()
                        },
                        StatusAction {
                            name: "Docs".into(),
                            status: Some("Failed".into()),
                            last_change: Some(T0 + 2.7),
                            error: Some("cp: cannot stat 'README.md'".into()),
                            ..StatusAction::default()
                        },
                    ],
                },
                StatusStage {
                    name: "Approve".into(),
                    status: Some("InProgress".into()),
                    execution_id: Some("77c0f1a2-93d4-4e4f-a1b2-c3d4e5f60718".into()),
                    actions: vec![StatusAction {
                        name: "Release".into(),
                        status: Some("InProgress".into()),
                        last_change: Some(T0 + 3_725.0),
                        token: Some("0f6b6a4e-9d8c-4b1a-8e2f-3c4d5e6f7a8b".into()),
                        ..StatusAction::default()
                    }],
                },
                StatusStage {
                    name: "Deploy".into(),
                    actions: vec![StatusAction {
                        name: "Publish".into(),
                        ..StatusAction::default()
                    }],
                    ..StatusStage::default()
                },
            ],
        };
        snapshot("status", &render_status(&view));
    }

    #[test]
    fn history_table() {
        let rows = vec![
            HistoryRow {
                execution_id: "77c0f1a2-93d4-4e4f-a1b2-c3d4e5f60718".into(),
                status: "InProgress".into(),
                trigger: Some("StartPipelineExecution".into()),
                started: Some(T0 + 3_600.0),
                updated: Some(T0 + 3_610.0),
                summary: None,
            },
            HistoryRow {
                execution_id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
                status: "Failed".into(),
                trigger: Some("CloudWatchEvent".into()),
                started: Some(T0),
                updated: Some(T0 + 75.0),
                summary: Some("action Docs of stage Build failed:\ncp: cannot stat".into()),
            },
            HistoryRow {
                execution_id: "0c2b8d9e-1f3a-4b5c-9d6e-7f8a9b0c1d2e".into(),
                status: "Succeeded".into(),
                trigger: Some("StartPipelineExecution".into()),
                started: Some(T0 - 86_400.0),
                updated: Some(T0 - 86_400.0 + 9.3),
                summary: None,
            },
        ];
        snapshot("history", &render_history(&rows, T0 + 3_642.0));
        assert_eq!(render_history(&[], T0), "no executions\n");
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(fmt_time(T0), "2024-05-01 12:00:00");
        assert_eq!(fmt_time(0.0), "1970-01-01 00:00:00");
        assert_eq!(fmt_time(951_782_400.0), "2000-02-29 00:00:00");
        assert_eq!(fmt_duration(0.42), "0.4s");
        assert_eq!(fmt_duration(42.9), "42s");
        assert_eq!(fmt_duration(65.0), "1m 05s");
        assert_eq!(fmt_duration(7_380.0), "2h 03m");
        assert_eq!(fmt_duration(-1.0), "0.0s");
    }

    #[test]
    fn diff_marks_changed_lines() {
        assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
    }
}
