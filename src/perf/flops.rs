//! Floating-point operations of a BERT encoder, counted from its shapes: the matrix products only (the
//! convention of MLPerf and of the papers' "model FLOPs"; element-wise work is not counted), a
//! multiply-add being 2 operations. Counted on what the engine computes: the padded batch (PyTorch, or
//! textbench with `--padded`), or each sequence at its own length (textbench's packed batches).

use crate::methods::transformer::config::BertConfig;

/// Forward FLOPs of one batch, split into products with weights and products between activations
/// (attention scores and context), because training differentiates them differently.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ForwardFlops {
    /// x·Wᵀ of every linear layer (q, k, v, attention output, intermediate, output; pooler and head).
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
    /// A batch of `batch` sequences padded to `seq` tokens; `classifier` adds the pooler and a 2-way
    /// head; `adapters` are the LoRA rank and the (in, out) widths of every wrapped encoder layer.
    pub fn of(cfg: &BertConfig, batch: usize, seq: usize, classifier: bool, adapters: Option<(usize, &[(usize, usize)])>) -> ForwardFlops {
        let (b, t, h, i) = (batch as f64, seq as f64, cfg.hidden_size as f64, cfg.intermediate_size as f64);
        let layers = cfg.num_hidden_layers as f64;
        let tokens = b * t;
        let per_layer_weights = 2.0 * tokens * (4.0 * h * h + 2.0 * h * i);
        let per_layer_attention = 2.0 * 2.0 * b * t * t * h;
        let head = if classifier { 2.0 * b * (h * h + 2.0 * h) } else { 0.0 };
        // Each wrapped layer adds x·Aᵀ (in → r) and then ·Bᵀ (r → out) for every token.
        let adapters = adapters.map_or(0.0, |(rank, dims)| dims.iter().map(|&(inp, out)| 2.0 * tokens * rank as f64 * (inp + out) as f64).sum());
        ForwardFlops { weights: layers * per_layer_weights + head, attention: layers * per_layer_attention, adapters }
    }

    /// A batch of sequences of these lengths, computed padded to the longest, or packed (each at its
    /// own length: the sum of the sequences' counts).
    pub fn of_batch(cfg: &BertConfig, lengths: &[usize], packed: bool, classifier: bool, adapters: Option<(usize, &[(usize, usize)])>) -> ForwardFlops {
        if !packed {
            return ForwardFlops::of(cfg, lengths.len(), lengths.iter().copied().max().unwrap_or(0), classifier, adapters);
        }
        lengths.iter().map(|&len| ForwardFlops::of(cfg, 1, len, classifier, adapters)).fold(ForwardFlops::default(), |a, f| ForwardFlops {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> BertConfig {
        serde_json::from_str(
            r#"{"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,"intermediate_size":1536,
            "vocab_size":30522,"max_position_embeddings":512,"type_vocab_size":2}"#,
        )
        .unwrap()
    }

    #[test]
    fn counts_minilm_by_hand() {
        let f = ForwardFlops::of(&minilm(), 1, 128, false, None);
        // 6 layers × 2 × 128 tokens × (4·384² + 2·384·1536) = 1.359 GFLOP of weight products.
        assert_eq!(f.weights, 6.0 * 2.0 * 128.0 * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0));
        assert_eq!(f.attention, 6.0 * 4.0 * 128.0 * 128.0 * 384.0);
        assert!((f.step(Pass::FullTraining) / f.step(Pass::Inference) - 3.0).abs() < 1e-12);
        let frozen = f.step(Pass::FrozenTraining) / f.step(Pass::Inference);
        assert!(frozen > 2.0 && frozen < 3.0, "{frozen}");
    }

    #[test]
    fn scales_with_batch_and_quadratically_in_attention() {
        let cfg = minilm();
        let one = ForwardFlops::of(&cfg, 1, 64, false, None);
        let four = ForwardFlops::of(&cfg, 4, 64, false, None);
        assert_eq!(four.weights, 4.0 * one.weights);
        let long = ForwardFlops::of(&cfg, 1, 128, false, None);
        assert_eq!(long.attention, 4.0 * one.attention);
        let lora = ForwardFlops::of(&cfg, 2, 64, false, Some((8, &[(384, 384), (384, 1536)])));
        assert_eq!(lora.adapters, 2.0 * 128.0 * 8.0 * (768.0 + 1920.0));
    }

    #[test]
    fn a_packed_batch_counts_each_sequence_at_its_own_length() {
        let cfg = minilm();
        let adapters = Some((8, &[(384, 384)][..]));
        let padded = ForwardFlops::of_batch(&cfg, &[64, 16], false, true, adapters);
        assert_eq!(padded, ForwardFlops::of(&cfg, 2, 64, true, adapters));
        let packed = ForwardFlops::of_batch(&cfg, &[64, 16], true, true, adapters);
        let (long, short) = (ForwardFlops::of(&cfg, 1, 64, true, adapters), ForwardFlops::of(&cfg, 1, 16, true, adapters));
        assert_eq!(packed.weights, long.weights + short.weights);
        assert_eq!(packed.attention, long.attention + short.attention);
        assert_eq!(packed.adapters, long.adapters + short.adapters);
        // Attention is quadratic: the short sequence costs 1/16 of the long one there, not 1/4.
        assert_eq!(short.attention * 16.0, long.attention);
    }
}
