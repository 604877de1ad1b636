//! UserSigs that verified, remembered so that the next call with the same string skips the
//! inflate and HMAC work.

use parking_lot::RwLock;

/// What the later checks need of a UserSig that verified.
#[derive(Clone)]
pub(crate) struct VerifiedSig {
    pub sdkappid: u32,
    pub identifier: String,
    pub expires_at: i128,
}

/// Entries beyond this clear the cache: only valid signatures get in, so it stays small in
/// practice, and the bound keeps memory fixed whatever callers send.
const SIG_CACHE_MAX: usize = 65_536;

/// The cache, keyed by the exact UserSig string.
#[derive(Default)]
pub(crate) struct SigCache {
    // hashbrown's default hasher (foldhash, randomly seeded per process): a UserSig is a few
    // hundred bytes hashed on every call, which SipHash made a visible cost.
    map: RwLock<hashbrown::HashMap<String, VerifiedSig>>,
}

impl SigCache {
    /// When this UserSig expires, if it verified before for this app and identifier.
    pub fn expiry(&self, usersig: &str, sdkappid: u32, identifier: &str) -> Option<i128> {
        self.map
            .read()
            .get(usersig)
            .filter(|v| v.sdkappid == sdkappid && v.identifier == identifier)
            .map(|v| v.expires_at)
    }

    /// Remember a UserSig that verified.
    pub fn insert(&self, usersig: &str, sig: VerifiedSig) {
        let mut map = self.map.write();
        if map.len() >= SIG_CACHE_MAX {
            map.clear();
        }
        map.insert(usersig.to_owned(), sig);
    }
}
