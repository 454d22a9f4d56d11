//! The leaderboard: each variant's metrics over its seeds (mean, standard deviation, 95% interval),
//! with its cost. The grouping over runs and seeds is a polars group-by.

use polars::prelude::*;

use super::stats::{t_975, wilson};
use super::view::Variant;
use crate::store::RunRecord;

/// One number of the leaderboard: the mean over seeds, their standard deviation (with several seeds),
/// and a 95% interval: the run's own (bootstrap or Wilson) with one seed, Student's t over seeds with more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub interval: Option<(f64, f64)>,
}

/// A row's six numbers, by the names the page shows: the positive class's metrics for two classes; for
/// more, the macro averages (precision, recall, F1, one-vs-rest AUROC) and the weighted F1.
#[derive(Debug, Clone)]
pub struct Row {
    pub multiclass: bool,
    pub seeds: usize,
    pub accuracy: Stat,
    pub precision: Stat,
    pub recall: Stat,
    pub f1: Stat,
    pub auroc: Stat,
    pub average_precision: Stat,
    pub trainable_parameters: Option<f64>,
    pub fit_s: f64,
    pub samples_per_s: Option<f64>,
    pub peak_memory_mib: Option<f64>,
}

impl Row {
    /// The metrics shown side by side, with their names.
    pub fn metrics(&self) -> [(&'static str, Stat); 6] {
        let n = metric_names(self.multiclass);
        [(n[0], self.accuracy), (n[1], self.precision), (n[2], self.recall), (n[3], self.f1), (n[4], self.auroc), (n[5], self.average_precision)]
    }
}

/// The names of a row's six metrics.
pub fn metric_names(multiclass: bool) -> [&'static str; 6] {
    if multiclass {
        ["accuracy", "macro precision", "macro recall", "macro F1", "macro AUROC", "weighted F1"]
    } else {
        ["accuracy", "precision", "recall", "F1", "AUROC", "avg precision"]
    }
}

const METRICS: [&str; 6] = ["accuracy", "precision", "recall", "f1", "auroc", "average_precision"];
const COSTS: [&str; 4] = ["trainable", "fit_s", "samples_per_s", "peak_mib"];

fn metric_values(r: &RunRecord) -> [f64; 6] {
    match (&r.metrics, &r.multiclass) {
        (Some(m), _) => [m.accuracy, m.precision, m.recall, m.f1, m.auroc, m.average_precision],
        (None, Some(m)) => {
            let a = &m.averages;
            [m.accuracy, a.macro_precision, a.macro_recall, a.macro_f1, m.macro_auroc.unwrap_or(f64::NAN), a.weighted_f1]
        }
        (None, None) => [f64::NAN; 6],
    }
}

/// The run's own 95% interval of a metric, where the record has one.
fn own_interval(r: &RunRecord, metric: &str) -> Option<(f64, f64)> {
    if let Some(m) = &r.multiclass {
        return match metric {
            "accuracy" => Some((m.intervals.accuracy.low, m.intervals.accuracy.high)),
            "f1" => Some((m.intervals.macro_f1.low, m.intervals.macro_f1.high)),
            _ => None,
        };
    }
    let m = r.metrics.as_ref()?;
    let [[_, fp], [fn_, tp]] = m.confusion_matrix;
    match metric {
        "accuracy" => Some((m.intervals.accuracy.low, m.intervals.accuracy.high)),
        "f1" => Some((m.intervals.f1.low, m.intervals.f1.high)),
        "auroc" => Some((m.intervals.auroc.low, m.intervals.auroc.high)),
        "precision" => wilson(tp, tp + fp),
        "recall" => wilson(tp, tp + fn_),
        _ => None,
    }
}

/// A long table (one row per run) grouped by variant: means and standard deviations over seeds.
fn aggregate(variants: &[Variant<'_>]) -> PolarsResult<DataFrame> {
    let runs: Vec<(u32, &RunRecord)> = variants.iter().enumerate().flat_map(|(i, v)| v.runs.iter().map(move |r| (i as u32, *r))).collect();
    let mut columns: Vec<Column> = vec![Column::new("variant".into(), runs.iter().map(|(i, _)| *i).collect::<Vec<u32>>())];
    for (j, name) in METRICS.iter().enumerate() {
        columns.push(Column::new((*name).into(), runs.iter().map(|(_, r)| metric_values(r)[j]).collect::<Vec<f64>>()));
    }
    let cost = |f: &dyn Fn(&RunRecord) -> Option<f64>| runs.iter().map(|(_, r)| f(r)).collect::<Vec<Option<f64>>>();
    columns.push(Column::new("trainable".into(), cost(&|r| r.trainable_parameters.map(|p| p as f64))));
    columns.push(Column::new("fit_s".into(), cost(&|r| Some(r.timings.fit_s))));
    columns.push(Column::new("samples_per_s".into(), cost(&|r| r.train_samples_per_s)));
    columns.push(Column::new("peak_mib".into(), cost(&|r| r.peak_memory_bytes.map(|b| b as f64 / (1024.0 * 1024.0)))));
    let df = DataFrame::new(runs.len(), columns)?;

    let mut aggs: Vec<Expr> = vec![len().alias("seeds")];
    for name in METRICS {
        aggs.push(col(name).mean().alias(format!("{name}_mean")));
        aggs.push(col(name).std(1).alias(format!("{name}_std")));
    }
    for name in COSTS {
        aggs.push(col(name).mean().alias(format!("{name}_mean")));
    }
    df.lazy().group_by([col("variant")]).agg(aggs).sort(["variant"], SortMultipleOptions::default()).collect()
}

/// One row per variant, in the variants' order.
pub fn rows(variants: &[Variant<'_>]) -> PolarsResult<Vec<Row>> {
    if variants.is_empty() {
        return Ok(Vec::new());
    }
    let df = aggregate(variants)?;
    let f64_at = |name: &str, i: usize| -> PolarsResult<Option<f64>> { Ok(df.column(name)?.f64()?.get(i)) };
    let mut out = Vec::with_capacity(variants.len());
    for (i, v) in variants.iter().enumerate() {
        let seeds = df.column("seeds")?.cast(&DataType::UInt64)?.u64()?.get(i).unwrap_or(0) as usize;
        let mut stats = Vec::with_capacity(METRICS.len());
        for name in METRICS {
            let mean = f64_at(&format!("{name}_mean"), i)?.unwrap_or(f64::NAN);
            let std = if seeds > 1 { f64_at(&format!("{name}_std"), i)? } else { None };
            let interval = match std {
                Some(s) => {
                    let half = t_975(seeds - 1) * s / (seeds as f64).sqrt();
                    Some(((mean - half).max(0.0), (mean + half).min(1.0)))
                }
                None => own_interval(v.first(), name),
            };
            stats.push(Stat { mean, std, interval });
        }
        out.push(Row {
            multiclass: v.first().multiclass.is_some(),
            seeds,
            accuracy: stats[0],
            precision: stats[1],
            recall: stats[2],
            f1: stats[3],
            auroc: stats[4],
            average_precision: stats[5],
            trainable_parameters: f64_at("trainable_mean", i)?,
            fit_s: f64_at("fit_s_mean", i)?.unwrap_or(f64::NAN),
            samples_per_s: f64_at("samples_per_s_mean", i)?,
            peak_memory_mib: f64_at("peak_mib_mean", i)?,
        });
    }
    Ok(out)
}

/// The index of the best variant: highest mean F1, then AUROC.
pub fn best(rows: &[Row]) -> Option<usize> {
    (0..rows.len()).max_by(|&a, &b| {
        let key = |r: &Row| (r.f1.mean, r.auroc.mean);
        let (ka, kb) = (key(&rows[a]), key(&rows[b]));
        ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(b.cmp(&a))
    })
}

/// How the leaderboard prints its numbers (shared by the HTML page and the Markdown tables).
pub mod fmt {
    use super::Stat;

    pub fn value(s: &Stat) -> String {
        if s.mean.is_finite() {
            format!("{:.4}", s.mean)
        } else {
            "–".into()
        }
    }

    /// "± std" over seeds, or nothing with one seed.
    pub fn spread(s: &Stat) -> String {
        s.std.filter(|v| v.is_finite()).map(|v| format!("± {v:.4}")).unwrap_or_default()
    }

    pub fn interval(s: &Stat) -> String {
        s.interval.map(|(lo, hi)| format!("[{lo:.4}, {hi:.4}]")).unwrap_or_default()
    }

    /// A count with a unit prefix: 332.5k, 22.7M.
    pub fn count(n: Option<f64>) -> String {
        match n {
            Some(n) if n >= 1e6 => format!("{:.1}M", n / 1e6),
            Some(n) if n >= 1e3 => format!("{:.1}k", n / 1e3),
            Some(n) => format!("{n:.0}"),
            None => "–".into(),
        }
    }

    pub fn seconds(s: f64) -> String {
        match s {
            s if !s.is_finite() => "–".into(),
            s if s >= 3600.0 => format!("{:.1} h", s / 3600.0),
            s if s >= 60.0 => format!("{:.1} min", s / 60.0),
            s => format!("{s:.2} s"),
        }
    }

    pub fn rate(r: Option<f64>) -> String {
        r.filter(|v| v.is_finite()).map(|v| format!("{v:.1}/s")).unwrap_or_else(|| "–".into())
    }

    pub fn p_value(p: f64) -> String {
        if p < 1e-4 {
            format!("{p:.1e}")
        } else {
            format!("{p:.4}")
        }
    }
}
