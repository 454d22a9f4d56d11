//! Claims: which process is executing which run, so that several `bench run` processes on one runs
//! directory (on one machine, or on a shared file system) execute each run exactly once.
//!
//! A claim is an advisory lock (`flock`) on `<id>.claim` beside the record, holding the claimant's host,
//! pid and start time for people and for `bench status`. The lock, not the file, is the claim: the
//! kernel (or the file server's lock manager) releases it when the process ends, however it ends, so a
//! claim whose process is gone is simply taken over by the next process that asks. The file is removed
//! when the run's record is written; a process that locked a file another one had just removed notices
//! (the path no longer names the file it locked) and tries again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds (or last held) a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimant {
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    /// The Slurm job and array task, when the process runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

impl Claimant {
    pub fn this_process() -> Claimant {
        Claimant {
            host: crate::environment::hostname().unwrap_or_else(|| "unknown".into()),
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            job: crate::environment::slurm_job(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{} pid {}{} since {}", self.host, self.pid, self.job.as_deref().map(|j| format!(" (job {j})")).unwrap_or_default(), self.started_at)
    }
}

/// A held claim; dropping it removes the claim file and releases the lock.
#[derive(Debug)]
pub struct Claim {
    file: File,
    path: PathBuf,
    /// Who held the claim before this process took it over, when its process had gone.
    pub took_over: Option<Claimant>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Removed while still locked, so a process that opens the path from now on gets a new file.
        let _ = std::fs::remove_file(&self.path);
        // SAFETY: unlocking a descriptor this struct owns; closing it would release the lock as well.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The result of asking for a claim without waiting.
#[derive(Debug)]
pub enum Attempt {
    Claimed(Claim),
    /// Another live process holds it (who, as far as its file says).
    Held(Option<Claimant>),
}

fn read_claimant(file: &mut File) -> Option<Claimant> {
    let mut s = String::new();
    file.seek(std::io::SeekFrom::Start(0)).ok()?;
    file.take(4096).read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// Whether `file` (locked) is still the one at `path`, not one removed by its holder meanwhile.
fn still_there(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Claims `path` for this process: without waiting (`wait` false: `Held` when another process has it)
/// or waiting until the holder finishes.
pub fn claim(path: &Path, me: &Claimant, wait: bool) -> std::io::Result<Attempt> {
    loop {
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(Attempt::Held(read_claimant(&mut file))),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
        if !still_there(&file, path) {
            continue; // its holder finished and removed it between our open and our lock
        }
        let took_over = read_claimant(&mut file);
        file.set_len(0)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        file.write_all(serde_json::to_string(me).expect("a claimant serialises").as_bytes())?;
        file.sync_data()?;
        return Ok(Attempt::Claimed(Claim { file, path: path.to_path_buf(), took_over }));
    }
}

/// Who holds the claim at `path` now, if anyone: None when the file is absent or its lock is free.
pub fn holder(path: &Path) -> Option<Claimant> {
    let mut file = File::open(path).ok()?;
    // SAFETY: as above; a shared lock taken and dropped at once only tests whether an exclusive one is held.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    if free {
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return None;
    }
    read_claimant(&mut file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_released_on_drop_and_taken_over_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.claim");
        let me = Claimant::this_process();
        let Attempt::Claimed(first) = claim(&path, &me, false).unwrap() else { panic!("free claim not taken") };
        assert!(first.took_over.is_none());
        // flock is per open file description: a second open in this process conflicts like another process.
        match claim(&path, &me, false).unwrap() {
            Attempt::Held(Some(who)) => assert_eq!(who.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        assert_eq!(holder(&path).map(|c| c.pid), Some(std::process::id()));
        drop(first);
        assert!(!path.exists(), "the claim file goes with the claim");
        assert!(holder(&path).is_none());

        // A file left by a process that died (no lock held) is taken over, and says whose it was.
        let dead = Claimant { host: "elsewhere".into(), pid: 1, started_at: "2026-01-01T00:00:00Z".into(), job: None };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let Attempt::Claimed(c) = claim(&path, &me, false).unwrap() else { panic!("stale claim not taken over") };
        assert_eq!(c.took_over, Some(dead));
    }
}
