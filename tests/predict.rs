//! `bench predict` classifies new text from the model a run saved, and reproduces the probabilities the
//! run itself recorded for its evaluation examples. Also covers the tiny-config path of each transformer
//! method on every change (CI).

mod common;

use common::{csv_spec, smoke_csv, Sandbox};
use predicates::prelude::*;

fn models_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

fn smoke_texts() -> Vec<String> {
    let mut r = csv::Reader::from_path(smoke_csv()).unwrap();
    r.records().map(|rec| rec.unwrap()[0].to_string()).collect()
}

/// Trains one tiny run of `method` on the smoke sample and checks predict against the record: the same
/// probabilities, and labels at the run's decision threshold. Returns the record.
fn check_predict_matches_record(method: &str, artifact_files: &[&str]) -> serde_json::Value {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", method));
    sb.bench().arg("--models-dir").arg(models_dir()).args(["-q", "run"]).arg(&spec).assert().success();
    let records = sb.records();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    let id = r["id"].as_str().unwrap();
    let dir = sb.runs_dir().join(r["artifact"].as_str().expect("the run saved its model"));
    for f in artifact_files {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }

    let texts = smoke_texts();
    let preds: Vec<(usize, f64)> =
        r["predictions"].as_array().unwrap().iter().take(12).map(|p| (p["index"].as_u64().unwrap() as usize, p["probability"].as_f64().unwrap())).collect();
    let mut cmd = sb.bench();
    cmd.arg("--models-dir").arg(models_dir()).args(["predict", "--run", &id[..8], "--json"]);
    for (i, _) in &preds {
        cmd.arg(&texts[*i]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), preds.len());
    let threshold = r["metrics"]["threshold"].as_f64().unwrap();
    for (line, (_, want)) in lines.iter().zip(&preds) {
        let got = line["probability"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-5, "{method}: predict gave {got}, the run recorded {want}");
        assert_eq!(line["label"], if got > threshold { "spam" } else { "ham" });
    }
    r
}

#[test]
fn word2vec_run_predicts_from_its_saved_vectors_and_head() {
    check_predict_matches_record(
        "  kind: word2vec\n  vector_size: 20\n  epochs: 5\n  min_count: 1\n",
        &["vectors.txt", "pooling.safetensors", "head.safetensors"],
    );
    check_predict_matches_record("  kind: word2vec\n  vector_size: 20\n  pooling: tfidf\n  head:\n    C: 10\n", &["vectors.txt"]);
}

#[test]
fn frozen_run_predicts_from_its_saved_head() {
    check_predict_matches_record("  kind: frozen\n", &["head.safetensors"]);
}

#[test]
fn finetuned_run_predicts_from_its_hugging_face_folder() {
    check_predict_matches_record("  kind: finetune\n  epochs: 1\n  batch_size: 32\n  lr: 1.0e-4\n", &["config.json", "model.safetensors", "tokenizer.json"]);
}

#[test]
fn lora_run_predicts_from_its_adapter() {
    check_predict_matches_record("  kind: lora\n  epochs: 1\n  batch_size: 32\n  lr: 1.0e-3\n", &["adapter_model.safetensors", "adapter_config.json"]);
}

// With mean pooling the head reads other states than BertForSequenceClassification's; predict must pool
// as the run did, from the record, for both ways a model is rebuilt.
#[test]
fn mean_pooled_finetuned_run_predicts_as_it_was_trained() {
    check_predict_matches_record("  kind: finetune\n  pooling: mean\n  epochs: 1\n  batch_size: 32\n  lr: 1.0e-4\n", &["config.json", "model.safetensors"]);
}

#[test]
fn mean_pooled_lora_run_predicts_as_it_was_trained() {
    check_predict_matches_record("  kind: lora\n  pooling: mean\n  epochs: 1\n  batch_size: 32\n  lr: 1.0e-3\n", &["adapter_model.safetensors"]);
}

// A threshold chosen on the held-out data is the one the record's metrics, its stored mistakes and
// `bench predict`'s labels all use.
#[test]
fn a_tuned_threshold_carries_from_the_record_to_predict() {
    let method =
        "  kind: lora\n  epochs: 1\n  batch_size: 32\n  lr: 1.0e-3\n  early_stopping:\n    holdout: 0.2\n    metric: accuracy\n    tune_threshold: true\n";
    let r = check_predict_matches_record(method, &["adapter_model.safetensors"]);
    let threshold = r["metrics"]["threshold"].as_f64().unwrap();
    assert_eq!(r["history"]["threshold"].as_f64(), Some(threshold));
    assert_ne!(threshold, 0.5, "after one short epoch the held-out data should move the threshold (else this test checks nothing)");
    for p in r["predictions"].as_array().unwrap() {
        let wrong = (p["probability"].as_f64().unwrap() > threshold) != p["label"].as_bool().unwrap();
        assert_eq!(p.get("text").is_some(), wrong, "mistakes are kept at the run's threshold: {p}");
    }
}

#[test]
fn lsa_runs_keep_no_model() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", "  kind: lsa\n  components: 5\n"));
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&sb.records()[0]).unwrap()).unwrap();
    sb.bench().args(["predict", "--run", r["id"].as_str().unwrap(), "hello"]).assert().code(2).stderr(predicate::str::contains("kept no model"));
}
