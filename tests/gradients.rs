//! Training reaches every weight: after a backward pass through the encoder in train mode (dropout on),
//! every weight tensor has a non-zero gradient. candle-transformers' BertModel fails this (its fused
//! layer norm has no backward, so only a head on top would train).

use std::path::Path;

use candle_core::{Device, Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use textbench::models::Backbone;
use textbench::nn::{pool, Mode, Pooling};

#[test]
fn every_encoder_weight_gets_a_gradient() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models/all-MiniLM-L6-v2"));
    let dev = Device::Cpu;
    let backbone = Backbone::load(dir, 64, true, &dev).unwrap();
    assert_eq!(backbone.trainable.len(), 5 + 6 * 16, "embeddings (3 tables + layer norm) and 16 tensors per layer");
    let ids = backbone.checkpoint.tokenize(&["win a free prize now", "see you at lunch tomorrow?"]).unwrap();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (tok, mask) = backbone.checkpoint.batch(&refs, &dev).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let hidden = backbone.encoder.forward(&tok, &mask, &mut Mode::train(&mut rng)).unwrap();
    // A stand-in loss that depends on every position and dimension.
    let pooled = pool(&hidden, &mask, Pooling::Mean).unwrap();
    let cls = pool(&hidden, &mask, Pooling::Cls).unwrap();
    let loss = (pooled.sqr().unwrap().sum(D::Minus1).unwrap() + cls.sum(D::Minus1).unwrap()).unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    let mut missing = Vec::new();
    for (name, var) in &backbone.trainable {
        let g: Option<&Tensor> = grads.get(var.as_tensor());
        let norm = g.map(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).unwrap_or(0.0);
        if norm.is_nan() || norm <= 0.0 {
            missing.push(name.clone());
        }
    }
    assert!(missing.is_empty(), "no gradient for {} of {} weights: {missing:?}", missing.len(), backbone.trainable.len());
}
