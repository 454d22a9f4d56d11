//! A model family's sequence classifier with what training adds to it: the trainable tensors by name,
//! LoRA adapters on the layers a spec targets, and class probabilities for tokenized texts.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::params::{LoraSettings, LoraTarget};
use super::prompt::{PromptSpec, Prompting};
use crate::error::ModelError;
use crate::methods::ClassProbabilities;
use crate::models::{var_from, Checkpoint, Head, SequenceClassifier, DEFAULT_FAMILY};
use crate::nn::{LoraAdapter, Mode, Pooling};

pub struct Classifier {
    pub checkpoint: Checkpoint,
    pub model: Box<dyn SequenceClassifier>,
    /// Every trainable tensor by name, in the optimiser's order: the checkpoint's names as the family
    /// loads them (`Weights`), the head's, then the adapters' (`….lora_A.weight`).
    pub trainable: Vec<(String, Var)>,
    /// `head: prompt`: how texts become prompts, and the label words the head reads.
    pub prompt: Option<Prompting>,
}

/// The number of classes a saved model folder's config names (`id2label`), 2 when it names none.
fn saved_classes(dir: &Path) -> std::result::Result<usize, ModelError> {
    let path = dir.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| ModelError::Invalid { path: path.clone(), message: e.to_string() })?;
    Ok(config.get("id2label").and_then(|m| m.as_object()).map_or(2, |m| m.len().max(2)))
}

impl Classifier {
    /// A classifier with a fresh head for `classes` classes on a model folder; `trainable` makes every
    /// weight of the checkpoint trainable (full fine-tuning), else only the head is, until adapters are
    /// added.
    pub fn new(
        dir: &Path,
        max_length: usize,
        trainable: bool,
        pooling: Pooling,
        classes: usize,
        seed: u64,
        device: &Device,
    ) -> std::result::Result<Classifier, ModelError> {
        let loaded = Checkpoint::load_classifier(dir, max_length, trainable, &Head::Fresh { classes, seed, pooling }, device)?;
        Ok(Classifier { checkpoint: loaded.checkpoint, model: loaded.model, trainable: loaded.trainable, prompt: None })
    }

    /// A decoder classifying by the next-token logits of one label word per class after a prompt
    /// (`head: prompt`); `trainable` as for `new`.
    pub fn prompted(dir: &Path, max_length: usize, trainable: bool, spec: PromptSpec<'_>, device: &Device) -> std::result::Result<Classifier, ModelError> {
        let mut prompting = Prompting::new(dir, spec, max_length)?;
        let loaded = Checkpoint::load_classifier(dir, max_length, trainable, &Head::Prompt { label_ids: prompting.label_ids.clone() }, device)?;
        prompting.max_length = max_length.min(loaded.model.encoder().max_positions());
        Ok(Classifier { checkpoint: loaded.checkpoint, model: loaded.model, trainable: loaded.trainable, prompt: Some(prompting) })
    }

    /// Rebuilds a classifier saved by `artifact::save_finetuned` (the family's Hugging Face folder).
    pub fn load_finetuned(
        dir: &Path,
        max_length: usize,
        pooling: Pooling,
        prompt: Option<PromptSpec<'_>>,
        device: &Device,
    ) -> std::result::Result<Classifier, ModelError> {
        if let Some(spec) = prompt {
            return Classifier::prompted(dir, max_length, false, spec, device);
        }
        let head = Head::Saved { classes: saved_classes(dir)?, pooling };
        let loaded = Checkpoint::load_classifier(dir, max_length, false, &head, device)?;
        Ok(Classifier { checkpoint: loaded.checkpoint, model: loaded.model, trainable: Vec::new(), prompt: None })
    }

    /// Token ids of each text as the classifier reads it: in its prompt for `head: prompt`, else as the
    /// checkpoint tokenizes it.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> std::result::Result<Vec<Vec<u32>>, ModelError> {
        match &self.prompt {
            Some(p) => p.tokenize(texts),
            None => self.checkpoint.tokenize(texts),
        }
    }

    /// Overwrites trainable tensors (adapters, head) with saved values, matched by their Hugging Face
    /// names.
    pub fn set_trainable(&self, saved: &HashMap<String, Tensor>) -> std::result::Result<(), ModelError> {
        for (name, var) in &self.trainable {
            let hf = self.model.hf_name(name);
            let t = saved.get(&hf).ok_or_else(|| candle_core::Error::Msg(format!("the saved model has no tensor {hf}")))?;
            var.set(&t.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// Wraps the targeted linear layers with LoRA adapters (A Kaiming-uniform with bound 1/sqrt(in), as
    /// peft's kaiming_uniform_(a=√5); B zero), block by block, in each block in the order the spec names
    /// its targets, the head's last. Adapters are named as peft saves them.
    pub fn add_lora(&mut self, s: &LoraSettings, seed: u64, device: &Device) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(11);
        let scale = s.alpha / s.rank as f64;
        // A spec that names no targets has the default family's; on another family's backbone they
        // stand for that family's defaults (a spec cannot know the family before the model is found).
        let family = self.checkpoint.family;
        let targets = if family.name != DEFAULT_FAMILY.name && s.targets == LoraTarget::defaults(DEFAULT_FAMILY) {
            tracing::info!("lora.targets not given: the {} defaults ({})", family.name, family.default_lora_targets.join(", "));
            LoraTarget::defaults(family)
        } else {
            s.targets.clone()
        };
        let position = |target: &str| targets.iter().position(|t| t.as_str() == target);
        let mut sites: Vec<_> = self.model.lora_sites().into_iter().filter(|site| position(site.target).is_some()).collect();
        sites.sort_by_key(|site| (site.block.is_none(), site.block, position(site.target)));
        let mut added = Vec::new();
        for site in sites {
            let (out, inp) = site.linear.weight.dims2()?;
            let bound = 1.0 / (inp as f32).sqrt();
            let a = var_from((0..s.rank * inp).map(|_| rng.gen_range(-bound..bound)).collect(), (s.rank, inp), device)?;
            let b = Var::from_tensor(&Tensor::zeros((out, s.rank), DType::F32, device)?)?;
            site.linear.lora = Some(LoraAdapter { a: a.clone(), b: b.clone(), scale, dropout: s.dropout });
            added.push((format!("{}.lora_A.weight", site.module), a));
            added.push((format!("{}.lora_B.weight", site.module), b));
        }
        if added.is_empty() {
            candle_core::bail!(
                "none of lora.targets ({}) is a layer of a {} model",
                targets.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
                self.checkpoint.family.name
            );
        }
        self.trainable.extend(added);
        Ok(())
    }

    /// Logits [batch, classes].
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.model.forward(ids, mask, mode)
    }

    /// Class probabilities for tokenized texts, in length-sorted batches. For two classes the positive
    /// class's softmax output is kept as computed and the negative's is 1 − p.
    pub fn predict_ids(
        &self,
        ids: &[Vec<u32>],
        batch_size: usize,
        device: &Device,
        on_batch: &dyn Fn(usize),
    ) -> std::result::Result<ClassProbabilities, ModelError> {
        let k = self.model.classes();
        let rows = crate::models::embed::by_length(&self.checkpoint, ids, batch_size, device, on_batch, |tok, mask| {
            let logits = self.forward(tok, mask, &mut Mode::inference())?;
            let probs: Vec<Vec<f32>> = candle_nn::ops::softmax(&logits, D::Minus1)?.to_device(&Device::Cpu)?.to_vec2()?;
            Ok(probs.into_iter().map(|p| p.into_iter().map(f64::from).collect::<Vec<f64>>()).collect())
        })?;
        Ok(if k == 2 { ClassProbabilities::binary(rows.iter().map(|r| r[1]).collect()) } else { ClassProbabilities::new(k, rows.concat()) })
    }

    /// Every number the classifier holds: encoder, head and LoRA adapters.
    pub fn parameter_count(&self) -> usize {
        let adapters: usize = self.trainable.iter().filter(|(n, _)| n.contains(".lora_")).map(|(_, v)| v.elem_count()).sum();
        self.model.encoder().parameter_count() + self.model.head_parameters() + adapters
    }

    pub fn trainable_parameters(&self) -> usize {
        self.trainable.iter().map(|(_, v)| v.elem_count()).sum()
    }
}
