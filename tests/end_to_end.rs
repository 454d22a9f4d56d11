//! The whole path on the shipped smoke sample: run, store, list, show, check.

mod common;

use common::{csv_spec, smoke_csv, synthetic_csv, Sandbox};
use predicates::prelude::*;

fn smoke_spec(sb: &Sandbox, floors: &str) -> std::path::PathBuf {
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    sb.write("smoke.yaml", format!("{}seeds: [0, 1]\nfloors:\n{floors}", csv_spec("smoke.csv", "  kind: lsa\n  components: 20\n  C: 10\n")))
}

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn run_stores_complete_records_and_check_enforces_floors() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.9\n  auroc: 0.95\n");
    sb.bench().args(["run"]).arg(&spec).assert().success().stderr(predicate::str::contains("2 ran, 0 already done"));
    let records = sb.records();
    assert_eq!(records.len(), 2);
    let r = read_json(&records[0]);
    for key in ["id", "status", "config", "metrics", "curves", "timings", "trainable_parameters", "peak_memory_bytes", "environment", "predictions", "data"] {
        assert!(!r[key].is_null(), "record lacks {key}");
    }
    assert_eq!(r["status"], "ok");
    let m = &r["metrics"];
    for key in ["accuracy", "precision", "recall", "f1", "auroc", "average_precision", "log_loss", "confusion_matrix"] {
        assert!(!m[key].is_null(), "metrics lack {key}");
    }
    for key in ["accuracy", "f1", "auroc"] {
        let iv = &m["intervals"][key];
        assert!(iv["low"].as_f64().unwrap() <= m[key].as_f64().unwrap() && m[key].as_f64().unwrap() <= iv["high"].as_f64().unwrap());
    }
    assert_eq!(m["intervals"]["resamples"], 1000);
    // Every evaluation example has a prediction, and the confusion matrix counts the whole set.
    let eval = r["data"]["eval"]["examples"].as_u64().unwrap();
    assert_eq!(eval, 80);
    assert_eq!(r["predictions"].as_array().unwrap().len() as u64, eval);
    let cm: u64 = m["confusion_matrix"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(cm, eval);
    assert_eq!(r["data"]["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(r["trainable_parameters"], 21, "20 components + intercept");

    sb.bench().args(["check"]).arg(&spec).assert().success().stdout(predicate::str::contains("PASS").and(predicate::str::contains("FAIL").not()));
    sb.bench().args(["list"]).assert().success().stdout(predicate::str::contains("smoke").and(predicate::str::contains("ok")));
    let id = r["id"].as_str().unwrap();
    sb.bench().args(["show", &id[..6]]).assert().success().stdout(predicate::str::contains("accuracy").and(predicate::str::contains(id)));
    let shown: serde_json::Value = serde_json::from_slice(&sb.bench().args(["show", id, "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(shown, r);

    // A floor above what the model reaches fails the check with exit 1.
    let strict = sb.write(
        "strict.yaml",
        std::fs::read_to_string(&spec).unwrap().replace("accuracy: 0.9", "accuracy: 1.0").replace("auroc: 0.95", "log_loss_is_not_a_floor: 1"),
    );
    sb.bench().args(["check"]).arg(&strict).assert().code(2).stderr(predicate::str::contains("unknown variant `log_loss_is_not_a_floor`"));
    let strict = sb.write("strict.yaml", std::fs::read_to_string(&spec).unwrap().replace("accuracy: 0.9", "accuracy: 0.9999"));
    sb.bench().args(["check"]).arg(&strict).assert().code(1).stdout(predicate::str::contains("FAIL"));
}

#[test]
fn check_reports_missing_runs() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.5\n");
    sb.bench().args(["check"]).arg(&spec).assert().code(1).stdout(predicate::str::contains("MISSING"));
}

#[test]
fn rerun_skips_done_runs_and_force_reruns() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.5\n");
    sb.bench().args(["run"]).arg(&spec).assert().success();
    sb.bench().args(["run"]).arg(&spec).assert().success().stderr(predicate::str::contains("0 ran, 2 already done"));
    sb.bench().args(["run", "--force"]).arg(&spec).assert().success().stderr(predicate::str::contains("2 ran, 0 already done"));
    sb.bench().args(["run", "--dry-run"]).arg(&spec).assert().success().stdout(predicate::str::contains("done").and(predicate::str::contains("pending").not()));
}

#[test]
fn dry_run_expands_the_sweep_and_writes_nothing() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.5\n");
    let text = std::fs::read_to_string(&spec).unwrap() + "sweep:\n  method.components: [5, 10, 15]\n";
    let spec = sb.write("sweep.yaml", text);
    let out = sb.bench().args(["run", "--dry-run"]).arg(&spec).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().filter(|l| l.contains("pending")).count(), 6, "3 sweep values × 2 seeds:\n{stdout}");
    assert!(stdout.contains("method.components=15"));
    assert!(sb.runs_dir_is_empty());
}

#[test]
fn a_failing_run_is_recorded_and_the_sweep_goes_on() {
    let sb = Sandbox::new();
    sb.write("data.csv", synthetic_csv(200, 1));
    // min_df above the document count leaves an empty vocabulary: that run fails, the other succeeds.
    let spec = sb.write("s.yaml", csv_spec("data.csv", "  kind: lsa\n  components: 5\n") + "sweep:\n  method.min_df: [1, 100000]\n");
    sb.bench().args(["run"]).arg(&spec).assert().code(1).stderr(predicate::str::contains("1 ran, 0 already done (skipped), 1 failed"));
    let records: Vec<serde_json::Value> = sb.records().iter().map(|p| read_json(p)).collect();
    assert_eq!(records.len(), 2);
    let failed: Vec<_> = records.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["error"].as_str().unwrap().contains("vocabulary is empty"));
    // A failed run is not "done": running again retries it (and fails again), the good one is skipped.
    sb.bench().args(["run"]).arg(&spec).assert().code(1).stderr(predicate::str::contains("0 ran, 1 already done (skipped), 1 failed"));
}

#[test]
fn malformed_rows_are_counted_not_dropped_silently() {
    let sb = Sandbox::new();
    let mut csv = synthetic_csv(100, 2);
    csv.push_str("only one field\n");
    csv.push_str("some text,unknown-label\n");
    csv.push_str(",spam\n");
    sb.write("data.csv", csv);
    let spec = sb.write("s.yaml", csv_spec("data.csv", "  kind: lsa\n  components: 5\n"));
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
    let r = read_json(&sb.records()[0]);
    let report = &r["data"]["load_report"];
    assert_eq!(report["malformed_rows"], 3);
    assert_eq!(report["rows_read"], 103);
    let reasons: Vec<String> = report["malformed_examples"].as_array().unwrap().iter().map(|m| format!("{}:{}", m["line"], m["reason"])).collect();
    assert!(reasons[0].starts_with("102:") && reasons[0].contains("1 fields, expected 2"), "{reasons:?}");
    assert!(reasons[1].contains("unknown label"), "{reasons:?}");
    assert!(reasons[2].contains("empty text"), "{reasons:?}");
}

#[test]
fn jsonl_and_tsv_are_read() {
    let sb = Sandbox::new();
    let mut jsonl = String::new();
    let mut tsv = String::from("body\tis_spam\n");
    for line in synthetic_csv(120, 3).lines().skip(1) {
        let (text, label) = line.rsplit_once(',').unwrap();
        jsonl.push_str(&serde_json::json!({"body": text, "is_spam": label == "spam"}).to_string());
        jsonl.push('\n');
        tsv.push_str(&format!("{text}\t{}\n", (label == "spam") as u8));
    }
    sb.write("d.jsonl", jsonl);
    sb.write("d.tsv", tsv);
    let method = "method:\n  kind: lsa\n  components: 5\n";
    let j = sb.write(
        "j.yaml",
        format!(
            "dataset:\n  format: jsonl\n  path: d.jsonl\n  text_column: body\n  label_column: is_spam\n  positive: \"true\"\n  negative: \"false\"\n{method}"
        ),
    );
    let t = sb.write("t.yaml", format!("dataset:\n  format: tsv\n  path: d.tsv\n  text_column: body\n  label_column: is_spam\n{method}"));
    sb.bench().args(["-q", "run"]).arg(&j).arg(&t).assert().success();
    let records: Vec<serde_json::Value> = sb.records().iter().map(|p| read_json(p)).collect();
    assert_eq!(records.len(), 2);
    // Same texts and labels in the same order: the same fingerprint, whatever the file format.
    assert_eq!(records[0]["data"]["fingerprint"], records[1]["data"]["fingerprint"]);
}

#[test]
fn stale_temporaries_of_killed_runs_are_cleaned_up() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.5\n");
    let old = sb.write("runs/.tmp-killed.json", "{\"partial");
    let fresh = sb.write("runs/.tmp-in-flight.json", "{\"partial");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
    assert!(!old.exists(), "an hour-old temporary is removed");
    assert!(fresh.exists(), "a recent one may belong to a run in flight");
    sb.bench().args(["list"]).assert().success().stderr(predicate::str::contains("partial").not());
}

#[test]
fn exported_split_is_the_split_the_runs_use() {
    let sb = Sandbox::new();
    let spec = smoke_spec(&sb, "  accuracy: 0.5\n");
    sb.bench().args(["-q", "run"]).arg(&spec).assert().success();
    let r = read_json(&sb.records()[0]);
    let out = sb.path().join("split");
    sb.bench()
        .args(["datasets", "split"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains(r["data"]["fingerprint"].as_str().unwrap()));
    let rows =
        |name: &str| -> Vec<serde_json::Value> { std::fs::read_to_string(out.join(name)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect() };
    let (train, eval) = (rows("train.jsonl"), rows("eval.jsonl"));
    assert_eq!(train.len() as u64, r["data"]["train"]["examples"].as_u64().unwrap());
    assert_eq!(train.iter().filter(|x| x["label"] == 1).count() as u64, r["data"]["train"]["positives"].as_u64().unwrap());
    // The evaluation file lists the examples the run predicted, in its order, with its labels and texts.
    let preds = r["predictions"].as_array().unwrap();
    assert_eq!(eval.len(), preds.len());
    for (row, p) in eval.iter().zip(preds) {
        assert_eq!(row["label"] == 1, p["label"].as_bool().unwrap());
        if let Some(text) = p["text"].as_str() {
            assert_eq!(row["text"].as_str().unwrap(), text);
        }
    }
    assert!(preds.iter().any(|p| p["text"].is_string()), "the record keeps some texts to compare");
    // Together they are the whole file (the smoke sample repeats some texts, so rows are counted, not texts).
    assert_eq!((train.len() + eval.len()) as u64, r["data"]["loaded"]["examples"].as_u64().unwrap());
}
