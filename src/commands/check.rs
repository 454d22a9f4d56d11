use anyhow::Result;

use super::{fmt_metric, load_specs};
use crate::check::{check, Verdict};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{EXIT_FAILED, EXIT_USAGE};

pub fn run(args: &CheckArgs, g: &GlobalArgs) -> Result<i32> {
    let specs = load_specs(&args.specs, g)?;
    let no_floors: Vec<&str> = specs.iter().filter(|s| s.floors.is_empty()).map(|s| s.name.as_str()).collect();
    if no_floors.len() == specs.len() {
        eprintln!("error: no floors to check: none of the specs has a `floors:` section ({})", no_floors.join(", "));
        return Ok(EXIT_USAGE);
    }
    for name in &no_floors {
        eprintln!("note: spec {name} has no floors; nothing to check there");
    }
    let records = super::readable_records(g)?;
    let lines = check(&specs, &records);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        println!("{:<20}  {:<16}  {:>5}  {:<18}  {:>8}  {:>8}  verdict", "spec", "run", "seed", "metric", "value", "floor");
        for l in &lines {
            let verdict = match l.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Missing => "MISSING",
            };
            println!(
                "{:<20}  {:<16}  {:>5}  {:<18}  {:>8}  {:>8.4}  {verdict}{}",
                l.spec,
                l.run.as_deref().unwrap_or("-"),
                l.seed,
                l.metric,
                l.value.map_or("-".into(), fmt_metric),
                l.floor,
                if l.note.is_empty() { String::new() } else { format!("  {}", l.note) }
            );
        }
    }
    let failed = lines.iter().filter(|l| l.verdict != Verdict::Pass).count();
    eprintln!("{} of {} floor checks hold", lines.len() - failed, lines.len());
    Ok(if failed > 0 { EXIT_FAILED } else { 0 })
}
