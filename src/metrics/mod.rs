//! Metrics over the whole evaluation set (never averaged per batch), with seeded bootstrap intervals:
//! [`binary`] for two classes (the positive class's precision, recall, F1, AUROC, curves), [`multiclass`]
//! for more (per-class and macro/weighted averages, the k×k confusion matrix, one-vs-rest AUROC).
//! Conventions follow scikit-learn so that numbers compare.

pub mod binary;
pub mod multiclass;

pub use binary::*;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Bootstrap resamples for the confidence intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// How often each of `n` examples is drawn in bootstrap resample `r`: resample r draws from its own
/// ChaCha stream of the seed, so the intervals do not depend on the number of threads.
fn resample_counts(n: usize, seed: u64, r: usize) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(r as u64 + 1);
    let mut counts = vec![0u32; n];
    for _ in 0..n {
        counts[rng.gen_range(0..n)] += 1;
    }
    counts
}

/// Linear-interpolation percentile of sorted values (NumPy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The 95% percentile interval of bootstrap values.
fn interval(mut values: Vec<f64>) -> Interval {
    values.sort_by(f64::total_cmp);
    Interval { low: percentile(&values, 2.5), high: percentile(&values, 97.5) }
}

/// A run's evaluation, whichever kind it is.
#[derive(Debug, Clone, Copy)]
pub enum Scores<'a> {
    Binary(&'a Metrics),
    Multiclass(&'a multiclass::MulticlassMetrics),
}

/// Metrics that can carry a floor in a spec (higher is better for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FloorMetric {
    Accuracy,
    Precision,
    Recall,
    F1,
    Auroc,
    AveragePrecision,
    MacroPrecision,
    MacroRecall,
    MacroF1,
    WeightedF1,
    /// Mean one-vs-rest AUROC over the classes (for two classes, the AUROC).
    MacroAuroc,
    Top2Accuracy,
}

impl FloorMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::Precision => "precision",
            Self::Recall => "recall",
            Self::F1 => "f1",
            Self::Auroc => "auroc",
            Self::AveragePrecision => "average_precision",
            Self::MacroPrecision => "macro_precision",
            Self::MacroRecall => "macro_recall",
            Self::MacroF1 => "macro_f1",
            Self::WeightedF1 => "weighted_f1",
            Self::MacroAuroc => "macro_auroc",
            Self::Top2Accuracy => "top2_accuracy",
        }
    }

    /// The metric's value in a run's scores; `None` where it does not apply (the positive class's
    /// precision of a ten-class run, top-2 accuracy of a binary one).
    pub fn value(self, scores: Scores<'_>) -> Option<f64> {
        match scores {
            Scores::Binary(m) => {
                let per_class = || {
                    multiclass::per_class(&[vec![m.confusion_matrix[0][0], m.confusion_matrix[0][1]], vec![m.confusion_matrix[1][0], m.confusion_matrix[1][1]]])
                };
                match self {
                    Self::Accuracy => Some(m.accuracy),
                    Self::Precision => Some(m.precision),
                    Self::Recall => Some(m.recall),
                    Self::F1 => Some(m.f1),
                    Self::Auroc | Self::MacroAuroc => Some(m.auroc),
                    Self::AveragePrecision => Some(m.average_precision),
                    Self::MacroPrecision => Some(multiclass::Averages::of(&per_class()).macro_precision),
                    Self::MacroRecall => Some(multiclass::Averages::of(&per_class()).macro_recall),
                    Self::MacroF1 => Some(multiclass::Averages::of(&per_class()).macro_f1),
                    Self::WeightedF1 => Some(multiclass::Averages::of(&per_class()).weighted_f1),
                    Self::Top2Accuracy => None,
                }
            }
            Scores::Multiclass(m) => match self {
                Self::Accuracy => Some(m.accuracy),
                Self::MacroPrecision => Some(m.averages.macro_precision),
                Self::MacroRecall => Some(m.averages.macro_recall),
                Self::MacroF1 => Some(m.averages.macro_f1),
                Self::WeightedF1 => Some(m.averages.weighted_f1),
                Self::MacroAuroc | Self::Auroc => m.macro_auroc,
                Self::Top2Accuracy => m.top2_accuracy,
                Self::Precision | Self::Recall | Self::F1 | Self::AveragePrecision => None,
            },
        }
    }
}

impl<'a> Scores<'a> {
    pub fn accuracy(self) -> f64 {
        match self {
            Scores::Binary(m) => m.accuracy,
            Scores::Multiclass(m) => m.accuracy,
        }
    }

    /// The headline F1: the positive class's for two classes, macro-F1 for more.
    pub fn f1(self) -> f64 {
        match self {
            Scores::Binary(m) => m.f1,
            Scores::Multiclass(m) => m.averages.macro_f1,
        }
    }

    /// AUROC for two classes, the macro one-vs-rest AUROC for more (NaN where undefined).
    pub fn auroc(self) -> f64 {
        match self {
            Scores::Binary(m) => m.auroc,
            Scores::Multiclass(m) => m.macro_auroc.unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((percentile(&v, 50.0) - 3.0).abs() < 1e-12);
        assert!((percentile(&v, 2.5) - 1.1).abs() < 1e-12);
        assert!((percentile(&v, 97.5) - 4.9).abs() < 1e-12);
    }
}
