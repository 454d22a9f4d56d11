//! Floating-point operations of an encoder, counted by its family from its shapes
//! (`Encoder::forward_flops`): the matrix products only (the convention of MLPerf and of the papers'
//! "model FLOPs"; element-wise work is not counted), a multiply-add being 2 operations. Counted on what the engine computes: the padded batch (PyTorch, or
//! textbench with `--padded`), or each sequence at its own length (textbench's packed batches).

use crate::models::Encoder;

/// Forward FLOPs of one batch, split into products with weights and products between activations
/// (attention scores and context), because training differentiates them differently.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ForwardFlops {
    /// x·Wᵀ of every linear layer (and the classification head's, where counted).
    pub weights: f64,
    /// Q·Kᵀ and P·V.
    pub attention: f64,
    /// The LoRA adapters' two thin products per wrapped layer.
    pub adapters: f64,
}

/// How a step is differentiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Forward only.
    Inference,
    /// Every weight trainable: backward computes input and weight gradients (2× the forward products).
    FullTraining,
    /// Frozen weights: backward needs input gradients through them but no weight gradients.
    FrozenTraining,
}

impl ForwardFlops {
    /// A batch of sequences of these lengths, computed padded to the longest, or packed (each at its
    /// own length: the sum of the sequences' counts).
    pub fn of_batch(encoder: &dyn Encoder, lengths: &[usize], packed: bool) -> ForwardFlops {
        if !packed {
            return encoder.forward_flops(lengths.len(), lengths.iter().copied().max().unwrap_or(0));
        }
        lengths.iter().map(|&len| encoder.forward_flops(1, len)).fold(ForwardFlops::default(), |a, f| ForwardFlops {
            weights: a.weights + f.weights,
            attention: a.attention + f.attention,
            adapters: a.adapters + f.adapters,
        })
    }

    /// FLOPs of one step of the given pass.
    pub fn step(&self, pass: Pass) -> f64 {
        let forward = self.weights + self.attention + self.adapters;
        match pass {
            Pass::Inference => forward,
            // Backward: two products per forward product (gradient of each operand).
            Pass::FullTraining => 3.0 * forward,
            // Backward through frozen weights: the input gradient only; activations' products and
            // adapters still need both operands' gradients.
            Pass::FrozenTraining => forward + self.weights + 2.0 * (self.attention + self.adapters),
        }
    }
}
