//! Pooled sentence embeddings from a frozen encoder, in batches sorted by length (so each batch pads
//! to about its own length, not to the longest text overall), returned in the input order.

use candle_core::{Device, Tensor};

use super::{Backbone, Checkpoint};
use crate::error::ModelError;
use crate::nn::{pool, Mode, Pooling};

/// Texts in the order to batch them: by token count, ties by position (deterministic).
pub fn length_order(ids: &[Vec<u32>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| (ids[i].len(), i));
    order
}

/// Runs `f` on batches of similar lengths, each padded to its own longest text, and returns its results
/// (one per text in the batch) in the input order. Each batch runs on rayon's pool (`kernels::in_pool`).
pub fn by_length<T: Clone + Default + Send>(
    checkpoint: &Checkpoint,
    ids: &[Vec<u32>],
    batch_size: usize,
    device: &Device,
    on_batch: &dyn Fn(usize),
    mut f: impl FnMut(&Tensor, &Tensor) -> candle_core::Result<Vec<T>> + Send,
) -> Result<Vec<T>, ModelError> {
    let mut out = vec![T::default(); ids.len()];
    for chunk in length_order(ids).chunks(batch_size.max(1)) {
        let seqs: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
        let (tok, mask) = checkpoint.batch(&seqs, device)?;
        for (&i, v) in chunk.iter().zip(crate::nn::kernels::in_pool(device, || f(&tok, &mask))?) {
            out[i] = v;
        }
        on_batch(chunk.len());
    }
    Ok(out)
}

/// Embeddings [n, hidden] of already tokenized texts, row i for text i.
pub fn embed_ids(
    backbone: &Backbone,
    ids: &[Vec<u32>],
    pooling: Pooling,
    batch_size: usize,
    device: &Device,
    on_batch: &dyn Fn(usize),
) -> Result<Vec<Vec<f32>>, ModelError> {
    by_length(&backbone.checkpoint, ids, batch_size, device, on_batch, |tok, mask| {
        let hidden = backbone.encoder.forward(tok, mask, &mut Mode::inference())?;
        pool(&hidden, mask, pooling)?.to_device(&Device::Cpu)?.to_vec2()
    })
}

/// Texts' token ids and pooled embeddings, one of each per text.
pub type IdsAndEmbeddings = (Vec<Vec<u32>>, Vec<Vec<f32>>);

/// Convenience: tokenize and embed.
pub fn embed_texts<S: AsRef<str>>(
    backbone: &Backbone,
    texts: &[S],
    pooling: Pooling,
    batch_size: usize,
    device: &Device,
) -> Result<IdsAndEmbeddings, ModelError> {
    let ids = backbone.checkpoint.tokenize(texts)?;
    let emb = embed_ids(backbone, &ids, pooling, batch_size, device, &|_| {})?;
    Ok((ids, emb))
}

/// [n, hidden] as one tensor (for heads trained on the embeddings).
pub fn to_tensor(rows: &[Vec<f32>], device: &Device) -> Result<Tensor, ModelError> {
    let dim = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (rows.len(), dim), device)?)
}
