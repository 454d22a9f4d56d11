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

/// The decoder family on the real SmolLM2-135M-Instruct GGUF (Q4_1, de-quantized to f32) reproduces
/// transformers' outputs (../shared/reference/smollm2-parity.json, computed through transformers' own GGUF
/// loader): identical token ids, the final-norm state of the last token and the mean over tokens within
/// 1e-3, and the same top-5 next tokens (output layer tied to the embeddings).
#[test]
fn smollm2_gguf_matches_pytorch() {
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(shared().join("reference/smollm2-parity.json")).unwrap()).unwrap();
    let texts: Vec<&str> = reference["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let rows = reference["rows"].as_array().unwrap();
    assert_eq!((texts.len(), rows.len()), (31, 31));
    let backbone = Backbone::load(&shared().join("models/SmolLM2-135M-Instruct"), 128, false, &Device::Cpu).unwrap();
    assert_eq!(backbone.checkpoint.family.name, "LLaMA");

    // Batches mix lengths: packed sequences, each attending causally within itself.
    let (ids, last) = embed_texts(&backbone, &texts, Pooling::Last, 5, &Device::Cpu).unwrap();
    let (_, mean) = embed_texts(&backbone, &texts, Pooling::Mean, 7, &Device::Cpu).unwrap();
    let embeddings = backbone.encoder.named_tensors().into_iter().find(|(n, _)| n == "embed_tokens.weight").unwrap().1;
    let hidden = candle_core::Tensor::from_vec(last.concat(), (texts.len(), last[0].len()), &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> = hidden.matmul(&embeddings.t().unwrap()).unwrap().to_vec2().unwrap();
    let (mut worst_last, mut worst_mean, mut worst_logit) = (0.0f64, 0.0f64, 0.0f64);
    for (i, row) in rows.iter().enumerate() {
        let want_ids: Vec<u32> = row["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids[i], want_ids, "token ids of text {i}");
        let want = |key: &str| -> Vec<f64> { row[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
        worst_last = worst_last.max(max_abs(&last[i], &want("last_token_hidden")));
        worst_mean = worst_mean.max(max_abs(&mean[i], &want("mean_pooled")));
        let mut order: Vec<usize> = (0..logits[i].len()).collect();
        order.sort_by(|&a, &b| logits[i][b].total_cmp(&logits[i][a]));
        let top5: Vec<u64> = order[..5].iter().map(|&t| t as u64).collect();
        let want_top: Vec<u64> = row["next_token_top5"]["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(top5, want_top, "top-5 next tokens of text {i}");
        for (&t, l) in top5.iter().zip(row["next_token_top5"]["logits"].as_array().unwrap()) {
            worst_logit = worst_logit.max((logits[i][t as usize] as f64 - l.as_f64().unwrap()).abs());
        }
    }
    eprintln!("max abs difference: last-token {worst_last:.2e}, mean-pooled {worst_mean:.2e}, top-5 logits {worst_logit:.2e}");
    assert!(worst_last < 1e-3, "last-token hidden states differ by {worst_last}");
    assert!(worst_mean < 1e-3, "mean-pooled states differ by {worst_mean}");
    assert!(worst_logit < 1e-2, "top-5 logits differ by {worst_logit}");
}

/// The tiny random decoders written by transformers (benches/tiny_decoders.py: a LLaMA with
/// grouped-query attention and llama3 rotary scaling, a Qwen2 with q/k/v biases and one key/value head)
/// give transformers' final-norm hidden states within 1e-4, loaded from their Hugging Face folders.
#[test]
fn tiny_llama_and_qwen2_folders_match_transformers() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("tiny-decoders.json")).unwrap()).unwrap();
    let texts: Vec<&str> = reference["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for name in ["tiny-llama", "tiny-qwen2"] {
        let backbone = Backbone::load(&data.join(name), 128, false, &Device::Cpu).unwrap();
        let (ids, last) = embed_texts(&backbone, &texts, Pooling::Last, 2, &Device::Cpu).unwrap();
        let (_, mean) = embed_texts(&backbone, &texts, Pooling::Mean, 3, &Device::Cpu).unwrap();
        let (mut worst_last, mut worst_mean) = (0.0f64, 0.0f64);
        for (i, row) in reference["models"][name]["rows"].as_array().unwrap().iter().enumerate() {
            let want_ids: Vec<u32> = row["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(ids[i], want_ids, "{name}: token ids of text {i}");
            let want = |key: &str| -> Vec<f64> { row[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
            worst_last = worst_last.max(max_abs(&last[i], &want("last_token_hidden")));
            worst_mean = worst_mean.max(max_abs(&mean[i], &want("mean_pooled")));
        }
        eprintln!("{name}: max abs difference: last-token {worst_last:.2e}, mean-pooled {worst_mean:.2e}");
        assert!(worst_last < 1e-4 && worst_mean < 1e-4, "{name}: hidden states differ by {worst_last} (last) and {worst_mean} (mean)");
    }
}

/// A GGUF shared without its tokenizer.json or config.json: the tokenizer built from the file's own
/// vocabulary, merges and pre-tokenizer type gives the shared tokenizer.json's ids on the parity texts
/// (and on digits, spaces, newlines and special tokens), and the config read from the metadata has
/// config.json's values.
#[test]
fn smollm2_gguf_metadata_gives_the_shared_tokenizer_and_config() {
    let folder = shared().join("models/SmolLM2-135M-Instruct");
    let gguf = textbench::models::gguf::Gguf::open(&folder.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let built = gguf.tokenizer().unwrap();
    let shared_tok = tokenizers::Tokenizer::from_file(folder.join("tokenizer.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(shared().join("reference/smollm2-parity.json")).unwrap()).unwrap();
    let mut texts: Vec<String> = reference["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    texts.extend(["Call 08452810075 now!!", "two  spaces\nand a newline\t tab", "<|im_start|>user\nhi<|im_end|>", "naïve café — ünïcode"].map(String::from));
    for text in &texts {
        let a = built.encode(text.as_str(), true).unwrap();
        let b = shared_tok.encode(text.as_str(), true).unwrap();
        assert_eq!(a.get_ids(), b.get_ids(), "token ids of {text:?}");
    }
    let config = gguf.config().unwrap();
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("config.json")).unwrap()).unwrap();
    for key in [
        "model_type",
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
    ] {
        assert_eq!(config[key], file[key], "{key}");
    }
    for key in ["rms_norm_eps", "rope_theta"] {
        assert!((config[key].as_f64().unwrap() - file[key].as_f64().unwrap()).abs() < 1e-9 * file[key].as_f64().unwrap(), "{key}");
    }
}

/// A GGUF file given alone (no config.json, no tokenizer.json beside it) loads from its metadata: the
/// same token ids and states as the shared folder gives.
#[test]
fn a_bare_gguf_file_loads_as_its_folder_does() {
    let folder = shared().join("models/SmolLM2-135M-Instruct");
    let bare = tempfile::tempdir().unwrap();
    let file = bare.path().join("smollm2.gguf");
    std::os::unix::fs::symlink(std::fs::canonicalize(folder.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap(), &file).unwrap();
    let texts = ["The capital of France is", "Call 08452810075 now!!", "ok"];
    let from_file = Backbone::load(&file, 64, false, &Device::Cpu).unwrap();
    let from_folder = Backbone::load(&folder, 64, false, &Device::Cpu).unwrap();
    let a = embed_texts(&from_file, &texts, Pooling::Last, 3, &Device::Cpu).unwrap();
    let b = embed_texts(&from_folder, &texts, Pooling::Last, 3, &Device::Cpu).unwrap();
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(from_file.checkpoint.fingerprint, from_folder.checkpoint.fingerprint);
}
