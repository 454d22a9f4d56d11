//! A checkpoint folder in Hugging Face's layout (config.json, model.safetensors or pytorch_model.bin —
//! or one GGUF file —, tokenizer.json), whatever the family: found by path, under the models directory or as a hub id;
//! fingerprinted; its tensors read; its tokenizer set to the run's maximum length; batches of texts
//! padded only to the longest text in the batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationParams};

use super::{Encoder, Family, Head, ModelConfig, SequenceClassifier};
use crate::error::ModelError;
use crate::nn::Weights;

/// What every model of a folder shares: where it is, what it is, and how its texts become ids.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub family: &'static Family,
    pub tokenizer: Tokenizer,
    /// SHA-256 of the weights file: what the model is, wherever it is stored.
    pub fingerprint: String,
    pad_token_id: u32,
    /// Its config.json text (for a GGUF without one, made from the metadata): what a saved model's
    /// config starts from.
    pub config: String,
}

/// A checkpoint's sequence classifier as loaded.
pub struct LoadedClassifier {
    pub checkpoint: Checkpoint,
    pub model: Box<dyn SequenceClassifier>,
    /// Its trainable tensors by name, in load order.
    pub trainable: Vec<(String, Var)>,
}

/// A checkpoint's encoder, for embeddings and the tests of its layers.
pub struct Backbone {
    pub checkpoint: Checkpoint,
    pub encoder: Box<dyn Encoder>,
    /// Every weight made trainable, by checkpoint name, in load order (empty unless asked for).
    pub trainable: Vec<(String, Var)>,
}

/// Finds a model: a folder (with a config.json, or with one GGUF file) or a GGUF file, as given or under
/// `models_dir`; else, for a hub id such as `sentence-transformers/all-MiniLM-L6-v2`, the Hugging Face
/// cache or the hub.
pub fn locate(model: &str, models_dir: &Path) -> Result<PathBuf, ModelError> {
    let direct = PathBuf::from(model);
    for candidate in [direct.clone(), models_dir.join(model)] {
        if candidate.join("config.json").is_file() || is_gguf_file(&candidate) || matches!(weights_file(&candidate), Ok(w) if is_gguf_file(&w)) {
            return Ok(candidate);
        }
    }
    if super::hub::is_hub_id(model) {
        return super::hub::resolve(model);
    }
    Err(ModelError::Missing {
        path: direct,
        hint: format!(
            "no model folder (config.json, model.safetensors, tokenizer.json) or GGUF file here or under the models \
             directory {} (set --models-dir or BENCH_MODELS_DIR), and not a hub id (org/name)",
            models_dir.display()
        ),
    })
}

fn is_gguf_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gguf") && path.is_file()
}

/// Where a model's other files are: the folder itself, or the folder a GGUF file is in.
fn files_dir(model: &Path) -> &Path {
    if is_gguf_file(model) {
        model.parent().unwrap_or(Path::new("."))
    } else {
        model
    }
}

/// A model's config: a GGUF file's metadata, else its folder's config.json, else (a folder holding a GGUF
/// alone) the GGUF's metadata.
fn config_of(model: &Path) -> Result<ModelConfig, ModelError> {
    let file = model.join("config.json");
    if !is_gguf_file(model) && file.is_file() {
        return ModelConfig::read(&file);
    }
    let gguf = weights_file(model)?;
    let config = super::gguf::Gguf::open(&gguf)?.config()?;
    Ok(ModelConfig { origin: gguf, text: serde_json::to_string_pretty(&config).expect("json") })
}

/// A model's weights: the GGUF file itself, or in a folder model.safetensors, the index of its shards
/// (model.safetensors.index.json), pytorch_model.bin or its one GGUF file.
fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    if is_gguf_file(dir) {
        return Ok(dir.to_path_buf());
    }
    if let Some(found) = ["model.safetensors", SHARD_INDEX, "pytorch_model.bin"].iter().map(|f| dir.join(f)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf") && p.is_file())
        .collect();
    ggufs.sort();
    match ggufs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ModelError::Missing {
            path: dir.to_path_buf(),
            hint: "the model folder has neither model.safetensors, pytorch_model.bin nor a .gguf file".into(),
        }),
        many => Err(ModelError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "{} GGUF files ({}): keep one per model folder",
                many.len(),
                many.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// The index Hugging Face writes beside a checkpoint saved in shards.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// The shard files an index names (its `weight_map`'s values), each once, in name order.
pub fn shards(index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io { path: index.to_path_buf(), source })?;
    let parsed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::Invalid { path: index.to_path_buf(), message: format!("line {}, column {}: {e}", e.line(), e.column()) })?;
    let map = parsed["weight_map"].as_object().ok_or_else(|| ModelError::Invalid { path: index.to_path_buf(), message: "no weight_map object".into() })?;
    let mut files: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let dir = index.parent().unwrap_or(Path::new("."));
    // A shard name is a file beside the index, never a path elsewhere.
    if let Some(bad) = files.iter().find(|f| f.contains('/') || f.contains('\\') || **f == ".." || f.is_empty()) {
        return Err(ModelError::Invalid { path: index.to_path_buf(), message: format!("shard {bad:?} is not a file name beside the index") });
    }
    Ok(files.iter().map(|f| dir.join(f)).collect())
}

/// The files a weights file stands for: itself, or an index's shards.
fn weight_files(path: &Path) -> Result<Vec<PathBuf>, ModelError> {
    if path.file_name().is_some_and(|n| n == SHARD_INDEX) {
        shards(path)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// SHA-256 of the weights (a sharded checkpoint's shards one after another), streamed.
fn fingerprint(path: &Path) -> Result<String, ModelError> {
    let mut hasher = Sha256::new();
    for file in weight_files(path)? {
        let io = |source| ModelError::Io { path: file.clone(), source };
        std::io::copy(&mut std::fs::File::open(&file).map_err(io)?, &mut hasher).map_err(io)?;
    }
    Ok(hex::encode(hasher.finalize()))
}

fn read_weights(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    if path.file_name().is_some_and(|n| n == SHARD_INDEX) {
        let mut all = HashMap::new();
        for shard in shards(path)? {
            all.extend(read_weights(&shard, device)?);
        }
        return Ok(all);
    }
    if path.extension().is_some_and(|e| e == "gguf") {
        super::gguf::Gguf::open(path)?.tensors(device)
    } else if path.extension().is_some_and(|e| e == "bin") {
        let tensors = candle_core::pickle::read_all(path).map_err(|e| ModelError::Invalid { path: path.to_path_buf(), message: e.to_string() })?;
        tensors.into_iter().map(|(k, t)| Ok((k, t.to_device(device)?))).collect()
    } else {
        read_safetensors(path, device)
    }
}

/// The largest safetensors header read: real ones are kilobytes; past this the file is not one.
const MAX_SAFETENSORS_HEADER: u64 = 100 << 20;

/// A safetensors file's tensors, read one at a time: the whole file is never in memory beside its
/// tensors, so loading peaks at the tensors plus one (reading the file whole would double a model's size
/// at load: 2.5 GB more for a 1B model in bf16).
fn read_safetensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>, ModelError> {
    use std::io::{Read, Seek, SeekFrom};
    let invalid = |message: String| ModelError::Invalid { path: path.to_path_buf(), message };
    let io = |source| ModelError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|_| invalid("not a safetensors file: shorter than its 8-byte header size".into()))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_SAFETENSORS_HEADER || n > size - 8 {
        return Err(invalid(format!("not a safetensors file: a header of {n} bytes in a file of {size}")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(io)?;
    let metadata: safetensors::tensor::Metadata = serde_json::from_slice(&header).map_err(|e| invalid(format!("its safetensors header is invalid: {e}")))?;
    let data = 8 + n;
    let mut tensors: Vec<(String, &safetensors::tensor::TensorInfo)> = metadata.tensors().into_iter().collect();
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    if let Some((name, info)) = tensors.last().filter(|(_, info)| data + info.data_offsets.1 as u64 > size) {
        return Err(invalid(format!("the file ends before the data of {name} (bytes {:?} after the header; {} there)", info.data_offsets, size - data)));
    }
    let mut bytes = Vec::new();
    tensors
        .into_iter()
        .map(|(name, info)| {
            let (start, end) = info.data_offsets;
            bytes.resize(end - start, 0);
            file.seek(SeekFrom::Start(data + start as u64)).and_then(|_| file.read_exact(&mut bytes)).map_err(io)?;
            let view = safetensors::tensor::TensorView::new(info.dtype, info.shape.clone(), &bytes).map_err(|e| invalid(format!("{name}: {e}")))?;
            let tensor = candle_core::safetensors::Load::load(&view, device).map_err(|e| invalid(format!("{name}: {e}")))?;
            Ok((name, tensor))
        })
        .collect()
}

/// A model opened: its family, its config, its tensors and their fingerprint.
struct Opened {
    dir: PathBuf,
    family: &'static Family,
    config: ModelConfig,
    weights: Weights,
    fingerprint: String,
}

impl Opened {
    /// `trainable` makes every weight the loaders take a Var (full fine-tuning).
    fn new(dir: &Path, trainable: bool, device: &Device) -> Result<Opened, ModelError> {
        let config = config_of(dir)?;
        let family = super::family_of(&config)?;
        let wpath = weights_file(dir)?;
        let fingerprint = fingerprint(&wpath)?;
        let weights = Weights::new(wpath.clone(), read_weights(&wpath, device)?, family.rename, trainable);
        Ok(Opened { dir: dir.to_path_buf(), family, config, weights, fingerprint })
    }

    /// The checkpoint, its tokenizer truncating at `max_length` or the model's positions if fewer.
    fn finish(&self, max_length: usize, encoder: &dyn Encoder) -> Result<Checkpoint, ModelError> {
        let tokenizer = truncating(folder_tokenizer(&self.dir)?, max_length.min(encoder.max_positions()))?;
        Ok(Checkpoint {
            dir: self.dir.clone(),
            family: self.family,
            tokenizer,
            fingerprint: self.fingerprint.clone(),
            pad_token_id: encoder.pad_token_id(),
            config: self.config.text.clone(),
        })
    }
}

impl Backbone {
    /// The encoder of a model folder; `trainable` makes every weight a Var.
    pub fn load(dir: &Path, max_length: usize, trainable: bool, device: &Device) -> Result<Backbone, ModelError> {
        let mut opened = Opened::new(dir, trainable, device)?;
        let encoder = (opened.family.encoder)(&opened.config, &mut opened.weights)?;
        let checkpoint = opened.finish(max_length, encoder.as_ref())?;
        Ok(Backbone { checkpoint, encoder, trainable: opened.weights.vars })
    }
}

impl Checkpoint {
    /// A model folder's sequence classifier, and its trainable tensors by name in load order: every
    /// weight (`trainable`, full fine-tuning) or none but a fresh head's.
    pub fn load_classifier(dir: &Path, max_length: usize, trainable: bool, head: &Head, device: &Device) -> Result<LoadedClassifier, ModelError> {
        let mut opened = Opened::new(dir, trainable, device)?;
        let model = (opened.family.classifier)(&opened.config, &mut opened.weights, head)?;
        let checkpoint = opened.finish(max_length, model.encoder())?;
        let mut trainable = std::mem::take(&mut opened.weights.vars);
        trainable.retain(|(name, _)| !model.unused(name));
        Ok(LoadedClassifier { checkpoint, model, trainable })
    }

    /// Token ids of each text (the tokenizer's special tokens added, truncated to the maximum length, no
    /// padding).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, ModelError> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let enc = self.tokenizer.encode_batch(texts, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Pads token id lists on the right to the longest one: (ids, mask), both [batch, longest].
    pub fn batch(&self, ids: &[&[u32]], device: &Device) -> Result<(Tensor, Tensor), ModelError> {
        let longest = ids.iter().map(|i| i.len()).max().unwrap_or(0);
        let pad = self.pad_token_id;
        let mut flat = Vec::with_capacity(ids.len() * longest);
        let mut mask = Vec::with_capacity(ids.len() * longest);
        for seq in ids {
            flat.extend_from_slice(seq);
            flat.extend(std::iter::repeat_n(pad, longest - seq.len()));
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - seq.len()));
        }
        Ok((Tensor::from_vec(flat, (ids.len(), longest), device)?, Tensor::from_vec(mask, (ids.len(), longest), device)?))
    }
}

/// Where a model's tokenizer.json is, if it has one: in its folder, or beside its GGUF file.
pub fn tokenizer_json(model: &Path) -> PathBuf {
    files_dir(model).join("tokenizer.json")
}

/// A model's tokenizer as saved: the tokenizer.json of its folder (beside a GGUF file), or, for a GGUF
/// shared without one, the tokenizer the GGUF's metadata describes.
pub fn folder_tokenizer(dir: &Path) -> Result<Tokenizer, ModelError> {
    let path = tokenizer_json(dir);
    if path.is_file() {
        return Tokenizer::from_file(&path).map_err(|e| ModelError::Invalid { path, message: e.to_string() });
    }
    match weights_file(dir) {
        Ok(w) if w.extension().is_some_and(|e| e == "gguf") => super::gguf::Gguf::open(&w)?.tokenizer(),
        _ => Err(ModelError::Missing { path, hint: "the model folder has no tokenizer.json".into() }),
    }
}

/// The chat template a folder's model was tuned with: tokenizer_config.json's `chat_template` (a string,
/// or named templates of which `default` or the first), else its GGUF's `tokenizer.chat_template`.
pub fn chat_template(dir: &Path) -> Result<Option<String>, ModelError> {
    let path = files_dir(dir).join("tokenizer_config.json");
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
        let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Invalid { path: path.clone(), message: e.to_string() })?;
        let template = match &config["chat_template"] {
            serde_json::Value::String(t) => Some(t.clone()),
            serde_json::Value::Array(named) => {
                named.iter().find(|t| t["name"] == "default").or_else(|| named.first()).and_then(|t| t["template"].as_str().map(String::from))
            }
            _ => None,
        };
        if template.is_some() {
            return Ok(template);
        }
    }
    match weights_file(dir) {
        Ok(w) if w.extension().is_some_and(|e| e == "gguf") => Ok(super::gguf::Gguf::open(&w)?.chat_template()),
        _ => Ok(None),
    }
}

/// A tokenizer.json may fix padding (MiniLM's pads to 128 tokens): it is switched off here (batches are
/// padded to their own longest text), and truncation set to the run's maximum length.
fn truncating(mut tok: Tokenizer, max_length: usize) -> Result<Tokenizer, ModelError> {
    tok.with_padding(None);
    tok.with_truncation(Some(TruncationParams { max_length, ..Default::default() })).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn safetensors_read_tensor_by_tensor_as_written_and_broken_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let dev = Device::Cpu;
        let a = Tensor::arange(0f32, 12.0, &dev).unwrap().reshape((3, 4)).unwrap();
        let b = (Tensor::arange(0f32, 5.0, &dev).unwrap() * 0.1).unwrap().to_dtype(DType::BF16).unwrap();
        candle_core::safetensors::save(&HashMap::from([("a".to_string(), a.clone()), ("b".to_string(), b.clone())]), &path).unwrap();
        let read = read_safetensors(&path, &dev).unwrap();
        assert_eq!(read["a"].to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert_eq!(read["b"].dtype(), DType::BF16);
        assert_eq!(read["b"].to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap(), b.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap());

        let bytes = std::fs::read(&path).unwrap();
        let message = |content: &[u8]| {
            std::fs::write(&path, content).unwrap();
            read_safetensors(&path, &dev).unwrap_err().to_string()
        };
        assert!(message(&bytes[..bytes.len() - 3]).contains("the file ends before the data of"), "{}", message(&bytes[..bytes.len() - 3]));
        assert!(message(b"abc").contains("shorter than its 8-byte header size"));
        assert!(message(&[0xff; 64]).contains("not a safetensors file: a header of"));
        let mut bad = bytes.clone();
        bad[8] = b'[';
        assert!(message(&bad).contains("safetensors header is invalid"));
        assert!(message(&bad).contains("model.safetensors"), "the error names the file");
    }
}
