//! Atomic file replacement: write a sibling temporary file, sync it, rename it over the
//! target, sync the directory.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use recur_core::{Error, Result};

/// Replaces the file at `path` with `bytes`, atomically.
///
/// The bytes go to a uniquely named temporary file in the same directory, which is synced
/// to disk and then renamed over `path`; on Unix the directory is synced too, so the rename
/// itself survives a power cut. A reader (or a crash at any moment) therefore sees either
/// the previous file whole or the new one whole, never a mix. On failure the temporary file
/// is removed and the previous file is left as it was.
///
/// A process killed while saving cannot remove its temporary file, so each save first
/// removes the ones such saves left in the directory: regular files named
/// `.<name>.<pid>-<n>.tmp` whose process `<pid>` no longer runs (where that cannot be
/// told, files untouched for an hour). Nothing else is ever removed.
///
/// ```
/// # fn main() -> recur_core::Result<()> {
/// let dir = std::env::temp_dir().join(format!("recur-io-doc-atomic-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("notes.txt");
///
/// recur_io::write_atomic(&path, b"first")?;
/// recur_io::write_atomic(&path, b"second")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"second");
/// // Nothing but the target is left behind.
/// assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`Error::Io`] carrying `path` when the path names no file, the directory does not exist
/// or is not writable, the disk is full, or `path` is an existing directory.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], but the content is produced by `write`, which streams it into the
/// temporary file (for content too large to build in memory first).
///
/// If `write` fails, the temporary file is removed and `path` is untouched.
///
/// ```
/// use std::io::Write;
///
/// # fn main() -> recur_core::Result<()> {
/// let dir = std::env::temp_dir().join(format!("recur-io-doc-with-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("table.csv");
/// recur_io::write_atomic(&path, b"old")?;
///
/// // A writer that fails halfway leaves the previous content in place.
/// let failed = recur_io::write_atomic_with(&path, |file| {
///     file.write_all(b"new, but")?;
///     Err(std::io::Error::other("disk full"))
/// });
/// assert!(failed.is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"old");
///
/// recur_io::write_atomic_with(&path, |file| writeln!(file, "step,loss\n1,0.5"))?;
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "step,loss\n1,0.5\n");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// As [`write_atomic`]; an error returned by `write` becomes [`Error::Io`] carrying `path`.
pub fn write_atomic_with(
    path: impl AsRef<Path>,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let path = path.as_ref();
    let fail = |source| Error::io(path, source);
    let file_name = path.file_name().ok_or_else(|| {
        fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file to write",
        ))
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };

    remove_stale_temps(dir);
    let (temp_path, mut file) = create_temp(dir, file_name).map_err(fail)?;
    let temp = TempFile(Some(temp_path));
    write(&mut file).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    fs::rename(temp.path(), path).map_err(fail)?;
    temp.keep();
    sync_dir(dir).map_err(fail)
}

/// Opens a new file `.<name>.<pid>-<n>.tmp` in `dir`. The process id and a per-process
/// counter keep concurrent writers (threads or processes) from sharing a temporary file.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}-{n}.tmp", std::process::id()));
        let temp_path = dir.join(temp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            // Left over by a crashed process that had the same id: pick the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The process id in a temporary file name made by [`create_temp`]
/// (`.<name>.<pid>-<n>.tmp`), or `None` for any other name.
fn temp_owner(file_name: &str) -> Option<u32> {
    let inner = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, id) = inner.rsplit_once('.')?;
    let (pid, n) = id.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Whether the save that made a temporary file is certainly over.
fn abandoned(pid: u32, metadata: &fs::Metadata) -> bool {
    // Another thread of this process may be saving right now.
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    // Without a process table, only an old file is surely abandoned.
    const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);
    metadata
        .modified()
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER)
}

/// Removes the temporary files of interrupted saves in `dir` (best effort: a file that
/// cannot be listed or removed is left for the next save).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        // `DirEntry::metadata` does not follow symbolic links.
        match entry.metadata() {
            Ok(metadata) if metadata.is_file() && abandoned(pid, &metadata) => {
                let _ = fs::remove_file(entry.path());
            }
            _ => {}
        }
    }
}

/// Removes the temporary file when dropped, unless [`TempFile::keep`] was called (after
/// the rename, when the path names the target).
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Best effort: the original error is the one worth reporting.
            let _ = fs::remove_file(path);
        }
    }
}

/// Makes the rename durable: on Unix a rename is only on disk once its directory is synced.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Other platforms cannot open a directory as a file; their rename is already durable
/// enough for our purpose.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("recur-io-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_and_leaves_no_temporary_file() {
        let dir = scratch("replace");
        let path = dir.join("a.bin");
        for content in [&b"one"[..], b"two two", b""] {
            write_atomic(&path, content).unwrap();
            assert_eq!(fs::read(&path).unwrap(), content);
            assert_eq!(entries(&dir), ["a.bin"]);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failing_writer_keeps_the_previous_file() {
        let dir = scratch("failing");
        let path = dir.join("a.bin");
        write_atomic(&path, b"previous").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io { path: p, .. } if p == &path),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"previous");
        assert_eq!(entries(&dir), ["a.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_rename_removes_the_temporary_file() {
        let dir = scratch("rename");
        // A non-empty directory cannot be replaced by a file.
        let target = dir.join("occupied");
        fs::create_dir_all(target.join("inside")).unwrap();
        let err = write_atomic(&target, b"data").unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path == &target),
            "{err}"
        );
        assert_eq!(entries(&dir), ["occupied"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_directory_and_empty_path_are_errors() {
        let dir = scratch("missing");
        let path = dir.join("no/such/dir/a.bin");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
        assert!(write_atomic("", b"x").is_err());
        assert!(write_atomic(dir.join(".."), b"x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_recognised_exactly() {
        assert_eq!(temp_owner(".model.safetensors.123-4.tmp"), Some(123));
        assert_eq!(temp_owner(".a.b.7-0.tmp"), Some(7));
        for other in [
            "model.safetensors.123-4.tmp",
            ".model.safetensors.tmp",
            "..123-4.tmp",
            ".model.123-.tmp",
            ".model.-4.tmp",
            ".model.12a-4.tmp",
            ".model.123-4.tmp.bak",
            ".model.123_4.tmp",
            "notes.tmp",
        ] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }

    #[test]
    fn relative_path_in_the_working_directory() {
        // A bare file name has an empty parent; it must resolve to ".", not fail.
        let name = format!("recur-io-relative-{}.tmp-test", std::process::id());
        let path = std::env::current_dir().unwrap().join(&name);
        write_atomic(&name, b"here").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"here");
        fs::remove_file(&path).unwrap();
    }
}
