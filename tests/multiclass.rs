//! Four classes end to end, with every method: the shipped four-topic sample (datasets/smoke/
//! topics-smoke.csv) through LSA, word2vec, the frozen encoder, full fine-tuning and LoRA; each record holds the
//! k-class metrics and every example's four probabilities, `bench predict` prints four probabilities
//! summing to 1 with the most probable class as the label, and the saved models name their classes.

mod common;

use std::path::{Path, PathBuf};

use common::Sandbox;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

fn topics_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/smoke/topics-smoke.csv")
}

const CLASSES: [&str; 4] = ["food", "science", "sport", "travel"];

/// Runs one method on the topics sample; returns the record.
fn run(sb: &Sandbox, method: &str) -> serde_json::Value {
    let spec = format!(
        "dataset:\n  format: csv\n  path: {}\n  text_column: text\n  label_column: topic\n  split:\n    validation: 0.25\nmethod:\n{method}",
        topics_csv().display()
    );
    let path = sb.write("topics.yaml", spec);
    sb.bench().arg("--models-dir").arg(models_dir()).args(["-q", "run"]).arg(&path).assert().success();
    let record = sb.records().into_iter().last().expect("a record");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    std::fs::remove_file(&record).unwrap();
    r
}

fn check_record(r: &serde_json::Value, min_accuracy: f64) -> String {
    assert_eq!(r["status"], "ok", "{}", r["error"]);
    assert_eq!(r["schema"], 2);
    assert_eq!(r["data"]["classes"], serde_json::json!(CLASSES));
    assert!(r.get("metrics").is_none(), "binary metrics are for two classes");
    let m = &r["multiclass"];
    assert_eq!(m["examples"], 80);
    assert_eq!(m["confusion_matrix"].as_array().unwrap().len(), 4);
    assert_eq!(r["data"]["eval"]["per_class"], serde_json::json!([20, 20, 20, 20]));
    let accuracy = m["accuracy"].as_f64().unwrap();
    assert!(accuracy >= min_accuracy, "accuracy {accuracy} < {min_accuracy}");
    let preds = r["class_predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 80);
    for p in preds {
        let probs: Vec<f64> = p["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(probs.len(), 4);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{probs:?}");
    }
    r["id"].as_str().unwrap().to_string()
}

/// `bench predict --json` on two texts: each line has the four probabilities, summing to 1, and the
/// most probable class as its label.
fn check_predict(sb: &Sandbox, r: &serde_json::Value) {
    // The record was moved away by `run`; put it back for predict.
    let id = r["id"].as_str().unwrap();
    sb.write(&format!("runs/{id}.json"), serde_json::to_vec(r).unwrap());
    let out = sb
        .bench()
        .arg("--models-dir")
        .arg(models_dir())
        .args(["predict", "--run", &id[..8], "--json", "Who won the tennis final on Sunday?", "Which train goes from Oslo to Bergen?"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let probs = line["probabilities"].as_object().unwrap();
        assert_eq!(probs.keys().map(String::as_str).collect::<std::collections::BTreeSet<_>>(), CLASSES.into_iter().collect());
        let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{line}");
        let top = probs.iter().max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap())).unwrap().0;
        assert_eq!(line["label"].as_str().unwrap(), top);
        assert!(line.get("probability").is_none(), "one probability is a two-class notion");
    }
    std::fs::remove_file(sb.runs_dir().join(format!("{id}.json"))).unwrap();
}

/// A saved Hugging Face config names the four classes.
fn check_config(sb: &Sandbox, id: &str) {
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(sb.runs_dir().join(id).join("config.json")).unwrap()).unwrap();
    assert_eq!(config["num_labels"], 4);
    assert_eq!(config["id2label"]["2"], "sport");
    assert_eq!(config["label2id"]["travel"], 3);
}

#[test]
fn lsa_on_four_classes() {
    let sb = Sandbox::new();
    let r = run(&sb, "  kind: lsa\n  components: 20\n  C: 10\n");
    check_record(&r, 0.95);
    assert_eq!(r.get("artifact"), None, "LSA keeps no model to predict with");
}

#[test]
fn word2vec_on_four_classes_and_predict() {
    let sb = Sandbox::new();
    let r = run(&sb, "  kind: word2vec\n  vector_size: 50\n  epochs: 20\n  min_count: 1\n  head:\n    C: 10\n");
    check_record(&r, 0.9);
    check_predict(&sb, &r);
}

#[test]
fn frozen_on_four_classes_and_predict() {
    let sb = Sandbox::new();
    let r = run(&sb, "  kind: frozen\n  backbone: all-MiniLM-L6-v2\n  max_length: 32\n  C: 10\n");
    check_record(&r, 0.9);
    check_predict(&sb, &r);
}

#[test]
fn finetune_on_four_classes_and_predict() {
    let sb = Sandbox::new();
    let r = run(&sb, "  kind: finetune\n  backbone: all-MiniLM-L6-v2\n  max_length: 32\n  epochs: 2\n  batch_size: 16\n  lr: 1.0e-4\n");
    let id = check_record(&r, 0.5);
    check_config(&sb, &id);
    check_predict(&sb, &r);
}

#[test]
fn lora_on_four_classes_and_predict() {
    let sb = Sandbox::new();
    let r = run(&sb, "  kind: lora\n  backbone: all-MiniLM-L6-v2\n  max_length: 32\n  epochs: 3\n  batch_size: 16\n  lr: 2.0e-3\n");
    let id = check_record(&r, 0.5);
    check_config(&sb, &id);
    assert!(sb.runs_dir().join(&id).join("adapter_model.safetensors").is_file());
    check_predict(&sb, &r);
}

/// Several files read as one (a list and a glob), two text columns joined, labels merged by a `classes`
/// mapping, and a test file whose unknown class is counted and named, not silently dropped.
#[test]
fn several_files_joined_columns_mapped_classes_and_an_unknown_test_class() {
    let sb = Sandbox::new();
    let topics = std::fs::read_to_string(topics_csv()).unwrap();
    let rows: Vec<&str> = topics.lines().skip(1).collect();
    // Three files with a title and a body column: the text split in two at its first space.
    for (part, chunk) in rows.chunks(110).enumerate() {
        let mut csv = String::from("title,body,topic\n");
        for row in chunk {
            let (text, topic) = row.rsplit_once(',').unwrap();
            let text = text.trim_matches('"');
            let (title, body) = text.split_once(' ').unwrap_or((text, ""));
            csv.push_str(&format!("\"{title}\",\"{body}\",{topic}\n"));
        }
        sb.write(&format!("parts/p{part}.csv"), csv);
    }
    sb.write(
        "test.csv",
        "title,body,topic\nWho won,the rugby final on Sunday?,sport\nHow long,should I bake the pie?,food\nWhat is,the capital of Peru?,geography\n",
    );
    let spec = "dataset:\n  format: csv\n  path: ['parts/p0.csv', 'parts/p[12].csv']\n  text_column: [title, body]\n  label_column: topic\n  \
                classes:\n    sport: leisure\n    travel: leisure\n    food: food\n    science: science\n  split:\n    test_file: test.csv\n\
                method:\n  kind: lsa\n  components: 20\n  C: 10\n";
    let path = sb.write("s.yaml", spec);
    let out = sb.bench().args(["run"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains("1 row skipped (1 unknown label)"), "announced: {printed}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&sb.records()[0]).unwrap()).unwrap();
    assert_eq!(r["data"]["classes"], serde_json::json!(["leisure", "food", "science"]));
    assert_eq!(r["data"]["files"].as_array().unwrap().len(), 4, "three parts and the test file");
    assert_eq!(r["data"]["train"]["per_class"], serde_json::json!([160, 80, 80]));
    assert_eq!(r["data"]["eval"]["examples"], 2);
    let skipped = &r["data"]["test_load_report"]["malformed_examples"][0];
    assert!(skipped["reason"].as_str().unwrap().contains("\"geography\""), "{skipped}");
    assert_eq!(skipped["line"], 4);
    assert_eq!(r["multiclass"]["accuracy"], 1.0, "the two known questions are easy");
}

/// Floors take the k-class metrics' names; a two-class metric asked of a k-class run does not hold, and
/// says which to use.
#[test]
fn floors_name_the_macro_metrics_and_refuse_binary_ones_on_k_classes() {
    let sb = Sandbox::new();
    let spec = format!(
        "dataset:\n  format: csv\n  path: {}\n  text_column: text\n  label_column: topic\nmethod:\n  kind: lsa\n  components: 20\n  C: 10\n\
         floors:\n  macro_f1: 0.9\n  weighted_f1: 0.9\n  macro_auroc: 0.9\n  top2_accuracy: 0.9\n",
        topics_csv().display()
    );
    let path = sb.write("t.yaml", &spec);
    sb.bench().args(["-q", "run"]).arg(&path).assert().success();
    let out = sb.bench().args(["check"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("PASS").count(), 4, "{stdout}");

    let bad = sb.write("b.yaml", spec.replace("  top2_accuracy: 0.9\n", "  f1: 0.9\n"));
    let out = sb.bench().args(["check"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("f1 is a two-class metric; this run has 4 classes"), "{stdout}");
}
