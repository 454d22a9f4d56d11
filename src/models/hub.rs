//! Hugging Face hub ids (`org/name`): resolved from the local Hugging Face cache (`$HF_HOME/hub`,
//! default `~/.cache/huggingface/hub`), and downloaded into it with the hf-hub crate when absent, unless
//! `HF_HUB_OFFLINE` is set. `HF_ENDPOINT` points at a mirror. Weights are model.safetensors, or the
//! shards a model.safetensors.index.json names, or pytorch_model.bin.

use std::path::PathBuf;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::Cache;

use super::checkpoint::{shards, SHARD_INDEX};
use crate::error::ModelError;

/// `org/name` with the characters the hub allows.
pub fn is_hub_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "yes"))
}

/// The snapshot folder holding config.json, tokenizer.json and the weights of a hub model.
pub fn resolve(id: &str) -> Result<PathBuf, ModelError> {
    let cache = Cache::from_env();
    let repo = cache.model(id.to_string());
    // A sharded checkpoint is cached when its index and every shard it names are.
    let sharded = repo.get(SHARD_INDEX).filter(|index| shards(index).is_ok_and(|files| files.iter().all(|f| f.is_file())));
    let weights = repo.get("model.safetensors").or(sharded).or_else(|| repo.get("pytorch_model.bin"));
    if let (Some(config), Some(_), Some(_)) = (repo.get("config.json"), repo.get("tokenizer.json"), weights) {
        return Ok(config.parent().expect("a file in a snapshot folder").to_path_buf());
    }
    let where_ = cache.path().join(format!("models--{}", id.replace('/', "--")));
    if offline() {
        return Err(ModelError::Missing { path: where_, hint: format!("{id} is not in the local Hugging Face cache, and HF_HUB_OFFLINE is set") });
    }
    let fail = |e: hf_hub::api::sync::ApiError| ModelError::Missing {
        path: where_.clone(),
        hint: format!("{id}: not in the local Hugging Face cache, and downloading it failed: {e}"),
    };
    tracing::warn!("downloading {id} from the Hugging Face hub into {}", cache.path().display());
    let api = ApiBuilder::from_env().with_progress(false).build().map_err(fail)?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(fail)?;
    repo.get("tokenizer.json").map_err(fail)?;
    if repo.get("model.safetensors").is_err() {
        match repo.get(SHARD_INDEX) {
            Ok(index) => {
                for shard in shards(&index)? {
                    let name = shard.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    repo.get(&name).map_err(fail)?;
                }
            }
            Err(_) => {
                repo.get("pytorch_model.bin").map_err(fail)?;
            }
        }
    }
    Ok(config.parent().expect("a file in a snapshot folder").to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::is_hub_id;

    #[test]
    fn hub_ids() {
        assert!(is_hub_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(is_hub_id("google-bert/bert-base-uncased"));
        assert!(!is_hub_id("bert-base-uncased"));
        assert!(!is_hub_id("../models/x"));
        assert!(!is_hub_id("/abs/path"));
    }
}
