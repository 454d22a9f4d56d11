//! Fused CPU kernels with their backward passes, as candle custom ops: layer norm, GELU, dropout and a
//! linear layer with frozen weights (attention, the largest, is in `fused_attention`). Composed of candle ops, each of these is 5–9
//! element-wise passes forward and more backward, each allocating a tensor; fused, it is one pass over
//! rows, split across threads. Each backward is checked against finite differences in the tests below,
//! and the forward against the composed ops in `ops`.
//!
//! Only CPU f32 tensors take these paths; `ops` falls back to the composed ops on other devices.

use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

/// Rows handed to one thread at a time: enough work to amortise the hand-off.
pub(super) const ROWS_PER_TASK: usize = 16;

/// e^x to about 2e-7 relative, branch-free so that loops around it vectorise (libm's expf is a scalar
/// call: 5% of a fine-tuning step went to it). 2^n · e^r with n = round(x / ln 2), |r| ≤ ln 2 / 2, and
/// e^r by its degree-6 Taylor polynomial. Below −87.3 (where f32 underflows) the result is exactly 0, so
/// masked attention scores still get no weight at all.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a rounding instruction.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.3, 88.7);
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n as an integer, read from the bits: in [2^23, 2^24) floats are the integers, so `shifted`'s bits
    // are ROUND's plus n. (`n as i32` gives the same value, but its saturating conversion does not
    // vectorise: it took the loops around `exp` back to one element at a time.)
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scaled = p * f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    if x < -87.3 {
        0.0
    } else {
        scaled
    }
}

// Reductions in eight interleaved lanes. A plain `sum += x` loop is a chain of dependent additions that
// the compiler may not reorder (float addition is not associative), so it runs one element at a time and
// keeps everything else in its loop scalar too: profiled, the softmax was 10% of inference for this.
// Fixed lanes give one vector add per eight elements, in the same order on every CPU and thread count.
// Inlined into the multiversioned callers, so they vectorise with the caller's instruction set.
// Kernels heavy in arithmetic (`exp`, erf, the mask hash) are built for AVX-512 besides AVX2; the values
// are the same either way: Rust never fuses a multiply and an add unless asked, and sums have their lanes.
const LANES: usize = 8;

/// Σ f(a[i], b[i], c[i]) over three equal-length slices.
#[inline(always)]
pub(super) fn lanes_sum3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb, cc) = (a.chunks_exact(LANES), b.chunks_exact(LANES), c.chunks_exact(LANES));
    let (ra, rb, rc) = (ca.remainder(), cb.remainder(), cc.remainder());
    for ((xa, xb), xc) in ca.zip(cb).zip(cc) {
        for i in 0..LANES {
            acc[i] += f(xa[i], xb[i], xc[i]);
        }
    }
    for (i, ((&x, &y), &z)) in ra.iter().zip(rb).zip(rc).enumerate() {
        acc[i] += f(x, y, z);
    }
    acc.iter().sum()
}

/// Σ f(a[i], b[i]).
#[inline(always)]
pub(super) fn lanes_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    lanes_sum3(a, b, b, |x, y, _| f(x, y))
}

/// Σ f(a[i]).
#[inline(always)]
pub(super) fn lanes_sum(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    lanes_sum3(a, a, a, |x, _, _| f(x))
}

/// The largest element (−∞ for an empty slice).
#[inline(always)]
pub(super) fn lanes_max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = a.chunks_exact(LANES);
    let rest = chunks.remainder();
    for x in chunks {
        for i in 0..LANES {
            acc[i] = if x[i] > acc[i] { x[i] } else { acc[i] };
        }
    }
    for (i, &x) in rest.iter().enumerate() {
        acc[i] = if x > acc[i] { x } else { acc[i] };
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// candle's thread count, read once: `candle_core::utils::get_num_threads` reads /proc/cpuinfo on every
/// call (measured: 10% of a LoRA step went to the kernel formatting it, called once per product).
fn pool_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(candle_core::utils::get_num_threads)
}

/// Runs `f` on a thread of rayon's pool (directly, when the caller already is one), and waits for it.
/// A forward or training pass hands parallel work (products, fused ops) to the pool hundreds of times.
/// From a thread outside the pool, each hand-off queues a job and parks the caller until a worker has
/// finished it; from inside, it is a local push that the calling worker helps with at once. Measured
/// on 2 cores (docs/performance.md, finding 18): fine-tuning +11%, LoRA on `split` +8%, inference +4–5%.
/// Only for work on the CPU: on a GPU the work is queued to the device, and it stays on the calling thread.
pub fn in_pool<R: Send>(device: &candle_core::Device, f: impl FnOnce() -> R + Send) -> R {
    if device.is_cpu() {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

/// dst[m×n] (row stride `dst_rs`, column stride 1) := (dst if `accumulate`) + lhs[m×k] · rhs[k×n],
/// each operand given with its row and column strides, so transposes and heads are read in place.
/// `threads`: split across the pool (a large product) or run on the calling thread (a small one, called
/// from a task that is itself one of many).
///
/// SAFETY: each pointer must address a matrix of the given size and strides inside its allocation, and
/// no other thread may touch the destination elements during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn product(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
    threads: bool,
) {
    let parallelism = match pool_threads() {
        n if threads && n > 1 => gemm::Parallelism::Rayon(n),
        _ => gemm::Parallelism::None,
    };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        if accumulate { 1.0f32 } else { 0.0f32 },
        1.0f32,
        false,
        false,
        false,
        parallelism,
    )
}

/// A new m × n row-major matrix, lhs · rhs (views as for `product`), with no pass to zero it first:
/// with `accumulate` false, gemm writes its whole destination without reading it (zero `alpha`).
///
/// SAFETY: as for `product`: the views address their matrices' elements.
pub(super) unsafe fn product_new(
    (m, n, k): (usize, usize, usize),
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    threads: bool,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * n);
    product((m, n, k), out.as_mut_ptr(), n, false, lhs, rhs, threads);
    out.set_len(m * n);
    out
}

/// x·Wᵀ + b, a new [rows, out] matrix, for x [rows, in] and W [out, in] (`linear`'s layout). A bias of
/// zeros (a layer without one: LLaMA's) is not copied into every row first for the product to add
/// to: that copy was 4.6% of decoder inference.
///
/// SAFETY: x has rows × in elements, W out × in, b out.
pub(super) unsafe fn affine_new((rows, out, inp): (usize, usize, usize), x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let (xv, wt) = ((x.as_ptr(), inp, 1), (w.as_ptr(), 1, inp));
    if b.iter().all(|&v| v == 0.0) {
        return product_new((rows, out, inp), xv, wt, true);
    }
    let mut y = Vec::with_capacity(rows * out);
    for _ in 0..rows {
        y.extend_from_slice(b);
    }
    product((rows, out, inp), y.as_mut_ptr(), out, true, xv, wt, true);
    y
}

/// The f32 slice of a contiguous CPU layout.
pub(super) fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// Runs `f` on a tensor's contiguous CPU storage and its layout.
fn on_cpu<R>(t: &Tensor, what: &str, f: impl FnOnce(&CpuStorage, &Layout) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(s, layout),
        _ => candle_core::bail!("{what}: CPU tensors only"),
    }
}

/// Runs `f` on a tensor's contiguous f32 data (CPU only).
pub(super) fn with_data<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    on_cpu(t, what, |s, l| Ok(f(slice(s, l, what)?)))
}

thread_local! {
    /// The widened copy of the bf16 weight in use on this thread, kept between calls: allocating it per
    /// call had the kernel map and zero ~4 GB of pages per forward pass of a 1B model.
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a frozen weight's values as f32: its own data, or, for a weight kept in bf16
/// (`Weights::keep_bf16`), a copy widened for this call into the thread's buffer. Widening bf16 to f32 is
/// exact, so the products are those of the f32 weight, with one layer's matrix in f32 at a time.
pub(super) fn weight_values<R>(s: &CpuStorage, l: &Layout, what: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let CpuStorage::BF16(data) = s else { return Ok(f(slice(s, l, what)?)) };
    let Some((start, end)) = l.contiguous_offsets() else { candle_core::bail!("{what}: expected a contiguous tensor") };
    let widen = |wide: &mut Vec<f32>| {
        wide.resize(end - start, 0.0);
        wide.par_chunks_mut(1 << 16).zip(data[start..end].par_chunks(1 << 16)).for_each(|(w, h)| w.iter_mut().zip(h).for_each(|(w, h)| *w = h.to_f32()));
    };
    WIDENED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut wide) => {
            widen(&mut wide);
            Ok(f(&wide))
        }
        // A second weight on the same thread within `f`: its own buffer.
        Err(_) => {
            let mut wide = Vec::new();
            widen(&mut wide);
            Ok(f(&wide))
        }
    })
}

/// `weight_values` of a tensor (CPU only).
pub(super) fn with_weight<R>(t: &Tensor, what: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    on_cpu(t, what, |s, l| weight_values(s, l, what, f))
}

pub(super) fn tensor(data: Vec<f32>, shape: &Shape, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(data, shape.clone(), like.device())
}

/// Whether a tensor can take the fused path.
pub fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == candle_core::DType::F32
}

// ---------------------------------------------------------------------------------------------------
// Layer norm over the last dimension.

struct LayerNorm {
    eps: f32,
}

/// Mean and 1/sqrt(var + eps) of one row (two passes: the one-pass formula loses digits when the mean
/// is large against the spread).
#[inline(always)]
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lanes_sum(row, |v| v) / n;
    let var = lanes_sum(row, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (slice(xs, xl, "layer norm input")?, slice(ws, wl, "layer norm weight")?, slice(bs, bl, "layer norm bias")?);
        let n = w.len();
        if b.len() != n || xl.dims().last() != Some(&n) {
            candle_core::bail!("layer norm: input {:?}, weight {n}, bias {}", xl.dims(), b.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(n * ROWS_PER_TASK).zip(x.par_chunks(n * ROWS_PER_TASK)).for_each(|(ys, xs)| layer_norm_rows(xs, ys, w, b, self.eps));
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_data(x, "layer norm input", |x| {
            with_data(w, "layer norm weight", |w| with_data(dy, "layer norm gradient", |dy| layer_norm_grad(dy, w, self.eps, |rows| Cow::Borrowed(&x[rows]))))
        })???;
        Ok((Some(tensor(dx, x.shape(), x)?), Some(tensor(dw, w.shape(), w)?), Some(tensor(db, w.shape(), w)?)))
    }
}

/// Layer norm of a residual sum, LN(a + r), in one op: a post-norm block's `norm(sublayer output + input)`. Saves the
/// sum's buffer and pass, and in backward the add node's accumulations. A custom op takes at most three
/// inputs, so the weight and bias come stacked as one [2, n] tensor (`add_layer_norm` stacks them;
/// candle routes the stacked gradient back to each).
struct AddLayerNorm {
    eps: f32,
}

impl CustomOp3 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "fused-add-layer-norm"
    }

    fn cpu_fwd(&self, a_s: &CpuStorage, al: &Layout, rs: &CpuStorage, rl: &Layout, wbs: &CpuStorage, wbl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (a, r, wb) = (slice(a_s, al, "residual layer norm input")?, slice(rs, rl, "residual")?, slice(wbs, wbl, "layer norm weight and bias")?);
        let n = wb.len() / 2;
        if wbl.dims() != [2, n] || al.dims() != rl.dims() || al.dims().last() != Some(&n) {
            candle_core::bail!("add + layer norm: input {:?}, residual {:?}, weight and bias {:?}", al.dims(), rl.dims(), wbl.dims());
        }
        let (w, b) = wb.split_at(n);
        let mut y = vec![0f32; a.len()];
        let rows = n * ROWS_PER_TASK;
        y.par_chunks_mut(rows).zip(a.par_chunks(rows).zip(r.par_chunks(rows))).for_each(|(ys, (as_, rs))| add_layer_norm_rows(as_, rs, ys, w, b, self.eps));
        Ok((CpuStorage::F32(y), al.shape().clone()))
    }

    fn bwd(&self, a: &Tensor, r: &Tensor, wb: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = wb.elem_count() / 2;
        let (dx, dwb) = with_data(a, "residual layer norm input", |a| {
            with_data(r, "residual", |r| {
                with_data(wb, "layer norm weight and bias", |wb| {
                    with_data(dy, "layer norm gradient", |dy| {
                        // Each task's sum is formed again from the two terms rather than kept from forward.
                        let sum = |rows: Range<usize>| Cow::Owned(a[rows.clone()].iter().zip(&r[rows]).map(|(x, y)| x + y).collect());
                        let (dx, mut dwb, db) = layer_norm_grad(dy, &wb[..n], self.eps, sum);
                        dwb.extend(db);
                        (dx, dwb)
                    })
                })
            })
        })????;
        // The sum's gradient reaches both of its terms unchanged.
        let dx = tensor(dx, a.shape(), a)?;
        Ok((Some(dx.clone()), Some(dx), Some(tensor(dwb, wb.shape(), wb)?)))
    }
}

/// LN(a + r) of whole rows: the sum is formed in the output row, then normalised in place.
#[multiversion(targets("x86_64+avx2+fma"))]
fn add_layer_norm_rows(as_: &[f32], rs: &[f32], ys: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let n = w.len();
    for ((yr, ar), rr) in ys.chunks_mut(n).zip(as_.chunks(n)).zip(rs.chunks(n)) {
        for i in 0..n {
            yr[i] = ar[i] + rr[i];
        }
        let (mean, rstd) = moments(yr, eps);
        for i in 0..n {
            yr[i] = (yr[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

/// LN(a + r) · weight + bias over the last dimension.
pub fn add_layer_norm(a: &Tensor, r: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let wb = Tensor::stack(&[weight, bias], 0)?;
    a.contiguous()?.apply_op3(&r.contiguous()?, &wb, AddLayerNorm { eps: eps as f32 })
}

/// Layer-norm gradients of all rows: dx, dw and db. Each task takes ROWS_PER_TASK rows, gets its input
/// rows from `x_rows` (borrowed, or formed on the spot), and sums its own dw and db; those partial sums
/// are added in task order, so the result does not depend on the thread count.
fn layer_norm_grad<'a>(dy: &[f32], w: &[f32], eps: f32, x_rows: impl Fn(Range<usize>) -> Cow<'a, [f32]> + Sync) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = w.len();
    let task = n * ROWS_PER_TASK;
    let mut dx = vec![0f32; dy.len()];
    let partial: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(task)
        .zip(dy.par_chunks(task))
        .enumerate()
        .map(|(i, (dxs, dys))| {
            let xs = x_rows(i * task..i * task + dys.len());
            let (mut dw, mut db) = (vec![0f32; n], vec![0f32; n]);
            layer_norm_grad_rows(&xs, dys, dxs, w, &mut dw, &mut db, eps);
            (dw, db)
        })
        .collect();
    let (mut dw, mut db) = (vec![0f32; n], vec![0f32; n]);
    for (pw, pb) in partial {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (dx, dw, db)
}

/// Layer norm of whole rows (each `w.len()` long).
#[multiversion(targets("x86_64+avx2+fma"))]
fn layer_norm_rows(xs: &[f32], ys: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let n = w.len();
    for (yr, xr) in ys.chunks_mut(n).zip(xs.chunks(n)) {
        let (mean, rstd) = moments(xr, eps);
        for i in 0..n {
            yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

/// Backward of `layer_norm_rows`: dx rows, and dw, db accumulated.
#[multiversion(targets("x86_64+avx2+fma"))]
fn layer_norm_grad_rows(xs: &[f32], dys: &[f32], dxs: &mut [f32], w: &[f32], dw: &mut [f32], db: &mut [f32], eps: f32) {
    let n = w.len();
    for ((dxr, xr), dyr) in dxs.chunks_mut(n).zip(xs.chunks(n)).zip(dys.chunks(n)) {
        let (mean, rstd) = moments(xr, eps);
        // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · w.
        for i in 0..n {
            let xhat = (xr[i] - mean) * rstd;
            dw[i] += dyr[i] * xhat;
            db[i] += dyr[i];
        }
        let g_mean = lanes_sum2(dyr, w, |d, wv| d * wv) / n as f32;
        let gx_mean = lanes_sum3(dyr, w, xr, |d, wv, x| d * wv * ((x - mean) * rstd)) / n as f32;
        for i in 0..n {
            let xhat = (xr[i] - mean) * rstd;
            dxr[i] = rstd * (dyr[i] * w[i] - g_mean - xhat * gx_mean);
        }
    }
}

/// (x − mean) / sqrt(var + eps) · weight + bias over the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps: eps as f32 })
}

// ---------------------------------------------------------------------------------------------------
// GELU, the exact (erf) form.

struct Gelu;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2π)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// erf as a rational function, x·P(x²)/Q(x²) on [−4, 4] (beyond which f32 erf is ±1): the minimax
/// fit used by Eigen and XLA for single precision. No exp and no branch, so the loop around it
/// vectorises, where libm's erff is a branchy scalar call (FINDINGS measured 14% of inference in it).
/// Numerical Recipes' erfc (an exp plus a degree-9 polynomial), used before, cost twice as much:
/// GELU was 10% of an inference profile with it.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 - 2.101_024e-6;
    let p = p * x2 - 5.692_506_4e-5;
    let p = p * x2 - 7.349_906_3e-4;
    let p = p * x2 - 2.954_6e-3;
    let p = p * x2 - 1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 - 2.133_740_6e-4;
    let q = q * x2 - 1.682_827e-3;
    let q = q * x2 - 7.373_329_2e-3;
    let q = q * x2 - 1.426_473_9e-2;
    x * p / q
}

/// x · Φ(x).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2))
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn gelu_rows(xs: &[f32], ys: &mut [f32]) {
    for (y, &x) in ys.iter_mut().zip(xs) {
        *y = gelu(x);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn gelu_rows_in_place(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = gelu(*x);
    }
}

/// dx = dy · (Φ(x) + x·φ(x)), the derivative of x·Φ(x).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn gelu_grad_rows(xs: &[f32], dys: &[f32], dxs: &mut [f32]) {
    for ((d, &x), &g) in dxs.iter_mut().zip(xs).zip(dys) {
        let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
        *d = g * (cdf + x * pdf);
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "gelu input")?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(4096).zip(x.par_chunks(4096)).for_each(|(ys, xs)| gelu_rows(xs, ys));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(arg, "gelu input", |x| {
            with_data(dy, "gelu gradient", |dy| {
                let mut dx = vec![0f32; x.len()];
                dx.par_chunks_mut(4096).zip(x.par_chunks(4096).zip(dy.par_chunks(4096))).for_each(|(dxs, (xs, dys))| gelu_grad_rows(xs, dys, dxs));
                dx
            })
        })??;
        Ok(Some(tensor(dx, arg.shape(), arg)?))
    }
}

/// x · Φ(x), Φ the standard normal CDF (Hugging Face's exact "gelu").
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

// ---------------------------------------------------------------------------------------------------
// A linear layer: y = x·Wᵀ + b.

/// The bias is folded into the product's output, and W is read transposed in place. Backward computes
/// the weight and bias gradients only for a weight and bias that are trained: candle differentiates a
/// matrix product with respect to both operands, so through a frozen layer (LoRA: every base weight
/// frozen, the input still needing its gradient) it computed and summed a weight gradient nobody used,
/// a third of the backward products. Composed, a trained layer also summed the bias gradient on one
/// thread and copied the transposed weight.
///
/// What follows the product in a post-norm encoder block (GELU after the intermediate layer, dropout
/// after the two output layers) can be applied inside the op (`Epilogue`). That saves, per layer and step, the output
/// buffers of three element-wise ops and, in backward, candle's `zeros + gradient` accumulation into
/// each of their inputs (one of them intermediate-sized, four times the hidden width).
struct LinearOp {
    epilogue: Epilogue,
    /// x·Wᵀ + b before the GELU, kept for backward (only when a gradient can be asked for).
    pre_activation: Option<std::sync::OnceLock<Vec<f32>>>,
}

/// What a linear layer applies to its output within the same op.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue {
    /// The exact (erf) GELU.
    pub gelu: bool,
    /// Dropout (p, mask key), with the mask `dropout` would draw for that key.
    pub dropout: Option<(f64, u64)>,
}

/// Column sums of a rows × n matrix: the bias gradient.
#[multiversion(targets("x86_64+avx2+fma"))]
fn add_rows(rows: &[f32], sums: &mut [f32]) {
    for row in rows.chunks(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        weight_values(ws, wl, "linear weight", |w| self.forward(xs, xl, w, wl, bs, bl))?
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, inp) = x.dims2()?;
        let out = w.dim(0)?;
        let (w_trained, b_trained) = (w.is_variable(), b.is_variable());
        let (dx, dw, db) = with_data(x, "linear input", |x| {
            with_weight(w, "linear weight", |w| {
                with_data(dy, "linear gradient", |dy| {
                    // Back through the epilogue first: the gradient of x·Wᵀ + b.
                    let through = self.epilogue_grad(dy)?;
                    let dy = through.as_deref().unwrap_or(dy);
                    // SAFETY (both products): dy is rows × out, W out × in, x rows × in, with the
                    // strides given.
                    let dx = unsafe { product_new((rows, inp, out), (dy.as_ptr(), out, 1), (w.as_ptr(), inp, 1), true) };
                    // dW = dyᵀ · x
                    let dw = w_trained.then(|| unsafe { product_new((out, inp, rows), (dy.as_ptr(), 1, out), (x.as_ptr(), inp, 1), true) });
                    let db = b_trained.then(|| {
                        let partial: Vec<Vec<f32>> = dy
                            .par_chunks(out * 64)
                            .map(|c| {
                                let mut sums = vec![0f32; out];
                                add_rows(c, &mut sums);
                                sums
                            })
                            .collect();
                        let mut sums = vec![0f32; out];
                        partial.iter().for_each(|p| add_rows(p, &mut sums));
                        sums
                    });
                    Ok::<_, candle_core::Error>((dx, dw, db))
                })
            })
        })????;
        let dw = dw.map(|d| tensor(d, w.shape(), w)).transpose()?;
        let db = db.map(|d| tensor(d, b.shape(), b)).transpose()?;
        Ok((Some(tensor(dx, x.shape(), x)?), dw, db))
    }
}

impl LinearOp {
    /// The forward pass with the weight's values as f32.
    fn forward(&self, xs: &CpuStorage, xl: &Layout, w: &[f32], wl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (slice(xs, xl, "linear input")?, slice(bs, bl, "linear bias")?);
        let (rows, inp) = xl.shape().dims2()?;
        let (out, w_inp) = wl.shape().dims2()?;
        if w_inp != inp || b.len() != out {
            candle_core::bail!("linear: input {:?}, weight {:?}, bias {}", xl.dims(), wl.dims(), b.len());
        }
        // SAFETY: sizes checked above.
        let mut y = unsafe { affine_new((rows, out, inp), x, w, b) };
        if self.epilogue.gelu {
            match &self.pre_activation {
                Some(keep) => {
                    let mut g = vec![0f32; y.len()];
                    g.par_chunks_mut(4096).zip(y.par_chunks(4096)).for_each(|(gs, ys)| gelu_rows(ys, gs));
                    let _ = keep.set(std::mem::replace(&mut y, g));
                }
                // No gradient will be taken (inference): in place, no second buffer.
                None => y.par_chunks_mut(4096).for_each(gelu_rows_in_place),
            }
        }
        if let Some((p, key)) = self.epilogue.dropout {
            y.par_chunks_mut(MASK_CHUNK).enumerate().for_each(|(c, ys)| mask_in_place(ys, key, c * MASK_CHUNK, p));
        }
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    /// dy through the dropout mask and the GELU, in reverse order of the forward pass; None when the
    /// op has no epilogue (dy is then the product's gradient as it is).
    fn epilogue_grad(&self, dy: &[f32]) -> Result<Option<Vec<f32>>> {
        let mut g = self.epilogue.dropout.map(|(p, key)| masked(dy, key, p));
        if self.epilogue.gelu {
            let Some(pre) = self.pre_activation.as_ref().and_then(|k| k.get()) else {
                candle_core::bail!("linear + GELU: backward without the kept pre-activation (forward ran untracked)");
            };
            let mut out = vec![0f32; dy.len()];
            let src = g.as_deref().unwrap_or(dy);
            out.par_chunks_mut(4096).zip(pre.par_chunks(4096).zip(src.par_chunks(4096))).for_each(|(os, (xs, ds))| gelu_grad_rows(xs, ds, os));
            g = Some(out);
        }
        Ok(g)
    }
}

/// x·Wᵀ + b for x [rows, in], W [out, in], b [out]; W and b get gradients when they are variables.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    linear_then(x, weight, bias, Epilogue::default())
}

/// `linear`, then the epilogue (GELU, dropout) inside the same op.
pub fn linear_then(x: &Tensor, weight: &Tensor, bias: &Tensor, epilogue: Epilogue) -> Result<Tensor> {
    let tracked = x.track_op() || weight.track_op() || bias.track_op();
    let pre_activation = (epilogue.gelu && tracked).then(std::sync::OnceLock::new);
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LinearOp { epilogue, pre_activation })
}

// ---------------------------------------------------------------------------------------------------
// Dropout with a counter-based mask.

/// MurmurHash3's 32-bit finaliser: a bijective mix with full avalanche. 32-bit multiplies vectorise
/// (eight lanes on AVX2), where a 64-bit mix per element made dropout 15% of a LoRA step.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Mask value of element `i`: 0 with probability `p` (to 2⁻³²), else 1 / (1 − p). Two rounds keyed by
/// the two halves of the 64-bit key, so masks of different keys are unrelated.
#[inline(always)]
fn keep(key: u64, i: usize, threshold: u32, scale: f32) -> f32 {
    let h = fmix32(fmix32(i as u32 ^ key as u32) ^ (key >> 32) as u32);
    if h < threshold {
        0.0
    } else {
        scale
    }
}

#[inline(always)]
fn threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

/// The mask `dropout` applies, drawn whole: for devices without the fused path, and for LoRA's backward
/// pass, which uses it twice (the dropped input and the input's gradient).
pub fn dropout_mask(n: usize, p: f64, key: u64) -> Vec<f32> {
    // SAFETY: `write_mask` writes every element of its chunk.
    unsafe { par_new(n, |c, m| write_mask(m, key, c * MASK_CHUNK, p)) }
}

/// The mask values of elements offset, offset + 1, …, serially (a caller already in parallel).
pub(super) fn mask_values(n: usize, key: u64, offset: usize, p: f64) -> Vec<f32> {
    let mut mask = Vec::with_capacity(n);
    write_mask(&mut mask.spare_capacity_mut()[..n], key, offset, p);
    // SAFETY: `write_mask` wrote all n elements.
    unsafe { mask.set_len(n) };
    mask
}

/// xs ⊙ mask, a new buffer, in parallel.
pub(super) fn masked(xs: &[f32], key: u64, p: f64) -> Vec<f32> {
    // SAFETY: `write_masked` writes every element of its chunk.
    unsafe { par_new(xs.len(), |c, ys| write_masked(&xs[c * MASK_CHUNK..][..ys.len()], ys, key, c * MASK_CHUNK, p)) }
}

/// ys += xs ⊙ mask for a mask already drawn (`dropout_mask`), in parallel.
pub(super) fn add_masked(xs: &[f32], mask: &[f32], ys: &mut [f32]) {
    ys.par_chunks_mut(MASK_CHUNK).zip(xs.par_chunks(MASK_CHUNK).zip(mask.par_chunks(MASK_CHUNK))).for_each(|(ys, (xs, ms))| {
        ys.iter_mut().zip(xs.iter().zip(ms)).for_each(|(y, (&x, &m))| *y += x * m);
    });
}

/// xs ⊙ mask for a mask already drawn, a new buffer, in parallel.
pub(super) fn times_mask(xs: &[f32], mask: &[f32]) -> Vec<f32> {
    let mut ys = Vec::with_capacity(xs.len());
    xs.par_iter().zip(mask).map(|(&x, &m)| x * m).collect_into_vec(&mut ys);
    ys
}

/// Elements a thread draws mask values for at a time.
const MASK_CHUNK: usize = 4096;

/// A new buffer of `n` values, written in chunks of `MASK_CHUNK` on all threads by `write(chunk
/// index, chunk)`, with no pass to zero it first (zeroing was 2% of a LoRA step).
///
/// SAFETY: `write` must write every element of the chunk it is given.
unsafe fn par_new(n: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n].par_chunks_mut(MASK_CHUNK).enumerate().for_each(|(c, chunk)| write(c, chunk));
    out.set_len(n);
    out
}

// The mask kernels hash two 32-bit rounds an element: integer work that AVX-512 does sixteen lanes at a
// time where AVX2 does eight (measured: 7% of a LoRA step on AVX2), with the same values on every path.

/// The mask values of elements offset, offset + 1, … (see `keep`), written into `out`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn write_mask(out: &mut [MaybeUninit<f32>], key: u64, offset: usize, p: f64) {
    let (t, scale) = (threshold(p), (1.0 / (1.0 - p)) as f32);
    for (j, m) in out.iter_mut().enumerate() {
        m.write(keep(key, offset + j, t, scale));
    }
}

/// ys = xs ⊙ mask for elements offset, offset + 1, …, written into `ys`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn write_masked(xs: &[f32], ys: &mut [MaybeUninit<f32>], key: u64, offset: usize, p: f64) {
    let (t, scale) = (threshold(p), (1.0 / (1.0 - p)) as f32);
    for (j, (y, &x)) in ys.iter_mut().zip(xs).enumerate() {
        y.write(x * keep(key, offset + j, t, scale));
    }
}

/// ys ⊙= mask for elements offset, offset + 1, ….
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn mask_in_place(ys: &mut [f32], key: u64, offset: usize, p: f64) {
    let (t, scale) = (threshold(p), (1.0 / (1.0 - p)) as f32);
    for (j, y) in ys.iter_mut().enumerate() {
        *y *= keep(key, offset + j, t, scale);
    }
}

struct Dropout {
    p: f64,
    key: u64,
}

impl Dropout {
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        masked(x, self.key, self.p)
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "fused-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(self.apply(slice(s, l, "dropout input")?)), l.shape().clone()))
    }

    /// The mask is recomputed from the key rather than stored: the gradient is dy · mask.
    fn bwd(&self, arg: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_data(dy, "dropout gradient", |dy| self.apply(dy))?;
        Ok(Some(tensor(dx, arg.shape(), arg)?))
    }
}

/// x · mask, the mask drawn from `key` (see `ops::dropout`).
pub fn dropout(x: &Tensor, p: f64, key: u64) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Dropout { p, key })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Central finite differences of `f` (summed against a fixed random projection, so every output
    /// element matters) with respect to each of `inputs`, compared with the op's backward.
    pub(in crate::nn) fn check_gradients(inputs: &[Var], f: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
        let dev = Device::Cpu;
        let out = f(&inputs.iter().map(|v| v.as_tensor().clone()).collect::<Vec<_>>());
        let proj = Tensor::randn(0f32, 1.0, out.shape(), &dev).unwrap();
        let objective = |ts: &[Tensor]| -> f64 { (f(ts) * &proj).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() as f64 };
        let loss = (out * &proj).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for (which, v) in inputs.iter().enumerate() {
            let analytic = grads.get(v.as_tensor()).expect("a gradient").flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let base = v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            // A sample of the coordinates keeps the test fast; f64 objective, f32 op: h = 1e-2.
            for i in (0..base.len()).step_by((base.len() / 40).max(1)) {
                let h = 1e-2f32;
                let at = |delta: f32| -> f64 {
                    let mut moved = base.clone();
                    moved[i] += delta;
                    let ts: Vec<Tensor> = inputs
                        .iter()
                        .enumerate()
                        .map(|(j, u)| if j == which { Tensor::from_vec(moved.clone(), u.shape(), &dev).unwrap() } else { u.as_tensor().clone() })
                        .collect();
                    objective(&ts)
                };
                let numeric = ((at(h) - at(-h)) / (2.0 * h as f64)) as f32;
                let err = (numeric - analytic[i]).abs() / (1.0 + numeric.abs());
                assert!(err < tol, "input {which}, element {i}: finite difference {numeric}, backward {}", analytic[i]);
            }
        }
    }

    #[test]
    fn layer_norm_matches_composed_and_its_backward_matches_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, (3, 7, 24), &dev).unwrap() + 1.5).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 24, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.3, 24, &dev).unwrap()).unwrap();
        let fused = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        let composed = super::super::ops::layer_norm_composed(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        assert!(max_diff(&fused, &composed) < 1e-5);
        check_gradients(&[x, w, b], |t| layer_norm(&t[0], &t[1], &t[2], 1e-12).unwrap(), 2e-2);
    }

    #[test]
    fn gelu_matches_exact_erf_and_its_backward_matches_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, (4, 50), &dev).unwrap()).unwrap();
        let exact = x.as_tensor().gelu_erf().unwrap();
        assert!(max_diff(&gelu_erf(x.as_tensor()).unwrap(), &exact) < 1e-6);
        // erf itself on a dense grid over [−6, 6], against candle's own (libm) erf in f64.
        let grid: Vec<f64> = (-6000..=6000).map(|i| i as f64 / 1000.0).collect();
        let exact = Tensor::new(grid.as_slice(), &dev).unwrap().erf().unwrap().to_vec1::<f64>().unwrap();
        let worst = grid.iter().zip(&exact).map(|(&v, &e)| (erf(v as f32) as f64 - e).abs()).fold(0.0, f64::max);
        assert!(worst < 5e-7, "erf is off by {worst}");
        check_gradients(&[x], |t| gelu_erf(&t[0]).unwrap(), 2e-2);
    }

    #[test]
    fn dropout_mask_is_the_same_fused_or_not_and_its_gradient_is_the_mask() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5000), &dev).unwrap()).unwrap();
        let y = dropout(x.as_tensor(), 0.1, 42).unwrap();
        let mask = Tensor::from_vec(dropout_mask(15000, 0.1, 42), (3, 5000), &dev).unwrap();
        assert_eq!(max_diff(&y, &(x.as_tensor() * &mask).unwrap()), 0.0);
        let dropped = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().filter(|&&m| m == 0.0).count();
        assert!((1300..1700).contains(&dropped), "{dropped} of 15000 dropped at p = 0.1");
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(max_diff(grads.get(x.as_tensor()).unwrap(), &mask), 0.0);
        assert!(max_diff(&dropout(x.as_tensor(), 0.1, 43).unwrap(), &y) > 0.0, "another key, another mask");
    }

    #[test]
    fn fast_exp_is_within_3e_7_relative_and_underflows_to_zero() {
        let mut worst = 0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let exact = (x as f64).exp();
            worst = worst.max(((exp(x) as f64) - exact).abs() / exact);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        // The exponent read from the bits is the saturating conversion's, to the bit.
        let converted = |x: f32| {
            let xc = x.clamp(-87.3, 88.7);
            let n = (xc * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
            let r = xc - n * 0.693_145_75 - n * 1.428_606_8e-6;
            let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
            let scaled = p * f32::from_bits(((n as i32 + 127) as u32) << 23);
            if x < -87.3 {
                0.0
            } else {
                scaled
            }
        };
        for x in (-900_000..=900_000).map(|i| i as f32 * 1e-4).chain([f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, -0.0]) {
            assert_eq!(exp(x).to_bits(), converted(x).to_bits(), "exp({x})");
        }
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn linear_matches_matmul_and_its_gradients_match_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (37, 24), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (19, 24), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 19, &dev).unwrap()).unwrap();
        let fused = linear(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
        let reference = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap().broadcast_add(b.as_tensor()).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-4);
        check_gradients(&[x.clone(), w.clone(), b.clone()], |t| linear(&t[0], &t[1], &t[2]).unwrap(), 2e-2);
        // Frozen weight and bias (plain tensors): the input gradient only, none computed for them.
        let (wf, bf) = (w.as_tensor().detach(), b.as_tensor().detach());
        let grads = linear(x.as_tensor(), &wf, &bf).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(x.as_tensor()).is_some());
        assert!(grads.get(&wf).is_none() && grads.get(&bf).is_none());
    }

    #[test]
    fn add_layer_norm_matches_the_separate_ops_and_finite_differences() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 24), &dev).unwrap()).unwrap();
        let r = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 24), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.2, 24, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.2, 24, &dev).unwrap()).unwrap();
        let fused = add_layer_norm(a.as_tensor(), r.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        let sum = (a.as_tensor() + r.as_tensor()).unwrap();
        assert!(max_diff(&fused, &layer_norm(&sum, w.as_tensor(), b.as_tensor(), 1e-12).unwrap()) == 0.0);
        check_gradients(&[a.clone(), r.clone(), w.clone(), b.clone()], |t| add_layer_norm(&t[0], &t[1], &t[2], &t[3], 1e-12).unwrap(), 2e-2);
    }

    #[test]
    fn linear_with_gelu_or_dropout_matches_the_separate_ops_and_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (37, 24), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.5, (19, 24), &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.5, 19, &dev).unwrap()).unwrap();
        let plain = linear(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
        let gelu = Epilogue { gelu: true, dropout: None };
        let drop = Epilogue { gelu: false, dropout: Some((0.3, 77)) };
        // Forward: the same values as the separate ops (the dropout mask included), tracked or not.
        let fused = linear_then(x.as_tensor(), w.as_tensor(), b.as_tensor(), gelu).unwrap();
        assert!(max_diff(&fused, &gelu_erf(&plain).unwrap()) < 1e-6);
        let untracked = linear_then(&x.as_tensor().detach(), &w.as_tensor().detach(), &b.as_tensor().detach(), gelu).unwrap();
        assert!(max_diff(&untracked, &fused) == 0.0);
        let fused = linear_then(x.as_tensor(), w.as_tensor(), b.as_tensor(), drop).unwrap();
        assert!(max_diff(&fused, &dropout(&plain, 0.3, 77).unwrap()) == 0.0);
        // Backward, for x, W and b, against finite differences and against the separate ops.
        for e in [gelu, drop] {
            check_gradients(&[x.clone(), w.clone(), b.clone()], |t| linear_then(&t[0], &t[1], &t[2], e).unwrap(), 2e-2);
            let separate = |t: &Tensor| if e.gelu { gelu_erf(t).unwrap() } else { dropout(t, 0.3, 77).unwrap() };
            let g1 = linear_then(x.as_tensor(), w.as_tensor(), b.as_tensor(), e).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = separate(&linear(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap()).sqr().unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &w, &b] {
                assert!(max_diff(g1.get(v.as_tensor()).unwrap(), g2.get(v.as_tensor()).unwrap()) < 1e-4, "{e:?}");
            }
        }
    }
}
