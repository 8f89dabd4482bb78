//! A reversible escaping of stream ids (and event types) into text that
//! NATS carries unchanged.
//!
//! A NATS subject is a list of tokens separated by `.`; a token may not be
//! empty, hold whitespace, or be the wildcards `*` and `>`. annals stream
//! ids are any non-empty UTF-8, so `order.42` or `a b` would split or
//! break a subject. Each stream id therefore becomes one token:
//!
//! - ASCII letters, digits, `-` and `_` stand for themselves;
//! - every other byte of the id's UTF-8 is written `%XX`, two upper-case
//!   hex digits (so `order.42` is `order%2E42` and `é` is `%C3%A9`).
//!
//! The escaping is canonical: [`unescape_token`] accepts only what
//! [`escape_token`] produces (no `%41` for `A`, no lower-case hex), so a
//! subject names exactly one stream id and two different ids never share
//! a subject. Header values, which may hold more than a subject token,
//! use the same scheme with a wider set of bytes left alone
//! ([`escape_header`]), so that event types stay readable in NATS tools.

use thiserror::Error;

/// The longest escaped text [`unescape_token`] and [`unescape_header`]
/// accept: three bytes per byte of a 64 KiB name. annals itself limits
/// stream ids and event types far below this (256 bytes by default); the
/// limit stops a hostile or broken message from making the mirror
/// allocate without bound before the replica's own limits refuse it.
pub const MAX_ESCAPED_LEN: usize = 3 * (64 << 10);

/// Why an escaped text could not be turned back into a name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EscapeError {
    /// Names are never empty, so an empty text names nothing.
    #[error("an empty name cannot be escaped or unescaped")]
    Empty,
    /// The escaped text is longer than [`MAX_ESCAPED_LEN`].
    #[error("escaped name of {len} bytes is longer than the limit of {max} bytes")]
    TooLong {
        /// The text's length in bytes.
        len: usize,
        /// [`MAX_ESCAPED_LEN`].
        max: usize,
    },
    /// A byte that the escaping never leaves as it is, or a `%` without
    /// two upper-case hex digits after it, or an escape of a byte that
    /// stands for itself.
    #[error("byte {offset} of escaped name {text:?} is not what the escaping writes")]
    NotCanonical {
        /// The escaped text (cut to 80 characters).
        text: String,
        /// Where in it the problem starts.
        offset: usize,
    },
    /// The unescaped bytes are not UTF-8, which names always are.
    #[error("escaped name {text:?} does not decode to UTF-8")]
    NotUtf8 {
        /// The escaped text (cut to 80 characters).
        text: String,
    },
}

/// Whether a byte stands for itself in a subject token.
fn plain_in_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether a byte stands for itself in a header value: printable ASCII
/// except `%` (the escape) and the space (which header parsers trim at
/// the ends).
fn plain_in_header(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'%'
}

/// Escapes a stream id into one subject token (see the module docs).
///
/// ```
/// use annals_nats::escape::{escape_token, unescape_token};
/// assert_eq!(escape_token("order-42").unwrap(), "order-42");
/// assert_eq!(escape_token("order.42 é").unwrap(), "order%2E42%20%C3%A9");
/// assert_eq!(unescape_token("order%2E42%20%C3%A9").unwrap(), "order.42 é");
/// ```
pub fn escape_token(name: &str) -> Result<String, EscapeError> {
    escape(name, plain_in_token)
}

/// Turns a subject token written by [`escape_token`] back into the stream
/// id; refuses anything [`escape_token`] would not have written.
pub fn unescape_token(token: &str) -> Result<String, EscapeError> {
    unescape(token, plain_in_token)
}

/// Escapes an event type into a header value: as [`escape_token`], but
/// printable ASCII other than `%` stands for itself.
pub fn escape_header(name: &str) -> Result<String, EscapeError> {
    escape(name, plain_in_header)
}

/// Turns a header value written by [`escape_header`] back into the name.
pub fn unescape_header(value: &str) -> Result<String, EscapeError> {
    unescape(value, plain_in_header)
}

fn escape(name: &str, plain: fn(u8) -> bool) -> Result<String, EscapeError> {
    if name.is_empty() {
        return Err(EscapeError::Empty);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    Ok(out)
}

/// The value of an upper-case hex digit; lower case is not canonical.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unescape(text: &str, plain: fn(u8) -> bool) -> Result<String, EscapeError> {
    if text.is_empty() {
        return Err(EscapeError::Empty);
    }
    if text.len() > MAX_ESCAPED_LEN {
        return Err(EscapeError::TooLong {
            len: text.len(),
            max: MAX_ESCAPED_LEN,
        });
    }
    let shown = || text.chars().take(80).collect::<String>();
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if plain(b) {
            out.push(b);
            i += 1;
            continue;
        }
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex_value(hi)
                .zip(hex_value(lo))
                .map(|(hi, lo)| (hi << 4) | lo)
                // An escaped byte that stands for itself would give the
                // same name a second spelling.
                .filter(|&v| !plain(v)),
            _ => None,
        };
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                return Err(EscapeError::NotCanonical {
                    text: shown(),
                    offset: i,
                });
            }
        }
    }
    String::from_utf8(out).map_err(|_| EscapeError::NotUtf8 { text: shown() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of character a stream id may hold comes back as it was,
    /// and its token is one valid NATS token.
    #[test]
    fn round_trips_and_stays_one_token() {
        let names = [
            "order-42",
            "Order_42",
            "order.42",
            "a b\tc\nd",
            "*",
            ">",
            "a.*.>",
            "%41",
            "%",
            "$all",
            "é🦀中",
            "\u{0}\u{7f}",
            "ends with space ",
        ];
        for name in names {
            let token = escape_token(name).unwrap();
            assert!(!token.is_empty());
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)),
                "{token:?}"
            );
            assert_eq!(unescape_token(&token).unwrap(), name);
            let header = escape_header(name).unwrap();
            assert!(header.bytes().all(|b| b.is_ascii_graphic()), "{header:?}");
            assert_eq!(unescape_header(&header).unwrap(), name);
        }
    }

    /// All single bytes and a sweep of code points, against the rule that
    /// different names never share a token.
    #[test]
    fn is_injective_over_many_names() {
        let mut seen = std::collections::HashMap::new();
        for c in (0u32..0x800).filter_map(char::from_u32) {
            for name in [c.to_string(), format!("x{c}y"), format!("{c}{c}")] {
                let token = escape_token(&name).unwrap();
                assert_eq!(unescape_token(&token).unwrap(), name);
                if let Some(other) = seen.insert(token.clone(), name.clone()) {
                    assert_eq!(other, name, "{token} names two ids");
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_would_not_write() {
        for bad in [
            "%41", "%2e", "%2", "%", "a.b", "a b", "%ZZ", "*", ">", "%C3",
        ] {
            assert!(unescape_token(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(unescape_token(""), Err(EscapeError::Empty));
        assert_eq!(escape_token(""), Err(EscapeError::Empty));
        assert!(unescape_header("a b").is_err());
        assert!(matches!(
            unescape_token(&"a".repeat(MAX_ESCAPED_LEN + 1)),
            Err(EscapeError::TooLong { .. })
        ));
    }
}
