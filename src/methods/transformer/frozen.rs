//! `frozen`: the encoder as a fixed feature extractor (CLS or mean pooling), embeddings computed once per
//! dataset and backbone, and a logistic-regression head trained on them to convergence. (The seeds' frozen
//! recipe, a linear head trained 2 epochs at lr 5e-5, never left the majority class: it is the head's
//! training that failed, not the features.)

use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::backbone::Backbone;
use super::embed::embed_ids;
use super::encoder::Pooling;
use crate::error::MethodError;
use crate::methods::logistic::{ClassWeight, Logistic, LogisticSettings};
use crate::methods::{ClassProbabilities, Examples, FitContext, Fitted};
use crate::progress::Progress;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrozenParams {
    /// A model folder, or its name under the models directory.
    pub backbone: String,
    pub pooling: Pooling,
    /// Texts are truncated to this many tokens.
    pub max_length: usize,
    /// Texts per forward pass when computing embeddings.
    pub batch_size: usize,
    /// Inverse L2 regularisation of the logistic-regression head.
    #[serde(rename = "C")]
    pub c: f64,
    pub class_weight: ClassWeight,
    pub max_iterations: u64,
    pub tolerance: f64,
    pub device: super::params::DeviceChoice,
}

impl Default for FrozenParams {
    fn default() -> Self {
        FrozenParams {
            backbone: "all-MiniLM-L6-v2".into(),
            pooling: Pooling::Mean,
            max_length: 128,
            batch_size: 32,
            c: 1.0,
            class_weight: ClassWeight::None,
            max_iterations: 1000,
            tolerance: 1e-4,
            device: super::params::DeviceChoice::Cpu,
        }
    }
}

impl FrozenParams {
    /// The settings of the logistic-regression classifier these parameters name.
    pub fn logistic(&self) -> LogisticSettings {
        LogisticSettings { c: self.c, class_weight: self.class_weight, max_iterations: self.max_iterations, tolerance: self.tolerance }
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        super::params::validate_backbone(&self.backbone, self.max_length)?;
        if self.batch_size == 0 {
            return Err(("batch_size", "batch_size must be at least 1".into()));
        }
        self.logistic().validate()?;
        Ok(())
    }
}

pub struct FittedFrozen {
    params: FrozenParams,
    backbone: Arc<Backbone>,
    head: Logistic,
    cache: Arc<super::cache::ModelCache>,
    embed_rate: Option<f64>,
    train_cached: bool,
}

/// Embeddings of texts through the cache, with a progress bar when they are computed.
fn embeddings(
    p: &FrozenParams,
    backbone: &Backbone,
    cache: &super::cache::ModelCache,
    texts: &[String],
    progress: &Progress,
) -> Result<(Array2<f64>, bool, Option<f64>), MethodError> {
    let device = p.device.resolve()?;
    // GPU kernels round differently from the CPU's: embeddings are cached per device kind.
    let settings = format!("{:?}/{}/{:?}", p.pooling, p.max_length, device.location());
    let mut rate = None;
    let (rows, cached) = cache.embeddings(backbone, &settings, texts, || {
        let started = std::time::Instant::now();
        let ids = backbone.tokenize(texts)?;
        let bar = progress.bar(texts.len() as u64, "embedding", "texts");
        let rows = embed_ids(backbone, &ids, p.pooling, p.batch_size, &device, &|n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        rate = Some(texts.len() as f64 / started.elapsed().as_secs_f64());
        Ok(rows)
    })?;
    let dim = rows.first().map_or(0, Vec::len);
    let z = Array2::from_shape_fn((rows.len(), dim), |(i, j)| rows[i][j] as f64);
    Ok((z, cached, rate))
}

pub fn fit(p: &FrozenParams, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<FittedFrozen, MethodError> {
    let backbone = ctx.models.backbone(&p.backbone, ctx.models_dir, p.max_length, &p.device.resolve()?)?;
    let (z, train_cached, embed_rate) = embeddings(p, &backbone, ctx.models, train.texts, ctx.progress)?;
    let spinner = ctx.progress.spinner("logistic regression head");
    let head = Logistic::fit(&z, train.labels, train.classes.len(), &p.logistic())?;
    spinner.finish_and_clear();
    Ok(FittedFrozen { params: p.clone(), backbone, head, cache: ctx.models.clone(), embed_rate, train_cached })
}

impl Fitted for FittedFrozen {
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<ClassProbabilities, MethodError> {
        let (z, _, _) = embeddings(&self.params, &self.backbone, &self.cache, texts, progress)?;
        Ok(self.head.predict_proba(&z))
    }

    fn trainable_parameters(&self) -> usize {
        self.head.parameters()
    }

    fn save(&self, dir: &std::path::Path) -> Result<bool, MethodError> {
        let (w, b) = self.head.coefficients();
        super::artifact::save_head(&w, &b, dir)?;
        Ok(true)
    }

    fn fitted_parameters(&self) -> usize {
        self.head.parameters() + self.backbone.encoder.parameter_count()
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "backbone": self.backbone.dir.display().to_string(),
            "backbone_sha256": self.backbone.fingerprint,
            "embedding_dim": self.backbone.encoder.config.hidden_size,
            "train_embeddings_from_cache": self.train_cached,
            "embedding_texts_per_s": self.embed_rate,
        })
    }
}
