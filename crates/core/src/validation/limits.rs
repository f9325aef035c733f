//! Text, count and ARN checks shared by the rules: botocore's string
//! constraints (allowed characters and lengths), list sizes, role ARNs,
//! regions, configuration maps and command lists.

use super::Problems;
use crate::declaration::Configuration;

/// A botocore string constraint: allowed characters and length.
pub(super) struct TextRule {
    allowed: fn(char) -> bool,
    allowed_text: &'static str,
    min: usize,
    max: usize,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_')
}

fn namespace_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_')
}

fn artifact_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

fn env_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn bucket_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.')
}

/// Pipeline, stage, action and rule names: `[A-Za-z0-9.@\-_]+`, 1 to 100.
pub(super) const ENTITY_NAME: TextRule = TextRule {
    allowed: name_char,
    allowed_text: "A-Z a-z 0-9 . @ - _",
    min: 1,
    max: 100,
};

/// Action namespaces: `[A-Za-z0-9@\-_]+`, 1 to 100.
pub(super) const NAMESPACE: TextRule = TextRule {
    allowed: namespace_char,
    allowed_text: "A-Z a-z 0-9 @ - _",
    min: 1,
    max: 100,
};

/// Pipeline variable names: `[A-Za-z0-9@\-_]+`, 1 to 128.
pub(super) const VARIABLE_NAME: TextRule = TextRule {
    allowed: namespace_char,
    allowed_text: "A-Z a-z 0-9 @ - _",
    min: 1,
    max: 128,
};

/// Artifact names: `[a-zA-Z0-9_\-]+`, 1 to 100.
pub(super) const ARTIFACT_NAME: TextRule = TextRule {
    allowed: artifact_char,
    allowed_text: "A-Z a-z 0-9 _ -",
    min: 1,
    max: 100,
};

/// Environment variable names: `[A-Za-z0-9_]+`, 1 to 128.
pub(super) const ENV_NAME: TextRule = TextRule {
    allowed: env_name_char,
    allowed_text: "A-Z a-z 0-9 _",
    min: 1,
    max: 128,
};

/// Artifact store locations (bucket names): `[a-zA-Z0-9\-\.]+`, 3 to 63.
pub(super) const BUCKET: TextRule = TextRule {
    allowed: bucket_char,
    allowed_text: "A-Z a-z 0-9 - .",
    min: 3,
    max: 63,
};

/// Checks `value` against `rule`; returns whether it passed.
pub(super) fn check_text(out: &mut Problems, path: &str, value: &str, rule: &TextRule) -> bool {
    if !check_len(out, path, value, rule.min, rule.max) {
        return false;
    }
    if let Some(bad) = value.chars().find(|c| !(rule.allowed)(*c)) {
        out.add(
            path,
            format!(
                "`{value}` contains {bad:?}, which is not allowed; use only {}",
                rule.allowed_text
            ),
        );
        return false;
    }
    true
}

/// Checks that `value` is `min` to `max` characters long; returns whether it is.
pub(super) fn check_len(
    out: &mut Problems,
    path: &str,
    value: &str,
    min: usize,
    max: usize,
) -> bool {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        return true;
    }
    if n == 0 {
        out.add(path, format!("must not be empty (1 to {max} characters)"));
    } else {
        out.add(
            path,
            format!("must be {min} to {max} characters long, found {n}"),
        );
    }
    false
}

/// Checks that a list holds `min` to `max` items.
pub(super) fn check_count(
    out: &mut Problems,
    path: &str,
    n: usize,
    min: usize,
    max: usize,
    noun: &str,
) {
    if !(min..=max).contains(&n) {
        out.add(path, format!("must hold {min} to {max} {noun}, found {n}"));
    }
}

/// botocore's `RoleArn`: `arn:aws(-[\w]+)*:iam::[0-9]{12}:role/.*`, at most 1024.
fn is_role_arn(s: &str) -> bool {
    let Some(mut rest) = s.strip_prefix("arn:aws") else {
        return false;
    };
    while let Some(after_dash) = rest.strip_prefix('-') {
        let word = after_dash
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after_dash.len());
        if word == 0 {
            return false;
        }
        rest = &after_dash[word..];
    }
    let Some(rest) = rest.strip_prefix(":iam::") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() >= 18
        && bytes[..12].iter().all(u8::is_ascii_digit)
        && rest[12..].starts_with(":role/")
}

pub(super) fn check_role_arn(out: &mut Problems, path: &str, value: &str) {
    if !is_role_arn(value) || value.chars().count() > 1024 {
        out.add(
            path,
            format!(
                "`{value}` is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
            ),
        );
    }
}

pub(super) fn check_region(out: &mut Problems, path: &str, region: &str) {
    check_len(out, path, region, 4, 30);
}

/// Configuration maps: keys 1 to 50 characters, values 1 to `max_value`.
pub(super) fn check_configuration_sizes(
    out: &mut Problems,
    path: &str,
    config: &Configuration,
    max_value: usize,
) {
    for (key, value) in config {
        if !(1..=50).contains(&key.chars().count()) {
            out.add(
                path,
                format!("configuration key `{key}` must be 1 to 50 characters long"),
            );
        }
        check_len(out, &format!("{path}.{key}"), value, 1, max_value);
    }
}

/// Command lists: 1 to 50 commands, each 1 to 1000 characters.
pub(super) fn check_command_sizes(out: &mut Problems, path: &str, commands: &[String]) {
    check_count(out, path, commands.len(), 1, 50, "commands");
    for (i, command) in commands.iter().enumerate() {
        check_len(out, &format!("{path}[{i}]"), command, 1, 1000);
    }
}
