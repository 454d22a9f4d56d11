//! Logistic regression (linfa-logistic) on dense features: the classifier of the LSA baseline and the
//! head of the frozen-encoder method. Two classes use linfa's binary model (one weight vector, the
//! positive class's log-odds); more use the multinomial one ([`super::multinomial`]: softmax over one
//! weight vector per class).

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2, Axis, ShapeBuilder};
use serde::{Deserialize, Serialize};

use std::path::Path;

use candle_core::{Device, Tensor};

use super::ClassProbabilities;
use crate::error::{MethodError, ModelError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    None,
    /// Each class weighted inversely to its frequency (scikit-learn's class_weight="balanced").
    Balanced,
}

/// The settings of a logistic regression, as scikit-learn names them. A method whose spec section
/// holds them as a `head:` section reads them with these names (`C`, `class_weight`, `max_iterations`,
/// `tolerance`) and these defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogisticSettings {
    /// Inverse L2 regularisation strength.
    #[serde(rename = "C")]
    pub c: f64,
    pub class_weight: ClassWeight,
    pub max_iterations: u64,
    /// On the gradient of the mean loss, as scikit-learn's `tol`.
    pub tolerance: f64,
}

impl Default for LogisticSettings {
    fn default() -> Self {
        LogisticSettings { c: 1.0, class_weight: ClassWeight::None, max_iterations: 300, tolerance: 1e-4 }
    }
}

impl LogisticSettings {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
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

pub enum Logistic {
    Binary(FittedLogisticRegression<f64, bool>),
    /// Classes 0..k in order.
    Multinomial(super::multinomial::Multinomial),
}

/// Integer row multiplicities that realise class weights by repetition (linfa-logistic has no sample
/// weights): class c is repeated round(w_c / w_common) times, w_common being the weight of the most
/// frequent class (scikit-learn's balanced weight n / (k·n_c)), and the regularisation is scaled so that
/// it keeps its weight relative to the loss, as in scikit-learn where balanced weights sum to n.
fn class_multiplicity(labels: &[u32], classes: usize, weight: ClassWeight) -> (Vec<usize>, f64) {
    match weight {
        ClassWeight::None => (vec![1; classes], 1.0),
        ClassWeight::Balanced => {
            let counts = crate::data::labels::class_counts(labels, classes);
            let n = labels.len() as f64;
            let weights: Vec<f64> = counts.iter().map(|&c| n / (classes as f64 * c.max(1) as f64)).collect();
            let common = weights.iter().copied().fold(f64::INFINITY, f64::min);
            (weights.iter().map(|w| (w / common).round() as usize).collect(), 1.0 / common)
        }
    }
}

/// The rows of `z` with row i repeated `mult[labels[i]]` times, and their labels.
fn repeat_rows(z: &Array2<f64>, labels: &[u32], mult: &[usize]) -> (Array2<f64>, Vec<u32>) {
    if mult.iter().all(|&m| m == 1) {
        return (z.clone(), labels.to_vec());
    }
    let rows: Vec<usize> = (0..labels.len()).flat_map(|i| std::iter::repeat_n(i, mult[labels[i] as usize])).collect();
    let records = z.select(Axis(0), &rows);
    let targets = rows.iter().map(|&i| labels[i]).collect();
    (records, targets)
}

/// The same matrix with its columns contiguous. linfa's gradient is Xᵀ·r, which ndarray (without BLAS)
/// computes as one dot product per row of Xᵀ: with X row-major each of those walks a column with a
/// stride of the feature count, missing the cache on every element.
fn to_column_major(x: Array2<f64>) -> Array2<f64> {
    let mut f = Array2::zeros(x.raw_dim().f());
    f.assign(&x);
    f
}

impl Logistic {
    /// Fits `classes`-way logistic regression on the rows of `z` (labels in 0..classes).
    pub fn fit(z: &Array2<f64>, labels: &[u32], classes: usize, s: &LogisticSettings) -> Result<Logistic, MethodError> {
        let (mult, alpha_scale) = class_multiplicity(labels, classes, s.class_weight);
        let (records, targets) = repeat_rows(z, labels, &mult);
        let records = to_column_major(records);
        // linfa minimises the summed loss; scaling the tolerance by the row count makes it a tolerance on
        // the mean loss's gradient, the criterion scikit-learn's `tol` sets.
        let tolerance = s.tolerance * records.nrows() as f64;
        if classes == 2 {
            let dataset = Dataset::new(records, Array1::from_iter(targets.iter().map(|&y| y == 1)));
            let model = LogisticRegression::default().alpha(alpha_scale / s.c).max_iterations(s.max_iterations).gradient_tolerance(tolerance).fit(&dataset)?;
            Ok(Logistic::Binary(model))
        } else {
            let model = super::multinomial::fit(records.view(), &targets, classes, alpha_scale / s.c, s.max_iterations, tolerance);
            tracing::debug!(iterations = model.iterations, "multinomial logistic regression fitted");
            Ok(Logistic::Multinomial(model))
        }
    }

    /// Each row's probability of each class.
    pub fn predict_proba(&self, z: &Array2<f64>) -> ClassProbabilities {
        match self {
            Logistic::Binary(model) => {
                // linfa's "positive" class is the more frequent class in training, not `true`: map explicitly.
                let p = model.predict_probabilities(z);
                let positive_is_true = model.labels().pos.class;
                ClassProbabilities::binary(p.iter().map(|&p| if positive_is_true { p } else { 1.0 - p }).collect())
            }
            Logistic::Multinomial(model) => {
                let p = model.predict_proba(z);
                ClassProbabilities::new(p.ncols(), p.iter().copied().collect())
            }
        }
    }

    /// One weight row per class score and the intercepts: binary, the positive class's log-odds
    /// (p(1) = σ(x·w + b)); multinomial, each class's logit (p = softmax(W·x + b)).
    pub fn coefficients(&self) -> (Vec<Vec<f64>>, Vec<f64>) {
        match self {
            Logistic::Binary(model) => {
                let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
                (vec![model.params().iter().map(|w| sign * w).collect()], vec![sign * model.intercept()])
            }
            Logistic::Multinomial(model) => {
                let w = &model.weights; // features × classes
                ((0..w.ncols()).map(|c| w.column(c).to_vec()).collect(), model.intercepts.to_vec())
            }
        }
    }

    /// Weights and intercepts.
    pub fn parameters(&self) -> usize {
        match self {
            Logistic::Binary(model) => model.params().len() + 1,
            Logistic::Multinomial(model) => model.parameters(),
        }
    }

    /// Saves the coefficients as `head.safetensors` (`SavedHead` reads them): two classes, weight
    /// [1, features] and bias [1] (the positive class's log-odds); k classes, weight [k, features] and
    /// bias [k] (the logits of a softmax).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let (weights, intercepts) = self.coefficients();
        let dim = weights.first().map_or(0, Vec::len);
        let w: Vec<f32> = weights.iter().flatten().map(|&x| x as f32).collect();
        let b: Vec<f32> = intercepts.iter().map(|&x| x as f32).collect();
        let tensors = std::collections::HashMap::from([
            ("weight".to_string(), Tensor::from_vec(w, (weights.len(), dim), &Device::Cpu)?),
            ("bias".to_string(), Tensor::from_vec(b, intercepts.len(), &Device::Cpu)?),
        ]);
        candle_core::safetensors::save(&tensors, dir.join(HEAD_FILE))?;
        Ok(())
    }
}

const HEAD_FILE: &str = "head.safetensors";

/// A head `Logistic::save` wrote: one weight row and intercept per class score, as saved (f32 widened).
pub struct SavedHead {
    weights: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

impl SavedHead {
    /// Reads `head.safetensors` in `dir`, for features of `dim` dimensions.
    pub fn load(dir: &Path, dim: usize) -> Result<SavedHead, ModelError> {
        let path = dir.join(HEAD_FILE);
        let invalid = |message: String| ModelError::Invalid { path: path.clone(), message };
        let head = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| invalid(e.to_string()))?;
        let (w, b) = (head.get("weight").ok_or_else(|| invalid("no weight tensor".into()))?, head.get("bias").ok_or_else(|| invalid("no bias tensor".into()))?);
        let weights: Vec<Vec<f64>> = w.to_vec2::<f32>()?.into_iter().map(|r| r.into_iter().map(f64::from).collect()).collect();
        let bias: Vec<f64> = b.to_vec1::<f32>()?.into_iter().map(f64::from).collect();
        if bias.len() != weights.len() || weights.is_empty() || weights.iter().any(|r| r.len() != dim) {
            return Err(invalid(format!("the head's weight ({} rows) and bias ({}) do not fit {dim}-dimensional features", weights.len(), bias.len())));
        }
        Ok(SavedHead { weights, bias })
    }

    /// Each row's probability of each class: σ(z·w + b) of the positive class for one score row,
    /// softmax(W·z + b) for more.
    pub fn predict_proba(&self, z: &Array2<f64>) -> ClassProbabilities {
        let logits = |x: ndarray::ArrayView1<f64>| -> Vec<f64> {
            self.weights.iter().zip(&self.bias).map(|(row, b)| x.iter().zip(row).map(|(&x, &w)| x * w).sum::<f64>() + b).collect()
        };
        if self.weights.len() == 1 {
            ClassProbabilities::binary(z.rows().into_iter().map(|x| 1.0 / (1.0 + (-logits(x)[0]).exp())).collect())
        } else {
            let softmax = |mut l: Vec<f64>| {
                super::multinomial::softmax_in_place((&mut l[..]).into());
                l
            };
            ClassProbabilities::new(self.weights.len(), z.rows().into_iter().flat_map(|x| softmax(logits(x))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_by_repetition() {
        let labels: Vec<u32> = (0..100).map(|i| (i < 20) as u32).collect(); // 20 positives, 80 negatives
        let (mult, scale) = class_multiplicity(&labels, 2, ClassWeight::Balanced);
        assert_eq!(mult, [1, 4]);
        // w_neg = 100 / 160 = 0.625 → the loss is scaled by 1/0.625 relative to scikit-learn's
        assert!((scale - 1.6).abs() < 1e-12);
        assert_eq!(class_multiplicity(&labels, 2, ClassWeight::None), (vec![1, 1], 1.0));
        // Three classes of 60, 30 and 10: weights 100/180, 100/90, 100/30 → 1, 2 and 6 copies.
        let labels: Vec<u32> = (0..100)
            .map(|i| {
                if i < 60 {
                    0
                } else if i < 90 {
                    1
                } else {
                    2
                }
            })
            .collect();
        assert_eq!(class_multiplicity(&labels, 3, ClassWeight::Balanced).0, [1, 2, 6]);
    }

    #[test]
    fn probabilities_are_of_the_true_class_whichever_class_is_larger() {
        // Positives are the minority here and the majority below: the probability must follow `true`.
        for n_pos in [10, 90] {
            let labels: Vec<u32> = (0..100).map(|i| (i < n_pos) as u32).collect();
            let z = Array2::from_shape_fn((100, 1), |(i, _)| if labels[i] == 1 { 1.0 } else { -1.0 });
            let s = LogisticSettings { c: 1.0, class_weight: ClassWeight::None, max_iterations: 100, tolerance: 1e-6 };
            let p = Logistic::fit(&z, &labels, 2, &s).unwrap().predict_proba(&z).positive();
            assert!(p[0] > 0.5 && p[99] < 0.5, "n_pos {n_pos}: {} {}", p[0], p[99]);
        }
    }

    #[test]
    fn multinomial_separates_three_classes_and_rows_sum_to_one() {
        // Class c sits at angle 2πc/3 on the unit circle.
        let labels: Vec<u32> = (0..90).map(|i| (i % 3) as u32).collect();
        let z = Array2::from_shape_fn((90, 2), |(i, j)| {
            let a = 2.0 * std::f64::consts::PI * labels[i] as f64 / 3.0 + (i as f64 * 0.01);
            if j == 0 {
                a.cos()
            } else {
                a.sin()
            }
        });
        let s = LogisticSettings { c: 10.0, class_weight: ClassWeight::None, max_iterations: 200, tolerance: 1e-6 };
        let model = Logistic::fit(&z, &labels, 3, &s).unwrap();
        let p = model.predict_proba(&z);
        assert_eq!(p.classes(), 3);
        for (i, &label) in labels.iter().enumerate() {
            let row = p.row(i);
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            assert_eq!(p.predicted(i), label, "row {i}: {row:?}");
        }
        let (w, b) = model.coefficients();
        assert_eq!((w.len(), w[0].len(), b.len()), (3, 2, 3));
        assert_eq!(model.parameters(), 9);
    }
}
