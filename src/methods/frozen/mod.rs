//! `frozen`: the encoder as a fixed feature extractor (CLS or mean pooling), embeddings computed once per
//! dataset and backbone, and a logistic-regression head trained on them to convergence. (The seeds' frozen
//! recipe, a linear head trained 2 epochs at lr 5e-5, never left the majority class: it is the head's
//! training that failed, not the features.)

use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::error::MethodError;
use crate::methods::logistic::{ClassWeight, Logistic, LogisticSettings, SavedHead};
use crate::methods::{ClassProbabilities, Examples, FitContext, Fitted, Method, Predictor, Saved};
use crate::models::cache::ModelCache;
use crate::models::embed::{embed_ids, embed_texts};
use crate::models::{locate, Backbone, DeviceChoice};
use crate::nn::Pooling;
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
    pub device: DeviceChoice,
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
            device: DeviceChoice::Cpu,
        }
    }
}

impl FrozenParams {
    /// The settings of the logistic-regression classifier these parameters name.
    pub fn logistic(&self) -> LogisticSettings {
        LogisticSettings { c: self.c, class_weight: self.class_weight, max_iterations: self.max_iterations, tolerance: self.tolerance }
    }

    fn check_ranges(&self) -> Result<(), (&'static str, String)> {
        crate::models::validate_backbone(&self.backbone, self.max_length)?;
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
    cache: Arc<ModelCache>,
    embed_rate: Option<f64>,
    train_cached: bool,
}

/// Embeddings of texts through the cache, with a progress bar when they are computed.
fn embeddings(
    p: &FrozenParams,
    backbone: &Backbone,
    cache: &ModelCache,
    texts: &[String],
    progress: &Progress,
) -> Result<(Array2<f64>, bool, Option<f64>), MethodError> {
    let device = p.device.resolve()?;
    // GPU kernels round differently from the CPU's: embeddings are cached per device kind.
    let settings = format!("{:?}/{}/{:?}", p.pooling, p.max_length, device.location());
    let mut rate = None;
    let (rows, cached) = cache.embeddings(backbone, &settings, texts, || {
        let started = std::time::Instant::now();
        let ids = backbone.checkpoint.tokenize(texts)?;
        let bar = progress.bar(texts.len() as u64, "embedding", "texts");
        let rows = embed_ids(backbone, &ids, p.pooling, p.batch_size, &device, &|n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        rate = Some(texts.len() as f64 / started.elapsed().as_secs_f64());
        Ok(rows)
    })?;
    Ok((to_features(&rows), cached, rate))
}

impl Method for FrozenParams {
    fn validate(&self, _kind: &str) -> Result<(), (&'static str, String)> {
        self.check_ranges()
    }

    fn check_resources(&self, models_dir: &std::path::Path) -> Result<(), crate::error::ModelError> {
        crate::models::check_resources(&self.backbone, self.device, models_dir)
    }

    fn fit(&self, _kind: &str, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        Ok(Box::new(fit(self, train, ctx)?))
    }

    fn load(&self, _kind: &str, saved: &Saved<'_>) -> anyhow::Result<Option<Box<dyn Predictor>>> {
        Ok(Some(Box::new(SavedFrozen::load(self, saved)?)))
    }
}

/// A frozen run's saved head on its backbone.
struct SavedFrozen {
    params: FrozenParams,
    backbone: Backbone,
    head: SavedHead,
}

impl SavedFrozen {
    fn load(p: &FrozenParams, saved: &Saved<'_>) -> anyhow::Result<SavedFrozen> {
        let dir = locate(&p.backbone, saved.models_dir)?;
        let backbone = Backbone::load(&dir, p.max_length, false, &p.device.resolve()?)?;
        if let Some(sha) = saved.backbone_sha256 {
            if sha != backbone.checkpoint.fingerprint {
                anyhow::bail!("the backbone at {} is not the one the run used (sha256 {} ≠ {sha})", dir.display(), backbone.checkpoint.fingerprint);
            }
        }
        let head = SavedHead::load(saved.artifact, backbone.encoder.hidden_size())?;
        Ok(SavedFrozen { params: p.clone(), backbone, head })
    }
}

impl Predictor for SavedFrozen {
    fn predict_proba(&self, texts: &[String]) -> anyhow::Result<ClassProbabilities> {
        let p = &self.params;
        let (_, emb) = embed_texts(&self.backbone, texts, p.pooling, p.batch_size, &p.device.resolve()?)?;
        Ok(self.head.predict_proba(&to_features(&emb)))
    }
}

/// Embeddings as the head's f64 features.
fn to_features(rows: &[Vec<f32>]) -> Array2<f64> {
    let dim = rows.first().map_or(0, Vec::len);
    Array2::from_shape_fn((rows.len(), dim), |(i, j)| rows[i][j] as f64)
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
        self.head.save(dir)?;
        Ok(true)
    }

    fn fitted_parameters(&self) -> usize {
        self.head.parameters() + self.backbone.encoder.parameter_count()
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "backbone": self.backbone.checkpoint.dir.display().to_string(),
            "backbone_sha256": self.backbone.checkpoint.fingerprint,
            "embedding_dim": self.backbone.encoder.hidden_size(),
            "train_embeddings_from_cache": self.train_cached,
            "embedding_texts_per_s": self.embed_rate,
        })
    }
}
