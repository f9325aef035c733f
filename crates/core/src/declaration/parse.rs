//! Reading and writing declaration documents: [`parse_pipeline`] (JSON or
//! YAML, bare or wrapped) with located [`ParseError`]s, and [`to_json_pretty`].

use std::fmt;

use serde::Deserialize;

use super::PipelineDeclaration;

/// The document `aws codepipeline get-pipeline` prints: `{"pipeline": ..., "metadata": ...}`.
/// `create-pipeline --cli-input-json` takes the same wrapper without metadata.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineDocument {
    pipeline: PipelineDeclaration,
    // Read and dropped: the timestamps' format differs between the CLI
    // (ISO text) and the wire (epoch seconds), and nothing here needs them.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde::de::IgnoredAny>,
}

/// Why a declaration document could not be read.
///
/// Displays as `line L, column C: <path>: <message>`, leaving out the parts
/// that are unknown (a syntax error has no path; an error from a reader that
/// does not track positions has no line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line of the error, when known.
    pub line: Option<usize>,
    /// 1-based column of the error, when known.
    pub column: Option<usize>,
    /// Where in the document, e.g. `stages[0].actions[1]` (empty at the top level).
    pub path: String,
    /// What is wrong, e.g. ``unknown field `foo`, expected one of ...``.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Reads a pipeline declaration from JSON or YAML text.
///
/// The text is JSON when its first non-blank character is `{`, YAML
/// otherwise. Accepted shapes:
/// - the bare declaration `{"name": ..., "stages": [...]}`;
/// - the wrapper `{"pipeline": {...}}` that `create-pipeline --cli-input-json` takes;
/// - the whole `get-pipeline` output `{"pipeline": {...}, "metadata": {...}}`
///   (metadata is ignored).
///
/// Only the shape is checked here; use [`crate::validation::validate`] for
/// the rules.
pub fn parse_pipeline(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(ParseError {
            line: None,
            column: None,
            path: String::new(),
            message: "the document is empty; expected a pipeline declaration".to_owned(),
        });
    }
    if text.trim_start().starts_with('{') {
        parse_json(text)
    } else {
        parse_yaml(text)
    }
}

/// Writes a declaration as pretty-printed JSON (camelCase, absent members left out).
pub fn to_json_pretty(pipeline: &PipelineDeclaration) -> String {
    // Serializing these types cannot fail: every map has string keys and
    // there are no non-finite floats.
    serde_json::to_string_pretty(pipeline)
        .unwrap_or_else(|e| unreachable!("a PipelineDeclaration always serializes to JSON: {e}"))
}

fn parse_json(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let wrapped = matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Object(ref top)) if top.contains_key("pipeline")
    );
    if wrapped {
        deserialize_json::<PipelineDocument>(text).map(|doc| doc.pipeline)
    } else {
        deserialize_json::<PipelineDeclaration>(text)
    }
}

fn parse_yaml(text: &str) -> Result<PipelineDeclaration, ParseError> {
    let wrapped = matches!(
        serde_yaml::from_str::<serde_yaml::Value>(text),
        Ok(serde_yaml::Value::Mapping(ref top)) if top.contains_key("pipeline")
    );
    if wrapped {
        deserialize_yaml::<PipelineDocument>(text).map(|doc| doc.pipeline)
    } else {
        deserialize_yaml::<PipelineDeclaration>(text)
    }
}

fn deserialize_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = path_text(e.path());
        let inner = e.into_inner();
        json_error(&inner, path)
    })?;
    de.end().map_err(|e| json_error(&e, String::new()))?;
    Ok(value)
}

fn json_error(e: &serde_json::Error, path: String) -> ParseError {
    let full = e.to_string();
    let (line, column) = (e.line(), e.column());
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    ParseError {
        line: (line > 0).then_some(line),
        column: (line > 0).then_some(column),
        path,
        message,
    }
}

fn deserialize_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = path_text(e.path());
        let inner = e.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        // serde_yaml appends " at line L column C" and may prefix its own
        // path; both are reported separately here.
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_owned();
            }
        }
        if let Some((prefix, rest)) = message.split_once(": ") {
            let looks_like_path = !prefix.is_empty()
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._[]-@".contains(c));
            if looks_like_path {
                message = rest.to_owned();
            }
        }
        ParseError {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            path,
            message,
        }
    })
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    // "." is the root; "?" a position serde could not name (a syntax error).
    if text == "." || text == "?" {
        String::new()
    } else {
        text
    }
}
