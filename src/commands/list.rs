use anyhow::Result;

use super::fmt_metric;
use crate::cli::{GlobalArgs, ListArgs};
use crate::store::RunStatus;

pub fn run(args: &ListArgs, g: &GlobalArgs) -> Result<i32> {
    let records = super::readable_records(g)?;
    let records: Vec<_> = records.into_iter().filter(|r| args.spec.as_ref().is_none_or(|s| r.spec_names().any(|n| n == s))).collect();
    if records.is_empty() {
        eprintln!("no runs in {}", g.runs_dir.display());
        return Ok(0);
    }
    println!(
        "{:<16}  {:<6}  {:<20}  {:<12}  {:<8}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  finished",
        "id", "status", "spec", "dataset", "method", "seed", "accuracy", "f1", "auroc", "fit s"
    );
    for r in &records {
        // For more than two classes, f1 and auroc are the macro averages.
        let (acc, f1, auc) = r.scores().map_or(("-".into(), "-".into(), "-".into()), |m| (fmt_metric(m.accuracy()), fmt_metric(m.f1()), fmt_metric(m.auroc())));
        let status = match r.status {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "FAILED",
        };
        println!(
            "{:<16}  {:<6}  {:<20}  {:<12}  {:<8}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8.2}  {}",
            r.id,
            status,
            r.spec.name,
            r.data.name,
            r.config.method.kind(),
            r.config.seed,
            acc,
            f1,
            auc,
            r.timings.fit_s,
            r.finished_at
        );
    }
    Ok(0)
}
