//! A BERT encoder on candle, written for training as well as inference: differentiable layer norm and
//! softmax, seeded dropout on hidden states and attention probabilities, and a train/eval switch.
//! Field names mirror the checkpoint's weight names (`encoder.layer.N.attention.self.query`, …).

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use rand_chacha::ChaCha8Rng;

use super::config::BertConfig;
use super::ops;
use super::packing::Packing;

/// Whether dropout is on, and the generator its masks come from.
pub struct Mode<'a> {
    pub train: Option<&'a mut ChaCha8Rng>,
}

impl Mode<'_> {
    pub fn eval() -> Mode<'static> {
        Mode { train: None }
    }

    /// Dropout with probability `p` for a fused op: (p, a mask key drawn from the run's generator), or
    /// None in evaluation or when p is 0. Draws exactly when `dropout` would, so both paths consume
    /// the generator alike.
    pub fn dropout_key(&mut self, p: f64) -> Option<(f64, u64)> {
        use rand::Rng;
        self.train.as_deref_mut().filter(|_| p > 0.0).map(|rng| (p, rng.gen::<u64>()))
    }

    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self.train.as_deref_mut() {
            Some(rng) => ops::dropout(x, p, rng),
            None => Ok(x.clone()),
        }
    }
}

/// The checkpoint's tensors by name, each either frozen (a plain tensor) or trainable (a Var).
pub struct Weights {
    tensors: HashMap<String, Tensor>,
    trainable: bool,
    /// Every weight made trainable, by checkpoint name, in load order.
    pub vars: Vec<(String, Var)>,
    /// Elements of every tensor taken so far.
    loaded: usize,
}

impl Weights {
    /// Normalises names of other BERT checkpoints to MiniLM's: a `bert.` prefix (BertForPreTraining,
    /// BertForSequenceClassification) and the old `gamma`/`beta` layer-norm names.
    pub fn new(raw: HashMap<String, Tensor>, trainable: bool) -> Weights {
        let tensors = raw
            .into_iter()
            .map(|(k, v)| {
                let k = k.strip_prefix("bert.").unwrap_or(&k).replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias");
                (k, v)
            })
            .collect();
        Weights { tensors, trainable, vars: Vec::new(), loaded: 0 }
    }

    /// Whether the checkpoint has a tensor of this name (after name normalisation).
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub(crate) fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| candle_core::Error::Msg(format!("the checkpoint has no tensor {name}")))?;
        if t.dims() != shape {
            candle_core::bail!("{name}: shape {:?} in the checkpoint, expected {shape:?}", t.dims());
        }
        let t = t.to_dtype(DType::F32)?;
        self.loaded += t.elem_count();
        if self.trainable {
            let v = Var::from_tensor(&t)?;
            let t = v.as_tensor().clone();
            self.vars.push((name.to_string(), v));
            Ok(t)
        } else {
            Ok(t)
        }
    }
}

/// A low-rank update of a frozen linear layer (LoRA): y = base(x) + (alpha / r) · B·A·dropout(x).
pub struct LoraAdapter {
    /// [r, in], Kaiming-uniform at start (peft's initialisation).
    pub a: Var,
    /// [out, r], zero at start, so training starts from the base model exactly.
    pub b: Var,
    pub scale: f64,
    pub dropout: f64,
}

/// y = x·Wᵀ + b, with W stored [out, in] as in the checkpoint; optionally with a LoRA adapter.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
    pub lora: Option<LoraAdapter>,
}

impl Linear {
    pub(crate) fn load(w: &mut Weights, prefix: &str, inp: usize, out: usize) -> Result<Linear> {
        Ok(Linear { weight: w.get(&format!("{prefix}.weight"), &[out, inp])?, bias: w.get(&format!("{prefix}.bias"), &[out])?, lora: None })
    }

    /// x is [..., in]; the leading dimensions are flattened so that each product is one 2-D matrix
    /// product: a batched product with a broadcast weight would, in backward, materialise one weight
    /// gradient per batch element and then sum them. On CPU the layer (with its adapter, whose base is
    /// frozen) is one fused op; elsewhere it is composed of candle ops.
    pub fn forward(&self, x: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        self.forward_then(x, Then::Nothing, mode)
    }

    /// `forward`, then an activation or dropout; on CPU without an adapter, inside the same op.
    pub fn forward_then(&self, x: &Tensor, then: Then<'_>, mode: &mut Mode<'_>) -> Result<Tensor> {
        if x.rank() == 2 {
            return self.forward_rows(x, then, mode);
        }
        let mut dims = x.dims().to_vec();
        let inp = dims.pop().unwrap_or(0);
        let rows: usize = dims.iter().product();
        let y = self.forward_rows(&x.reshape((rows, inp))?, then, mode)?;
        dims.push(y.dim(1)?);
        y.reshape(dims)
    }

    /// `forward_then` for x [rows, in]. The encoder keeps its hidden states in this shape: a reshape is
    /// a graph node, and candle's backward gives each node's input a zero-filled gradient and adds to
    /// it, two passes over the tensor for nothing.
    fn forward_rows(&self, x2: &Tensor, then: Then<'_>, mode: &mut Mode<'_>) -> Result<Tensor> {
        let cpu = super::kernels::fusable(x2);
        let frozen = !self.weight.is_variable() && !self.bias.is_variable();
        match &self.lora {
            Some(l) if cpu && frozen => {
                let dropout = mode.dropout_key(l.dropout);
                let y = super::fused_lora::lora_linear(x2, &self.weight, &self.bias, l.a.as_tensor(), l.b.as_tensor(), l.scale, dropout)?;
                then.apply(&y, mode)
            }
            None if cpu && then.fusable() => {
                // Drawn here, where the separate dropout would draw it: the generator's sequence and
                // so the masks are the same either way.
                let epilogue = match then {
                    Then::Activation(_) => super::kernels::Epilogue { gelu: true, dropout: None },
                    Then::Dropout(p) => super::kernels::Epilogue { gelu: false, dropout: mode.dropout_key(p) },
                    Then::Nothing => super::kernels::Epilogue::default(),
                };
                super::kernels::linear_then(x2, &self.weight, &self.bias, epilogue)
            }
            None if cpu => then.apply(&super::kernels::linear(x2, &self.weight, &self.bias)?, mode),
            lora => {
                let y = self.composed(x2, lora.as_ref(), mode)?;
                then.apply(&y, mode)
            }
        }
    }

    /// `forward` from candle ops, for x [rows, in].
    fn composed(&self, x: &Tensor, lora: Option<&LoraAdapter>, mode: &mut Mode<'_>) -> Result<Tensor> {
        let y = x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        match lora {
            None => Ok(y),
            Some(l) => {
                let x = mode.dropout(x, l.dropout)?;
                let update = x.matmul(&l.a.as_tensor().t()?)?.matmul(&l.b.as_tensor().t()?)?;
                y + (update * l.scale)?
            }
        }
    }
}

/// What follows a linear layer in the encoder.
#[derive(Debug, Clone, Copy)]
pub enum Then<'a> {
    Nothing,
    /// The config's `hidden_act`.
    Activation(&'a str),
    /// Dropout with this probability (in training).
    Dropout(f64),
}

impl Then<'_> {
    /// Whether the fused linear op can apply it: the erf GELU, dropout, or nothing.
    fn fusable(self) -> bool {
        !matches!(self, Then::Activation(name) if name != "gelu")
    }

    /// As separate ops, after the layer.
    fn apply(self, y: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        match self {
            Then::Nothing => Ok(y.clone()),
            Then::Activation(name) => ops::activation(y, name),
            Then::Dropout(p) => mode.dropout(y, p),
        }
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(w: &mut Weights, prefix: &str, size: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm { weight: w.get(&format!("{prefix}.weight"), &[size])?, bias: w.get(&format!("{prefix}.bias"), &[size])?, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }

    /// Of a sublayer's output plus its residual input.
    fn forward_residual(&self, y: &Tensor, residual: &Tensor) -> Result<Tensor> {
        ops::add_layer_norm(y, residual, &self.weight, &self.bias, self.eps)
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

pub struct Encoder {
    pub config: BertConfig,
    /// Whether a right-padded batch is computed without its padding on the CPU (`packing`); on by
    /// default. Off, the padding is computed and masked, as PyTorch's BERT does: `bench perf --padded`
    /// compares the engines at equal work that way.
    pub packing: bool,
    parameters: usize,
    embeddings: Embeddings,
    pub layers: Vec<Layer>,
}

impl Encoder {
    pub fn load(config: &BertConfig, w: &mut Weights) -> Result<Encoder> {
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
        Ok(Encoder { config: config.clone(), packing: true, parameters: w.loaded - before, embeddings, layers })
    }

    /// Every weight by its checkpoint name (LoRA adapters not included).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
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

    /// Number of weights (elements of every tensor).
    pub fn parameter_count(&self) -> usize {
        self.parameters
    }

    /// Last hidden states [batch, seq, hidden] for token ids and a 0/1 attention mask, both [batch, seq].
    /// On the CPU a right-padded batch is computed without its padding (`packing`), and the padding's
    /// hidden states come back as zeros; elsewhere, for another mask, or with `packing` off, padded
    /// and masked.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, mode: &mut Mode<'_>) -> Result<Tensor> {
        let cfg = &self.config;
        let (b, t) = ids.dims2()?;
        if t > cfg.max_position_embeddings {
            candle_core::bail!("sequence of {t} tokens exceeds max_position_embeddings {}", cfg.max_position_embeddings);
        }
        let e = &self.embeddings;
        if self.packing && super::kernels::fusable(&e.word) {
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
            x = layer.forward(&x, sequences, &self.config, mode)?;
        }
        Ok(x)
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
        let fused = super::kernels::fusable(&q);
        let context = match *sequences {
            Sequences::Packed(lengths) => {
                let dropout = mode.dropout_key(cfg.attention_probs_dropout_prob);
                super::fused_attention::attention_packed(&q, &k, &v, lengths, heads, scale, dropout)?
            }
            Sequences::Padded { bias, batch, seq } if fused => {
                let dropout = mode.dropout_key(cfg.attention_probs_dropout_prob);
                super::fused_attention::attention(&q, &k, &v, &bias.reshape((batch, seq))?, heads, scale, dropout)?
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

/// How a sequence's hidden states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over real (non-padding) tokens: sentence-transformers' pooling for MiniLM.
    #[default]
    Mean,
    /// The hidden state of the [CLS] token.
    Cls,
}

impl Pooling {
    pub fn is_cls(&self) -> bool {
        *self == Pooling::Cls
    }
}

pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Mean => {
            let m = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
            let summed = hidden.broadcast_mul(&m)?.sum(1)?;
            summed.broadcast_div(&m.sum(1)?.clamp(1e-9, f64::MAX)?)
        }
    }
}

/// The device a spec asks for.
pub fn device(cuda: bool) -> Result<Device> {
    if cuda {
        Device::new_cuda(0)
    } else {
        Ok(Device::Cpu)
    }
}
