//! `bench check`: holds the stored runs of specs to their floors. It reads only the store: a run is
//! matched to a spec by the hash of its resolved config, and the newest matching record counts.

use serde::Serialize;

use crate::spec::Spec;
use crate::store::{config_hash, RunRecord, RunStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// No record of the run, or the run failed.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckLine {
    pub spec: String,
    pub run: Option<String>,
    pub seed: u64,
    pub metric: String,
    pub value: Option<f64>,
    pub floor: f64,
    pub verdict: Verdict,
    pub note: String,
}

pub fn check(specs: &[Spec], records: &[RunRecord]) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    for spec in specs {
        for run in &spec.runs {
            let hash = config_hash(&run.config);
            // Records are sorted oldest first: the last match is the newest.
            let record = records.iter().rev().find(|r| r.config_hash == hash);
            for (&metric, &floor) in &spec.floors {
                let mut line = CheckLine {
                    spec: spec.name.clone(),
                    run: record.map(|r| r.id.clone()),
                    seed: run.config.seed,
                    metric: metric.as_str().to_string(),
                    value: None,
                    floor,
                    verdict: Verdict::Missing,
                    note: String::new(),
                };
                match record {
                    None => line.note = "no stored run: run `bench run` on this spec first".into(),
                    Some(r) if r.status == RunStatus::Failed => line.note = format!("the run failed: {}", r.error.as_deref().unwrap_or("unknown error")),
                    Some(r) => {
                        let value = r.scores().and_then(|m| metric.value(m));
                        line.value = value;
                        line.verdict = match value {
                            Some(v) if v >= floor => Verdict::Pass,
                            Some(_) => Verdict::Fail,
                            None => Verdict::Missing,
                        };
                        if value.is_none() {
                            line.note = if r.multiclass.is_some() {
                                format!("{} is a two-class metric; this run has {} classes (use macro_f1, macro_auroc, …)", metric.as_str(), r.classes().len())
                            } else {
                                format!("{} applies to more than two classes; this run has two", metric.as_str())
                            };
                        }
                    }
                }
                if !run.sweep_point.is_empty() {
                    let point: Vec<String> = run.sweep_point.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    line.note = if line.note.is_empty() { point.join(" ") } else { format!("{} ({})", line.note, point.join(" ")) };
                }
                lines.push(line);
            }
        }
    }
    lines
}
