//! Variable references: `#{namespace.key}` in action configuration values,
//! commands and environment variable values.
//!
//! - `#{codepipeline.PipelineExecutionId}`: the reserved `codepipeline` namespace;
//! - `#{variables.name}`: a pipeline-level variable (V2 pipelines);
//! - `#{SourceVariables.CommitId}`: an output variable of the action whose
//!   `namespace` is `SourceVariables`.
//!
//! Text around references is kept as is. Something that only looks like a
//! reference (`#{}`, `#{nodot}`, an unclosed `#{`) is plain text.

use std::fmt;

/// The reserved namespace of pipeline execution facts.
pub const CODEPIPELINE_NAMESPACE: &str = "codepipeline";

/// The namespace of pipeline-level variables.
pub const PIPELINE_VARIABLES_NAMESPACE: &str = "variables";

/// The keys of the `codepipeline` namespace.
pub const CODEPIPELINE_KEYS: &[&str] = &["PipelineExecutionId"];

/// One `#{namespace.key}` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariableRef {
    /// The part before the first dot.
    pub namespace: String,
    /// The part after the first dot.
    pub key: String,
}

impl fmt::Display for VariableRef {
    /// `#{namespace.key}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{{{}.{}}}", self.namespace, self.key)
    }
}

/// A reference that [`resolve`] could not replace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unresolved variable {reference}")]
pub struct UnresolvedVariable {
    /// The reference.
    pub reference: VariableRef,
}

/// Whether `c` may appear in a namespace (`[A-Za-z0-9@\-_]`).
fn is_namespace_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_')
}

/// Finds the references in `s`, each with its byte range (from `#` to `}`).
fn scan(s: &str) -> Vec<(std::ops::Range<usize>, VariableRef)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = s[from..].find("#{") {
        let start = from + offset;
        let body_start = start + 2;
        let Some(close) = s[body_start..].find('}') else {
            break;
        };
        let body = &s[body_start..body_start + close];
        let parsed = body.split_once('.').filter(|(ns, key)| {
            !ns.is_empty()
                && ns.chars().all(is_namespace_char)
                && !key.is_empty()
                && !key.contains(['{', '#'])
                && !key.chars().any(char::is_whitespace)
        });
        match parsed {
            Some((namespace, key)) => {
                let end = body_start + close + 1;
                found.push((
                    start..end,
                    VariableRef {
                        namespace: namespace.to_owned(),
                        key: key.to_owned(),
                    },
                ));
                from = end;
            }
            // Not a reference: look again just after this `#`.
            None => from = start + 1,
        }
    }
    found
}

/// The `#{namespace.key}` references in `s`, in order of appearance.
pub fn references(s: &str) -> Vec<VariableRef> {
    scan(s).into_iter().map(|(_, r)| r).collect()
}

/// Replaces every reference in `s` with `lookup(namespace, key)`.
///
/// Fails on the first reference `lookup` does not know. Replacement text is
/// not scanned again.
pub fn resolve(
    s: &str,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<String, UnresolvedVariable> {
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for (range, reference) in scan(s) {
        let Some(value) = lookup(&reference.namespace, &reference.key) else {
            return Err(UnresolvedVariable { reference });
        };
        out.push_str(&s[copied..range.start]);
        out.push_str(&value);
        copied = range.end;
    }
    out.push_str(&s[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(ns: &str, key: &str) -> VariableRef {
        VariableRef {
            namespace: ns.into(),
            key: key.into(),
        }
    }

    #[test]
    fn finds_references_with_text_around() {
        assert_eq!(
            references(
                "commit #{SourceVariables.CommitId} in #{codepipeline.PipelineExecutionId}!"
            ),
            [
                r("SourceVariables", "CommitId"),
                r("codepipeline", "PipelineExecutionId")
            ]
        );
        assert_eq!(references("#{variables.env}"), [r("variables", "env")]);
        assert_eq!(references("#{a.b}#{c.d}"), [r("a", "b"), r("c", "d")]);
    }

    #[test]
    fn key_may_contain_dots() {
        assert_eq!(references("#{ns.a.b}"), [r("ns", "a.b")]);
    }

    #[test]
    fn ignores_things_that_are_not_references() {
        assert!(references("").is_empty());
        assert!(references("plain text # { }").is_empty());
        assert!(references("#{}").is_empty());
        assert!(references("#{nodot}").is_empty());
        assert!(references("#{.key}").is_empty());
        assert!(references("#{ns.}").is_empty());
        assert!(references("#{bad ns.key}").is_empty());
        assert!(references("#{ns.key with space}").is_empty());
        assert!(references("#{unclosed.ref").is_empty());
        assert!(references("${shell.var}").is_empty());
    }

    #[test]
    fn recovers_after_a_false_start() {
        assert_eq!(references("#{oops #{ns.key}"), [r("ns", "key")]);
        assert_eq!(references("##{ns.key}"), [r("ns", "key")]);
    }

    #[test]
    fn handles_multibyte_text() {
        assert_eq!(references("é #{ns.ключ} ü"), [r("ns", "ключ")]);
    }

    #[test]
    fn resolves_every_reference() {
        let lookup = |ns: &str, key: &str| match (ns, key) {
            ("codepipeline", "PipelineExecutionId") => Some("exec-1".to_owned()),
            ("variables", "env") => Some("#{variables.env}".to_owned()),
            _ => None,
        };
        assert_eq!(
            resolve(
                "id=#{codepipeline.PipelineExecutionId}, env=#{variables.env}.",
                lookup
            ),
            Ok("id=exec-1, env=#{variables.env}.".to_owned())
        );
        assert_eq!(resolve("no refs", lookup), Ok("no refs".to_owned()));
        let err = resolve("x #{Build.Out} y", lookup).expect_err("unresolved");
        assert_eq!(err.reference, r("Build", "Out"));
        assert_eq!(err.to_string(), "unresolved variable #{Build.Out}");
    }
}
