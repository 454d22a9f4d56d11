//! How the report sees the run store: sections per dataset, and in each the variants (one
//! configuration, all its seeds). Only the newest record of a configuration on given data counts.

use std::collections::{BTreeMap, HashMap};

use crate::store::{RunRecord, RunStatus};

/// The runs of one configuration (everything but the method seed) on one dataset.
pub struct Variant<'a> {
    pub label: String,
    pub kind: &'static str,
    /// Successful runs, by seed.
    pub runs: Vec<&'a RunRecord>,
    /// The dataset part of the configuration (data, split): variants with equal keys share an
    /// evaluation split, so their predictions can be paired.
    pub split_key: String,
    /// Its colour in every chart: its position in the dataset's list.
    pub color: usize,
}

impl Variant<'_> {
    /// The run the per-run charts show: the lowest seed.
    pub fn first(&self) -> &RunRecord {
        self.runs[0]
    }
}

/// Everything the report shows about one dataset (one data fingerprint).
pub struct DatasetRuns<'a> {
    pub name: String,
    pub fingerprint: String,
    pub variants: Vec<Variant<'a>>,
    pub failed: Vec<&'a RunRecord>,
}

/// Order of the methods in tables and legends: the baseline first.
fn kind_rank(kind: &str) -> usize {
    crate::methods::METHOD_KINDS.iter().position(|k| *k == kind).unwrap_or(usize::MAX)
}

fn sweep_suffix(r: &RunRecord) -> String {
    if r.sweep_point.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = r.sweep_point.iter().map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"'))).collect();
    format!(" [{}]", parts.join(", "))
}

/// The newest record of each configuration on each dataset; older ones are superseded.
pub fn newest(records: &[RunRecord]) -> (Vec<&RunRecord>, usize) {
    let mut by_key: BTreeMap<(&str, &str), &RunRecord> = BTreeMap::new();
    for r in records {
        let key = (r.config_hash.as_str(), r.data.fingerprint.as_str());
        match by_key.get(&key) {
            Some(old) if old.finished_at > r.finished_at => {}
            _ => {
                by_key.insert(key, r);
            }
        }
    }
    let superseded = records.len() - by_key.len();
    let mut kept: Vec<&RunRecord> = by_key.into_values().collect();
    kept.sort_by(|a, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.id.cmp(&b.id)));
    (kept, superseded)
}

/// One dataset's records while grouping: the finished ones by configuration (seed aside), and the failed.
type DatasetRecords<'a> = (BTreeMap<String, Vec<&'a RunRecord>>, Vec<&'a RunRecord>);

/// Groups records into datasets and variants.
pub fn group<'a>(records: &[&'a RunRecord]) -> Vec<DatasetRuns<'a>> {
    let mut datasets: BTreeMap<(String, String), DatasetRecords<'a>> = BTreeMap::new();
    for &r in records {
        let entry = datasets.entry((r.data.name.clone(), r.data.fingerprint.clone())).or_default();
        if r.status == RunStatus::Failed || r.scores().is_none() {
            entry.1.push(r);
            continue;
        }
        // The configuration without the seed: serialised dataset and method parts.
        let key = serde_json::to_string(&(&r.config.dataset, &r.config.method)).unwrap_or_default();
        entry.0.entry(key).or_default().push(r);
    }
    datasets
        .into_iter()
        .map(|((name, fingerprint), (variants, failed))| {
            let mut vs: Vec<Variant<'a>> = variants
                .into_values()
                .map(|mut runs| {
                    runs.sort_by_key(|r| r.config.seed);
                    let r0 = runs[0];
                    Variant {
                        label: format!("{}{}", r0.spec.name, sweep_suffix(r0)),
                        kind: r0.config.method.kind(),
                        split_key: serde_json::to_string(&r0.config.dataset).unwrap_or_default(),
                        color: 0,
                        runs,
                    }
                })
                .collect();
            vs.sort_by(|a, b| kind_rank(a.kind).cmp(&kind_rank(b.kind)).then_with(|| a.label.cmp(&b.label)));
            disambiguate(&mut vs);
            for (i, v) in vs.iter_mut().enumerate() {
                v.color = i;
            }
            DatasetRuns { name, fingerprint, variants: vs, failed }
        })
        .collect()
}

/// Two variants from the same spec name (say, the same spec on two splits) get numbered labels.
fn disambiguate(vs: &mut [Variant<'_>]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for v in vs.iter() {
        *count.entry(v.label.clone()).or_default() += 1;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for v in vs.iter_mut() {
        if count[&v.label] > 1 {
            let n = seen.entry(v.label.clone()).or_default();
            *n += 1;
            v.label = format!("{} #{n}", v.label);
        }
    }
}
