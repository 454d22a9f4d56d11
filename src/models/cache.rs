//! Backbones and embeddings shared between the runs of one invocation, and embeddings kept on disk
//! between invocations: a frozen encoder's embeddings depend only on the backbone, the pooling, the
//! maximum length and the texts, so a sweep over heads and seeds computes them once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use super::{locate, Backbone};
use crate::error::ModelError;

/// One embedding per text, shared by the runs that use them.
pub type SharedEmbeddings = Arc<Vec<Vec<f32>>>;

#[derive(Default)]
pub struct ModelCache {
    /// Where embeddings are kept between invocations; `None` keeps them in memory only.
    dir: Option<PathBuf>,
    backbones: Mutex<HashMap<(PathBuf, usize, String), Arc<Backbone>>>,
    embeddings: Mutex<HashMap<String, SharedEmbeddings>>,
}

impl ModelCache {
    pub fn new(dir: Option<PathBuf>) -> ModelCache {
        ModelCache { dir, ..Default::default() }
    }

    /// A frozen backbone, loaded once per folder, maximum length and device.
    pub fn backbone(&self, model: &str, models_dir: &Path, max_length: usize, device: &Device) -> Result<Arc<Backbone>, ModelError> {
        let dir = locate(model, models_dir)?;
        let key = (dir.clone(), max_length, format!("{:?}", device.location()));
        if let Some(b) = self.backbones.lock().expect("not poisoned").get(&key) {
            return Ok(b.clone());
        }
        let b = Backbone::load(&dir, max_length, false, device)?;
        let b = Arc::new(b);
        self.backbones.lock().expect("not poisoned").insert(key, b.clone());
        Ok(b)
    }

    /// Embeddings of `texts`, computed by `compute` only when neither memory nor disk has them.
    pub fn embeddings(
        &self,
        backbone: &Backbone,
        settings: &str,
        texts: &[String],
        compute: impl FnOnce() -> Result<Vec<Vec<f32>>, ModelError>,
    ) -> Result<(SharedEmbeddings, bool), ModelError> {
        let mut h = Sha256::new();
        h.update(backbone.checkpoint.fingerprint.as_bytes());
        h.update(settings.as_bytes());
        for t in texts {
            h.update((t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        let key = hex::encode(&h.finalize()[..16]);
        if let Some(e) = self.embeddings.lock().expect("not poisoned").get(&key) {
            return Ok((e.clone(), true));
        }
        let file = self.dir.as_ref().map(|d| d.join(format!("{key}.safetensors")));
        let from_disk = file.as_ref().and_then(|f| read(f, texts.len()));
        let (rows, cached) = match from_disk {
            Some(rows) => (rows, true),
            None => {
                let rows = compute()?;
                if let Some(f) = &file {
                    if let Err(e) = write(f, &rows) {
                        tracing::warn!("could not keep embeddings in {}: {e}", f.display());
                    }
                }
                (rows, false)
            }
        };
        let rows = Arc::new(rows);
        self.embeddings.lock().expect("not poisoned").insert(key, rows.clone());
        Ok((rows, cached))
    }
}

fn read(path: &Path, n: usize) -> Option<Vec<Vec<f32>>> {
    let t = candle_core::safetensors::load(path, &Device::Cpu).ok()?.remove("embeddings")?;
    let rows: Vec<Vec<f32>> = t.to_vec2().ok()?;
    (rows.len() == n).then_some(rows)
}

/// Temporary file and rename, so a killed run never leaves a truncated cache entry.
fn write(path: &Path, rows: &[Vec<f32>]) -> Result<(), ModelError> {
    let dir = path.parent().expect("cache files live in a folder");
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = tempfile::Builder::new().prefix(".tmp-").suffix(".safetensors").tempfile_in(dir).map_err(io)?;
    let t = super::embed::to_tensor(rows, &Device::Cpu)?;
    let map: HashMap<String, Tensor> = HashMap::from([("embeddings".to_string(), t)]);
    candle_core::safetensors::save(&map, tmp.path())?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
