//! Training reaches what it should and nothing else: full fine-tuning puts a gradient on every weight of
//! the encoder and head; LoRA leaves the checkpoint bit-identical and trains only adapters and head; the
//! LoRA parameter count follows the closed formula.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use textbench::methods::tune::classifier::Classifier;
use textbench::methods::tune::params::{LoraSettings, LoraTarget, TrainParams};
use textbench::methods::tune::{self as train, batches, trainer};
use textbench::methods::{Examples, FitContext};
use textbench::models::cache::ModelCache;
use textbench::models::Backbone;
use textbench::nn::{Mode, Pooling};
use textbench::progress::Progress;

fn minilm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models/all-MiniLM-L6-v2")
}

fn sum_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
}

/// One full-fine-tuning step's gradients; the names of trainable tensors whose gradient is missing or zero.
fn weights_without_gradient(pooling: Pooling) -> (usize, Vec<String>) {
    let dev = Device::Cpu;
    let model = Classifier::new(&minilm(), 64, true, pooling, 2, 0, &dev).unwrap();
    let ids = model.checkpoint.tokenize(&["WINNER! claim your prize", "lunch at one?", "free entry, txt WIN now"]).unwrap();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (tok, mask) = model.checkpoint.batch(&refs, &dev).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let logits = model.forward(&tok, &mask, &mut Mode::train(&mut rng)).unwrap();
    let labels = Tensor::new(&[1u32, 0, 1], &dev).unwrap();
    let grads = candle_nn::loss::cross_entropy(&logits, &labels).unwrap().backward().unwrap();
    let missing = model
        .trainable
        .iter()
        .filter(|(_, v)| grads.get(v.as_tensor()).is_none_or(|g| sum_abs(g).is_nan() || sum_abs(g) <= 0.0))
        .map(|(n, _)| n.clone())
        .collect();
    (model.trainable.len(), missing)
}

#[test]
fn one_finetuning_step_reaches_every_weight() {
    let (count, missing) = weights_without_gradient(Pooling::Cls);
    assert_eq!(count, 101 + 2 + 2, "encoder, pooler and classifier tensors");
    assert!(missing.is_empty(), "no gradient for {missing:?}");
}

#[test]
fn mean_pooling_trains_every_weight_but_the_bypassed_pooler() {
    let (count, missing) = weights_without_gradient(Pooling::Mean);
    assert_eq!(count, 101 + 2, "encoder and classifier tensors; the pooler is not read");
    assert!(missing.is_empty(), "no gradient for {missing:?}");
}

fn texts() -> (Vec<String>, Vec<bool>) {
    let spam = ["WINNER! You have won a cash prize, call now", "Free entry: txt WIN to 80062", "Urgent: claim your voucher at claim.example.com"];
    let ham = ["see you at the station at 6", "can you pick up some milk?", "thanks for the book, call me later"];
    let mut t = Vec::new();
    let mut l = Vec::new();
    for i in 0..8 {
        t.push(format!("{} {i}", spam[i % 3]));
        l.push(true);
        t.push(format!("{} {i}", ham[i % 3]));
        l.push(false);
    }
    (t, l)
}

#[test]
fn lora_trains_adapters_and_head_only() {
    let dir = minilm();
    let p = TrainParams { backbone: dir.display().to_string(), epochs: 2, batch_size: 4, lr: 1e-3, lora: Some(LoraSettings::default()), ..Default::default() };
    let fitted = fit_lora(&p, 3);
    let model = fitted.model();

    // The checkpoint's weights are exactly what is on disk.
    let original = Backbone::load(&dir, 128, false, &Device::Cpu).unwrap();
    let before = original.encoder.named_tensors();
    let after = model.model.encoder().named_tensors();
    assert_eq!(before.len(), after.len());
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(values(a) == values(b), "{name} changed");
    }
    // Every adapter's B left zero, and only adapters and the classifier are trainable.
    for (name, var) in &model.trainable {
        assert!(name.contains(".lora_") || name.starts_with("classifier."), "{name} is trainable");
        if name.ends_with("lora_B.weight") {
            assert!(sum_abs(var.as_tensor()) > 0.0, "{name} did not train");
        }
    }
}

#[test]
fn lora_parameter_count_follows_the_formula() {
    let dev = Device::Cpu;
    let (h, i, layers) = (384usize, 1536usize, 6usize);
    let encoder = ["query", "key", "value", "attention_output", "intermediate", "output"];
    let cases = [(8, encoder.to_vec()), (4, vec!["query", "value"]), (16, [encoder.as_slice(), &["pooler"]].concat())];
    for (r, targets) in cases {
        let mut model = Classifier::new(&minilm(), 32, false, Pooling::Cls, 2, 0, &dev).unwrap();
        let settings = LoraSettings { rank: r, alpha: 16.0, dropout: 0.0, targets: targets.iter().map(|t| LoraTarget::new(t)).collect() };
        model.add_lora(&settings, 0, &dev).unwrap();
        let per_layer: usize = targets
            .iter()
            .map(|&t| match t {
                "intermediate" | "output" => r * (h + i),
                "pooler" => 0,
                _ => r * (h + h),
            })
            .sum();
        let pooler = if targets.contains(&"pooler") { r * (h + h) } else { 0 };
        let classifier = 2 * h + 2;
        assert_eq!(model.trainable_parameters(), layers * per_layer + pooler + classifier, "r={r} {targets:?}");
    }
}

/// LoRA training on the `texts()` sample under a seed, with no evaluation split to monitor.
fn fit_lora(p: &TrainParams, seed: u64) -> train::FittedClassifier {
    let models = Arc::new(ModelCache::new(None));
    let progress = Progress::hidden();
    let dir = minilm();
    let ctx = FitContext { seed, progress: &progress, models_dir: dir.parent().unwrap(), models: &models, monitor: None };
    let (texts, labels) = texts();
    let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let classes = textbench::data::ClassSet::new(vec!["ham".into(), "spam".into()]);
    train::fit("lora", p, Examples { texts: &texts, labels: &labels, classes: &classes }, &ctx).unwrap()
}

/// The labels of the examples `fit` held out (fraction, seed) and the fitted model's probabilities for them.
fn held_out_predictions(fitted: &dyn textbench::methods::Fitted, texts: &[String], labels: &[bool], fraction: f64, seed: u64) -> (Vec<bool>, Vec<f64>) {
    let classes: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let (_, held) = textbench::data::split::holdout(&classes, fraction, seed);
    let held_texts: Vec<String> = held.iter().map(|&i| texts[i].clone()).collect();
    let probs = fitted.predict_proba(&held_texts, &Progress::hidden()).unwrap();
    (held.iter().map(|&i| labels[i]).collect(), probs.positive())
}

#[test]
fn early_stopping_keeps_the_best_held_out_epoch() {
    use textbench::methods::tune::params::{EarlyStopping, SelectBy};
    use textbench::methods::Fitted;
    let dir = minilm();
    let es = EarlyStopping { holdout: 0.25, metric: SelectBy::LogLoss, ..Default::default() };
    let p = TrainParams {
        backbone: dir.display().to_string(),
        epochs: 3,
        batch_size: 4,
        lr: 1e-3,
        lora: Some(LoraSettings::default()),
        early_stopping: Some(es),
        ..Default::default()
    };
    let (texts, labels) = texts();
    let fitted = fit_lora(&p, 5);
    let history = fitted.history().unwrap();
    assert_eq!(history["holdout_examples"], 4);
    let losses: Vec<f64> = history["epochs"].as_array().unwrap().iter().map(|e| e["holdout"]["log_loss"].as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 3, "every epoch judged on the held-out part");
    let best = history["best_epoch"].as_u64().unwrap() as usize;
    let lowest = losses.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(losses[best - 1], lowest, "the best epoch is the one with the lowest held-out loss");

    // The model kept is that epoch's: it reproduces that epoch's held-out loss.
    let (held_labels, probs) = held_out_predictions(&fitted, &texts, &labels, 0.25, 5);
    let (m, _) = textbench::metrics::evaluate(&held_labels, &probs, textbench::metrics::THRESHOLD, 5);
    assert!((m.log_loss - lowest).abs() < 1e-6, "kept model's loss {} vs best epoch's {lowest}", m.log_loss);
    assert!(history.get("threshold").is_none() && fitted.threshold() == 0.5, "the threshold stays 0.5 unless tuned");
}

#[test]
fn a_tuned_threshold_is_the_best_one_on_the_held_out_data() {
    use textbench::methods::tune::params::{EarlyStopping, SelectBy};
    use textbench::methods::Fitted;
    use textbench::metrics::{best_threshold, evaluate, ThresholdGoal, THRESHOLD};
    let dir = minilm();
    let es = EarlyStopping { holdout: 0.25, metric: SelectBy::Accuracy, tune_threshold: true, ..Default::default() };
    // One epoch at a small rate: the model is still poorly calibrated, so 0.5 is unlikely to be best.
    let p = TrainParams {
        backbone: dir.display().to_string(),
        epochs: 1,
        batch_size: 4,
        lr: 1e-4,
        lora: Some(LoraSettings::default()),
        early_stopping: Some(es),
        ..Default::default()
    };
    let (texts, labels) = texts();
    let fitted = fit_lora(&p, 5);
    let history = fitted.history().unwrap();
    let threshold = history["threshold"].as_f64().expect("the chosen threshold is recorded");
    assert_eq!(fitted.threshold(), threshold, "the run's metrics use the recorded threshold");

    // Recomputed from the kept model's held-out probabilities: the same threshold, at least as good as 0.5.
    let (held_labels, probs) = held_out_predictions(&fitted, &texts, &labels, 0.25, 5);
    let (t, accuracy) = best_threshold(&held_labels, &probs, ThresholdGoal::Accuracy);
    assert_eq!(t, threshold);
    assert_eq!(history["holdout_at_threshold"]["accuracy"].as_f64().unwrap(), accuracy);
    assert!(accuracy >= evaluate(&held_labels, &probs, THRESHOLD, 5).0.accuracy);
}

/// `bucketing: split` computes a batch in length groups, and `micro_batch` in parts: with dropout off, the
/// step's loss and gradient norm are those of the whole batch padded as one tensor (so the optimiser sees
/// the same batch).
#[test]
fn a_batch_computed_in_length_groups_trains_as_the_whole_batch() {
    let dev = Device::Cpu;
    let dir = minilm();
    let p = TrainParams { backbone: dir.display().to_string(), lora: Some(LoraSettings { dropout: 0.0, ..Default::default() }), ..Default::default() };
    let long = "Congratulations! You have been selected to receive a free holiday for two, flights and hotel included. To claim, call 09061701461 before midnight or reply YES with your name, address and postcode; standard rates apply.";
    let texts: Vec<String> = (0..10).map(|i| if i % 4 == 3 { format!("{long} {i}") } else { format!("ok see you at {i}") }).collect();
    let targets: Vec<u32> = (0..10).map(|i| u32::from(i % 4 == 3 || i == 0)).collect();
    let step = |split: bool, micro_batch: Option<usize>| {
        let p = TrainParams { micro_batch, ..p.clone() };
        let mut model = train::build("lora", &p, 2, dir.parent().unwrap(), 5, &dev).unwrap();
        model.model.encoder_mut().disable_dropout();
        let ids = model.checkpoint.tokenize(&texts).unwrap();
        let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let groups = batches::batch_groups(&model.checkpoint, &seqs, &targets, split, micro_batch, &dev).unwrap();
        let mut trainer = trainer::Trainer::new(model, &p, 5).unwrap();
        (groups.len(), trainer.step(&groups, 0.0).unwrap())
    };
    let (one, whole) = step(false, None);
    let (many, split) = step(true, None);
    // `micro_batch: 3`: the batch in parts of at most 3 examples, each part's gradients added (gradient
    // accumulation).
    let (parts, accumulated) = step(false, Some(3));
    let (_, split_accumulated) = step(true, Some(10));
    assert_eq!((one, many, parts), (1, 2, 4), "the long texts are computed apart from the short ones; 10 examples in parts of 3");
    for (how, got) in [("length groups", &split), ("micro-batches", &accumulated), ("length groups, a backward pass each", &split_accumulated)] {
        assert!((got.loss - whole.loss).abs() < 1e-6, "{how}: loss {} against {}", got.loss, whole.loss);
        assert!((got.grad_norm - whole.grad_norm).abs() < 1e-5 * whole.grad_norm, "{how}: gradient norm {} against {}", got.grad_norm, whole.grad_norm);
    }
}
