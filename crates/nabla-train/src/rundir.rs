//! The run directory: one process at a time (a lock), no silent overwrite of a run already
//! there, and no leftovers of a save that was cut short.

use std::fs::File;
use std::path::Path;

use nabla_core::{Error, Result};

/// The files a run writes; `--force` removes them before a new run starts.
pub const RUN_FILES: [&str; 5] = [
    "checkpoint.safetensors",
    "config.json",
    "metrics.csv",
    "confusion.csv",
    "summary.json",
];

fn file_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Creates `dir` if needed and takes its lock (`dir/.lock`, an advisory lock that the
/// operating system releases when the process ends, however it ends). Held until the
/// returned file is dropped; a second process gets an error instead of writing alongside.
pub fn lock(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let path = dir.join(".lock");
    let f = File::create(&path).map_err(|e| file_err(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::File {
            path: dir.display().to_string(),
            msg: "another nabla process is training in this run directory; wait for it, or choose another --out".into(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(file_err(&path, e)),
    }
}

/// Removes `*.tmp` files: the halves of saves that a crash cut short (a save writes
/// `name.tmp`, then renames it; see `nabla_nn::state::write_atomic`). Call with the lock held.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| file_err(dir, e))? {
        let path = entry.map_err(|e| file_err(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path).map_err(|e| file_err(&path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes `dir` ready for a new run. A run already there is an error unless `force`, which
/// deletes its files (and says so when `verbose`).
pub fn claim(dir: &Path, force: bool, verbose: bool) -> Result<()> {
    let present: Vec<&str> = RUN_FILES.into_iter().filter(|f| dir.join(f).exists()).collect();
    if present.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::File {
            path: dir.display().to_string(),
            msg: format!(
                "already holds a run ({}); continue it with --resume, replace it with --force, or choose another --out",
                present.join(", ")
            ),
        });
    }
    if verbose {
        eprintln!(
            "--force: replacing the run in {} ({})",
            dir.display(),
            present.join(", ")
        );
    }
    for f in present {
        let path = dir.join(f);
        std::fs::remove_file(&path).map_err(|e| file_err(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nabla-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused_until_the_first_is_dropped() {
        let d = scratch("lock");
        let first = lock(&d).unwrap();
        let e = lock(&d).unwrap_err().to_string();
        assert!(e.contains("another nabla process"), "{e}");
        drop(first);
        lock(&d).unwrap();
    }

    #[test]
    fn an_existing_run_is_kept_unless_forced_and_temporaries_are_removed() {
        let d = scratch("claim");
        std::fs::create_dir_all(&d).unwrap();
        claim(&d, false, false).unwrap();
        std::fs::write(d.join("checkpoint.safetensors"), b"x").unwrap();
        std::fs::write(d.join("checkpoint.safetensors.tmp"), b"half").unwrap();
        let e = claim(&d, false, false).unwrap_err().to_string();
        assert!(e.contains("already holds a run (checkpoint.safetensors)"), "{e}");
        assert!(d.join("checkpoint.safetensors").exists());
        assert_eq!(remove_stale_temporaries(&d).unwrap(), 1);
        assert!(!d.join("checkpoint.safetensors.tmp").exists());
        claim(&d, true, false).unwrap();
        assert!(!d.join("checkpoint.safetensors").exists());
    }
}
