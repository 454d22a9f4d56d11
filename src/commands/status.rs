use std::collections::BTreeSet;

use anyhow::Result;

use super::load_specs;
use crate::cli::{GlobalArgs, StatusArgs};
use crate::progress::Progress;
use crate::runner::{plan, RunOptions};
use crate::store::{claim, RunStatus, Store};

pub fn run(args: &StatusArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    let specs = load_specs(&args.specs, g)?;
    let store = Store::new(&g.runs_dir);
    let opts = RunOptions { data_dir: g.data_dir.clone(), models_dir: g.models_dir.clone(), force: false };
    let plans = plan(&specs, &opts, &store, progress)?;
    println!("{:<24}  {:>5}  {:>5}  {:>6}  {:>7}  {:>5}", "spec", "runs", "done", "failed", "claimed", "to do");
    let mut claimed_lines = Vec::new();
    for spec in &specs {
        let ids: BTreeSet<&str> = plans.iter().filter(|p| std::ptr::eq(p.spec, spec)).map(|p| p.id.as_str()).collect();
        let (mut done, mut failed, mut claimed, mut todo) = (0, 0, 0, 0);
        for id in &ids {
            let holder = claim::holder(&store.claim_path(id));
            match (store.get(id).ok().flatten().map(|r| r.status), holder) {
                (Some(RunStatus::Ok), _) => done += 1,
                (_, Some(who)) => {
                    claimed += 1;
                    claimed_lines.push(format!("{id}  {:<20} claimed by {}", spec.name, who.describe()));
                }
                (Some(RunStatus::Failed), None) => failed += 1,
                (None, None) => todo += 1,
            }
        }
        println!("{:<24}  {:>5}  {:>5}  {:>6}  {:>7}  {:>5}", spec.name, ids.len(), done, failed, claimed, todo);
    }
    for l in claimed_lines {
        println!("{l}");
    }
    Ok(0)
}
