//! Binary classification metrics computed over the whole evaluation set (never averaged per batch),
//! curves, and seeded bootstrap confidence intervals.
//!
//! Conventions follow scikit-learn so numbers can be compared: the positive class is spam/toxic, a text
//! is predicted positive when its probability is above the decision threshold (0.5 unless a method chose
//! another on held-out data), ties in scores count half in AUROC, average precision is the step-wise
//! sum Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct thresholds, precision with no positive prediction is 0.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{interval, resample_counts, Interval};

/// The default decision threshold on the positive-class probability.
pub const THRESHOLD: f64 = 0.5;

/// Whether a probability is a positive prediction at `threshold`: the one rule every count, stored
/// prediction and `bench predict` label follows.
pub fn predicts_positive(probability: f64, threshold: f64) -> bool {
    probability > threshold
}

pub use super::BOOTSTRAP_RESAMPLES;
const LOG_LOSS_EPS: f64 = 1e-15;
/// Curves keep at most this many points (enough to draw them faithfully).
const MAX_CURVE_POINTS: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    pub confidence: f64,
    pub resamples: usize,
    pub accuracy: Interval,
    pub f1: Interval,
    pub auroc: Interval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub examples: usize,
    pub positives: usize,
    pub threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub auroc: f64,
    pub average_precision: f64,
    pub log_loss: f64,
    /// `[[tn, fp], [fn, tp]]`: rows are the true class (negative, positive), columns the prediction.
    pub confusion_matrix: [[u64; 2]; 2],
    pub intervals: Intervals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub fpr: f64,
    pub tpr: f64,
    /// Predicted positive when probability ≥ threshold; absent for the (0, 0) corner.
    pub threshold: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrPoint {
    pub recall: f64,
    pub precision: f64,
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    pub roc: Vec<RocPoint>,
    pub pr: Vec<PrPoint>,
}

/// Everything about one evaluation at a decision threshold: metrics with intervals and curves.
pub fn evaluate(labels: &[bool], probs: &[f64], threshold: f64, seed: u64) -> (Metrics, Curves) {
    assert_eq!(labels.len(), probs.len(), "one probability per label");
    let order = descending_order(probs);
    let unit = vec![1u32; labels.len()];
    let cm = confusion_matrix(labels, probs, threshold, &unit);
    let (accuracy, precision, recall, f1) = rates(&cm);
    let metrics = Metrics {
        examples: labels.len(),
        positives: labels.iter().filter(|&&l| l).count(),
        threshold,
        accuracy,
        precision,
        recall,
        f1,
        auroc: weighted_auroc(labels, probs, &order, &unit).unwrap_or(f64::NAN),
        average_precision: average_precision(labels, probs, &order),
        log_loss: log_loss(labels, probs),
        confusion_matrix: cm,
        intervals: bootstrap(labels, probs, &order, threshold, seed),
    };
    let curves = Curves { roc: roc_curve(labels, probs, &order), pr: pr_curve(labels, probs, &order) };
    (metrics, curves)
}

/// Indices sorted by probability, highest first (ties keep index order, so the result is deterministic).
fn descending_order(probs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
}

/// Weighted confusion matrix at `threshold`; weights are bootstrap counts (all 1 for the plain metric).
fn confusion_matrix(labels: &[bool], probs: &[f64], threshold: f64, weights: &[u32]) -> [[u64; 2]; 2] {
    let mut cm = [[0u64; 2]; 2];
    for ((&y, &p), &w) in labels.iter().zip(probs).zip(weights) {
        cm[y as usize][predicts_positive(p, threshold) as usize] += w as u64;
    }
    cm
}

/// What a decision threshold is chosen to maximise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdGoal {
    Accuracy,
    F1,
}

impl ThresholdGoal {
    /// The goal's value for a confusion matrix.
    fn score(self, cm: &[[u64; 2]; 2]) -> f64 {
        let (accuracy, _, _, f1) = rates(cm);
        match self {
            ThresholdGoal::Accuracy => accuracy,
            ThresholdGoal::F1 => f1,
        }
    }
}

/// The decision threshold that maximises `goal` on labelled data (held-out data, never the evaluation
/// split), with the score it reaches there. Candidates are 0.5, the midpoints between consecutive
/// distinct probabilities, and one below the lowest and one at or above the highest (every way of cutting
/// the sorted scores); among equal scores the one nearest 0.5 wins, so the default stays unless the data
/// says otherwise.
pub fn best_threshold(labels: &[bool], probs: &[f64], goal: ThresholdGoal) -> (f64, f64) {
    assert_eq!(labels.len(), probs.len(), "one probability per label");
    let order = descending_order(probs);
    let unit = vec![1u32; labels.len()];
    let (positives, negatives) = count_classes(labels);
    // The goal when the tp positives and fp negatives seen so far are predicted positive.
    let score = |tp: f64, fp: f64| goal.score(&[[(negatives - fp) as u64, fp as u64], [(positives - tp) as u64, tp as u64]]);
    let mut best = (THRESHOLD, goal.score(&confusion_matrix(labels, probs, THRESHOLD, &unit)));
    let mut consider = |candidate: (f64, f64)| {
        let nearer = (candidate.0 - THRESHOLD).abs() < (best.0 - THRESHOLD).abs();
        if candidate.1 > best.1 || (candidate.1 == best.1 && nearer) {
            best = candidate;
        }
    };
    // Walking down the sorted scores: after a tie group, everything seen so far is predicted positive
    // by any threshold between this group's score and the next lower one.
    let groups: Vec<(f64, f64, f64)> = tie_groups(labels, probs, &order, &unit).collect();
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &(s, pos, neg)) in groups.iter().enumerate() {
        tp += pos;
        fp += neg;
        let t = match groups.get(k + 1) {
            Some(next) => (s + next.0) / 2.0,
            // Everything positive: below the lowest score (below 0 when that is 0).
            None if s > 0.0 => s / 2.0,
            None => -0.5,
        };
        consider((t, score(tp, fp)));
    }
    // Nothing positive: at or above the top score.
    consider((groups.first().map_or(1.0, |g| g.0).max(THRESHOLD), score(0.0, 0.0)));
    best
}

/// Accuracy, precision, recall and F1 of the positive class from a confusion matrix.
fn rates(cm: &[[u64; 2]; 2]) -> (f64, f64, f64, f64) {
    let [[tn, fp], [fneg, tp]] = *cm;
    let total = (tn + fp + fneg + tp) as f64;
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    ((tp + tn) as f64 / total, precision, recall, f1)
}

/// Iterates over groups of tied scores in descending order, yielding the weighted (positives, negatives)
/// in each group and the group's score.
fn tie_groups<'a>(labels: &'a [bool], probs: &'a [f64], order: &'a [usize], weights: &'a [u32]) -> impl Iterator<Item = (f64, f64, f64)> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= order.len() {
            return None;
        }
        let score = probs[order[i]];
        let (mut pos, mut neg) = (0.0, 0.0);
        while i < order.len() && probs[order[i]] == score {
            let w = weights[order[i]] as f64;
            if labels[order[i]] {
                pos += w
            } else {
                neg += w
            }
            i += 1;
        }
        Some((score, pos, neg))
    })
}

/// Area under the ROC curve (ties count half); `None` when a class is absent.
fn weighted_auroc(labels: &[bool], probs: &[f64], order: &[usize], weights: &[u32]) -> Option<f64> {
    let (mut area, mut pos_seen, mut neg_total) = (0.0, 0.0, 0.0);
    for (_, pos, neg) in tie_groups(labels, probs, order, weights) {
        area += neg * (pos_seen + pos / 2.0);
        pos_seen += pos;
        neg_total += neg;
    }
    (pos_seen > 0.0 && neg_total > 0.0).then(|| area / (pos_seen * neg_total))
}

fn average_precision(labels: &[bool], probs: &[f64], order: &[usize]) -> f64 {
    let unit = vec![1u32; labels.len()];
    let total_pos = labels.iter().filter(|&&l| l).count() as f64;
    if total_pos == 0.0 {
        return 0.0;
    }
    let (mut tp, mut fp, mut prev_recall, mut ap) = (0.0, 0.0, 0.0, 0.0);
    for (_, pos, neg) in tie_groups(labels, probs, order, &unit) {
        tp += pos;
        fp += neg;
        let recall = tp / total_pos;
        ap += (recall - prev_recall) * (tp / (tp + fp));
        prev_recall = recall;
    }
    ap
}

/// Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15].
fn log_loss(labels: &[bool], probs: &[f64]) -> f64 {
    let sum: f64 = labels
        .iter()
        .zip(probs)
        .map(|(&y, &p)| {
            let p = p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            -(if y { p.ln() } else { (1.0 - p).ln() })
        })
        .sum();
    sum / labels.len() as f64
}

fn roc_curve(labels: &[bool], probs: &[f64], order: &[usize]) -> Vec<RocPoint> {
    let unit = vec![1u32; labels.len()];
    let (p, n) = count_classes(labels);
    let mut pts = vec![(0.0, 0.0, None)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (score, pos, neg) in tie_groups(labels, probs, order, &unit) {
        tp += pos;
        fp += neg;
        pts.push((fp, tp, Some(score)));
    }
    // Drop points on a straight segment between their neighbours (scikit-learn's drop_intermediate).
    let keep: Vec<usize> = (0..pts.len())
        .filter(|&i| {
            i == 0 || i + 1 == pts.len() || {
                let (a, b, c) = (pts[i - 1], pts[i], pts[i + 1]);
                (c.0 - b.0) - (b.0 - a.0) != 0.0 || (c.1 - b.1) - (b.1 - a.1) != 0.0
            }
        })
        .collect();
    thin(&keep)
        .into_iter()
        .map(|i| {
            let (fp, tp, threshold) = pts[i];
            RocPoint { fpr: if n > 0.0 { fp / n } else { 0.0 }, tpr: if p > 0.0 { tp / p } else { 0.0 }, threshold }
        })
        .collect()
}

fn pr_curve(labels: &[bool], probs: &[f64], order: &[usize]) -> Vec<PrPoint> {
    let unit = vec![1u32; labels.len()];
    let (p, _) = count_classes(labels);
    let (mut tp, mut fp) = (0.0, 0.0);
    let pts: Vec<PrPoint> = tie_groups(labels, probs, order, &unit)
        .map(|(score, pos, neg)| {
            tp += pos;
            fp += neg;
            PrPoint { recall: if p > 0.0 { tp / p } else { 0.0 }, precision: tp / (tp + fp), threshold: score }
        })
        .collect();
    let idx: Vec<usize> = (0..pts.len()).collect();
    thin(&idx).into_iter().map(|i| pts[i].clone()).collect()
}

fn count_classes(labels: &[bool]) -> (f64, f64) {
    let p = labels.iter().filter(|&&l| l).count() as f64;
    (p, labels.len() as f64 - p)
}

/// Keeps at most [`MAX_CURVE_POINTS`] indices, evenly spread, always the first and the last.
fn thin(idx: &[usize]) -> Vec<usize> {
    if idx.len() <= MAX_CURVE_POINTS {
        return idx.to_vec();
    }
    let last = idx.len() - 1;
    let mut out: Vec<usize> = (0..MAX_CURVE_POINTS).map(|k| idx[k * last / (MAX_CURVE_POINTS - 1)]).collect();
    out.dedup();
    out
}

/// Percentile bootstrap (95%) of accuracy, F1 and AUROC. Resample r draws from its own ChaCha stream of
/// the seed, so the intervals do not depend on the number of threads.
fn bootstrap(labels: &[bool], probs: &[f64], order: &[usize], threshold: f64, seed: u64) -> Intervals {
    let n = labels.len();
    let samples: Vec<(f64, f64, Option<f64>)> = (0..BOOTSTRAP_RESAMPLES)
        .into_par_iter()
        .map(|r| {
            let counts = resample_counts(n, seed, r);
            let (acc, _, _, f1) = rates(&confusion_matrix(labels, probs, threshold, &counts));
            (acc, f1, weighted_auroc(labels, probs, order, &counts))
        })
        .collect();
    Intervals {
        confidence: 0.95,
        resamples: BOOTSTRAP_RESAMPLES,
        accuracy: interval(samples.iter().map(|s| s.0).collect()),
        f1: interval(samples.iter().map(|s| s.1).collect()),
        auroc: interval(samples.iter().filter_map(|s| s.2).collect()),
    }
}

/// One-vs-rest helpers for the multi-class metrics: AUROC of `labels` (the class) against `probs`.
pub fn auroc(labels: &[bool], probs: &[f64]) -> Option<f64> {
    weighted_auroc(labels, probs, &descending_order(probs), &vec![1u32; labels.len()])
}

/// The ROC curve of `labels` (the class) against `probs`.
pub fn roc(labels: &[bool], probs: &[f64]) -> Vec<RocPoint> {
    roc_curve(labels, probs, &descending_order(probs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn hand_computed_case() {
        // labels:  1    0    1    0    1    0
        // probs:  .9   .8   .7   .3   .2   .1
        let labels = [true, false, true, false, true, false];
        let probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        let (m, _) = evaluate(&labels, &probs, THRESHOLD, 0);
        // predicted positive: .9 .8 .7 → tp 2, fp 1; fn 1, tn 2
        assert_eq!(m.confusion_matrix, [[2, 1], [1, 2]]);
        close(m.accuracy, 4.0 / 6.0);
        close(m.precision, 2.0 / 3.0);
        close(m.recall, 2.0 / 3.0);
        close(m.f1, 2.0 / 3.0);
        // pairs (pos, neg) ranked correctly: .9>all 3, .7>.3,.1 (2), .2>.1 (1) → 6 of 9
        close(m.auroc, 6.0 / 9.0);
        // AP = 1/3·1 + 1/3·2/3 + 1/3·3/5
        close(m.average_precision, (1.0 + 2.0 / 3.0 + 3.0 / 5.0) / 3.0);
        let ll = -(0.9f64.ln() + 0.2f64.ln() + 0.7f64.ln() + 0.7f64.ln() + 0.2f64.ln() + 0.9f64.ln()) / 6.0;
        close(m.log_loss, ll);
    }

    #[test]
    fn ties_count_half() {
        // Every score tied: AUROC is exactly 0.5, AP is the positive rate.
        let labels = [true, false, false, true, false];
        let probs = [0.4; 5];
        let (m, c) = evaluate(&labels, &probs, THRESHOLD, 0);
        close(m.auroc, 0.5);
        close(m.average_precision, 0.4);
        assert_eq!(m.confusion_matrix, [[3, 0], [2, 0]]);
        close(m.precision, 0.0);
        close(m.f1, 0.0);
        assert_eq!(c.roc.len(), 2, "one step from (0,0) to (1,1)");
        // A tie between one positive and one negative among others.
        let labels = [true, true, false, false];
        let probs = [0.9, 0.5, 0.5, 0.1];
        let (m, _) = evaluate(&labels, &probs, THRESHOLD, 0);
        close(m.auroc, 3.5 / 4.0);
        // AP: threshold .9 → R .5 P 1; threshold .5 → R 1 P 2/3
        close(m.average_precision, 0.5 * 1.0 + 0.5 * 2.0 / 3.0);
    }

    #[test]
    fn perfect_and_inverted() {
        let labels = [false, false, true, true];
        let (m, _) = evaluate(&labels, &[0.1, 0.2, 0.8, 0.9], THRESHOLD, 0);
        close(m.auroc, 1.0);
        close(m.average_precision, 1.0);
        close(m.f1, 1.0);
        let (m, _) = evaluate(&labels, &[0.9, 0.8, 0.2, 0.1], THRESHOLD, 0);
        close(m.auroc, 0.0);
        close(m.recall, 0.0);
    }

    #[test]
    fn exactly_half_is_negative() {
        let (m, _) = evaluate(&[true, false], &[0.5, 0.2], THRESHOLD, 0);
        assert_eq!(m.confusion_matrix, [[1, 0], [1, 0]]);
    }

    #[test]
    fn roc_curve_drops_collinear_points() {
        let labels = [true, true, true, false, false, false];
        let probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        let (_, c) = evaluate(&labels, &probs, THRESHOLD, 0);
        let pts: Vec<(f64, f64)> = c.roc.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(pts, vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let labels: Vec<bool> = (0..300).map(|i| i % 3 == 0).collect();
        let probs: Vec<f64> = (0..300).map(|i| if i % 3 == 0 { 0.3 + (i % 7) as f64 / 10.0 } else { (i % 5) as f64 / 10.0 }).collect();
        let (a, _) = evaluate(&labels, &probs, THRESHOLD, 7);
        let (b, _) = evaluate(&labels, &probs, THRESHOLD, 7);
        let (c, _) = evaluate(&labels, &probs, THRESHOLD, 8);
        assert_eq!(a.intervals, b.intervals);
        assert_ne!(a.intervals, c.intervals);
        for (iv, v) in [(a.intervals.accuracy, a.accuracy), (a.intervals.f1, a.f1), (a.intervals.auroc, a.auroc)] {
            assert!(iv.low <= v && v <= iv.high, "{iv:?} should contain {v}");
            assert!(iv.high - iv.low > 0.0);
        }
    }

    /// The score of `goal` at a threshold, counted directly.
    fn score_at(labels: &[bool], probs: &[f64], t: f64, goal: ThresholdGoal) -> f64 {
        goal.score(&confusion_matrix(labels, probs, t, &vec![1; labels.len()]))
    }

    #[test]
    fn best_threshold_beats_every_other_cut_and_prefers_the_default() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for case in 0..200 {
            let n = 1 + case % 40;
            // Coarse probabilities, so ties between examples are common.
            let probs: Vec<f64> = (0..n).map(|_| rng.gen_range(0..20) as f64 / 20.0).collect();
            let labels: Vec<bool> = probs.iter().map(|&p| rng.gen_bool((0.2 + 0.6 * p).min(1.0))).collect();
            // The candidates: 0.5, the midpoint of each gap between distinct scores, below the lowest, and
            // at or above the highest.
            let mut distinct = probs.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let mut candidates = vec![THRESHOLD, if distinct[0] > 0.0 { distinct[0] / 2.0 } else { -0.5 }];
            candidates.extend(distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            candidates.push(distinct[distinct.len() - 1].max(THRESHOLD)); // nothing positive
            for goal in [ThresholdGoal::Accuracy, ThresholdGoal::F1] {
                let (t, s) = best_threshold(&labels, &probs, goal);
                close(score_at(&labels, &probs, t, goal), s);
                // No threshold at all does better: every distinct cut of the scores is one in this grid.
                for k in -1..=41 {
                    let other = k as f64 / 40.0 - 1e-9;
                    let o = score_at(&labels, &probs, other, goal);
                    assert!(o <= s + 1e-12, "case {case} {goal:?}: {other} scores {o} > {s} at {t}");
                }
                // Of the candidates that score as well, the one nearest 0.5.
                let nearest = candidates
                    .iter()
                    .copied()
                    .filter(|&c| score_at(&labels, &probs, c, goal) == s)
                    .min_by(|a, b| (a - THRESHOLD).abs().total_cmp(&(b - THRESHOLD).abs()))
                    .unwrap();
                assert!((t - THRESHOLD).abs() <= (nearest - THRESHOLD).abs() + 1e-12, "case {case} {goal:?}: {t} chosen, {nearest} ties nearer 0.5");
            }
        }
        // Cleanly separated above 0.5: the best cut sits between the classes, not at 0.5.
        let labels = [false, false, false, true, true];
        let probs = [0.2, 0.6, 0.7, 0.8, 0.9];
        assert_eq!(best_threshold(&labels, &probs, ThresholdGoal::Accuracy), (0.75, 1.0));
        // Already perfect at 0.5: 0.5 stays.
        assert_eq!(best_threshold(&labels, &[0.2, 0.3, 0.4, 0.8, 0.9], ThresholdGoal::F1), (THRESHOLD, 1.0));
    }
}
