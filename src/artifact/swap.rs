//! Puts a freshly written model folder in place so that the model's path holds a complete model
//! at every instant, and cleans up after writers that were killed.
//!
//! A folder cannot be replaced by `rename` while it exists, and the obvious two renames
//! (old → backup, new → path) leave a window in which the path holds nothing: a kill there
//! loses the model from where every user looks for it. Linux (`renameat2`) and macOS
//! (`renamex_np`) can *exchange* two paths in one step; the new folder takes the path and the old
//! one lands in the staging name, from where it is removed. Where the file system cannot
//! exchange, the two renames remain, and [`recover`] puts an orphaned backup back on the next
//! save or load.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ArtifactError;

/// The staging folder a save writes into: `.NAME.tmp-<pid>` beside `out`.
pub fn staging_dir(out: &Path) -> PathBuf {
    sibling(out, "tmp", std::process::id())
}

fn sibling(out: &Path, kind: &str, pid: u32) -> PathBuf {
    parent(out).join(format!(".{}.{kind}-{pid}", name(out)))
}

fn name(out: &Path) -> String {
    out.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
}

fn parent(out: &Path) -> &Path {
    out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> ArtifactError {
    let path = path.to_path_buf();
    move |source| ArtifactError::Write { path, source }
}

/// The staging (`tmp`) and backup (`old`) folders that earlier saves of `out` left behind, with
/// the process id in their name.
fn leftovers(out: &Path) -> Vec<(PathBuf, &'static str, u32)> {
    let prefix = format!(".{}.", name(out));
    let Ok(entries) = fs::read_dir(parent(out)) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else { continue };
        for kind in ["tmp", "old"] {
            if let Some(pid) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix('-')).and_then(|p| p.parse().ok()) {
                found.push((entry.path(), kind, pid));
            }
        }
    }
    found.sort();
    found
}

/// Whether process `pid` still runs (then its folders are in use, not stale). Where this cannot
/// be told, the answer is "yes": a folder is never removed on a guess.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
        // ESRCH: no such process. EPERM: it exists but belongs to someone else.
        !matches!(rustix::process::test_kill_process(pid), Err(e) if e == rustix::io::Errno::SRCH)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Repairs what killed saves of `out` left: if `out` is missing and a dead writer's backup
/// holds the previous model, the backup is put back; then every staging or backup folder of a
/// process that no longer runs is removed. Returns the folders removed or restored.
pub fn recover(out: &Path) -> Result<Vec<PathBuf>, ArtifactError> {
    let mut touched = Vec::new();
    let stale: Vec<_> = leftovers(out).into_iter().filter(|(_, _, pid)| !alive(*pid)).collect();
    if !out.exists() {
        // The newest backup is the model the interrupted save was replacing.
        let backup = stale
            .iter()
            .filter(|(p, kind, _)| *kind == "old" && p.join(super::META_FILE).is_file())
            .max_by_key(|(p, _, _)| fs::metadata(p).and_then(|m| m.modified()).ok());
        if let Some((path, _, _)) = backup {
            fs::rename(path, out).map_err(write_err(out))?;
            touched.push(path.clone());
        }
    }
    for (path, _, _) in stale {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(write_err(&path))?;
            touched.push(path);
        }
    }
    Ok(touched)
}

/// Replaces `out` with the complete folder `staged` (see the module docs for why an exchange).
pub fn swap_in(staged: &Path, out: &Path) -> Result<(), ArtifactError> {
    if !out.exists() {
        return fs::rename(staged, out).map_err(write_err(out));
    }
    match exchange(staged, out) {
        // `staged` now holds the previous model.
        Ok(()) => fs::remove_dir_all(staged).map_err(write_err(staged)),
        Err(_) => {
            let backup = sibling(out, "old", std::process::id());
            fs::rename(out, &backup).map_err(write_err(out))?;
            fs::rename(staged, out).map_err(write_err(out))?;
            fs::remove_dir_all(&backup).map_err(write_err(&backup))
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios"))]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(io::Error::from)
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "ios")))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn model(dir: &Path, tag: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("model.safetensors"), tag).unwrap();
        fs::write(dir.join(super::super::META_FILE), tag).unwrap();
    }

    /// A pid no process has: above Linux's pid_max limit (2^22).
    const DEAD: u32 = 4_194_400;

    #[test]
    fn swap_replaces_the_folder_and_leaves_nothing_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("m");
        model(&out, "old");
        let staged = staging_dir(&out);
        model(&staged, "new");
        swap_in(&staged, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("model.safetensors")).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m")]);
    }

    /// Regression (the two-rename swap): a reader polling the path while saves replace it must
    /// find a complete model every time it looks.
    #[test]
    fn model_path_never_empty_during_repeated_swaps() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("m");
        model(&out, "0");
        let stop = Arc::new(AtomicBool::new(false));
        let (misses, looks) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let watcher = {
            let (out, stop, misses, looks) = (out.clone(), stop.clone(), misses.clone(), looks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if !out.join(super::super::META_FILE).is_file() {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                    looks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        for i in 1..=300 {
            let staged = staging_dir(&out);
            model(&staged, &i.to_string());
            swap_in(&staged, &out).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        assert!(looks.load(Ordering::Relaxed) > 300, "the watcher barely ran");
        assert_eq!(misses.load(Ordering::Relaxed), 0, "the model path was empty during a swap");
        assert_eq!(fs::read_to_string(out.join("model.safetensors")).unwrap(), "300");
    }

    #[test]
    fn recover_removes_dead_writers_folders_and_keeps_live_ones() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("m");
        model(&out, "current");
        let dead_tmp = sibling(&out, "tmp", DEAD);
        let dead_old = sibling(&out, "old", DEAD + 1);
        // PID 1 always runs: a writer that is still at work keeps its folder.
        let live_tmp = sibling(&out, "tmp", 1);
        for d in [&dead_tmp, &dead_old, &live_tmp] {
            model(d, "x");
        }
        let other = root.path().join(".mm.tmp-5");
        model(&other, "another model's");
        let touched = recover(&out).unwrap();
        assert_eq!(touched.len(), 2, "{touched:?}");
        assert!(!dead_tmp.exists() && !dead_old.exists());
        assert!(live_tmp.exists() && other.exists());
        assert_eq!(fs::read_to_string(out.join("model.safetensors")).unwrap(), "current");
    }

    /// Regression: a kill between the fallback's two renames left the model only under
    /// `.NAME.old-<pid>`; the next save or load puts it back.
    #[test]
    fn recover_restores_the_backup_when_the_model_is_missing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("m");
        let backup = sibling(&out, "old", DEAD);
        model(&backup, "previous");
        model(&sibling(&out, "tmp", DEAD), "half written");
        recover(&out).unwrap();
        assert_eq!(fs::read_to_string(out.join("model.safetensors")).unwrap(), "previous");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
