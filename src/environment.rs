//! What a run ran on, and how much memory it took.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub cpu: String,
    pub threads: usize,
    pub os: String,
    pub arch: String,
    pub crate_version: String,
    /// The commit textbench was built from, with `-dirty` when the tree had changes; absent outside git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

impl Environment {
    pub fn capture() -> Environment {
        Environment {
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            threads: rayon::current_num_threads(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: option_env!("TEXTBENCH_GIT_COMMIT").filter(|s| !s.is_empty()).map(String::from),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so the next reading is this run's peak.
/// Returns false where that is not possible; the reading is then the process's peak so far.
pub fn reset_peak_memory() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident memory of this process in bytes (since the last reset).
pub fn peak_memory_bytes() -> Option<u64> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kb) = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()) {
            return Some(kb * 1024);
        }
    }
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0).then(|| usage.ru_maxrss as u64 * 1024)
    }
}
