use anyhow::Result;

use crate::cli::{DatasetsAction, DatasetsArgs, FetchArgs, GlobalArgs, SplitArgs};
use crate::data::split::prepare;
use crate::data::{self, catalog, fetch, DataLocation};
use crate::error::UsageError;
use crate::progress::Progress;
use crate::spec::{DataSource, DatasetConfig, DatasetName, Encoding, Spec, SplitConfig};

pub fn run(args: &DatasetsArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    match &args.action {
        Some(DatasetsAction::Fetch(f)) => fetch_one(f, g, progress),
        Some(DatasetsAction::Split(a)) => export_split(a, g, progress),
        None => survey(g, progress),
    }
}

/// The dataset section a named dataset gets with every default, as a spec with only `name:` would.
fn default_config(name: DatasetName) -> DatasetConfig {
    let (text, label, pos, neg, enc) = match name {
        DatasetName::Sms => (None, None, "spam", "ham", Encoding::Utf8),
        DatasetName::SmsKaggle => (Some("v2"), Some("v1"), "spam", "ham", Encoding::Latin1),
        DatasetName::Enron => (None, None, "spam", "ham", Encoding::Utf8),
        DatasetName::Jigsaw => (Some("comment_text"), Some("toxic"), "1", "0", Encoding::Utf8),
    };
    DatasetConfig {
        source: DataSource::Named { name, path: None, parts: if name == DatasetName::Enron { (1..=6).collect() } else { vec![] } },
        text_column: text.map(String::from),
        label_column: label.map(String::from),
        positive: vec![pos.into()],
        negative: vec![neg.into()],
        encoding: enc,
        split: SplitConfig { validation: Some(0.2), test_file: None, stratified: true, seed: 42 },
        balance: None,
        dedupe: false,
        max_examples: None,
    }
}

fn survey(g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    println!("data directory: {}", g.data_dir.display());
    println!("{:<11}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  where", "name", "status", "rows", "positive", "negative", "malformed");
    let loc = DataLocation { data_dir: g.data_dir.clone(), spec_dir: std::env::current_dir()? };
    for name in DatasetName::ALL {
        let dir = g.data_dir.join(name.as_str());
        match data::load(&default_config(name), &loc, progress) {
            Ok(l) => {
                let d = &l.main;
                println!(
                    "{:<11}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  {}",
                    name.as_str(),
                    "found",
                    d.len(),
                    d.positives(),
                    d.len() - d.positives(),
                    d.report.malformed_rows,
                    dir.display()
                );
            }
            Err(e) => {
                println!("{:<11}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  {}", name.as_str(), "missing", "-", "-", "-", "-", dir.display());
                tracing::info!("{e}");
                println!("             expects {}; {}", catalog::expected_files(name).join(", "), catalog::description(name));
            }
        }
    }
    println!("\nGeneric CSV, TSV and JSONL files are read from any path a spec names (format: csv|tsv|jsonl).");
    println!("Download missing sets with `bench datasets fetch NAME`.");
    Ok(0)
}

fn fetch_one(args: &FetchArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    let name = DatasetName::ALL.into_iter().find(|n| n.as_str() == args.name).ok_or_else(|| {
        UsageError(format!(
            "unknown dataset {:?}; the datasets are: {}",
            args.name,
            DatasetName::ALL.map(|n| n.as_str()).join(", ")
        ))
    })?;
    let opts = fetch::FetchOptions { data_dir: &g.data_dir, base_url: args.base_url.as_deref(), force: args.force };
    let outcomes = fetch::fetch(name, &opts, progress).map_err(|e| match e {
        crate::error::FetchError::Unsupported(msg) => anyhow::Error::from(UsageError(msg)),
        other => other.into(),
    })?;
    for o in outcomes {
        let what = if o.downloaded { "downloaded and verified" } else { "already present and verified" };
        println!("{}: {what}", o.path.display());
    }
    Ok(0)
}

/// One `{"text", "label"}` object per line: JSONL keeps multi-line comments on one line each.
fn jsonl(texts: &[String], labels: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    for (text, &label) in texts.iter().zip(labels) {
        serde_json::to_writer(&mut out, &serde_json::json!({ "text": text, "label": label as u8 })).expect("a string and a number serialise");
        out.push(b'\n');
    }
    out
}

fn export_split(args: &SplitArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    let spec = Spec::load(&args.spec)?;
    let cfg = &spec.runs.first().ok_or_else(|| UsageError(format!("{} expands to no runs", args.spec.display())))?.config.dataset;
    // Runs differ only in method and seed unless the spec sweeps the dataset section; then there is no one split.
    let same = |c: &DatasetConfig| serde_json::to_value(c).ok() == serde_json::to_value(cfg).ok();
    if !spec.runs.iter().all(|r| same(&r.config.dataset)) {
        return Err(UsageError(format!("{} sweeps its dataset section, so its runs use different splits; export from a spec with one", args.spec.display())).into());
    }
    let loc = DataLocation { data_dir: g.data_dir.clone(), spec_dir: spec.dir() };
    let prepared = prepare(cfg, &data::load(cfg, &loc, progress)?)?;
    for (name, texts, labels) in [("train.jsonl", &prepared.train_texts, &prepared.train_labels), ("eval.jsonl", &prepared.eval_texts, &prepared.eval_labels)] {
        let dest = args.out.join(name);
        fetch::write_atomically(&args.out, &dest, &jsonl(texts, labels))?;
        let positives = labels.iter().filter(|&&l| l).count();
        println!("{}: {} examples ({positives} positive)", dest.display(), texts.len());
    }
    println!("data fingerprint {} (the runs' records carry the same)", prepared.summary.fingerprint);
    Ok(0)
}
