//! Choosing the epoch on data held out of the training split (never the evaluation split): the held-out
//! examples, each epoch's score on them, the best epoch's weights, and the decision threshold chosen
//! there when asked for.

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::params::{EarlyStopping, SelectBy, TrainParams};
use super::trainer::Trainer;
use super::{History, PREDICT_BATCH};
use crate::data::split;
use crate::error::{MethodError, ModelError};
use crate::methods::ClassProbabilities;
use crate::metrics;

#[derive(Debug, Clone, Serialize)]
pub struct EvalLog {
    pub accuracy: f64,
    pub f1: f64,
    pub auroc: f64,
    pub log_loss: f64,
}

impl EvalLog {
    /// Two classes: the binary metrics at `threshold`; more: accuracy, macro-F1 and macro AUROC.
    pub fn of(labels: &[u32], probs: &ClassProbabilities, threshold: f64, seed: u64) -> EvalLog {
        if probs.classes() == 2 {
            let positive: Vec<bool> = labels.iter().map(|&y| y == 1).collect();
            let (m, _) = metrics::evaluate(&positive, &probs.positive(), threshold, seed);
            EvalLog { accuracy: m.accuracy, f1: m.f1, auroc: m.auroc, log_loss: m.log_loss }
        } else {
            let rows: Vec<&[f64]> = probs.rows().collect();
            let m = metrics::multiclass::evaluate(labels, &rows, probs.classes(), seed);
            EvalLog { accuracy: m.accuracy, f1: m.averages.macro_f1, auroc: m.macro_auroc.unwrap_or(f64::NAN), log_loss: m.log_loss }
        }
    }

    /// The score an epoch is chosen by: higher is better.
    pub fn score(&self, by: SelectBy) -> f64 {
        match by {
            SelectBy::F1 => self.f1,
            SelectBy::Accuracy => self.accuracy,
            SelectBy::Auroc => self.auroc,
            SelectBy::LogLoss => -self.log_loss,
        }
    }
}

/// The epoch kept by early stopping: its number, held-out score, weights and held-out probabilities.
struct BestEpoch {
    epoch: usize,
    score: f64,
    weights: Vec<Tensor>,
    probs: ClassProbabilities,
}

/// Early stopping: the part of the training split held out to judge each epoch, and the best epoch so far.
pub struct EarlyStopper<'a> {
    settings: &'a EarlyStopping,
    pub ids: Vec<Vec<u32>>,
    labels: Vec<u32>,
    best: Option<BestEpoch>,
    epochs_since_best: usize,
}

impl EarlyStopper<'_> {
    /// Scores the model on the held-out examples after `epoch`, keeping a copy of its weights when it is
    /// strictly better than every earlier epoch (on a tie the earlier, less trained, epoch is kept).
    pub fn judge(&mut self, epoch: usize, trainer: &Trainer, device: &Device, seed: u64) -> Result<EvalLog, MethodError> {
        let probs = trainer.model.predict_ids(&self.ids, PREDICT_BATCH, device, &|_| {})?;
        let log = EvalLog::of(&self.labels, &probs, metrics::THRESHOLD, seed);
        let score = log.score(self.settings.metric);
        if self.best.as_ref().is_none_or(|b| score > b.score) {
            let weights = trainer.vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<Vec<_>>>().map_err(ModelError::from)?;
            self.best = Some(BestEpoch { epoch, score, weights, probs });
            self.epochs_since_best = 0;
        } else {
            self.epochs_since_best += 1;
        }
        Ok(log)
    }

    /// Whether the patience has run out.
    pub fn out_of_patience(&self) -> bool {
        self.settings.patience.is_some_and(|n| self.epochs_since_best >= n)
    }

    /// Gives the model the best epoch's weights and, with `tune_threshold`, chooses the decision threshold
    /// on the held-out data; both are written into the history.
    pub fn restore_best(self, trainer: &Trainer, history: &mut History, seed: u64) -> Result<(), MethodError> {
        let Some(best) = self.best else { return Ok(()) };
        for (v, t) in trainer.vars.iter().zip(&best.weights) {
            v.set(t).map_err(ModelError::from)?;
        }
        history.best_epoch = Some(best.epoch);
        if let Some(goal) = Some(self.settings).filter(|es| es.tune_threshold).and_then(|es| es.threshold_goal()) {
            let positive: Vec<bool> = self.labels.iter().map(|&y| y == 1).collect();
            let (threshold, _) = metrics::best_threshold(&positive, &best.probs.positive(), goal);
            tracing::info!(threshold, "decision threshold chosen on the held-out data");
            history.threshold = Some(threshold);
            history.holdout_at_threshold = Some(EvalLog::of(&self.labels, &best.probs, threshold, seed));
        }
        Ok(())
    }
}

/// The examples training steps on: token ids and labels.
pub struct TrainingSet {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

/// Holds out the early-stopping fraction of the training examples (stratified, under the seed): the
/// examples kept for training, and the stopper judging on the rest.
pub fn hold_out<'a>(
    p: &'a TrainParams,
    ids: Vec<Vec<u32>>,
    labels: &[u32],
    k: usize,
    seed: u64,
) -> Result<(TrainingSet, Option<EarlyStopper<'a>>), MethodError> {
    let Some(es) = &p.early_stopping else { return Ok((TrainingSet { ids, labels: labels.to_vec() }, None)) };
    let (fit_idx, held_idx) = split::holdout(labels, es.holdout, seed);
    let take = |idx: &[usize]| TrainingSet { ids: idx.iter().map(|&i| ids[i].clone()).collect(), labels: idx.iter().map(|&i| labels[i]).collect() };
    let held = take(&held_idx);
    let held_classes = crate::data::labels::class_counts(&held.labels, k).iter().filter(|&&n| n > 0).count();
    if held_classes < 2 {
        return Err(MethodError::Unfit(format!(
            "early_stopping.holdout leaves {} held-out examples of {held_classes} class: at least two classes are needed to judge an epoch; raise the fraction",
            held.labels.len()
        )));
    }
    Ok((take(&fit_idx), Some(EarlyStopper { settings: es, ids: held.ids, labels: held.labels, best: None, epochs_since_best: 0 })))
}
