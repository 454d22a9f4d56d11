//! A compressed-sparse-row matrix with the two products the randomized SVD needs, A·B and Aᵀ·B, parallel
//! over output rows. Each output row is computed by one thread in a fixed order, so results do not depend
//! on the number of threads (floating-point sums are not associative; a parallel reduction would be).

use ndarray::Array2;
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct Csr {
    pub nrows: usize,
    pub ncols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f64>,
}

impl Csr {
    /// Builds a matrix from rows of (column, value) sorted by column.
    pub fn from_rows(rows: Vec<Vec<(u32, f64)>>, ncols: usize) -> Csr {
        let nnz = rows.iter().map(Vec::len).sum();
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let mut indices = Vec::with_capacity(nnz);
        let mut data = Vec::with_capacity(nnz);
        indptr.push(0);
        for row in &rows {
            for &(j, v) in row {
                indices.push(j);
                data.push(v);
            }
            indptr.push(indices.len());
        }
        Csr { nrows: rows.len(), ncols, indptr, indices, data }
    }

    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// `self · b` for a dense row-major `b` (ncols × l).
    pub fn dot_dense(&self, b: &Array2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros((self.nrows, b.ncols()));
        self.dot_dense_into(b, &mut out);
        out
    }

    /// `out = self · b`, overwriting `out` (nrows × l), so that iterative callers can reuse one buffer.
    pub fn dot_dense_into(&self, b: &Array2<f64>, out: &mut Array2<f64>) {
        assert_eq!(b.nrows(), self.ncols, "inner dimensions");
        assert_eq!(out.dim(), (self.nrows, b.ncols()), "output shape");
        let l = b.ncols().max(1);
        let b = b.as_standard_layout();
        let bs = b.as_slice().expect("standard layout");
        let out = out.as_slice_mut().expect("standard layout");
        out.par_chunks_mut(l).with_min_len(64).enumerate().for_each(|(i, out_row)| {
            let (cols, vals) = self.row(i);
            out_row.fill(0.0);
            row_times_dense(cols, vals, bs, out_row);
        });
    }

    /// `selfᵀ · b`: see `transpose_dot_dense_into`.
    pub fn transpose_dot_dense(&self, b: &Array2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros((self.ncols, b.ncols()));
        self.transpose_dot_dense_into(b, &mut out);
        out
    }

    /// `out = selfᵀ · b` (ncols × l) for a dense row-major `b` (nrows × l), without forming the
    /// transpose. Through the transpose, every non-zero would gather a row of `b`, and the rows of `b`
    /// (one per document) are used about equally often, so with `b` larger than the cache each gather
    /// is a trip to memory: 5 GB of traffic per product on Enron. Here `b` is streamed once per column
    /// range and each non-zero scatters into a row of `out` instead; the columns are words, whose use
    /// follows Zipf's law, so the rows that take most of the scatters stay in cache.
    ///
    /// Each output entry is summed over the rows of `self` in row order, exactly as through the
    /// transpose, whatever the number of ranges or threads.
    pub fn transpose_dot_dense_into(&self, b: &Array2<f64>, out: &mut Array2<f64>) {
        // A few column ranges per thread, for balance.
        self.transpose_dot_dense_in_ranges(b, out, 4 * rayon::current_num_threads());
    }

    fn transpose_dot_dense_in_ranges(&self, b: &Array2<f64>, out: &mut Array2<f64>, n_ranges: usize) {
        assert_eq!(b.nrows(), self.nrows, "inner dimensions");
        assert_eq!(out.dim(), (self.ncols, b.ncols()), "output shape");
        let l = b.ncols();
        if l == 0 {
            return;
        }
        let b = b.as_standard_layout();
        let bs = b.as_slice().expect("standard layout");
        let out = out.as_slice_mut().expect("standard layout");
        let ranges = self.column_ranges(n_ranges);
        let mut parts = Vec::with_capacity(ranges.len());
        let mut rest = out;
        for &(lo, hi) in &ranges {
            let (part, tail) = rest.split_at_mut((hi - lo) * l);
            parts.push(((lo, hi), part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|((lo, hi), part)| {
            part.fill(0.0);
            for i in 0..self.nrows {
                let (cols, vals) = self.row(i);
                let (a, z) = (cols.partition_point(|&j| (j as usize) < lo), cols.partition_point(|&j| (j as usize) < hi));
                if a == z {
                    continue;
                }
                scatter_row(&cols[a..z], &vals[a..z], lo, &bs[i * l..(i + 1) * l], part);
            }
        });
    }

    /// At most `n` consecutive, non-empty column ranges covering all columns, each with about nnz / n
    /// non-zeros.
    fn column_ranges(&self, n: usize) -> Vec<(usize, usize)> {
        let mut uses = vec![0usize; self.ncols];
        for &j in &self.indices {
            uses[j as usize] += 1;
        }
        let target = self.nnz().div_ceil(n.max(1)).max(1);
        let (mut ranges, mut lo, mut acc) = (Vec::new(), 0, 0);
        for (j, &u) in uses.iter().enumerate() {
            acc += u;
            if acc >= target {
                ranges.push((lo, j + 1));
                (lo, acc) = (j + 1, 0);
            }
        }
        // Columns left after the last full range: a range of their own if they hold non-zeros (then
        // fewer than n ranges were full), else part of the last range.
        if acc == 0 && !ranges.is_empty() {
            let last = ranges.len() - 1;
            ranges[last].1 = self.ncols;
        } else if lo < self.ncols || ranges.is_empty() {
            ranges.push((lo, self.ncols));
        }
        ranges
    }
}

/// out += Σ v·b[j] over one sparse row's (j, v), b row-major with rows as long as `out`. Built for AVX2
/// as well as the baseline (4 doubles per instruction instead of 2), chosen at run time; no FMA
/// contraction (Rust never fuses a·b + c by itself), so the result is the same on either path.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn row_times_dense(cols: &[u32], vals: &[f64], b: &[f64], out: &mut [f64]) {
    let l = out.len();
    for (&j, &v) in cols.iter().zip(vals) {
        let src = &b[j as usize * l..(j as usize + 1) * l];
        for (o, &s) in out.iter_mut().zip(src) {
            *o += v * s;
        }
    }
}

/// out[j - first] += v·b_row over one sparse row's (j, v): the scatter half of a transposed product,
/// `out` row-major with rows as long as `b_row`. Built like `row_times_dense`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn scatter_row(cols: &[u32], vals: &[f64], first: usize, b_row: &[f64], out: &mut [f64]) {
    let l = b_row.len();
    for (&j, &v) in cols.iter().zip(vals) {
        let k = j as usize - first;
        for (o, &s) in out[k * l..(k + 1) * l].iter_mut().zip(b_row) {
            *o += v * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn products_match_dense() {
        // [[1, 0, 2], [0, 0, 0], [0, 3, 4]]
        let m = Csr::from_rows(vec![vec![(0, 1.0), (2, 2.0)], vec![], vec![(1, 3.0), (2, 4.0)]], 3);
        let b = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        assert_eq!(m.dot_dense(&b), array![[11.0, 14.0], [0.0, 0.0], [29.0, 36.0]]);
        assert_eq!(m.transpose_dot_dense(&b), array![[1.0, 2.0], [15.0, 18.0], [22.0, 28.0]]);
    }

    #[test]
    fn transposed_product_sums_in_row_order_whatever_the_column_ranges() {
        // 300 × 40 with Zipf-like column use, random values: sums that depend on their order.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); 300];
        for row in rows.iter_mut() {
            for j in 0..40u32 {
                if rng.gen_bool(1.0 / (1.0 + j as f64)) {
                    row.push((j, rng.gen_range(-1.0..1.0)));
                }
            }
        }
        let m = Csr::from_rows(rows.clone(), 40);
        let b = Array2::from_shape_fn((300, 5), |_| rng.gen_range(-1.0..1.0));
        // The reference: each output entry accumulated over the rows in order, as through the transpose.
        let mut want = Array2::<f64>::zeros((40, 5));
        for (i, row) in rows.iter().enumerate() {
            for &(j, v) in row {
                for c in 0..5 {
                    want[[j as usize, c]] += v * b[[i, c]];
                }
            }
        }
        for n in [1, 2, 3, 7, 64, 2000] {
            let ranges = m.column_ranges(n);
            assert!(ranges.len() <= n.max(1), "{n} ranges asked, {} made", ranges.len());
            assert_eq!((ranges[0].0, ranges[ranges.len() - 1].1), (0, 40));
            assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1), "{ranges:?}");
            let mut got = Array2::from_elem((40, 5), f64::NAN); // every entry must be overwritten
            m.transpose_dot_dense_in_ranges(&b, &mut got, n);
            assert_eq!(got, want, "{n} ranges");
        }
    }
}
