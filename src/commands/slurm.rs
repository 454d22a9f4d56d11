use anyhow::Result;

use super::load_specs;
use crate::cli::{GlobalArgs, SlurmArgs};
use crate::error::UsageError;
use crate::slurm::{submit, Resources, Sweep};
use crate::store::Store;

pub fn run(args: &SlurmArgs, g: &GlobalArgs) -> Result<i32> {
    // The specs are checked here, on the login node, so that a typo fails now and not in every task.
    load_specs(&args.specs, g)?;
    if let Some(bad) = args.extra.iter().find(|l| l.contains(['\n', '\r'])) {
        return Err(UsageError(format!("--sbatch {bad:?}: one line of #SBATCH options, without line breaks")).into());
    }
    let store = Store::new(&g.runs_dir);
    store.ensure_writable()?;
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let sweep = Sweep {
        bench: std::env::current_exe()?,
        specs: args.specs.iter().map(|s| abs(s)).collect(),
        runs_dir: abs(&g.runs_dir),
        data_dir: abs(&g.data_dir),
        models_dir: abs(&g.models_dir),
        report: abs(&args.report),
        log_dir: abs(&g.runs_dir.join(".slurm")),
        tasks: args.tasks as usize,
    };
    let resources = Resources {
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        gpus_per_task: args.gpus_per_task,
        account: args.account.clone(),
        extra: args.extra.clone(),
    };
    if !args.submit {
        println!("# ---- array.sbatch: {} tasks, one shard each", sweep.tasks);
        print!("{}", sweep.array_script(&resources));
        println!("# ---- report.sbatch: after the array, however it ended");
        print!("{}", sweep.final_script(&resources));
        eprintln!("Submit both with: jid=$(sbatch --parsable array.sbatch) && sbatch --dependency=afterany:$jid report.sbatch (or bench slurm ... --submit)");
        return Ok(0);
    }
    let dir = sweep.log_dir.join(chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f").to_string());
    let ids = submit(&sweep, &resources, &dir)?;
    println!("array {} ({} tasks)", ids.array, sweep.tasks);
    println!("report {} (after the array: bench check, then bench report --out {})", ids.report, sweep.report.display());
    eprintln!(
        "scripts in {}; task output in {}; progress: bench status {}",
        dir.display(),
        sweep.log_dir.display(),
        args.specs.iter().map(|s| s.display().to_string()).collect::<Vec<_>>().join(" ")
    );
    Ok(0)
}
