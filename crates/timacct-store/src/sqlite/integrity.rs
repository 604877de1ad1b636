//! Start-up checks of the database file.
//!
//! An existing file must be an intact SQLite database: a file that is not one (garbage, a
//! wrong path), one cut short, or one whose pages fail SQLite's own check is refused with an
//! error naming it, before anything is written to it — never served from, never started
//! over empty.
//!
//! A write-ahead log left by a crash is replayed by SQLite itself, which keeps every
//! transaction up to the first frame that is torn or damaged and ignores the rest. What that
//! means depends on what is ignored:
//! - frames of no complete commit (a transaction cut short by the crash: never
//!   acknowledged) — normal; logged;
//! - the last commit of the log, torn (a power loss during its fsync, so it was never
//!   acknowledged either; or a disk failure) — the server starts, and a warning names what
//!   was dropped;
//! - any earlier commit, or the whole log (a damaged header) — transactions that were
//!   certainly acknowledged would be lost: the server refuses to start, saying which file is
//!   damaged, and leaves both files as they are (move the log away to accept the loss).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::Connection;

use crate::StoreError;

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Bytes of the WAL file header and of each frame header.
const WAL_HEADER: usize = 32;
const WAL_FRAME_HEADER: usize = 24;
/// The WAL file is read whole to count its frames; past this, the count is skipped (SQLite
/// checkpoints the log every 1000 pages, so a real one is a few MiB).
const WAL_READ_MAX: u64 = 256 * 1024 * 1024;

/// What was on disk before SQLite opened the file.
pub(super) struct OnDisk {
    path: PathBuf,
    /// Whether the database file existed (a new one needs no check).
    existed: bool,
    /// The write-ahead log left behind, if any: SQLite removes it on a clean close.
    wal: Option<WalFile>,
}

/// A write-ahead log file as found at start-up.
struct WalFile {
    bytes: u64,
    /// Its frames, when it could be read.
    scan: Option<WalScan>,
}

/// The frames of a write-ahead log.
#[derive(Debug, PartialEq, Eq)]
struct WalScan {
    /// Whether the header's magic number and checksum are right (SQLite ignores the whole
    /// log otherwise).
    header_ok: bool,
    /// Whole frames of the log's current generation (salt as in the header), from the start.
    frames: u64,
    /// Which of them end a transaction (a commit frame), by index.
    commits: Vec<u64>,
    /// The frames SQLite's recovery keeps: those up to the last commit frame before the
    /// first frame whose checksum fails.
    kept: u64,
    /// Whole frames in the file, of any generation.
    all_frames: u64,
    /// The file ends part-way through a frame: a write was cut short.
    partial_frame: bool,
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!(
        "{}: {why}; refusing to start on it (nothing was written to it)",
        path.display()
    ))
}

/// Look at the file before opening it: refuse one that exists but cannot be an intact
/// SQLite database, and note the write-ahead log a crash left.
pub(super) fn inspect(path: &Path) -> Result<OnDisk, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(OnDisk {
                path: path.to_path_buf(),
                existed: false,
                wal: None,
            })
        }
        Err(e) => return Err(refuse(path, format!("cannot be read ({e})"))),
    };
    if !meta.is_file() {
        return Err(refuse(path, "is not a regular file"));
    }
    let len = meta.len();
    if len == 0 {
        return Err(refuse(
            path,
            "is empty (0 bytes): a database truncated to nothing, or a file timacct did not \
             write. Restore it from a backup, or delete it to start a new, empty database",
        ));
    }
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut header))
        .map_err(|e| refuse(path, format!("cannot be read ({e})")))?;
    if read < header.len() || &header[..16] != MAGIC {
        return Err(refuse(
            path,
            "is not a SQLite database (it does not start with the SQLite header)",
        ));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(refuse(
                path,
                format!("has a damaged header (page size {n})"),
            ))
        }
    };
    if len % page_size > 0 {
        return Err(refuse(
            path,
            format!(
                "is truncated or damaged: {len} bytes is not a whole number of {page_size}-byte pages"
            ),
        ));
    }
    let wal_path = wal_path(path);
    let wal = wal_file(&wal_path);
    if let Some(scan) = wal.as_ref().and_then(|w| w.scan.as_ref()) {
        let dropped = scan.dropped_commits();
        if scan.header_ok && dropped >= 2 {
            return Err(refuse(
                &wal_path,
                format!(
                    "the write-ahead log is damaged at frame {} of {}: SQLite would drop the \
                     {dropped} committed transactions after it, which were acknowledged. \
                     Restore a backup, or move this file away to start without them",
                    scan.kept + 1,
                    scan.frames
                ),
            ));
        }
        if !scan.header_ok && scan.all_frames > 0 {
            return Err(refuse(
                &wal_path,
                "the write-ahead log's header is damaged, so SQLite would ignore every \
                 transaction in it (all changes since the last checkpoint). Restore a backup, \
                 or move this file away to start without those changes",
            ));
        }
    }
    Ok(OnDisk {
        path: path.to_path_buf(),
        existed: true,
        wal,
    })
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn wal_file(path: &Path) -> Option<WalFile> {
    let bytes = std::fs::metadata(path).ok()?.len();
    if bytes == 0 {
        return None;
    }
    let scan = if bytes <= WAL_READ_MAX {
        std::fs::read(path).ok().map(|data| scan_wal(&data))
    } else {
        None
    };
    Some(WalFile { bytes, scan })
}

impl WalScan {
    /// Commits that recovery will drop: one is the log's last (torn at the crash); more mean
    /// damage to transactions that were certainly acknowledged.
    fn dropped_commits(&self) -> usize {
        self.commits.iter().filter(|&&c| c >= self.kept).count()
    }
}

fn be32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// SQLite's WAL checksum (https://sqlite.org/fileformat.html#checksum_algorithm),
/// continuing from `seed`.
fn wal_checksum(data: &[u8], big_endian: bool, seed: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = seed;
    for chunk in data.chunks_exact(8) {
        let word = |b: &[u8]| {
            let mut w = [0u8; 4];
            w.copy_from_slice(b);
            if big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        s0 = s0.wrapping_add(word(&chunk[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&chunk[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

/// Read a write-ahead log's header and frame headers (frame contents are SQLite's to check).
fn scan_wal(data: &[u8]) -> WalScan {
    let Some(header) = data.get(..WAL_HEADER) else {
        return WalScan {
            header_ok: false,
            frames: 0,
            commits: Vec::new(),
            kept: 0,
            all_frames: 0,
            partial_frame: true,
        };
    };
    let magic = be32(&header[0..]);
    let page_size = be32(&header[8..]) as usize;
    let valid_page = (512..=65_536).contains(&page_size) && page_size.is_power_of_two();
    let big_endian = magic & 1 == 1;
    let stored = (be32(&header[24..]), be32(&header[28..]));
    let header_ok = matches!(magic, 0x377f_0682 | 0x377f_0683)
        && valid_page
        && wal_checksum(&header[..24], big_endian, (0, 0)) == stored;
    // With a damaged page size, count in the most common one: only "any frames?" matters then.
    let frame_len = WAL_FRAME_HEADER + if valid_page { page_size } else { 4096 };
    let body = &data[WAL_HEADER..];
    let salt = &header[16..24];
    let mut frames = 0;
    let mut commits = Vec::new();
    let (mut kept, mut chain, mut intact) = (0, stored, header_ok);
    for frame in body.chunks_exact(frame_len) {
        if &frame[8..16] != salt {
            break;
        }
        let commit = be32(&frame[4..]) != 0;
        if commit {
            commits.push(frames);
        }
        frames += 1;
        if intact {
            chain = wal_checksum(&frame[..8], big_endian, chain);
            chain = wal_checksum(&frame[WAL_FRAME_HEADER..], big_endian, chain);
            intact = chain == (be32(&frame[16..]), be32(&frame[20..]));
            if intact && commit {
                kept = frames;
            }
        }
    }
    WalScan {
        header_ok,
        frames,
        commits,
        kept,
        all_frames: (body.len() / frame_len) as u64,
        partial_frame: !body.len().is_multiple_of(frame_len),
    }
}

/// With the file open (and any write-ahead log replayed): refuse a database whose pages fail
/// SQLite's check, then say what the replay kept. Runs before anything is written.
pub(super) fn verify(conn: &Connection, on_disk: &OnDisk) -> Result<(), StoreError> {
    if !on_disk.existed {
        return Ok(());
    }
    let path = on_disk.path.as_path();
    // Until the checks pass, closing must not checkpoint: a refused file stays as it was.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| refuse(path, format!("cannot be opened safely ({e})")))?;
    let unreadable =
        |e: rusqlite::Error| refuse(path, format!("cannot be read as a database ({e})"));
    let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(unreadable)?;
    let findings = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .map_err(unreadable)?;
    if findings.len() != 1 || findings[0] != "ok" {
        return Err(refuse(
            path,
            format!(
                "is damaged (SQLite's integrity check: {}); restore it from a backup",
                findings.join("; ")
            ),
        ));
    }
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
    let Some(wal) = &on_disk.wal else {
        return Ok(());
    };
    let Some(scan) = &wal.scan else {
        tracing::info!(
            path = %path.display(),
            wal_bytes = wal.bytes,
            "recovered the write-ahead log left by an unclean shutdown"
        );
        return Ok(());
    };
    let ignored = scan.frames.saturating_sub(scan.kept);
    if scan.dropped_commits() > 0 {
        tracing::warn!(
            path = %path.display(),
            wal_bytes = wal.bytes,
            kept_frames = scan.kept,
            ignored_frames = ignored,
            "recovered the write-ahead log left by an unclean shutdown, but its last commit is \
             torn or damaged and was dropped: the last transaction written before the crash is \
             lost (after a power loss it was never acknowledged; otherwise the disk failed). \
             Every earlier transaction is kept"
        );
    } else if ignored > 0 || scan.partial_frame {
        tracing::warn!(
            path = %path.display(),
            wal_bytes = wal.bytes,
            kept_frames = scan.kept,
            ignored_frames = ignored,
            partial_frame = scan.partial_frame,
            "recovered the write-ahead log left by an unclean shutdown: every committed \
             transaction is kept; the frames after the last commit were ignored (a write cut \
             short by the crash, never acknowledged)"
        );
    } else {
        tracing::info!(
            path = %path.display(),
            wal_bytes = wal.bytes,
            kept_frames = scan.kept,
            "recovered the write-ahead log left by an unclean shutdown: every transaction in \
             it is kept"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn wal(page: usize, frames: &[(&[u8; 8], u32)]) -> Vec<u8> {
        let mut wal = vec![0u8; WAL_HEADER];
        wal[..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
        wal[8..12].copy_from_slice(&(page as u32).to_be_bytes());
        wal[16..24].copy_from_slice(b"saltsalt");
        let (c0, c1) = wal_checksum(&wal[..24], false, (0, 0));
        wal[24..28].copy_from_slice(&c0.to_be_bytes());
        wal[28..32].copy_from_slice(&c1.to_be_bytes());
        let mut chain = (c0, c1);
        for (salt, commit) in frames {
            let mut frame = vec![7u8; WAL_FRAME_HEADER + page];
            frame[4..8].copy_from_slice(&commit.to_be_bytes());
            frame[8..16].copy_from_slice(*salt);
            chain = wal_checksum(&frame[..8], false, chain);
            chain = wal_checksum(&frame[WAL_FRAME_HEADER..], false, chain);
            frame[16..20].copy_from_slice(&chain.0.to_be_bytes());
            frame[20..24].copy_from_slice(&chain.1.to_be_bytes());
            wal.extend_from_slice(&frame);
        }
        wal
    }

    #[test]
    fn frames_are_counted_until_the_salt_changes() {
        let mut data = wal(512, &[(b"saltsalt", 0), (b"saltsalt", 2), (b"oldsalt!", 3)]);
        let scan = scan_wal(&data);
        assert!(scan.header_ok);
        assert_eq!((scan.frames, scan.commits.as_slice()), (2, &[1][..]));
        assert_eq!((scan.kept, scan.dropped_commits()), (2, 0));
        assert_eq!((scan.all_frames, scan.partial_frame), (3, false));
        data.truncate(data.len() - 100);
        let scan = scan_wal(&data);
        assert_eq!(
            (scan.frames, scan.all_frames, scan.partial_frame),
            (2, 2, true)
        );
        // A damaged byte in the first frame drops every commit after it.
        let three = [(b"saltsalt", 1), (b"saltsalt", 2), (b"saltsalt", 3)];
        let mut damaged = wal(512, &three);
        damaged[WAL_HEADER + 100] ^= 1;
        let scan = scan_wal(&damaged);
        assert_eq!((scan.kept, scan.dropped_commits()), (0, 3));
        let mut torn_last = wal(512, &three);
        let last = torn_last.len() - 1;
        torn_last[last] ^= 1;
        let scan = scan_wal(&torn_last);
        assert_eq!((scan.kept, scan.dropped_commits()), (2, 1));
        data[20] ^= 1;
        assert!(!scan_wal(&data).header_ok);
        assert!(!scan_wal(&data[..10]).header_ok);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("empty.db", Vec::new()),
            (
                "text.db",
                b"hello, this is not a database at all".repeat(200),
            ),
            ("short.db", MAGIC.to_vec()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let err = inspect(&path).err().expect("refused");
            assert!(err.to_string().contains(name), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
        assert!(!inspect(&dir.path().join("new.db")).unwrap().existed);
    }
}
