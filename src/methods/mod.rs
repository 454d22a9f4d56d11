//! Methods: validated hyperparameters apart from fitted models, as in linfa. A method's parameters are
//! a plain value deserialised from the spec; `fit` returns a separate [`Fitted`] model that predicts.
//! A new method is one module plus one variant of [`MethodConfig`].

pub mod logistic;
pub mod lsa;
pub mod multinomial;
pub mod transformer;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::MethodError;
use crate::progress::Progress;
use transformer::cache::ModelCache;

/// Texts and their labels (class indices; for two classes, 1 is the positive class).
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    pub texts: &'a [String],
    pub labels: &'a [u32],
    pub classes: &'a crate::data::ClassSet,
}

/// Each example's probability of each class, row-major (`examples × classes`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassProbabilities {
    classes: usize,
    values: Vec<f64>,
}

impl ClassProbabilities {
    pub fn new(classes: usize, values: Vec<f64>) -> ClassProbabilities {
        assert!(classes >= 2 && values.len().is_multiple_of(classes), "{} values for {classes} classes", values.len());
        ClassProbabilities { classes, values }
    }

    /// Two classes from the positive class's probabilities: rows `[1 − p, p]`, with `p` kept exactly
    /// as given, so that the binary metrics read the very numbers the model produced.
    pub fn binary(positive: Vec<f64>) -> ClassProbabilities {
        ClassProbabilities { classes: 2, values: positive.iter().flat_map(|&p| [1.0 - p, p]).collect() }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.values.len() / self.classes
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.classes..(i + 1) * self.classes]
    }

    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.values.chunks_exact(self.classes)
    }

    /// Every example's probability of class `c`.
    pub fn column(&self, c: usize) -> Vec<f64> {
        self.rows().map(|r| r[c]).collect()
    }

    /// The positive class's probabilities (class 1 of two).
    pub fn positive(&self) -> Vec<f64> {
        self.column(1)
    }

    /// The most probable class of example `i` (the lowest index among ties).
    pub fn predicted(&self, i: usize) -> u32 {
        argmax(self.row(i))
    }

    /// The first example with a probability that is not a finite number.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.values.iter().position(|p| !p.is_finite()).map(|i| i / self.classes)
    }
}

/// The index of the largest value, the lowest among ties.
pub fn argmax(row: &[f64]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// What a method may use while fitting besides its training data.
pub struct FitContext<'a> {
    /// The run's seed: every random choice a method makes derives from it.
    pub seed: u64,
    pub progress: &'a Progress,
    /// Where backbones are looked for by name.
    pub models_dir: &'a Path,
    /// Backbones and embeddings shared by the runs of one invocation.
    pub models: &'a Arc<ModelCache>,
    /// The evaluation split, for the per-epoch history of trained methods (reported, never used to
    /// choose anything).
    pub monitor: Option<Examples<'a>>,
}

/// A fitted model.
pub trait Fitted: Send + Sync {
    /// Each text's probability of each class.
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<ClassProbabilities, MethodError>;
    /// Parameters fitted by gradient-based training (the classifier's weights).
    fn trainable_parameters(&self) -> usize;
    /// Every number the fitted model holds (for LSA: vocabulary IDF, SVD components and classifier).
    fn fitted_parameters(&self) -> usize;
    /// Method-specific facts worth keeping in the run record (vocabulary size, explained variance, ...).
    fn details(&self) -> serde_json::Value;
    /// Training history (loss every N steps, metrics per epoch) for methods that train in steps.
    fn history(&self) -> Option<serde_json::Value> {
        None
    }
    /// Saves the fitted model into `dir` (an empty folder); returns false for methods that keep none.
    fn save(&self, _dir: &Path) -> Result<bool, MethodError> {
        Ok(false)
    }
    /// Training throughput measured by the method itself (excluding tokenisation and evaluation).
    fn train_samples_per_s(&self) -> Option<f64> {
        None
    }
    /// Two classes: the decision threshold on the positive class's probability, 0.5 unless the method
    /// chose one on held-out data.
    fn threshold(&self) -> f64 {
        crate::metrics::THRESHOLD
    }
}

/// A method and its hyperparameters, as written in a spec's `method:` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MethodConfig {
    Lsa(lsa::LsaParams),
    Frozen(transformer::frozen::FrozenParams),
    Finetune(transformer::params::TrainParams),
    Lora(transformer::params::TrainParams),
}

/// The method kinds, for messages.
pub const METHOD_KINDS: &[&str] = &["lsa", "frozen", "finetune", "lora"];

impl MethodConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Lsa(_) => "lsa",
            Self::Frozen(_) => "frozen",
            Self::Finetune(_) => "finetune",
            Self::Lora(_) => "lora",
        }
    }

    /// Checks value ranges; on error returns the offending key and a message.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            Self::Lsa(p) => p.validate(),
            Self::Frozen(p) => p.validate(),
            Self::Finetune(p) => p.validate("finetune"),
            Self::Lora(p) => p.validate("lora"),
        }
    }

    /// Checks that what the method needs besides data (a backbone folder) is there, before any run starts.
    pub fn check_resources(&self, models_dir: &Path) -> Result<(), crate::error::ModelError> {
        match self {
            Self::Lsa(_) => Ok(()),
            Self::Frozen(p) => transformer_resources(&p.backbone, p.device, models_dir),
            Self::Finetune(p) | Self::Lora(p) => transformer_resources(&p.backbone, p.device, models_dir),
        }
    }

    pub fn fit(&self, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        match self {
            Self::Lsa(p) => Ok(Box::new(lsa::fit(p, train, ctx)?)),
            Self::Frozen(p) => Ok(Box::new(transformer::frozen::fit(p, train, ctx)?)),
            Self::Finetune(p) => Ok(Box::new(transformer::train::fit("finetune", p, train, ctx)?)),
            Self::Lora(p) => Ok(Box::new(transformer::train::fit("lora", p, train, ctx)?)),
        }
    }
}

/// A transformer method needs its device and its backbone folder.
fn transformer_resources(backbone: &str, device: transformer::params::DeviceChoice, models_dir: &Path) -> Result<(), crate::error::ModelError> {
    device.resolve()?;
    transformer::backbone::locate(backbone, models_dir).map(|_| ())
}

/// Deserialises `{kind: lsa, <params>}`. When `kind` is the first key (as in every spec we write), the
/// parameters are read straight from the YAML stream so that an unknown or mistyped parameter is reported
/// at its own line and column; otherwise the section is buffered and read without positions.
impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MethodVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum MethodKind {
    Lsa,
    Frozen,
    Finetune,
    Lora,
}

/// `kind: lora` always carries its LoRA settings in the resolved config (defaults when not written).
fn lora_defaults(mut p: transformer::params::TrainParams) -> MethodConfig {
    p.lora.get_or_insert_with(Default::default);
    MethodConfig::Lora(p)
}

struct MethodVisitor;

impl<'de> Visitor<'de> for MethodVisitor {
    type Value = MethodConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a method mapping with `kind` (one of: {})", METHOD_KINDS.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MethodConfig, A::Error> {
        let first: Option<String> = map.next_key()?;
        match first.as_deref() {
            None => Err(de::Error::custom(format!("the method needs `kind` (one of: {})", METHOD_KINDS.join(", ")))),
            Some("kind") => {
                let kind: MethodKind = map.next_value()?;
                let rest = de::value::MapAccessDeserializer::new(map);
                Ok(match kind {
                    MethodKind::Lsa => MethodConfig::Lsa(lsa::LsaParams::deserialize(rest)?),
                    MethodKind::Frozen => MethodConfig::Frozen(transformer::frozen::FrozenParams::deserialize(rest)?),
                    MethodKind::Finetune => MethodConfig::Finetune(transformer::params::TrainParams::deserialize(rest)?),
                    MethodKind::Lora => lora_defaults(transformer::params::TrainParams::deserialize(rest)?),
                })
            }
            Some(first) => {
                let mut buffered = serde_json::Map::new();
                buffered.insert(first.to_string(), map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    buffered.insert(k, v);
                }
                let kind =
                    buffered.remove("kind").ok_or_else(|| de::Error::custom(format!("the method needs `kind` (one of: {})", METHOD_KINDS.join(", "))))?;
                let kind: MethodKind = serde_json::from_value(kind).map_err(de::Error::custom)?;
                let rest = serde_json::Value::Object(buffered);
                Ok(match kind {
                    MethodKind::Lsa => MethodConfig::Lsa(serde_json::from_value(rest).map_err(de::Error::custom)?),
                    MethodKind::Frozen => MethodConfig::Frozen(serde_json::from_value(rest).map_err(de::Error::custom)?),
                    MethodKind::Finetune => MethodConfig::Finetune(serde_json::from_value(rest).map_err(de::Error::custom)?),
                    MethodKind::Lora => lora_defaults(serde_json::from_value(rest).map_err(de::Error::custom)?),
                })
            }
        }
    }
}
