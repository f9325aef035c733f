//! How times, durations, statuses and links read on the pages. Pure.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a path segment or query value keeps unescaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` escaped for a URL path segment or query value.
pub fn enc(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// The pipeline page's path.
pub fn pipeline_path(name: &str) -> String {
    format!("/pipelines/{}", enc(name))
}

/// The execution page's path.
pub fn execution_path(pipeline: &str, id: &str) -> String {
    format!("/pipelines/{}/executions/{}", enc(pipeline), enc(id))
}

/// The history page's path.
pub fn history_path(pipeline: &str) -> String {
    format!("/pipelines/{}/history", enc(pipeline))
}

/// `2026-12-07 20:52:50 UTC`.
pub fn timestamp(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `3 min ago`, from `now`.
pub fn ago(secs: f64, now: f64) -> String {
    let d = (now - secs).max(0.0);
    if d < 60.0 {
        format!("{} s ago", d as u64)
    } else if d < 3600.0 {
        format!("{} min ago", (d / 60.0) as u64)
    } else if d < 86400.0 {
        format!("{} h ago", (d / 3600.0) as u64)
    } else {
        format!("{} d ago", (d / 86400.0) as u64)
    }
}

/// `1 min 4 s`, `2.3 s`, `1 h 2 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 60.0 {
        format!("{} s", s as u64)
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s as u64) % 60)
    } else {
        format!("{} h {} min", (s / 3600.0) as u64, ((s as u64) % 3600) / 60)
    }
}

/// The CSS class of a status (`Succeeded` → `st-succeeded`), any status CodePipeline has.
pub fn status_class(status: &str) -> String {
    let known = [
        "succeeded",
        "failed",
        "inprogress",
        "stopped",
        "stopping",
        "superseded",
        "cancelled",
        "abandoned",
        "skipped",
        "overridden",
        "errored",
    ];
    let lower = status.to_ascii_lowercase();
    if known.contains(&lower.as_str()) {
        format!("st-{lower}")
    } else {
        "st-other".into()
    }
}

/// `In progress` for `InProgress`: a status as a person reads it.
pub fn status_words(status: &str) -> String {
    match status {
        "InProgress" => "In progress".into(),
        other => other.to_string(),
    }
}

/// The first 8 characters of an execution id.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_what_a_name_may_hold() {
        assert_eq!(pipeline_path("web app/x"), "/pipelines/web%20app%2Fx");
        assert_eq!(
            execution_path("a", "1b4e-28ba"),
            "/pipelines/a/executions/1b4e-28ba"
        );
    }

    #[test]
    fn times_and_durations_read_as_a_person_says_them() {
        assert_eq!(timestamp(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(duration(2.34), "2.3 s");
        assert_eq!(duration(64.0), "1 min 4 s");
        assert_eq!(duration(3720.0), "1 h 2 min");
        assert_eq!(ago(100.0, 280.0), "3 min ago");
        assert_eq!(ago(100.0, 90.0), "0 s ago");
    }

    #[test]
    fn statuses_map_to_known_classes_only() {
        assert_eq!(status_class("InProgress"), "st-inprogress");
        assert_eq!(status_class("\"><script>"), "st-other");
        assert_eq!(status_words("InProgress"), "In progress");
    }
}
