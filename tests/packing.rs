//! A padded batch computed without its padding (the CPU default) gives the same hidden states at every
//! real position as the padded, masked computation, and the same gradient for every weight: packing is
//! a way of computing, not a change to the model.

use std::path::Path;

use candle_core::{Device, Tensor};
use textbench::models::Backbone;
use textbench::nn::Mode;

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn packed_and_padded_batches_agree_on_real_positions_and_on_every_gradient() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models/all-MiniLM-L6-v2"));
    let dev = Device::Cpu;
    let mut backbone = Backbone::load(dir, 64, true, &dev).unwrap();
    let vars = backbone.trainable.clone();
    // Lengths 4 to 20 tokens: most of the batch is padding for the short ones.
    let texts = ["hi", "win a free prize now, reply YES to claim your reward before midnight tonight", "see you at lunch", "ok"];
    let ids = backbone.checkpoint.tokenize(&texts).unwrap();
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (tok, mask) = backbone.checkpoint.batch(&refs, &dev).unwrap();
    let (b, t) = mask.dims2().unwrap();
    // A loss over every real position and dimension (padding masked out), with a fixed projection.
    let real = mask.to_dtype(candle_core::DType::F32).unwrap().reshape((b, t, 1)).unwrap();
    let proj = Tensor::randn(0f32, 1.0, (b, t, 384), &dev).unwrap().broadcast_mul(&real).unwrap();
    let mut run = |packing: bool| {
        backbone.encoder.set_packing(packing);
        let hidden = backbone.encoder.forward(&tok, &mask, &mut Mode::eval()).unwrap();
        let hidden = hidden.broadcast_mul(&real).unwrap();
        let grads = (&hidden * &proj).unwrap().sum_all().unwrap().backward().unwrap();
        let grads: Vec<Tensor> = vars.iter().map(|(name, v)| grads.get(v.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}")).clone()).collect();
        (hidden, grads)
    };
    let (packed, packed_grads) = run(true);
    let (padded, padded_grads) = run(false);
    let diff = max_abs(&(&packed - &padded).unwrap());
    assert!(diff < 1e-5, "hidden states differ by {diff} at real positions");
    for ((name, _), (a, b)) in vars.iter().zip(packed_grads.iter().zip(&padded_grads)) {
        let (diff, size) = (max_abs(&(a - b).unwrap()), max_abs(b));
        assert!(diff <= 1e-4 * (1.0 + size), "{name}: gradients differ by {diff} (largest {size})");
    }
}
