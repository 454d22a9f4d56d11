//! Property tests: whatever bytes or shapes go into the spec parser, the table readers, the record
//! reader and sweep expansion, the result is a value or an error naming the file, never a panic.
//!
//! CI runs proptest's default number of cases per property (256, in seconds). A longer run:
//! `PROPTEST_CASES=20000 cargo test --release --test properties`.

use std::path::Path;

use proptest::prelude::*;
use serde_yaml::Value as Yaml;
use textbench::data::table::{self, Columns};
use textbench::data::LabelMap;
use textbench::spec::{Encoding, FileFormat, Spec};
use textbench::store::Store;

fn config() -> ProptestConfig {
    // Cases from PROPTEST_CASES when set; no regression files written into the checkout.
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// Numbers, strings and words a spec uses, and the odd values hostile specs carry.
fn scalar() -> impl Strategy<Value = Yaml> {
    prop_oneof![
        any::<i64>().prop_map(|i| Yaml::Number(i.into())),
        any::<u64>().prop_map(|i| Yaml::Number(i.into())),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(0.0), Just(1.5), Just(-0.0), Just(0.2), Just(1e300), any::<f64>()]
            .prop_map(|f| Yaml::Number(f.into())),
        any::<bool>().prop_map(Yaml::Bool),
        Just(Yaml::Null),
        prop_oneof![
            Just("sms"),
            Just("enron"),
            Just("jigsaw"),
            Just("csv"),
            Just("tsv"),
            Just("jsonl"),
            Just("lsa"),
            Just("lora"),
            Just("finetune"),
            Just("frozen"),
            Just("spam"),
            Just("ham"),
            Just("text"),
            Just("label"),
            Just("downsample"),
            Just("latin-1"),
            Just(""),
            Just("é∑😀"),
            Just("../../etc/passwd"),
            Just("\u{0}"),
            Just("split")
        ]
        .prop_map(|s| Yaml::String(s.into())),
        "[ -~]{0,12}".prop_map(Yaml::String),
    ]
}

const KEYS: &[&str] = &[
    "name",
    "dataset",
    "method",
    "seeds",
    "sweep",
    "floors",
    "format",
    "path",
    "parts",
    "text_column",
    "label_column",
    "positive",
    "negative",
    "encoding",
    "split",
    "validation",
    "test_file",
    "stratified",
    "seed",
    "balance",
    "dedupe",
    "max_examples",
    "kind",
    "components",
    "C",
    "ngram_range",
    "min_df",
    "max_df",
    "batch_size",
    "epochs",
    "lr",
    "lora",
    "rank",
    "accuracy",
    "f1",
    "method.C",
    "method.components",
    "dataset.split.validation",
    "dataset.max_examples",
    "dataset.positive",
    "dataset.name",
    "bogus",
];

/// YAML values shaped like specs: maps keyed by spec words, lists, scalars, nested a few levels.
fn yaml() -> impl Strategy<Value = Yaml> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Yaml::Sequence),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Yaml::Mapping(kv.into_iter().map(|(k, v)| (Yaml::String(k.into()), v)).collect())),
        ]
    })
}

fn assert_names(err: &impl std::fmt::Display, file: &str) {
    let msg = err.to_string();
    assert!(msg.contains(file), "error does not name {file}: {msg}");
}

const VALID: &str = "dataset:\n  format: csv\n  path: d.csv\n  text_column: text\n  label_column: label\nmethod:\n  kind: lsa\n";

proptest! {
    #![proptest_config(config())]

    #[test]
    fn spec_parser_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let src = String::from_utf8_lossy(&bytes);
        if let Err(e) = Spec::parse(Path::new("hostile.yaml"), &src) {
            assert_names(&e, "hostile.yaml");
        }
    }

    #[test]
    fn spec_parser_takes_any_spec_shaped_yaml(doc in yaml(), dataset in yaml(), method in yaml()) {
        // Sometimes the whole document is arbitrary, sometimes only a section of an otherwise valid spec.
        let mut spec: serde_yaml::Mapping = serde_yaml::from_str(VALID).unwrap();
        spec.insert("dataset".into(), dataset);
        spec.insert("method".into(), method);
        for src in [serde_yaml::to_string(&doc).unwrap(), serde_yaml::to_string(&spec).unwrap()] {
            if let Err(e) = Spec::parse(Path::new("shaped.yaml"), &src) {
                assert_names(&e, "shaped.yaml");
            }
        }
    }

    #[test]
    fn sweeps_expand_or_are_refused(
        sweep in prop::collection::vec((prop::sample::select(&KEYS[35..]), prop::collection::vec(scalar(), 0..4)), 0..4),
        seeds in prop::collection::vec(any::<u64>(), 0..3),
    ) {
        let mut spec: serde_yaml::Mapping = serde_yaml::from_str(VALID).unwrap();
        let grid: serde_yaml::Mapping = sweep.into_iter().map(|(k, v)| (Yaml::String(k.into()), Yaml::Sequence(v))).collect();
        spec.insert("sweep".into(), Yaml::Mapping(grid));
        spec.insert("seeds".into(), Yaml::Sequence(seeds.into_iter().map(|s| Yaml::Number(s.into())).collect()));
        let src = serde_yaml::to_string(&spec).unwrap();
        match Spec::parse_limited(Path::new("sweep.yaml"), &src, 64) {
            Ok(s) => prop_assert!(!s.runs.is_empty() && s.runs.len() <= 64),
            Err(e) => assert_names(&e, "sweep.yaml"),
        }
    }

    #[test]
    fn table_readers_take_any_bytes(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            // Table-shaped bytes hit the quoting and row paths far more often than uniform ones.
            prop::collection::vec(prop::sample::select(&[
                "text", "label", ",", "\t", "\"", "\n", "\r\n", "spam", "ham", "1", "0", "{", "}", ":", "\"text\"", "\"label\"", "é", "\u{feff}", " ", "[",
            ][..]), 0..120).prop_map(|t| t.concat().into_bytes()),
        ],
        format in prop::sample::select(&[FileFormat::Csv, FileFormat::Tsv, FileFormat::Jsonl][..]),
        latin1 in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.data");
        std::fs::write(&path, &bytes).unwrap();
        let labels = LabelMap::binary(&["spam".into(), "1".into()], &["ham".into(), "0".into()]);
        let text = vec!["text".to_string()];
        let cols = Columns { text: &text, label: "label", join_overflow: false };
        let encoding = if latin1 { Encoding::Latin1 } else { Encoding::Utf8 };
        match table::read(&path, format, encoding, &cols, &labels) {
            Ok(ds) => {
                // Every row read is either kept or counted as skipped, with a reason.
                prop_assert_eq!(ds.len() + ds.report.malformed_rows, ds.report.rows_read);
                prop_assert_eq!(ds.report.skipped.values().sum::<usize>(), ds.report.malformed_rows);
            }
            Err(e) => assert_names(&e, "table.data"),
        }
    }

    #[test]
    fn the_record_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0123456789abcdef.json"), &bytes).unwrap();
        let store = Store::new(dir.path());
        if let Err(e) = store.get("0123456789abcdef") {
            assert_names(&e, "0123456789abcdef.json");
        }
        let (_, unreadable) = store.list().unwrap();
        prop_assert!(unreadable.len() <= 1);
    }

    #[test]
    fn any_record_the_store_accepts_can_be_shown_and_reported(edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..5)) {
        let mut record: serde_json::Value = serde_json::from_str(RECORD).unwrap();
        for (at, edit) in edits {
            let paths = leaf_paths(&record);
            let slot = record.pointer_mut(at.get(&paths).as_str()).unwrap();
            *slot = edit.apply(slot);
        }
        let dir = tempfile::tempdir().unwrap();
        let id = record["id"].as_str().unwrap_or("0123456789abcdef").to_string();
        let name = if textbench::store::is_id_prefix(&id) { id.clone() } else { "0123456789abcdef".into() };
        std::fs::write(dir.path().join(format!("{name}.json")), serde_json::to_vec(&record).unwrap()).unwrap();
        let store = Store::new(dir.path());
        let got = store.get(&name);
        if std::env::var_os("PROPERTIES_TRACE").is_some() {
            eprintln!("record: {}", match &got { Ok(Some(_)) => "accepted".to_string(), Ok(None) => "absent".into(), Err(e) => format!("refused: {}", e.to_string().split(": ").nth(1).unwrap_or("")) });
        }
        if let Ok(Some(r)) = got {
            let records = vec![r];
            let report = textbench::report::build(&records).unwrap();
            let _ = textbench::report::markdown(&report);
            textbench::report::write(&report, &dir.path().join("out/index.html"), dir.path(), false).unwrap();
            let cli = <textbench::cli::Cli as clap::Parser>::parse_from(["bench", "-q", "--runs-dir", dir.path().to_str().unwrap(), "show", &name]);
            textbench::commands::dispatch(cli, &textbench::progress::Progress::hidden()).unwrap();
        }
    }
}

/// One change to a record: mostly a value of the same kind as the one it replaces (so that the record
/// still parses and reaches the commands), sometimes anything at all.
#[derive(Debug, Clone)]
struct Edit {
    same_kind: bool,
    number: f64,
    integer: i64,
    text: String,
    any: Yaml,
}

fn edit() -> impl Strategy<Value = Edit> {
    let number = prop_oneof![Just(0.0), Just(1.0), Just(-1.0), Just(0.5), Just(1e308), Just(-1e-308), Just(2.0), any::<f64>()];
    let integer = prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MAX), any::<i64>()];
    let text = prop_oneof![Just(String::new()), Just("é€😀".to_string()), "[0-9a-f]{0,70}", "[ -~]{0,20}", ".{0,8}"];
    (prop::bool::weighted(0.85), number, integer, text, yaml()).prop_map(|(same_kind, number, integer, text, any)| Edit {
        same_kind,
        number,
        integer,
        text,
        any,
    })
}

impl Edit {
    fn apply(&self, old: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match old {
            _ if !self.same_kind => serde_json::to_value(&self.any).unwrap_or(J::Null),
            J::Number(n) if n.is_u64() => J::from(self.integer.unsigned_abs()),
            J::Number(n) if n.is_i64() => J::from(self.integer),
            J::Number(_) => serde_json::Number::from_f64(self.number).map_or(J::Null, J::Number),
            J::String(_) => J::String(self.text.clone()),
            J::Bool(b) => J::Bool(!b),
            J::Array(a) => J::Array(a.iter().take((self.integer.unsigned_abs() % 4) as usize).cloned().collect()),
            J::Object(_) | J::Null => serde_json::to_value(&self.any).unwrap_or(J::Null),
        }
    }
}

/// A record as `bench run` writes it (the smoke LSA spec, predictions cut to a few).
const RECORD: &str = include_str!("data/record-lsa.json");

/// JSON pointers to every leaf and every container of a value.
fn leaf_paths(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    walk(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out.retain(|p| !p.is_empty());
    out
}
