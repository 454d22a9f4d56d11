use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::cli::{GlobalArgs, PredictArgs};
use crate::error::UsageError;
use crate::methods::transformer::artifact::load_lora_tensors;
use crate::methods::transformer::backbone::{locate, Backbone};
use crate::methods::transformer::classifier::Classifier;
use crate::methods::transformer::embed::embed_texts;
use crate::methods::{ClassProbabilities, MethodConfig};
use crate::store::{RunStatus, Store};

/// Class probabilities from a frozen run's saved head: two classes, σ(embedding·w + b) for the positive
/// class; more, softmax(W·embedding + b).
fn frozen_probs(
    p: &crate::methods::transformer::frozen::FrozenParams,
    artifact: &Path,
    expected_sha: Option<&str>,
    g: &GlobalArgs,
    texts: &[String],
) -> Result<ClassProbabilities> {
    let dir = locate(&p.backbone, &g.models_dir)?;
    let device = p.device.resolve()?;
    let (backbone, _) = Backbone::load(&dir, p.max_length, false, &device)?;
    if let Some(sha) = expected_sha {
        if sha != backbone.fingerprint {
            bail!("the backbone at {} is not the one the run used (sha256 {} ≠ {sha})", dir.display(), backbone.fingerprint);
        }
    }
    let head = candle_core::safetensors::load(artifact.join("head.safetensors"), &Device::Cpu)?;
    let (w, b) = (head.get("weight").context("head.safetensors has no weight")?, head.get("bias").context("head.safetensors has no bias")?);
    let (_, emb) = embed_texts(&backbone, texts, p.pooling, p.batch_size, &device)?;
    // In f64, as the head was fitted.
    let rows = w.dims2()?.0;
    let w: Vec<Vec<f64>> = w.to_vec2::<f32>()?.into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect();
    let b: Vec<f64> = b.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
    if b.len() != rows || w.iter().any(|r| emb.first().is_some_and(|e| e.len() != r.len())) {
        bail!("{}: the head's weight ({rows} rows) and bias ({}) do not fit the backbone's embeddings", artifact.join("head.safetensors").display(), b.len());
    }
    let logits = |e: &Vec<f32>| -> Vec<f64> { w.iter().zip(&b).map(|(row, b)| e.iter().zip(row).map(|(&x, &w)| x as f64 * w).sum::<f64>() + b).collect() };
    Ok(if rows == 1 {
        ClassProbabilities::binary(emb.iter().map(|e| 1.0 / (1.0 + (-logits(e)[0]).exp())).collect())
    } else {
        let softmax = |z: Vec<f64>| {
            let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - top).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.into_iter().map(|v| v / sum).collect::<Vec<f64>>()
        };
        ClassProbabilities::new(rows, emb.iter().flat_map(|e| softmax(logits(e))).collect())
    })
}

pub fn run(args: &PredictArgs, g: &GlobalArgs) -> Result<i32> {
    let texts = super::collect_texts(&args.texts, args.file.as_deref(), false)?;
    let store = Store::new(&g.runs_dir);
    let record = store.find(&args.run)?;
    if record.status != RunStatus::Ok {
        return Err(UsageError(format!("run {} failed ({}); it has no model to predict with", record.id, record.error.as_deref().unwrap_or("?"))).into());
    }
    let Some(artifact) = record.artifact.as_ref().map(|a| store.dir().join(a)) else {
        return Err(UsageError(format!(
            "run {} ({}) kept no model: bench predict works with frozen, finetune and lora runs",
            record.id,
            record.config.method.kind()
        ))
        .into());
    };
    let classes = record.classes();
    let dev = match &record.config.method {
        MethodConfig::Finetune(p) | MethodConfig::Lora(p) => p.device.resolve()?,
        _ => Device::Cpu,
    };
    let probs = match &record.config.method {
        MethodConfig::Frozen(p) => frozen_probs(p, &artifact, record.method_details["backbone_sha256"].as_str(), g, &texts)?,
        MethodConfig::Finetune(p) => {
            let model = Classifier::load_finetuned(&artifact, p.max_length, p.pooling, &dev)?;
            model.predict_ids(&model.backbone.tokenize(&texts)?, 64, &dev, &|_| {})?
        }
        MethodConfig::Lora(p) => {
            // Built as training built it (same backbone, pooling, classes and adapters), then given the saved values.
            let model = crate::methods::transformer::train::build("lora", p, classes.len(), &g.models_dir, 0, &dev)?;
            model.set_trainable(&load_lora_tensors(&artifact)?)?;
            model.predict_ids(&model.backbone.tokenize(&texts)?, 64, &dev, &|_| {})?
        }
        MethodConfig::Lsa(_) => unreachable!("LSA runs keep no artifact"),
    };
    if probs.classes() != classes.len() {
        bail!("the saved model scores {} classes; its run has {} ({})", probs.classes(), classes.len(), classes.names.join(", "));
    }
    // The threshold the run's metrics were computed at: 0.5, or the one chosen on its held-out data.
    let threshold = record.threshold();
    let mut out = std::io::stdout().lock();
    for (i, text) in texts.iter().enumerate() {
        let row = probs.row(i);
        let class = if classes.is_binary() { crate::metrics::predicts_positive(row[1], threshold) as u32 } else { probs.predicted(i) };
        let label = classes.name(class);
        if args.json {
            let by_class: serde_json::Map<String, serde_json::Value> = classes.names.iter().zip(row).map(|(n, p)| (n.clone(), serde_json::json!(p))).collect();
            let mut line = serde_json::json!({ "text": text, "label": label, "probabilities": by_class });
            if classes.is_binary() {
                // The positive class's probability, as earlier versions printed it.
                line["probability"] = serde_json::json!(row[1]);
            }
            writeln!(out, "{line}")?;
        } else if classes.is_binary() {
            writeln!(out, "{label:<8} {:.4}  {text}", row[1])?;
        } else {
            let width = classes.names.iter().map(|n| n.chars().count()).max().unwrap_or(8).min(24);
            writeln!(out, "{label:<width$} {:.4}  {text}", row[class as usize])?;
        }
    }
    Ok(0)
}
