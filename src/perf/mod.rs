//! `bench perf`: the transformer engine's throughput on a spec's data, measured so that benches/perf.sh
//! can put it next to PyTorch's. Training and inference run on the same batches PyTorch gets (written to
//! a file its side reads: engine against engine) or on textbench's own bucketing (best practice against
//! best practice). Each measurement also reports the FLOPs it did and the process's peak memory.

pub mod flops;
pub mod matmul;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{MethodError, ModelError};
use crate::methods::tune::batches::{groups_of, make_batches, Group};
use crate::methods::tune::build;
use crate::methods::tune::params::{Bucketing, TrainParams};
use crate::methods::tune::trainer::Trainer;
use crate::models::embed::length_order;
use crate::models::{locate, Backbone, Checkpoint, Encoder, SequenceClassifier};
use crate::nn::{pool, Mode, Pooling};
use flops::{ForwardFlops, Pass};

/// How batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    /// Training: shuffled examples cut into batches, each padded to its longest (what PyTorch's
    /// DataLoader with DataCollatorWithPadding does). Inference: the texts in data order. These are
    /// the batches written for the PyTorch side.
    Random,
    /// textbench's best practice. Training: the spec's `bucketing`: `true` re-batches the `random`
    /// batches' examples by length, `split` computes each `random` batch in length groups, `false`
    /// keeps the `random` batches. Inference: the texts sorted by length.
    Bucketed,
}

/// One batch as both engines receive it: token ids (unpadded) and labels.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

/// What the PyTorch side needs to run the same workload on the same batches.
#[derive(Debug, Serialize)]
pub struct BatchFile {
    pub workload: &'static str,
    /// The backbone folder (absolute), loaded by transformers from the same files.
    pub backbone: PathBuf,
    /// `finetune` or `lora` for training; absent for inference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<TrainParams>,
    /// The first this many batches are run untimed (allocation, caches, thread pools).
    pub warmup_batches: usize,
    pub batches: Vec<Batch>,
}

/// One measured workload, printed as a JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub engine: &'static str,
    pub workload: String,
    pub batching: Batching,
    /// Sentences (inference) or training samples in the timed batches.
    pub items: usize,
    pub seconds: f64,
    pub items_per_s: f64,
    pub real_tokens: usize,
    /// Tokens of the timed batches, each padded to its longest sequence.
    pub padded_tokens: usize,
    /// Whether the padding was computed (`--padded`), or only the real tokens (packed, the default).
    pub padded: bool,
    /// Tokens the engine computed: `padded_tokens` or `real_tokens`.
    pub computed_tokens: usize,
    /// Matrix-product FLOPs the engine computed in the timed batches, and the rate achieved.
    pub gflop: f64,
    pub gflop_per_s: f64,
    /// Peak resident memory of the whole process, loading included.
    pub peak_rss_mb: f64,
    pub threads: usize,
}

/// The examples a workload draws its batches from.
pub struct Texts<'a> {
    pub texts: &'a [String],
    pub labels: &'a [u32],
    /// The number of classes the classifier head scores.
    pub classes: usize,
}

fn counts(batches: &[Batch]) -> (usize, usize, usize) {
    let items = batches.iter().map(|b| b.ids.len()).sum();
    let real = batches.iter().flat_map(|b| &b.ids).map(Vec::len).sum();
    let padded = batches.iter().map(|b| b.ids.len() * b.ids.iter().map(Vec::len).max().unwrap_or(0)).sum();
    (items, real, padded)
}

/// The FLOPs of computing these batches, padded or packed, through the encoder and, when given, a
/// classifier's head.
fn gflop(encoder: &dyn Encoder, classifier: Option<&dyn SequenceClassifier>, batches: &[Batch], padded: bool, pass: Pass) -> f64 {
    let batch_flops = |b: &Batch| {
        let mut f = ForwardFlops::of_batch(encoder, &b.ids.iter().map(Vec::len).collect::<Vec<_>>(), !padded);
        f.weights += classifier.map_or(0.0, |c| c.head_flops(b.ids.len()));
        f.step(pass)
    };
    batches.iter().map(batch_flops).sum::<f64>() / 1e9
}

fn measurement(workload: String, batching: Batching, timed: &[Batch], padded: bool, seconds: f64, gflop: f64) -> Measurement {
    let (items, real_tokens, padded_tokens) = counts(timed);
    Measurement {
        engine: "textbench",
        workload,
        batching,
        items,
        seconds,
        items_per_s: items as f64 / seconds,
        real_tokens,
        padded_tokens,
        padded,
        computed_tokens: if padded { padded_tokens } else { real_tokens },
        gflop,
        gflop_per_s: gflop / seconds,
        peak_rss_mb: crate::environment::peak_memory_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
        threads: candle_core::utils::get_num_threads(),
    }
}

fn slice(ids: &[Vec<u32>], labels: &[u32], order: &[usize]) -> Batch {
    Batch { ids: order.iter().map(|&i| ids[i].clone()).collect(), labels: order.iter().map(|&i| labels[i]).collect() }
}

fn tensors(checkpoint: &Checkpoint, batch: &Batch, device: &Device) -> Result<Group, ModelError> {
    let seqs: Vec<&[u32]> = batch.ids.iter().map(Vec::as_slice).collect();
    Group::new(checkpoint, &seqs, batch.labels.clone(), device)
}

/// Inference: mean-pooled embeddings of `count` texts (all when None) in batches of `batch_size`;
/// `padded` computes each batch's padding instead of packing its real tokens.
#[allow(clippy::too_many_arguments)]
pub fn inference(
    backbone_name: &str,
    models_dir: &std::path::Path,
    max_length: usize,
    data: &Texts<'_>,
    batch_size: usize,
    count: Option<usize>,
    batching: Batching,
    padded: bool,
) -> Result<(Measurement, BatchFile), MethodError> {
    let device = Device::Cpu;
    let dir = locate(backbone_name, models_dir)?;
    let mut backbone = Backbone::load(&dir, max_length, false, &device)?;
    backbone.encoder.set_packing(!padded);
    let n = count.unwrap_or(data.texts.len()).min(data.texts.len());
    let ids = backbone.checkpoint.tokenize(&data.texts[..n])?;
    let order: Vec<usize> = match batching {
        Batching::Random => (0..n).collect(),
        Batching::Bucketed => length_order(&ids),
    };
    let batches: Vec<Batch> = order.chunks(batch_size).map(|c| slice(&ids, data.labels, c)).collect();
    let warmup = 1.min(batches.len());
    let run = |b: &Batch| -> Result<(), ModelError> {
        let Group { tok, mask, .. } = tensors(&backbone.checkpoint, b, &device)?;
        let hidden = backbone.encoder.forward(&tok, &mask, &mut Mode::inference())?;
        pool(&hidden, &mask, Pooling::Mean)?.to_vec2::<f32>()?;
        Ok(())
    };
    // On rayon's pool, as `embed::by_length` runs each batch.
    let run = |b: &Batch| crate::nn::kernels::in_pool(&device, || run(b));
    batches[..warmup].iter().try_for_each(run)?;
    let started = Instant::now();
    batches[warmup..].iter().try_for_each(run)?;
    let seconds = started.elapsed().as_secs_f64();
    let gflop = gflop(backbone.encoder.as_ref(), None, &batches[warmup..], padded, Pass::Inference);
    let m = measurement("infer".into(), batching, &batches[warmup..], padded, seconds, gflop);
    let file = BatchFile { workload: "infer", backbone: absolute(&dir), method: None, params: None, warmup_batches: warmup, batches };
    Ok((m, file))
}

/// Training: `warmup + steps` AdamW steps of the spec's method (`finetune` or `lora`) at its peak
/// learning rate, on batches drawn from the training split under `seed`; `padded` as for `inference`.
#[allow(clippy::too_many_arguments)]
pub fn training(
    kind: &str,
    p: &TrainParams,
    models_dir: &std::path::Path,
    data: &Texts<'_>,
    seed: u64,
    warmup: usize,
    steps: usize,
    batching: Batching,
    padded: bool,
) -> Result<(Measurement, BatchFile), MethodError> {
    let device = Device::Cpu;
    let mut model = build(kind, p, data.classes, models_dir, seed, &device)?;
    model.model.encoder_mut().set_packing(!padded);
    let ids = model.checkpoint.tokenize(data.texts)?;
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let mut order = make_batches(&lengths, p.batch_size, Bucketing::Off, &mut rng);
    // A partial last batch would be an odd one out in a timing: drop it.
    order.retain(|b| b.len() == p.batch_size);
    if order.len() < warmup + steps {
        return Err(MethodError::Unfit(format!("{} full batches of {} in the training split, {} asked for", order.len(), p.batch_size, warmup + steps)));
    }
    order.truncate(warmup + steps);
    // Best practice is the spec's own bucketing: `split` keeps the random batches and computes each in
    // length groups; `true` re-batches the same examples by length, the warm-up examples among
    // themselves, the timed ones among themselves, so that both modes do the same work on the same
    // texts; `false` keeps the random batches (packed on the CPU, they cost their real tokens only).
    let split = batching == Batching::Bucketed && p.bucketing == Bucketing::Split;
    if batching == Batching::Bucketed && p.bucketing == Bucketing::Length {
        let (head, tail) = order.split_at(warmup);
        order = [head, tail].iter().flat_map(|part| rebatch(part, &lengths, p.batch_size, &mut rng)).collect();
    }
    let batches: Vec<Batch> = order.iter().map(|c| slice(&ids, data.labels, c)).collect();
    let pass = if kind == "finetune" { Pass::FullTraining } else { Pass::FrozenTraining };
    let mut trainer = Trainer::new(model, p, seed)?;
    // Each batch as the groups it is computed in (one group unless split).
    let pieces: Vec<Vec<Batch>> = batches
        .iter()
        .map(|b| {
            groups_of(&b.ids.iter().map(Vec::len).collect::<Vec<_>>(), split)
                .iter()
                .map(|g| Batch { ids: g.iter().map(|&i| b.ids[i].clone()).collect(), labels: g.iter().map(|&i| b.labels[i]).collect() })
                .collect()
        })
        .collect();
    let mut step = |groups: &Vec<Batch>| -> Result<(), MethodError> {
        let groups = groups.iter().map(|b| tensors(&trainer.model.checkpoint, b, &device)).collect::<Result<Vec<_>, _>>()?;
        let loss = trainer.step(&groups, p.lr).map_err(ModelError::from)?.loss;
        if !loss.is_finite() {
            return Err(MethodError::Numerical(format!("training loss became {loss}")));
        }
        Ok(())
    };
    pieces[..warmup].iter().try_for_each(&mut step)?;
    let started = Instant::now();
    pieces[warmup..].iter().try_for_each(&mut step)?;
    let seconds = started.elapsed().as_secs_f64();
    let timed: Vec<Batch> = pieces[warmup..].iter().flatten().cloned().collect();
    let gflop = gflop(trainer.model.model.encoder(), Some(trainer.model.model.as_ref()), &timed, padded, pass);
    let m = measurement(kind.to_string(), batching, &timed, padded, seconds, gflop);
    let dir = absolute(&trainer.model.checkpoint.dir);
    let file = BatchFile { workload: "train", backbone: dir, method: Some(kind.to_string()), params: Some(p.clone()), warmup_batches: warmup, batches };
    Ok((m, file))
}

/// The examples of `batches`, cut into new batches by `make_batches` with length bucketing.
fn rebatch(batches: &[Vec<usize>], lengths: &[usize], batch_size: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
    let members: Vec<usize> = batches.iter().flatten().copied().collect();
    let sub: Vec<usize> = members.iter().map(|&i| lengths[i]).collect();
    make_batches(&sub, batch_size, Bucketing::Length, rng).into_iter().map(|b| b.into_iter().map(|j| members[j]).collect()).collect()
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
