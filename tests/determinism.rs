//! The same spec and seed give identical results, whatever the number of threads.

mod common;

use common::{csv_spec, synthetic_csv, Sandbox};

fn metrics_of(sb: &Sandbox, threads: &str) -> (serde_json::Value, serde_json::Value) {
    let spec = sb.path().join("s.yaml");
    sb.bench().args(["-q", "run", "--force", "--threads", threads]).arg(&spec).assert().success();
    let records = sb.records();
    assert_eq!(records.len(), 1);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    (r["metrics"].clone(), r["predictions"].clone())
}

#[test]
fn same_spec_and_seed_give_identical_metrics() {
    let sb = Sandbox::new();
    sb.write("data.csv", synthetic_csv(1500, 7));
    sb.write("s.yaml", csv_spec("data.csv", "  kind: lsa\n  components: 30\n  ngram_range: [1, 2]\n") + "seeds: [5]\n");
    let (m1, p1) = metrics_of(&sb, "2");
    let (m2, p2) = metrics_of(&sb, "2");
    let (m3, p3) = metrics_of(&sb, "1");
    assert_eq!(m1, m2);
    assert_eq!(p1, p2, "probabilities identical to the bit");
    assert_eq!(m1, m3, "one thread or two: the same numbers");
    assert_eq!(p1, p3);
    assert!(m1["accuracy"].as_f64().unwrap() > 0.5);
}

#[test]
fn training_a_transformer_is_reproducible() {
    let sb = Sandbox::new();
    std::fs::copy(common::smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    sb.write("s.yaml", csv_spec("smoke.csv", "  kind: lora\n  epochs: 1\n  batch_size: 16\n  lr: 1.0e-3\n") + "seeds: [4]\n");
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    let run = |threads: &str| {
        sb.bench().arg("--models-dir").arg(&models).args(["-q", "run", "--force", "--threads", threads]).arg(sb.path().join("s.yaml")).assert().success();
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&sb.records()[0]).unwrap()).unwrap();
        (r["predictions"].clone(), r["history"]["steps"].clone())
    };
    let first = run("2");
    assert_eq!(first, run("2"), "same seed, same probabilities and losses to the bit");
}
