//! BERT and its relatives (MiniLM, sentence-transformers' encoders): the config, the encoder, and the
//! sequence classifier laid out as Hugging Face's BertForSequenceClassification, so that a checkpoint of
//! either class loads here and a saved model or adapter loads back there. Field names mirror the
//! checkpoint's weight names (`encoder.layer.N.attention.self.query`, …).
//!
//! The classifier: the [CLS] state through the pooler (dense + tanh), dropout, and a k-way linear
//! classifier (k = 2 for binary data). With `pooling: mean` the head reads the mean of the real tokens'
//! states instead, and the pooler is neither used nor trained (the saved weights keep the same names;
//! only the pooling differs, and the saved config says so).

use candle_core::{DType, Device, Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;

use super::{Encoder, Family, Head, LoraSite, ModelConfig, SequenceClassifier};
use crate::error::ModelError;
use crate::nn::packing::Packing;
use crate::nn::{ops, pool, LayerNorm, Linear, Mode, Pooling, Then, Weights};
use crate::perf::flops::ForwardFlops;

pub const FAMILY: Family = Family {
    name: "BERT",
    model_types: &["bert"],
    lora_targets: &["query", "key", "value", "attention_output", "intermediate", "output", "pooler"],
    // q/k/v and every "dense" of the encoder, as FINDINGS measured peft with; `pooler` added is seed
    // 000's "wrap every linear layer" variant.
    default_lora_targets: &["query", "key", "value", "attention_output", "intermediate", "output"],
    head_targets: &["pooler"],
    rename,
    encoder: |config, weights| Ok(Box::new(BertEncoder::load(&BertConfig::load(config)?, weights)?)),
    classifier: |config, weights, head| Ok(Box::new(BertClassifier::load(&BertConfig::load(config)?, weights, head)?)),
    decays: |name| !name.ends_with("bias") && !name.contains("LayerNorm"),
};

/// Names of other BERT checkpoints as MiniLM's: without the `bert.` prefix of BertForPreTraining and
/// BertForSequenceClassification, and with `weight`/`bias` for the old `gamma`/`beta` layer norms.
fn rename(name: &str) -> String {
    name.strip_prefix("bert.").unwrap_or(name).replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
}

/// A BERT checkpoint's config.json (the fields the encoder needs; others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: u32,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    pub fn load(config: &ModelConfig) -> std::result::Result<BertConfig, ModelError> {
        let cfg: BertConfig = config.parse()?;
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(
                config.invalid(format!("num_attention_heads {} must be at least 1 and divide hidden_size {}", cfg.num_attention_heads, cfg.hidden_size))
            );
        }
        if !matches!(cfg.hidden_act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu") {
            return Err(config.invalid(format!("unsupported hidden_act {:?} (gelu, gelu_new, relu)", cfg.hidden_act)));
        }
        Ok(cfg)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

struct Embeddings {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
}

pub struct Layer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    output_norm: LayerNorm,
}

pub struct BertEncoder {
    pub config: BertConfig,
    /// Whether a right-padded batch is computed without its padding on the CPU (`packing`); on by
    /// default. Off, the padding is computed and masked, as PyTorch's BERT does: `bench perf --padded`
    /// compares the engines at equal work that way.
    pub packing: bool,
    parameters: usize,
    embeddings: Embeddings,
    pub layers: Vec<Layer>,
}

impl BertEncoder {
    pub fn load(config: &BertConfig, w: &mut Weights) -> std::result::Result<BertEncoder, ModelError> {
        Self::load_tensors(config, w).map_err(|e| w.invalid(e))
    }

    fn load_tensors(config: &BertConfig, w: &mut Weights) -> Result<BertEncoder> {
        let before = w.loaded;
        let (h, i, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        let embeddings = Embeddings {
            word: w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: w.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?,
            token_type: w.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?,
            norm: LayerNorm::load(w, "embeddings.LayerNorm", h, eps)?,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let p = format!("encoder.layer.{n}");
                Ok(Layer {
                    query: Linear::load(w, &format!("{p}.attention.self.query"), h, h)?,
                    key: Linear::load(w, &format!("{p}.attention.self.key"), h, h)?,
                    value: Linear::load(w, &format!("{p}.attention.self.value"), h, h)?,
                    attention_output: Linear::load(w, &format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: LayerNorm::load(w, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                    intermediate: Linear::load(w, &format!("{p}.intermediate.dense"), h, i)?,
                    output: Linear::load(w, &format!("{p}.output.dense"), i, h)?,
                    output_norm: LayerNorm::load(w, &format!("{p}.output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BertEncoder { config: config.clone(), packing: true, parameters: w.loaded - before, embeddings, layers })
    }

    /// The embedding layer's output for word and position embeddings of the same shape (or positions
    /// that broadcast over the batch).
    fn embed(&self, words: Tensor, positions: Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let e = &self.embeddings;
        let types = e.token_type.narrow(0, 0, 1)?; // single-segment input: token type 0 everywhere
        let x = words.broadcast_add(&positions)?.broadcast_add(&types)?;
        mode.dropout(&e.norm.forward(&x)?, self.config.hidden_dropout_prob)
    }

    fn layers(&self, mut x: Tensor, sequences: &Sequences<'_>, mode: &mut Mode<'_>) -> Result<Tensor> {
        for layer in &self.layers {
            let y = layer.forward(&x, sequences, &self.config, mode)?;
            x = mode.between_layers(y);
        }
        Ok(x)
    }
}

impl Encoder for BertEncoder {
    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let e = &self.embeddings;
        let mut out = vec![
            ("embeddings.word_embeddings.weight".to_string(), e.word.clone()),
            ("embeddings.position_embeddings.weight".to_string(), e.position.clone()),
            ("embeddings.token_type_embeddings.weight".to_string(), e.token_type.clone()),
            ("embeddings.LayerNorm.weight".to_string(), e.norm.weight.clone()),
            ("embeddings.LayerNorm.bias".to_string(), e.norm.bias.clone()),
        ];
        for (n, l) in self.layers.iter().enumerate() {
            let p = format!("encoder.layer.{n}");
            let linears = [
                ("attention.self.query", &l.query),
                ("attention.self.key", &l.key),
                ("attention.self.value", &l.value),
                ("attention.output.dense", &l.attention_output),
                ("intermediate.dense", &l.intermediate),
                ("output.dense", &l.output),
            ];
            for (name, lin) in linears {
                out.push((format!("{p}.{name}.weight"), lin.weight.clone()));
                out.push((format!("{p}.{name}.bias"), lin.bias.clone()));
            }
            for (name, norm) in [("attention.output.LayerNorm", &l.attention_norm), ("output.LayerNorm", &l.output_norm)] {
                out.push((format!("{p}.{name}.weight"), norm.weight.clone()));
                out.push((format!("{p}.{name}.bias"), norm.bias.clone()));
            }
        }
        out
    }

    fn parameter_count(&self) -> usize {
        self.parameters
    }

    /// On the CPU a right-padded batch is computed without its padding (`packing`), and the padding's
    /// hidden states come back as zeros; elsewhere, for another mask, or with `packing` off, padded and
    /// masked.
    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        if t > cfg.max_position_embeddings {
            candle_core::bail!("sequence of {t} tokens exceeds max_position_embeddings {}", cfg.max_position_embeddings);
        }
        let e = &self.embeddings;
        if self.packing && crate::nn::kernels::fusable(&e.word) {
            if let Some(packing) = Packing::of(mask)? {
                let (ids, positions) = packing.pack_ids(ids)?;
                let x = self.embed(e.word.index_select(&ids, 0)?, e.position.index_select(&positions, 0)?, mode)?;
                let x = self.layers(x, &Sequences::Packed(&packing.lengths), mode)?;
                return packing.unpack(&x);
            }
        }
        let words = e.word.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, cfg.hidden_size))?;
        let x = self.embed(words, e.position.narrow(0, 0, t)?, mode)?;
        let bias = ops::attention_bias(mask)?.to_dtype(x.dtype())?;
        // The layers work on [batch · seq, hidden] (see `Linear::forward_rows`).
        let x = self.layers(x.reshape((b * t, cfg.hidden_size))?, &Sequences::Padded { bias: &bias, batch: b, seq: t }, mode)?;
        x.reshape((b, t, cfg.hidden_size))
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn pad_token_id(&self) -> u32 {
        self.config.pad_token_id
    }

    fn set_packing(&mut self, on: bool) {
        self.packing = on;
    }

    fn disable_dropout(&mut self) {
        self.config.hidden_dropout_prob = 0.0;
        self.config.attention_probs_dropout_prob = 0.0;
    }

    /// Per layer: q, k, v, attention output, intermediate and output products, Q·Kᵀ and P·V; each
    /// adapter adds x·Aᵀ (in → r) and then ·Bᵀ (r → out) for every token.
    fn forward_flops(&self, batch: usize, seq: usize) -> ForwardFlops {
        let cfg = &self.config;
        let (b, t, h, i) = (batch as f64, seq as f64, cfg.hidden_size as f64, cfg.intermediate_size as f64);
        let tokens = b * t;
        let layers = cfg.num_hidden_layers as f64;
        let adapters: f64 = self
            .layers
            .iter()
            .flat_map(|l| [&l.query, &l.key, &l.value, &l.attention_output, &l.intermediate, &l.output])
            .map(|lin| lin.adapter_flops(tokens))
            .sum();
        ForwardFlops { weights: layers * 2.0 * tokens * (4.0 * h * h + 2.0 * h * i), attention: layers * 2.0 * 2.0 * b * t * t * h, adapters }
    }
}

/// Where each sequence's rows are in the layers' [rows, hidden] input.
enum Sequences<'a> {
    /// `batch` sequences of `seq` rows each; `bias` [batch, 1, 1, seq] masks the padding's keys.
    Padded { bias: &'a Tensor, batch: usize, seq: usize },
    /// One after another, without padding (CPU only).
    Packed(&'a [usize]),
}

impl Layer {
    /// x is [rows, hidden]; so is the result.
    fn forward(&self, x: &Tensor, sequences: &Sequences<'_>, cfg: &BertConfig, mode: &mut Mode<'_>) -> Result<Tensor> {
        let h = x.dim(1)?;
        let (heads, dh) = (cfg.num_attention_heads, cfg.head_dim());
        let (q, k, v) = (self.query.forward(x, mode)?, self.key.forward(x, mode)?, self.value.forward(x, mode)?);
        let scale = 1.0 / (dh as f64).sqrt();
        let fused = crate::nn::kernels::fusable(&q);
        let context = match *sequences {
            Sequences::Packed(lengths) => {
                let dropout = mode.dropout_key(cfg.attention_probs_dropout_prob);
                crate::nn::attention::attention_packed(&q, &k, &v, lengths, heads, scale, dropout, false)?
            }
            Sequences::Padded { bias, batch, seq } if fused => {
                let dropout = mode.dropout_key(cfg.attention_probs_dropout_prob);
                crate::nn::attention::attention(&q, &k, &v, &bias.reshape((batch, seq))?, heads, scale, dropout, false)?
            }
            Sequences::Padded { bias, batch: b, seq: t } => {
                let split = |y: Tensor| y.reshape((b, t, heads, dh))?.transpose(1, 2)?.contiguous();
                let (q, k, v) = (split(q)?, split(k)?, split(v)?);
                let scores = q.matmul(&k.t()?.contiguous()?)?;
                let probs = mode.dropout(&ops::attention_softmax(&scores, bias, scale)?, cfg.attention_probs_dropout_prob)?;
                probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b * t, h))?
            }
        };
        let attended = self.attention_output.forward_then(&context, Then::Dropout(cfg.hidden_dropout_prob), mode)?;
        let x = self.attention_norm.forward_residual(&attended, x)?;
        let inner = self.intermediate.forward_then(&x, Then::Activation(&cfg.hidden_act), mode)?;
        let out = self.output.forward_then(&inner, Then::Dropout(cfg.hidden_dropout_prob), mode)?;
        self.output_norm.forward_residual(&out, &x)
    }
}

/// The sequence classifier: BertForSequenceClassification's pooler and classifier on the encoder.
pub struct BertClassifier {
    encoder: BertEncoder,
    pooler: Linear,
    head: Linear,
    pooling: Pooling,
}

impl BertClassifier {
    /// The checkpoint's pooler is used when it has one (trainable exactly when the encoder is); a fresh
    /// head and pooler get N(0, 0.02) weights and zero biases, as Hugging Face initialises them.
    fn load(config: &BertConfig, w: &mut Weights, head: &Head) -> std::result::Result<BertClassifier, ModelError> {
        let encoder = BertEncoder::load(config, w)?;
        let h = config.hidden_size;
        let device = encoder.embeddings.word.device().clone();
        let pooling = head.pooling();
        let (pooler, head) = match *head {
            Head::Fresh { classes, seed, .. } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(7);
                let pooler =
                    if w.has("pooler.dense.weight") { Linear::load(w, "pooler.dense", h, h) } else { fresh(w, "pooler.dense", h, h, &mut rng, &device) };
                let pooler = pooler.map_err(|e| w.invalid(e))?;
                (pooler, fresh(w, "classifier", h, classes, &mut rng, &device).map_err(|e| w.invalid(e))?)
            }
            Head::Saved { classes, .. } => {
                let loaded = Linear::load(w, "pooler.dense", h, h).and_then(|pooler| Ok((pooler, Linear::load(w, "classifier", h, classes)?)));
                loaded.map_err(|e| w.invalid(e))?
            }
            Head::Prompt { .. } => {
                return Err(ModelError::Invalid {
                    path: w.source.clone(),
                    message: "head: prompt reads a decoder's next-token logits; a BERT encoder has none".into(),
                })
            }
        };
        Ok(BertClassifier { encoder, pooler, head, pooling })
    }
}

/// A new linear layer of `rows` outputs, trainable, drawn from N(0, 0.02) with a zero bias.
fn fresh(w: &mut Weights, name: &str, inp: usize, rows: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Linear> {
    let normal = Normal::new(0.0f32, 0.02).expect("valid normal");
    let values: Vec<f32> = (0..rows * inp).map(|_| normal.sample(rng)).collect();
    let weight = w.fresh(&format!("{name}.weight"), Tensor::from_vec(values, (rows, inp), device)?)?;
    let bias = w.fresh(&format!("{name}.bias"), Tensor::zeros(rows, DType::F32, device)?)?;
    Ok(Linear { weight, bias, lora: None })
}

impl SequenceClassifier for BertClassifier {
    fn encoder(&self) -> &dyn Encoder {
        &self.encoder
    }

    fn encoder_mut(&mut self) -> &mut dyn Encoder {
        &mut self.encoder
    }

    fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let hidden = self.encoder.forward(ids, mask, mode)?;
        let pooled = match self.pooling {
            Pooling::Cls => self.pooler.forward(&pool(&hidden, mask, Pooling::Cls)?, mode)?.tanh()?,
            other => pool(&hidden, mask, other)?,
        };
        let pooled = mode.dropout(&pooled, self.encoder.config.hidden_dropout_prob)?;
        self.head.forward(&pooled, mode)
    }

    fn classes(&self) -> usize {
        self.head.weight.dims().first().copied().unwrap_or(2)
    }

    /// Mean (or last-token) pooling bypasses the pooler: it would get no gradient, so it is not trained.
    fn unused(&self, name: &str) -> bool {
        self.pooling != Pooling::Cls && name.starts_with("pooler.")
    }

    fn lora_sites(&mut self) -> Vec<LoraSite<'_>> {
        let mut sites = Vec::new();
        for (n, layer) in self.encoder.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{n}");
            let linears = [
                ("query", "attention.self.query", &mut layer.query),
                ("key", "attention.self.key", &mut layer.key),
                ("value", "attention.self.value", &mut layer.value),
                ("attention_output", "attention.output.dense", &mut layer.attention_output),
                ("intermediate", "intermediate.dense", &mut layer.intermediate),
                ("output", "output.dense", &mut layer.output),
            ];
            for (target, module, linear) in linears {
                sites.push(LoraSite { target, module: format!("{p}.{module}"), block: Some(n), linear });
            }
        }
        sites.push(LoraSite { target: "pooler", module: "pooler.dense".into(), block: None, linear: &mut self.pooler });
        sites
    }

    fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> = self.encoder.named_tensors().into_iter().map(|(k, t)| (format!("bert.{k}"), t)).collect();
        for (name, lin) in [("bert.pooler.dense", &self.pooler), ("classifier", &self.head)] {
            tensors.push((format!("{name}.weight"), lin.weight.clone()));
            tensors.push((format!("{name}.bias"), lin.bias.clone()));
        }
        tensors
    }

    /// The encoder and pooler live under the BERT body (`bert.`), the classifier at the top.
    fn hf_name(&self, name: &str) -> String {
        if name.starts_with("classifier.") {
            name.to_string()
        } else {
            format!("bert.{name}")
        }
    }

    fn export_config(&self, config: &mut serde_json::Value) {
        config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
        if self.pooling != Pooling::Cls {
            // Transformers keeps unknown keys as attributes; this one warns a reader that the head was
            // trained on pooled states that BertForSequenceClassification does not compute.
            config["textbench_pooling"] = serde_json::json!(self.pooling);
        }
    }

    /// The pooler and the classifier.
    fn head_flops(&self, batch: usize) -> f64 {
        let (h, k) = (self.encoder.config.hidden_size as f64, self.classes() as f64);
        2.0 * batch as f64 * (h * h + h * k)
    }

    fn head_parameters(&self) -> usize {
        let linear = |l: &Linear| l.weight.elem_count() + l.bias.elem_count();
        linear(&self.pooler) + linear(&self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::flops::Pass;

    fn minilm() -> BertEncoder {
        let config: BertConfig = serde_json::from_str(
            r#"{"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,"intermediate_size":1536,
            "vocab_size":30522,"max_position_embeddings":512,"type_vocab_size":2}"#,
        )
        .unwrap();
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let zeros = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
        let mut raw = std::collections::HashMap::new();
        raw.insert("embeddings.word_embeddings.weight".to_string(), zeros(&[config.vocab_size, h]));
        raw.insert("embeddings.position_embeddings.weight".to_string(), zeros(&[config.max_position_embeddings, h]));
        raw.insert("embeddings.token_type_embeddings.weight".to_string(), zeros(&[2, h]));
        raw.insert("embeddings.LayerNorm.weight".to_string(), zeros(&[h]));
        raw.insert("embeddings.LayerNorm.bias".to_string(), zeros(&[h]));
        for n in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{n}");
            for (name, inp, out) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", h, i),
                ("output.dense", i, h),
            ] {
                raw.insert(format!("{p}.{name}.weight"), zeros(&[out, inp]));
                raw.insert(format!("{p}.{name}.bias"), zeros(&[out]));
            }
            for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
                raw.insert(format!("{p}.{name}.weight"), zeros(&[h]));
                raw.insert(format!("{p}.{name}.bias"), zeros(&[h]));
            }
        }
        BertEncoder::load(&config, &mut Weights::new("minilm".into(), raw, rename, false)).unwrap()
    }

    #[test]
    fn counts_minilm_by_hand() {
        let f = minilm().forward_flops(1, 128);
        // 6 layers × 2 × 128 tokens × (4·384² + 2·384·1536) = 1.359 GFLOP of weight products.
        assert_eq!(f.weights, 6.0 * 2.0 * 128.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0));
        assert_eq!(f.attention, 6.0 * 4.0 * 128.0 * 128.0 * 384.0);
        assert_eq!(f.adapters, 0.0);
        assert!((f.step(Pass::FullTraining) / f.step(Pass::Inference) - 3.0).abs() < 1e-12);
        let frozen = f.step(Pass::FrozenTraining) / f.step(Pass::Inference);
        assert!(frozen > 2.0 && frozen < 3.0, "{frozen}");
    }

    #[test]
    fn flops_scale_with_batch_and_quadratically_in_attention_and_count_adapters() {
        let mut enc = minilm();
        let one = enc.forward_flops(1, 64);
        let four = enc.forward_flops(4, 64);
        assert_eq!(four.weights, 4.0 * one.weights);
        assert_eq!(enc.forward_flops(1, 128).attention, 4.0 * one.attention);
        let adapter = |inp: usize, out: usize| crate::nn::LoraAdapter {
            a: candle_core::Var::zeros((8, inp), DType::F32, &Device::Cpu).unwrap(),
            b: candle_core::Var::zeros((out, 8), DType::F32, &Device::Cpu).unwrap(),
            scale: 2.0,
            dropout: 0.0,
        };
        enc.layers[0].query.lora = Some(adapter(384, 384));
        enc.layers[0].intermediate.lora = Some(adapter(384, 1536));
        assert_eq!(enc.forward_flops(2, 64).adapters, 2.0 * 128.0 * 8.0 * (768.0 + 1920.0));
    }

    #[test]
    fn a_packed_batch_counts_each_sequence_at_its_own_length() {
        let enc = minilm();
        let padded = ForwardFlops::of_batch(&enc, &[64, 16], false);
        assert_eq!(padded, enc.forward_flops(2, 64));
        let packed = ForwardFlops::of_batch(&enc, &[64, 16], true);
        let (long, short) = (enc.forward_flops(1, 64), enc.forward_flops(1, 16));
        assert_eq!(packed.weights, long.weights + short.weights);
        assert_eq!(packed.attention, long.attention + short.attention);
        // Attention is quadratic: the short sequence costs 1/16 of the long one there, not 1/4.
        assert_eq!(short.attention * 16.0, long.attention);
    }

    #[test]
    fn heads_that_do_not_divide_the_width_are_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("textbench-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        for heads in [0, 5] {
            let json = format!(
                r#"{{"vocab_size": 10, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": {heads}, "intermediate_size": 64, "max_position_embeddings": 16}}"#
            );
            std::fs::write(&path, json).unwrap();
            let err = BertConfig::load(&ModelConfig::read(&path).unwrap()).unwrap_err().to_string();
            assert!(err.contains(&format!("num_attention_heads {heads} must be at least 1 and divide hidden_size 32")), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
