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
use crate::methods::MethodConfig;
use crate::store::{RunStatus, Store};

/// Probability of the positive class from a frozen run's saved head: σ(embedding·w + b).
fn frozen_probs(p: &crate::methods::transformer::frozen::FrozenParams, artifact: &Path, expected_sha: Option<&str>, g: &GlobalArgs, texts: &[String]) -> Result<Vec<f64>> {
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
    let w: Vec<f64> = w.flatten_all()?.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
    let b = f64::from(b.to_vec1::<f32>()?[0]);
    Ok(emb.iter().map(|e| 1.0 / (1.0 + (-(e.iter().zip(&w).map(|(&x, &w)| x as f64 * w).sum::<f64>() + b)).exp())).collect())
}

pub fn run(args: &PredictArgs, g: &GlobalArgs) -> Result<i32> {
    let texts = super::collect_texts(&args.texts, args.file.as_deref(), false)?;
    let store = Store::new(&g.runs_dir);
    let record = store.find(&args.run)?;
    if record.status != RunStatus::Ok {
        return Err(UsageError(format!("run {} failed ({}); it has no model to predict with", record.id, record.error.as_deref().unwrap_or("?"))).into());
    }
    let Some(artifact) = record.artifact.as_ref().map(|a| store.dir().join(a)) else {
        return Err(UsageError(format!("run {} ({}) kept no model: bench predict works with frozen, finetune and lora runs", record.id, record.config.method.kind())).into());
    };
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
            // Built as training built it (same backbone, pooling and adapters), then given the saved values.
            let model = crate::methods::transformer::train::build("lora", p, &g.models_dir, 0, &dev)?;
            model.set_trainable(&load_lora_tensors(&artifact)?)?;
            model.predict_ids(&model.backbone.tokenize(&texts)?, 64, &dev, &|_| {})?
        }
        MethodConfig::Lsa(_) => unreachable!("LSA runs keep no artifact"),
    };
    let positive = record.config.dataset.positive.first().cloned().unwrap_or_else(|| "positive".into());
    let negative = record.config.dataset.negative.first().cloned().unwrap_or_else(|| format!("not {positive}"));
    // The threshold the run's metrics were computed at: 0.5, or the one chosen on its held-out data.
    let threshold = record.threshold();
    let mut out = std::io::stdout().lock();
    for (text, p) in texts.iter().zip(&probs) {
        let label = if crate::metrics::predicts_positive(*p, threshold) { &positive } else { &negative };
        if args.json {
            writeln!(out, "{}", serde_json::json!({ "text": text, "label": label, "probability": p }))?;
        } else {
            writeln!(out, "{label:<8} {p:.4}  {text}")?;
        }
    }
    Ok(0)
}
