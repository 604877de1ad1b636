//! The data directory of `timacct serve`: created owner-only, checked before anything is
//! written to it, and locked so that one server at a time uses it.
//!
//! Two servers on one SQLite file would each keep their own in-memory account index and
//! disagree about what is stored, so the second one must refuse to start. The lock is an OS
//! file lock (`flock`) on `timacct.lock`: the kernel releases it when the holder exits, even
//! by `kill -9`, so a crash never leaves a stale lock behind. The file also records the
//! holder's process id, for the refusal message.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// The SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "timacct.db";
/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "timacct.lock";

/// A data directory ready for use, held (when locked) until this value is dropped.
pub struct DataDir {
    path: PathBuf,
    /// The highest directory this run created (the data directory or a missing parent), so
    /// that a start-up that fails can leave the filesystem as it found it.
    created: Option<PathBuf>,
    /// Whether the SQLite file is yet to be created (then [`DataDir::restrict_sqlite_files`]
    /// makes it private once SQLite has made it).
    new_sqlite: bool,
    /// The open lock file; the lock lasts as long as it is open.
    _lock: File,
}

impl DataDir {
    /// Create the directory if missing (0700: it holds every account and maybe the default
    /// app's key), check that it can be written, and, when `exclusive`, take its lock.
    ///
    /// Every error is one line saying what is wrong and what to do about it.
    pub fn open(path: &Path, exclusive: bool) -> anyhow::Result<DataDir> {
        let shown = path.display();
        let created = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => anyhow::bail!(
                "the data directory {shown} is a file, not a directory: pass a --data-dir that is a directory or does not exist yet"
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => Some(create_private_dir(path)?),
            Err(e) => anyhow::bail!("cannot use the data directory {shown}: {}", reason(&e)),
        };
        let new_sqlite = !path.join(SQLITE_FILE).exists();
        let lock = match open_lock_file(path) {
            Ok(lock) => lock,
            Err(e) => {
                remove_created(created.as_deref());
                return Err(e);
            }
        };
        let mut dir = DataDir {
            path: path.to_owned(),
            created,
            new_sqlite,
            _lock: lock,
        };
        if exclusive {
            if let Err(e) = dir.take_lock() {
                dir.discard();
                return Err(e);
            }
        }
        if dir.created.is_none() {
            warn_if_shared(path);
        }
        Ok(dir)
    }

    /// Undo what [`DataDir::open`] created, for a start-up that failed before serving:
    /// a failing start leaves nothing behind.
    pub fn discard(self) {
        remove_created(self.created.as_deref());
    }

    fn take_lock(&mut self) -> anyhow::Result<()> {
        let shown = self.path.display();
        match self._lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder wrote its pid after locking; an empty file means it is just
                // starting.
                let _ = self._lock.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("another timacct serve (pid {pid})"),
                    Err(_) => "another timacct serve".to_owned(),
                };
                anyhow::bail!(
                    "the data directory {shown} is in use by {holder}: stop that server, or pass another --data-dir"
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {shown}/{LOCK_FILE}: {}", reason(&e))
            }
        }
        let pid = std::process::id();
        let write = |f: &mut File| -> std::io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{pid}")?;
            f.sync_all()
        };
        write(&mut self._lock)
            .map_err(|e| anyhow::anyhow!("cannot write {shown}/{LOCK_FILE}: {}", reason(&e)))
    }

    /// Make a just-created SQLite database and its WAL and shared-memory files 0600. SQLite
    /// creates them with the process umask (usually 0644); the 0700 directory already keeps
    /// others out, and this keeps the files private even if the directory is later opened
    /// up. Files created later (a new WAL) inherit the database file's mode from SQLite.
    pub fn restrict_sqlite_files(&self) -> anyhow::Result<()> {
        if !self.new_sqlite {
            return Ok(());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for suffix in ["", "-wal", "-shm"] {
                let path = self.path.join(format!("{SQLITE_FILE}{suffix}"));
                match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => anyhow::bail!("cannot chmod 600 {}: {}", path.display(), reason(&e)),
                }
            }
        }
        Ok(())
    }
}

/// Create `path` and any missing parents, the leaf 0700. Returns the highest directory
/// created.
fn create_private_dir(path: &Path) -> anyhow::Result<PathBuf> {
    let mut highest = path.to_owned();
    let mut up = path.parent();
    while let Some(parent) = up {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        highest = parent.to_owned();
        up = parent.parent();
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(path) {
        Ok(()) => Ok(highest),
        Err(e) => {
            // Parents made before the failure are this run's too.
            if highest.exists() {
                let _ = std::fs::remove_dir_all(&highest);
            }
            anyhow::bail!(
                "cannot create the data directory {}: {}",
                path.display(),
                reason(&e)
            )
        }
    }
}

/// Open (creating if needed) the lock file, which is also the test that the directory can
/// be written: better to learn it now than when the first import fails.
fn open_lock_file(dir: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot use the data directory {}: {}",
                dir.display(),
                reason(&e)
            )
        })
}

fn remove_created(created: Option<&Path>) {
    if let Some(dir) = created {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Warn about an existing directory that other users can enter: it is left as the operator
/// set it, but they should know.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %path.display(),
                    mode = format!("{mode:o}"),
                    "the data directory is accessible to other users; chmod 700 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// What an OS error means for a data directory, and what to do about it.
fn reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => {
            "permission denied: run as a user who may write there, or pass a --data-dir you own"
                .to_owned()
        }
        ErrorKind::ReadOnlyFilesystem => {
            "the filesystem is read-only: pass a --data-dir on a writable filesystem".to_owned()
        }
        ErrorKind::NotADirectory => {
            "a part of its path is a file, not a directory: pass another --data-dir".to_owned()
        }
        ErrorKind::StorageFull => "the disk is full: free some space".to_owned(),
        _ => e.to_string(),
    }
}
