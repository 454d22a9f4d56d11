//! The HTML page, from maud templates: every piece of text from a record goes through maud's escaping;
//! only the SVG that plotters wrote (which escapes its own text) is inserted as markup. No scripts, no
//! external resources, and a content security policy that forbids fetching any.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::leaderboard::{fmt, Stat};
use super::{Chart, Report, Section};
use crate::store::{RunRecord, RunStatus};

const CSS: &str = r#"
:root { --ink: #1d2733; --muted: #5b6b7c; --line: #d8dee6; --accent: #0072b2; --bad: #b3261e; --good: #17803d; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); margin: 0; background: #f6f8fa; }
header { background: #17212b; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #c4cfdb; }
nav { padding: 10px 32px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1400px; }
section.dataset { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 24px 20px; margin: 20px 0; }
h2 { font-size: 21px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 10px; text-align: right; vertical-align: top; }
th { background: #eef2f6; font-weight: 600; }
td.l, th.l { text-align: left; }
tr.best td { background: #eaf5ee; }
.ci, .sd { display: block; color: var(--muted); font-size: 12px; }
.tag { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; background: #e3edf7; color: var(--accent); }
.fail { color: var(--bad); font-weight: 600; }
.ok { color: var(--good); }
figure { margin: 12px 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 900px), 1fr)); gap: 12px; }
.mistake { max-width: 760px; text-align: left; white-space: pre-wrap; word-break: break-word; }
.note { color: var(--muted); font-size: 13px; }
code { background: #eef2f6; padding: 0 4px; border-radius: 3px; }
"#;

fn figure(c: &Option<Chart>) -> Markup {
    match c {
        Some(c) => html! {
            figure id=(c.stem) {
                (PreEscaped(&c.svg))
                figcaption { (c.caption) " " span.note { "(" (c.stem) ".svg / .png)" } }
            }
        },
        None => html! {},
    }
}

fn stat(s: &Stat) -> Markup {
    html! {
        (fmt::value(s))
        @let spread = fmt::spread(s);
        @if !spread.is_empty() { span.sd { (spread) } }
        @let ci = fmt::interval(s);
        @if !ci.is_empty() { span.ci { (ci) } }
    }
}

fn leaderboard(s: &Section<'_>) -> Markup {
    let names = super::leaderboard::metric_names(!s.classes.is_binary());
    html! {
        table {
            thead { tr {
                th.l { "method" } th.l { "kind" } th { "seeds" }
                @for n in names { th { (n) } }
                th { "trainable params" } th { "train time" } th { "samples/s" } th { "peak memory" }
            } }
            tbody {
                @for (i, (v, r)) in s.runs.variants.iter().zip(&s.rows).enumerate() {
                    tr.best[s.best == Some(i)] {
                        td.l { (v.label) @if s.best == Some(i) { " " span.tag { "best " (names[3]) } } }
                        td.l { (v.kind) }
                        td { (r.seeds) }
                        td { (stat(&r.accuracy)) } td { (stat(&r.precision)) } td { (stat(&r.recall)) }
                        td { (stat(&r.f1)) } td { (stat(&r.auroc)) } td { (stat(&r.average_precision)) }
                        td { (fmt::count(r.trainable_parameters)) }
                        td { (fmt::seconds(r.fit_s)) }
                        td { (fmt::rate(r.samples_per_s)) }
                        td { (r.peak_memory_mib.map_or("–".to_string(), |m| format!("{m:.0} MiB"))) }
                    }
                }
            }
        }
        p.note {
            @if s.classes.is_binary() {
                "Intervals are 95%: with one seed, the run's own (bootstrap for accuracy, F1 and AUROC; Wilson for precision and recall); "
            } @else {
                "Macro averages weigh every class alike; weighted ones by the class's examples. Intervals are 95%: with one seed, the run's own "
                "(bootstrap for accuracy and macro F1); "
            }
            "with several seeds, Student's t over the seeds, shown with their standard deviation. Samples/s is training throughput."
        }
    }
}

fn significance(s: &Section<'_>) -> Markup {
    html! {
        @if s.comparisons.is_empty() {
            p.note { "No two methods were evaluated on the same split, so none can be paired." }
        } @else {
            table {
                thead { tr { th.l { "first" } th.l { "second" } th { "examples" } th { "only first right" } th { "only second right" } th { "p (exact McNemar)" } th.l { "verdict" } } }
                tbody {
                    @for c in &s.comparisons {
                        tr {
                            td.l { (c.first) } td.l { (c.second) } td { (c.examples) }
                            td { (c.test.only_first) } td { (c.test.only_second) } td { (fmt::p_value(c.test.p_value)) }
                            td.l { (c.verdict()) }
                        }
                    }
                }
            }
            p.note { "Each pair's lowest-seed runs, at their decision thresholds. With many pairs, expect about one in twenty to pass 5% by chance." }
        }
    }
}

fn data(s: &Section<'_>) -> Markup {
    let reference = s.runs.variants.first().map(|v| v.first()).or(s.runs.failed.first().copied());
    html! {
        @if let Some(r) = reference {
            @let d = &r.data;
            @if s.classes.is_binary() {
                @let (neg, pos) = (s.classes.name(0), s.classes.name(1));
                table {
                    thead { tr { th.l { "split" } th { "examples" } th { (neg) } th { (pos) } th { "share " (pos) } } }
                    tbody {
                        @for (name, c) in [("training", &d.train), ("evaluation", &d.eval)] {
                            tr {
                                td.l { (name) } td { (c.examples) } td { (c.examples - c.positives) } td { (c.positives) }
                                td { (format!("{:.1}%", 100.0 * c.positives as f64 / c.examples.max(1) as f64)) }
                            }
                        }
                    }
                }
            } @else {
                table {
                    thead { tr { th.l { "class" } th { "training" } th { "evaluation" } th { "share of evaluation" } } }
                    tbody {
                        @for (i, name) in s.classes.names.iter().enumerate() {
                            @let (tr_n, ev_n) = (d.train.per_class.get(i).copied().unwrap_or(0), d.eval.per_class.get(i).copied().unwrap_or(0));
                            tr {
                                td.l { (name) } td { (tr_n) } td { (ev_n) }
                                td { (format!("{:.1}%", 100.0 * ev_n as f64 / d.eval.examples.max(1) as f64)) }
                            }
                        }
                        tr { td.l { strong { "all" } } td { (d.train.examples) } td { (d.eval.examples) } td { "" } }
                    }
                }
            }
            p.note { "Files: " @for f in &d.files { code { (f) } " " } "— fingerprint " code { (d.fingerprint) } }
            div.grid { (figure(&s.balance)) (figure(&s.lengths)) }
            @if s.lengths.is_none() && s.classes.is_binary() { p.note { "These records predate text-length profiles; re-run to see the histogram." } }
        }
    }
}

fn mistakes(s: &Section<'_>) -> Markup {
    let best = s.best.map(|b| s.runs.variants[b].label.as_str()).unwrap_or("");
    html! {
        @if s.mistakes.is_empty() {
            p.note { "No mistakes with text in the best method's record (none made, or the record predates stored excerpts)." }
        } @else {
            p { "The evaluation texts " strong { (best) } " got most confidently wrong:" }
            @let binary = s.classes.is_binary();
            table {
                thead { tr {
                    th.l { "true class" }
                    @if binary { th { "P(" (s.classes.name(1)) ")" } } @else { th.l { "predicted" } th { "P(predicted)" } }
                    th.l { "text (escaped, truncated)" }
                } }
                tbody {
                    @for m in &s.mistakes {
                        tr {
                            td.l { (m.truth) }
                            @if !binary { td.l { (m.predicted) } }
                            td { (format!("{:.4}", m.probability)) }
                            td.mistake { (m.text) }
                        }
                    }
                }
            }
        }
    }
}

/// The best method's per-class table and most frequent confusions (more than two classes).
fn per_class(s: &Section<'_>) -> Markup {
    let best = s.best.map(|b| &s.runs.variants[b]);
    let metrics = best.and_then(|v| v.first().multiclass.as_ref());
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4}"));
    html! {
        @if let (Some(v), Some(m)) = (best, metrics) {
            p { "Per class, for " strong { (v.label) } " (lowest seed):" }
            table {
                thead { tr { th.l { "class" } th { "precision" } th { "recall" } th { "F1" } th { "support" } th { "AUROC (one-vs-rest)" } } }
                tbody {
                    @for (name, c) in s.classes.names.iter().zip(&m.per_class) {
                        tr {
                            td.l { (name) } td { (format!("{:.4}", c.precision)) } td { (format!("{:.4}", c.recall)) }
                            td { (format!("{:.4}", c.f1)) } td { (c.support) } td { (opt(c.auroc)) }
                        }
                    }
                    tr {
                        td.l { strong { "macro average" } } td { (format!("{:.4}", m.averages.macro_precision)) } td { (format!("{:.4}", m.averages.macro_recall)) }
                        td { (format!("{:.4}", m.averages.macro_f1)) } td { (m.examples) } td { (opt(m.macro_auroc)) }
                    }
                    tr {
                        td.l { strong { "weighted average" } } td { (format!("{:.4}", m.averages.weighted_precision)) } td { (format!("{:.4}", m.averages.weighted_recall)) }
                        td { (format!("{:.4}", m.averages.weighted_f1)) } td { (m.examples) } td { "" }
                    }
                }
            }
            p.note {
                "Log loss " (format!("{:.4}", m.log_loss)) @if let Some(t) = m.top2_accuracy { "; top-2 accuracy " (format!("{t:.4}")) } "."
            }
            @if !s.top_confusions.is_empty() {
                p { "Most frequent confusions:" }
                table {
                    thead { tr { th.l { "true class" } th.l { "predicted as" } th { "examples" } th { "share of the true class" } } }
                    tbody {
                        @for c in &s.top_confusions {
                            tr { td.l { (c.truth) } td.l { (c.predicted) } td { (c.count) } td { (format!("{:.1}%", 100.0 * c.share)) } }
                        }
                    }
                }
            }
        }
    }
}

fn section(s: &Section<'_>) -> Markup {
    html! {
        section.dataset id=(s.slug) {
            h2 { (s.title) " " span.note { (s.runs.variants.iter().map(|v| v.runs.len()).sum::<usize>()) " runs, " (s.runs.variants.len()) " methods" } }
            @if !s.runs.failed.is_empty() {
                p.fail { (s.runs.failed.len()) " failed run(s) on this dataset: see the provenance table." }
            }
            @if !s.rows.is_empty() {
                h3 { "Leaderboard" }
                (leaderboard(s))
                h3 { "Main metrics" }
                (figure(&s.metrics))
                @if s.classes.is_binary() {
                    h3 { "Confusion matrices" }
                    (figure(&s.confusion))
                    h3 { "ROC and precision–recall" }
                    div.grid { (figure(&s.roc)) (figure(&s.pr)) }
                } @else {
                    h3 { "Per class" }
                    (figure(&s.per_class))
                    (per_class(s))
                    h3 { "Confusion matrix" }
                    (figure(&s.confusion))
                    h3 { "One-vs-rest ROC" }
                    (figure(&s.roc))
                }
                @if s.loss.is_some() || s.epochs.is_some() {
                    h3 { "Training" }
                    div.grid { (figure(&s.loss)) (figure(&s.epochs)) }
                }
                h3 { "Cost against quality" }
                div.grid { (figure(&s.cost_time)) (figure(&s.cost_params)) }
                h3 { "Significance" }
                (significance(s))
            }
            h3 { "The data" }
            (data(s))
            @if !s.rows.is_empty() {
                h3 { "Most confident mistakes" }
                (mistakes(s))
            }
        }
    }
}

fn provenance_row(r: &RunRecord, runs_link: &str) -> Markup {
    let env = &r.environment;
    let machine = format!("{} · {} · {} threads", env.hostname.as_deref().unwrap_or("?"), env.cpu, env.threads);
    let code = match &env.git_commit {
        Some(c) => format!("{} ({})", r.code_version, c.chars().take(12).collect::<String>()),
        None => r.code_version.clone(),
    };
    html! {
        tr {
            td.l { code { (r.id) } }
            td.l { (r.spec.name) }
            td.l { (r.data.name) }
            td.l { (r.config.method.kind()) " · seed " (r.config.seed) }
            td.l { code { (r.config_hash) } }
            td.l { code { (&r.data.fingerprint[..r.data.fingerprint.len().min(12)]) } }
            td.l { (code) }
            td.l { (machine) }
            td.l { (r.finished_at) }
            td.l {
                @match r.status {
                    RunStatus::Ok => span.ok { "ok" },
                    RunStatus::Failed => { span.fail { "failed" } ": " (r.error.as_deref().unwrap_or("unknown error")) }
                }
            }
            td.l { a href=(format!("{runs_link}/{}.json", r.id)) { "JSON" } }
        }
    }
}

pub fn render(report: &Report<'_>, runs_link: &str) -> String {
    let runs: usize = report.records.len();
    let failed = report.records.iter().filter(|r| r.status == RunStatus::Failed).count();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                title { "textbench report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "textbench report" }
                    p { (runs) " runs on " (report.sections.len()) " dataset(s)"
                        @if failed > 0 { ", " (failed) " failed" }
                        @if report.superseded > 0 { "; " (report.superseded) " older record(s) of the same configurations superseded" }
                        " · generated " (report.generated_at) }
                }
                nav {
                    @for s in &report.sections { a href=(format!("#{}", s.slug)) { (s.title) } }
                    a href="#provenance" { "provenance" }
                }
                main {
                    @if report.sections.is_empty() { p { "No runs matched: run " code { "bench run" } " first, or check the filters." } }
                    @for s in &report.sections { (section(s)) }
                    section.dataset id="provenance" {
                        h2 { "Provenance" }
                        table {
                            thead { tr {
                                th.l { "run" } th.l { "spec" } th.l { "dataset" } th.l { "method" } th.l { "config hash" }
                                th.l { "data fingerprint" } th.l { "code" } th.l { "machine" } th.l { "finished" } th.l { "status" } th.l { "record" }
                            } }
                            tbody { @for r in &report.records { (provenance_row(r, runs_link)) } }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}
