//! A compressed-sparse-row matrix with the two products the randomized SVD needs, parallel over rows.
//! Each output row is computed by one thread in a fixed order, so results do not depend on the number
//! of threads (floating-point sums are not associative; a parallel reduction would be).

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

    /// The transpose, itself in CSR form (a counting sort over columns).
    pub fn transpose(&self) -> Csr {
        let mut counts = vec![0usize; self.ncols + 1];
        for &j in &self.indices {
            counts[j as usize + 1] += 1;
        }
        for j in 0..self.ncols {
            counts[j + 1] += counts[j];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f64; self.nnz()];
        for i in 0..self.nrows {
            let (cols, vals) = self.row(i);
            for (&j, &v) in cols.iter().zip(vals) {
                let slot = next[j as usize];
                indices[slot] = i as u32;
                data[slot] = v;
                next[j as usize] += 1;
            }
        }
        Csr { nrows: self.ncols, ncols: self.nrows, indptr, indices, data }
    }

    /// `self · b` for a dense row-major `b` (ncols × l).
    pub fn dot_dense(&self, b: &Array2<f64>) -> Array2<f64> {
        assert_eq!(b.nrows(), self.ncols, "inner dimensions");
        let l = b.ncols();
        let b = b.as_standard_layout();
        let bs = b.as_slice().expect("standard layout");
        let mut out = vec![0f64; self.nrows * l];
        out.par_chunks_mut(l.max(1)).enumerate().for_each(|(i, out_row)| {
            let (cols, vals) = self.row(i);
            row_times_dense(cols, vals, bs, out_row);
        });
        Array2::from_shape_vec((self.nrows, l), out).expect("shape")
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn products_match_dense() {
        // [[1, 0, 2], [0, 0, 0], [0, 3, 4]]
        let m = Csr::from_rows(vec![vec![(0, 1.0), (2, 2.0)], vec![], vec![(1, 3.0), (2, 4.0)]], 3);
        let b = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        assert_eq!(m.dot_dense(&b), array![[11.0, 14.0], [0.0, 0.0], [29.0, 36.0]]);
        let t = m.transpose();
        assert_eq!(t.dot_dense(&b), array![[1.0, 2.0], [15.0, 18.0], [22.0, 28.0]]);
        assert_eq!(t.transpose().indices, m.indices);
    }
}
