//! Model families and their checkpoints. A family is one file here (its config, layers, weight names,
//! LoRA sites and classification head, laid out as its Hugging Face classes so that checkpoints load and
//! saved models load back there) and one line in [`FAMILIES`]. The methods see a family only through
//! [`Encoder`] and [`SequenceClassifier`]; the folder's files, tokenizer and fingerprint are
//! `checkpoint`'s.

pub mod bert;
pub mod cache;
pub mod checkpoint;
pub mod embed;
pub mod gguf;
pub mod hub;
pub mod llama;

use std::path::Path;

use candle_core::{Device, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

pub use checkpoint::{locate, Backbone, Checkpoint};

use crate::error::ModelError;
use crate::nn::{Linear, Mode, Pooling, Weights};

/// Every family textbench loads; a checkpoint's config.json `model_type` chooses among them.
pub const FAMILIES: &[&Family] = &[&bert::FAMILY, &llama::FAMILY];

/// The family whose LoRA target names a spec's default `lora.targets` are.
pub const DEFAULT_FAMILY: &Family = &bert::FAMILY;

/// What the harness knows of a model family.
pub struct Family {
    /// Its name in messages.
    pub name: &'static str,
    /// The config.json `model_type` values it loads.
    pub model_types: &'static [&'static str],
    /// The layers LoRA can wrap, by the names a spec gives them (`lora.targets`).
    pub lora_targets: &'static [&'static str],
    /// The targets when a spec names none.
    pub default_lora_targets: &'static [&'static str],
    /// Targets inside the classification head that `pooling: mean` bypasses (so an adapter there would
    /// never train).
    pub head_targets: &'static [&'static str],
    /// A checkpoint's tensor name as the loaders ask for it (other classes' prefixes, older names).
    pub rename: fn(&str) -> String,
    /// The encoder alone (for embeddings), from config.json and the checkpoint's tensors.
    pub encoder: LoadEncoder,
    /// The family's sequence classifier: the encoder and its head.
    pub classifier: LoadClassifier,
    /// Whether AdamW's weight decay applies to a trainable tensor (Hugging Face's Trainer exempts
    /// biases and norms).
    pub decays: fn(&str) -> bool,
}

pub type LoadEncoder = fn(config: &ModelConfig, weights: &mut Weights) -> std::result::Result<Box<dyn Encoder>, ModelError>;
pub type LoadClassifier = fn(config: &ModelConfig, weights: &mut Weights, head: &Head) -> std::result::Result<Box<dyn SequenceClassifier>, ModelError>;

/// A model's config.json text, and where it came from (the file, or a GGUF's metadata) for messages.
pub struct ModelConfig {
    pub origin: std::path::PathBuf,
    pub text: String,
}

impl ModelConfig {
    pub fn read(path: &Path) -> std::result::Result<ModelConfig, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Ok(ModelConfig { origin: path.to_path_buf(), text })
    }

    /// The config as `T`; a malformed one is an error with its line and column.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> std::result::Result<T, ModelError> {
        serde_json::from_str(&self.text).map_err(|e| self.invalid(format!("line {}, column {}: {e}", e.line(), e.column())))
    }

    pub fn invalid(&self, message: String) -> ModelError {
        ModelError::Invalid { path: self.origin.clone(), message }
    }
}

/// The family of a config.
pub fn family_of(config: &ModelConfig) -> std::result::Result<&'static Family, ModelError> {
    #[derive(Deserialize)]
    struct ModelType {
        model_type: Option<String>,
    }
    let found: ModelType = config.parse()?;
    let known = || FAMILIES.iter().flat_map(|f| f.model_types).copied().collect::<Vec<_>>().join(", ");
    let Some(model_type) = found.model_type else {
        return Err(config.invalid(format!("no model_type: textbench loads {}", known())));
    };
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.model_types.contains(&model_type.as_str()))
        .ok_or_else(|| config.invalid(format!("model_type {model_type:?} is not a family textbench loads ({})", known())))
}

/// Whether any family has a LoRA target of this name.
pub fn is_lora_target(name: &str) -> bool {
    FAMILIES.iter().any(|f| f.lora_targets.contains(&name))
}

/// Every family's LoRA target names, for messages.
pub fn lora_target_names() -> String {
    let mut names: Vec<&str> = FAMILIES.iter().flat_map(|f| f.lora_targets).copied().collect();
    names.dedup();
    names.join(", ")
}

/// Whether `pooling: mean` bypasses this target in some family's head.
pub fn bypassed_by_mean_pooling(name: &str) -> bool {
    FAMILIES.iter().any(|f| f.head_targets.contains(&name))
}

/// The body of a model: token ids in, one hidden state per token out.
pub trait Encoder: Send + Sync {
    /// Last hidden states [batch, seq, hidden] of right-padded token ids and their 0/1 mask, both
    /// [batch, seq]. The padding's states are unspecified (zeros where the batch was packed).
    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;
    fn hidden_size(&self) -> usize;
    /// The longest sequence its positions cover.
    fn max_positions(&self) -> usize;
    /// The id padding positions get (their states are masked or packed away).
    fn pad_token_id(&self) -> u32;
    /// Number of weights (elements of every tensor loaded).
    fn parameter_count(&self) -> usize;
    /// Every weight by its checkpoint name (LoRA adapters not included).
    fn named_tensors(&self) -> Vec<(String, Tensor)>;
    /// Whether a right-padded batch is computed without its padding on the CPU (on by default); off,
    /// the padding is computed and masked, as PyTorch does (`bench perf --padded`).
    fn set_packing(&mut self, on: bool);
    /// Switches every dropout off (tests comparing training paths exactly).
    fn disable_dropout(&mut self);
    /// Matrix-product FLOPs of a forward pass over `batch` sequences of `seq` tokens, adapters included.
    fn forward_flops(&self, batch: usize, seq: usize) -> crate::perf::flops::ForwardFlops;
}

/// A linear layer LoRA can wrap.
pub struct LoraSite<'a> {
    /// The spec's name for it (`lora.targets`).
    pub target: &'static str,
    /// Its name as the family's loader names weights (`Weights`): the adapter's tensors are
    /// `{module}.lora_A.weight` and `{module}.lora_B.weight`, which `hf_name` turns into peft's names.
    pub module: String,
    /// The block it belongs to (adapters are created block by block), `None` for the head.
    pub block: Option<usize>,
    pub linear: &'a mut Linear,
}

/// How a classifier's head starts.
pub enum Head {
    /// New weights for `classes` classes, drawn under `seed` as Hugging Face initialises them.
    Fresh { classes: usize, seed: u64, pooling: Pooling },
    /// The head saved with the checkpoint (a fine-tuned model's folder).
    Saved { classes: usize, pooling: Pooling },
    /// A decoder's own output layer read at these tokens, one per class, after the last token
    /// (`head: prompt`): nothing new to train.
    Prompt { label_ids: Vec<u32> },
}

impl Head {
    pub fn pooling(&self) -> Pooling {
        match self {
            Head::Fresh { pooling, .. } | Head::Saved { pooling, .. } => *pooling,
            Head::Prompt { .. } => Pooling::Last,
        }
    }
}

/// A family's sequence classifier, laid out as its Hugging Face `…ForSequenceClassification`.
pub trait SequenceClassifier: Send + Sync {
    fn encoder(&self) -> &dyn Encoder;
    fn encoder_mut(&mut self) -> &mut dyn Encoder;
    /// Logits [batch, classes].
    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor>;
    fn classes(&self) -> usize;
    /// Trainable tensors that the pooling leaves without a gradient (dropped from training).
    fn unused(&self, name: &str) -> bool;
    /// Every layer LoRA can wrap, blocks in order.
    fn lora_sites(&mut self) -> Vec<LoraSite<'_>>;
    /// Every weight, adapters excluded, under its name in the Hugging Face class.
    fn named_tensors(&self) -> Vec<(String, Tensor)>;
    /// The Hugging Face name of a tensor named as `Weights` handed it out.
    fn hf_name(&self, name: &str) -> String;
    /// The backbone's config.json made the config of this classifier (architecture and the keys a
    /// reader needs); the caller adds the classes.
    fn export_config(&self, config: &mut serde_json::Value);
    /// Matrix-product FLOPs of the head over a batch.
    fn head_flops(&self, batch: usize) -> f64;
    /// Elements of the head's weights (not the encoder's).
    fn head_parameters(&self) -> usize;
}

/// Where a transformer method runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// Reproducible to the bit under a seed; the default.
    #[default]
    Cpu,
    /// The first CUDA GPU; needs textbench built with `--features cuda`.
    Cuda,
    /// CUDA when built for it and a GPU is present, else the CPU.
    Auto,
}

impl DeviceChoice {
    pub fn resolve(self) -> std::result::Result<Device, ModelError> {
        let cuda = || {
            Device::new_cuda(0).map_err(|e| {
                ModelError::Device(format!(
                    "device: cuda is not available ({e}); CUDA needs textbench built with `cargo build --release --features cuda` and a GPU"
                ))
            })
        };
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda => cuda(),
            Self::Auto if candle_core::utils::cuda_is_available() => cuda(),
            Self::Auto => Ok(Device::Cpu),
        }
    }
}

/// Checks shared by every transformer method's parameters: a backbone is named, the length is sane.
pub fn validate_backbone(backbone: &str, max_length: usize) -> std::result::Result<(), (&'static str, String)> {
    if backbone.trim().is_empty() {
        return Err(("backbone", "backbone is empty: give a model folder, a name under the models directory, or a hub id".into()));
    }
    if !(2..=8192).contains(&max_length) {
        return Err(("max_length", format!("max_length is {max_length}; it must be between 2 and 8192 tokens")));
    }
    Ok(())
}

/// What a transformer method needs before any run starts: its device and its backbone folder.
pub fn check_resources(backbone: &str, device: DeviceChoice, models_dir: &Path) -> std::result::Result<(), ModelError> {
    device.resolve()?;
    locate(backbone, models_dir).map(|_| ())
}

/// A trainable tensor made from values (a fresh head's or adapter's).
pub fn var_from(values: Vec<f32>, shape: (usize, usize), device: &Device) -> Result<Var> {
    Var::from_tensor(&Tensor::from_vec(values, shape, device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_chooses_its_family_by_model_type_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let family = |json: &str| {
            std::fs::write(&config, json).unwrap();
            family_of(&ModelConfig::read(&config).unwrap()).map(|f| f.name).map_err(|e| e.to_string())
        };
        assert_eq!(family(r#"{"model_type": "bert", "hidden_size": 8}"#), Ok("BERT"));
        let unknown = family(r#"{"model_type": "gpt_neox"}"#).unwrap_err();
        assert!(unknown.contains("model_type \"gpt_neox\" is not a family textbench loads (bert"), "{unknown}");
        let missing = family(r#"{"hidden_size": 8}"#).unwrap_err();
        assert!(missing.contains("no model_type: textbench loads bert"), "{missing}");
        let broken = family("{\n  \"model_type\": bert\n}").unwrap_err();
        assert!(broken.contains("config.json") && broken.contains("line 2"), "{broken}");
    }

    #[test]
    fn lora_targets_are_checked_against_every_family() {
        assert!(is_lora_target("query") && is_lora_target("pooler"));
        assert!(!is_lora_target("q_proj_typo"));
        assert!(bypassed_by_mean_pooling("pooler") && !bypassed_by_mean_pooling("query"));
        assert!(DEFAULT_FAMILY.default_lora_targets.iter().all(|t| is_lora_target(t)));
    }
}
