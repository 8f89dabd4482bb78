//! How aggregates, snapshots and views are named as annals streams.
//!
//! | what | stream |
//! | --- | --- |
//! | events of one aggregate instance | `{aggregate_type}-{aggregate_id}` |
//! | snapshots of one aggregate instance | `$snapshot-{aggregate_type}-{aggregate_id}` |
//! | one view instance | `$view-{view_name}-{view_id}` |
//!
//! Each part is escaped so that the names are unambiguous: `%` and control
//! characters become `%XX` (per UTF-8 byte, upper-case hex) in every part,
//! and in the first part (the aggregate type or view name) so do `-` and
//! `$`. The first part therefore holds no `-`, so the first `-` of an
//! aggregate's stream name ends it; and no aggregate stream starts with
//! `$`, so snapshot and view streams never collide with event streams.
//! Everything else, including non-ASCII text, is kept as it is, so that
//! `annals read` shows readable names. [`parse_aggregate_stream`] inverts
//! [`aggregate_stream`].
//!
//! annals limits a stream id to 256 bytes by default
//! ([`annals::Options::max_stream_id_len`]): the escaped aggregate type,
//! the escaped id and the prefix must fit in it, or the append fails.

/// The prefix of every snapshot stream.
pub const SNAPSHOT_PREFIX: &str = "$snapshot-";

/// The prefix of every view stream.
pub const VIEW_PREFIX: &str = "$view-";

/// The annals stream holding the events of one aggregate instance.
///
/// ```
/// use annals_cqrs::naming::{aggregate_stream, parse_aggregate_stream};
///
/// assert_eq!(aggregate_stream("BankAccount", "acc-1"), "BankAccount-acc-1");
/// assert_eq!(aggregate_stream("my-type", "1"), "my%2Dtype-1");
/// assert_eq!(
///     parse_aggregate_stream("my%2Dtype-1"),
///     Some(("my-type".to_string(), "1".to_string()))
/// );
/// ```
pub fn aggregate_stream(aggregate_type: &str, aggregate_id: &str) -> String {
    let mut s = String::with_capacity(aggregate_type.len() + aggregate_id.len() + 1);
    escape_into(&mut s, aggregate_type, true);
    s.push('-');
    escape_into(&mut s, aggregate_id, false);
    s
}

/// The stream prefix shared by every aggregate of one type: what
/// [`aggregate_stream`] puts before the aggregate id.
pub fn aggregate_type_prefix(aggregate_type: &str) -> String {
    let mut s = String::with_capacity(aggregate_type.len() + 1);
    escape_into(&mut s, aggregate_type, true);
    s.push('-');
    s
}

/// The annals stream holding the snapshots of one aggregate instance.
pub fn snapshot_stream(aggregate_type: &str, aggregate_id: &str) -> String {
    format!(
        "{SNAPSHOT_PREFIX}{}",
        aggregate_stream(aggregate_type, aggregate_id)
    )
}

/// The annals stream holding the versions of one view instance.
pub fn view_stream(view_name: &str, view_id: &str) -> String {
    let mut s = String::from(VIEW_PREFIX);
    escape_into(&mut s, view_name, true);
    s.push('-');
    escape_into(&mut s, view_id, false);
    s
}

/// The aggregate type and id that [`aggregate_stream`] made `stream` from;
/// `None` for a stream it cannot have made (a snapshot or view stream, a
/// name without `-`, a bad escape).
pub fn parse_aggregate_stream(stream: &str) -> Option<(String, String)> {
    if stream.starts_with('$') {
        return None;
    }
    let (ty, id) = stream.split_once('-')?;
    Some((unescape(ty)?, unescape(id)?))
}

/// Appends `part` to `out`, escaped as the module documentation says.
fn escape_into(out: &mut String, part: &str, first: bool) {
    for c in part.chars() {
        let escape = c == '%' || c.is_control() || (first && (c == '-' || c == '$'));
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
}

/// Undoes [`escape_into`]; `None` for a malformed escape or escaped bytes
/// that are not UTF-8.
fn unescape(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = part.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_never_collide() {
        let parts = [
            "",
            "a",
            "a-b",
            "a%2Db",
            "%",
            "-",
            "$x",
            "$snapshot",
            "é-ü",
            "a\nb",
            "--",
            "%25",
        ];
        let mut seen = std::collections::HashMap::new();
        for ty in parts {
            for id in parts {
                let name = aggregate_stream(ty, id);
                assert!(!name.starts_with('$'), "{name}");
                assert!(!name.chars().any(char::is_control), "{name:?}");
                assert_eq!(
                    parse_aggregate_stream(&name),
                    Some((ty.to_string(), id.to_string())),
                    "{name}"
                );
                assert!(name.starts_with(&aggregate_type_prefix(ty)));
                if let Some(other) = seen.insert(name.clone(), (ty, id)) {
                    panic!("{name} names both {other:?} and {:?}", (ty, id));
                }
                let snap = snapshot_stream(ty, id);
                let view = view_stream(ty, id);
                assert!(seen.insert(snap, (ty, id)).is_none());
                assert!(seen.insert(view, (ty, id)).is_none());
            }
        }
    }

    #[test]
    fn a_type_prefix_matches_only_its_own_type() {
        // "a" and "a-b" are different types; "a-" must not select "a-b"'s streams.
        let other = aggregate_stream("a-b", "1");
        assert!(!other.starts_with(&aggregate_type_prefix("a")));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert_eq!(parse_aggregate_stream("a%2-1"), None);
        assert_eq!(parse_aggregate_stream("a%zz-1"), None);
        assert_eq!(parse_aggregate_stream("a%FF-1"), None);
        assert_eq!(parse_aggregate_stream("noseparator"), None);
        assert_eq!(parse_aggregate_stream("$snapshot-a-1"), None);
    }
}
