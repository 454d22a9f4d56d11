use anyhow::Result;

use crate::cli::{DatasetsAction, DatasetsArgs, FetchArgs, GlobalArgs, SplitArgs};
use crate::data::labels::class_counts;
use crate::data::split::prepare;
use crate::data::{self, catalog, fetch, DataLocation};
use crate::error::UsageError;
use crate::progress::Progress;
use crate::spec::{DatasetConfig, DatasetName, Spec};

pub fn run(args: &DatasetsArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    match &args.action {
        Some(DatasetsAction::Fetch(f)) => fetch_one(f, g, progress),
        Some(DatasetsAction::Split(a)) => export_split(a, g, progress),
        None => survey(g, progress),
    }
}

/// The dataset section a named dataset gets with every default, as a spec with only `name:` writes it.
fn default_config(name: DatasetName) -> Result<DatasetConfig> {
    let src = format!("dataset:\n  name: {}\nmethod:\n  kind: lsa\n", name.as_str());
    let spec = Spec::parse(std::path::Path::new("defaults.yaml"), &src)?;
    Ok(spec.runs[0].config.dataset.clone())
}

fn survey(g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    println!("data directory: {}", g.data_dir.display());
    println!("{:<12}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  where", "name", "status", "rows", "classes", "smallest", "malformed");
    let loc = DataLocation { data_dir: g.data_dir.clone(), spec_dir: std::env::current_dir()? };
    for name in DatasetName::ALL {
        let dir = g.data_dir.join(name.as_str());
        match data::load(&default_config(name)?, &loc, progress) {
            Ok(l) => {
                let d = &l.main;
                let counts = class_counts(&d.labels, l.classes.len());
                let (smallest, of) = counts.iter().enumerate().min_by_key(|&(_, n)| *n).map_or((0, "-"), |(c, &n)| (n, l.classes.name(c as u32)));
                println!(
                    "{:<12}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  {}  (smallest: {of})",
                    name.as_str(),
                    "found",
                    d.len(),
                    l.classes.len(),
                    smallest,
                    d.report.malformed_rows,
                    dir.display()
                );
            }
            Err(e) => {
                println!("{:<12}  {:<8}  {:>7}  {:>9}  {:>9}  {:>9}  {}", name.as_str(), "missing", "-", "-", "-", "-", dir.display());
                tracing::info!("{e}");
                println!("             expects {}; {}", catalog::facts(name).expected.join(", "), catalog::facts(name).description);
            }
        }
    }
    println!("\nGeneric CSV, TSV and JSONL files are read from any path a spec names (format: csv|tsv|jsonl).");
    println!("Download missing sets with `bench datasets fetch NAME`.");
    Ok(0)
}

fn fetch_one(args: &FetchArgs, g: &GlobalArgs, progress: &Progress) -> Result<i32> {
    let name = DatasetName::ALL
        .into_iter()
        .find(|n| n.as_str() == args.name)
        .ok_or_else(|| UsageError(format!("unknown dataset {:?}; the datasets are: {}", args.name, DatasetName::ALL.map(|n| n.as_str()).join(", "))))?;
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
/// One `{"text", "label", "class"}` object a line: the label is the class index (1 is the positive class
/// of two), the class its name.
fn jsonl(texts: &[String], labels: &[u32], classes: &crate::data::ClassSet) -> Vec<u8> {
    let mut out = Vec::new();
    for (text, &label) in texts.iter().zip(labels) {
        let line = serde_json::json!({ "text": text, "label": label, "class": classes.name(label) });
        serde_json::to_writer(&mut out, &line).expect("strings and a number serialise");
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
        return Err(
            UsageError(format!("{} sweeps its dataset section, so its runs use different splits; export from a spec with one", args.spec.display())).into()
        );
    }
    let loc = DataLocation { data_dir: g.data_dir.clone(), spec_dir: spec.dir() };
    let prepared = prepare(cfg, &data::load(cfg, &loc, progress)?)?;
    for (name, texts, labels) in [("train.jsonl", &prepared.train_texts, &prepared.train_labels), ("eval.jsonl", &prepared.eval_texts, &prepared.eval_labels)] {
        let dest = args.out.join(name);
        fetch::write_atomically(&args.out, &dest, &jsonl(texts, labels, &prepared.classes))?;
        let counts = class_counts(labels, prepared.classes.len());
        let by_class: Vec<String> = prepared.classes.names.iter().zip(&counts).map(|(n, c)| format!("{c} {n}")).collect();
        println!("{}: {} examples ({})", dest.display(), texts.len(), by_class.join(", "));
    }
    println!("data fingerprint {} (the runs' records carry the same)", prepared.summary.fingerprint);
    Ok(0)
}
