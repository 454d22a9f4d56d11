//! Layers with a train/eval switch: a linear layer that may carry a LoRA adapter (one fused op on the
//! CPU), layer norm (plain or of a residual sum), and what may follow a linear layer (an activation or
//! dropout, fused into it where the kernel can).

use candle_core::{Result, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::ops;
use super::weights::Weights;

/// Whether dropout is on, and the generator its masks come from; and whether the forward pass keeps
/// the graph a backward pass needs.
pub struct Mode<'a> {
    pub train: Option<&'a mut ChaCha8Rng>,
    /// False for inference (`Mode::inference`): see `between_layers`.
    keep_graph: bool,
}

impl<'a> Mode<'a> {
    /// Training: dropout on, masks drawn from `rng`.
    pub fn train(rng: &'a mut ChaCha8Rng) -> Mode<'a> {
        Mode { train: Some(rng), keep_graph: true }
    }

    /// Dropout off, the graph kept: a deterministic pass that can still be differentiated (gradient checks).
    pub fn eval() -> Mode<'static> {
        Mode { train: None, keep_graph: true }
    }

    /// Dropout off and no backward pass to come: predictions and embeddings.
    pub fn inference() -> Mode<'static> {
        Mode { train: None, keep_graph: false }
    }

    /// Dropout with probability `p` for a fused op: (p, a mask key drawn from the run's generator), or
    /// None in evaluation or when p is 0. Draws exactly when `dropout` would, so both paths consume
    /// the generator alike.
    pub fn dropout_key(&mut self, p: f64) -> Option<(f64, u64)> {
        use rand::Rng;
        self.train.as_deref_mut().filter(|_| p > 0.0).map(|rng| (p, rng.gen::<u64>()))
    }

    /// A layer's output as the next layer's input. In inference it is detached from the graph: a
    /// tensor computed from trainable weights keeps every input it was computed from alive for a
    /// backward pass, so without the cut a forward pass of a trained model would hold all its layers'
    /// activations until the end, as training does (5 GB for a batch of 64 texts of 128 tokens through
    /// SmolLM2-135M with LoRA), where one layer's at a time is enough. candle has no no-grad switch.
    pub fn between_layers(&self, x: Tensor) -> Tensor {
        if self.keep_graph {
            x
        } else {
            x.detach()
        }
    }

    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self.train.as_deref_mut() {
            Some(rng) => ops::dropout(x, p, rng),
            None => Ok(x.clone()),
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
    pub fn load(w: &mut Weights, prefix: &str, inp: usize, out: usize) -> Result<Linear> {
        Ok(Linear { weight: w.get(&format!("{prefix}.weight"), &[out, inp])?, bias: w.get(&format!("{prefix}.bias"), &[out])?, lora: None })
    }

    /// Matrix-product FLOPs of its adapter over `tokens` rows: x·Aᵀ (in → r), then ·Bᵀ (r → out); 0
    /// without one.
    pub fn adapter_flops(&self, tokens: f64) -> f64 {
        match (&self.lora, self.weight.dims2()) {
            (Some(l), Ok((out, inp))) => 2.0 * tokens * l.a.dims()[0] as f64 * (inp + out) as f64,
            _ => 0.0,
        }
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
                let y = super::lora::lora_linear(x2, &self.weight, &self.bias, l.a.as_tensor(), l.b.as_tensor(), l.scale, dropout)?;
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
        // A weight kept in bf16 (`Weights::keep_bf16`) is widened for the product.
        let y = x.matmul(&self.weight.to_dtype(x.dtype())?.t()?)?.broadcast_add(&self.bias)?;
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

pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn load(w: &mut Weights, prefix: &str, size: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm { weight: w.get(&format!("{prefix}.weight"), &[size])?, bias: w.get(&format!("{prefix}.bias"), &[size])?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }

    /// Of a sublayer's output plus its residual input.
    pub fn forward_residual(&self, y: &Tensor, residual: &Tensor) -> Result<Tensor> {
        ops::add_layer_norm(y, residual, &self.weight, &self.bias, self.eps)
    }
}
