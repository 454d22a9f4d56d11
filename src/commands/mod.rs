//! One module per command; each returns the process exit code or an error for the CLI edge.

mod check;
mod datasets;
mod embed;
mod list;
mod perf;
mod predict;
mod report;
mod run;
mod show;
mod slurm;
mod status;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::progress::Progress;
use crate::spec::Spec;

pub fn dispatch(cli: Cli, progress: &Progress) -> Result<i32> {
    let g = &cli.global;
    match &cli.command {
        Command::Run(a) => run::run(a, g, progress),
        Command::Check(a) => check::run(a, g),
        Command::List(a) => list::run(a, g),
        Command::Show(a) => show::run(a, g),
        Command::Datasets(a) => datasets::run(a, g, progress),
        Command::Embed(a) => embed::run(a, g),
        Command::Predict(a) => predict::run(a, g),
        Command::Report(a) => report::run(a, g),
        Command::Perf(a) => perf::run(a, g, progress),
        Command::Slurm(a) => slurm::run(a, g),
        Command::Status(a) => status::run(a, g, progress),
    }
}

/// Parses every spec before anything else happens, so one bad spec stops the whole command.
fn load_specs(paths: &[std::path::PathBuf], g: &crate::cli::GlobalArgs) -> Result<Vec<Spec>> {
    paths.iter().map(|p| Spec::load_limited(p, g.max_runs).map_err(anyhow::Error::from)).collect()
}

/// Every readable record of the store; unreadable files are logged and skipped.
fn readable_records(g: &crate::cli::GlobalArgs) -> Result<Vec<crate::store::RunRecord>> {
    let (records, unreadable) = crate::store::Store::new(&g.runs_dir).list()?;
    for e in &unreadable {
        tracing::warn!("skipping {e}");
    }
    Ok(records)
}

/// Texts given on the command line, then those of `--file` (one per line, blank lines skipped). With
/// `blank_ok` false a blank text on the command line is refused, as training refuses empty texts.
fn collect_texts(texts: &[String], file: Option<&std::path::Path>, blank_ok: bool) -> Result<Vec<String>> {
    use crate::error::UsageError;
    let mut all = texts.to_vec();
    if let Some(blank) = all.iter().position(|t| t.trim().is_empty()).filter(|_| !blank_ok) {
        return Err(UsageError(format!("text {} is empty: a classifier needs some text (training skips empty texts too)", blank + 1)).into());
    }
    if let Some(file) = file {
        let bytes = std::fs::read(file).map_err(|e| UsageError(format!("{}: cannot read the texts: {e}", file.display())))?;
        let content = String::from_utf8(bytes).map_err(|e| {
            let pos = crate::data::text::position_of(e.as_bytes(), e.utf8_error().valid_up_to());
            UsageError(format!("{}:{pos}: not valid UTF-8; --file takes UTF-8 text, one text per line", file.display()))
        })?;
        all.extend(content.lines().filter(|l| !l.trim().is_empty()).map(String::from));
    }
    if all.is_empty() {
        return Err(UsageError("no texts: give them as arguments or with --file".into()).into());
    }
    Ok(all)
}

/// A metric value for tables; NaN (undefined) prints as a dash.
fn fmt_metric(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "-".into()
    }
}
