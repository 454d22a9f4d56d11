use anyhow::Result;

use crate::cli::{GlobalArgs, ReportArgs, ReportFormat};
use crate::report;

pub fn run(args: &ReportArgs, g: &GlobalArgs) -> Result<i32> {
    let started = std::time::Instant::now();
    let records = super::readable_records(g)?;
    let total = records.len();
    let records = report::select(records, &args.filters)?;
    if records.is_empty() {
        let why = if total == 0 {
            format!("no runs in {}", g.runs_dir.display())
        } else {
            format!("none of the {total} runs in {} matches the filters", g.runs_dir.display())
        };
        return Err(crate::error::UsageError(format!("{why}; nothing to report")).into());
    }
    let built = report::build(&records)?;
    match args.format {
        ReportFormat::Md => print!("{}", report::markdown(&built)),
        ReportFormat::Html => {
            let written = report::write(&built, &args.out, &g.runs_dir, !args.no_png)?;
            eprintln!(
                "wrote {} ({} runs, {} charts as SVG{} in {}) in {:.2}s",
                written.html.display(),
                built.records.len(),
                written.charts,
                if args.no_png { "" } else { " and PNG" },
                written.html.parent().map(|p| p.join("charts")).unwrap_or_default().display(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(0)
}
