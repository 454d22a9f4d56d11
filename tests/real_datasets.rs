//! The named datasets, read from the real files in ../shared/datasets.

mod common;

use common::{shared_datasets, Sandbox};
use predicates::prelude::*;

fn record(sb: &Sandbox) -> serde_json::Value {
    let records = sb.records();
    assert_eq!(records.len(), 1);
    serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap()
}

/// A spec with a 5-component LSA (fast) on the given dataset section.
fn spec(sb: &Sandbox, dataset: &str) -> std::path::PathBuf {
    sb.write("s.yaml", format!("dataset:\n{dataset}method:\n  kind: lsa\n  components: 5\n"))
}

#[test]
fn survey_finds_every_set_with_its_counts() {
    let sb = Sandbox::new();
    sb.bench()
        .args(["datasets", "--data-dir"])
        .arg(shared_datasets())
        .assert()
        .success()
        // rows, classes, the smallest class's rows, malformed rows.
        .stdout(predicate::str::is_match(r"sms +found +5574 +2 +747 +0 .*\(smallest: spam\)").unwrap())
        .stdout(predicate::str::is_match(r"sms-kaggle +found +5572 +2 +747 +0").unwrap())
        .stdout(predicate::str::is_match(r"enron +found +33715 +2 +16545 +0 .*\(smallest: ham\)").unwrap())
        .stdout(predicate::str::is_match(r"jigsaw +found +14268 +2 +5490 +0").unwrap())
        .stdout(predicate::str::is_match(r"20newsgroups +found +11314 +20 +377 +0 .*\(smallest: talk.religion.misc\)").unwrap())
        .stdout(predicate::str::is_match(r"trec +found +5452 +6 +86 +0 .*\(smallest: ABBR\)").unwrap());
    // And in an empty data dir, each is reported missing with what it expects.
    sb.bench().args(["datasets"]).assert().success().stdout(predicate::str::contains("missing").and(predicate::str::contains("enron1.tar.gz")));
}

#[test]
fn kaggle_spam_csv_is_latin1_with_overflow_joined_back() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: sms-kaggle\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    assert_eq!(r["data"]["loaded"]["examples"], 5572);
    assert_eq!(r["data"]["load_report"]["overflow_joined"], 50, "50 rows have text in the unnamed columns");
    assert_eq!(r["data"]["load_report"]["malformed_rows"], 0);
    assert_eq!(r["config"]["dataset"]["encoding"], "latin-1");
}

#[test]
fn kaggle_dedupe_removes_duplicate_texts() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: sms-kaggle\n  dedupe: true\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    assert_eq!(r["data"]["duplicates_removed"], 403);
}

#[test]
fn jigsaw_with_its_labelled_test_file() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: jigsaw\n  split:\n    test_file: test_labeled.csv\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    assert_eq!(r["data"]["train"]["examples"], 14268);
    assert_eq!(r["data"]["eval"], serde_json::json!({"examples": 2338, "positives": 1115}));
    assert_eq!(r["predictions"].as_array().unwrap().len(), 2338);
}

#[test]
fn enron_from_tarballs_or_extracted_folders_is_the_same_data() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: enron\n  parts: [1]\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let from_tarball = record(&sb);
    assert_eq!(from_tarball["data"]["loaded"], serde_json::json!({"examples": 5172, "positives": 1500}));

    // Unpack enron1 into a data dir of our own and read the folder instead.
    let enron_dir = sb.data_dir().join("enron");
    std::fs::create_dir_all(&enron_dir).unwrap();
    let tarball = std::fs::File::open(shared_datasets().join("enron/enron1.tar.gz")).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(tarball)).unpack(&enron_dir).unwrap();
    std::fs::remove_dir_all(sb.runs_dir()).unwrap();
    sb.bench().args(["-q", "run"]).arg(&s).assert().success();
    let from_folder = record(&sb);
    assert_eq!(from_folder["data"]["fingerprint"], from_tarball["data"]["fingerprint"]);
    assert_eq!(from_folder["metrics"], from_tarball["metrics"]);
}

#[test]
fn enron_one_file_csv_form() {
    let sb = Sandbox::new();
    let mut csv = String::from("Message ID,Subject,Message,Spam/Ham,Date\n");
    for i in 0..60 {
        let (subject, body, label) = if i % 3 == 0 {
            ("cheap meds online", "buy viagra now, limited offer, click here", "spam")
        } else {
            ("meeting notes", "please find attached the gas nomination schedule for next week", "ham")
        };
        csv.push_str(&format!("{i},{subject} {i},\"{body}\nline two {i}\",{label},2001-01-01\n"));
    }
    sb.write("data/enron/enron_spam_data.csv", csv);
    let s = spec(&sb, "  name: enron\n  path: enron/enron_spam_data.csv\n");
    sb.bench().args(["-q", "run"]).arg(&s).assert().success();
    let r = record(&sb);
    assert_eq!(r["data"]["loaded"], serde_json::json!({"examples": 60, "positives": 20}));
}

#[test]
fn twenty_newsgroups_reads_its_bydate_split_from_the_tarball() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: 20newsgroups\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    let classes = r["data"]["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 20);
    assert_eq!((classes[0].as_str(), classes[19].as_str()), (Some("alt.atheism"), Some("talk.religion.misc")));
    assert_eq!(r["data"]["train"]["examples"], 11314);
    assert_eq!(r["data"]["eval"]["examples"], 7532);
    // The README's counts per group (train / test) for the first and last groups.
    assert_eq!((r["data"]["train"]["per_class"][0].as_u64(), r["data"]["eval"]["per_class"][0].as_u64()), (Some(480), Some(319)));
    assert_eq!((r["data"]["train"]["per_class"][19].as_u64(), r["data"]["eval"]["per_class"][19].as_u64()), (Some(377), Some(251)));
    assert_eq!(r["data"]["load_report"]["malformed_rows"], 0);
    assert_eq!(r["config"]["dataset"]["split"]["test_file"], "20news-bydate-test");
    assert_eq!(r["class_predictions"].as_array().unwrap().len(), 7532);
}

#[test]
fn trec_reads_coarse_or_fine_labels_with_its_own_test_file() {
    let sb = Sandbox::new();
    let s = spec(&sb, "  name: trec\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    assert_eq!(r["data"]["classes"], serde_json::json!(["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]));
    assert_eq!(r["data"]["train"]["per_class"], serde_json::json!([86, 1162, 1250, 1223, 835, 896]));
    assert_eq!(r["data"]["eval"]["per_class"], serde_json::json!([9, 138, 94, 65, 81, 113]));
    std::fs::remove_dir_all(sb.runs_dir()).unwrap();

    let s = spec(&sb, "  name: trec\n  fine_labels: true\n");
    sb.bench().args(["-q", "run", "--data-dir"]).arg(shared_datasets()).arg(&s).assert().success();
    let r = record(&sb);
    let classes = r["data"]["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 50, "the training file's 50 fine classes");
    assert!(classes.iter().any(|c| c == "HUM:ind"));
    // Every test question's fine class occurs in training: none is skipped.
    assert_eq!(r["data"]["eval"]["examples"], 500);
}
