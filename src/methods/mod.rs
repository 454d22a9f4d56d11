//! Methods: validated hyperparameters apart from fitted models, as in linfa. A method's parameters are
//! a plain value deserialised from the spec, implementing [`Method`]; `fit` returns a separate
//! [`Fitted`] model that predicts. A new method is one module and one line in [`registry`].

pub mod frozen;
pub mod logistic;
pub mod lsa;
pub mod multinomial;
pub mod registry;
pub mod tokens;
pub mod tune;
pub mod word2vec;

use std::path::Path;
use std::sync::Arc;

pub use registry::{MethodConfig, METHOD_KINDS};

use crate::error::MethodError;
use crate::models::cache::ModelCache;
use crate::progress::Progress;

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

/// What the registry needs of each method's parameters ([`registry`]): checking them, finding what
/// they need besides data, fitting, and loading a model a run saved. `kind` is the spec's name for the
/// method (two kinds may share one parameter type: `finetune` and `lora`).
pub trait Method {
    /// Checks value ranges; on error returns the offending key and a message.
    fn validate(&self, kind: &str) -> Result<(), (&'static str, String)>;
    /// Checks that what the method needs besides data (a backbone folder, a device) is there, before any
    /// run starts.
    fn check_resources(&self, _models_dir: &Path) -> Result<(), crate::error::ModelError> {
        Ok(())
    }
    fn fit(&self, kind: &str, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError>;
    /// The model a run saved in `artifact` (for `bench predict`), or `None` for a method that keeps none.
    fn load(&self, _kind: &str, _saved: &Saved<'_>) -> anyhow::Result<Option<Box<dyn Predictor>>> {
        Ok(None)
    }
    /// The parameters as the resolved config keeps them (defaults a kind implies filled in).
    fn resolved(self, _kind: &str) -> Self
    where
        Self: Sized,
    {
        self
    }
}

/// A saved model, as `bench predict` finds it.
pub struct Saved<'a> {
    /// The run's folder in the store.
    pub artifact: &'a Path,
    pub classes: &'a crate::data::ClassSet,
    pub models_dir: &'a Path,
    /// The SHA-256 of the backbone the run used, when it kept one.
    pub backbone_sha256: Option<&'a str>,
}

/// A loaded model that classifies new texts.
pub trait Predictor {
    fn predict_proba(&self, texts: &[String]) -> anyhow::Result<ClassProbabilities>;
}
