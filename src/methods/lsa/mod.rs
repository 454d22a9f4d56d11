//! The classic baseline: TF-IDF → truncated SVD (latent semantic analysis) → logistic regression.

mod sparse;
mod svd;
mod tfidf;

use serde::{Deserialize, Serialize};

use super::logistic::{ClassWeight, Logistic, LogisticSettings};
use super::{ClassProbabilities, Examples, FitContext, Fitted, Method};
use crate::error::MethodError;
use crate::progress::Progress;
use tfidf::{Tfidf, TfidfOptions};

/// Hyperparameters of the LSA baseline. Defaults follow scikit-learn's pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LsaParams {
    /// Smallest and largest n-gram length, e.g. [1, 2] for unigrams and bigrams.
    pub ngram_range: [usize; 2],
    /// Ignore terms that appear in fewer training documents than this.
    pub min_df: usize,
    /// Ignore terms that appear in more than this fraction of training documents.
    pub max_df: f64,
    /// Keep only the most frequent terms.
    pub max_features: Option<usize>,
    /// Use 1 + ln(tf) instead of raw term counts.
    pub sublinear_tf: bool,
    pub lowercase: bool,
    /// SVD components (the dimension of the LSA space).
    pub components: usize,
    /// Power iterations of the randomized SVD.
    pub svd_iterations: usize,
    /// Extra random directions beyond `components`.
    pub svd_oversamples: usize,
    /// Inverse L2 regularisation strength of the logistic regression.
    #[serde(rename = "C")]
    pub c: f64,
    pub class_weight: ClassWeight,
    pub max_iterations: u64,
    /// Stop when the gradient of the mean loss is smaller than this (scikit-learn's `tol`).
    pub tolerance: f64,
}

impl Default for LsaParams {
    fn default() -> Self {
        LsaParams {
            ngram_range: [1, 1],
            min_df: 1,
            max_df: 1.0,
            max_features: None,
            sublinear_tf: true,
            lowercase: true,
            components: 200,
            svd_iterations: 5,
            svd_oversamples: 10,
            c: 1.0,
            class_weight: ClassWeight::None,
            max_iterations: 300,
            tolerance: 1e-4,
        }
    }
}

impl LsaParams {
    /// The settings of the logistic-regression classifier these parameters name.
    pub fn logistic(&self) -> LogisticSettings {
        LogisticSettings { c: self.c, class_weight: self.class_weight, max_iterations: self.max_iterations, tolerance: self.tolerance }
    }

    fn check_ranges(&self) -> Result<(), (&'static str, String)> {
        let [lo, hi] = self.ngram_range;
        if lo < 1 || hi < lo || hi > 5 {
            return Err(("ngram_range", format!("ngram_range is [{lo}, {hi}]; it must be [min, max] with 1 ≤ min ≤ max ≤ 5")));
        }
        if self.min_df < 1 {
            return Err(("min_df", "min_df must be at least 1 (a document count)".into()));
        }
        if !(self.max_df > 0.0 && self.max_df <= 1.0) {
            return Err(("max_df", format!("max_df is {}; it is a fraction of documents in (0, 1]", self.max_df)));
        }
        if self.max_features == Some(0) {
            return Err(("max_features", "max_features must be at least 1".into()));
        }
        if self.components < 1 {
            return Err(("components", "components must be at least 1".into()));
        }
        // The SVD cannot have more components than the data's rank (fewer are used, and the record
        // says so); past these bounds a value is a typo, and the randomized SVD's buffers would be huge.
        if self.components > MAX_COMPONENTS || self.svd_oversamples > MAX_COMPONENTS {
            let key = if self.components > MAX_COMPONENTS { "components" } else { "svd_oversamples" };
            return Err((key, format!("{key} is {}; at most {MAX_COMPONENTS}", if key == "components" { self.components } else { self.svd_oversamples })));
        }
        if self.svd_iterations > 100 {
            return Err(("svd_iterations", format!("svd_iterations is {}; at most 100 (5 to 10 is usual)", self.svd_iterations)));
        }
        self.logistic().validate()?;
        Ok(())
    }
}

impl Method for LsaParams {
    fn validate(&self, _kind: &str) -> Result<(), (&'static str, String)> {
        self.check_ranges()
    }

    fn fit(&self, _kind: &str, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<Box<dyn Fitted>, MethodError> {
        Ok(Box::new(fit(self, train, ctx)?))
    }
}

/// The most SVD components (or oversamples) a spec may ask for.
const MAX_COMPONENTS: usize = 100_000;

pub struct FittedLsa {
    tfidf: Tfidf,
    svd: svd::TruncatedSvd,
    classifier: Logistic,
    explained_variance: f64,
}

pub fn fit(p: &LsaParams, train: Examples<'_>, ctx: &FitContext<'_>) -> Result<FittedLsa, MethodError> {
    let opts = TfidfOptions {
        ngram_range: (p.ngram_range[0], p.ngram_range[1]),
        min_df: p.min_df,
        max_df: p.max_df,
        max_features: p.max_features,
        sublinear_tf: p.sublinear_tf,
        lowercase: p.lowercase,
    };
    let started = std::time::Instant::now();
    let bar = ctx.progress.bar(train.texts.len() as u64, "tf-idf", "docs");
    let (tfidf, x) = Tfidf::fit_transform(train.texts, opts, &|| bar.inc(1));
    bar.finish_and_clear();
    if tfidf.vocabulary_size() == 0 {
        return Err(MethodError::Numerical(
            "the vocabulary is empty: no training document has a token of two or more word characters (check min_df / max_df)".into(),
        ));
    }
    tracing::debug!(vocabulary = tfidf.vocabulary_size(), nnz = x.nnz(), seconds = started.elapsed().as_secs_f64(), "tf-idf fitted");
    let started = std::time::Instant::now();

    let bar = ctx.progress.bar(p.svd_iterations as u64 + 2, "truncated svd", "steps");
    let svd =
        svd::fit(&x, &svd::SvdOptions { components: p.components, iterations: p.svd_iterations, oversamples: p.svd_oversamples, seed: ctx.seed }, &|| {
            bar.inc(1)
        })?;
    bar.finish_and_clear();
    if svd.n_components() < p.components {
        tracing::warn!(
            "LSA: {} components asked for, {} used: the training data's TF-IDF matrix ({} documents × {} terms) has no more",
            p.components,
            svd.n_components(),
            x.nrows,
            x.ncols
        );
    }
    let z = svd.transform(&x);
    let explained_variance = svd::explained_variance_ratio(&x, &z);
    tracing::debug!(components = svd.n_components(), seconds = started.elapsed().as_secs_f64(), "truncated svd fitted");
    let started = std::time::Instant::now();

    let spinner = ctx.progress.spinner("logistic regression");
    let classifier = Logistic::fit(&z, train.labels, train.classes.len(), &p.logistic())?;
    spinner.finish_and_clear();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "logistic regression fitted");
    Ok(FittedLsa { tfidf, svd, classifier, explained_variance })
}

impl Fitted for FittedLsa {
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<ClassProbabilities, MethodError> {
        let bar = progress.bar(texts.len() as u64, "predicting", "docs");
        let x = self.tfidf.transform(texts, &|| bar.inc(1));
        bar.finish_and_clear();
        let z = self.svd.transform(&x);
        Ok(self.classifier.predict_proba(&z))
    }

    fn trainable_parameters(&self) -> usize {
        self.classifier.parameters()
    }

    fn fitted_parameters(&self) -> usize {
        self.tfidf.vocabulary_size() + self.svd.components.len() + self.trainable_parameters()
    }

    fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "vocabulary_size": self.tfidf.vocabulary_size(),
            "components": self.svd.n_components(),
            "explained_variance_ratio": self.explained_variance,
            "top_singular_values": self.svd.singular_values.iter().take(5).collect::<Vec<_>>(),
        })
    }
}
