//! Metrics for k ≥ 3 classes, as scikit-learn computes them with `labels=range(k)`: the predicted class
//! is the most probable one (the lowest index among ties, as NumPy's argmax); per-class precision,
//! recall and F1 (0 where undefined: no prediction or no example of the class); macro averages (the
//! unweighted mean over all k classes) and weighted ones (by support); log loss with probabilities
//! clipped to [1e-15, 1 − 1e-15]; one-vs-rest AUROC per class (ties count half; undefined for a class
//! with no example) and its macro mean over the classes where it is defined; top-2 accuracy (the true
//! class among the two most probable: fewer than two classes score strictly higher; scikit-learn breaks
//! such ties by index, the higher first); bootstrap intervals for accuracy and macro-F1.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{interval, resample_counts, Interval, BOOTSTRAP_RESAMPLES};

const LOG_LOSS_EPS: f64 = 1e-15;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Evaluation examples of the class.
    pub support: u64,
    /// One-vs-rest AUROC; absent when the class has no example (or every example is of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    pub weighted_precision: f64,
    pub weighted_recall: f64,
    pub weighted_f1: f64,
}

impl Averages {
    pub fn of(per_class: &[ClassMetrics]) -> Averages {
        let k = per_class.len().max(1) as f64;
        let total: u64 = per_class.iter().map(|c| c.support).sum();
        let mean = |f: fn(&ClassMetrics) -> f64| per_class.iter().map(f).sum::<f64>() / k;
        let weighted = |f: fn(&ClassMetrics) -> f64| {
            if total == 0 {
                0.0
            } else {
                per_class.iter().map(|c| f(c) * c.support as f64).sum::<f64>() / total as f64
            }
        };
        Averages {
            macro_precision: mean(|c| c.precision),
            macro_recall: mean(|c| c.recall),
            macro_f1: mean(|c| c.f1),
            weighted_precision: weighted(|c| c.precision),
            weighted_recall: weighted(|c| c.recall),
            weighted_f1: weighted(|c| c.f1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassIntervals {
    pub confidence: f64,
    pub resamples: usize,
    pub accuracy: Interval,
    pub macro_f1: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassMetrics {
    pub examples: usize,
    pub accuracy: f64,
    #[serde(flatten)]
    pub averages: Averages,
    /// In class order.
    pub per_class: Vec<ClassMetrics>,
    /// Rows are the true class, columns the prediction.
    pub confusion_matrix: Vec<Vec<u64>>,
    pub log_loss: f64,
    pub macro_auroc: Option<f64>,
    pub top2_accuracy: Option<f64>,
    pub intervals: MulticlassIntervals,
}

/// Precision, recall, F1 and support of each class from a confusion matrix (AUROC left out).
pub fn per_class(cm: &[Vec<u64>]) -> Vec<ClassMetrics> {
    let k = cm.len();
    (0..k)
        .map(|c| {
            let tp = cm[c][c];
            let support: u64 = cm[c].iter().sum();
            let predicted: u64 = (0..k).map(|r| cm[r][c]).sum();
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            ClassMetrics { precision, recall, f1, support, auroc: None }
        })
        .collect()
}

/// The k×k confusion matrix of the predictions, each example counted `weights[i]` times.
fn confusion(labels: &[u32], predicted: &[u32], k: usize, weights: Option<&[u32]>) -> Vec<Vec<u64>> {
    let mut cm = vec![vec![0u64; k]; k];
    for (i, (&y, &p)) in labels.iter().zip(predicted).enumerate() {
        cm[y as usize][p as usize] += weights.map_or(1, |w| w[i] as u64);
    }
    cm
}

fn accuracy_of(cm: &[Vec<u64>]) -> f64 {
    let total: u64 = cm.iter().flatten().sum();
    let right: u64 = (0..cm.len()).map(|c| cm[c][c]).sum();
    if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    }
}

/// Whether the true class is among the two most probable: fewer than two classes score above it.
fn in_top2(row: &[f64], y: usize) -> bool {
    row.iter().filter(|&&p| p > row[y]).count() < 2
}

/// Every metric of a k-class evaluation. `probs` holds one row of k probabilities per example.
pub fn evaluate(labels: &[u32], probs: &[&[f64]], k: usize, seed: u64) -> MulticlassMetrics {
    assert_eq!(labels.len(), probs.len(), "one row of probabilities per label");
    let predicted: Vec<u32> = probs.iter().map(|r| crate::methods::argmax(r)).collect();
    let cm = confusion(labels, &predicted, k, None);
    let mut classes = per_class(&cm);
    for (c, m) in classes.iter_mut().enumerate() {
        let is_c: Vec<bool> = labels.iter().map(|&y| y as usize == c).collect();
        let score: Vec<f64> = probs.iter().map(|r| r[c]).collect();
        m.auroc = super::binary::auroc(&is_c, &score);
    }
    let defined: Vec<f64> = classes.iter().filter_map(|c| c.auroc).collect();
    let n = labels.len().max(1) as f64;
    let log_loss = labels.iter().zip(probs).map(|(&y, r)| -r[y as usize].clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()).sum::<f64>() / n;
    let top2 = (k > 2).then(|| labels.iter().zip(probs).filter(|(&y, r)| in_top2(r, y as usize)).count() as f64 / n);
    let samples: Vec<(f64, f64)> = (0..BOOTSTRAP_RESAMPLES)
        .into_par_iter()
        .map(|r| {
            let counts = resample_counts(labels.len(), seed, r);
            let cm = confusion(labels, &predicted, k, Some(&counts));
            (accuracy_of(&cm), Averages::of(&per_class(&cm)).macro_f1)
        })
        .collect();
    MulticlassMetrics {
        examples: labels.len(),
        accuracy: accuracy_of(&cm),
        averages: Averages::of(&classes),
        per_class: classes,
        confusion_matrix: cm,
        log_loss,
        macro_auroc: (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64),
        top2_accuracy: top2,
        intervals: MulticlassIntervals {
            confidence: 0.95,
            resamples: BOOTSTRAP_RESAMPLES,
            accuracy: interval(samples.iter().map(|s| s.0).collect()),
            macro_f1: interval(samples.iter().map(|s| s.1).collect()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-11, "{a} != {b}");
    }

    /// Ten examples over three classes, with a class-1 example tied between classes 1 and 2 and a tie in
    /// class 0's scores. The expected numbers were computed with scikit-learn 1.9
    /// (`benches/sklearn_multiclass_cases.py` prints them): classification_report(labels=[0,1,2]),
    /// roc_auc_score(multi_class="ovr", average=None and "macro"), log_loss, top_k_accuracy_score(k=2).
    fn case() -> (Vec<u32>, Vec<[f64; 3]>) {
        let labels = vec![0, 0, 0, 1, 1, 1, 2, 2, 2, 2];
        let probs = vec![
            [0.7, 0.2, 0.1],
            [0.5, 0.3, 0.2],
            [0.2, 0.5, 0.3],
            [0.1, 0.8, 0.1],
            [0.2, 0.4, 0.4],
            [0.5, 0.3, 0.2],
            [0.1, 0.2, 0.7],
            [0.2, 0.3, 0.5],
            [0.3, 0.4, 0.3],
            [0.1, 0.1, 0.8],
        ];
        (labels, probs)
    }

    #[test]
    fn matches_scikit_learn_on_a_fixed_case_with_ties() {
        let (labels, probs) = case();
        let rows: Vec<&[f64]> = probs.iter().map(|r| &r[..]).collect();
        let m = evaluate(&labels, &rows, 3, 0);
        // argmax (first among ties): 0 0 1 | 1 1 0 | 2 2 1 2
        assert_eq!(m.confusion_matrix, vec![vec![2, 1, 0], vec![1, 2, 0], vec![0, 1, 3]]);
        close(m.accuracy, 0.7);
        let expect = [(2.0 / 3.0, 2.0 / 3.0, 3), (0.5, 2.0 / 3.0, 3), (1.0, 0.75, 4)];
        for (c, &(p, r, s)) in expect.iter().enumerate() {
            close(m.per_class[c].precision, p);
            close(m.per_class[c].recall, r);
            close(m.per_class[c].f1, 2.0 * p * r / (p + r));
            assert_eq!(m.per_class[c].support, s);
        }
        let f1: Vec<f64> = expect.iter().map(|&(p, r, _)| 2.0 * p * r / (p + r)).collect();
        close(m.averages.macro_f1, f1.iter().sum::<f64>() / 3.0);
        close(m.averages.weighted_f1, (3.0 * f1[0] + 3.0 * f1[1] + 4.0 * f1[2]) / 10.0);
        close(m.averages.macro_precision, (2.0 / 3.0 + 0.5 + 1.0) / 3.0);
        close(m.averages.macro_f1, 0.698412698413);
        close(m.averages.weighted_f1, 0.714285714286);
        // One-vs-rest AUROC, ties counting half.
        close(m.per_class[0].auroc.unwrap(), 0.8333333333333333);
        close(m.per_class[1].auroc.unwrap(), 0.7857142857142857);
        close(m.per_class[2].auroc.unwrap(), 0.9375);
        close(m.macro_auroc.unwrap(), 0.8521825396825397);
        let ll = -[0.7f64, 0.5, 0.2, 0.8, 0.4, 0.3, 0.7, 0.5, 0.3, 0.8].iter().map(|p| p.ln()).sum::<f64>() / 10.0;
        close(m.log_loss, ll);
        assert!((m.log_loss - 0.7479605604585903).abs() < 1e-12);
        // Only example 2 misses (its class is third); example 8's class ties for second.
        close(m.top2_accuracy.unwrap(), 0.9);
    }

    #[test]
    fn an_absent_class_has_zero_scores_and_no_auroc() {
        let labels = vec![0, 1, 0, 1];
        let probs = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.1, 0.2, 0.7]];
        let rows: Vec<&[f64]> = probs.iter().map(|r| &r[..]).collect();
        let m = evaluate(&labels, &rows, 3, 0);
        assert_eq!(m.per_class[2].support, 0);
        assert_eq!(m.per_class[2].auroc, None);
        close(m.per_class[2].precision, 0.0);
        close(m.averages.macro_recall, (0.5 + 0.5 + 0.0) / 3.0);
        assert!(m.macro_auroc.is_some());
    }

    #[test]
    fn intervals_are_seeded_and_bracket_the_estimate() {
        let labels: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let probs: Vec<[f64; 3]> = (0..300)
            .map(|i| {
                let mut r = [0.2, 0.2, 0.2];
                r[if i % 5 == 0 { (i + 1) % 3 } else { i % 3 }] = 0.6;
                r
            })
            .collect();
        let rows: Vec<&[f64]> = probs.iter().map(|r| &r[..]).collect();
        let a = evaluate(&labels, &rows, 3, 7);
        assert_eq!(a.intervals, evaluate(&labels, &rows, 3, 7).intervals);
        assert_ne!(a.intervals, evaluate(&labels, &rows, 3, 8).intervals);
        for (iv, v) in [(a.intervals.accuracy, a.accuracy), (a.intervals.macro_f1, a.averages.macro_f1)] {
            assert!(iv.low <= v && v <= iv.high && iv.high > iv.low, "{iv:?} should contain {v}");
        }
    }
}
