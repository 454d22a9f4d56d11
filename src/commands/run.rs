use anyhow::Result;

use super::load_specs;
use crate::cli::{GlobalArgs, RunArgs};
use crate::error::{EXIT_FAILED, EXIT_USAGE};
use crate::progress::Progress;
use crate::runner::{execute, plan, RunOptions};
use crate::store::Store;

pub fn run(args: &RunArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    let specs = load_specs(&args.specs, g)?;
    let store = Store::new(&g.runs_dir);
    let opts = RunOptions { data_dir: g.data_dir.clone(), models_dir: g.models_dir.clone(), force: args.force };
    if !args.dry_run {
        store.ensure_writable()?;
    }
    let mut plans = plan(&specs, &opts, &store, progress)?;
    if plans.is_empty() {
        eprintln!("error: the specs expand to no runs");
        return Ok(EXIT_USAGE);
    }
    if let Some(shard) = args.shard {
        let all = plans.iter().map(|p| p.id.as_str()).collect::<std::collections::HashSet<_>>().len();
        plans = crate::runner::shard_of(plans, &store, shard);
        let mine = plans.iter().map(|p| p.id.as_str()).collect::<std::collections::HashSet<_>>().len();
        if !g.quiet {
            eprintln!("shard {shard}: {mine} of the {all} runs");
        }
        if plans.is_empty() {
            return Ok(0);
        }
    }
    if args.dry_run {
        println!("{:<16}  {:<7}  {:<20}  {:<12}  {:<8}  {:>5}  {:>6}/{:<6}  sweep", "id", "status", "spec", "dataset", "method", "seed", "train", "eval");
        for p in &plans {
            let point: Vec<String> = p.run.sweep_point.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let status = if p.done && !args.force { "done" } else { "pending" };
            println!(
                "{:<16}  {:<7}  {:<20}  {:<12}  {:<8}  {:>5}  {:>6}/{:<6}  {}",
                p.id,
                status,
                p.spec.name,
                p.run.config.dataset.display_name(),
                p.run.config.method.kind(),
                p.run.config.seed,
                p.data.summary.train.examples,
                p.data.summary.eval.examples,
                point.join(" ")
            );
        }
        // Rows set aside while reading, once per data set.
        let mut seen = std::collections::HashSet::new();
        for p in &plans {
            if let Some(skipped) = crate::runner::skipped_rows(&p.data.summary).filter(|_| seen.insert(p.data.summary.fingerprint.clone())) {
                println!("{}: {skipped}", p.data.summary.name);
            }
        }
        return Ok(0);
    }
    let outcome = execute(&plans, &opts, &store, progress)?;
    if !g.quiet || outcome.failed > 0 {
        let ids: std::collections::HashSet<&str> = plans.iter().map(|p| p.id.as_str()).collect();
        let shared = if ids.len() < plans.len() { format!(" ({} asked for by more than one spec)", plans.len() - ids.len()) } else { String::new() };
        let elsewhere = if outcome.elsewhere > 0 { format!(", {} done by another process", outcome.elsewhere) } else { String::new() };
        eprintln!(
            "{} run(s){shared}: {} ran, {} already done (skipped){elsewhere}, {} failed; records in {}",
            ids.len(),
            outcome.ran,
            outcome.skipped,
            outcome.failed,
            store.dir().display()
        );
    }
    Ok(if outcome.failed > 0 { EXIT_FAILED } else { 0 })
}
