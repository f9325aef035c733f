//! Core's one pattern matcher: the glob patterns of CodePipeline's trigger filters (branches,
//! tags, file paths; [`Glob`], [`glob_match`]) and the plain wildcards of an IAM policy's
//! action and resource patterns ([`wildcard_match`]). A `VariableCheck` rule's `MATCHES` is a
//! regular expression instead ([`crate::conditions::regex_match`]).
//!
//! Glob rules (CodePipeline user guide, "Working with glob patterns in syntax"; where it is
//! silent, the choice made here is stated):
//!
//! - `*` matches zero or more characters of one path segment (never `/`);
//! - `**` as a whole segment matches zero or more whole segments: `**/README.md` matches
//!   `README.md` and `a/b/README.md`, `src/**/*.rs` matches `src/main.rs` and `src/a/b.rs`,
//!   `docs/**` matches everything under `docs/` (not `docs` itself), `**` alone matches
//!   everything; `**` inside a segment (`a**b`) matches any characters, `/` included;
//! - `?` matches one character other than `/`;
//! - `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) match one character of (not of) the set, never
//!   `/`; inside brackets `*`, `?` and `\` stand for themselves, a `]` right after `[` (or after
//!   `[!`) is a member, a `-` first or last is a member, and a reversed range matches nothing;
//! - `{a,b,c}` matches any of the alternatives (each may hold further patterns, braces
//!   included): the pattern matches when any of its expansions does; an alternative never
//!   fuses with what surrounds it (`*{*,x}` is `*` then `*`, not `**`);
//! - `\x` matches `x` literally (a trailing `\` matches itself);
//! - an unclosed `[` or `{` matches itself, as does any other character; matching is
//!   case-sensitive and covers the whole name.
//!
//! A wildcard is simpler: `*` matches any run of characters (`/` included), `?` any one
//! character, and every other character only itself.
//!
//! Both run on the same small automaton, so no pattern backtracks. The `globset` crate was
//! weighed and not used: it refuses what these rules accept (an unclosed `[` or `{`, a trailing
//! `\`, a reversed range) and reads `**` inside a segment as `*`.

use std::fmt;

/// The most expansions of `{...}` alternatives one pattern may have.
pub const MAX_EXPANSIONS: usize = 1024;

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    programs: Vec<Vec<Inst>>,
}

/// A pattern character, or (`None`) the edge of a spliced-in alternative: it matches nothing
/// and keeps its neighbours apart.
type Sym = Option<char>;

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// Too many `{...}` alternatives multiplied together.
    #[error("its {{...}} alternatives expand to more than {MAX_EXPANSIONS} patterns")]
    TooManyAlternatives,
}

impl Glob {
    /// Compile `pattern`.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let chars: Vec<Sym> = pattern.chars().map(Some).collect();
        let mut expansions = Vec::new();
        expand(&chars, &mut expansions)?;
        Ok(Self {
            source: pattern.to_string(),
            programs: expansions.iter().map(|e| compile(e)).collect(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` (a branch, a tag, a path) matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        self.programs.iter().any(|p| run(p, &text))
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Whether `text` matches `pattern`; an unusable pattern matches nothing.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).is_ok_and(|g| g.matches(text))
}

/// Whether `text` matches the wildcard `pattern` as a whole: `*` is any run of characters, `/`
/// included, `?` any one character, anything else itself (`[`, `{` and `\` too).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut prog = Vec::new();
    let mut after_star = false;
    for c in pattern.chars() {
        match c {
            // `**` is `*`: one loop, however many stars.
            '*' if after_star => {}
            '*' => star(&mut prog, CharSet::Any),
            '?' => prog.push(Inst::Char(CharSet::Any)),
            c => prog.push(Inst::Char(CharSet::Lit(c))),
        }
        after_star = c == '*';
    }
    prog.push(Inst::Match);
    let text: Vec<char> = text.chars().collect();
    run(&prog, &text)
}

// ---------------------------------------------------------------------------
// Brace expansion
// ---------------------------------------------------------------------------

/// Where the bracket expression opening at `open` closes, if it does.
fn class_end(p: &[Sym], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if matches!(p.get(j), Some(Some('!' | '^'))) {
        j += 1;
    }
    // The first member is taken as it is, even `]`.
    if j >= p.len() {
        return None;
    }
    j += 1;
    (j..p.len()).find(|&k| p[k] == Some(']'))
}

/// Where the `{` at `open` closes, if it does (escapes and bracket expressions are skipped).
fn brace_end(p: &[Sym], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < p.len() {
        match p[i] {
            Some('\\') => i += 1,
            Some('[') => {
                if let Some(end) = class_end(p, i) {
                    i = end;
                }
            }
            Some('{') => depth += 1,
            Some('}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The alternatives between `{` at `open` and `}` at `close`, split at top-level commas.
fn alternatives(p: &[Sym], open: usize, close: usize) -> Vec<&[Sym]> {
    let mut out = Vec::new();
    let mut start = open + 1;
    let mut depth = 0usize;
    let mut i = open + 1;
    while i < close {
        match p[i] {
            Some('\\') => i += 1,
            Some('[') => {
                if let Some(end) = class_end(p, i) {
                    if end < close {
                        i = end;
                    }
                }
            }
            Some('{') => depth += 1,
            Some('}') => depth = depth.saturating_sub(1),
            Some(',') if depth == 0 => {
                out.push(&p[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&p[start..close]);
    out
}

/// Every pattern `p` stands for once its first matched `{...}` is replaced by each alternative
/// (recursively). Unclosed `{` become `\{` (literal).
fn expand(p: &[Sym], out: &mut Vec<Vec<Sym>>) -> Result<(), GlobError> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            Some('\\') => i += 2,
            Some('[') => i = class_end(p, i).map_or(i + 1, |end| end + 1),
            Some('{') => match brace_end(p, i) {
                Some(close) => {
                    for alt in alternatives(p, i, close) {
                        let mut next = p[..i].to_vec();
                        next.push(None);
                        next.extend_from_slice(alt);
                        next.push(None);
                        next.extend_from_slice(&p[close + 1..]);
                        expand(&next, out)?;
                        if out.len() > MAX_EXPANSIONS {
                            return Err(GlobError::TooManyAlternatives);
                        }
                    }
                    return Ok(());
                }
                None => {
                    let mut next = p[..i].to_vec();
                    next.push(Some('\\'));
                    next.extend_from_slice(&p[i..]);
                    return expand_from(&next, i + 2, out);
                }
            },
            _ => i += 1,
        }
    }
    out.push(p.to_vec());
    if out.len() > MAX_EXPANSIONS {
        return Err(GlobError::TooManyAlternatives);
    }
    Ok(())
}

/// [`expand`], knowing that `p[..from]` holds no `{` to expand.
fn expand_from(p: &[Sym], from: usize, out: &mut Vec<Vec<Sym>>) -> Result<(), GlobError> {
    let (head, tail) = p.split_at(from);
    let mut tails = Vec::new();
    expand(tail, &mut tails)?;
    for t in tails {
        let mut whole = head.to_vec();
        whole.extend(t);
        out.push(whole);
        if out.len() > MAX_EXPANSIONS {
            return Err(GlobError::TooManyAlternatives);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// A small automaton (one per expansion), run over all its states at once: no backtracking,
// time linear in the text for each pattern.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum CharSet {
    Lit(char),
    NotSlash,
    Any,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        match self {
            CharSet::Lit(l) => *l == c,
            CharSet::NotSlash => c != '/',
            CharSet::Any => true,
            CharSet::Class { negated, ranges } => {
                c != '/' && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inst {
    /// Consume one character of the set.
    Char(CharSet),
    /// Continue at both.
    Split(usize, usize),
    /// Continue at.
    Jmp(usize),
    /// The whole text matched.
    Match,
}

/// `set*` at the end of `prog`.
fn star(prog: &mut Vec<Inst>, set: CharSet) {
    let at = prog.len();
    prog.push(Inst::Split(at + 1, at + 3));
    prog.push(Inst::Char(set));
    prog.push(Inst::Jmp(at));
}

fn parse_class(p: &[Sym], open: usize, close: usize) -> CharSet {
    // Alternatives never split a bracket expression: every member is a character.
    let members: Vec<char> = p[open + 1..close].iter().flatten().copied().collect();
    let negated = matches!(members.first(), Some('!' | '^'));
    let members = &members[usize::from(negated)..];
    let mut ranges = Vec::new();
    let mut j = 0;
    while j < members.len() {
        if j + 2 < members.len() && members[j + 1] == '-' {
            ranges.push((members[j], members[j + 2]));
            j += 3;
        } else {
            ranges.push((members[j], members[j]));
            j += 1;
        }
    }
    CharSet::Class { negated, ranges }
}

fn compile(p: &[Sym]) -> Vec<Inst> {
    let mut prog = Vec::new();
    let mut i = 0;
    let mut segment_start = true;
    while i < p.len() {
        let Some(c) = p[i] else {
            // The edge of an alternative: nothing to match, nothing changes.
            i += 1;
            continue;
        };
        match c {
            '\\' => {
                let c = p.get(i + 1).copied().flatten().unwrap_or('\\');
                prog.push(Inst::Char(CharSet::Lit(c)));
                segment_start = c == '/' && i + 1 < p.len();
                i += 2;
            }
            '*' if p.get(i + 1) == Some(&Some('*')) => {
                if segment_start && p.get(i + 2) == Some(&Some('/')) {
                    // `**/`: nothing, or anything that ends with `/`.
                    let at = prog.len();
                    prog.push(Inst::Split(at + 5, at + 1));
                    star(&mut prog, CharSet::Any);
                    prog.push(Inst::Char(CharSet::Lit('/')));
                    i += 3;
                    segment_start = true;
                } else {
                    star(&mut prog, CharSet::Any);
                    i += 2;
                    segment_start = false;
                }
            }
            '*' => {
                star(&mut prog, CharSet::NotSlash);
                i += 1;
                segment_start = false;
            }
            '?' => {
                prog.push(Inst::Char(CharSet::NotSlash));
                i += 1;
                segment_start = false;
            }
            '[' => {
                match class_end(p, i) {
                    Some(close) => {
                        prog.push(Inst::Char(parse_class(p, i, close)));
                        i = close + 1;
                    }
                    None => {
                        prog.push(Inst::Char(CharSet::Lit('[')));
                        i += 1;
                    }
                }
                segment_start = false;
            }
            c => {
                prog.push(Inst::Char(CharSet::Lit(c)));
                segment_start = c == '/';
                i += 1;
            }
        }
    }
    prog.push(Inst::Match);
    prog
}

/// Add `pc` and every state reachable from it without consuming a character.
fn add(prog: &[Inst], set: &mut Vec<usize>, seen: &mut [bool], pc: usize) {
    if seen[pc] {
        return;
    }
    seen[pc] = true;
    match prog[pc] {
        Inst::Split(a, b) => {
            add(prog, set, seen, a);
            add(prog, set, seen, b);
        }
        Inst::Jmp(a) => add(prog, set, seen, a),
        _ => set.push(pc),
    }
}

fn run(prog: &[Inst], text: &[char]) -> bool {
    let mut seen = vec![false; prog.len()];
    let mut current = Vec::new();
    add(prog, &mut current, &mut seen, 0);
    for &c in text {
        let mut next = Vec::new();
        seen.iter_mut().for_each(|s| *s = false);
        for &pc in &current {
            if let Inst::Char(set) = &prog[pc] {
                if set.contains(c) {
                    add(prog, &mut next, &mut seen, pc + 1);
                }
            }
        }
        if next.is_empty() {
            return false;
        }
        current = next;
    }
    current.iter().any(|&pc| prog[pc] == Inst::Match)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_examples() {
        // (pattern, text, matches)
        let table: &[(&str, &str, bool)] = &[
            // CodePipeline's own examples.
            ("*.java", "Main.java", true),
            ("*.java", "src/Main.java", false),
            ("*.*", "a.b", true),
            ("*.*", "ab", false),
            ("*.{java,class}", "A.class", true),
            ("*.{java,class}", "A.jar", false),
            ("foo.?", "foo.c", true),
            ("foo.?", "foo.cc", false),
            ("my-file.jar", "my-file.jar", true),
            ("directory/my-file.jar", "directory/my-file.jar", true),
            ("directory/*", "directory/a.txt", true),
            ("directory/*", "directory/sub/a.txt", false),
            ("directory/**", "directory/sub/a.txt", true),
            ("directory/**", "directory", false),
            ("**", "any/thing/at/all", true),
            ("**", "", true),
            ("**/*", "README.md", true),
            ("**/*", "a/b/c", true),
            ("projectA/**", "projectA/src/x.rs", true),
            ("projectA/**", "projectB/src/x.rs", false),
            ("common/**/*.js", "common/a.js", true),
            ("common/**/*.js", "common/x/y/a.js", true),
            ("common/**/*.js", "common/x/y/a.ts", false),
            ("**/README.md", "README.md", true),
            ("**/README.md", "docs/README.md", true),
            ("**/README.md", "docs/NOT-README.md", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "ab", false),
            ("a**b", "a/x/b", true),
            ("a**b", "ab", true),
            // Branches and tags.
            ("main", "main", true),
            ("main", "mainline", false),
            ("feature/*", "feature/login", true),
            ("feature/*", "feature/login/v2", false),
            ("feature/**", "feature/login/v2", true),
            ("release-v[0-9]", "release-v1", true),
            ("release-v[0-9]", "release-vx", false),
            ("release-v[!0-9]", "release-vx", true),
            ("release-v[^0-9]", "release-v1", false),
            ("v?.*", "v1.2", true),
            ("*", "feature/x", false),
            ("Main", "main", false),
            // Brackets: specials stand for themselves, `]` first, `-` first or last, no `/`.
            ("[*?]", "*", true),
            ("[*?]", "a", false),
            ("[]a]", "]", true),
            ("[-a]", "-", true),
            ("[a-]", "-", true),
            ("[z-a]", "m", false),
            ("a[/]b", "a/b", false),
            ("a[!x]b", "a/b", false),
            // Escapes and unclosed brackets and braces.
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("a\\", "a\\", true),
            ("[abc", "[abc", true),
            ("{a,b", "{a,b", true),
            ("a}", "a}", true),
            // Nested and empty alternatives.
            ("{a,{b,c}d}", "cd", true),
            ("{a,{b,c}d}", "c", false),
            ("x{,y}", "x", true),
            ("x{,y}", "xy", true),
            ("{src,lib}/**/*.rs", "lib/a/b.rs", true),
            ("{[,],x}", ",", true),
            ("{[,],x}", "x", true),
            ("{**/,}a", "b/a", true),
            ("*{,*}", "/", false),
            ("*{*,x}", "ab", true),
            ("{a/,b}**/c", "a/c", true),
            ("{a/,b}**/c", "bx/c", true),
            ("{**,x}/a", "/a", true),
        ];
        for (pattern, text, expected) in table {
            assert_eq!(
                glob_match(pattern, text),
                *expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    #[test]
    fn too_many_alternatives_are_refused() {
        let pattern = "{a,b}".repeat(11);
        assert_eq!(Glob::new(&pattern), Err(GlobError::TooManyAlternatives));
        assert!(!glob_match(&pattern, "aaaaaaaaaaa"));
        assert!(Glob::new(&"{a,b}".repeat(10)).is_ok());
    }

    #[test]
    fn long_texts_do_not_backtrack() {
        let text = "a/".repeat(2000) + "b";
        let pattern = "**/*/**/*/**/*/**/*/**/c";
        assert!(!glob_match(pattern, &text));
        assert!(glob_match("**/*/**/*/**/b", &text));
    }

    // -----------------------------------------------------------------------
    // The reference: the same rules written as a plain recursive matcher over the pattern
    // text, alternatives tried in place (no expansion list, no automaton).
    // -----------------------------------------------------------------------

    fn reference(pattern: &str, text: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        ref_match(&p, 0, &t, 0, true)
    }

    /// Where `[` at `i` closes: skip an optional `!`/`^`, take one character, find `]`.
    fn ref_close_bracket(p: &[char], i: usize) -> Option<usize> {
        let mut k = i + 1;
        if k < p.len() && (p[k] == '!' || p[k] == '^') {
            k += 1;
        }
        if k >= p.len() {
            return None;
        }
        k += 1;
        while k < p.len() {
            if p[k] == ']' {
                return Some(k);
            }
            k += 1;
        }
        None
    }

    fn ref_in_class(p: &[char], open: usize, close: usize, c: char) -> bool {
        if c == '/' {
            return false;
        }
        let mut k = open + 1;
        let negate = p[k] == '!' || p[k] == '^';
        if negate {
            k += 1;
        }
        let mut found = false;
        while k < close {
            if k + 2 < close && p[k + 1] == '-' {
                if p[k] <= c && c <= p[k + 2] {
                    found = true;
                }
                k += 3;
            } else {
                if p[k] == c {
                    found = true;
                }
                k += 1;
            }
        }
        found != negate
    }

    fn ref_close_brace(p: &[char], i: usize) -> Option<usize> {
        let mut depth = 0i32;
        let mut k = i;
        while k < p.len() {
            if p[k] == '\\' {
                k += 2;
                continue;
            }
            if p[k] == '[' {
                if let Some(c) = ref_close_bracket(p, k) {
                    k = c + 1;
                    continue;
                }
            }
            if p[k] == '{' {
                depth += 1;
            } else if p[k] == '}' {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            k += 1;
        }
        None
    }

    /// `\0` marks where an alternative was spliced in: it matches nothing and keeps its
    /// neighbours apart (the generated texts never hold it).
    const EDGE: char = '\0';

    fn ref_match(p: &[char], i: usize, t: &[char], j: usize, seg: bool) -> bool {
        if i == p.len() {
            return j == t.len();
        }
        match p[i] {
            EDGE => ref_match(p, i + 1, t, j, seg),
            '\\' => {
                if i + 1 == p.len() {
                    return j < t.len() && t[j] == '\\' && ref_match(p, i + 1, t, j + 1, false);
                }
                j < t.len() && t[j] == p[i + 1] && ref_match(p, i + 2, t, j + 1, p[i + 1] == '/')
            }
            '{' => match ref_close_brace(p, i) {
                None => j < t.len() && t[j] == '{' && ref_match(p, i + 1, t, j + 1, false),
                Some(close) => {
                    // Each alternative, spliced into the pattern in place of the braces.
                    let mut starts = vec![i + 1];
                    let mut depth = 0;
                    let mut k = i + 1;
                    while k < close {
                        if p[k] == '\\' {
                            k += 2;
                            continue;
                        }
                        if p[k] == '[' {
                            if let Some(c) = ref_close_bracket(p, k) {
                                if c < close {
                                    k = c + 1;
                                    continue;
                                }
                            }
                        }
                        if p[k] == '{' {
                            depth += 1;
                        } else if p[k] == '}' && depth > 0 {
                            depth -= 1;
                        } else if p[k] == ',' && depth == 0 {
                            starts.push(k + 1);
                        }
                        k += 1;
                    }
                    let mut ends: Vec<usize> = starts[1..].iter().map(|s| s - 1).collect();
                    ends.push(close);
                    starts.iter().zip(ends).any(|(&s, e)| {
                        let mut spliced: Vec<char> = p[..i].to_vec();
                        spliced.extend_from_slice(&p[s..e]);
                        spliced.push(EDGE);
                        spliced.extend_from_slice(&p[close + 1..]);
                        ref_match(&spliced, i, t, j, seg)
                    })
                }
            },
            '*' if i + 1 < p.len() && p[i + 1] == '*' => {
                if seg && i + 2 < p.len() && p[i + 2] == '/' {
                    // zero segments, or up to and including any later `/`.
                    if ref_match(p, i + 3, t, j, true) {
                        return true;
                    }
                    (j..t.len()).any(|k| t[k] == '/' && ref_match(p, i + 3, t, k + 1, true))
                } else {
                    (j..=t.len()).any(|k| ref_match(p, i + 2, t, k, false))
                }
            }
            '*' => {
                let mut k = j;
                loop {
                    if ref_match(p, i + 1, t, k, false) {
                        return true;
                    }
                    if k == t.len() || t[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            '?' => j < t.len() && t[j] != '/' && ref_match(p, i + 1, t, j + 1, false),
            '[' => match ref_close_bracket(p, i) {
                Some(close) => {
                    j < t.len()
                        && ref_in_class(p, i, close, t[j])
                        && ref_match(p, close + 1, t, j + 1, false)
                }
                None => j < t.len() && t[j] == '[' && ref_match(p, i + 1, t, j + 1, false),
            },
            c => j < t.len() && t[j] == c && ref_match(p, i + 1, t, j + 1, c == '/'),
        }
    }

    #[test]
    fn the_reference_agrees_with_the_table() {
        for (pattern, text, expected) in [
            ("common/**/*.js", "common/a.js", true),
            ("**/README.md", "README.md", true),
            ("{a,{b,c}d}", "cd", true),
            ("[]a]", "]", true),
            ("a[/]b", "a/b", false),
            ("{**/,}a", "b/a", true),
        ] {
            assert_eq!(reference(pattern, text), expected, "{pattern} {text}");
        }
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a"),
            Just("b"),
            Just("."),
            Just("/"),
            Just("*"),
            Just("**"),
            Just("**/"),
            Just("?"),
            Just("[ab]"),
            Just("[!a]"),
            Just("[a-c]"),
            Just("[]a]"),
            Just("["),
            Just("{a,b}"),
            Just("{a/,b/c}"),
            Just("{,*}"),
            Just("{a,{b,*}}"),
            Just("{"),
            Just("}"),
            Just(","),
            Just("\\*"),
            Just("\\"),
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
    }

    fn text_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just("/"),
            Just("."),
            Just("*"),
            Just("]"),
            Just("{"),
            Just(","),
            Just("\\"),
        ];
        proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat())
    }

    #[test]
    fn wildcards_cross_slashes_and_take_everything_else_literally() {
        let table: &[(&str, &str, bool)] = &[
            ("release/*", "release/1.2", true),
            ("release/*", "hotfix/1", false),
            ("*", "", true),
            ("*", "a/b/c", true),
            ("**", "a/b", true),
            ("a?c", "a/c", true),
            ("a?c", "ac", false),
            ("?", "é", true),
            ("[ab]", "[ab]", true),
            ("[ab]", "a", false),
            ("{a,b}", "{a,b}", true),
            ("{a,b}", "a", false),
            ("a\\*", "a\\xyz", true),
            ("a\\*", "a*", false),
            ("a*b*c", "abxbxc", true),
            ("a*b*c", "abxbx", false),
            ("main", "Main", false),
            // The matcher `conditions` had before refused this one.
            ("*", "*/", true),
        ];
        for (pattern, text, expected) in table {
            assert_eq!(
                wildcard_match(pattern, text),
                *expected,
                "{pattern:?} against {text:?}"
            );
        }
    }

    /// The wildcard matcher `conditions` had before it used [`wildcard_match`] (one backtrack
    /// point, over bytes: the same as characters for ASCII), with its one slip mended: it took
    /// a pattern `*` facing a `*` in the text for a literal, so `*` did not match `*/`.
    fn reference_wildcard(pattern: &[u8], text: &[u8]) -> bool {
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            if p < pattern.len() && pattern[p] == b'*' {
                star = Some((p, t));
                p += 1;
            } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
                p += 1;
                t += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pattern[p..].iter().all(|c| *c == b'*')
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_matcher_agrees_with_the_reference(pattern in pattern_strategy(), text in text_strategy()) {
            prop_assert_eq!(
                glob_match(&pattern, &text),
                reference(&pattern, &text),
                "pattern {:?} text {:?}", pattern, text
            );
        }

        #[test]
        fn every_path_under_a_folder_matches_its_double_star(
            dir in "[a-c]{1,3}",
            rest in proptest::collection::vec("[a-c.]{1,3}", 1..4),
        ) {
            let path = format!("{dir}/{}", rest.join("/"));
            let under = format!("{dir}/**");
            prop_assert!(glob_match(&under, &path), "{} {}", under, path);
            prop_assert!(glob_match("**", &path));
            let last = rest.last().unwrap();
            let anywhere = format!("**/{last}");
            prop_assert!(glob_match(&anywhere, &path), "{} {}", anywhere, path);
        }

        #[test]
        fn wildcards_agree_with_the_old_matcher(pattern in "[ab*?/\\[]{0,8}", text in "[ab/\\[*?]{0,10}") {
            prop_assert_eq!(
                wildcard_match(&pattern, &text),
                reference_wildcard(pattern.as_bytes(), text.as_bytes()),
                "pattern {:?} text {:?}", pattern, text
            );
        }
    }
}
