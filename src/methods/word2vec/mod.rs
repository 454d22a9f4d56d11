//! `word2vec`: word vectors trained with Word2Vec (skip-gram or CBOW, negative sampling) on the training
//! texts only, or read from a file (and optionally trained further), each text the mean of its words'
//! vectors (or the IDF-weighted mean), and the shared logistic-regression head on top.
//!
//! Words follow LSA's rule (`tokens::words`: runs of two or more word characters, lower-cased): the two
//! bag-of-words baselines see the same words. Words outside the vocabulary are skipped; a text with no
//! known word becomes the zero vector, and the record counts those texts.

mod sgns;
mod vectors;
mod vocab;

use std::path::Path;
use std::sync::Mutex;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::logistic::{Logistic, LogisticSettings, SavedHead};
use super::{ClassProbabilities, Examples, FitContext, Fitted, Method, Predictor, Saved};
use crate::error::{MethodError, ModelError};
use crate::progress::Progress;
pub use sgns::SHARDS;
use vectors::Vectors;
use vocab::{Unigram, Vocabulary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Each word predicts its neighbours (word2vec's `-cbow 0`, gensim's `sg=1`).
    #[default]
    Skipgram,
    /// The mean of the neighbours predicts the word.
    Cbow,
}

/// How a text's word vectors become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TextPooling {
    #[default]
    Mean,
    /// Each occurrence weighted by its word's IDF on the training texts (scikit-learn's smooth IDF).
    Tfidf,
}

/// Hyperparameters; the defaults are gensim's, but for `min_count` (2: the training splits are small).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Word2VecParams {
    pub architecture: Architecture,
    /// The vectors' dimension: 100 when trained from scratch; with `vectors`, the file's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_size: Option<usize>,
    /// The most words on each side of a word that count as its context.
    pub window: usize,
    /// Words seen fewer times in the training texts are dropped.
    pub min_count: u64,
    /// Negative samples per prediction.
    pub negative: usize,
    /// Skip-gram: draw the negatives once per window, shared by the window's context words (true,
    /// BlazingText's scheme: each target row is read once per window, not once per context word), or
    /// once per (context, word) pair as word2vec and gensim do (false). CBOW draws once per window
    /// either way.
    pub shared_negatives: bool,
    /// Frequent-word down-sampling threshold (0 keeps every word).
    pub sample: f64,
    pub epochs: usize,
    /// The learning rate, decayed linearly to `min_alpha` over the whole training.
    pub alpha: f64,
    pub min_alpha: f64,
    pub pooling: TextPooling,
    pub lowercase: bool,
    /// Pretrained vectors: word2vec text or binary, or GloVe text; a path, or a name under the models
    /// directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vectors: Option<String>,
    /// With `vectors`: continue training them on the training texts (true) or keep them as they are.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub train_vectors: bool,
    /// The logistic-regression head.
    pub head: LogisticSettings,
}

impl Default for Word2VecParams {
    fn default() -> Self {
        Word2VecParams {
            architecture: Architecture::Skipgram,
            vector_size: None,
            window: 5,
            min_count: 2,
            negative: 5,
            shared_negatives: true,
            sample: 1e-3,
            epochs: 5,
            alpha: 0.025,
            min_alpha: 1e-4,
            pooling: TextPooling::Mean,
            lowercase: true,
            vectors: None,
            train_vectors: false,
            head: LogisticSettings::default(),
        }
    }
}

/// The most dimensions a spec may ask for: past it a value is a typo.
const MAX_DIM: usize = 10_000;

impl Word2VecParams {
    fn check_ranges(&self) -> Result<(), (&'static str, String)> {
        if let Some(d) = self.vector_size.filter(|&d| d == 0 || d > MAX_DIM) {
            return Err(("vector_size", format!("vector_size is {d}; it must be between 1 and {MAX_DIM}")));
        }
        for (key, value, max) in [("window", self.window, 1000), ("negative", self.negative, 1000), ("epochs", self.epochs, 10_000)] {
            if value > max {
                return Err((key, format!("{key} is {value}; at most {max}")));
            }
        }
        if self.window == 0 {
            return Err(("window", "window must be at least 1".into()));
        }
        let trains = self.vectors.is_none() || self.train_vectors;
        if trains && (self.negative == 0 || self.epochs == 0) {
            let key = if self.negative == 0 { "negative" } else { "epochs" };
            return Err((key, format!("{key} must be at least 1 to train word vectors")));
        }
        if self.min_count == 0 {
            return Err(("min_count", "min_count must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.sample) {
            return Err(("sample", format!("sample is {}; it is a frequency threshold in [0, 1) (1e-3 to 1e-5 is usual)", self.sample)));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(("alpha", format!("alpha is {}; it must be in (0, 1)", self.alpha)));
        }
        if !(self.min_alpha >= 0.0 && self.min_alpha <= self.alpha) {
            return Err(("min_alpha", format!("min_alpha is {}; it must be in [0, alpha]", self.min_alpha)));
        }
        if self.train_vectors && self.vectors.is_none() {
            return Err(("train_vectors", "train_vectors applies to vectors read from a file: give `vectors:` too".into()));
        }
        self.head.validate()
    }
}

impl Method for Word2VecParams {
    fn validate(&self, _kind: &str) -> Result<(), (&'static str, String)> {
        self.check_ranges()
    }

    /// A vectors file is read once before any run starts, so that a broken one stops the command with
    /// its line instead of failing every run.
    fn check_resources(&self, models_dir: &Path) -> Result<(), ModelError> {
        match &self.vectors {
            Some(v) => vectors::read(&vectors::locate(v, models_dir)?).map(|_| ()),
            None => Ok(()),
        }
    }

    fn fit(&self, _kind: &str, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        Ok(Box::new(fit(self, train, ctx)?))
    }

    fn load(&self, _kind: &str, saved: &Saved<'_>) -> anyhow::Result<Option<Box<dyn Predictor>>> {
        let vectors = vectors::read(&saved.artifact.join(VECTORS_FILE))?;
        let weights = read_weights(&saved.artifact.join(POOLING_FILE))?;
        if weights.len() != vectors.words.len() {
            anyhow::bail!(
                "{}: {} pooling weights for the {} words of {VECTORS_FILE}",
                saved.artifact.join(POOLING_FILE).display(),
                weights.len(),
                vectors.words.len()
            );
        }
        let head = SavedHead::load(saved.artifact, vectors.dim)?;
        Ok(Some(Box::new(Saved2Vec { features: Features::new(vectors, weights, self), head })))
    }

    /// Trained from scratch, the dimension is written out (100 unless given).
    fn resolved(mut self, _kind: &str) -> Self {
        if self.vectors.is_none() {
            self.vector_size.get_or_insert(100);
        }
        self
    }
}

const VECTORS_FILE: &str = "vectors.txt";
/// Each vocabulary word's pooling weight (1, or its IDF), in `vectors.txt`'s order.
const POOLING_FILE: &str = "pooling.safetensors";

/// Texts as features: the vocabulary's vectors and each word's weight in the pooled mean.
struct Features {
    vectors: Vectors,
    index: FxHashMap<String, u32>,
    weights: Vec<f32>,
    lowercase: bool,
}

impl Features {
    fn new(vectors: Vectors, weights: Vec<f32>, p: &Word2VecParams) -> Features {
        let index = vectors.words.iter().enumerate().map(|(i, w)| (w.clone(), i as u32)).collect();
        Features { vectors, index, weights, lowercase: p.lowercase }
    }

    /// The pooled vector of each text ([texts × dim], f64 for the head) and how many texts had no
    /// known word.
    fn pool(&self, texts: &[String], on_text: &(dyn Fn() + Sync)) -> (Array2<f64>, usize) {
        let dim = self.vectors.dim;
        let rows: Vec<(Vec<f64>, bool)> = texts
            .par_iter()
            .map(|t| {
                let words = tokenize(t, self.lowercase);
                let mut sum = vec![0f64; dim];
                let mut total = 0f64;
                for w in &words {
                    if let Some(&i) = self.index.get(w.as_str()) {
                        let weight = f64::from(self.weights[i as usize]);
                        total += weight;
                        sum.iter_mut().zip(self.vectors.row(i as usize)).for_each(|(s, &v)| *s += weight * f64::from(v));
                    }
                }
                on_text();
                if total > 0.0 {
                    sum.iter_mut().for_each(|s| *s /= total);
                }
                (sum, total == 0.0)
            })
            .collect();
        let unknown = rows.iter().filter(|(_, none)| *none).count();
        let z = Array2::from_shape_fn((rows.len(), dim), |(i, j)| rows[i].0[j]);
        (z, unknown)
    }
}

fn tokenize(text: &str, lowercase: bool) -> Vec<String> {
    super::tokens::words(&super::tokens::prepared(text, lowercase)).into_iter().map(String::from).collect()
}

pub struct FittedWord2Vec {
    features: Features,
    head: Logistic,
    details: serde_json::Value,
    train_words_per_s: Option<f64>,
    eval_unknown: Mutex<Option<usize>>,
}

/// scikit-learn's smooth IDF of each vocabulary word over the training texts (`tokens::smooth_idf`).
fn idf(words: &[String], texts: &[Vec<String>]) -> Vec<f32> {
    let index: FxHashMap<&str, usize> = words.iter().enumerate().map(|(i, w)| (w.as_str(), i)).collect();
    let mut df = vec![0u64; words.len()];
    for t in texts {
        let mut seen: Vec<usize> = t.iter().filter_map(|w| index.get(w.as_str()).copied()).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.into_iter().for_each(|i| df[i] += 1);
    }
    df.iter().map(|&d| super::tokens::smooth_idf(texts.len(), d) as f32).collect()
}

pub fn fit(p: &Word2VecParams, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<FittedWord2Vec, MethodError> {
    let texts: Vec<Vec<String>> = train.texts.par_iter().map(|t| tokenize(t, p.lowercase)).collect();
    let pretrained = match &p.vectors {
        Some(name) => Some(vectors::read(&vectors::locate(name, ctx.models_dir)?)?),
        None => None,
    };
    let dim = match (&pretrained, p.vector_size) {
        (Some(v), Some(d)) if d != v.dim => {
            return Err(MethodError::Unfit(format!("vector_size is {d} but the vectors in {} have {} dimensions", p.vectors.as_deref().unwrap_or(""), v.dim)))
        }
        (Some(v), _) => v.dim,
        (None, d) => d.unwrap_or(100),
    };
    let mut details = serde_json::Map::new();
    let mut train_words_per_s = None;
    let vectors = match pretrained {
        Some(v) if !p.train_vectors => v,
        pretrained => {
            let vocab = Vocabulary::build(&texts, p.min_count);
            if vocab.is_empty() {
                return Err(MethodError::Unfit(format!(
                    "no word occurs {} times or more in the training texts: the vocabulary is empty (lower min_count)",
                    p.min_count
                )));
            }
            let mut input = initial_vectors(vocab.len(), dim, ctx.seed);
            let mut extra = Vectors { words: Vec::new(), dim, values: Vec::new() };
            if let Some(v) = &pretrained {
                let mut from_file = 0usize;
                for (i, w) in v.words.iter().enumerate() {
                    match vocab.index.get(w) {
                        Some(&k) => {
                            input[k as usize * dim..(k as usize + 1) * dim].copy_from_slice(v.row(i));
                            from_file += 1;
                        }
                        None => {
                            extra.words.push(w.clone());
                            extra.values.extend_from_slice(v.row(i));
                        }
                    }
                }
                details.insert("vocabulary_from_vectors".into(), serde_json::json!(from_file));
            }
            let corpus: Vec<Vec<u32>> = texts.iter().map(|t| vocab.indices(t)).collect();
            let settings = sgns::Settings {
                architecture: match p.architecture {
                    Architecture::Skipgram => sgns::Architecture::SkipGram,
                    Architecture::Cbow => sgns::Architecture::Cbow,
                },
                window: p.window,
                negative: p.negative,
                shared_negatives: p.shared_negatives,
                epochs: p.epochs,
                alpha: p.alpha as f32,
                min_alpha: p.min_alpha as f32,
                seed: ctx.seed,
            };
            let per_epoch: u64 = corpus.iter().map(|t| t.len() as u64).sum();
            let bar = ctx.progress.bar(per_epoch * p.epochs as u64, "word2vec", "words");
            let outcome = sgns::train(&corpus, &mut input, dim, &vocab.keep_thresholds(p.sample), &Unigram::new(&vocab.counts), &settings, &|n| bar.inc(n));
            bar.finish_and_clear();
            if input.iter().any(|v| !v.is_finite()) {
                return Err(MethodError::Numerical("word2vec training diverged (a vector is not finite): lower alpha".into()));
            }
            let words_per_s = outcome.raw_words as f64 / outcome.seconds.max(1e-9);
            tracing::debug!(words = outcome.raw_words, effective = outcome.effective_words, seconds = outcome.seconds, words_per_s, "word2vec trained");
            details.insert("train_raw_words".into(), serde_json::json!(outcome.raw_words));
            details.insert("train_effective_words".into(), serde_json::json!(outcome.effective_words));
            details.insert("train_seconds".into(), serde_json::json!(outcome.seconds));
            details.insert("train_words_per_s".into(), serde_json::json!(words_per_s));
            details.insert("jobs_per_period".into(), serde_json::json!(SHARDS));
            train_words_per_s = Some(words_per_s);
            let mut words = vocab.words;
            words.extend(extra.words);
            input.extend(extra.values);
            Vectors { words, dim, values: input }
        }
    };
    let weights = match p.pooling {
        TextPooling::Mean => vec![1.0; vectors.words.len()],
        TextPooling::Tfidf => idf(&vectors.words, &texts),
    };
    let features = Features::new(vectors, weights, p);
    let (z, train_unknown) = features.pool(train.texts, &|| {});
    let spinner = ctx.progress.spinner("logistic regression head");
    let head = Logistic::fit(&z, train.labels, train.classes.len(), &p.head)?;
    spinner.finish_and_clear();
    details.insert("vocabulary_size".into(), serde_json::json!(features.vectors.words.len()));
    details.insert("dimension".into(), serde_json::json!(dim));
    details.insert("train_texts_without_known_words".into(), serde_json::json!(train_unknown));
    Ok(FittedWord2Vec { features, head, details: serde_json::Value::Object(details), train_words_per_s, eval_unknown: Mutex::new(None) })
}

/// The starting vectors: uniform in ±1 / dim as gensim 4 draws them (the C tool drew ±0.5 / dim; on SMS
/// that start left the pooled features 1 point of accuracy behind gensim's), under the run's seed.
fn initial_vectors(words: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(21);
    let bound = 1.0 / dim as f32;
    (0..words * dim).map(|_| rng.gen_range(-bound..bound)).collect()
}

fn write_weights(weights: &[f32], path: &Path) -> Result<(), ModelError> {
    let t = candle_core::Tensor::from_slice(weights, weights.len(), &candle_core::Device::Cpu)?;
    candle_core::safetensors::save(&std::collections::HashMap::from([("weight".to_string(), t)]), path)?;
    Ok(())
}

fn read_weights(path: &Path) -> Result<Vec<f32>, ModelError> {
    let invalid = |message: String| ModelError::Invalid { path: path.to_path_buf(), message };
    let map = candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| invalid(e.to_string()))?;
    let t = map.get("weight").ok_or_else(|| invalid("no tensor named weight".into()))?;
    t.to_vec1::<f32>().map_err(|e| invalid(e.to_string()))
}

impl Fitted for FittedWord2Vec {
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<ClassProbabilities, MethodError> {
        let bar = progress.bar(texts.len() as u64, "pooling", "texts");
        let (z, unknown) = self.features.pool(texts, &|| bar.inc(1));
        bar.finish_and_clear();
        *self.eval_unknown.lock().expect("not poisoned") = Some(unknown);
        Ok(self.head.predict_proba(&z))
    }

    fn trainable_parameters(&self) -> usize {
        self.head.parameters() + if self.train_words_per_s.is_some() { self.features.vectors.values.len() } else { 0 }
    }

    fn fitted_parameters(&self) -> usize {
        self.head.parameters() + self.features.vectors.values.len()
    }

    fn details(&self) -> serde_json::Value {
        let mut d = self.details.clone();
        if let Some(n) = *self.eval_unknown.lock().expect("not poisoned") {
            d["eval_texts_without_known_words"] = serde_json::json!(n);
        }
        d
    }

    fn save(&self, dir: &Path) -> Result<bool, MethodError> {
        vectors::write_text(&self.features.vectors, &dir.join(VECTORS_FILE))?;
        write_weights(&self.features.weights, &dir.join(POOLING_FILE))?;
        self.head.save(dir)?;
        Ok(true)
    }
}

/// A word2vec run's saved vectors, pooling weights and head.
struct Saved2Vec {
    features: Features,
    head: SavedHead,
}

impl Predictor for Saved2Vec {
    fn predict_proba(&self, texts: &[String]) -> anyhow::Result<ClassProbabilities> {
        let (z, _) = self.features.pool(texts, &|| {});
        Ok(self.head.predict_proba(&z))
    }
}
