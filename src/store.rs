//! The run store: one JSON record per run in a folder. It is the only interface between training and
//! everything after it (`list`, `show`, `check`, `report`), so records carry everything needed to
//! trust and redo a run. Writes are atomic: a killed process leaves either the whole record or none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::split::DataSummary;
use crate::environment::Environment;
use crate::error::StoreError;
use crate::metrics::{Curves, Metrics};
use crate::spec::RunConfig;

/// Bumped when the record layout changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;
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

/// Characters of a misclassified example's text kept in its record.
pub const MISTAKE_EXCERPT_CHARS: usize = 400;

impl Prediction {
    /// A prediction at the run's decision threshold, with the text's start kept when it is wrong.
    pub fn new(index: usize, label: bool, probability: f64, threshold: f64, text: &str) -> Prediction {
        let wrong = crate::metrics::predicts_positive(probability, threshold) != label;
        let text = wrong.then(|| text.chars().take(MISTAKE_EXCERPT_CHARS).collect());
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
    pub sweep_point: BTreeMap<String, serde_json::Value>,
    pub config: RunConfig,
    pub data: DataSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
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
    /// Peak resident memory of the process during the run, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    pub environment: Environment,
    pub started_at: String,
    pub finished_at: String,
    pub predictions: Vec<Prediction>,
}

impl RunRecord {
    /// The decision threshold the run's metrics and stored predictions use (0.5 for a failed run).
    pub fn threshold(&self) -> f64 {
        self.metrics.as_ref().map_or(crate::metrics::THRESHOLD, |m| m.threshold)
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
        let path = self.path_of(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
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
    /// flight in another process is never touched). Best effort: what cannot be removed is left.
    pub fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in entries.flatten() {
            let stale = e.file_name().to_string_lossy().starts_with(".tmp-")
                && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t < hour_ago);
            if stale {
                let p = e.path();
                let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                tracing::info!("removed {} left by an interrupted run", p.display());
            }
        }
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
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        let parsed: Vec<Result<RunRecord, StoreError>> = paths
            .par_iter()
            .map(|p| {
                let bytes = std::fs::read(p).map_err(|source| StoreError::Io { path: p.clone(), source })?;
                serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt { path: p.clone(), source })
            })
            .collect();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for r in parsed {
            match r {
                Ok(rec) => ok.push(rec),
                Err(e) => bad.push(e),
            }
        }
        ok.sort_by(|a: &RunRecord, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.id.cmp(&b.id)));
        Ok((ok, bad))
    }

    /// The record whose id starts with `prefix` (ids are long; a unique prefix is enough).
    pub fn find(&self, prefix: &str) -> Result<RunRecord, StoreError> {
        if let Some(r) = self.get(prefix).ok().flatten() {
            return Ok(r);
        }
        let (records, _) = self.list()?;
        let mut matches: Vec<RunRecord> = records.into_iter().filter(|r| r.id.starts_with(prefix)).collect();
        match matches.len() {
            0 => Err(StoreError::NotFound { query: prefix.to_string(), dir: self.dir.clone() }),
            1 => Ok(matches.remove(0)),
            _ => Err(StoreError::Ambiguous { query: prefix.to_string(), dir: self.dir.clone(), ids: matches.into_iter().map(|r| r.id).collect() }),
        }
    }
}
