//! Saving trained models next to their run records, in formats other tools read:
//! - `lora`: `adapter_model.safetensors` + `adapter_config.json` in peft's layout and weight names, so
//!   Python's peft loads the adapter onto the same base model (AutoModelForSequenceClassification), and
//!   the base's `config.json` with the classes (`num_labels`, `id2label`, `label2id`) to build it with;
//! - `finetune`: a Hugging Face model folder (BertForSequenceClassification: config.json,
//!   model.safetensors, tokenizer.json);
//! - `frozen`: the head as `head.safetensors`: two classes, weight [1, hidden] and bias [1] (the positive
//!   class's log-odds); k classes, weight [k, hidden] and bias [k] (the logits of a softmax).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::classifier::Classifier;
use super::encoder::Pooling;
use super::params::{LoraSettings, LoraTarget};
use crate::data::ClassSet;
use crate::error::ModelError;

/// peft's prefix for a sequence-classification model built on BERT.
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

/// peft's `target_modules` as a regular expression over module names (peft full-matches a string):
/// suffix lists would confuse `attention.output.dense` with the feed-forward `output.dense`.
fn peft_target_regex(targets: &[LoraTarget]) -> String {
    let parts: Vec<&str> = targets
        .iter()
        .map(|t| match t {
            LoraTarget::Query => r"encoder\.layer\.\d+\.attention\.self\.query",
            LoraTarget::Key => r"encoder\.layer\.\d+\.attention\.self\.key",
            LoraTarget::Value => r"encoder\.layer\.\d+\.attention\.self\.value",
            LoraTarget::AttentionOutput => r"encoder\.layer\.\d+\.attention\.output\.dense",
            LoraTarget::Intermediate => r"encoder\.layer\.\d+\.intermediate\.dense",
            LoraTarget::Output => r"encoder\.layer\.\d+\.output\.dense",
            LoraTarget::Pooler => r"pooler\.dense",
        })
        .collect();
    format!(r".*\.({})", parts.join("|"))
}

pub fn save_lora(model: &Classifier, settings: &LoraSettings, base: &str, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    let tensors = model
        .trainable
        .iter()
        .map(|(name, var)| {
            // Adapters live under the BERT body (`bert.`), the classifier at the top, as in peft's state dict.
            let key = if name.starts_with("classifier.") { format!("{PEFT_PREFIX}{name}") } else { format!("{PEFT_PREFIX}bert.{name}") };
            (key, var.as_tensor().clone())
        })
        .collect();
    save_tensors(tensors, &dir.join("adapter_model.safetensors"))?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "SEQ_CLS",
        "base_model_name_or_path": base,
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": peft_target_regex(&settings.targets),
        "modules_to_save": ["classifier", "score"],
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

/// The backbone's config.json as a BertForSequenceClassification over the run's classes.
fn write_config(model: &Classifier, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    let src = model.backbone.dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&src).map_err(io(&src))?).map_err(|e| ModelError::Invalid { path: src.clone(), message: e.to_string() })?;
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    let id2label: serde_json::Map<String, serde_json::Value> = classes.names.iter().enumerate().map(|(i, n)| (i.to_string(), serde_json::json!(n))).collect();
    let label2id: serde_json::Map<String, serde_json::Value> = classes.names.iter().enumerate().map(|(i, n)| (n.clone(), serde_json::json!(i))).collect();
    config["num_labels"] = serde_json::json!(classes.len());
    config["id2label"] = serde_json::Value::Object(id2label);
    config["label2id"] = serde_json::Value::Object(label2id);
    if model.pooling == Pooling::Mean {
        // Transformers keeps unknown keys as attributes; this one warns a reader that the head was trained on
        // mean-pooled states, which BertForSequenceClassification does not compute.
        config["textbench_pooling"] = serde_json::json!("mean");
    }
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).map_err(io(&path))
}

/// A Hugging Face BertForSequenceClassification folder.
pub fn save_finetuned(model: &Classifier, classes: &ClassSet, dir: &Path) -> Result<(), ModelError> {
    let mut tensors: Vec<(String, Tensor)> = model.backbone.encoder.named_tensors().into_iter().map(|(k, t)| (format!("bert.{k}"), t)).collect();
    tensors.push(("bert.pooler.dense.weight".into(), model.pooler.weight.clone()));
    tensors.push(("bert.pooler.dense.bias".into(), model.pooler.bias.clone()));
    tensors.push(("classifier.weight".into(), model.head.weight.clone()));
    tensors.push(("classifier.bias".into(), model.head.bias.clone()));
    save_tensors(tensors, &dir.join("model.safetensors"))?;
    write_config(model, classes, dir)?;
    let tok = model.backbone.dir.join("tokenizer.json");
    std::fs::copy(&tok, dir.join("tokenizer.json")).map_err(io(&tok))?;
    Ok(())
}

/// The frozen method's logistic-regression head: one weight row and intercept per score.
pub fn save_head(weights: &[Vec<f64>], intercepts: &[f64], dir: &Path) -> Result<(), ModelError> {
    let dim = weights.first().map_or(0, Vec::len);
    let w: Vec<f32> = weights.iter().flatten().map(|&x| x as f32).collect();
    let b: Vec<f32> = intercepts.iter().map(|&x| x as f32).collect();
    let tensors = vec![
        ("weight".to_string(), Tensor::from_vec(w, (weights.len(), dim), &Device::Cpu)?),
        ("bias".to_string(), Tensor::from_vec(b, intercepts.len(), &Device::Cpu)?),
    ];
    save_tensors(tensors, &dir.join("head.safetensors"))
}

/// Loads what `save_lora` wrote onto a classifier built with the same settings (names without peft's prefix).
pub fn load_lora_tensors(dir: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let path = dir.join("adapter_model.safetensors");
    let raw = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| ModelError::Invalid { path: path.clone(), message: e.to_string() })?;
    Ok(raw
        .into_iter()
        .map(|(k, t)| {
            let k = k.strip_prefix(PEFT_PREFIX).unwrap_or(&k).to_string();
            let k = k.strip_prefix("bert.").map(String::from).unwrap_or(k);
            (k, t)
        })
        .collect())
}
