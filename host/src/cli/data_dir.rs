//! One daemon per data directory: `serve` and `dev` hold an exclusive lock on
//! `<data dir>/refract.lock` for as long as they run. Two processes on one SQLite
//! file would each believe they are its only writer (the head, the wake-ups and the
//! agents live in the process), and two on one components folder would race on its
//! files. The lock is the operating system's (released when the process ends, even
//! by `kill -9`), so a stale lock file never blocks a restart.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{Context, bail};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "refract.lock";

/// Takes the data directory's lock (creating the directory), or says which process
/// holds it.
pub fn lock(data_dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            // The holder's pid, for the message; a short read says nothing.
            let _ = file.take(32).read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "another refract process{} is serving data dir {}: one daemon per data \
                 directory (its SQLite file has one writer); stop it, or give this one \
                 another --data-dir",
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                },
                data_dir.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_dir_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock(dir.path()).expect("first");
        let e = lock(dir.path()).expect_err("second").to_string();
        let pid = std::process::id().to_string();
        assert!(
            e.contains("another refract process") && e.contains(&pid),
            "{e}"
        );
        drop(held);
        lock(dir.path()).expect("free again once the holder is gone");
    }
}
