//! `finetune` and `lora`: training a sequence classifier on the encoder. AdamW (weight decay on weight
//! matrices, not on biases and layer norms, as Hugging Face's Trainer), linear warm-up then linear decay,
//! gradient clipping by global norm, seeded dropout, and batches of similar lengths.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::backbone::{locate, Backbone};
use super::classifier::Classifier;
use super::encoder::Mode;
use super::optim::{Optim, Settings};
use super::params::{Bucketing, EarlyStopping, SelectBy, TrainParams};
use crate::data::split;
use crate::error::{MethodError, ModelError};
use crate::methods::{ClassProbabilities, Examples, FitContext, Fitted, Method, Predictor, Saved};
use crate::metrics;
use crate::progress::Progress;

/// Texts per forward pass at prediction time.
const PREDICT_BATCH: usize = 64;
/// Batches are formed from windows of this many batches' worth of examples, sorted by length.
const BUCKET_WINDOW: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct StepLog {
    pub step: usize,
    pub epoch: usize,
    /// Mean training loss over the steps since the previous entry.
    pub loss: f64,
    /// Mean global gradient norm (before clipping) over the same steps: how often and how hard
    /// `max_grad_norm` bites.
    pub grad_norm: f64,
    pub lr: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
    /// Metrics on the evaluation split after this epoch (reported, never used to choose anything).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalLog>,
    /// Metrics on the part of the training split held out for early stopping, which chooses the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<EvalLog>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalLog {
    pub accuracy: f64,
    pub f1: f64,
    pub auroc: f64,
    pub log_loss: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct History {
    pub steps: Vec<StepLog>,
    pub epochs: Vec<EpochLog>,
    /// Padded tokens per real token in the training batches (1.0 = no padding).
    pub padding_ratio: f64,
    pub train_samples_per_s: f64,
    /// With early stopping: the epoch whose weights the model keeps, and how many examples were held out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_examples: Option<usize>,
    /// With early stopping and a patience: the epoch after which training stopped, if before the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<usize>,
    /// With `tune_threshold`: the decision threshold chosen on the held-out data, and the kept model's
    /// held-out metrics at it (the per-epoch metrics above are at 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_at_threshold: Option<EvalLog>,
}

impl EvalLog {
    /// Two classes: the binary metrics at `threshold`; more: accuracy, macro-F1 and macro AUROC.
    fn of(labels: &[u32], probs: &ClassProbabilities, threshold: f64, seed: u64) -> EvalLog {
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
    fn score(&self, by: SelectBy) -> f64 {
        match by {
            SelectBy::F1 => self.f1,
            SelectBy::Accuracy => self.accuracy,
            SelectBy::Auroc => self.auroc,
            SelectBy::LogLoss => -self.log_loss,
        }
    }
}

pub struct FittedClassifier {
    kind: String,
    classes: crate::data::ClassSet,
    params: TrainParams,
    model: Classifier,
    history: History,
    device: Device,
}

/// Batches of example indices for one epoch. With length bucketing, windows of shuffled examples are
/// sorted by length before being cut into batches, and the batches shuffled: little padding, still
/// random. Otherwise (`false`, `split`) the shuffled examples are cut in order.
pub fn make_batches(lengths: &[usize], batch_size: usize, bucketing: Bucketing, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lengths.len()).collect();
    idx.shuffle(rng);
    let by_length = bucketing == Bucketing::Length;
    if by_length {
        for window in idx.chunks_mut(batch_size * BUCKET_WINDOW) {
            window.sort_by_key(|&i| lengths[i]); // stable: ties keep their shuffled order
        }
    }
    let mut batches: Vec<Vec<usize>> = idx.chunks(batch_size).map(<[usize]>::to_vec).collect();
    if by_length {
        batches.shuffle(rng);
    }
    batches
}

/// The fixed cost of one more forward and backward pass, in padded tokens' worth of work: what
/// splitting a batch must save in padding to pay for itself. Measured with `bench perf` on SMS (see
/// docs/performance.md).
const GROUP_COST_TOKENS: usize = 64;

/// A batch's examples (given by their lengths) in groups of similar lengths, each padded only to its own
/// longest: contiguous runs of the batch sorted by length, the cut chosen to minimise padded tokens
/// plus GROUP_COST_TOKENS per group (exactly, by dynamic programming over the cut points). Positions
/// are into `lengths`.
pub fn length_groups(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let n = order.len();
    // cost[j]: the cheapest grouping of the j shortest; cut[j]: where its last group starts.
    let (mut cost, mut cut) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for j in 1..=n {
        let longest = lengths[order[j - 1]];
        (cost[j], cut[j]) = (0..j).map(|i| (cost[i] + (j - i) * longest + GROUP_COST_TOKENS, i)).min().expect("j >= 1");
    }
    let mut groups = Vec::new();
    let mut j = n;
    while j > 0 {
        groups.push(order[cut[j]..j].to_vec());
        j = cut[j];
    }
    groups.reverse();
    groups
}

/// One group of a training batch: token ids and mask padded to the group's longest, and the targets.
pub struct Group {
    pub tok: Tensor,
    pub mask: Tensor,
    pub targets: Tensor,
}

/// The groups a batch is computed in: its `length_groups` with `split`, else the whole batch as one.
pub fn groups_of(lengths: &[usize], split: bool) -> Vec<Vec<usize>> {
    if split {
        length_groups(lengths)
    } else {
        vec![(0..lengths.len()).collect()]
    }
}

impl Group {
    /// The examples `seqs` padded to their longest, with their `targets`.
    pub fn new(backbone: &Backbone, seqs: &[&[u32]], targets: Vec<u32>, device: &Device) -> Result<Group, ModelError> {
        let (tok, mask) = backbone.batch(seqs, device)?;
        let targets = Tensor::from_vec(targets, seqs.len(), device)?;
        Ok(Group { tok, mask, targets })
    }
}

/// A batch's tensors, group by group (`groups_of`).
pub fn batch_groups(backbone: &Backbone, seqs: &[&[u32]], targets: &[u32], split: bool, device: &Device) -> Result<Vec<Group>, ModelError> {
    let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
    groups_of(&lengths, split)
        .iter()
        .map(|g| Group::new(backbone, &g.iter().map(|&i| seqs[i]).collect::<Vec<_>>(), g.iter().map(|&i| targets[i]).collect(), device))
        .collect()
}

/// Learning rate at a step: linear warm-up to `peak`, then linear decay to 0 at `total`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// AdamW over named trainable tensors, as Hugging Face's Trainer sets it up: weight decay on weight
/// matrices only (not on biases or layer norms), betas (0.9, 0.999), eps 1e-8, clipping at the params'
/// max_grad_norm.
pub fn optimizer(trainable: &[(String, Var)], p: &TrainParams) -> Result<Optim, MethodError> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = trainable.iter().partition(|(name, _)| !name.ends_with("bias") && !name.contains("LayerNorm"));
    let group = |g: Vec<&(String, Var)>| g.into_iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let settings = Settings { beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: p.max_grad_norm };
    Ok(Optim::new(vec![(group(decay), p.weight_decay), (group(no_decay), 0.0)], settings).map_err(ModelError::from)?)
}

/// What one training step reports.
pub struct StepOutcome {
    /// The batch's mean cross-entropy, with dropout.
    pub loss: f64,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f64,
}

/// One model with its optimiser state: the training step shared by `fit` and `bench perf`.
pub struct Trainer {
    pub model: Classifier,
    /// Every trainable tensor (encoder weights for full fine-tuning, adapters, pooler and head).
    pub vars: Vec<Var>,
    optim: Optim,
    dropout_rng: ChaCha8Rng,
}

impl Trainer {
    pub fn new(model: Classifier, p: &TrainParams, seed: u64) -> Result<Trainer, MethodError> {
        let vars: Vec<Var> = model.trainable.iter().map(|(_, v)| v.clone()).collect();
        let optim = optimizer(&model.trainable, p)?;
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(seed);
        dropout_rng.set_stream(2);
        Ok(Trainer { model, vars, optim, dropout_rng })
    }

    /// Forward with dropout, cross-entropy, backward, clipping and one AdamW update at `lr` over one batch
    /// given as groups; the loss and the gradient norm before clipping. The loss is the mean over all the
    /// batch's examples (each group's mean weighted by its share), so the gradient is the one the whole
    /// batch padded as one tensor would give. Runs on rayon's pool (`kernels::in_pool`).
    pub fn step(&mut self, groups: &[Group], lr: f64) -> candle_core::Result<StepOutcome> {
        let device = groups.first().map_or(candle_core::Device::Cpu, |g| g.tok.device().clone());
        super::kernels::in_pool(&device, || self.step_here(groups, lr))
    }

    fn step_here(&mut self, groups: &[Group], lr: f64) -> candle_core::Result<StepOutcome> {
        let total: usize = groups.iter().map(|g| g.targets.dims1()).sum::<candle_core::Result<usize>>()?;
        let mut loss: Option<Tensor> = None;
        for g in groups {
            let logits = self.model.forward(&g.tok, &g.mask, &mut Mode { train: Some(&mut self.dropout_rng) })?;
            let mut part = candle_nn::loss::cross_entropy(&logits, &g.targets)?;
            if groups.len() > 1 {
                part = part.affine(g.targets.dims1()? as f64 / total as f64, 0.0)?;
            }
            loss = Some(match loss {
                Some(sum) => (sum + part)?,
                None => part,
            });
        }
        let loss = loss.ok_or_else(|| candle_core::Error::Msg("a training step needs at least one group".into()))?;
        let mut grads = loss.backward()?;
        let grad_norm = self.optim.step(&mut grads, lr)?;
        Ok(StepOutcome { loss: loss.to_scalar::<f32>().map(f64::from)?, grad_norm })
    }
}

/// Builds the classifier for a method kind: all weights trainable (`finetune`), or the checkpoint frozen
/// and LoRA adapters added (`lora`); the head is trainable in both.
pub fn build(kind: &str, p: &TrainParams, classes: usize, models_dir: &std::path::Path, seed: u64, device: &Device) -> Result<Classifier, MethodError> {
    let dir = locate(&p.backbone, models_dir)?;
    let (backbone, weights) = Backbone::load(&dir, p.max_length, kind == "finetune", device)?;
    let mut model = Classifier::new(backbone, weights, p.pooling, classes, seed, device).map_err(ModelError::from)?;
    if let Some(lora) = &p.lora {
        model.add_lora(lora, seed, device).map_err(ModelError::from)?;
    }
    Ok(model)
}

impl Method for TrainParams {
    fn validate(&self, kind: &str) -> Result<(), (&'static str, String)> {
        self.check_ranges(kind)
    }

    fn check_resources(&self, models_dir: &std::path::Path) -> Result<(), ModelError> {
        crate::methods::transformer_resources(&self.backbone, self.device, models_dir)
    }

    fn fit(&self, kind: &str, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        Ok(Box::new(fit(kind, self, train, ctx)?))
    }

    /// A fine-tuned model's Hugging Face folder; for LoRA, the classifier built as training built it
    /// (same backbone, pooling, classes and adapters), given the saved adapter and head.
    fn load(&self, kind: &str, saved: &Saved<'_>) -> anyhow::Result<Option<Box<dyn Predictor>>> {
        let device = self.device.resolve()?;
        let model = if kind == "lora" {
            let model = build(kind, self, saved.classes.len(), saved.models_dir, 0, &device)?;
            model.set_trainable(&super::artifact::load_lora_tensors(saved.artifact)?)?;
            model
        } else {
            Classifier::load_finetuned(saved.artifact, self.max_length, self.pooling, &device)?
        };
        Ok(Some(Box::new(SavedClassifier { model, device })))
    }

    /// `kind: lora` always carries its LoRA settings in the resolved config (defaults when not written).
    fn resolved(mut self, kind: &str) -> Self {
        if kind == "lora" {
            self.lora.get_or_insert_with(Default::default);
        }
        self
    }
}

struct SavedClassifier {
    model: Classifier,
    device: Device,
}

impl Predictor for SavedClassifier {
    fn predict_proba(&self, texts: &[String]) -> anyhow::Result<ClassProbabilities> {
        Ok(self.model.predict_ids(&self.model.backbone.tokenize(texts)?, PREDICT_BATCH, &self.device, &|_| {})?)
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
struct EarlyStopper<'a> {
    settings: &'a EarlyStopping,
    ids: Vec<Vec<u32>>,
    labels: Vec<u32>,
    best: Option<BestEpoch>,
    epochs_since_best: usize,
}

impl EarlyStopper<'_> {
    /// Scores the model on the held-out examples after `epoch`, keeping a copy of its weights when it is
    /// strictly better than every earlier epoch (on a tie the earlier, less trained, epoch is kept).
    fn judge(&mut self, epoch: usize, trainer: &Trainer, device: &Device, seed: u64) -> Result<EvalLog, MethodError> {
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
    fn out_of_patience(&self) -> bool {
        self.settings.patience.is_some_and(|n| self.epochs_since_best >= n)
    }

    /// Gives the model the best epoch's weights and, with `tune_threshold`, chooses the decision threshold
    /// on the held-out data; both are written into the history.
    fn restore_best(self, trainer: &Trainer, history: &mut History, seed: u64) -> Result<(), MethodError> {
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
struct TrainingSet {
    ids: Vec<Vec<u32>>,
    labels: Vec<u32>,
}

/// Holds out the early-stopping fraction of the training examples (stratified, under the seed): the
/// examples kept for training, and the stopper judging on the rest.
fn hold_out<'a>(p: &'a TrainParams, ids: Vec<Vec<u32>>, labels: &[u32], k: usize, seed: u64) -> Result<(TrainingSet, Option<EarlyStopper<'a>>), MethodError> {
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

/// The mean loss and gradient norm over the steps since the last history entry.
#[derive(Default)]
struct StepWindow {
    loss: f64,
    grad_norm: f64,
    steps: usize,
}

pub fn fit(kind: &str, p: &TrainParams, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<FittedClassifier, MethodError> {
    let device = p.device.resolve()?;
    let k = train.classes.len();
    if k != 2 && p.early_stopping.as_ref().is_some_and(|es| es.tune_threshold) {
        return Err(MethodError::Unfit(format!(
            "early_stopping.tune_threshold chooses a threshold on the positive class's probability; these data have {k} classes"
        )));
    }
    let model = build(kind, p, k, ctx.models_dir, ctx.seed, &device)?;
    let (TrainingSet { ids, labels }, mut stopper) = hold_out(p, model.backbone.tokenize(train.texts)?, train.labels, k, ctx.seed)?;
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let steps_per_epoch = ids.len().div_ceil(p.batch_size);
    let total = p.epochs * steps_per_epoch;
    let warmup = (p.warmup_ratio * total as f64).ceil() as usize;

    let mut trainer = Trainer::new(model, p, ctx.seed)?;
    let mut batch_rng = ChaCha8Rng::seed_from_u64(ctx.seed);
    batch_rng.set_stream(1);
    let mut history = History { holdout_examples: stopper.as_ref().map(|s| s.ids.len()), ..Default::default() };
    let mut epochs_run = 0usize;
    let (mut real_tokens, mut padded_tokens, mut step) = (0usize, 0usize, 0usize);
    let mut train_seconds = 0.0;
    let bar = ctx.progress.bar(total as u64, format!("{kind} training"), "steps");
    for epoch in 1..=p.epochs {
        let started = Instant::now();
        let (mut epoch_loss, mut window) = (0.0, StepWindow::default());
        let batches = make_batches(&lengths, p.batch_size, p.bucketing, &mut batch_rng);
        for batch in &batches {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            let targets: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
            let groups = batch_groups(&trainer.model.backbone, &seqs, &targets, p.bucketing == Bucketing::Split, &device)?;
            real_tokens += seqs.iter().map(|s| s.len()).sum::<usize>();
            padded_tokens += groups.iter().map(|g| g.tok.elem_count()).sum::<usize>();
            let StepOutcome { loss, grad_norm } = trainer.step(&groups, learning_rate(step, total, warmup, p.lr)).map_err(ModelError::from)?;
            if !loss.is_finite() {
                return Err(MethodError::Numerical(format!("training loss became {loss} at step {step} (try a lower lr)")));
            }
            tracing::trace!(step, loss, grad_norm, width = seqs.iter().map(|s| s.len()).max().unwrap_or(0), groups = groups.len(), "step");
            step += 1;
            epoch_loss += loss;
            window.loss += loss;
            window.grad_norm += grad_norm;
            window.steps += 1;
            if step % p.log_every == 0 || step == total {
                let n = window.steps as f64;
                let lr = learning_rate(step - 1, total, warmup, p.lr);
                history.steps.push(StepLog { step, epoch, loss: window.loss / n, grad_norm: window.grad_norm / n, lr });
                window = StepWindow::default();
            }
            bar.inc(1);
        }
        train_seconds += started.elapsed().as_secs_f64();
        epochs_run = epoch;
        let eval = match &ctx.monitor {
            Some(m) => Some(EvalLog::of(m.labels, &predict(&trainer.model, m.texts, ctx.progress, &device)?, metrics::THRESHOLD, ctx.seed)),
            None => None,
        };
        let holdout = match &mut stopper {
            Some(s) => Some(s.judge(epoch, &trainer, &device, ctx.seed)?),
            None => None,
        };
        let train_loss = epoch_loss / batches.len() as f64;
        tracing::info!(epoch, loss = train_loss, eval = ?eval.as_ref().map(|e| e.accuracy), holdout = ?holdout.as_ref().map(|e| e.accuracy), "epoch done");
        history.epochs.push(EpochLog { epoch, train_loss, seconds: started.elapsed().as_secs_f64(), eval, holdout });
        if stopper.as_ref().is_some_and(EarlyStopper::out_of_patience) && epoch < p.epochs {
            tracing::info!(epoch, "early stopping: the held-out score has not improved");
            history.stopped_after = Some(epoch);
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(s) = stopper {
        s.restore_best(&trainer, &mut history, ctx.seed)?;
    }
    history.padding_ratio = padded_tokens as f64 / real_tokens.max(1) as f64;
    history.train_samples_per_s = (epochs_run * ids.len()) as f64 / train_seconds;
    Ok(FittedClassifier { kind: kind.to_string(), classes: train.classes.clone(), params: p.clone(), model: trainer.model, history, device })
}

fn predict(model: &Classifier, texts: &[String], progress: &Progress, device: &Device) -> Result<ClassProbabilities, MethodError> {
    let ids = model.backbone.tokenize(texts)?;
    let bar = progress.bar(texts.len() as u64, "predicting", "texts");
    let probs = model.predict_ids(&ids, PREDICT_BATCH, device, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    Ok(probs)
}

impl FittedClassifier {
    pub fn model(&self) -> &Classifier {
        &self.model
    }
}

impl Fitted for FittedClassifier {
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<ClassProbabilities, MethodError> {
        predict(&self.model, texts, progress, &self.device)
    }

    fn trainable_parameters(&self) -> usize {
        self.model.trainable_parameters()
    }

    fn fitted_parameters(&self) -> usize {
        self.model.parameter_count()
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "backbone": self.model.backbone.dir.display().to_string(),
            "backbone_sha256": self.model.backbone.fingerprint,
            "padding_ratio": self.history.padding_ratio,
        })
    }

    fn save(&self, dir: &std::path::Path) -> Result<bool, MethodError> {
        match &self.params.lora {
            Some(lora) if self.kind == "lora" => super::artifact::save_lora(&self.model, lora, &self.params.backbone, &self.classes, dir)?,
            _ => super::artifact::save_finetuned(&self.model, &self.classes, dir)?,
        }
        Ok(true)
    }

    fn history(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.history).ok()
    }

    fn train_samples_per_s(&self) -> Option<f64> {
        Some(self.history.train_samples_per_s)
    }

    fn threshold(&self) -> f64 {
        self.history.threshold.unwrap_or(metrics::THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lrs: Vec<f64> = (0..10).map(|s| learning_rate(s, 10, 2, 1.0)).collect();
        assert_eq!(lrs[0], 0.5);
        assert_eq!(lrs[1], 1.0);
        assert_eq!(lrs[2], 1.0);
        assert!((lrs[9] - 1.0 / 8.0).abs() < 1e-12);
        assert!(lrs.windows(2).skip(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn bucketed_batches_cover_every_example_once_and_pad_less() {
        let lengths: Vec<usize> = (0..1000).map(|i| 5 + (i * 37) % 90).collect();
        let batches = |b: Bucketing| make_batches(&lengths, 16, b, &mut ChaCha8Rng::seed_from_u64(3));
        let bucketed = batches(Bucketing::Length);
        let mut seen: Vec<usize> = bucketed.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let padded = |batches: &[Vec<usize>]| -> usize { batches.iter().map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap()).sum() };
        assert!(padded(&bucketed) * 10 < padded(&batches(Bucketing::Off)) * 7, "bucketing pads much less");
        assert_eq!(batches(Bucketing::Length), bucketed, "deterministic under the seed");
        assert_eq!(batches(Bucketing::Split), batches(Bucketing::Off), "split keeps the random batches");
    }

    /// The cost of every cut of a batch sorted by length into contiguous groups.
    fn all_grouping_costs(sorted: &[usize]) -> Vec<usize> {
        let n = sorted.len();
        (0..1usize << (n - 1))
            .map(|cuts| {
                let (mut cost, mut start) = (0, 0);
                for end in 1..=n {
                    if end == n || cuts >> (end - 1) & 1 == 1 {
                        cost += (end - start) * sorted[end - 1] + GROUP_COST_TOKENS;
                        start = end;
                    }
                }
                cost
            })
            .collect()
    }

    #[test]
    fn length_groups_are_the_cheapest_grouping() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for n in 1..=12 {
            let lengths: Vec<usize> = (0..n).map(|_| 3 + (rand::Rng::gen::<u32>(&mut rng) % 120) as usize).collect();
            let groups = length_groups(&lengths);
            let mut seen: Vec<usize> = groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every example once");
            let cost: usize = groups.iter().map(|g| g.len() * g.iter().map(|&i| lengths[i]).max().unwrap() + GROUP_COST_TOKENS).sum();
            let mut sorted = lengths.clone();
            sorted.sort_unstable();
            let best = all_grouping_costs(&sorted).into_iter().min().unwrap();
            assert_eq!(cost, best, "lengths {lengths:?}: {groups:?}");
        }
        // One long example among short ones is worth a pass of its own; equal lengths never are.
        assert_eq!(length_groups(&[10, 10, 120, 10, 10, 10, 10, 10]), vec![vec![0, 1, 3, 4, 5, 6, 7], vec![2]]);
        assert_eq!(length_groups(&[20; 16]).len(), 1);
    }
}
