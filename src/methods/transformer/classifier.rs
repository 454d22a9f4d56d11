//! A sequence classifier on the encoder, laid out as Hugging Face's BertForSequenceClassification
//! (so a saved model or adapter loads there): the [CLS] state through the pooler (dense + tanh), dropout,
//! and a k-way linear classifier (k = 2 for binary data); class probabilities are softmax(logits).
//! With `pooling: mean` the head reads the mean of the real tokens' states instead, and the pooler is
//! neither used nor trained (the saved weights keep the same names; only the pooling differs).

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::backbone::Backbone;
use super::encoder::{pool, Linear, LoraAdapter, Mode, Pooling, Weights};
use super::params::{LoraSettings, LoraTarget};
use crate::methods::ClassProbabilities;

/// The number of classes a saved model folder's config names (`id2label`), 2 when it names none.
fn saved_classes(dir: &std::path::Path) -> std::result::Result<usize, crate::error::ModelError> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| crate::error::ModelError::Io { path: path.clone(), source })?;
    let config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| crate::error::ModelError::Invalid { path: path.clone(), message: e.to_string() })?;
    Ok(config.get("id2label").and_then(|m| m.as_object()).map_or(2, |m| m.len().max(2)))
}

pub struct Classifier {
    pub backbone: Backbone,
    pub pooler: Linear,
    pub head: Linear,
    pub pooling: Pooling,
    /// Every trainable tensor by its Hugging Face name (the head as `classifier.weight`, …).
    pub trainable: Vec<(String, Var)>,
}

fn var_from(values: Vec<f32>, shape: (usize, usize), device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

impl Classifier {
    /// Builds the classifier on a loaded backbone. The checkpoint's pooler is used when it has one
    /// (trainable exactly when the backbone is); the head is new: N(0, 0.02) weights and zero bias, as
    /// Hugging Face initialises it.
    pub fn new(backbone: Backbone, mut weights: Weights, pooling: Pooling, classes: usize, seed: u64, device: &Device) -> Result<Classifier> {
        let h = backbone.encoder.config.hidden_size;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(7);
        let normal = Normal::new(0.0f32, 0.02).expect("valid normal");
        let mut fresh = |rows: usize, name: &str, trainable: &mut Vec<(String, Var)>| -> Result<Linear> {
            let w = var_from((0..rows * h).map(|_| normal.sample(&mut rng)).collect(), (rows, h), device)?;
            let b = Var::from_tensor(&Tensor::zeros(rows, DType::F32, device)?)?;
            let lin = Linear { weight: w.as_tensor().clone(), bias: b.as_tensor().clone(), lora: None };
            trainable.push((format!("{name}.weight"), w));
            trainable.push((format!("{name}.bias"), b));
            Ok(lin)
        };
        let mut new_vars = Vec::new();
        let pooler =
            if weights.has("pooler.dense.weight") { Linear::load(&mut weights, "pooler.dense", h, h)? } else { fresh(h, "pooler.dense", &mut new_vars)? };
        let head = fresh(classes, "classifier", &mut new_vars)?;
        let mut trainable = std::mem::take(&mut weights.vars);
        trainable.extend(new_vars);
        if pooling == Pooling::Mean {
            // Mean pooling bypasses the pooler: it would get no gradient, so it is not trained.
            trainable.retain(|(name, _)| !name.starts_with("pooler."));
        }
        Ok(Classifier { backbone, pooler, head, pooling, trainable })
    }

    /// Rebuilds a classifier saved by `artifact::save_finetuned` (a BertForSequenceClassification folder).
    pub fn load_finetuned(
        dir: &std::path::Path,
        max_length: usize,
        pooling: Pooling,
        device: &Device,
    ) -> std::result::Result<Classifier, crate::error::ModelError> {
        let (backbone, mut weights) = Backbone::load(dir, max_length, false, device)?;
        let h = backbone.encoder.config.hidden_size;
        let pooler = Linear::load(&mut weights, "pooler.dense", h, h)?;
        let head = Linear::load(&mut weights, "classifier", h, saved_classes(dir)?)?;
        Ok(Classifier { backbone, pooler, head, pooling, trainable: Vec::new() })
    }

    /// Overwrites trainable tensors (adapters, classifier) with saved values, matched by name.
    pub fn set_trainable(&self, saved: &HashMap<String, Tensor>) -> std::result::Result<(), crate::error::ModelError> {
        for (name, var) in &self.trainable {
            let t = saved.get(name).ok_or_else(|| candle_core::Error::Msg(format!("the saved model has no tensor {name}")))?;
            var.set(&t.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// Wraps the targeted linear layers with LoRA adapters (A Kaiming-uniform with bound 1/sqrt(in), as
    /// peft's kaiming_uniform_(a=√5); B zero). Adapters are named as peft saves them.
    pub fn add_lora(&mut self, s: &LoraSettings, seed: u64, device: &Device) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(11);
        let scale = s.alpha / s.rank as f64;
        let attach = |lin: &mut Linear, name: String, rng: &mut ChaCha8Rng| -> Result<(String, Var, String, Var)> {
            let (out, inp) = lin.weight.dims2()?;
            let bound = 1.0 / (inp as f32).sqrt();
            let a = var_from((0..s.rank * inp).map(|_| rng.gen_range(-bound..bound)).collect(), (s.rank, inp), device)?;
            let b = Var::from_tensor(&Tensor::zeros((out, s.rank), DType::F32, device)?)?;
            lin.lora = Some(LoraAdapter { a: a.clone(), b: b.clone(), scale, dropout: s.dropout });
            Ok((format!("{name}.lora_A.weight"), a, format!("{name}.lora_B.weight"), b))
        };
        let mut added = Vec::new();
        for (n, layer) in self.backbone.encoder.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{n}");
            for t in &s.targets {
                let (lin, name) = match t {
                    LoraTarget::Query => (&mut layer.query, format!("{p}.attention.self.query")),
                    LoraTarget::Key => (&mut layer.key, format!("{p}.attention.self.key")),
                    LoraTarget::Value => (&mut layer.value, format!("{p}.attention.self.value")),
                    LoraTarget::AttentionOutput => (&mut layer.attention_output, format!("{p}.attention.output.dense")),
                    LoraTarget::Intermediate => (&mut layer.intermediate, format!("{p}.intermediate.dense")),
                    LoraTarget::Output => (&mut layer.output, format!("{p}.output.dense")),
                    LoraTarget::Pooler => continue,
                };
                added.push(attach(lin, name, &mut rng)?);
            }
        }
        if s.targets.contains(&LoraTarget::Pooler) {
            added.push(attach(&mut self.pooler, "pooler.dense".into(), &mut rng)?);
        }
        for (an, a, bn, b) in added {
            self.trainable.push((an, a));
            self.trainable.push((bn, b));
        }
        Ok(())
    }

    /// The number of classes the head scores.
    pub fn classes(&self) -> usize {
        self.head.weight.dims().first().copied().unwrap_or(2)
    }

    /// Logits [batch, classes].
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let hidden = self.backbone.encoder.forward(ids, mask, mode)?;
        let pooled = match self.pooling {
            Pooling::Cls => self.pooler.forward(&pool(&hidden, mask, Pooling::Cls)?, mode)?.tanh()?,
            Pooling::Mean => pool(&hidden, mask, Pooling::Mean)?,
        };
        let pooled = mode.dropout(&pooled, self.backbone.encoder.config.hidden_dropout_prob)?;
        self.head.forward(&pooled, mode)
    }

    /// Class probabilities for tokenized texts, in length-sorted batches. For two classes the positive
    /// class's softmax output is kept as computed and the negative's is 1 − p.
    pub fn predict_ids(
        &self,
        ids: &[Vec<u32>],
        batch_size: usize,
        device: &Device,
        on_batch: &dyn Fn(usize),
    ) -> std::result::Result<ClassProbabilities, crate::error::ModelError> {
        let k = self.classes();
        let rows = super::embed::by_length(&self.backbone, ids, batch_size, device, on_batch, |tok, mask| {
            let logits = self.forward(tok, mask, &mut Mode::eval())?;
            let probs: Vec<Vec<f32>> = candle_nn::ops::softmax(&logits, D::Minus1)?.to_device(&Device::Cpu)?.to_vec2()?;
            Ok(probs.into_iter().map(|p| p.into_iter().map(f64::from).collect::<Vec<f64>>()).collect())
        })?;
        Ok(if k == 2 { ClassProbabilities::binary(rows.iter().map(|r| r[1]).collect()) } else { ClassProbabilities::new(k, rows.concat()) })
    }

    /// Every number the classifier holds: encoder, pooler, classifier and LoRA adapters.
    pub fn parameter_count(&self) -> usize {
        let adapters: usize = self.trainable.iter().filter(|(n, _)| n.contains(".lora_")).map(|(_, v)| v.elem_count()).sum();
        let linear = |l: &Linear| l.weight.elem_count() + l.bias.elem_count();
        self.backbone.encoder.parameter_count() + linear(&self.pooler) + linear(&self.head) + adapters
    }

    pub fn trainable_parameters(&self) -> usize {
        self.trainable.iter().map(|(_, v)| v.elem_count()).sum()
    }
}
