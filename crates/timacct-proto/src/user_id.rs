//! The one UserID rule, shared by the borrowed request scanner ([`crate::fast`]), the serde
//! path and the stores: a UserID is 1 to 32 bytes of UTF-8 without control characters.

use std::fmt;

/// The most bytes a UserID may have.
pub const MAX_USER_ID_BYTES: usize = 32;

/// Whether byte `b` may appear in a UserID's UTF-8. Only U+0000 to U+001F and U+007F are
/// refused; every other byte is part of a character that a UserID may hold (the bytes of
/// multi-byte characters are all 0x80 and above). The scanner reads bytes, the parser
/// characters: this is the one definition both apply.
pub const fn is_user_id_byte(b: u8) -> bool {
    b > 0x1f && b != 0x7f
}

/// Check `raw` against the UserID rule.
pub fn validate_user_id(raw: &str) -> Result<(), UserIdError> {
    if raw.is_empty() {
        return Err(UserIdError::Empty);
    }
    if raw.len() > MAX_USER_ID_BYTES {
        return Err(UserIdError::TooLong(raw.len()));
    }
    if !raw.bytes().all(is_user_id_byte) {
        return Err(UserIdError::ControlCharacter);
    }
    Ok(())
}

/// A UserID: 1 to 32 bytes of UTF-8 without control characters. Case-sensitive, compared byte
/// for byte. Constructed only by [`UserId::parse`], so holding one proves it is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a string is not a valid UserID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIdError {
    /// The empty string.
    Empty,
    /// More than 32 bytes.
    TooLong(usize),
    /// Contains U+0000–U+001F or U+007F.
    ControlCharacter,
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserIdError::Empty => f.write_str("UserID is empty"),
            UserIdError::TooLong(n) => write!(
                f,
                "UserID is {n} bytes long; at most {MAX_USER_ID_BYTES} bytes are allowed"
            ),
            UserIdError::ControlCharacter => f.write_str("UserID contains a control character"),
        }
    }
}

impl std::error::Error for UserIdError {}

impl UserId {
    /// The most bytes a UserID may have.
    pub const MAX_BYTES: usize = MAX_USER_ID_BYTES;

    /// Validate a UserID as the contract defines it.
    pub fn parse(raw: impl Into<String>) -> Result<UserId, UserIdError> {
        let raw = raw.into();
        validate_user_id(&raw)?;
        Ok(UserId(raw))
    }

    /// The UserID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UserID as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A valid UserID borrowed from a request body: what the scanner and the parser hand the
/// store, so that a look-up of 100 IDs copies none of them. Constructed only by
/// [`UserIdRef::parse`] (or the scanner, which applies the same rule byte by byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserIdRef<'a>(&'a str);

impl<'a> UserIdRef<'a> {
    /// Validate a borrowed UserID.
    pub fn parse(raw: &'a str) -> Result<UserIdRef<'a>, UserIdError> {
        validate_user_id(raw)?;
        Ok(UserIdRef(raw))
    }

    /// For the scanner, which has already checked every byte with [`is_user_id_byte`] and
    /// the length with [`MAX_USER_ID_BYTES`].
    pub(crate) fn scanned(raw: &'a str) -> UserIdRef<'a> {
        debug_assert!(validate_user_id(raw).is_ok(), "{raw:?}");
        UserIdRef(raw)
    }

    /// The UserID as text.
    pub fn as_str(self) -> &'a str {
        self.0
    }

    /// An owned copy.
    pub fn to_user_id(self) -> UserId {
        UserId(self.0.to_owned())
    }
}

impl AsRef<str> for UserIdRef<'_> {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl fmt::Debug for UserIdRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl UserId {
    /// This UserID, borrowed.
    pub fn borrowed(&self) -> UserIdRef<'_> {
        UserIdRef(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_at_its_edges() {
        assert_eq!(validate_user_id(""), Err(UserIdError::Empty));
        assert!(validate_user_id(&"a".repeat(32)).is_ok());
        assert_eq!(
            validate_user_id(&"a".repeat(33)),
            Err(UserIdError::TooLong(33))
        );
        // Bytes, not characters: 11 three-byte characters are 33 bytes.
        assert_eq!(
            validate_user_id(&"中".repeat(11)),
            Err(UserIdError::TooLong(33))
        );
        assert!(validate_user_id(&"中".repeat(10)).is_ok());
        for c in ['\u{0}', '\u{1f}', '\u{7f}'] {
            assert_eq!(
                validate_user_id(&format!("a{c}b")),
                Err(UserIdError::ControlCharacter)
            );
        }
        // U+0080 and above are allowed, as are space and punctuation.
        assert!(validate_user_id("a\u{80}b c@d").is_ok());
    }
}
