//! A BERT-family checkpoint folder (Hugging Face layout): config.json, model.safetensors or
//! pytorch_model.bin, tokenizer.json. Loads the encoder and its tokenizer, and encodes batches of texts
//! padded only to the longest text in the batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use super::config::BertConfig;
use super::encoder::{Encoder, Weights};
use crate::error::ModelError;

pub struct Backbone {
    pub dir: PathBuf,
    pub encoder: Encoder,
    pub tokenizer: Tokenizer,
    /// SHA-256 of the weights file: what the backbone is, wherever it is stored.
    pub fingerprint: String,
}

/// Finds a model folder: a path as given, else a folder of that name under `models_dir`, else, for a
/// hub id such as `sentence-transformers/all-MiniLM-L6-v2`, the Hugging Face cache or the hub.
pub fn locate(model: &str, models_dir: &Path) -> Result<PathBuf, ModelError> {
    let direct = PathBuf::from(model);
    for candidate in [direct.clone(), models_dir.join(model)] {
        if candidate.join("config.json").is_file() {
            return Ok(candidate);
        }
    }
    if super::hub::is_hub_id(model) {
        return super::hub::resolve(model);
    }
    Err(ModelError::Missing {
        path: direct,
        hint: format!(
            "no model folder (config.json, model.safetensors, tokenizer.json) here or under the models directory {} \
             (set --models-dir or BENCH_MODELS_DIR), and not a hub id (org/name)",
            models_dir.display()
        ),
    })
}

fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    ["model.safetensors", "pytorch_model.bin"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::Missing { path: dir.to_path_buf(), hint: "the model folder has neither model.safetensors nor pytorch_model.bin".into() })
}

fn read_weights(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    if path.extension().is_some_and(|e| e == "bin") {
        let tensors = candle_core::pickle::read_all(path).map_err(|e| ModelError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        tensors.into_iter().map(|(k, t)| Ok((k, t.to_device(device)?))).collect()
    } else {
        candle_core::safetensors::load(path, device).map_err(|e| ModelError::Invalid { path: path.to_path_buf(), message: e.to_string() })
    }
}

impl Backbone {
    /// Loads a model folder; `trainable` makes every encoder weight a Var (full fine-tuning).
    pub fn load(dir: &Path, max_length: usize, trainable: bool, device: &Device) -> Result<(Backbone, Weights), ModelError> {
        let config = BertConfig::load(&dir.join("config.json"))?;
        let wpath = weights_file(dir)?;
        let bytes = std::fs::read(&wpath).map_err(|source| ModelError::Io { path: wpath.clone(), source })?;
        let fingerprint = hex::encode(Sha256::digest(&bytes));
        drop(bytes);
        let mut weights = Weights::new(read_weights(&wpath, device)?, trainable);
        let encoder = Encoder::load(&config, &mut weights).map_err(|e| ModelError::Invalid { path: wpath.clone(), message: e.to_string() })?;
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"), max_length.min(config.max_position_embeddings))?;
        Ok((Backbone { dir: dir.to_path_buf(), encoder, tokenizer, fingerprint }, weights))
    }

    /// Token ids of each text ([CLS] … [SEP], truncated to the maximum length, no padding).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, ModelError> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let enc = self.tokenizer.encode_batch(texts, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Pads token id lists to the longest one: (ids, mask), both [batch, longest].
    pub fn batch(&self, ids: &[&[u32]], device: &Device) -> Result<(Tensor, Tensor), ModelError> {
        let longest = ids.iter().map(|i| i.len()).max().unwrap_or(0);
        let pad = self.encoder.config.pad_token_id;
        let mut flat = Vec::with_capacity(ids.len() * longest);
        let mut mask = Vec::with_capacity(ids.len() * longest);
        for seq in ids {
            flat.extend_from_slice(seq);
            flat.extend(std::iter::repeat_n(pad, longest - seq.len()));
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - seq.len()));
        }
        Ok((Tensor::from_vec(flat, (ids.len(), longest), device)?, Tensor::from_vec(mask, (ids.len(), longest), device)?))
    }
}

/// MiniLM's tokenizer.json fixes padding to 128 tokens: it is switched off here (batches are padded to
/// their own longest text), and truncation set to the run's maximum length.
fn load_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer, ModelError> {
    let mut tok = Tokenizer::from_file(path).map_err(|e| ModelError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams { max_length, ..Default::default() })).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(tok)
}
