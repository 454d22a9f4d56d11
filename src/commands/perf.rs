use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{GlobalArgs, PerfArgs, PerfWorkload};
use crate::data::{self, split::prepare, DataLocation};
use crate::error::UsageError;
use crate::methods::MethodConfig;
use crate::perf::{self, matmul, Measurement, Texts};
use crate::progress::Progress;
use crate::spec::Spec;

pub fn run(args: &PerfArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    if args.workload == PerfWorkload::Matmul {
        let rates = matmul::rates(Duration::from_secs(2))?;
        let peak = matmul::peak(&rates);
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "engine": "textbench", "workload": "matmul", "peak_gflop_per_s": peak, "rates": rates, "threads": candle_core::utils::get_num_threads() })
            );
        } else {
            for r in &rates {
                println!("matmul {:?}: {:.1} GFLOP/s", r.shape, r.gflop_per_s);
            }
        }
        return Ok(0);
    }
    let spec = Spec::load(&args.spec)?;
    let run = spec.runs.first().ok_or_else(|| UsageError(format!("{} expands to no runs", args.spec.display())))?;
    let cfg = &run.config;
    let loc = DataLocation { data_dir: g.data_dir.clone(), spec_dir: spec.dir() };
    let loaded = data::load(&cfg.dataset, &loc, progress)?;
    let prepared = prepare(&cfg.dataset, &loaded)?;
    let (m, file): (Measurement, _) = match (args.workload, &cfg.method) {
        (PerfWorkload::Infer, method) => {
            let (backbone, max_length) = match method {
                MethodConfig::Frozen(p) => (p.backbone.as_str(), p.max_length),
                MethodConfig::Finetune(p) | MethodConfig::Lora(p) => (p.backbone.as_str(), p.max_length),
                other => return Err(UsageError(format!("{}: a {} spec has no backbone to measure", args.spec.display(), other.kind())).into()),
            };
            let data = Texts { texts: &prepared.eval_texts, labels: &prepared.eval_labels, classes: prepared.classes.len() };
            perf::inference(backbone, &g.models_dir, max_length, &data, args.batch_size, args.texts, args.batching, args.padded)?
        }
        (PerfWorkload::Train, MethodConfig::Finetune(p) | MethodConfig::Lora(p)) => {
            let data = Texts { texts: &prepared.train_texts, labels: &prepared.train_labels, classes: prepared.classes.len() };
            perf::training(cfg.method.kind(), p, &g.models_dir, &data, cfg.seed, args.warmup_steps, args.steps, args.batching, args.padded)?
        }
        (PerfWorkload::Train, other) => {
            return Err(UsageError(format!("{}: method {} is not trained by steps; give a finetune or lora spec", args.spec.display(), other.kind())).into())
        }
        (PerfWorkload::Matmul, _) => unreachable!("handled above"),
    };
    if let Some(path) = &args.batches_out {
        let json = serde_json::to_vec(&file)?;
        crate::store::write_atomic(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&m)?)?;
    } else {
        writeln!(
            out,
            "{} {:?}{}: {} items in {:.2} s = {:.2}/s, {:.1} GFLOP/s, padding {:.2} ({}), peak RSS {:.0} MB, {} threads",
            m.workload,
            m.batching,
            if m.padded { " padded" } else { "" },
            m.items,
            m.seconds,
            m.items_per_s,
            m.gflop_per_s,
            m.padded_tokens as f64 / m.real_tokens.max(1) as f64,
            if m.padded { "computed" } else { "not computed" },
            m.peak_rss_mb,
            m.threads
        )?;
    }
    Ok(0)
}
