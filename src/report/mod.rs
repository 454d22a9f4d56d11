//! `bench report`: one self-contained HTML page comparing the stored runs, with every chart also
//! written as SVG and PNG, or the leaderboards as Markdown. It reads run records only (no data, no
//! models), so it works on runs copied from other machines and on any mix of specs.

pub mod charts;
pub mod leaderboard;
mod markdown;
mod page;
mod raster;
pub mod stats;
pub mod view;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::ClassSet;
use crate::error::StoreError;
use crate::store::RunRecord;
use charts::ChartError;
use leaderboard::Row;
use stats::McNemar;
use view::{DatasetRuns, Variant};

pub use markdown::markdown;

/// At most this many variants per dataset get curves, confusion matrices and pairwise tests (the best
/// by F1); the leaderboard lists them all.
const MAX_PLOTTED: usize = 8;
/// Mistakes of the best method shown per dataset.
const MISTAKES_SHOWN: usize = 10;
/// Characters of a mistaken text shown.
const MISTAKE_CHARS: usize = 240;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error("aggregating the leaderboard: {0}")]
    Table(#[from] polars::error::PolarsError),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("rendering {path} as PNG: {message}")]
    Raster { path: PathBuf, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An output path that must not be written over (a device, a pipe, a link, a folder).
    #[error("{}: {why}; give --out a path to a new or regular .html file", path.display())]
    Refused { path: PathBuf, why: String },
}

/// Why an existing path is not one the report may replace: only a regular file (or nothing) is.
fn not_replaceable(path: &Path, dir_expected: bool) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let t = meta.file_type();
    let kind = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        if dir_expected {
            return None;
        }
        "a folder"
    } else if t.is_file() {
        if !dir_expected {
            return None;
        }
        "a file"
    } else {
        "a device, pipe or socket"
    };
    Some(format!("it exists and is {kind}, which the report will not replace"))
}

/// One chart: its file name (without extension), a caption, and the SVG.
pub struct Chart {
    pub stem: String,
    pub caption: String,
    pub svg: String,
}

/// McNemar's test between two variants evaluated on the same split.
pub struct Comparison {
    pub first: String,
    pub second: String,
    pub examples: usize,
    pub test: McNemar,
}

impl Comparison {
    /// What the test says, in plain words, at the 5% level.
    pub fn verdict(&self) -> String {
        let (b, c) = (self.test.only_first, self.test.only_second);
        if b + c == 0 {
            return "identical decisions on every example".into();
        }
        let (better, worse) = if b > c { (&self.first, &self.second) } else { (&self.second, &self.first) };
        if b == c {
            format!("no significant difference at the 5% level (the disagreements split evenly, {b}–{c})")
        } else if self.test.p_value < 0.05 {
            format!("{better} is better than {worse}: a split of {}–{} disagreements this uneven is unlikely by chance", b.max(c), b.min(c))
        } else {
            format!("no significant difference at the 5% level ({better} ahead {}–{} on the disagreements)", b.max(c), b.min(c))
        }
    }
}

pub struct Mistake {
    pub text: String,
    pub truth: String,
    pub predicted: String,
    /// Two classes: the positive class's probability; more: the predicted class's.
    pub probability: f64,
}

/// A frequent confusion of the best method: true class, predicted class, count, share of the true class.
pub struct Confusion {
    pub truth: String,
    pub predicted: String,
    pub count: u64,
    pub share: f64,
}

/// Everything shown for one dataset.
pub struct Section<'a> {
    pub title: String,
    pub slug: String,
    pub runs: DatasetRuns<'a>,
    pub rows: Vec<Row>,
    pub best: Option<usize>,
    pub classes: ClassSet,
    pub metrics: Option<Chart>,
    /// More than two classes: F1 per class of the plotted methods.
    pub per_class: Option<Chart>,
    /// More than two classes: the best method's most frequent confusions.
    pub top_confusions: Vec<Confusion>,
    pub confusion: Option<Chart>,
    pub roc: Option<Chart>,
    pub pr: Option<Chart>,
    pub loss: Option<Chart>,
    pub epochs: Option<Chart>,
    pub cost_time: Option<Chart>,
    pub cost_params: Option<Chart>,
    pub balance: Option<Chart>,
    pub lengths: Option<Chart>,
    pub comparisons: Vec<Comparison>,
    pub mistakes: Vec<Mistake>,
}

impl Section<'_> {
    pub fn charts(&self) -> impl Iterator<Item = &Chart> {
        [
            &self.metrics,
            &self.per_class,
            &self.confusion,
            &self.roc,
            &self.pr,
            &self.loss,
            &self.epochs,
            &self.cost_time,
            &self.cost_params,
            &self.balance,
            &self.lengths,
        ]
        .into_iter()
        .flatten()
    }
}

/// A name safe in file names and HTML ids.
fn slug(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

/// Keeps the records a filter names: a spec file (its runs, by configuration), a spec name, or a run id
/// prefix. No filters keep everything.
pub fn select(records: Vec<RunRecord>, filters: &[String]) -> Result<Vec<RunRecord>, crate::error::SpecError> {
    if filters.is_empty() {
        return Ok(records);
    }
    let mut hashes = std::collections::HashSet::new();
    let mut names = Vec::new();
    for f in filters {
        let path = Path::new(f);
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let spec = crate::spec::Spec::load(path)?;
            hashes.extend(spec.runs.iter().map(|r| crate::store::config_hash(&r.config)));
        } else {
            names.push(f.as_str());
        }
    }
    Ok(records
        .into_iter()
        .filter(|r| hashes.contains(&r.config_hash) || names.iter().any(|n| r.spec_names().any(|s| s == *n) || r.id.starts_with(n)))
        .collect())
}

fn chart(stem: &str, caption: &str, svg: Result<String, ChartError>) -> Result<Option<Chart>, ReportError> {
    Ok(Some(Chart { stem: stem.to_string(), caption: caption.to_string(), svg: svg? }))
}

/// Pairs of the plotted variants evaluated on the same split, tested on their lowest-seed runs.
fn comparisons(plotted: &[&Variant<'_>]) -> Vec<Comparison> {
    // Which examples each variant got right, computed once per variant rather than once per pair.
    let right: Vec<Vec<(usize, bool)>> = plotted.iter().map(|v| v.first().correctness()).collect();
    let mut out = Vec::new();
    for (i, a) in plotted.iter().enumerate() {
        for (j, b) in plotted.iter().enumerate().skip(i + 1) {
            let same_examples = a.split_key == b.split_key && right[i].len() == right[j].len() && right[i].iter().zip(&right[j]).all(|(x, y)| x.0 == y.0);
            if same_examples && !right[i].is_empty() {
                let only = |r: &[(usize, bool)]| r.iter().map(|x| x.1).collect::<Vec<bool>>();
                out.push(Comparison {
                    first: a.label.clone(),
                    second: b.label.clone(),
                    examples: right[i].len(),
                    test: stats::mcnemar(&only(&right[i]), &only(&right[j])),
                });
            }
        }
    }
    out
}

/// A mistake's text as shown: its start, with an ellipsis when cut.
fn excerpt(text: Option<&str>) -> String {
    let text = text.unwrap_or_default();
    let short: String = text.chars().take(MISTAKE_CHARS).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// The most confident mistakes of a run: two classes, wrong at its threshold, furthest from it first;
/// more, the highest probability given to a wrong class first.
fn mistakes(r: &RunRecord, classes: &ClassSet) -> Vec<Mistake> {
    let name = |c: u32| classes.name(c).to_string();
    if !r.class_predictions.is_empty() {
        let mut wrong: Vec<&crate::store::ClassPrediction> = r.class_predictions.iter().filter(|p| p.text.is_some()).collect();
        let top = |p: &crate::store::ClassPrediction| p.probabilities[p.predicted() as usize];
        wrong.sort_by(|a, b| top(b).total_cmp(&top(a)));
        return wrong
            .into_iter()
            .take(MISTAKES_SHOWN)
            .map(|p| Mistake { text: excerpt(p.text.as_deref()), truth: name(p.label), predicted: name(p.predicted()), probability: top(p) })
            .collect();
    }
    let mut wrong: Vec<&crate::store::Prediction> = r.predictions.iter().filter(|p| p.text.is_some()).collect();
    let t = r.threshold();
    wrong.sort_by(|a, b| (b.probability - t).abs().total_cmp(&(a.probability - t).abs()));
    wrong
        .into_iter()
        .take(MISTAKES_SHOWN)
        .map(|p| Mistake { text: excerpt(p.text.as_deref()), truth: name(p.label as u32), predicted: name(!p.label as u32), probability: p.probability })
        .collect()
}

/// The off-diagonal cells of a confusion matrix, most frequent first.
fn top_confusions(cm: &[Vec<u64>], classes: &ClassSet, n: usize) -> Vec<Confusion> {
    let mut cells: Vec<Confusion> = Vec::new();
    for (t, row) in cm.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            if p != t && count > 0 {
                cells.push(Confusion { truth: classes.name(t as u32).into(), predicted: classes.name(p as u32).into(), count, share: count as f64 / total });
            }
        }
    }
    cells.sort_by(|a, b| b.count.cmp(&a.count).then(b.share.total_cmp(&a.share)));
    cells.truncate(n);
    cells
}

/// One-vs-rest ROC curves of a multi-class run, from its stored class probabilities.
fn one_vs_rest(r: &RunRecord, classes: &ClassSet) -> Vec<charts::ClassCurve> {
    (0..classes.len())
        .filter_map(|c| {
            let is_c: Vec<bool> = r.class_predictions.iter().map(|p| p.label as usize == c).collect();
            let score: Vec<f64> = r.class_predictions.iter().map(|p| p.probabilities[c]).collect();
            let auroc = crate::metrics::binary::auroc(&is_c, &score)?;
            let points = crate::metrics::binary::roc(&is_c, &score).iter().map(|p| (p.fpr, p.tpr)).collect();
            Some(charts::ClassCurve { class: classes.name(c as u32).to_string(), auroc, points })
        })
        .collect()
}

/// Loss curves and per-epoch evaluation F1 of the trained variants, from their histories.
fn histories(plotted: &[&Variant<'_>]) -> (Vec<charts::Series>, Vec<charts::Series>) {
    let (mut loss, mut epochs) = (Vec::new(), Vec::new());
    for v in plotted {
        let Some(h) = &v.first().history else { continue };
        let points = |list: &str, x: &str, y: &dyn Fn(&serde_json::Value) -> Option<f64>| -> Vec<(f64, f64)> {
            h[list].as_array().map_or(Vec::new(), |a| a.iter().filter_map(|e| Some((e[x].as_f64()?, y(e)?))).collect())
        };
        let l = points("steps", "step", &|e| e["loss"].as_f64());
        let e = points("epochs", "epoch", &|e| e["eval"]["f1"].as_f64());
        if !l.is_empty() {
            loss.push(charts::Series { label: v.label.clone(), color: v.color, points: l });
        }
        if !e.is_empty() {
            epochs.push(charts::Series { label: v.label.clone(), color: v.color, points: e });
        }
    }
    (loss, epochs)
}

fn section<'a>(runs: DatasetRuns<'a>) -> Result<Section<'a>, ReportError> {
    let rows = leaderboard::rows(&runs.variants)?;
    let best = leaderboard::best(&rows);
    let title = runs.name.clone();
    let slug = format!("{}-{}", slug(&runs.name), &runs.fingerprint[..runs.fingerprint.len().min(8)]);
    let labels: Vec<String> = runs.variants.iter().map(|v| v.label.clone()).collect();
    // The variants drawn in per-variant charts: the best by F1, in leaderboard order.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[b].f1.mean.total_cmp(&rows[a].f1.mean));
    order.truncate(MAX_PLOTTED);
    order.sort_unstable();
    let plotted: Vec<&Variant<'_>> = order.iter().map(|&i| &runs.variants[i]).collect();
    let reference = runs.variants.first().map(|v| v.first()).or(runs.failed.first().copied());
    let classes = reference.map(RunRecord::classes).unwrap_or_else(ClassSet::legacy_binary);
    let multiclass = !classes.is_binary();
    let cn = (classes.name(0), classes.name(1));
    let name = |c: &str| format!("{slug}-{c}");
    let metric = leaderboard::metric_names(multiclass)[3];

    let mut s = Section {
        title,
        slug: slug.clone(),
        rows: Vec::new(),
        best,
        classes: classes.clone(),
        metrics: None,
        per_class: None,
        top_confusions: Vec::new(),
        confusion: None,
        roc: None,
        pr: None,
        loss: None,
        epochs: None,
        cost_time: None,
        cost_params: None,
        balance: None,
        lengths: None,
        comparisons: comparisons(&plotted),
        mistakes: best.map(|b| mistakes(runs.variants[b].first(), &classes)).unwrap_or_default(),
        runs: DatasetRuns { name: String::new(), fingerprint: String::new(), variants: Vec::new(), failed: Vec::new() },
    };
    if !rows.is_empty() && multiclass {
        s.metrics =
            chart(&name("metrics"), "Main metrics per method (macro averages over the classes), with 95% intervals.", charts::metric_bars(&labels, &rows))?;
        let f1: Vec<(String, Vec<f64>)> =
            plotted.iter().filter_map(|v| Some((v.label.clone(), v.first().multiclass.as_ref()?.per_class.iter().map(|c| c.f1).collect()))).collect();
        s.per_class = chart(&name("per-class"), "F1 per class.", charts::per_class_bars("F1 per class", "F1", &classes.names, f1, 1.0))?;
        if let Some(b) = best {
            let (label, r) = (&runs.variants[b].label, runs.variants[b].first());
            if let Some(m) = &r.multiclass {
                let caption = if classes.len() > charts::HEATMAP_COUNTS_UP_TO {
                    "Confusion matrix of the best method: the share of each true class (colour); the most frequent confusions are listed below."
                } else {
                    "Confusion matrix of the best method: counts, and the share of each true class (colour)."
                };
                s.confusion = chart(&name("confusion"), caption, charts::confusion_heatmap(label, &m.confusion_matrix, &classes.names))?;
                s.top_confusions = top_confusions(&m.confusion_matrix, &classes, 10);
            }
            let curves = one_vs_rest(r, &classes);
            if !curves.is_empty() {
                let caption = if curves.len() > charts::ROC_CLASSES_DRAWN {
                    format!(
                        "One-vs-rest ROC curves of the best method, for the {} classes with the lowest AUROC (every class's is in the table above).",
                        charts::ROC_CLASSES_DRAWN
                    )
                } else {
                    "One-vs-rest ROC curves of the best method.".to_string()
                };
                s.roc = chart(&name("roc"), &caption, charts::one_vs_rest_roc(label, curves))?;
            }
        }
    } else if !rows.is_empty() {
        s.metrics = chart(&name("metrics"), "Main metrics per method, with 95% intervals.", charts::metric_bars(&labels, &rows))?;
        let cms: Vec<charts::Confusion> = plotted
            .iter()
            .filter_map(|v| {
                let m = v.first().metrics.as_ref()?;
                Some(charts::Confusion { label: v.label.clone(), counts: m.confusion_matrix, threshold: m.threshold })
            })
            .collect();
        s.confusion = chart(&name("confusion"), "Confusion matrices: counts, and the share of each true class (colour).", charts::confusion_grid(&cms, cn))?;
        s.roc = chart(&name("roc"), "ROC curves.", charts::curves(&plotted, charts::Curve::Roc))?;
        s.pr = chart(&name("pr"), "Precision–recall curves.", charts::curves(&plotted, charts::Curve::PrecisionRecall))?;
    }
    if !rows.is_empty() {
        let (loss, epochs) = histories(&plotted);
        if !loss.is_empty() {
            s.loss = chart(&name("loss"), "Training loss of the trained methods.", charts::training_loss(loss))?;
        }
        if !epochs.is_empty() {
            s.epochs = chart(
                &name("epochs"),
                &format!("{metric} on the evaluation split after each epoch (reported, not used to choose)."),
                charts::per_epoch(metric, epochs),
            )?;
        }
        let time: Vec<(String, f64, f64)> = labels.iter().zip(&rows).map(|(l, r)| (l.clone(), r.fit_s, r.f1.mean)).collect();
        let title = format!("{metric} against training time");
        s.cost_time = chart(&name("cost-time"), &format!("{title} (log scale)."), charts::cost_scatter(&title, "training time, seconds (log)", &time))?;
        let params: Vec<(String, f64, f64)> =
            labels.iter().zip(&rows).map(|(l, r)| (l.clone(), r.trainable_parameters.unwrap_or(f64::NAN), r.f1.mean)).collect();
        let title = format!("{metric} against trainable parameters");
        s.cost_params = chart(&name("cost-params"), &format!("{title} (log scale)."), charts::cost_scatter(&title, "trainable parameters (log)", &params))?;
    }
    if let Some(r) = reference {
        let d = &r.data;
        if multiclass {
            let counts = |c: &crate::data::split::Counts| c.per_class.iter().map(|&n| n as f64).collect::<Vec<f64>>();
            let top = d.train.per_class.iter().chain(&d.eval.per_class).copied().max().unwrap_or(1) as f64 * 1.1;
            let series = vec![("training split".to_string(), counts(&d.train)), ("evaluation split".to_string(), counts(&d.eval))];
            s.balance = chart(
                &name("balance"),
                "Examples per class in the split.",
                charts::per_class_bars("Examples per class", "examples", &classes.names, series, top),
            )?;
        } else {
            let split = |c: &crate::data::split::Counts| (c.examples - c.positives, c.positives);
            s.balance = chart(&name("balance"), "Class balance of the split.", charts::class_balance(split(&d.train), split(&d.eval), cn))?;
        }
        if let Some(p) = &d.lengths {
            s.lengths = chart(&name("lengths"), "Text length by class.", charts::length_histogram(p, cn))?;
        }
    }
    s.rows = rows;
    s.runs = runs;
    Ok(s)
}

/// The report of a set of records.
pub struct Report<'a> {
    pub sections: Vec<Section<'a>>,
    /// Every record shown, failed ones included, for the provenance table.
    pub records: Vec<&'a RunRecord>,
    pub superseded: usize,
    pub generated_at: String,
}

pub fn build(records: &[RunRecord]) -> Result<Report<'_>, ReportError> {
    let (kept, superseded) = view::newest(records);
    let sections = view::group(&kept).into_par_iter().map(section).collect::<Result<Vec<_>, _>>()?;
    Ok(Report { sections, records: kept, superseded, generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::store::write_atomic(path, bytes).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

/// `target` as seen from `base` (both folders or files), for links that survive moving both together.
fn relative(target: &Path, base_dir: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (t, b) = (abs(target), abs(base_dir));
    let (tc, bc): (Vec<_>, Vec<_>) = (t.components().collect(), b.components().collect());
    let common = tc.iter().zip(&bc).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); bc.len() - common];
    parts.extend(tc[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

/// What was written.
pub struct Written {
    pub html: PathBuf,
    pub charts: usize,
}

/// Writes the HTML page to `out` and every chart as SVG and PNG into `charts/` beside it. Refuses, before
/// writing anything, an `out` or `charts` that exists and is not what the report writes (a regular file,
/// a real folder): the report replaces its own files and nothing else.
pub fn write(report: &Report<'_>, out: &Path, runs_dir: &Path, png: bool) -> Result<Written, ReportError> {
    let out_dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let chart_dir = out_dir.join("charts");
    for (path, dir) in [(out, false), (chart_dir.as_path(), true)] {
        if let Some(why) = not_replaceable(path, dir) {
            return Err(ReportError::Refused { path: path.to_path_buf(), why });
        }
    }
    // The page's folder may be a link to one (it is not replaced, only written into).
    if std::fs::metadata(&out_dir).is_ok_and(|m| !m.is_dir()) {
        return Err(ReportError::Refused { path: out_dir.clone(), why: "it is not a folder".into() });
    }
    if out.file_name().is_none() {
        return Err(ReportError::Refused { path: out.to_path_buf(), why: "it names no file".into() });
    }
    // What a killed report left among the charts (older than a minute, so that a report being written
    // meanwhile by another process keeps its own).
    crate::store::remove_stale_temporaries(&chart_dir, std::time::Duration::from_secs(60));
    let runs_link = relative(runs_dir, &out_dir);
    let html = page::render(report, &runs_link);
    write_atomic(out, html.as_bytes())?;
    let all: Vec<&Chart> = report.sections.iter().flat_map(|s| s.charts()).collect();
    let fonts = if png { Some(raster::fonts()) } else { None };
    all.par_iter().try_for_each(|c| -> Result<(), ReportError> {
        write_atomic(&chart_dir.join(format!("{}.svg", c.stem)), c.svg.as_bytes())?;
        if let Some(fonts) = &fonts {
            let path = chart_dir.join(format!("{}.png", c.stem));
            let bytes = raster::png(&c.svg, fonts).map_err(|message| ReportError::Raster { path: path.clone(), message })?;
            write_atomic(&path, &bytes)?;
        }
        Ok(())
    })?;
    Ok(Written { html: out.to_path_buf(), charts: all.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_names_the_better_side_only_when_there_is_one() {
        let verdict = |first: &[bool], second: &[bool]| {
            Comparison { first: "a".into(), second: "b".into(), examples: first.len(), test: stats::mcnemar(first, second) }.verdict()
        };
        let (t, f) = (true, false);
        assert_eq!(verdict(&[t, f, t], &[t, f, t]), "identical decisions on every example");
        assert_eq!(verdict(&[t, f, t, f], &[f, t, f, t]), "no significant difference at the 5% level (the disagreements split evenly, 2–2)");
        assert_eq!(verdict(&[t, t, f], &[f, f, t]), "no significant difference at the 5% level (a ahead 2–1 on the disagreements)");
        let b_right = [f; 12];
        let verdict_b = verdict(&b_right, &[t; 12]);
        assert!(verdict_b.starts_with("b is better than a: a split of 12–0"), "{verdict_b}");
    }
}
