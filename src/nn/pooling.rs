//! How a sequence's hidden states become one vector.

use candle_core::{Result, Tensor, D};

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
