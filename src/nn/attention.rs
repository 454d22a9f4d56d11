//! Multi-head self-attention as one CPU op with its backward pass: softmax(Q·Kᵀ·scale + mask)·V per
//! (batch element, head), with dropout on the attention weights.
//!
//! Composed of candle ops, attention splits Q, K and V into heads (three transposed copies and a
//! fourth for Kᵀ), runs 2 × batch × heads small products each dispatched to the thread pool, and merges
//! the heads back (another copy); backward does all of it again in reverse. Here Q, K and V stay in the
//! [batch, seq, hidden] layout the projections produce: each head is a strided view read by gemm in
//! place, the (batch, head) pairs are the parallel tasks, each running its small products on one
//! thread, and the context is written straight into the [batch, seq, hidden] output the next projection
//! reads. Backward recomputes the attention weights instead of storing them (as flash attention does).
//!
//! Each sequence is a span of rows: a padded batch's sequences all have the padded length, with the
//! padding's keys masked by a bias; a packed batch's (`packing`) have their own lengths and no padding.
//!
//! Dropout uses the same counter-based mask as `kernels::dropout` with the same element indexing
//! ([batch, head, query, key] order), so the fused and composed paths agree exactly for one key. A
//! packed batch numbers its masks the same way, sequence after sequence, each len × len per head.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use multiversion::multiversion;

use super::kernels::{exp, lanes_max, lanes_sum, lanes_sum2, mask_values, product, slice, tensor, with_data};

pub struct Attention {
    heads: usize,
    scale: f32,
    /// Each sequence's rows in Q, K and V.
    spans: Vec<Span>,
    /// The additive key bias of every row: 0 where attended, very negative at padding.
    bias: Vec<f32>,
    /// Rows in all (the spans cover them, in order, without gaps).
    rows: usize,
    /// Dropout probability and mask key, in training.
    dropout: Option<(f64, u64)>,
    /// Whether each query sees only the keys at or before its own position (a decoder's mask).
    causal: bool,
}

/// One sequence: `len` rows from row `start`. Its dropout masks are numbered from `mask_base` on, one
/// len × len block per head, so that each element of every mask has its own index.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    len: usize,
    mask_base: usize,
}

/// Shapes of one call: the query width (heads · head width), the key/value width (key/value heads ·
/// head width), the head width, and how many query heads share one key/value head.
#[derive(Clone, Copy)]
struct Dims {
    h: usize,
    kv: usize,
    dh: usize,
    group: usize,
}

/// A raw pointer that may cross threads: each task writes a disjoint set of elements through it.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: tasks write disjoint elements (their own head's block), and the buffer outlives them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Attention {
    /// Sequences of the given lengths, one after another, with a bias per row.
    fn new(heads: usize, scale: f64, lengths: impl Iterator<Item = usize>, bias: Vec<f32>, dropout: Option<(f64, u64)>, causal: bool) -> Attention {
        let (mut start, mut mask_base) = (0, 0);
        let spans = lengths
            .map(|len| {
                let span = Span { start, len, mask_base };
                start += len;
                mask_base += heads * len * len;
                span
            })
            .collect();
        Attention { heads, scale: scale as f32, spans, bias, rows: start, dropout: dropout.filter(|(p, _)| *p > 0.0), causal }
    }

    /// Q is [batch, seq, hidden] or [rows, hidden] (the element layout is the same), K and V the same
    /// with the key/value heads' width (grouped-query attention: fewer key/value heads, each shared by
    /// a group of query heads, read in place rather than repeated): the rows the spans cover.
    fn dims(&self, ql: &Layout, kl: &Layout, vl: &Layout) -> Result<Dims> {
        let split = |l: &Layout| match l.dims().split_last() {
            Some((&h, lead)) if !lead.is_empty() => Ok((h, lead.iter().product::<usize>())),
            _ => candle_core::bail!("fused attention: input {:?}, expected [rows, hidden]", l.dims()),
        };
        let ((h, rows), (kv, k_rows)) = (split(ql)?, split(kl)?);
        let dh = h / self.heads.max(1);
        let kv_heads = kv / dh.max(1);
        let fits =
            rows == self.rows && k_rows == rows && h.is_multiple_of(self.heads) && kv_heads > 0 && kv == kv_heads * dh && self.heads.is_multiple_of(kv_heads);
        if !fits || vl.dims() != kl.dims() {
            candle_core::bail!(
                "fused attention: q {:?}, k {:?}, v {:?} for {} rows in {} sequences, {} heads",
                ql.dims(),
                kl.dims(),
                vl.dims(),
                self.rows,
                self.spans.len(),
                self.heads
            );
        }
        Ok(Dims { h, kv, dh, group: self.heads / kv_heads })
    }

    /// Task `task` = sequence · heads + head: its span, head, first element in Q, and first element in
    /// K and V (its key/value head's).
    fn task(&self, d: Dims, task: usize) -> (Span, usize, usize, usize) {
        let (span, hd) = (self.spans[task / self.heads], task % self.heads);
        (span, hd, span.start * d.h + hd * d.dh, span.start * d.kv + (hd / d.group) * d.dh)
    }

    /// The attention weights of one task into `p` [len × len]: after the softmax, before dropout.
    fn weights(&self, d: Dims, q: &[f32], k: &[f32], task: usize, p: &mut [f32]) {
        let (s, _, base, kv_base) = self.task(d, task);
        // SAFETY: Q and K of this head are len × dh views (row strides h and kv) inside q and k; p is
        // len × len.
        unsafe { product((s.len, s.len, d.dh), p.as_mut_ptr(), s.len, false, (q[base..].as_ptr(), d.h, 1), (k[kv_base..].as_ptr(), 1, d.kv), false) };
        if self.causal {
            // Keys after the query get no weight (`exp` is exactly 0 there), and so no gradient either.
            for (i, row) in p.chunks_mut(s.len).enumerate() {
                row[i + 1..].fill(f32::NEG_INFINITY);
            }
        }
        softmax_rows(p, &self.bias[s.start..s.start + s.len], self.scale);
    }

    /// The dropout mask of one task, [len × len]; None without dropout.
    fn mask(&self, d: Dims, task: usize) -> Option<Vec<f32>> {
        let (s, hd, _, _) = self.task(d, task);
        self.dropout.map(|(p, key)| mask_values(s.len * s.len, key, s.mask_base + hd * s.len * s.len, p))
    }

    /// Forward of one task: its head's context block, written into `out`.
    fn forward_task(&self, d: Dims, q: &[f32], k: &[f32], v: &[f32], task: usize, out: Out) {
        let (s, _, base, kv_base) = self.task(d, task);
        let mut p = vec![0f32; s.len * s.len];
        self.weights(d, q, k, task, &mut p);
        if let Some(mask) = self.mask(d, task) {
            mul_assign(&mut p, &mask);
        }
        // SAFETY: this task alone writes the len × dh block of its head (row stride h) in `out`.
        unsafe { product((s.len, d.dh, s.len), out.0.add(base), d.h, false, (p.as_ptr(), s.len, 1), (v[kv_base..].as_ptr(), d.kv, 1), false) };
    }

    /// Backward of the query heads sharing one key/value head (`group_task` = sequence · key/value
    /// heads + key/value head): their blocks of dq, and the sums of their contributions to the shared
    /// blocks of dk and dv, written by this task alone.
    #[allow(clippy::too_many_arguments)]
    fn backward_group(&self, d: Dims, q: &[f32], k: &[f32], v: &[f32], dy: &[f32], group_task: usize, outs: (Out, Out, Out)) {
        let kv_heads = self.heads / d.group;
        let (seq, g) = (group_task / kv_heads, group_task % kv_heads);
        for (i, hd) in (g * d.group..(g + 1) * d.group).enumerate() {
            self.backward_task(d, q, k, v, dy, seq * self.heads + hd, outs, i > 0);
        }
    }

    /// Backward of one task: its head's block of dq, and its contribution to its key/value head's
    /// blocks of dk and dv (added to what is there when `accumulate`).
    #[allow(clippy::too_many_arguments)]
    fn backward_task(&self, d: Dims, q: &[f32], k: &[f32], v: &[f32], dy: &[f32], task: usize, (oq, ok, ov): (Out, Out, Out), accumulate: bool) {
        let (s, _, base, kv_base) = self.task(d, task);
        let t = s.len;
        let mut p = vec![0f32; t * t];
        self.weights(d, q, k, task, &mut p);
        let mask = self.mask(d, task);
        let mut dropped = p.clone();
        if let Some(m) = &mask {
            mul_assign(&mut dropped, m);
        }
        let mut dp = vec![0f32; t * t];
        // SAFETY (all products here): the views are this head's t × dh blocks (row strides h for Q and
        // dO, kv for K and V) and the task's own t × t buffers; this task alone writes its head's block
        // of dq, and its group's task (`backward_group`), running its heads one after another, alone
        // writes the group's blocks of dk and dv.
        unsafe {
            // dV = P'ᵀ · dO
            product((t, d.dh, t), ov.0.add(kv_base), d.kv, accumulate, (dropped.as_ptr(), 1, t), (dy[base..].as_ptr(), d.h, 1), false);
            // dP' = dO · Vᵀ
            product((t, t, d.dh), dp.as_mut_ptr(), t, false, (dy[base..].as_ptr(), d.h, 1), (v[kv_base..].as_ptr(), 1, d.kv), false);
        }
        if let Some(m) = &mask {
            mul_assign(&mut dp, m);
        }
        softmax_grad_rows(&mut dp, &p, t, self.scale);
        unsafe {
            // dQ = dS · K
            product((t, d.dh, t), oq.0.add(base), d.h, false, (dp.as_ptr(), t, 1), (k[kv_base..].as_ptr(), d.kv, 1), false);
            // dK = dSᵀ · Q
            product((t, d.dh, t), ok.0.add(kv_base), d.kv, accumulate, (dp.as_ptr(), 1, t), (q[base..].as_ptr(), d.h, 1), false);
        }
    }
}

/// Each row of `p` (rows as long as `mask`) becomes softmax(row · scale + mask).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn softmax_rows(p: &mut [f32], mask: &[f32], scale: f32) {
    // Separate passes, so that each is a plain vector loop (a running max or sum inside the exp loop
    // kept all of it scalar); the reductions run in lanes (`kernels::lanes_*`).
    for row in p.chunks_mut(mask.len()) {
        for (v, &m) in row.iter_mut().zip(mask) {
            *v = *v * scale + m;
        }
        let max = lanes_max(row);
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / lanes_sum(row, |v| v);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Through the softmax, row by row: dS = scale · P ⊙ (dP − Σ dP ⊙ P), in place of dP.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn softmax_grad_rows(dp: &mut [f32], p: &[f32], t: usize, scale: f32) {
    for (dr, pr) in dp.chunks_mut(t).zip(p.chunks(t)) {
        let dot = lanes_sum2(dr, pr, |a, b| a * b);
        for (g, &pv) in dr.iter_mut().zip(pr) {
            *g = scale * pv * (*g - dot);
        }
    }
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn mul_assign(a: &mut [f32], b: &[f32]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x *= y);
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    /// q: [batch, seq, hidden] or [batch · seq, hidden], k and v the same at the key/value width; the
    /// context, in q's shape.
    fn cpu_fwd(&self, qs: &CpuStorage, ql: &Layout, ks: &CpuStorage, kl: &Layout, vs: &CpuStorage, vl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(ql, kl, vl)?;
        let (q, k, v) = (slice(qs, ql, "query")?, slice(ks, kl, "key")?, slice(vs, vl, "value")?);
        let mut out = vec![0f32; q.len()];
        let dst = Out(out.as_mut_ptr());
        (0..self.spans.len() * self.heads).into_par_iter().for_each(|task| self.forward_task(d, q, k, v, task, dst));
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(&self, q: &Tensor, k: &Tensor, v: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = self.dims(q.layout(), k.layout(), v.layout())?;
        let (dq, dk, dv) = with_data(q, "query", |q| {
            with_data(k, "key", |k| {
                with_data(v, "value", |v| {
                    with_data(dy, "attention gradient", |dy| {
                        let (mut dq, mut dk, mut dv) = (vec![0f32; q.len()], vec![0f32; k.len()], vec![0f32; v.len()]);
                        let outs = (Out(dq.as_mut_ptr()), Out(dk.as_mut_ptr()), Out(dv.as_mut_ptr()));
                        let groups = self.spans.len() * (self.heads / d.group);
                        (0..groups).into_par_iter().for_each(|g| self.backward_group(d, q, k, v, dy, g, outs));
                        (dq, dk, dv)
                    })
                })
            })
        })????;
        Ok((Some(tensor(dq, q.shape(), q)?), Some(tensor(dk, k.shape(), k)?), Some(tensor(dv, v.shape(), v)?)))
    }
}

/// Attention over q, k, v [batch, seq, hidden] (or [batch · seq, hidden]) with `heads` query heads (k
/// and v may be narrower: fewer key/value heads, each shared by a group of query heads); `bias`
/// [batch, seq] masks padding keys; `dropout` (p, key) drops attention weights in training; `causal`
/// hides from each query the keys after it.
#[allow(clippy::too_many_arguments)]
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor, heads: usize, scale: f64, dropout: Option<(f64, u64)>, causal: bool) -> Result<Tensor> {
    let (batch, seq) = bias.dims2()?;
    let bias = with_data(bias, "attention bias", <[f32]>::to_vec)?;
    apply(q, k, v, Attention::new(heads, scale, std::iter::repeat_n(seq, batch), bias, dropout, causal))
}

/// Attention over sequences packed one after another without padding: q, k, v [Σ lengths, hidden],
/// each sequence attending to its own tokens only. Numbered as `attention`'s masks are for a batch
/// padded to nothing, so a batch whose sequences all have the same length gets the same result either
/// way.
#[allow(clippy::too_many_arguments)]
pub fn attention_packed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    lengths: &[usize],
    heads: usize,
    scale: f64,
    dropout: Option<(f64, u64)>,
    causal: bool,
) -> Result<Tensor> {
    let bias = vec![0f32; lengths.iter().sum()];
    apply(q, k, v, Attention::new(heads, scale, lengths.iter().copied(), bias, dropout, causal))
}

fn apply(q: &Tensor, k: &Tensor, v: &Tensor, op: Attention) -> Result<Tensor> {
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_abs(t: &Tensor) -> f32 {
        t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The composed path of `encoder::Layer` (split heads, scores, softmax, dropout, merge), with the
    /// dropout mask drawn from the same key.
    fn composed(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, heads: usize, dropout: Option<(f64, u64)>, causal: bool) -> Tensor {
        let (b, t, h) = q.dims3().unwrap();
        let dh = h / heads;
        let split = |y: &Tensor| y.reshape((b, t, heads, dh)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
        let (q, k, v) = (split(q), split(k), split(v));
        let scores = q.matmul(&k.t().unwrap().contiguous().unwrap()).unwrap();
        let mut bias = super::super::ops::attention_bias(mask).unwrap();
        if causal {
            let later: Vec<f32> = (0..t * t).map(|n| if n % t > n / t { -1e9 } else { 0.0 }).collect();
            bias = bias.broadcast_add(&Tensor::from_vec(later, (1, 1, t, t), q.device()).unwrap()).unwrap();
        }
        let mut probs = super::super::ops::attention_softmax(&scores, &bias, 1.0 / (dh as f64).sqrt()).unwrap();
        if let Some((p, key)) = dropout {
            probs = super::super::kernels::dropout(&probs, p, key).unwrap();
        }
        probs.matmul(&v).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape((b, t, h)).unwrap()
    }

    /// q, k, v [2, 6, 8] (2 heads of 4), the second sequence padded after 4 tokens.
    fn inputs() -> (Var, Var, Var, Tensor) {
        let dev = Device::Cpu;
        let r = |shift: f64| Var::from_tensor(&(Tensor::randn(0f32, 1.0, (2, 6, 8), &dev).unwrap() + shift).unwrap()).unwrap();
        let mask = Tensor::from_vec(vec![1u32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], (2, 6), &dev).unwrap();
        (r(0.0), r(0.1), r(-0.1), mask)
    }

    #[test]
    fn fused_attention_matches_the_composed_ops_with_and_without_dropout() {
        let (q, k, v, mask) = inputs();
        let bias = super::super::ops::attention_bias(&mask).unwrap().reshape((2, 6)).unwrap();
        for dropout in [None, Some((0.3, 7u64))] {
            let fused = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 2, 0.5, dropout, false).unwrap();
            let reference = composed(q.as_tensor(), k.as_tensor(), v.as_tensor(), &mask, 2, dropout, false);
            let diff = max_abs(&(fused - reference).unwrap());
            assert!(diff < 1e-5, "dropout {dropout:?}: max difference {diff}");
        }
    }

    /// Packed sequences of lengths 6 and 4 give the padded batch's context at every real row, and
    /// their backward matches finite differences, with dropout too.
    #[test]
    fn packed_attention_matches_the_padded_batch_at_real_rows() {
        let (q, k, v, mask) = inputs();
        let bias = super::super::ops::attention_bias(&mask).unwrap().reshape((2, 6)).unwrap();
        let padded = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 2, 0.5, None, false).unwrap();
        // The second sequence's first 4 rows after the first's 6.
        let pack = |t: &Tensor| Tensor::cat(&[t.get(0).unwrap(), t.get(1).unwrap().narrow(0, 0, 4).unwrap()], 0).unwrap();
        let (pq, pk, pv) = (pack(q.as_tensor()), pack(k.as_tensor()), pack(v.as_tensor()));
        let packed = attention_packed(&pq, &pk, &pv, &[6, 4], 2, 0.5, None, false).unwrap();
        let diff = max_abs(&(packed - pack(&padded)).unwrap());
        assert!(diff < 1e-6, "max difference {diff}");
        let vars: Vec<Var> = [pq, pk, pv].iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        super::super::kernels::tests::check_gradients(&vars, |t| attention_packed(&t[0], &t[1], &t[2], &[6, 4], 2, 0.5, Some((0.3, 5)), false).unwrap(), 2e-2);
    }

    /// Backward against finite differences, and against candle's differentiation of the composed ops.
    #[test]
    fn fused_attention_gradients_match_finite_differences_and_the_composed_ops() {
        let (q, k, v, mask) = inputs();
        let bias = super::super::ops::attention_bias(&mask).unwrap().reshape((2, 6)).unwrap();
        let proj = Tensor::randn(0f32, 1.0, (2, 6, 8), &Device::Cpu).unwrap();
        for dropout in [None, Some((0.3, 11u64))] {
            super::super::kernels::tests::check_gradients(
                &[q.clone(), k.clone(), v.clone()],
                |t| attention(&t[0], &t[1], &t[2], &bias, 2, 0.5, dropout, false).unwrap(),
                2e-2,
            );
            let fused = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 2, 0.5, dropout, false).unwrap();
            let g1 = (fused * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            let reference = composed(q.as_tensor(), k.as_tensor(), v.as_tensor(), &mask, 2, dropout, false);
            let g2 = (reference * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, var) in [("q", &q), ("k", &k), ("v", &v)] {
                let (a, b) = (g1.get(var.as_tensor()).unwrap(), g2.get(var.as_tensor()).unwrap());
                let (diff, size) = (max_abs(&(a - b).unwrap()), max_abs(b));
                assert!(size > 0.0 && diff < 1e-5 * (1.0 + size), "d{name}, dropout {dropout:?}: max difference {diff}");
            }
        }
    }

    /// A decoder's mask: each query sees its own and earlier keys, padded or packed, forward and
    /// backward.
    #[test]
    fn causal_attention_matches_the_composed_ops_packed_or_padded_and_finite_differences() {
        let (q, k, v, mask) = inputs();
        let bias = super::super::ops::attention_bias(&mask).unwrap().reshape((2, 6)).unwrap();
        let padded = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 2, 0.5, None, true).unwrap();
        let reference = composed(q.as_tensor(), k.as_tensor(), v.as_tensor(), &mask, 2, None, true);
        let diff = max_abs(&(&padded - reference).unwrap());
        assert!(diff < 1e-5, "max difference {diff}");
        // The first query attends to itself alone: its context is its own value.
        let first = max_abs(&(padded.get(0).unwrap().get(0).unwrap() - v.as_tensor().get(0).unwrap().get(0).unwrap()).unwrap());
        assert!(first < 1e-6, "{first}");
        let pack = |t: &Tensor| Tensor::cat(&[t.get(0).unwrap(), t.get(1).unwrap().narrow(0, 0, 4).unwrap()], 0).unwrap();
        let (pq, pk, pv) = (pack(q.as_tensor()), pack(k.as_tensor()), pack(v.as_tensor()));
        let packed = attention_packed(&pq, &pk, &pv, &[6, 4], 2, 0.5, None, true).unwrap();
        let diff = max_abs(&(packed - pack(&padded)).unwrap());
        assert!(diff < 1e-6, "packed against padded: max difference {diff}");
        let vars: Vec<Var> = [pq, pk, pv].iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        super::super::kernels::tests::check_gradients(&vars, |t| attention_packed(&t[0], &t[1], &t[2], &[6, 4], 2, 0.5, Some((0.2, 3)), true).unwrap(), 2e-2);
        super::super::kernels::tests::check_gradients(&[q, k, v], |t| attention(&t[0], &t[1], &t[2], &bias, 2, 0.5, None, true).unwrap(), 2e-2);
    }

    /// Grouped-query attention (4 query heads sharing 2 key/value heads) read in place equals
    /// attention over key/value heads repeated for each query head, forward and backward (the shared
    /// heads' gradients summed over their group), and matches finite differences, causal and padded.
    #[test]
    fn grouped_key_value_heads_match_repeated_ones_and_finite_differences() {
        let dev = Device::Cpu;
        let (q, _, _, mask) = inputs();
        let r = |shift: f64| Var::from_tensor(&(Tensor::randn(0f32, 1.0, (2, 6, 4), &dev).unwrap() + shift).unwrap()).unwrap();
        let (k, v) = (r(0.1), r(-0.1));
        // Each key/value head of width 2 repeated twice: [k0 k0 k1 k1], as Hugging Face's repeat_kv.
        let repeat = |t: &Tensor| t.reshape((2, 6, 2, 1, 2)).unwrap().broadcast_as((2, 6, 2, 2, 2)).unwrap().contiguous().unwrap().reshape((2, 6, 8)).unwrap();
        let bias = super::super::ops::attention_bias(&mask).unwrap().reshape((2, 6)).unwrap();
        let proj = Tensor::randn(0f32, 1.0, (2, 6, 8), &dev).unwrap();
        for causal in [false, true] {
            let grouped = attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &bias, 4, 0.5, Some((0.2, 9)), causal).unwrap();
            let repeated = attention(q.as_tensor(), &repeat(k.as_tensor()), &repeat(v.as_tensor()), &bias, 4, 0.5, Some((0.2, 9)), causal).unwrap();
            assert!(max_abs(&(&grouped - &repeated).unwrap()) < 1e-6);
            let g1 = (grouped * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (repeated * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            for var in [&q, &k, &v] {
                let diff = max_abs(&(g1.get(var.as_tensor()).unwrap() - g2.get(var.as_tensor()).unwrap()).unwrap());
                assert!(diff < 1e-5, "causal {causal}: gradient differs by {diff}");
            }
            super::super::kernels::tests::check_gradients(
                &[q.clone(), k.clone(), v.clone()],
                |t| attention(&t[0], &t[1], &t[2], &bias, 4, 0.5, None, causal).unwrap(),
                2e-2,
            );
        }
    }
}
