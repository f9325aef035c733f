//! Lowercase hex, both ways: digests in signatures and idempotency keys, pagination tokens.

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of `text`, hex digits only (either case), two per byte; `None` otherwise.
/// (`u8::from_str_radix` alone would also take a sign: `+c` for `0c`, a second spelling of a
/// signature.)
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_only_both_ways() {
        assert_eq!(encode(&[0, 12, 255]), "000cff");
        assert_eq!(decode("000cFF"), Some(vec![0, 12, 255]));
        assert_eq!(decode("+c"), None);
        assert_eq!(decode("-0"), None);
        assert_eq!(decode("0"), None);
        assert_eq!(decode(""), Some(vec![]));
    }
}
