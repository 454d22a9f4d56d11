//! `finetune` and `lora`: training a model family's sequence classifier, every weight or LoRA adapters
//! on the frozen checkpoint, the head trained in both. AdamW (weight decay where the family says, as
//! Hugging Face's Trainer), linear warm-up then linear decay, gradient clipping by global norm, seeded
//! dropout, batches of similar lengths, and early stopping on held-out training data.

pub mod artifact;
pub mod batches;
pub mod classifier;
pub mod early_stopping;
pub mod params;
pub mod prompt;
pub mod trainer;

use std::time::Instant;

use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use batches::{batch_groups, make_batches};
use classifier::Classifier;
use early_stopping::{hold_out, EarlyStopper, EvalLog, TrainingSet};
use params::{Bucketing, TrainParams};
use trainer::{learning_rate, StepOutcome, Trainer};

use crate::error::{MethodError, ModelError};
use crate::methods::{ClassProbabilities, Examples, FitContext, Fitted, Method, Predictor, Saved};
use crate::metrics;
use crate::models::locate;
use crate::progress::Progress;

/// Texts per forward pass at prediction time.
const PREDICT_BATCH: usize = 64;

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

pub struct FittedClassifier {
    kind: String,
    classes: crate::data::ClassSet,
    params: TrainParams,
    model: Classifier,
    history: History,
    device: Device,
}

/// Builds the classifier for a method kind: all weights trainable (`finetune`), or the checkpoint frozen
/// and LoRA adapters added (`lora`); the head is trainable in both.
pub fn build(kind: &str, p: &TrainParams, classes: usize, models_dir: &std::path::Path, seed: u64, device: &Device) -> Result<Classifier, MethodError> {
    let dir = locate(&p.backbone, models_dir)?;
    let mut model = match p.prompt_spec() {
        Some(spec) if spec.label_words.len() != classes => {
            return Err(MethodError::Unfit(format!(
                "label_words names {} words; these data have {classes} classes (one word per class, in class order)",
                spec.label_words.len()
            )))
        }
        Some(spec) => Classifier::prompted(&dir, p.max_length, kind == "finetune", spec, device)?,
        None => Classifier::new(&dir, p.max_length, kind == "finetune", p.pooling, classes, seed, device)?,
    };
    // Nothing trains in 0 epochs (a prompt head's zero-shot run): no adapters, the base model exactly.
    if let Some(lora) = p.lora.as_ref().filter(|_| p.epochs > 0) {
        model.add_lora(lora, seed, device).map_err(ModelError::from)?;
    }
    Ok(model)
}

impl Method for TrainParams {
    fn validate(&self, kind: &str) -> Result<(), (&'static str, String)> {
        self.check_ranges(kind)
    }

    /// The backbone is found and, for `head: prompt`, its tokenizer has every label word as one token
    /// (and its chat template renders), before any run starts.
    fn check_resources(&self, models_dir: &std::path::Path) -> Result<(), ModelError> {
        crate::models::check_resources(&self.backbone, self.device, models_dir)?;
        if let Some(spec) = self.prompt_spec() {
            prompt::Prompting::new(&locate(&self.backbone, models_dir)?, spec, self.max_length)?;
        }
        Ok(())
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
            if self.epochs > 0 {
                model.set_trainable(&artifact::load_lora_tensors(saved.artifact)?)?;
            }
            model
        } else {
            Classifier::load_finetuned(saved.artifact, self.max_length, self.pooling, self.prompt_spec(), &device)?
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
        Ok(self.model.predict_ids(&self.model.tokenize(texts)?, PREDICT_BATCH, &self.device, &|_| {})?)
    }
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
    let (TrainingSet { ids, labels }, mut stopper) = hold_out(p, model.tokenize(train.texts)?, train.labels, k, ctx.seed)?;
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
            let groups = batch_groups(&trainer.model.checkpoint, &seqs, &targets, p.bucketing == Bucketing::Split, p.micro_batch, &device)?;
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
    // Nothing trained (a prompt head's zero-shot run) is 0 samples/s, not 0/0.
    history.train_samples_per_s = if epochs_run == 0 { 0.0 } else { (epochs_run * ids.len()) as f64 / train_seconds };
    Ok(FittedClassifier { kind: kind.to_string(), classes: train.classes.clone(), params: p.clone(), model: trainer.model, history, device })
}

fn predict(model: &Classifier, texts: &[String], progress: &Progress, device: &Device) -> Result<ClassProbabilities, MethodError> {
    let ids = model.tokenize(texts)?;
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
            "backbone": self.model.checkpoint.dir.display().to_string(),
            "backbone_sha256": self.model.checkpoint.fingerprint,
            "padding_ratio": self.history.padding_ratio,
        })
    }

    fn save(&self, dir: &std::path::Path) -> Result<bool, MethodError> {
        match &self.params.lora {
            // Zero-shot: the base model itself; only the config (classes, prompt) is worth keeping.
            Some(_) if self.kind == "lora" && self.params.epochs == 0 => artifact::write_config(&self.model, &self.classes, dir)?,
            Some(lora) if self.kind == "lora" => artifact::save_lora(&self.model, lora, &self.params.backbone, &self.classes, dir)?,
            _ => artifact::save_finetuned(&self.model, &self.classes, dir)?,
        }
        Ok(true)
    }

    fn history(&self) -> Option<serde_json::Value> {
        serde_json::to_value(&self.history).ok()
    }

    /// None when nothing trained (a zero-shot run): there is no rate to report.
    fn train_samples_per_s(&self) -> Option<f64> {
        (self.history.train_samples_per_s > 0.0).then_some(self.history.train_samples_per_s)
    }

    fn threshold(&self) -> f64 {
        self.history.threshold.unwrap_or(metrics::THRESHOLD)
    }
}
