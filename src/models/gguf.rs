//! GGUF files, the form llama.cpp users share decoder models in: every tensor de-quantized to f32 on
//! load (LoRA then trains on top, QLoRA-style) and renamed to its Hugging Face name, and the config
//! read from the metadata.
//!
//! llama.cpp's converter permutes the rows of LLaMA's Q and K projections for its interleaved rotary
//! layout: within each head, row 2i + j of the file is row j · d/2 + i of the Hugging Face weight.
//! Hugging Face's rotate-half layout needs them put back (transformers' GGUF loader does the same);
//! Qwen2 files are written unpermuted.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use crate::error::ModelError;

/// An open GGUF file: its metadata and tensor directory, and the reader its tensors come from.
pub struct Gguf {
    content: Content,
    reader: BufReader<File>,
    path: std::path::PathBuf,
}

impl Gguf {
    pub fn open(path: &Path) -> Result<Gguf, ModelError> {
        let file = File::open(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| invalid(path, format!("not a GGUF file textbench can read: {e}")))?;
        Ok(Gguf { content, reader, path: path.to_path_buf() })
    }

    fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn arch(&self) -> Result<String, ModelError> {
        match self.meta("general.architecture").map(Value::to_string) {
            Some(Ok(arch)) => Ok(arch.clone()),
            _ => Err(invalid(&self.path, "no general.architecture in the metadata".into())),
        }
    }

    /// A whole-number metadata value of the architecture (`{arch}.{key}`).
    fn arch_usize(&self, arch: &str, key: &str) -> Result<Option<usize>, ModelError> {
        let full = format!("{arch}.{key}");
        match self.meta(&full) {
            None => Ok(None),
            Some(v) => {
                v.to_u64().map(|n| Some(n as usize)).or_else(|_| v.to_u32().map(|n| Some(n as usize))).map_err(|e| invalid(&self.path, format!("{full}: {e}")))
            }
        }
    }

    fn arch_f64(&self, arch: &str, key: &str) -> Option<f64> {
        self.meta(&format!("{arch}.{key}")).and_then(|v| v.to_f32().map(f64::from).or_else(|_| v.to_f64()).ok())
    }

    /// Hugging Face's config.json for the model, from the metadata (the fields the decoder family
    /// reads).
    pub fn config(&self) -> Result<serde_json::Value, ModelError> {
        let arch = self.arch()?;
        if !matches!(arch.as_str(), "llama" | "qwen2") {
            return Err(invalid(&self.path, format!("architecture {arch:?}: textbench reads llama and qwen2 GGUF files")));
        }
        let need = |key: &str| self.arch_usize(&arch, key)?.ok_or_else(|| invalid(&self.path, format!("no {arch}.{key} in the metadata")));
        let heads = need("attention.head_count")?;
        let tokens = self.meta("tokenizer.ggml.tokens").and_then(|v| v.to_vec().ok()).map(Vec::len);
        let vocab = match self.arch_usize(&arch, "vocab_size")? {
            Some(n) => n,
            None => tokens.ok_or_else(|| invalid(&self.path, format!("neither {arch}.vocab_size nor tokenizer.ggml.tokens in the metadata")))?,
        };
        let token_id = |key: &str| self.meta(&format!("tokenizer.ggml.{key}")).and_then(|v| v.to_u32().ok());
        let mut config = serde_json::json!({
            "model_type": arch,
            "vocab_size": vocab,
            "hidden_size": need("embedding_length")?,
            "intermediate_size": need("feed_forward_length")?,
            "num_hidden_layers": need("block_count")?,
            "num_attention_heads": heads,
            "num_key_value_heads": self.arch_usize(&arch, "attention.head_count_kv")?.unwrap_or(heads),
            "max_position_embeddings": need("context_length")?,
            "rms_norm_eps": self.arch_f64(&arch, "attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
            "rope_theta": self.arch_f64(&arch, "rope.freq_base").unwrap_or(10_000.0),
            "tie_word_embeddings": !self.content.tensor_infos.contains_key("output.weight"),
            "hidden_act": "silu",
            "bos_token_id": token_id("bos_token_id"),
            "eos_token_id": token_id("eos_token_id"),
            "pad_token_id": token_id("padding_token_id"),
        });
        if let Some(dh) = self.arch_usize(&arch, "attention.key_length")? {
            config["head_dim"] = dh.into();
        }
        Ok(config)
    }

    /// Every tensor, de-quantized to f32 on `device`, under its Hugging Face name (LlamaForCausalLM's:
    /// `model.layers.N.self_attn.q_proj.weight`, …), Q and K rows in Hugging Face's order.
    pub fn tensors(&mut self, device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
        let arch = self.arch()?;
        let permuted = arch == "llama";
        let heads = self.arch_usize(&arch, "attention.head_count")?.unwrap_or(1);
        let kv_heads = self.arch_usize(&arch, "attention.head_count_kv")?.unwrap_or(heads);
        let mut names: Vec<String> = self.content.tensor_infos.keys().cloned().collect();
        names.sort();
        let mut out = HashMap::with_capacity(names.len());
        for name in names {
            let at = |e: candle_core::Error| invalid(&self.path, format!("tensor {name}: {e}"));
            let q = self.content.tensor(&mut self.reader, &name, device).map_err(at)?;
            let mut t = q.dequantize(device).map_err(at)?;
            if permuted && name.ends_with("attn_q.weight") {
                t = unpermute(&t, heads).map_err(at)?;
            } else if permuted && name.ends_with("attn_k.weight") {
                t = unpermute(&t, kv_heads).map_err(at)?;
            }
            out.insert(hf_name(&name), t);
        }
        Ok(out)
    }
}

impl Gguf {
    /// The chat template the file carries (`tokenizer.chat_template`), if any.
    pub fn chat_template(&self) -> Option<String> {
        self.meta("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, ModelError> {
        let values = self.meta(key).ok_or_else(|| invalid(&self.path, format!("no {key} in the metadata")))?;
        let values = values.to_vec().map_err(|e| invalid(&self.path, format!("{key}: {e}")))?;
        values.iter().map(|v| v.to_string().cloned().map_err(|e| invalid(&self.path, format!("{key}: {e}")))).collect()
    }

    /// The tokenizer the file's own vocabulary, merges and pre-tokenizer type describe, for a GGUF
    /// shared without its tokenizer.json: byte-level BPE (llama.cpp's `gpt2` model), the control
    /// tokens (type 3) and user-defined ones (type 4) as added tokens, BOS prepended where the file says
    /// so. Pre-tokenizer types llama.cpp knows but this does not are an error saying to put the
    /// tokenizer.json beside the file.
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer, ModelError> {
        let model = self.meta("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
        if model != "gpt2" {
            return Err(invalid(
                &self.path,
                format!(
                    "tokenizer.ggml.model {model:?}: textbench builds byte-level BPE (gpt2) tokenizers only; put the model's tokenizer.json beside the file"
                ),
            ));
        }
        let pre = self.meta("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).cloned().unwrap_or_else(|| "default".into());
        let byte_level = |use_regex: bool| serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
        let pre_tokenizer = match pre.as_str() {
            "default" | "gpt-2" => byte_level(true),
            // Each digit alone, then GPT-2's split (llama.cpp's "smollm").
            "smollm" => serde_json::json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            "llama-bpe" | "llama3" => split_then_bytes(LLAMA3_SPLIT, byte_level(false)),
            "qwen2" => split_then_bytes(QWEN2_SPLIT, byte_level(false)),
            other => {
                return Err(invalid(
                    &self.path,
                    format!("tokenizer.ggml.pre {other:?} is a pre-tokenizer textbench cannot build; put the model's tokenizer.json beside the file"),
                ))
            }
        };
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let merges: Vec<serde_json::Value> = self
            .strings("tokenizer.ggml.merges")?
            .iter()
            .map(|m| m.split_once(' ').map(|(a, b)| serde_json::json!([a, b])).ok_or_else(|| invalid(&self.path, format!("merge {m:?} is not two tokens"))))
            .collect::<Result<_, _>>()?;
        let types: Vec<i64> = match self.meta("tokenizer.ggml.token_type").and_then(|v| v.to_vec().ok()) {
            Some(values) => values.iter().map(|v| v.to_i32().map(i64::from).unwrap_or(1)).collect(),
            None => vec![1; tokens.len()],
        };
        let added: Vec<serde_json::Value> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, &t))| t == 3 || t == 4)
            .map(|(id, (content, &t))| {
                serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": t == 3})
            })
            .collect();
        let vocab: serde_json::Map<String, serde_json::Value> = tokens.iter().enumerate().map(|(id, t)| (t.clone(), id.into())).collect();
        let add_bos = self.meta("tokenizer.ggml.add_bos_token").and_then(|v| v.to_bool().ok()).unwrap_or(false);
        let bos = self.meta("tokenizer.ggml.bos_token_id").and_then(|v| v.to_u32().ok()).and_then(|id| tokens.get(id as usize).map(|t| (id, t)));
        let post_processor = match bos {
            Some((id, token)) if add_bos => serde_json::json!({
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {token: {"id": token, "ids": [id], "tokens": [token]}}
            }),
            _ => serde_json::Value::Null,
        };
        let json = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": post_processor,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                      "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges}
        });
        json.to_string().parse::<tokenizers::Tokenizer>().map_err(|e| invalid(&self.path, format!("the tokenizer built from the metadata: {e}")))
    }
}

/// LLaMA 3's split (llama.cpp's "llama-bpe"): contractions, letters, 1-3 digits, punctuation, spaces.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: LLaMA 3's with single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn split_then_bytes(pattern: &str, bytes: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false}, bytes]})
}

/// Rows of a projection [heads · d, in] from llama.cpp's interleaved order back to rotate-half order.
fn unpermute(t: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = t.dims2()?;
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        candle_core::bail!("{rows} rows do not split into {heads} heads of pairs");
    }
    t.reshape((heads, rows / heads / 2, 2, cols))?.transpose(1, 2)?.contiguous()?.reshape((rows, cols))
}

/// A GGUF tensor name as Hugging Face names it; names with no counterpart are kept.
pub fn hf_name(name: &str) -> String {
    match name {
        "token_embd.weight" => return "model.embed_tokens.weight".into(),
        "output_norm.weight" => return "model.norm.weight".into(),
        "output.weight" => return "lm_head.weight".into(),
        _ => {}
    }
    let Some(rest) = name.strip_prefix("blk.") else { return name.to_string() };
    let Some((block, part)) = rest.split_once('.') else { return name.to_string() };
    let Some((module, kind)) = part.rsplit_once('.') else { return name.to_string() };
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return name.to_string(),
    };
    format!("model.layers.{block}.{hf}.{kind}")
}

fn invalid(path: &Path, message: String) -> ModelError {
    ModelError::Invalid { path: path.to_path_buf(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_face_s() {
        assert_eq!(hf_name("blk.12.attn_q.weight"), "model.layers.12.self_attn.q_proj.weight");
        assert_eq!(hf_name("blk.0.attn_k.bias"), "model.layers.0.self_attn.k_proj.bias");
        assert_eq!(hf_name("blk.3.ffn_norm.weight"), "model.layers.3.post_attention_layernorm.weight");
        assert_eq!(hf_name("token_embd.weight"), "model.embed_tokens.weight");
        assert_eq!(hf_name("rope_freqs.weight"), "rope_freqs.weight");
    }

    /// llama.cpp's permutation (convert_hf_to_gguf.py's `permute`) undone: for 2 heads of width 4,
    /// file rows [0, 2, 1, 3 | 4, 6, 5, 7] of the Hugging Face weight come back in order.
    #[test]
    fn q_and_k_rows_come_back_in_rotate_half_order() {
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        let file: Vec<f32> = [0, 2, 1, 3, 4, 6, 5, 7].iter().map(|&r| hf[r]).collect();
        let t = Tensor::from_vec(file, (8, 1), &Device::Cpu).unwrap();
        let back = unpermute(&t, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(back, hf);
        assert!(unpermute(&t, 3).is_err());
    }
}
