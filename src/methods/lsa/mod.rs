//! The classic baseline: TF-IDF → truncated SVD (latent semantic analysis) → logistic regression.

mod sparse;
mod svd;
mod tfidf;

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::{Examples, FitContext, Fitted};
use crate::error::MethodError;
use crate::progress::Progress;
use tfidf::{Tfidf, TfidfOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    None,
    /// Each class weighted inversely to its frequency (scikit-learn's class_weight="balanced").
    Balanced,
}

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
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
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
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(("C", format!("C is {}; it must be a positive number", self.c)));
        }
        if !(self.tolerance > 0.0 && self.tolerance.is_finite()) {
            return Err(("tolerance", format!("tolerance is {}; it must be a positive number", self.tolerance)));
        }
        if self.max_iterations < 1 {
            return Err(("max_iterations", "max_iterations must be at least 1".into()));
        }
        Ok(())
    }
}

pub struct FittedLsa {
    tfidf: Tfidf,
    svd: svd::TruncatedSvd,
    classifier: FittedLogisticRegression<f64, bool>,
    explained_variance: f64,
}

/// Integer row multiplicities that realise class weights by repetition (linfa-logistic has no sample
/// weights): the rarer class is repeated round(w_rare / w_common) times, and the regularisation is scaled
/// so that it keeps its weight relative to the loss, as in scikit-learn where balanced weights sum to n.
fn class_multiplicity(labels: &[bool], weight: ClassWeight) -> ([usize; 2], f64) {
    match weight {
        ClassWeight::None => ([1, 1], 1.0),
        ClassWeight::Balanced => {
            let pos = labels.iter().filter(|&&l| l).count().max(1) as f64;
            let neg = (labels.len() as f64 - pos).max(1.0);
            let n = labels.len() as f64;
            let (w_neg, w_pos) = (n / (2.0 * neg), n / (2.0 * pos));
            if w_pos >= w_neg {
                ([1, (w_pos / w_neg).round() as usize], 1.0 / w_neg)
            } else {
                ([(w_neg / w_pos).round() as usize, 1], 1.0 / w_pos)
            }
        }
    }
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
        return Err(MethodError::Numerical("the vocabulary is empty: no training document has a token of two or more word characters (check min_df / max_df)".into()));
    }
    tracing::debug!(vocabulary = tfidf.vocabulary_size(), nnz = x.nnz(), seconds = started.elapsed().as_secs_f64(), "tf-idf fitted");
    let started = std::time::Instant::now();

    let bar = ctx.progress.bar(p.svd_iterations as u64 + 2, "truncated svd", "steps");
    let svd = svd::fit(
        &x,
        &svd::SvdOptions { components: p.components, iterations: p.svd_iterations, oversamples: p.svd_oversamples, seed: ctx.seed },
        &|| bar.inc(1),
    )?;
    bar.finish_and_clear();
    let z = svd.transform(&x);
    let explained_variance = svd::explained_variance_ratio(&x, &z);
    tracing::debug!(components = svd.n_components(), seconds = started.elapsed().as_secs_f64(), "truncated svd fitted");
    let started = std::time::Instant::now();

    let spinner = ctx.progress.spinner("logistic regression");
    let (mult, alpha_scale) = class_multiplicity(train.labels, p.class_weight);
    let (records, targets) = repeat_rows(&z, train.labels, mult);
    let dataset = Dataset::new(records, targets);
    // linfa minimises the summed loss; scaling the tolerance by the row count makes it a tolerance on the
    // mean loss's gradient, the criterion scikit-learn's `tol` sets.
    let tolerance = p.tolerance * dataset.nsamples() as f64;
    let classifier = LogisticRegression::default()
        .alpha(alpha_scale / p.c)
        .max_iterations(p.max_iterations)
        .gradient_tolerance(tolerance)
        .fit(&dataset)?;
    spinner.finish_and_clear();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "logistic regression fitted");
    Ok(FittedLsa { tfidf, svd, classifier, explained_variance })
}

fn repeat_rows(z: &Array2<f64>, labels: &[bool], mult: [usize; 2]) -> (Array2<f64>, Array1<bool>) {
    if mult == [1, 1] {
        return (z.clone(), Array1::from(labels.to_vec()));
    }
    let rows: Vec<usize> = (0..labels.len()).flat_map(|i| std::iter::repeat_n(i, mult[labels[i] as usize])).collect();
    let records = z.select(Axis(0), &rows);
    let targets = rows.iter().map(|&i| labels[i]).collect();
    (records, targets)
}

impl Fitted for FittedLsa {
    fn predict_proba(&self, texts: &[String], progress: &Progress) -> Result<Vec<f64>, MethodError> {
        let bar = progress.bar(texts.len() as u64, "predicting", "docs");
        let x = self.tfidf.transform(texts, &|| bar.inc(1));
        bar.finish_and_clear();
        let z = self.svd.transform(&x);
        // linfa's "positive" class is the more frequent class in training, not `true`: map explicitly.
        let p = self.classifier.predict_probabilities(&z);
        let positive_is_true = self.classifier.labels().pos.class;
        Ok(p.iter().map(|&p| if positive_is_true { p } else { 1.0 - p }).collect())
    }

    fn trainable_parameters(&self) -> usize {
        self.classifier.params().len() + 1
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_by_repetition() {
        let labels: Vec<bool> = (0..100).map(|i| i < 20).collect(); // 20 positives, 80 negatives
        let (mult, scale) = class_multiplicity(&labels, ClassWeight::Balanced);
        assert_eq!(mult, [1, 4]);
        // w_neg = 100 / 160 = 0.625 → the loss is scaled by 1/0.625 relative to scikit-learn's
        assert!((scale - 1.6).abs() < 1e-12);
        assert_eq!(class_multiplicity(&labels, ClassWeight::None), ([1, 1], 1.0));
    }
}
