//! The candle encoder reproduces PyTorch's outputs for MiniLM (../shared/reference/minilm-parity.json):
//! identical token ids, and the [CLS] hidden state and mean-pooled embedding within 1e-4 for 32 texts.

use std::path::Path;

use candle_core::Device;
use textbench::models::embed::embed_texts;
use textbench::models::Backbone;
use textbench::nn::Pooling;

fn shared() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared"))
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

#[test]
fn minilm_matches_pytorch() {
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(shared().join("reference/minilm-parity.json")).unwrap()).unwrap();
    let texts: Vec<&str> = reference["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(texts.len(), 32);
    let max_length = reference["max_length"].as_u64().unwrap() as usize;
    let backbone = Backbone::load(&shared().join("models/all-MiniLM-L6-v2"), max_length, false, &Device::Cpu).unwrap();

    // Batches of 5 mix lengths, so padding inside a batch is exercised too.
    let (ids, mean) = embed_texts(&backbone, &texts, Pooling::Mean, 5, &Device::Cpu).unwrap();
    let (_, cls) = embed_texts(&backbone, &texts, Pooling::Cls, 7, &Device::Cpu).unwrap();
    let (mut worst_mean, mut worst_cls) = (0.0f64, 0.0f64);
    for i in 0..texts.len() {
        let want_ids: Vec<u32> = reference["input_ids"][i].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids[i], want_ids, "token ids of text {i}");
        let want = |key: &str| -> Vec<f64> { reference[key][i].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        worst_mean = worst_mean.max(max_abs(&mean[i], &want("mean_pooled")));
        worst_cls = worst_cls.max(max_abs(&cls[i], &want("cls_last_hidden")));
    }
    eprintln!("max abs difference: mean-pooled {worst_mean:.2e}, CLS {worst_cls:.2e}");
    assert!(worst_mean < 1e-4, "mean-pooled embeddings differ by {worst_mean}");
    assert!(worst_cls < 1e-4, "CLS hidden states differ by {worst_cls}");
}
