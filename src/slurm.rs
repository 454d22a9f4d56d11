//! Slurm job arrays: the sbatch scripts that run a sweep as N array tasks, each executing its shard
//! (`bench run --shard I/N`) on a runs directory they share, and a final job, started when the array has
//! ended however it ended (`afterany`), that holds the runs to their floors and renders the report.
//!
//! Paths are written absolute, so the scripts run from any directory on any node that sees the same
//! file system. A task that is pre-empted or cancelled loses only the run it was executing: its claim
//! dies with it, and submitting the same array again skips the runs that have records.

use std::path::{Path, PathBuf};

/// What the scripts run and where.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The `bench` binary the tasks run.
    pub bench: PathBuf,
    pub specs: Vec<PathBuf>,
    pub runs_dir: PathBuf,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub report: PathBuf,
    /// Where the tasks' output files go.
    pub log_dir: PathBuf,
    pub tasks: usize,
}

/// `#SBATCH` settings given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub mem: Option<String>,
    pub gpus_per_task: Option<usize>,
    pub account: Option<String>,
    /// Further lines, each written as `#SBATCH <line>`.
    pub extra: Vec<String>,
}

/// A word for a shell script, quoted when it needs to be.
fn sh(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn path(p: &Path) -> String {
    sh(&p.to_string_lossy())
}

fn header(name: &str, r: &Resources, with_task_resources: bool) -> String {
    let mut out = format!("#!/bin/bash\n#SBATCH --job-name={}\n", sh(name));
    let mut line = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push_str(&format!("#SBATCH --{k}={}\n", sh(&v)));
        }
    };
    line("partition", r.partition.clone());
    line("account", r.account.clone());
    line("time", r.time.clone());
    if with_task_resources {
        line("cpus-per-task", r.cpus_per_task.map(|c| c.to_string()));
        line("mem", r.mem.clone());
        line("gpus-per-task", r.gpus_per_task.map(|g| g.to_string()));
    }
    for extra in &r.extra {
        out.push_str(&format!("#SBATCH {extra}\n"));
    }
    out
}

impl Sweep {
    fn globals(&self) -> String {
        format!("--runs-dir {} --data-dir {} --models-dir {}", path(&self.runs_dir), path(&self.data_dir), path(&self.models_dir))
    }

    fn specs(&self) -> String {
        self.specs.iter().map(|s| path(s)).collect::<Vec<_>>().join(" ")
    }

    /// The array: task I of N runs shard I/N.
    pub fn array_script(&self, r: &Resources) -> String {
        let mut s = header("textbench", r, true);
        s.push_str(&format!("#SBATCH --array=1-{}\n", self.tasks));
        s.push_str(&format!("#SBATCH --output={}\n", path(&self.log_dir.join("%A_%a.out"))));
        s.push_str("# One shard of the sweep per task; runs already in the store are skipped, and runs another task\n");
        s.push_str("# holds are left to it. Threads: the CPUs Slurm gave the task.\n");
        s.push_str("set -eu\n");
        s.push_str(&format!(
            "exec {} {} --threads \"${{SLURM_CPUS_PER_TASK:-1}}\" run --shard \"$SLURM_ARRAY_TASK_ID/{}\" {}\n",
            path(&self.bench),
            self.globals(),
            self.tasks,
            self.specs()
        ));
        s
    }

    /// The final job: `bench check` of every spec, then the report; exits with check's code.
    pub fn final_script(&self, r: &Resources) -> String {
        let mut s = header("textbench-report", r, false);
        s.push_str(&format!("#SBATCH --output={}\n", path(&self.log_dir.join("%j-report.out"))));
        s.push_str("# Runs after the array has ended (afterany): floors first, then the report of every run.\n");
        s.push_str("set -u\n");
        s.push_str(&format!("{} {} check {}\n", path(&self.bench), self.globals(), self.specs()));
        s.push_str("code=$?\n");
        s.push_str(&format!("{} {} report --out {} || code=$?\n", path(&self.bench), self.globals(), path(&self.report)));
        s.push_str("exit $code\n");
        s
    }
}

/// Job ids of a submitted sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub array: String,
    pub report: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run {program}: {source}. Is this a Slurm login node (sbatch on PATH)?")]
    Spawn { program: String, source: std::io::Error },
    #[error("{program} failed ({status}): {stderr}")]
    Failed { program: String, status: String, stderr: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// `sbatch --parsable` of a script file: the job id it prints (`ID` or `ID;cluster`).
fn sbatch(script: &Path, dependency: Option<&str>) -> Result<String, SlurmError> {
    let mut cmd = std::process::Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(d) = dependency {
        cmd.arg(format!("--dependency=afterany:{d}"));
    }
    let out = cmd.arg(script).output().map_err(|source| SlurmError::Spawn { program: "sbatch".into(), source })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            program: "sbatch".into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlurmError::Failed {
            program: "sbatch".into(),
            status: "no job id".into(),
            stderr: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        });
    }
    Ok(id)
}

/// Writes both scripts into `dir` and submits them: the array, then the final job depending on it.
pub fn submit(sweep: &Sweep, r: &Resources, dir: &Path) -> Result<Submitted, SlurmError> {
    let write = |name: &str, text: String| -> Result<PathBuf, SlurmError> {
        let p = dir.join(name);
        crate::store::write_atomic(&p, text.as_bytes()).map_err(|source| SlurmError::Write { path: p.clone(), source })?;
        Ok(p)
    };
    std::fs::create_dir_all(&sweep.log_dir).map_err(|source| SlurmError::Write { path: sweep.log_dir.clone(), source })?;
    let array = write("array.sbatch", sweep.array_script(r))?;
    let report = write("report.sbatch", sweep.final_script(r))?;
    let array_id = sbatch(&array, None)?;
    let report_id = sbatch(&report, Some(&array_id))?;
    Ok(Submitted { array: array_id, report: report_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> Sweep {
        Sweep {
            bench: "/opt/bench".into(),
            specs: vec!["/w/experiments/a b.yaml".into(), "/w/experiments/c.yaml".into()],
            runs_dir: "/w/runs".into(),
            data_dir: "/w/data".into(),
            models_dir: "/w/models".into(),
            report: "/w/reports/index.html".into(),
            log_dir: "/w/runs/.slurm".into(),
            tasks: 3,
        }
    }

    #[test]
    fn the_array_runs_one_shard_per_task_with_the_resources_asked_for() {
        let r = Resources {
            partition: Some("gpu".into()),
            cpus_per_task: Some(4),
            gpus_per_task: Some(1),
            extra: vec!["--exclusive".into()],
            ..Default::default()
        };
        let s = sweep().array_script(&r);
        for line in [
            "#SBATCH --array=1-3",
            "#SBATCH --partition=gpu",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --exclusive",
            "#SBATCH --output=/w/runs/.slurm/%A_%a.out",
        ] {
            assert!(s.contains(line), "{line} in:\n{s}");
        }
        assert!(s.contains("run --shard \"$SLURM_ARRAY_TASK_ID/3\" '/w/experiments/a b.yaml' /w/experiments/c.yaml"), "{s}");
        let f = sweep().final_script(&r);
        assert!(f.contains("check '/w/experiments/a b.yaml'") && f.contains("report --out /w/reports/index.html") && !f.contains("gpus-per-task"), "{f}");
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(sh("plain/path-1.yaml"), "plain/path-1.yaml");
        assert_eq!(sh("it's here"), r"'it'\''s here'");
        assert_eq!(sh("$HOME"), "'$HOME'");
    }
}
