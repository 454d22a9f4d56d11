//! LLaMA and its relatives (Mistral, Qwen2, SmolLM2): decoder-only transformers. Token embeddings, then
//! blocks of RMSNorm → grouped-query causal self-attention with rotary positions → residual, RMSNorm →
//! SwiGLU MLP → residual, and a final RMSNorm. Field names mirror the checkpoint's weight names
//! (`layers.N.self_attn.q_proj`, …; Hugging Face's LlamaModel under `model.`).
//!
//! The sequence classifier is LlamaForSequenceClassification: a bias-free linear `score` layer on the
//! last real token's final state (batches are right-padded, so that is the last position the mask
//! keeps). Every op is differentiable: candle-transformers' LLaMA uses fused RMSNorm, softmax and
//! rotary kernels without a backward pass (FINDINGS.md), so this file is written on `nn`'s layers.

use candle_core::{DType, Device, Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;

use super::{Encoder, Family, Head, LoraSite, ModelConfig, SequenceClassifier};
use crate::error::ModelError;
use crate::nn::packing::Packing;
use crate::nn::rotary::{self, Rotary, Scaling};
use crate::nn::{ops, pool, Linear, Mode, Pooling, Weights};
use crate::perf::flops::ForwardFlops;

const TARGETS: &[&str] = &["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

pub const FAMILY: Family = Family {
    name: "LLaMA",
    model_types: &["llama", "mistral", "qwen2"],
    lora_targets: TARGETS,
    // Every linear layer of every block, as the issue's recipe (and QLoRA's) adapts them.
    default_lora_targets: TARGETS,
    head_targets: &[],
    rename,
    encoder: |config, weights| Ok(Box::new(LlamaModel::load(&LlamaConfig::load(config)?, weights)?)),
    classifier: |config, weights, head| Ok(Box::new(LlamaClassifier::load(&LlamaConfig::load(config)?, weights, head)?)),
    // Hugging Face's Trainer exempts biases and its norm layers (LlamaRMSNorm among them).
    decays: |name| !name.ends_with("bias") && !name.contains("norm"),
};

/// Checkpoint names without the `model.` prefix of LlamaForCausalLM and …ForSequenceClassification.
fn rename(name: &str) -> String {
    name.strip_prefix("model.").unwrap_or(name).to_string()
}

/// A decoder checkpoint's config.json (the fields the model needs; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); as many as query heads when absent.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// hidden_size / num_attention_heads when absent.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// q/k/v/o biases (LLaMA's flag); Qwen2 has q/k/v biases without a flag.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    /// Mistral's (and Qwen2's, when `use_sliding_window`) attention window.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub use_sliding_window: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

/// config.json's `rope_scaling` (older configs name the type `type`).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScaling {
    #[serde(default)]
    pub rope_type: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
}

fn default_act() -> String {
    "silu".into()
}
fn default_positions() -> usize {
    2048
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}

impl LlamaConfig {
    pub fn load(config: &ModelConfig) -> std::result::Result<LlamaConfig, ModelError> {
        let cfg: LlamaConfig = config.parse()?;
        cfg.check().map_err(|message| config.invalid(message))?;
        Ok(cfg)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let (heads, kv) = (self.num_attention_heads, self.kv_heads());
        if heads == 0 || kv == 0 || !heads.is_multiple_of(kv) {
            return Err(format!("num_key_value_heads {kv} must be at least 1 and divide num_attention_heads {heads}"));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(heads) {
            return Err(format!("num_attention_heads {heads} must divide hidden_size {} (or head_dim be given)", self.hidden_size));
        }
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return Err(format!("head_dim {} must be even for rotary positions", self.head_dim()));
        }
        if self.hidden_act != "silu" {
            return Err(format!("unsupported hidden_act {:?} (silu)", self.hidden_act));
        }
        if self.vocab_size == 0 || self.hidden_size == 0 || self.rope_theta <= 0.0 {
            return Err("vocab_size, hidden_size and rope_theta must be positive".into());
        }
        self.scaling().map(|_| ())
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q, k and v carry biases.
    fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// The rotary scaling the config asks for; types textbench does not implement are an error.
    pub fn scaling(&self) -> std::result::Result<Scaling, String> {
        let Some(s) = &self.rope_scaling else { return Ok(Scaling::None) };
        let kind = s.rope_type.as_deref().or(s.kind.as_deref()).unwrap_or("default");
        let need = |v: Option<f64>, key: &str| v.ok_or_else(|| format!("rope_scaling {kind:?} needs {key}"));
        match kind {
            "default" => Ok(Scaling::None),
            "linear" => Ok(Scaling::Linear { factor: need(s.factor, "factor")? }),
            "llama3" => Ok(Scaling::Llama3 {
                factor: need(s.factor, "factor")?,
                low_freq_factor: need(s.low_freq_factor, "low_freq_factor")?,
                high_freq_factor: need(s.high_freq_factor, "high_freq_factor")?,
                original_max_position_embeddings: need(s.original_max_position_embeddings, "original_max_position_embeddings")?,
            }),
            other => Err(format!("rope_scaling type {other:?} is not supported (default, linear, llama3)")),
        }
    }

    /// The id padding gets: the config's pad token, else its (first) end-of-sequence token, as
    /// Hugging Face's recipes set it.
    pub fn pad_id(&self) -> u32 {
        self.pad_token_id
            .or(match &self.eos_token_id {
                Some(TokenIds::One(id)) => Some(*id),
                Some(TokenIds::Many(ids)) => ids.first().copied(),
                None => None,
            })
            .unwrap_or(0)
    }

    /// The longest sequence it attends over without a sliding window (which this implementation does
    /// not apply: sequences stop short of it instead).
    fn positions(&self) -> usize {
        let window = match self.model_type.as_str() {
            "qwen2" if self.use_sliding_window != Some(true) => None,
            _ => self.sliding_window,
        };
        window.map_or(self.max_position_embeddings, |w| w.min(self.max_position_embeddings))
    }
}

pub struct RmsNorm {
    pub weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(w: &mut Weights, prefix: &str, size: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm { weight: w.get(&format!("{prefix}.weight"), &[size])?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::rms_norm(x, &self.weight, self.eps)
    }
}

/// A linear layer of the checkpoint, with its bias or (where the family has none) a constant zero
/// one, which `named_tensors` leaves out.
fn linear(w: &mut Weights, prefix: &str, inp: usize, out: usize, bias: bool, device: &Device) -> Result<Linear> {
    let weight = w.get(&format!("{prefix}.weight"), &[out, inp])?;
    let bias = if bias { w.get(&format!("{prefix}.bias"), &[out])? } else { Tensor::zeros(out, DType::F32, device)? };
    Ok(Linear { weight, bias, lora: None })
}

pub struct Layer {
    input_layernorm: RmsNorm,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    post_attention_layernorm: RmsNorm,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

impl Layer {
    fn linears(&self) -> [(&'static str, &'static str, &Linear); 7] {
        [
            ("q_proj", "self_attn.q_proj", &self.q_proj),
            ("k_proj", "self_attn.k_proj", &self.k_proj),
            ("v_proj", "self_attn.v_proj", &self.v_proj),
            ("o_proj", "self_attn.o_proj", &self.o_proj),
            ("gate_proj", "mlp.gate_proj", &self.gate_proj),
            ("up_proj", "mlp.up_proj", &self.up_proj),
            ("down_proj", "mlp.down_proj", &self.down_proj),
        ]
    }

    fn linears_mut(&mut self) -> [(&'static str, &'static str, &mut Linear); 7] {
        [
            ("q_proj", "self_attn.q_proj", &mut self.q_proj),
            ("k_proj", "self_attn.k_proj", &mut self.k_proj),
            ("v_proj", "self_attn.v_proj", &mut self.v_proj),
            ("o_proj", "self_attn.o_proj", &mut self.o_proj),
            ("gate_proj", "mlp.gate_proj", &mut self.gate_proj),
            ("up_proj", "mlp.up_proj", &mut self.up_proj),
            ("down_proj", "mlp.down_proj", &mut self.down_proj),
        ]
    }
}

/// Where each sequence's rows are in the layers' [rows, hidden] input.
enum Sequences<'a> {
    /// `batch` sequences of `seq` rows each; `bias` [batch, 1, 1, seq] masks the padding's keys.
    Padded { bias: &'a Tensor, batch: usize, seq: usize },
    /// One after another, without padding (CPU only).
    Packed(&'a [usize]),
}

/// The rotary angles of a batch's rows.
struct Angles {
    cos: Tensor,
    sin: Tensor,
}

pub struct LlamaModel {
    pub config: LlamaConfig,
    /// Whether a right-padded batch is computed without its padding on the CPU; on by default.
    pub packing: bool,
    parameters: usize,
    embed_tokens: Tensor,
    pub layers: Vec<Layer>,
    norm: RmsNorm,
    rotary: Rotary,
}

impl LlamaModel {
    pub fn load(config: &LlamaConfig, w: &mut Weights) -> std::result::Result<LlamaModel, ModelError> {
        Self::load_tensors(config, w).map_err(|e| w.invalid(e))
    }

    fn load_tensors(config: &LlamaConfig, w: &mut Weights) -> Result<LlamaModel> {
        // Every matrix here is read through `Linear` or `embed`, which widen bf16 as they go: a frozen
        // bf16 checkpoint (a LoRA or frozen run) stays in bf16, half the memory of f32.
        w.keep_bf16 = true;
        let before = w.loaded;
        let (h, i, eps) = (config.hidden_size, config.intermediate_size, config.rms_norm_eps);
        let (q_out, kv_out) = (config.num_attention_heads * config.head_dim(), config.kv_heads() * config.head_dim());
        let embed_tokens = w.get("embed_tokens.weight", &[config.vocab_size, h])?;
        let device = embed_tokens.device().clone();
        let (qkv_bias, mlp_bias) = (config.qkv_bias(), config.mlp_bias);
        // LLaMA's flag covers o_proj too; Qwen2's implicit biases do not.
        let o_bias = config.attention_bias == Some(true);
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let p = format!("layers.{n}");
                Ok(Layer {
                    input_layernorm: RmsNorm::load(w, &format!("{p}.input_layernorm"), h, eps)?,
                    q_proj: linear(w, &format!("{p}.self_attn.q_proj"), h, q_out, qkv_bias, &device)?,
                    k_proj: linear(w, &format!("{p}.self_attn.k_proj"), h, kv_out, qkv_bias, &device)?,
                    v_proj: linear(w, &format!("{p}.self_attn.v_proj"), h, kv_out, qkv_bias, &device)?,
                    o_proj: linear(w, &format!("{p}.self_attn.o_proj"), q_out, h, o_bias, &device)?,
                    post_attention_layernorm: RmsNorm::load(w, &format!("{p}.post_attention_layernorm"), h, eps)?,
                    gate_proj: linear(w, &format!("{p}.mlp.gate_proj"), h, i, mlp_bias, &device)?,
                    up_proj: linear(w, &format!("{p}.mlp.up_proj"), h, i, mlp_bias, &device)?,
                    down_proj: linear(w, &format!("{p}.mlp.down_proj"), i, h, mlp_bias, &device)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(w, "norm", h, eps)?;
        let scaling = config.scaling().map_err(candle_core::Error::Msg)?;
        let rotary = Rotary::new(config.head_dim(), config.rope_theta, scaling);
        Ok(LlamaModel { config: config.clone(), packing: true, parameters: w.loaded - before, embed_tokens, layers, norm, rotary })
    }

    /// The rows of `ids` (a list) in f32, whatever the dtype the embeddings are kept in.
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        self.embed_tokens.index_select(ids, 0)?.to_dtype(DType::F32)
    }

    /// The token embeddings [vocab, hidden] (also the output layer of a tied checkpoint).
    pub fn embed_tokens(&self) -> &Tensor {
        &self.embed_tokens
    }

    fn angles(&self, positions: &[u32], device: &Device) -> Result<Angles> {
        let (cos, sin) = self.rotary.tables(positions, device)?;
        Ok(Angles { cos, sin })
    }

    fn layers(&self, mut x: Tensor, sequences: &Sequences<'_>, angles: &Angles, mode: &mut Mode<'_>) -> Result<Tensor> {
        for layer in &self.layers {
            let y = layer.forward(&x, sequences, angles, &self.config, mode)?;
            x = mode.between_layers(y);
        }
        self.norm.forward(&x)
    }

    /// Which of a layer's linear layers carry biases, for `named_tensors`.
    fn has_bias(&self, target: &str) -> bool {
        match target {
            "q_proj" | "k_proj" | "v_proj" => self.config.qkv_bias(),
            "o_proj" => self.config.attention_bias == Some(true),
            _ => self.config.mlp_bias,
        }
    }
}

impl Layer {
    /// x is [rows, hidden]; so is the result.
    fn forward(&self, x: &Tensor, sequences: &Sequences<'_>, angles: &Angles, cfg: &LlamaConfig, mode: &mut Mode<'_>) -> Result<Tensor> {
        let (heads, kv, dh) = (cfg.num_attention_heads, cfg.kv_heads(), cfg.head_dim());
        let normed = self.input_layernorm.forward(x)?;
        let q = rotary::apply(&self.q_proj.forward(&normed, mode)?, heads, &angles.cos, &angles.sin)?;
        let k = rotary::apply(&self.k_proj.forward(&normed, mode)?, kv, &angles.cos, &angles.sin)?;
        let v = self.v_proj.forward(&normed, mode)?;
        let scale = 1.0 / (dh as f64).sqrt();
        // The fused kernel reads each key/value head in place for its group of query heads; composed,
        // they are repeated first.
        let context = match *sequences {
            Sequences::Packed(lengths) => crate::nn::attention::attention_packed(&q, &k, &v, lengths, heads, scale, None, true)?,
            Sequences::Padded { bias, batch, seq } if crate::nn::kernels::fusable(&q) => {
                crate::nn::attention::attention(&q, &k, &v, &bias.reshape((batch, seq))?, heads, scale, None, true)?
            }
            Sequences::Padded { bias, batch: b, seq: t } => {
                let split = |y: Tensor| y.reshape((b, t, heads, dh))?.transpose(1, 2)?.contiguous();
                let (k, v) = (repeat_kv(&k, kv, heads / kv)?, repeat_kv(&v, kv, heads / kv)?);
                let (q, k, v) = (split(q)?, split(k)?, split(v)?);
                let scores = q.matmul(&k.t()?.contiguous()?)?;
                let later: Vec<f32> = (0..t * t).map(|n| if n % t > n / t { f32::MIN } else { 0.0 }).collect();
                let causal = Tensor::from_vec(later, (1, 1, t, t), scores.device())?;
                let probs = ops::attention_softmax(&scores, &bias.broadcast_add(&causal)?, scale)?;
                probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b * t, heads * dh))?
            }
        };
        let x = (x + self.o_proj.forward(&context, mode)?)?;
        let normed = self.post_attention_layernorm.forward(&x)?;
        let gated = ops::swiglu(&self.gate_proj.forward(&normed, mode)?, &self.up_proj.forward(&normed, mode)?)?;
        x + self.down_proj.forward(&gated, mode)?
    }
}

/// Key/value heads repeated for the query heads that share them: [rows, kv · dh] → [rows, kv · n · dh],
/// each head n times in a row (query head j reads key head j / n, as Hugging Face's `repeat_kv`).
fn repeat_kv(x: &Tensor, kv: usize, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (rows, width) = x.dims2()?;
    let dh = width / kv;
    x.reshape((rows, kv, 1, dh))?.broadcast_as((rows, kv, n, dh))?.contiguous()?.reshape((rows, kv * n * dh))
}

impl Encoder for LlamaModel {
    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("embed_tokens.weight".to_string(), self.embed_tokens.clone())];
        for (n, l) in self.layers.iter().enumerate() {
            let p = format!("layers.{n}");
            out.push((format!("{p}.input_layernorm.weight"), l.input_layernorm.weight.clone()));
            out.push((format!("{p}.post_attention_layernorm.weight"), l.post_attention_layernorm.weight.clone()));
            for (target, name, lin) in l.linears() {
                out.push((format!("{p}.{name}.weight"), lin.weight.clone()));
                if self.has_bias(target) {
                    out.push((format!("{p}.{name}.bias"), lin.bias.clone()));
                }
            }
        }
        out.push(("norm.weight".to_string(), self.norm.weight.clone()));
        out
    }

    fn parameter_count(&self) -> usize {
        self.parameters
    }

    /// Final-norm hidden states. On the CPU a right-padded batch is computed without its padding
    /// (`packing`), each sequence attending causally within itself, and the padding's states come
    /// back as zeros; otherwise padded, with the padding's keys masked.
    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.max_positions() {
            candle_core::bail!("sequence of {t} tokens exceeds the model's {} positions", self.max_positions());
        }
        let device = self.embed_tokens.device();
        if self.packing && crate::nn::kernels::fusable(&self.norm.weight) {
            if let Some(packing) = Packing::of(mask)? {
                let (ids, positions) = packing.pack_ids(ids)?;
                let angles = self.angles(&positions.to_vec1::<u32>()?, device)?;
                let x = self.embed(&ids)?;
                let x = self.layers(x, &Sequences::Packed(&packing.lengths), &angles, mode)?;
                return packing.unpack(&x);
            }
        }
        let positions: Vec<u32> = (0..b).flat_map(|_| 0..t as u32).collect();
        let angles = self.angles(&positions, device)?;
        let x = self.embed(&ids.flatten_all()?)?;
        let bias = ops::attention_bias(mask)?.to_dtype(x.dtype())?;
        let x = self.layers(x, &Sequences::Padded { bias: &bias, batch: b, seq: t }, &angles, mode)?;
        x.reshape((b, t, self.config.hidden_size))
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.positions()
    }

    fn pad_token_id(&self) -> u32 {
        self.config.pad_id()
    }

    fn set_packing(&mut self, on: bool) {
        self.packing = on;
    }

    /// A decoder has no dropout here (its configs set attention_dropout 0); LoRA's is the adapter's.
    fn disable_dropout(&mut self) {}

    /// Per layer: the seven projections, Q·Kᵀ and P·V over every (query, key) pair computed (the
    /// causal half included: the kernel computes it and masks it); adapters as for the encoder.
    fn forward_flops(&self, batch: usize, seq: usize) -> ForwardFlops {
        let cfg = &self.config;
        let tokens = (batch * seq) as f64;
        let (h, i) = (cfg.hidden_size as f64, cfg.intermediate_size as f64);
        let (q_out, kv_out) = ((cfg.num_attention_heads * cfg.head_dim()) as f64, (cfg.kv_heads() * cfg.head_dim()) as f64);
        let layers = cfg.num_hidden_layers as f64;
        let adapters: f64 = self.layers.iter().flat_map(|l| l.linears()).map(|(_, _, lin)| lin.adapter_flops(tokens)).sum();
        ForwardFlops {
            weights: layers * 2.0 * tokens * (2.0 * h * q_out + 2.0 * h * kv_out + 3.0 * h * i),
            attention: layers * 2.0 * 2.0 * batch as f64 * (seq * seq) as f64 * q_out,
            adapters,
        }
    }
}

/// LlamaForSequenceClassification: the model and a bias-free `score` layer; or, for `head: prompt`,
/// LlamaForCausalLM's output layer read at one label word per class.
pub struct LlamaClassifier {
    model: LlamaModel,
    head: ClassHead,
    pooling: Pooling,
}

enum ClassHead {
    Score(Linear),
    Words {
        /// The label words' ids [classes] (u32).
        ids: Tensor,
        /// The output layer [vocab, hidden]: `lm_head.weight`, or the embeddings when tied.
        output: Tensor,
        tied: bool,
    },
}

impl LlamaClassifier {
    /// A fresh `score` gets N(0, initializer_range = 0.02) weights, as Hugging Face initialises it.
    /// `pooling: cls` (the methods' default, "the family's own head") is the last token here.
    fn load(config: &LlamaConfig, w: &mut Weights, head: &Head) -> std::result::Result<LlamaClassifier, ModelError> {
        let model = LlamaModel::load(config, w)?;
        let h = config.hidden_size;
        let device = model.embed_tokens.device().clone();
        let pooling = match head.pooling() {
            Pooling::Cls => Pooling::Last,
            other => other,
        };
        let score = match head {
            Head::Prompt { label_ids } => {
                if let Some(bad) = label_ids.iter().find(|&&id| id as usize >= config.vocab_size) {
                    return Err(ModelError::Invalid {
                        path: w.source.clone(),
                        message: format!("label word id {bad} is outside the vocabulary of {}", config.vocab_size),
                    });
                }
                let tied = config.tie_word_embeddings;
                let output = if tied { Ok(model.embed_tokens.clone()) } else { w.get("lm_head.weight", &[config.vocab_size, h]) };
                let ids = Tensor::new(label_ids.as_slice(), &device);
                let head = output.and_then(|output| Ok(ClassHead::Words { ids: ids?, output, tied })).map_err(|e| w.invalid(e))?;
                return Ok(LlamaClassifier { model, head, pooling });
            }
            &Head::Fresh { classes, seed, .. } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(7);
                let normal = Normal::new(0.0f32, 0.02).expect("valid normal");
                let values: Vec<f32> = (0..classes * h).map(|_| normal.sample(&mut rng)).collect();
                Tensor::from_vec(values, (classes, h), &device).and_then(|t| w.fresh("score.weight", t))
            }
            &Head::Saved { classes, .. } => w.get("score.weight", &[classes, h]),
        };
        let weight = score.map_err(|e| w.invalid(e))?;
        let bias = Tensor::zeros(weight.dim(0).unwrap_or(2), DType::F32, &device).map_err(|e| w.invalid(e))?;
        Ok(LlamaClassifier { model, head: ClassHead::Score(Linear { weight, bias, lora: None }), pooling })
    }
}

impl SequenceClassifier for LlamaClassifier {
    fn encoder(&self) -> &dyn Encoder {
        &self.model
    }

    fn encoder_mut(&mut self) -> &mut dyn Encoder {
        &mut self.model
    }

    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let hidden = self.model.forward(ids, mask, mode)?;
        let pooled = pool(&hidden, mask, self.pooling)?;
        match &self.head {
            ClassHead::Score(score) => score.forward(&pooled, mode),
            ClassHead::Words { ids, output, .. } => pooled.matmul(&output.index_select(ids, 0)?.to_dtype(DType::F32)?.t()?),
        }
    }

    fn classes(&self) -> usize {
        match &self.head {
            ClassHead::Score(score) => score.weight.dims().first().copied().unwrap_or(2),
            ClassHead::Words { ids, .. } => ids.elem_count(),
        }
    }

    fn unused(&self, _name: &str) -> bool {
        false
    }

    fn lora_sites(&mut self) -> Vec<LoraSite<'_>> {
        let mut sites = Vec::new();
        for (n, layer) in self.model.layers.iter_mut().enumerate() {
            for (target, module, linear) in layer.linears_mut() {
                sites.push(LoraSite { target, module: format!("layers.{n}.{module}"), block: Some(n), linear });
            }
        }
        sites
    }

    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = self.model.named_tensors().into_iter().map(|(k, t)| (format!("model.{k}"), t)).collect();
        match &self.head {
            ClassHead::Score(score) => tensors.push(("score.weight".to_string(), score.weight.clone())),
            ClassHead::Words { output, tied: false, .. } => tensors.push(("lm_head.weight".to_string(), output.clone())),
            ClassHead::Words { .. } => {}
        }
        tensors
    }

    /// The model lives under `model.`, the score layer and the output layer at the top.
    fn hf_name(&self, name: &str) -> String {
        if name.starts_with("score.") || name.starts_with("lm_head.") {
            name.to_string()
        } else {
            format!("model.{name}")
        }
    }

    fn export_config(&self, config: &mut serde_json::Value) {
        let family = match self.model.config.model_type.as_str() {
            "qwen2" => "Qwen2",
            "mistral" => "Mistral",
            _ => "Llama",
        };
        let head = match &self.head {
            ClassHead::Score(_) => "SequenceClassification",
            ClassHead::Words { .. } => "CausalLM",
        };
        config["architectures"] = serde_json::json!([format!("{family}For{head}")]);
        // The class finds each text's last token by the pad id, which must be set for batches.
        config["pad_token_id"] = serde_json::json!(self.model.config.pad_id());
        if self.pooling != Pooling::Last {
            config["textbench_pooling"] = serde_json::json!(self.pooling);
        }
    }

    fn head_flops(&self, batch: usize) -> f64 {
        2.0 * batch as f64 * (self.model.config.hidden_size * self.classes()) as f64
    }

    fn head_parameters(&self) -> usize {
        match &self.head {
            ClassHead::Score(score) => score.weight.elem_count(),
            ClassHead::Words { output, tied: false, .. } => output.elem_count(),
            ClassHead::Words { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> std::result::Result<LlamaConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        LlamaConfig::load(&ModelConfig::read(&path).unwrap()).map_err(|e| e.to_string())
    }

    const BASE: &str = r#""model_type": "llama", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1"#;

    #[test]
    fn configs_are_checked_once_with_what_is_wrong_named() {
        let ok = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "num_key_value_heads": 2}}"#)).unwrap();
        assert_eq!((ok.kv_heads(), ok.head_dim(), ok.pad_id()), (2, 4, 0));
        let bad_kv = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "num_key_value_heads": 3}}"#)).unwrap_err();
        assert!(bad_kv.contains("num_key_value_heads 3 must be at least 1 and divide num_attention_heads 4"), "{bad_kv}");
        let act = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "hidden_act": "gelu"}}"#)).unwrap_err();
        assert!(act.contains("unsupported hidden_act \"gelu\""), "{act}");
        let rope = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "rope_scaling": {{"rope_type": "yarn", "factor": 4.0}}}}"#)).unwrap_err();
        assert!(rope.contains("rope_scaling type \"yarn\" is not supported"), "{rope}");
        let llama3 = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "rope_scaling": {{"rope_type": "llama3", "factor": 8.0}}}}"#)).unwrap_err();
        assert!(llama3.contains("needs low_freq_factor"), "{llama3}");
        let eos = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "pad_token_id": null, "eos_token_id": [7, 9]}}"#)).unwrap();
        assert_eq!(eos.pad_id(), 7);
        let qwen = config(r#"{"model_type": "qwen2", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "sliding_window": 8, "use_sliding_window": false}"#).unwrap();
        assert!(qwen.qkv_bias() && qwen.positions() == 2048);
        let mistral = config(&format!(r#"{{{BASE}, "num_attention_heads": 4, "sliding_window": 64}}"#).replace("llama", "mistral")).unwrap();
        assert_eq!(mistral.positions(), 64);
    }
}
