//! The frozen-encoder method on the shipped sample with the real MiniLM backbone.

mod common;

use common::{csv_spec, smoke_csv, Sandbox};
use predicates::prelude::*;

fn models_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

fn record(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn frozen_head_learns_and_embeddings_are_computed_once() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", "  kind: frozen\n  backbone: all-MiniLM-L6-v2\n") + "sweep:\n  method.C: [1, 10]\n");
    sb.bench().arg("--models-dir").arg(models_dir()).args(["-q", "run"]).arg(&spec).assert().success();
    let records: Vec<serde_json::Value> = sb.records().iter().map(|p| record(p)).collect();
    assert_eq!(records.len(), 2);
    // The second run of the sweep reused the first one's training embeddings.
    let cached: Vec<bool> = records.iter().map(|r| r["method_details"]["train_embeddings_from_cache"].as_bool().unwrap()).collect();
    assert_eq!(cached.iter().filter(|&&c| c).count(), 1, "{cached:?}");
    for r in &records {
        assert!(r["metrics"]["accuracy"].as_f64().unwrap() > 0.9, "the head learned: {}", r["metrics"]);
        assert_eq!(r["trainable_parameters"], 385, "384 weights and an intercept");
        assert_eq!(r["method_details"]["backbone_sha256"].as_str().unwrap().len(), 64);
    }
    // A new invocation reads the embeddings from disk and gets the very same numbers.
    let before = records.iter().map(|r| r["metrics"].clone()).collect::<Vec<_>>();
    sb.bench().arg("--models-dir").arg(models_dir()).args(["-q", "run", "--force"]).arg(&spec).assert().success();
    let after: Vec<serde_json::Value> = sb.records().iter().map(|p| record(p)).collect();
    assert!(after.iter().all(|r| r["method_details"]["train_embeddings_from_cache"] == true));
    assert_eq!(after.iter().map(|r| r["metrics"].clone()).collect::<Vec<_>>(), before);
}

#[test]
fn a_missing_backbone_is_an_input_error() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let spec = sb.write("s.yaml", csv_spec("smoke.csv", "  kind: frozen\n  backbone: no-such-model\n"));
    sb.bench().args(["run"]).arg(&spec).assert().code(2).stderr(predicate::str::contains("no-such-model").and(predicate::str::contains("models directory")));
    assert!(sb.runs_dir_is_empty());
}

#[test]
fn embed_prints_ids_and_embeddings() {
    let sb = Sandbox::new();
    let out = sb.bench().arg("--models-dir").arg(models_dir()).args(["embed", "--model", "all-MiniLM-L6-v2", "--json", "hello world"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["input_ids"], serde_json::json!([101, 7592, 2088, 102]));
    assert_eq!(v["embedding"].as_array().unwrap().len(), 384);
}

#[test]
fn device_cuda_without_cuda_is_an_input_error_and_auto_falls_back() {
    let sb = Sandbox::new();
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    let cuda = sb.write("cuda.yaml", csv_spec("smoke.csv", "  kind: lora\n  device: cuda\n"));
    if cfg!(feature = "cuda") {
        return; // a CUDA build on a GPU machine may well run it
    }
    sb.bench()
        .arg("--models-dir")
        .arg(models_dir())
        .args(["run"])
        .arg(&cuda)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("device: cuda is not available").and(predicate::str::contains("--features cuda")));
    assert!(sb.runs_dir_is_empty());
    let auto = sb.write("auto.yaml", csv_spec("smoke.csv", "  kind: frozen\n  device: auto\n"));
    sb.bench().arg("--models-dir").arg(models_dir()).args(["-q", "run"]).arg(&auto).assert().success();
}
