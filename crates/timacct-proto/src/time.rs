//! The wall clock, in the unit every timestamp of the protocol uses.

/// The current Unix time in seconds (0 if the clock is before 1970). UserSigs carry their
/// issue time in these units, and expiry, kick cut-offs and tombstones are compared in them;
/// the server, the CLI and the client all read the clock through this one function.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
