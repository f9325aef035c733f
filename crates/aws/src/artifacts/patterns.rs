//! The `files` globs of an output artifact, as CodePipeline's Commands action (and CodeBuild's
//! `artifacts.files`) reads them: paths relative to the working directory, `/` separated.
//!
//! - `*` matches any run of characters within one path segment, `?` one character, `[abc]`,
//!   `[a-z]` and `[!abc]` one character of (or not of) a set;
//! - `**` as a whole segment matches any number of segments, none included: `dist/**/*` is every
//!   file under `dist`, `**/*.js` every `.js` file at any depth, `**/*` everything;
//! - a pattern without wildcards names a file, or a directory and everything under it.
//!
//! A leading `./` is ignored; `..` segments and absolute paths are refused.

use super::ArtifactError;

/// Compiled `files` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePatterns {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// As given (for messages).
    text: String,
    /// Its segments.
    segments: Vec<Segment>,
    /// True when no segment has a wildcard (the pattern names a file or a directory).
    literal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments.
    AnyDepth,
    /// A segment pattern (literal text, `*`, `?`, `[...]`).
    Glob(Vec<Token>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`.
    One,
    /// `*`.
    Star,
    /// `[...]`: ranges (single characters are `(c, c)`), negated or not.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl FilePatterns {
    /// Compile `patterns`. An empty list means everything (`**/*`).
    pub fn new(patterns: &[String]) -> Result<Self, ArtifactError> {
        let default = ["**/*".to_string()];
        let patterns = if patterns.is_empty() {
            &default[..]
        } else {
            patterns
        };
        let patterns = patterns
            .iter()
            .map(|p| Pattern::parse(p))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// True when the file at `path` (relative, `/` separated) is selected: some pattern matches
    /// it, or a wildcard-free pattern names one of its parent directories.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.patterns.iter().any(|p| {
            match_segments(&p.segments, &parts)
                || (p.literal
                    && p.segments.len() < parts.len()
                    && match_segments(&p.segments, &parts[..p.segments.len()]))
        })
    }

    /// The patterns as given, for messages: `` `dist/**/*`, `README.md` ``.
    pub fn describe(&self) -> String {
        self.patterns
            .iter()
            .map(|p| format!("`{}`", p.text))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, ArtifactError> {
        let bad = |reason: &str| ArtifactError::Pattern {
            pattern: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(bad("the pattern is empty"));
        }
        if trimmed.starts_with('/') {
            return Err(bad(
                "patterns are relative to the working directory; remove the leading `/`",
            ));
        }
        let mut segments = Vec::new();
        for part in trimmed.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    return Err(bad(
                        "`..` is not allowed: patterns select files under the working directory",
                    ))
                }
                "**" => {
                    // `**/**` is the same as `**`.
                    if segments.last() != Some(&Segment::AnyDepth) {
                        segments.push(Segment::AnyDepth);
                    }
                }
                _ => segments.push(Segment::Glob(parse_segment(part).map_err(|r| bad(&r))?)),
            }
        }
        if segments.is_empty() {
            return Err(bad(
                "the pattern selects nothing; use `**/*` for everything",
            ));
        }
        let literal = segments.iter().all(
            |s| matches!(s, Segment::Glob(t) if t.iter().all(|t| matches!(t, Token::Char(_)))),
        );
        Ok(Self {
            text: text.to_string(),
            segments,
            literal,
        })
    }
}

fn parse_segment(part: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = part.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' => tokens.push(Token::One),
            '[' => {
                let negated = matches!(chars.peek(), Some('!') | Some('^'));
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                let mut closed = false;
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    let mut is_range = false;
                    if chars.peek() == Some(&'-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        if let Some(&end) = ahead.peek() {
                            if end != ']' {
                                chars.next();
                                chars.next();
                                if end < c {
                                    return Err(format!("the range `{c}-{end}` is reversed"));
                                }
                                ranges.push((c, end));
                                is_range = true;
                            }
                        }
                    }
                    if !is_range {
                        ranges.push((c, c));
                    }
                }
                if !closed {
                    return Err("a `[` is not closed by `]`".into());
                }
                tokens.push(Token::Class { negated, ranges });
            }
            c => tokens.push(Token::Char(c)),
        }
    }
    Ok(tokens)
}

fn match_segments(pattern: &[Segment], parts: &[&str]) -> bool {
    match pattern.split_first() {
        None => parts.is_empty(),
        Some((Segment::AnyDepth, rest)) => {
            (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..]))
        }
        Some((Segment::Glob(tokens), rest)) => match parts.split_first() {
            Some((part, others)) => {
                match_tokens(tokens, &part.chars().collect::<Vec<_>>())
                    && match_segments(rest, others)
            }
            None => false,
        },
    }
}

fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    match tokens.split_first() {
        None => text.is_empty(),
        Some((Token::Star, rest)) => (0..=text.len()).any(|skip| match_tokens(rest, &text[skip..])),
        Some((token, rest)) => match text.split_first() {
            Some((&c, others)) => {
                let ok = match token {
                    Token::Char(p) => *p == c,
                    Token::One => true,
                    Token::Class { negated, ranges } => {
                        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                    }
                    Token::Star => unreachable!("handled above"),
                };
                ok && match_tokens(rest, others)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> FilePatterns {
        FilePatterns::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .expect("valid patterns")
    }

    #[test]
    fn double_star_matches_any_depth() {
        let p = set(&["dist/**/*"]);
        assert!(p.matches("dist/index.html"));
        assert!(p.matches("dist/a/b/c.js"));
        assert!(!p.matches("distx/index.html"));
        assert!(!p.matches("src/dist/index.html"));
        let all = set(&["**/*"]);
        assert!(all.matches("a"));
        assert!(all.matches("a/b/c"));
        let js = set(&["**/*.js"]);
        assert!(js.matches("app.js"));
        assert!(js.matches("lib/deep/x.js"));
        assert!(!js.matches("lib/x.json"));
        let trailing = set(&["dist/**"]);
        assert!(trailing.matches("dist/a/b"));
        assert!(!trailing.matches("other/a"));
    }

    #[test]
    fn single_star_stays_in_its_segment() {
        let p = set(&["dist/*"]);
        assert!(p.matches("dist/a.txt"));
        assert!(!p.matches("dist/sub/a.txt"));
        let top = set(&["*.md"]);
        assert!(top.matches("README.md"));
        assert!(!top.matches("docs/README.md"));
        assert!(set(&["a*b*c"]).matches("aXXbYYc"));
        assert!(!set(&["a*b*c"]).matches("aXXbYY"));
    }

    #[test]
    fn question_mark_and_classes() {
        assert!(set(&["file?.txt"]).matches("file1.txt"));
        assert!(!set(&["file?.txt"]).matches("file10.txt"));
        assert!(set(&["v[0-9].txt"]).matches("v7.txt"));
        assert!(!set(&["v[0-9].txt"]).matches("vx.txt"));
        assert!(set(&["v[!0-9].txt"]).matches("vx.txt"));
        assert!(set(&["[]a].txt"]).matches("].txt"));
        assert!(set(&["x[a-]"]).matches("x-"));
    }

    #[test]
    fn literal_names_a_file_or_a_directory() {
        let p = set(&["README.md", "config"]);
        assert!(p.matches("README.md"));
        assert!(p.matches("config/app.yaml"));
        assert!(p.matches("config/deep/app.yaml"));
        assert!(!p.matches("configs/app.yaml"));
        assert!(!p.matches("docs/README.md"));
    }

    #[test]
    fn leading_dot_slash_and_empty_list() {
        assert!(set(&["./dist/*"]).matches("dist/a"));
        assert!(set(&[]).matches("any/thing"));
    }

    #[test]
    fn refuses_parent_absolute_and_broken_patterns() {
        for bad in ["../x", "a/../b", "/etc/*", "", "[abc", "[z-a]", "."] {
            let err = FilePatterns::new(&[bad.to_string()]).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn describe_lists_the_patterns() {
        assert_eq!(
            set(&["dist/**/*", "a.txt"]).describe(),
            "`dist/**/*`, `a.txt`"
        );
    }
}
