//! A BERT-family checkpoint's config.json (the fields the encoder needs; others are ignored).

use std::path::Path;

use serde::Deserialize;

use crate::error::ModelError;

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
    pub fn load(path: &Path) -> Result<BertConfig, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        let cfg: BertConfig = serde_json::from_str(&text)
            .map_err(|e| ModelError::Invalid { path: path.to_path_buf(), message: format!("line {}, column {}: {e}", e.line(), e.column()) })?;
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(ModelError::Invalid {
                path: path.to_path_buf(),
                message: format!("num_attention_heads {} must be at least 1 and divide hidden_size {}", cfg.num_attention_heads, cfg.hidden_size),
            });
        }
        if !matches!(cfg.hidden_act.as_str(), "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu") {
            return Err(ModelError::Invalid {
                path: path.to_path_buf(),
                message: format!("unsupported hidden_act {:?} (gelu, gelu_new, relu)", cfg.hidden_act),
            });
        }
        Ok(cfg)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let err = BertConfig::load(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("num_attention_heads {heads} must be at least 1 and divide hidden_size 32")), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
