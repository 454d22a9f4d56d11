//! Logistic regression (linfa-logistic) on dense features: the classifier of the LSA baseline and the
//! head of the frozen-encoder method.

use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2, Axis, ShapeBuilder};
use serde::{Deserialize, Serialize};

use crate::error::MethodError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    #[default]
    None,
    /// Each class weighted inversely to its frequency (scikit-learn's class_weight="balanced").
    Balanced,
}

/// The settings of a logistic regression, as scikit-learn names them.
#[derive(Debug, Clone, Copy)]
pub struct LogisticSettings {
    /// Inverse L2 regularisation strength.
    pub c: f64,
    pub class_weight: ClassWeight,
    pub max_iterations: u64,
    /// On the gradient of the mean loss, as scikit-learn's `tol`.
    pub tolerance: f64,
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

pub struct Logistic {
    model: FittedLogisticRegression<f64, bool>,
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

fn repeat_rows(z: &Array2<f64>, labels: &[bool], mult: [usize; 2]) -> (Array2<f64>, Array1<bool>) {
    if mult == [1, 1] {
        return (z.clone(), Array1::from(labels.to_vec()));
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
    pub fn fit(z: &Array2<f64>, labels: &[bool], s: &LogisticSettings) -> Result<Logistic, MethodError> {
        let (mult, alpha_scale) = class_multiplicity(labels, s.class_weight);
        let (records, targets) = repeat_rows(z, labels, mult);
        let records = to_column_major(records);
        let dataset = Dataset::new(records, targets);
        // linfa minimises the summed loss; scaling the tolerance by the row count makes it a tolerance on
        // the mean loss's gradient, the criterion scikit-learn's `tol` sets.
        let tolerance = s.tolerance * dataset.nsamples() as f64;
        let model = LogisticRegression::default()
            .alpha(alpha_scale / s.c)
            .max_iterations(s.max_iterations)
            .gradient_tolerance(tolerance)
            .fit(&dataset)?;
        Ok(Logistic { model })
    }

    /// Probability of the positive class (`true`).
    pub fn predict_proba(&self, z: &Array2<f64>) -> Vec<f64> {
        // linfa's "positive" class is the more frequent class in training, not `true`: map explicitly.
        let p = self.model.predict_probabilities(z);
        let positive_is_true = self.model.labels().pos.class;
        p.iter().map(|&p| if positive_is_true { p } else { 1.0 - p }).collect()
    }

    /// Weights and intercept of the positive class's log-odds: p(true) = σ(x·w + b).
    pub fn coefficients(&self) -> (Vec<f64>, f64) {
        let sign = if self.model.labels().pos.class { 1.0 } else { -1.0 };
        (self.model.params().iter().map(|w| sign * w).collect(), sign * self.model.intercept())
    }

    /// Weights and intercept.
    pub fn parameters(&self) -> usize {
        self.model.params().len() + 1
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

    #[test]
    fn probabilities_are_of_the_true_class_whichever_class_is_larger() {
        // Positives are the minority here and the majority below: the probability must follow `true`.
        for n_pos in [10, 90] {
            let labels: Vec<bool> = (0..100).map(|i| i < n_pos).collect();
            let z = Array2::from_shape_fn((100, 1), |(i, _)| if labels[i] { 1.0 } else { -1.0 });
            let s = LogisticSettings { c: 1.0, class_weight: ClassWeight::None, max_iterations: 100, tolerance: 1e-6 };
            let p = Logistic::fit(&z, &labels, &s).unwrap().predict_proba(&z);
            assert!(p[0] > 0.5 && p[99] < 0.5, "n_pos {n_pos}: {} {}", p[0], p[99]);
        }
    }
}
