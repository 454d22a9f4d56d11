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
    /// The Slurm job (`JOB_TASK` for an array task) the run executed in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
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
            hostname: hostname(),
            slurm_job: slurm_job(),
        }
    }
}

/// The Slurm job this process runs in: `ARRAYJOB_TASK` for a task of a job array, else the job id.
pub fn slurm_job() -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID"), env("SLURM_JOB_ID")) {
        (Some(array), Some(task), _) => Some(format!("{array}_{task}")),
        (_, _, job) => job,
    }
}

pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
}

/// Starts measuring one run's peak memory. The process keeps freed memory for reuse (main.rs), so after
/// a large run its resident size stays high and a later, smaller run would read the earlier one's
/// peak: freed memory is first handed back to the kernel (`malloc_trim`), then the kernel's high-water
/// mark is reset to the resident size that remains (`clear_refs` 5). Returns how the reading will have
/// been measured, for the record, and the resident size at the start (the program, and data other runs
/// of the same invocation hold), which the run's own share is the peak less.
pub fn start_peak_memory() -> (String, Option<u64>) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    match (reset, resident_bytes()) {
        (true, Some(base)) => (
            "resident high-water mark (VmHWM) during the run, reset at its start after freed memory was returned to the kernel; it includes what was resident before the run (peak_memory_baseline_bytes: the program, and the data of other runs in the same invocation)".into(),
            Some(base),
        ),
        _ => ("peak resident memory of the whole process so far (the counter could not be reset on this system)".into(), None),
    }
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).map(|kb| kb * 1024)
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
