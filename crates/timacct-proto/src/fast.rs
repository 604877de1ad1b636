//! A fast path for the one request shape that dominates real traffic: a batch of
//! `{"UserID": "..."}` items (`account_check`, `account_delete`) written plainly.
//!
//! Why it exists: profiling `account_check` of 100 IDs showed over half of the server's
//! instructions in generic serde machinery: one heap string per ID on the way in, and the
//! escaping loop on the way out. This scanner borrows the IDs straight from the request body
//! and the writer copies them back without escaping, which is only correct because the scanner
//! accepts nothing that would need escaping.
//!
//! The contract is narrow on purpose: the scanner answers `Some` only for bodies whose meaning
//! is unambiguous and identical under the full parser ([`crate::parse_body`]): exactly one
//! key, items with exactly one `UserID` key, strings without escapes or control characters.
//! Anything else (extra keys, escapes, numbers, odd whitespace, invalid UTF-8) gets `None`,
//! and the caller takes the general path, which stays the reference for every error and
//! edge case. Tests check that both paths give the same bytes.

use crate::user_id::{is_user_id_byte, UserIdRef, MAX_USER_ID_BYTES};

/// JSON's insignificant whitespace (RFC 8259 §2).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const REFUSE: u8 = 2;

/// How a byte inside a string is read: the closing quote, a byte the fast path refuses (a
/// backslash starts an escape; U+0000 to U+001F and U+007F are never in a UserID), or plain.
static STRING_BYTE: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 256 {
        // The UserID rule itself, so that the scanner cannot drift from it.
        if !is_user_id_byte(b as u8) {
            table[b] = REFUSE;
        }
        b += 1;
    }
    table[b'\\' as usize] = REFUSE;
    table[b'"' as usize] = QUOTE;
    table
};

/// A mask with the high bit set in every byte of `w` that is special inside a string (as
/// [`STRING_BYTE`] classifies it), possibly also in bytes above the first special one; the
/// lowest set bit marks the first special byte exactly (the classic "has zero byte" trick,
/// whose borrows only run upwards).
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | zero(w ^ (ONES * 0x7f))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

struct Cursor<'a> {
    /// The whole body, already known to be UTF-8.
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.bytes.get(self.pos).copied().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Skip whitespace, then consume `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.bytes.get(self.pos) == Some(&b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skip whitespace, then consume the literal `"text"` (no escapes) if it is next.
    fn eat_key(&mut self, text: &[u8]) -> bool {
        self.skip_ws();
        let end = self.pos + text.len() + 2;
        match self.bytes.get(self.pos..end) {
            Some(s) if s[0] == b'"' && s[s.len() - 1] == b'"' && &s[1..s.len() - 1] == text => {
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// Skip whitespace, then read a string of at most 32 bytes with no escapes and no control
    /// characters (U+0000 to U+001F, and U+007F, which no UserID may hold).
    fn plain_string(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let limit = start + MAX_USER_ID_BYTES + 1;
        let mut i = start;
        // Eight bytes at a time while they last, then byte by byte.
        while i < limit {
            let Some(word) = self.bytes.get(i..i + 8) else {
                break;
            };
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let mask = special_bytes(u64::from_le_bytes(w));
            if mask != 0 {
                return self.close_string(start, i + (mask.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        while i < limit {
            match STRING_BYTE[usize::from(*self.bytes.get(i)?)] {
                PLAIN => i += 1,
                _ => return self.close_string(start, i),
            }
        }
        None
    }

    /// The string from `start` to the special byte at `end`, if that byte is its closing quote
    /// and the string is short enough to be a UserID.
    fn close_string(&mut self, start: usize, end: usize) -> Option<&'a str> {
        if end - start > MAX_USER_ID_BYTES
            || STRING_BYTE[usize::from(*self.bytes.get(end)?)] != QUOTE
        {
            return None;
        }
        self.pos = end + 1;
        // Both ends are ASCII quotes, so on character boundaries.
        self.text.get(start..end)
    }
}

/// The UserIDs of `{"<key>":[{"UserID":"..."}, ...]}` when the body has exactly that plain
/// shape and every ID is a valid UserID (1 to 32 bytes, no control characters); `None`
/// otherwise, including for an empty list or more than `max` items.
pub fn scan_user_id_items<'a>(body: &'a [u8], key: &str, max: usize) -> Option<Vec<UserIdRef<'a>>> {
    // One pass over the body here is cheaper than one per string.
    let text = std::str::from_utf8(body).ok()?;
    let mut c = Cursor {
        text,
        bytes: body,
        pos: 0,
    };
    if !(c.eat(b'{') && c.eat_key(key.as_bytes()) && c.eat(b':') && c.eat(b'[')) {
        return None;
    }
    let mut ids = Vec::with_capacity(max.min(128));
    loop {
        // Compact bodies (what serializers write) skip the token-by-token path.
        const OPEN: &[u8] = b"{\"UserID\":";
        if c.bytes.get(c.pos..c.pos + OPEN.len()) == Some(OPEN) {
            c.pos += OPEN.len();
        } else if !(c.eat(b'{') && c.eat_key(b"UserID") && c.eat(b':')) {
            return None;
        }
        let id = c.plain_string()?;
        if id.is_empty() {
            return None;
        }
        if ids.len() == max {
            return None;
        }
        ids.push(UserIdRef::scanned(id));
        // Compact bodies again: `},` or `}]` right after the string.
        match c.bytes.get(c.pos..c.pos + 2) {
            Some(b"},") => c.pos += 2,
            Some(b"}]") => {
                c.pos += 2;
                break;
            }
            _ => {
                if !c.eat(b'}') {
                    return None;
                }
                if c.eat(b']') {
                    break;
                }
                if !c.eat(b',') {
                    return None;
                }
            }
        }
    }
    if !c.eat(b'}') {
        return None;
    }
    c.skip_ws();
    (c.pos == body.len()).then_some(ids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{parse_body, AccountCheckRequest};

    fn scan<'a>(body: &'a [u8], key: &str, max: usize) -> Option<Vec<&'a str>> {
        scan_user_id_items(body, key, max)
            .map(|ids| ids.into_iter().map(UserIdRef::as_str).collect())
    }

    /// What the general parser makes of `body`, when it is a valid batch of valid IDs.
    fn general(body: &[u8]) -> Option<Vec<String>> {
        let req: AccountCheckRequest = parse_body(body).ok()?;
        let ids: Vec<String> = req.check_item.into_iter().map(|i| i.user_id).collect();
        let valid = !ids.is_empty()
            && ids.len() <= 100
            && ids.iter().all(|id| {
                !id.is_empty()
                    && id.len() <= 32
                    && !id.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}')
            });
        valid.then_some(ids)
    }

    fn agrees(body: &[u8]) {
        let fast = scan(body, "CheckItem", 100);
        if let Some(fast) = &fast {
            let general = general(body)
                .unwrap_or_else(|| panic!("fast path accepted what the parser rejects: {body:?}"));
            assert_eq!(fast, &general, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn plain_bodies_are_scanned() {
        let body = br#" { "CheckItem" : [ {"UserID":"a"} ,{ "UserID" : "b-1_@x" }]
            } "#;
        assert_eq!(scan(body, "CheckItem", 100).unwrap(), ["a", "b-1_@x"]);
        let utf8 = "{\"CheckItem\":[{\"UserID\":\"用户\"}]}";
        assert_eq!(scan(utf8.as_bytes(), "CheckItem", 100).unwrap(), ["用户"]);
    }

    #[test]
    fn anything_unusual_is_left_to_the_general_parser() {
        let refused: &[&[u8]] = &[
            br#"{"CheckItem":[]}"#,
            br#"{"CheckItem":[{"UserID":""}]}"#,
            br#"{"CheckItem":[{"UserID":"a\"b"}]}"#,
            br#"{"CheckItem":[{"UserID":"a\u0041"}]}"#,
            br#"{"CheckItem":[{"UserID":"a"}],"Other":1}"#,
            br#"{"CheckItem":[{"UserID":"a","X":1}]}"#,
            br#"{"CheckItem":[{"UserID":1}]}"#,
            br#"{"CheckItem":[{"UserID":"a"},]}"#,
            br#"{"CheckItem":[{"UserID":"a"}]"#,
            br#"{"CheckItem":[{"UserID":"a"}]}x"#,
            br#"{"CheckItem":[{"UserID":"a"}]}{}"#,
            br#"{"DeleteItem":[{"UserID":"a"}]}"#,
            b"{\"CheckItem\":[{\"UserID\":\"a\x7f\"}]}",
            b"{\"CheckItem\":[{\"UserID\":\"a\tb\"}]}",
            b"{\"CheckItem\":[{\"UserID\":\"\xff\"}]}",
            b"\x0c{\"CheckItem\":[{\"UserID\":\"a\"}]}",
            br#"{"CheckItem":[{"UserID":"123456789012345678901234567890123"}]}"#,
        ];
        for body in refused {
            assert_eq!(
                scan(body, "CheckItem", 100),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many = format!(
            "{{\"CheckItem\":[{}]}}",
            vec![r#"{"UserID":"a"}"#; 101].join(",")
        );
        assert_eq!(scan(many.as_bytes(), "CheckItem", 100), None);
        let hundred = format!(
            "{{\"CheckItem\":[{}]}}",
            vec![r#"{"UserID":"a"}"#; 100].join(",")
        );
        assert_eq!(
            scan(hundred.as_bytes(), "CheckItem", 100).unwrap().len(),
            100
        );
    }

    /// Every mutation of a valid body (each byte deleted, replaced or duplicated) is either
    /// refused by the scanner or read exactly as the general parser reads it.
    #[test]
    fn the_scanner_never_disagrees_with_the_parser() {
        let base = br#"{"CheckItem":[{"UserID":"al ice"},{"UserID":"bob"}]}"#;
        let alphabet: &[u8] = b" \t\n\r{}[]:,\"\\aU0\x7f\x01\xc3\xa9";
        for i in 0..base.len() {
            let mut deleted = base.to_vec();
            deleted.remove(i);
            agrees(&deleted);
            let mut doubled = base.to_vec();
            doubled.insert(i, base[i]);
            agrees(&doubled);
            for &b in alphabet {
                let mut replaced = base.to_vec();
                replaced[i] = b;
                agrees(&replaced);
                let mut inserted = base.to_vec();
                inserted.insert(i, b);
                agrees(&inserted);
            }
        }
    }

    /// Long IDs, with every special byte at every position, at every alignment.
    #[test]
    fn special_bytes_are_found_wherever_they_are() {
        for len in 1..=40 {
            for pad in 0..8 {
                let id: String = "x".repeat(len);
                let body = format!(
                    "{}{{\"CheckItem\":[{{\"UserID\":\"{id}\"}}]}}",
                    " ".repeat(pad)
                );
                let fast = scan(body.as_bytes(), "CheckItem", 100);
                assert_eq!(fast.is_some(), len <= 32, "{body}");
                agrees(body.as_bytes());
                for at in 0..len {
                    for special in [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x20, 0x80, 0xff] {
                        let mut bytes = body.clone().into_bytes();
                        let k = bytes.len() - id.len() - 4 + at;
                        bytes[k] = special;
                        agrees(&bytes);
                    }
                }
            }
        }
    }
}
