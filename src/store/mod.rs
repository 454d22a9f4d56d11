//! The run store: one JSON record per run in a folder. It is the only interface between training and
//! everything after it (`list`, `show`, `check`, `report`), so records carry everything needed to
//! trust and redo a run. Writes are atomic: a killed process leaves either the whole record or none.
//! Processes sharing a store claim a run before executing it ([`claim`]).

pub mod claim;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::split::DataSummary;
use crate::data::ClassSet;
use crate::environment::Environment;
use crate::error::StoreError;
use crate::metrics::multiclass::MulticlassMetrics;
use crate::metrics::{Curves, Metrics, Scores};
use crate::spec::RunConfig;

/// The record layout's version. 2 added class sets: `data.classes`, and for more than two classes
/// `multiclass` and `class_predictions` in place of `metrics`, `curves` and `predictions`. Records of
/// version 1 (binary, no class names) load as they are.
pub const SCHEMA_VERSION: u32 = 2;
/// The code version that goes into run ids: a new release re-runs what it may compute differently.
pub const CODE_VERSION: &str = concat!("textbench ", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reading and preparing the data (shared by the runs on the same data in one invocation).
    pub load_s: f64,
    pub fit_s: f64,
    pub predict_s: f64,
    pub evaluate_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Index of the example in the file it came from (after malformed rows were skipped).
    pub index: usize,
    pub label: bool,
    pub probability: f64,
    /// The start of the text, kept for misclassified examples only (the report shows the worst mistakes
    /// without reading the data files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One evaluation example of a run with more than two classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassPrediction {
    /// Index of the example in the file it came from (after malformed rows were skipped).
    pub index: usize,
    /// The true class.
    pub label: u32,
    /// The probability of each class, in class order.
    pub probabilities: Vec<f64>,
    /// The start of the text, for misclassified examples only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ClassPrediction {
    pub fn new(index: usize, label: u32, probabilities: &[f64], text: &str) -> ClassPrediction {
        let wrong = crate::methods::argmax(probabilities) != label;
        let text = mistake_excerpt(wrong, text);
        ClassPrediction { index, label, probabilities: probabilities.to_vec(), text }
    }

    pub fn predicted(&self) -> u32 {
        crate::methods::argmax(&self.probabilities)
    }
}

/// Characters of a misclassified example's text kept in its record.
pub const MISTAKE_EXCERPT_CHARS: usize = 400;

/// The start of a text, kept only when the run got it wrong.
fn mistake_excerpt(wrong: bool, text: &str) -> Option<String> {
    wrong.then(|| text.chars().take(MISTAKE_EXCERPT_CHARS).collect())
}

impl Prediction {
    /// A prediction at the run's decision threshold, with the text's start kept when it is wrong.
    pub fn new(index: usize, label: bool, probability: f64, threshold: f64, text: &str) -> Prediction {
        let wrong = crate::metrics::predicts_positive(probability, threshold) != label;
        let text = mistake_excerpt(wrong, text);
        Prediction { index, label, probability, text }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRef {
    pub name: String,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub id: String,
    /// Hash of the resolved config alone: the same experiment on other data or code shares it.
    pub config_hash: String,
    pub code_version: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub spec: SpecRef,
    /// Other specs that asked for the same run (one record serves them all); absent in older records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_specs: Vec<SpecRef>,
    pub sweep_point: BTreeMap<String, serde_json::Value>,
    pub config: RunConfig,
    pub data: DataSummary,
    /// Two classes: the positive class's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// More than two classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiclass: Option<MulticlassMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curves: Option<Curves>,
    pub timings: Timings,
    /// Training examples per second of fitting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_samples_per_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable_parameters: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted_parameters: Option<usize>,
    #[serde(default)]
    pub method_details: serde_json::Value,
    /// The folder (relative to the runs directory) holding the trained model, for `bench predict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Trained methods: training loss every N steps and evaluation metrics per epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<serde_json::Value>,
    /// Peak resident memory during the run, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// How `peak_memory_bytes` was measured (absent in older records: the process's peak so far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_method: Option<String>,
    /// Resident memory when the run started (part of `peak_memory_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_baseline_bytes: Option<u64>,
    pub environment: Environment,
    pub started_at: String,
    pub finished_at: String,
    /// Two classes: every evaluation example's positive-class probability.
    pub predictions: Vec<Prediction>,
    /// More than two classes: every evaluation example's class probabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_predictions: Vec<ClassPrediction>,
}

impl RunRecord {
    /// Every spec name the record serves.
    pub fn spec_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.spec.name.as_str()).chain(self.other_specs.iter().map(|s| s.name.as_str()))
    }

    /// Adds `spec` to the specs the record serves; false when it was already there.
    pub fn add_spec(&mut self, spec: &SpecRef) -> bool {
        if self.spec_names().any(|n| n == spec.name) {
            return false;
        }
        self.other_specs.push(spec.clone());
        true
    }

    /// What a record read from `path` must hold for the commands to use it: JSON that parses can still
    /// carry values that no run writes (a short fingerprint, an id that is not its file's name, an
    /// artifact path that leaves the store), and every command skips such a record instead of trusting it.
    fn check_usable(&self, path: &Path) -> Result<(), String> {
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex(&self.id, 16) {
            return Err(format!("its id {:?} is not 16 hexadecimal digits", self.id.chars().take(40).collect::<String>()));
        }
        if path.file_stem().is_some_and(|s| s != self.id.as_str()) {
            return Err(format!("its id {} is not its file's name", self.id));
        }
        if !hex(&self.config_hash, 16) {
            return Err("its config_hash is not 16 hexadecimal digits".into());
        }
        if !hex(&self.data.fingerprint, 64) {
            return Err("its data fingerprint is not a SHA-256 (64 hexadecimal digits)".into());
        }
        if self.artifact.as_deref().is_some_and(|a| a != self.id) {
            return Err("its artifact is not the folder named after its id".into());
        }
        if self.predictions.iter().any(|p| !(0.0..=1.0).contains(&p.probability)) {
            return Err("a stored prediction's probability is outside [0, 1]".into());
        }
        let k = self.classes().len();
        if let Some(m) = &self.multiclass {
            if m.confusion_matrix.len() != k || m.per_class.len() != k || m.confusion_matrix.iter().any(|r| r.len() != k) {
                return Err(format!("its metrics are not for its {k} classes"));
            }
        }
        if self
            .class_predictions
            .iter()
            .any(|p| p.label as usize >= k || p.probabilities.len() != k || p.probabilities.iter().any(|q| !(0.0..=1.0).contains(q)))
        {
            return Err(format!("a stored prediction is not {k} probabilities in [0, 1] with a class among the {k}"));
        }
        if let Some(m) = &self.metrics {
            if !(0.0..=1.0).contains(&m.threshold) {
                return Err("its decision threshold is outside [0, 1]".into());
            }
        }
        if let Some(l) = &self.data.lengths {
            let n = l.edges.len();
            let bins = [&l.train.negative, &l.train.positive, &l.eval.negative, &l.eval.positive];
            if n == 0 || bins.iter().any(|b| b.len() != n) || !l.edges.is_sorted() {
                return Err("its text-length histogram's bins do not match its edges".into());
            }
        }
        Ok(())
    }
}

/// Reads one record file: missing is `Ok(None)`; unreadable, corrupt or unusable is an error naming it.
fn read_record(path: &Path) -> Result<Option<RunRecord>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { path: path.to_path_buf(), source }),
    };
    let record: RunRecord = serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path: path.to_path_buf(), source })?;
    record.check_usable(path).map_err(|reason| StoreError::Unusable { path: path.to_path_buf(), reason })?;
    Ok(Some(record))
}

/// Whether a string can be (the start of) a run id; anything else, a path in particular, is refused
/// before it is joined to the runs directory.
pub fn is_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl RunRecord {
    /// The decision threshold the run's metrics and stored predictions use (0.5 for a failed run).
    pub fn threshold(&self) -> f64 {
        self.metrics.as_ref().map_or(crate::metrics::THRESHOLD, |m| m.threshold)
    }

    /// The run's evaluation, binary or multi-class; `None` for a failed run.
    pub fn scores(&self) -> Option<Scores<'_>> {
        match (&self.metrics, &self.multiclass) {
            (Some(m), _) => Some(Scores::Binary(m)),
            (None, Some(m)) => Some(Scores::Multiclass(m)),
            (None, None) => None,
        }
    }

    /// The run's classes; records from before class sets are binary, named by their label values.
    pub fn classes(&self) -> ClassSet {
        match &self.data.classes {
            Some(names) => ClassSet::new(names.clone()),
            None => self.config.dataset.label_map().classes().unwrap_or_else(ClassSet::legacy_binary),
        }
    }

    /// Each evaluation example's index and whether the run classified it right, in stored order.
    pub fn correctness(&self) -> Vec<(usize, bool)> {
        let t = self.threshold();
        if self.class_predictions.is_empty() {
            self.predictions.iter().map(|p| (p.index, crate::metrics::predicts_positive(p.probability, t) == p.label)).collect()
        } else {
            self.class_predictions.iter().map(|p| (p.index, p.predicted() == p.label)).collect()
        }
    }
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Hash of the canonical JSON of a resolved config (struct fields serialise in a fixed order).
pub fn config_hash(config: &RunConfig) -> String {
    short_hash(serde_json::to_string(config).expect("a RunConfig serialises").as_bytes())
}

/// The run id: config, data fingerprint and code version.
pub fn run_id(config: &RunConfig, fingerprint: &str) -> String {
    let canonical = serde_json::json!({ "config": config, "data": fingerprint, "code": CODE_VERSION });
    short_hash(canonical.to_string().as_bytes())
}

/// Writes a file whole or not at all: a temporary file in the same folder (named `.tmp-*`, which
/// [`Store::remove_stale_temporaries`] clears after a crash), fsync, mode 0644, rename, fsync the folder.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Readable like any file the user writes (a temporary file starts private).
    #[cfg(unix)]
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(dest).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all(); // the rename itself durable; not every filesystem allows it
    }
    Ok(())
}

/// Removes the `.tmp-*` files and folders [`write_atomic`] (or a killed writer) left in `dir` that are
/// older than `age`. Best effort: what cannot be removed is left.
pub fn remove_stale_temporaries(dir: &Path, age: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let cutoff = std::time::SystemTime::now() - age;
    for e in entries.flatten() {
        let stale = e.file_name().to_string_lossy().starts_with(".tmp-") && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < cutoff);
        if stale {
            let p = e.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            tracing::info!("removed {} left by an interrupted write", p.display());
        }
    }
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn get(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        read_record(&self.path_of(id))
    }

    /// Where the claim of a run is taken.
    pub fn claim_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.claim"))
    }

    /// Claims a run for this process ([`claim`]); `wait` blocks until its holder, if any, is done.
    pub fn claim(&self, id: &str, me: &claim::Claimant, wait: bool) -> Result<claim::Attempt, StoreError> {
        let path = self.claim_path(id);
        claim::claim(&path, me, wait).map_err(|source| StoreError::Io { path, source })
    }

    /// Checks that records can be written here: creates the folder and a file in it, and removes the file.
    /// Run before anything is computed, so that hours of training are not lost to a read-only folder.
    pub fn ensure_writable(&self) -> Result<(), StoreError> {
        let not_writable = |source: std::io::Error| StoreError::NotWritable { path: self.dir.clone(), source };
        if self.dir.exists() && !self.dir.is_dir() {
            return Err(not_writable(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "it exists and is not a folder")));
        }
        std::fs::create_dir_all(&self.dir).map_err(not_writable)?;
        let probe = tempfile::Builder::new().prefix(".tmp-probe-").tempfile_in(&self.dir).map_err(not_writable)?;
        probe.close().map_err(not_writable)
    }

    /// Writes a record atomically (see [`write_atomic`]).
    pub fn put(&self, record: &RunRecord) -> Result<PathBuf, StoreError> {
        let dest = self.path_of(&record.id);
        let mut json = serde_json::to_vec_pretty(record).expect("a record serialises");
        json.push(b'\n');
        write_atomic(&dest, &json).map_err(|source| StoreError::Io { path: dest.clone(), source })?;
        Ok(dest)
    }

    /// Saves a run's model: `save` writes into a temporary folder, which is then renamed to `<id>/`
    /// (replacing an older one), so a killed run never leaves half a model under the run's name.
    pub fn put_artifact(&self, id: &str, save: impl FnOnce(&Path) -> anyhow::Result<bool>) -> anyhow::Result<Option<String>> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&self.dir)?;
        if !save(tmp.path())? {
            return Ok(None);
        }
        let dest = self.dir.join(id);
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        std::fs::rename(tmp.keep(), &dest)?;
        Ok(Some(id.to_string()))
    }

    /// Removes temporary files and folders that killed runs left (older than an hour, so that a write in
    /// flight in another process is never touched).
    pub fn remove_stale_temporaries(&self) {
        remove_stale_temporaries(&self.dir, std::time::Duration::from_secs(3600));
    }

    /// Every record in the store, oldest first. Unreadable files are returned as errors beside them.
    pub fn list(&self) -> Result<(Vec<RunRecord>, Vec<StoreError>), StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
            Err(source) => return Err(StoreError::Io { path: self.dir.clone(), source }),
        };
        let paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        let parsed: Vec<Result<Option<RunRecord>, StoreError>> = paths.par_iter().map(|p| read_record(p)).collect();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for r in parsed {
            match r {
                Ok(Some(rec)) => ok.push(rec),
                Ok(None) => {} // removed since the folder was listed
                Err(e) => bad.push(e),
            }
        }
        ok.sort_by(|a: &RunRecord, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.id.cmp(&b.id)));
        Ok((ok, bad))
    }

    /// The record whose id starts with `prefix` (ids are long; a unique prefix is enough).
    /// A prefix matching only unreadable files is reported as unreadable, with the file, not as absent.
    pub fn find(&self, prefix: &str) -> Result<RunRecord, StoreError> {
        if !is_id_prefix(prefix) {
            return Err(StoreError::BadQuery { query: prefix.chars().take(80).collect() });
        }
        let prefix = prefix.to_ascii_lowercase();
        let prefix = prefix.as_str();
        if let Some(r) = self.get(prefix)? {
            return Ok(r);
        }
        let (records, unreadable) = self.list()?;
        let mut matches: Vec<RunRecord> = records.into_iter().filter(|r| r.id.starts_with(prefix)).collect();
        match matches.len() {
            0 => {
                let named = |e: &StoreError| e.path().and_then(|p| p.file_name()).is_some_and(|n| n.to_string_lossy().starts_with(prefix));
                match unreadable.into_iter().find(named) {
                    Some(e) => Err(e),
                    None => Err(StoreError::NotFound { query: prefix.to_string(), dir: self.dir.clone() }),
                }
            }
            1 => Ok(matches.remove(0)),
            _ => Err(StoreError::Ambiguous { query: prefix.to_string(), dir: self.dir.clone(), ids: matches.into_iter().map(|r| r.id).collect() }),
        }
    }
}
