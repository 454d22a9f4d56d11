//! Truncated SVD of a sparse matrix by the randomized range finder (Halko, Martinsson & Tropp, 2011),
//! without ever densifying the matrix: only products with tall-and-thin dense blocks are formed.
//!
//! Subspace iteration on A·Aᵀ, re-orthonormalising the n × l block after every product. The
//! orthonormalisation is done through the l × l Gram matrix (eigendecomposition, twice for the final
//! basis) rather than a Householder QR of the tall block: the Gram products run at matrix-multiply speed,
//! and two passes restore orthogonality to working precision.

use linfa_linalg::eigh::{EigSort, EighInto};
use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::sparse::Csr;
use crate::error::MethodError;

pub struct TruncatedSvd {
    /// Right singular vectors as columns (n_features × k): a document's reduced features are x·V.
    pub components: Array2<f64>,
    pub singular_values: Array1<f64>,
}

pub struct SvdOptions {
    pub components: usize,
    pub iterations: usize,
    pub oversamples: usize,
    pub seed: u64,
}

/// Gaussian test matrix, generated in row blocks each from its own stream: the same for any thread count.
fn gaussian(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    const BLOCK: usize = 1024;
    let mut data = vec![0f64; rows * cols];
    data.par_chunks_mut(BLOCK * cols.max(1)).enumerate().for_each(|(b, chunk)| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(b as u64);
        chunk.iter_mut().for_each(|x| *x = StandardNormal.sample(&mut rng));
    });
    Array2::from_shape_vec((rows, cols), data).expect("shape")
}

/// An orthonormal basis of the columns of `y`, via the Gram matrix: Q = Y·W·Λ^(-1/2). Directions with
/// negligible energy (rank deficiency) are dropped.
fn orthonormalize(y: &Array2<f64>) -> Result<Array2<f64>, MethodError> {
    let gram = y.t().dot(y);
    let (vals, vecs) = gram.eigh_into()?;
    let (vals, vecs) = (vals, vecs).sort_eig_desc();
    let top = vals.first().copied().unwrap_or(0.0);
    if !top.is_finite() || top <= 0.0 {
        return Err(MethodError::Numerical("the TF-IDF matrix has no energy to decompose (all rows empty?)".into()));
    }
    let keep = vals.iter().take_while(|&&v| v > top * 1e-12).count();
    let mut w = vecs.slice(ndarray::s![.., ..keep]).to_owned();
    for (mut col, &v) in w.axis_iter_mut(Axis(1)).zip(vals.iter()) {
        col /= v.sqrt();
    }
    Ok(y.dot(&w))
}

pub fn fit(a: &Csr, opts: &SvdOptions, on_step: &dyn Fn()) -> Result<TruncatedSvd, MethodError> {
    let max_rank = a.nrows.min(a.ncols);
    let k = opts.components.min(max_rank);
    // Saturating: a huge oversample count means "as many as the data allows", not a wrapped small one.
    let l = k.saturating_add(opts.oversamples).min(max_rank);

    let omega = gaussian(a.ncols, l, opts.seed);
    let mut y = a.dot_dense(&omega);
    let mut q = orthonormalize(&y)?;
    on_step();
    // One buffer for each product, reused across iterations rather than allocated and faulted in
    // each time (Enron's n_features × l block is 240 MB).
    let mut z = omega;
    for _ in 0..opts.iterations {
        reshape_buffer(&mut z, a.ncols, q.ncols());
        a.transpose_dot_dense_into(&q, &mut z);
        reshape_buffer(&mut y, a.nrows, q.ncols());
        a.dot_dense_into(&z, &mut y);
        q = orthonormalize(&y)?;
        on_step();
    }
    let q = orthonormalize(&q)?; // second pass: orthogonal to working precision

    // B = Qᵀ·A (l × n_features) = U_B·S·Vᵀ. Its l × l Gram matrix B·Bᵀ = Qᵀ·(A·(Aᵀ·Q)) is formed on the
    // document side: two sparse products and an n_docs × l × l product, where Bᵀ·B-style products on
    // the feature side would cost n_features × l × l (SMS with bigrams: 43,018 features, 4,459 documents).
    reshape_buffer(&mut z, a.ncols, q.ncols());
    a.transpose_dot_dense_into(&q, &mut z);
    let c = a.dot_dense(&z);
    let gram = q.t().dot(&c);
    let gram = (&gram + &gram.t()) * 0.5; // symmetric up to rounding; make it exactly so for eigh
    let (vals, vecs) = gram.eigh_into()?;
    let (vals, vecs) = (vals, vecs).sort_eig_desc();
    let k = k.min(vals.iter().filter(|&&v| v > 0.0).count());
    let s: Array1<f64> = vals.slice(ndarray::s![..k]).mapv(f64::sqrt);
    // V = Bᵀ·U_B·S⁻¹ = Aᵀ·(Q·U_B·S⁻¹): again a sparse product instead of a feature-side dense one.
    let mut scaled = vecs.slice(ndarray::s![.., ..k]).to_owned();
    for (mut col, &sv) in scaled.axis_iter_mut(Axis(1)).zip(s.iter()) {
        col /= sv;
    }
    let mut v = a.transpose_dot_dense(&q.dot(&scaled));
    flip_signs(&mut v);
    on_step();
    Ok(TruncatedSvd { components: v, singular_values: s })
}

/// Makes `buf` rows × cols, keeping its allocation when it already is: the basis loses columns when the
/// matrix has lower rank than asked for.
fn reshape_buffer(buf: &mut Array2<f64>, rows: usize, cols: usize) {
    if buf.dim() != (rows, cols) {
        *buf = Array2::zeros((rows, cols));
    }
}

/// Sign convention: the largest entry of each component (column) is positive, as scikit-learn's
/// svd_flip. Two row-major passes: walking a tall row-major matrix by columns would miss the cache.
fn flip_signs(v: &mut Array2<f64>) {
    let mut big = vec![0f64; v.ncols()];
    for row in v.rows() {
        for (b, &x) in big.iter_mut().zip(row) {
            if x.abs() > b.abs() {
                *b = x;
            }
        }
    }
    for mut row in v.rows_mut() {
        for (x, &b) in row.iter_mut().zip(&big) {
            if b < 0.0 {
                *x = -*x;
            }
        }
    }
}

impl TruncatedSvd {
    pub fn transform(&self, x: &Csr) -> Array2<f64> {
        x.dot_dense(&self.components)
    }

    pub fn n_components(&self) -> usize {
        self.components.ncols()
    }
}

/// Fraction of the matrix's total variance that the reduced features keep (scikit-learn's
/// explained_variance_ratio_.sum()).
pub fn explained_variance_ratio(a: &Csr, reduced: &Array2<f64>) -> f64 {
    let n = a.nrows as f64;
    let mut sum = vec![0f64; a.ncols];
    let mut sq = vec![0f64; a.ncols];
    for (&j, &v) in a.indices.iter().zip(&a.data) {
        sum[j as usize] += v;
        sq[j as usize] += v * v;
    }
    let total: f64 = sum.iter().zip(&sq).map(|(s, q)| q / n - (s / n).powi(2)).sum();
    let kept: f64 = reduced.var_axis(Axis(0), 0.0).sum();
    kept / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_singular_values_of_a_low_rank_matrix() {
        // A = u1·s1·v1ᵀ + u2·s2·v2ᵀ with orthogonal patterns; singular values 5 and 2.
        let rows: Vec<Vec<(u32, f64)>> =
            (0..40).map(|i| if i % 2 == 0 { vec![(0, 5.0 / 20f64.sqrt()), (1, 0.0)] } else { vec![(2, 2.0 / 20f64.sqrt())] }).collect();
        let a = Csr::from_rows(rows, 4);
        let svd = fit(&a, &SvdOptions { components: 2, iterations: 3, oversamples: 2, seed: 1 }, &|| {}).unwrap();
        assert!((svd.singular_values[0] - 5.0).abs() < 1e-9, "{:?}", svd.singular_values);
        assert!((svd.singular_values[1] - 2.0).abs() < 1e-9);
        let z = svd.transform(&a);
        // Reduced features reproduce A·V = U·S: norms of the columns are the singular values.
        let norm0 = z.column(0).dot(&z.column(0)).sqrt();
        assert!((norm0 - 5.0).abs() < 1e-9);
    }

    #[test]
    fn matches_the_exact_decomposition_of_a_random_sparse_matrix() {
        // 60 × 25, about 30% non-zero; rank 25 < l, so the range finder captures it exactly.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); 60];
        for row in rows.iter_mut() {
            for j in 0..25u32 {
                if rand::Rng::gen_bool(&mut rng, 0.3) {
                    row.push((j, StandardNormal.sample(&mut rng)));
                }
            }
        }
        let a = Csr::from_rows(rows, 25);
        let svd = fit(&a, &SvdOptions { components: 5, iterations: 3, oversamples: 22, seed: 2 }, &|| {}).unwrap();
        // Exact singular values: square roots of the eigenvalues of AᵀA, formed densely.
        let dense = a.dot_dense(&Array2::eye(25));
        let (vals, vecs) = dense.t().dot(&dense).eigh_into().unwrap();
        let (vals, vecs) = (vals, vecs).sort_eig_desc();
        for i in 0..5 {
            assert!((svd.singular_values[i] - vals[i].sqrt()).abs() < 1e-9, "{i}: {} vs {}", svd.singular_values[i], vals[i].sqrt());
            // Same direction as the exact right singular vector, up to sign; the largest entry positive.
            let dot = svd.components.column(i).dot(&vecs.column(i));
            assert!((dot.abs() - 1.0).abs() < 1e-9, "{i}: |cos| = {}", dot.abs());
            let big = svd.components.column(i).iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            assert!(big > 0.0);
        }
    }

    #[test]
    fn orthonormal_basis() {
        let y = gaussian(200, 12, 3);
        let q = orthonormalize(&orthonormalize(&y).unwrap()).unwrap();
        let eye = q.t().dot(&q);
        for i in 0..12 {
            for j in 0..12 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((eye[[i, j]] - want).abs() < 1e-12);
            }
        }
    }
}
