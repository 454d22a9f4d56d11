//! How a sequence's hidden states become one vector.

use candle_core::{DType, Result, Tensor, D};

/// How a sequence's hidden states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean over real (non-padding) tokens: sentence-transformers' pooling for MiniLM.
    #[default]
    Mean,
    /// The hidden state of the [CLS] token (the first).
    Cls,
    /// The hidden state of the last real token: what a decoder's state has seen all of the text by.
    Last,
}

impl Pooling {
    pub fn is_cls(&self) -> bool {
        *self == Pooling::Cls
    }
}

pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
        Pooling::Last => {
            let (b, t, h) = hidden.dims3()?;
            // Each row's last real token, for right padding (an all-padding row reads its first).
            let lengths = mask.to_dtype(DType::U32)?.sum(1)?.to_vec1::<u32>()?;
            let rows: Vec<u32> = lengths.iter().enumerate().map(|(i, &n)| (i * t) as u32 + n.saturating_sub(1)).collect();
            hidden.reshape((b * t, h))?.index_select(&Tensor::from_vec(rows, b, hidden.device())?, 0)
        }
        Pooling::Mean => {
            let m = mask.to_dtype(hidden.dtype())?.unsqueeze(D::Minus1)?;
            let summed = hidden.broadcast_mul(&m)?.sum(1)?;
            summed.broadcast_div(&m.sum(1)?.clamp(1e-9, f64::MAX)?)
        }
    }
}
