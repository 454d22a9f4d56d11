use std::io::Write;

use anyhow::Result;
use candle_core::Device;

use crate::cli::{EmbedArgs, GlobalArgs, PoolingArg};
use crate::models::embed::embed_texts;
use crate::models::{locate, Backbone};
use crate::nn::Pooling;

pub fn run(args: &EmbedArgs, g: &GlobalArgs) -> Result<i32> {
    let texts = super::collect_texts(&args.texts, args.file.as_deref(), true)?;
    let pooling = match args.pooling {
        PoolingArg::Mean => Pooling::Mean,
        PoolingArg::Cls => Pooling::Cls,
        PoolingArg::Last => Pooling::Last,
    };
    let dir = locate(&args.model, &g.models_dir)?;
    let backbone = Backbone::load(&dir, args.max_length, false, &Device::Cpu)?;
    let (ids, emb) = embed_texts(&backbone, &texts, pooling, args.batch_size, &Device::Cpu)?;
    let mut out = std::io::stdout().lock();
    for ((text, ids), emb) in texts.iter().zip(&ids).zip(&emb) {
        if args.json {
            writeln!(out, "{}", serde_json::json!({ "text": text, "input_ids": ids, "embedding": emb }))?;
        } else {
            let norm = emb.iter().map(|x| x * x).sum::<f32>().sqrt();
            let head: Vec<String> = emb.iter().take(4).map(|x| format!("{x:.4}")).collect();
            writeln!(out, "{:>3} tokens  |e| {norm:.4}  [{}, …]  {}", ids.len(), head.join(", "), text)?;
        }
    }
    Ok(0)
}
