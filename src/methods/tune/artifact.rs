//! Saving trained classifiers next to their run records, in formats other tools read:
//! - `lora`: `adapter_model.safetensors` + `adapter_config.json` in peft's layout and weight names, so
//!   Python's peft loads the adapter onto the same base model (AutoModelForSequenceClassification), and
//!   the base's `config.json` with the classes (`num_labels`, `id2label`, `label2id`) to build it with;
//! - `finetune`: the family's Hugging Face sequence-classification folder (config.json,
//!   model.safetensors, tokenizer.json).
//!
//! Names come from the family (`SequenceClassifier::hf_name`), so nothing here knows one.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::classifier::Classifier;
use super::params::LoraSettings;
use crate::data::ClassSet;
use crate::error::ModelError;

/// peft's prefix for the model it wraps.
const PEFT_PREFIX: &str = "base_model.model.";

fn io(path: &Path) -> impl Fn(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io { path: path.to_path_buf(), source }
}

fn save_tensors(tensors: Vec<(String, Tensor)>, path: &Path) -> Result<(), ModelError> {
    let map: HashMap<String, Tensor> =
        tensors.into_iter().map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?.contiguous()?))).collect::<Result<_, ModelError>>()?;
    candle_core::safetensors::save(&map, path)?;
    Ok(())
}

/// peft's `target_modules` as a regular expression over module names (peft full-matches a string), one
/// alternative per targeted kind of layer with its block number generalised: a list of suffixes could
/// match layers it does not name (`attention.output.dense` ends with the feed-forward's `output.dense`).
fn peft_target_regex(adapters: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for module in adapters {
        let pattern = module
            .split('.')
            .map(|piece| if piece.bytes().all(|b| b.is_ascii_digit()) { r"\d+".to_string() } else { regex_escape(piece) })
            .collect::<Vec<_>>()
            .join(r"\.");
        if !parts.contains(&pattern) {
            parts.push(pattern);
        }
    }
    format!(r".*\.({})", parts.join("|"))
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_ascii_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}

pub fn save_lora(model: &Classifier, settings: &LoraSettings, base: &str, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    let tensors = model.trainable.iter().map(|(name, var)| (format!("{PEFT_PREFIX}{}", model.model.hf_name(name)), var.as_tensor().clone())).collect();
    save_tensors(tensors, &dir.join("adapter_model.safetensors"))?;
    let adapted: Vec<&str> = model.trainable.iter().filter_map(|(name, _)| name.strip_suffix(".lora_A.weight")).collect();
    // A prompt head is the causal LM's own output layer: peft's CAUSAL_LM task, nothing else saved.
    let (task, saved) = match model.prompt {
        Some(_) => ("CAUSAL_LM", serde_json::Value::Null),
        None => ("SEQ_CLS", serde_json::json!(["classifier", "score"])),
    };
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": task,
        "base_model_name_or_path": base,
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": peft_target_regex(&adapted),
        "modules_to_save": saved,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    });
    let path = dir.join("adapter_config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).map_err(io(&path))?;
    write_config(model, classes, dir)
}

/// The backbone's config.json as the family's sequence classifier over the run's classes.
pub fn write_config(model: &Classifier, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    let mut config: serde_json::Value = serde_json::from_str(&model.checkpoint.config)
        .map_err(|e| ModelError::Invalid { path: model.checkpoint.dir.clone(), message: format!("its config: {e}") })?;
    model.model.export_config(&mut config);
    let id2label: serde_json::Map<String, serde_json::Value> = classes.names.iter().enumerate().map(|(i, n)| (i.to_string(), serde_json::json!(n))).collect();
    let label2id: serde_json::Map<String, serde_json::Value> = classes.names.iter().enumerate().map(|(i, n)| (n.clone(), serde_json::json!(i))).collect();
    config["num_labels"] = serde_json::json!(classes.len());
    config["id2label"] = serde_json::Value::Object(id2label);
    config["label2id"] = serde_json::Value::Object(label2id);
    if let Some(p) = &model.prompt {
        // What a reader needs to score classes as textbench does: the text between these two strings,
        // then the next-token logits of these ids, one per class.
        config["textbench_prompt"] = serde_json::json!({"before": p.before, "after": p.after, "label_ids": p.label_ids});
    }
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).map_err(io(&path))?;
    // The chat template goes with a saved model, so that `chat: true` renders the same prompt from it.
    if let Some(template) = crate::models::checkpoint::chat_template(&model.checkpoint.dir)? {
        let path = dir.join("tokenizer_config.json");
        if !path.exists() {
            std::fs::write(&path, serde_json::to_vec_pretty(&serde_json::json!({"chat_template": template})).expect("json")).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// The family's Hugging Face sequence-classification folder.
pub fn save_finetuned(model: &Classifier, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    save_tensors(model.model.named_tensors(), &dir.join("model.safetensors"))?;
    write_config(model, classes, dir)?;
    let tok = crate::models::checkpoint::tokenizer_json(&model.checkpoint.dir);
    if tok.is_file() {
        std::fs::copy(&tok, dir.join("tokenizer.json")).map_err(io(&tok))?;
        return Ok(());
    }
    // A GGUF shared without one: the tokenizer built from its metadata, saved as built.
    let built = crate::models::checkpoint::folder_tokenizer(&model.checkpoint.dir)?;
    let path = dir.join("tokenizer.json");
    built.save(&path, false).map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))
}

/// What `save_lora` wrote, by Hugging Face name (without peft's prefix), for a classifier built with the
/// same settings (`Classifier::set_trainable`).
pub fn load_lora_tensors(dir: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let path = dir.join("adapter_model.safetensors");
    let raw = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| ModelError::Invalid { path: path.clone(), message: e.to_string() })?;
    Ok(raw.into_iter().map(|(k, t)| (k.strip_prefix(PEFT_PREFIX).map(String::from).unwrap_or(k), t)).collect())
}
