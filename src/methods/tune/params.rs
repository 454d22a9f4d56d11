//! Hyperparameters of the trained transformer methods, `finetune` and `lora`: one struct, with the LoRA
//! settings in their own `lora:` section (present for `kind: lora`, rejected for `kind: finetune`).

use serde::{Deserialize, Serialize};

use crate::models::{validate_backbone, DeviceChoice};
use crate::nn::Pooling;

/// A layer LoRA wraps, by its family's name for it (`query`, `intermediate`, … for BERT): checked
/// against every family's names when the spec loads, and against the backbone's family when the model
/// is built.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoraTarget(String);

impl LoraTarget {
    pub fn new(name: &str) -> LoraTarget {
        LoraTarget(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A family's default targets.
    pub fn defaults(family: &crate::models::Family) -> Vec<LoraTarget> {
        family.default_lora_targets.iter().map(|t| LoraTarget::new(t)).collect()
    }
}

/// How training examples are grouped into batches. Written in a spec as `bucketing: false`, `true` or
/// `split`; stored the same way, so records of runs from before `split` existed keep their identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bucketing {
    /// Random batches, each padded to its longest example (what PyTorch's default collator does).
    Off,
    /// Windows of shuffled examples sorted by length, then cut into batches: the least padding. Where
    /// length predicts the label (SMS spam is long) half the batches hold a single class, which changes
    /// what each step learns from.
    #[default]
    Length,
    /// Random batches, as `false`, each computed as groups of similar lengths padded separately: the
    /// optimiser sees exactly random batches, at a little more padding than `true`.
    Split,
}

impl Serialize for Bucketing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Bucketing::Off => s.serialize_bool(false),
            Bucketing::Length => s.serialize_bool(true),
            Bucketing::Split => s.serialize_str("split"),
        }
    }
}

impl<'de> Deserialize<'de> for Bucketing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bucketing;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true (length bucketing), false (random batches) or split (random batches computed in length groups)")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Bucketing, E> {
                Ok(if v { Bucketing::Length } else { Bucketing::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bucketing, E> {
                match v {
                    "split" => Ok(Bucketing::Split),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraSettings {
    fn default() -> Self {
        LoraSettings { rank: 8, alpha: 16.0, dropout: 0.1, targets: LoraTarget::defaults(crate::models::DEFAULT_FAMILY) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// A model folder, or its name under the models directory.
    pub backbone: String,
    pub max_length: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of AdamW.
    pub lr: f64,
    /// Decoupled weight decay, on weight matrices only (not biases, layer norms or embeddings' norms).
    pub weight_decay: f64,
    /// Fraction of the steps spent warming the learning rate up linearly from 0; it then decays linearly to 0.
    pub warmup_ratio: f64,
    /// Gradients are scaled down when their global L2 norm exceeds this.
    pub max_grad_norm: f64,
    /// How examples are grouped into batches (`false`, `true` or `split`); deterministic under the seed.
    pub bucketing: Bucketing,
    /// The most examples in one forward and backward pass: a larger batch is computed in parts whose
    /// gradients are added before the step (gradient accumulation), the same step in less memory. Left
    /// out of the stored configuration when not given, so earlier runs keep their identities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// Training loss is recorded every this many steps.
    pub log_every: usize,
    pub device: DeviceChoice,
    /// LoRA only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSettings>,
    /// What the classification head reads: `cls` (the family's own head, the default: for BERT the
    /// [CLS] state through the checkpoint's pooler, as BertForSequenceClassification does; for a decoder
    /// the last real token's state, as LlamaForSequenceClassification does), `mean` (the mean over real
    /// tokens, the representation sentence-transformers checkpoints such as MiniLM were trained to
    /// produce) or `last` (the last real token's state). Left out
    /// of the stored configuration when it is the default, so earlier runs keep their identities.
    #[serde(skip_serializing_if = "Pooling::is_cls")]
    pub pooling: Pooling,
    /// Choose the epoch on data held out of the training split (never on the evaluation split), and
    /// optionally stop when it stops improving. Off unless given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// What gives the class scores: `score`, a new linear layer on the pooled state (the family's
    /// sequence-classification head; the default), or `prompt`, a decoder's next-token logits of one
    /// label word per class after the text placed in `prompt` (`prompt.rs`); with `epochs: 0` that is
    /// the zero-shot baseline. The four keys are left out of the stored configuration when unused, so
    /// earlier runs keep their identities.
    #[serde(skip_serializing_if = "HeadKind::is_score")]
    pub head: HeadKind,
    /// `head: prompt`: the template, with `{text}` where the text goes (default: the text alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `head: prompt`: the template as a user message in the model's own chat template.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chat: bool,
    /// `head: prompt`: one word per class, in the classes' order (binary: negative, then positive),
    /// each a single token of the model's vocabulary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub label_words: Vec<String>,
}

/// What gives a classifier its class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    #[default]
    Score,
    Prompt,
}

impl HeadKind {
    pub fn is_score(&self) -> bool {
        *self == HeadKind::Score
    }
}

/// The metric an epoch is chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelectBy {
    #[default]
    F1,
    Accuracy,
    Auroc,
    /// Lower is better.
    LogLoss,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlyStopping {
    /// Fraction of the training split held out (stratified, under the run's seed) to judge each epoch.
    pub holdout: f64,
    pub metric: SelectBy,
    /// Stop after this many epochs without improvement; without it every epoch runs and the best is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
    /// Also choose the decision threshold on the held-out data: the one that maximises `metric` (accuracy
    /// or F1) for the kept epoch's model, instead of 0.5. Left out of the stored configuration when off,
    /// so earlier runs keep their identities.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tune_threshold: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping { holdout: 0.1, metric: SelectBy::F1, patience: None, tune_threshold: false }
    }
}

impl EarlyStopping {
    /// What `tune_threshold` maximises: the selection metric, when it depends on a threshold.
    pub fn threshold_goal(&self) -> Option<crate::metrics::ThresholdGoal> {
        match self.metric {
            SelectBy::Accuracy => Some(crate::metrics::ThresholdGoal::Accuracy),
            SelectBy::F1 => Some(crate::metrics::ThresholdGoal::F1),
            SelectBy::Auroc | SelectBy::LogLoss => None,
        }
    }
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            backbone: "all-MiniLM-L6-v2".into(),
            max_length: 128,
            epochs: 2,
            batch_size: 16,
            lr: 5e-5,
            weight_decay: 0.01,
            warmup_ratio: 0.06,
            max_grad_norm: 1.0,
            bucketing: Bucketing::Length,
            micro_batch: None,
            log_every: 50,
            device: DeviceChoice::Cpu,
            lora: None,
            pooling: Pooling::Cls,
            early_stopping: None,
            head: HeadKind::Score,
            prompt: None,
            chat: false,
            label_words: Vec::new(),
        }
    }
}

impl TrainParams {
    /// What the spec says of a prompt head, when it asks for one.
    pub fn prompt_spec(&self) -> Option<super::prompt::PromptSpec<'_>> {
        (self.head == HeadKind::Prompt).then(|| super::prompt::PromptSpec { template: self.prompt.as_deref(), chat: self.chat, label_words: &self.label_words })
    }

    /// `prompt`, `chat` and `label_words` go with `head: prompt`, which needs label words and a
    /// template with one `{text}`.
    fn check_head(&self) -> Result<(), (&'static str, String)> {
        use super::prompt::PLACEHOLDER;
        if self.head == HeadKind::Score {
            for (key, set) in [("prompt", self.prompt.is_some()), ("chat", self.chat), ("label_words", !self.label_words.is_empty())] {
                if set {
                    return Err((key, format!("{key} goes with head: prompt (a decoder's next-token logits); this head is score")));
                }
            }
            return Ok(());
        }
        if self.label_words.len() < 2 {
            return Err(("label_words", "head: prompt needs label_words: one word per class, in class order (binary: negative, then positive)".into()));
        }
        if let Some(duplicate) = self.label_words.iter().enumerate().find(|(i, w)| self.label_words[..*i].contains(w)) {
            return Err(("label_words", format!("label_words names {:?} twice; each class needs its own word", duplicate.1)));
        }
        if let Some(template) = &self.prompt {
            if template.matches(PLACEHOLDER).count() != 1 {
                return Err(("prompt", format!("prompt must hold {PLACEHOLDER} exactly once, where the text goes")));
            }
        }
        if !matches!(self.pooling, Pooling::Cls | Pooling::Last) {
            return Err(("pooling", "head: prompt reads the last token's next-token logits; pooling does not apply".into()));
        }
        Ok(())
    }

    /// Checks value ranges for `kind` (finetune or lora).
    pub fn check_ranges(&self, kind: &str) -> Result<(), (&'static str, String)> {
        let positive = |v: f64| v > 0.0 && v.is_finite();
        validate_backbone(&self.backbone, self.max_length)?;
        self.check_head()?;
        // A prompt head scores classes untrained: 0 epochs is its zero-shot baseline.
        let least_epochs = if self.head == HeadKind::Prompt { 0 } else { 1 };
        if self.epochs < least_epochs {
            return Err(("epochs", "epochs is 0; it must be at least 1 (0 is for head: prompt, the zero-shot baseline)".into()));
        }
        if self.epochs == 0 && self.early_stopping.is_some() {
            return Err(("early_stopping", "early_stopping chooses among epochs; with epochs: 0 there are none".into()));
        }
        for (key, value) in [("batch_size", self.batch_size), ("log_every", self.log_every), ("micro_batch", self.micro_batch.unwrap_or(1))] {
            if value == 0 {
                return Err((key, format!("{key} is 0; it must be at least 1")));
            }
        }
        if !positive(self.lr) {
            return Err(("lr", format!("lr is {}; it must be a positive number", self.lr)));
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(("weight_decay", "weight_decay must be a number, 0 or more".into()));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(("warmup_ratio", format!("warmup_ratio is {}; it is a fraction in [0, 1)", self.warmup_ratio)));
        }
        if !positive(self.max_grad_norm) {
            return Err(("max_grad_norm", "max_grad_norm must be a positive number".into()));
        }
        if let Some(es) = &self.early_stopping {
            if !(es.holdout > 0.0 && es.holdout < 0.5) {
                return Err((
                    "early_stopping",
                    format!("early_stopping.holdout is {}; it is the fraction of the training split held out, in (0, 0.5)", es.holdout),
                ));
            }
            if es.patience == Some(0) {
                return Err(("early_stopping", "early_stopping.patience must be at least 1 (omit it to keep the best of all epochs)".into()));
            }
            if es.tune_threshold && es.threshold_goal().is_none() {
                return Err((
                    "early_stopping",
                    "early_stopping.tune_threshold maximises early_stopping.metric on the held-out data, and auroc and log_loss do not depend on a threshold: use metric: accuracy or f1".into(),
                ));
            }
        }
        match (kind, &self.lora) {
            ("finetune", Some(_)) => Err(("lora", "`lora:` settings apply to kind: lora, not finetune".into())),
            ("lora", Some(l)) => {
                if l.rank == 0 {
                    Err(("lora", "lora.rank must be at least 1".into()))
                } else if !positive(l.alpha) {
                    Err(("lora", "lora.alpha must be a positive number".into()))
                } else if !(0.0..1.0).contains(&l.dropout) {
                    Err(("lora", "lora.dropout is a probability in [0, 1)".into()))
                } else if let Some(t) = l.targets.iter().find(|t| !crate::models::is_lora_target(t.as_str())) {
                    Err(("lora", format!("lora.targets names {:?}, which is no layer LoRA can wrap ({})", t.as_str(), crate::models::lora_target_names())))
                } else if let Some(t) = l.targets.iter().find(|t| self.pooling != Pooling::Cls && crate::models::bypassed_by_mean_pooling(t.as_str())) {
                    Err((
                        "lora",
                        format!(
                            "lora.targets names {0}, but pooling: {1} bypasses the {0}; drop one of the two",
                            t.as_str(),
                            serde_json::json!(self.pooling).as_str().unwrap_or("mean")
                        ),
                    ))
                } else if l.targets.is_empty() {
                    Err(("lora", format!("lora.targets needs at least one layer ({})", crate::models::lora_target_names())))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}
