//! `bench report --format md`: the leaderboards as Markdown tables, for READMEs and pull requests.

use super::leaderboard::fmt;
use super::Report;

/// Markdown escapes for table cells: pipes would end the cell, and HTML in labels must stay text.
fn cell(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|")
}

pub fn markdown(report: &Report<'_>) -> String {
    let mut out = String::new();
    for s in &report.sections {
        out.push_str(&format!("### {}\n\n", cell(&s.title)));
        let names = super::leaderboard::metric_names(!s.classes.is_binary());
        out.push_str(&format!("| method | seeds | {} | trainable params | train time | samples/s |\n", names.join(" | ")));
        out.push_str("|---|---:|---|---|---|---|---|---|---:|---:|---:|\n");
        for (i, (v, r)) in s.runs.variants.iter().zip(&s.rows).enumerate() {
            let stat = |st: &super::leaderboard::Stat| {
                [fmt::value(st), fmt::spread(st), fmt::interval(st)].into_iter().filter(|x| !x.is_empty()).collect::<Vec<_>>().join(" ")
            };
            let best = if s.best == Some(i) { format!(" **(best {})**", names[3]) } else { String::new() };
            out.push_str(&format!(
                "| {}{best} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&v.label),
                r.seeds,
                stat(&r.accuracy),
                stat(&r.precision),
                stat(&r.recall),
                stat(&r.f1),
                stat(&r.auroc),
                stat(&r.average_precision),
                fmt::count(r.trainable_parameters),
                fmt::seconds(r.fit_s),
                fmt::rate(r.samples_per_s),
            ));
        }
        if !s.runs.failed.is_empty() {
            out.push_str(&format!("\n{} failed run(s): {}\n", s.runs.failed.len(), s.runs.failed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")));
        }
        out.push('\n');
    }
    out
}
