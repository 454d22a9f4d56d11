use std::io::Write;

use anyhow::{bail, Result};

use crate::cli::{GlobalArgs, PredictArgs};
use crate::error::UsageError;
use crate::methods::Saved;
use crate::store::{RunStatus, Store};

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
    let saved = Saved { artifact: &artifact, classes: &classes, models_dir: &g.models_dir, backbone_sha256: record.method_details["backbone_sha256"].as_str() };
    let Some(model) = record.config.method.load(&saved)? else {
        return Err(UsageError(format!("run {} ({}) kept no model to predict with", record.id, record.config.method.kind())).into());
    };
    let probs = model.predict_proba(&texts)?;
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
