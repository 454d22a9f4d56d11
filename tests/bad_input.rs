//! Every kind of bad input gives a clear message, exit code 2, and writes nothing.

mod common;

use common::{csv_spec, smoke_csv, Sandbox};
use predicates::prelude::*;

const LSA: &str = "  kind: lsa\n  components: 5\n";

/// Runs `bench run spec.yaml` with the given spec and asserts exit 2, the message parts, and no writes.
fn assert_rejected(sb: &Sandbox, spec: &str, expected: &[&str]) {
    let path = sb.write("spec.yaml", spec);
    let mut assert = sb.bench().arg("run").arg(&path).assert().code(2);
    for part in expected {
        assert = assert.stderr(predicate::str::contains(*part));
    }
    assert!(sb.runs_dir_is_empty(), "nothing may be written on bad input");
}

fn with_smoke(sb: &Sandbox) -> String {
    std::fs::copy(smoke_csv(), sb.path().join("smoke.csv")).unwrap();
    "smoke.csv".into()
}

#[test]
fn yaml_syntax_error_names_line_and_column() {
    let sb = Sandbox::new();
    assert_rejected(&sb, "dataset:\n\tname: sms\nmethod:\n  kind: lsa\n", &["spec.yaml:2:1", "cannot start any token"]);
    assert_rejected(&sb, "dataset:\n  name: \"sms\nmethod:\n  kind: lsa\n", &["spec.yaml:5:1", "while scanning a quoted scalar"]);
}

#[test]
fn unknown_key_is_an_error_with_position() {
    let sb = Sandbox::new();
    let spec = csv_spec(&with_smoke(&sb), LSA).replace("  positive: spam\n", "  positive: spam\n  colour: red\n");
    assert_rejected(&sb, &spec, &["spec.yaml:7:3", "unknown field `colour`", "expected one of"]);
}

#[test]
fn unknown_method_lists_the_methods() {
    let sb = Sandbox::new();
    let spec = csv_spec(&with_smoke(&sb), "  kind: naive-bayes\n");
    assert_rejected(&sb, &spec, &["spec.yaml:", "unknown variant `naive-bayes`", "lsa"]);
}

#[test]
fn unknown_dataset_lists_the_datasets() {
    let sb = Sandbox::new();
    assert_rejected(
        &sb,
        "dataset:\n  name: imdb\nmethod:\n  kind: lsa\n",
        &["spec.yaml:2:9", "unknown variant `imdb`", "sms", "sms-kaggle", "enron", "jigsaw"],
    );
}

#[test]
fn missing_data_says_where_it_looked_and_how_to_get_it() {
    let sb = Sandbox::new();
    let looked = sb.data_dir().join("sms").join("SMSSpamCollection");
    assert_rejected(&sb, "dataset:\n  name: sms\nmethod:\n  kind: lsa\n", &[looked.to_str().unwrap(), "not found", "bench datasets fetch sms"]);
    let sb = Sandbox::new();
    assert_rejected(&sb, "dataset:\n  name: enron\n  parts: [2]\nmethod:\n  kind: lsa\n", &["enron2.tar.gz", "bench datasets fetch enron"]);
    let sb = Sandbox::new();
    assert_rejected(&sb, "dataset:\n  name: jigsaw\nmethod:\n  kind: lsa\n", &["jigsaw", "Kaggle"]);
}

#[test]
fn missing_column_lists_the_columns() {
    let sb = Sandbox::new();
    let spec = csv_spec(&with_smoke(&sb), LSA).replace("text_column: text", "text_column: message");
    assert_rejected(&sb, &spec, &["smoke.csv", "no column named \"message\"", "text_column", "text, label"]);
}

#[test]
fn empty_dataset_is_an_error() {
    let sb = Sandbox::new();
    sb.write("empty.csv", "text,label\n");
    assert_rejected(&sb, &csv_spec("empty.csv", LSA), &["no usable examples", "0 rows read"]);
    // Rows that all fail the label mapping are no better than no rows.
    sb.write("bad-labels.csv", "text,label\nhello there,maybe\nbuy now,perhaps\n");
    assert_rejected(&sb, &csv_spec("bad-labels.csv", LSA), &["no usable examples", "2 malformed", "unknown label \"maybe\""]);
}

#[test]
fn one_class_after_the_split_is_an_error() {
    let sb = Sandbox::new();
    let mut csv = String::from("text,label\n");
    for i in 0..40 {
        csv.push_str(&format!("message number {i},{}\n", if i == 0 { "spam" } else { "ham" }));
    }
    sb.write("rare.csv", csv);
    assert_rejected(&sb, &csv_spec("rare.csv", LSA), &["only one class", "split"]);
}

#[test]
fn out_of_range_value_is_located() {
    let sb = Sandbox::new();
    let spec = csv_spec(&with_smoke(&sb), LSA).replace("validation: 0.25", "validation: 1.5");
    assert_rejected(&sb, &spec, &["spec.yaml:9:5", "validation fraction is 1.5"]);
    let spec = csv_spec("smoke.csv", "  kind: lsa\n  C: -1\n");
    assert_rejected(&sb, &spec, &["spec.yaml:12:3", "C is -1"]);
}

#[test]
fn wrong_type_is_located() {
    let sb = Sandbox::new();
    let spec = csv_spec(&with_smoke(&sb), "  kind: lsa\n  components: many\n");
    assert_rejected(&sb, &spec, &["spec.yaml:12:15", "invalid type"]);
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let sb = Sandbox::new();
    sb.write("latin.csv", b"text,label\nhello,ham\ncaf\xe9 au lait,ham\nwin cash,spam\n");
    assert_rejected(&sb, &csv_spec("latin.csv", LSA), &["latin.csv: not valid UTF-8 at line 3, column 4", "encoding: latin-1"]);
}

#[test]
fn latin1_is_read_when_declared() {
    let sb = Sandbox::new();
    let mut csv = b"text,label\n".to_vec();
    for i in 0..20 {
        csv.extend_from_slice(b"caf\xe9 cr\xe8me message ");
        csv.extend_from_slice(format!("{i},ham\nwin cash prize now {i},spam\n").as_bytes());
    }
    sb.write("latin.csv", csv);
    let spec = csv_spec("latin.csv", LSA).replace("  positive: spam\n", "  positive: spam\n  encoding: latin-1\n");
    let path = sb.write("spec.yaml", spec);
    sb.bench().args(["-q", "run"]).arg(&path).assert().success();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&sb.records()[0]).unwrap()).unwrap();
    assert_eq!(record["data"]["loaded"]["examples"], 40);
}

#[test]
fn command_line_mistakes_exit_2() {
    let sb = Sandbox::new();
    sb.bench().args(["run"]).assert().code(2);
    sb.bench().args(["frobnicate"]).assert().code(2);
    sb.bench().args(["run", "does-not-exist.yaml"]).assert().code(2).stderr(predicate::str::contains("does-not-exist.yaml"));
    sb.bench().args(["show", "abcd"]).assert().code(2).stderr(predicate::str::contains("no run matches"));
    sb.bench().args(["show", "nope"]).assert().code(2).stderr(predicate::str::contains("is not a run id"));
    sb.bench().args(["datasets", "fetch", "imdb"]).assert().code(2).stderr(predicate::str::contains("sms, sms-kaggle, enron, jigsaw"));
}
