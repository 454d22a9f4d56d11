//! The decoder's position-wise ops as fused CPU kernels with their backward passes: RMS norm and the
//! SwiGLU gate. Composed of candle ops, RMS norm is six element-wise passes (square, mean, add, sqrt,
//! divide, scale), each allocating a tensor that backward keeps, and SwiGLU three; fused, each is one pass
//! over rows, split across threads, keeping only its inputs. Backward recomputes what it needs.
//! Weight gradients are summed per fixed block of rows and the blocks added in order, so they do not
//! depend on the thread count. `ops` falls back to the composed forms off the CPU.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use super::kernels::{exp, lanes_sum, lanes_sum3, slice, tensor, with_data, ROWS_PER_TASK};

struct RmsNorm {
    eps: f32,
}

/// 1 / sqrt(mean(x²) + eps) of a row.
#[inline(always)]
fn rstd(row: &[f32], eps: f32) -> f32 {
    1.0 / (lanes_sum(row, |v| v * v) / row.len() as f32 + eps).sqrt()
}

#[multiversion(targets("x86_64+avx2+fma"))]
fn rms_norm_rows(xs: &[f32], ys: &mut [f32], w: &[f32], eps: f32) {
    let n = w.len();
    for (yr, xr) in ys.chunks_mut(n).zip(xs.chunks(n)) {
        let r = rstd(xr, eps);
        for i in 0..n {
            yr[i] = xr[i] * r * w[i];
        }
    }
}

/// dx = r · (w·dy − x · r² · mean(w·dy·x)); dw += dy · x · r.
#[multiversion(targets("x86_64+avx2+fma"))]
fn rms_norm_grad_rows(xs: &[f32], dys: &[f32], dxs: &mut [f32], w: &[f32], dw: &mut [f32], eps: f32) {
    let n = w.len();
    for ((dxr, xr), dyr) in dxs.chunks_mut(n).zip(xs.chunks(n)).zip(dys.chunks(n)) {
        let r = rstd(xr, eps);
        let mean = lanes_sum3(dyr, w, xr, |d, wv, x| d * wv * x) / n as f32;
        for i in 0..n {
            dw[i] += dyr[i] * xr[i] * r;
            dxr[i] = r * (w[i] * dyr[i] - xr[i] * r * r * mean);
        }
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "fused-rms-norm"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (slice(xs, xl, "rms norm input")?, slice(ws, wl, "rms norm weight")?);
        let n = w.len();
        if xl.dims().last() != Some(&n) {
            candle_core::bail!("rms norm: input {:?}, weight {n}", xl.dims());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(n * ROWS_PER_TASK).zip(x.par_chunks(n * ROWS_PER_TASK)).for_each(|(ys, xs)| rms_norm_rows(xs, ys, w, self.eps));
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = with_data(x, "rms norm input", |x| {
            with_data(w, "rms norm weight", |w| {
                with_data(dy, "rms norm gradient", |dy| {
                    let n = w.len();
                    let task = n * ROWS_PER_TASK;
                    let mut dx = vec![0f32; x.len()];
                    let partial: Vec<Vec<f32>> = dx
                        .par_chunks_mut(task)
                        .zip(x.par_chunks(task).zip(dy.par_chunks(task)))
                        .map(|(dxs, (xs, dys))| {
                            let mut dw = vec![0f32; n];
                            rms_norm_grad_rows(xs, dys, dxs, w, &mut dw, self.eps);
                            dw
                        })
                        .collect();
                    let mut dw = vec![0f32; n];
                    for p in partial {
                        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                    }
                    (dx, dw)
                })
            })
        })???;
        Ok((Some(tensor(dx, x.shape(), x)?), Some(tensor(dw, w.shape(), w)?)))
    }
}

/// x / sqrt(mean(x²) + eps) · weight over the last dimension.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&weight.contiguous()?, RmsNorm { eps: eps as f32 })
}

struct SwiGlu;

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn swiglu_rows(gs: &[f32], us: &[f32], ys: &mut [f32]) {
    for ((y, &g), &u) in ys.iter_mut().zip(gs).zip(us) {
        *y = g * sigmoid(g) * u;
    }
}

/// dg = dy · u · σ(g)·(1 + g·(1 − σ(g))); du = dy · g·σ(g).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl", "x86_64+avx2+fma"))]
fn swiglu_grad_rows(gs: &[f32], us: &[f32], dys: &[f32], dgs: &mut [f32], dus: &mut [f32]) {
    for i in 0..gs.len() {
        let (g, u, d) = (gs[i], us[i], dys[i]);
        let s = sigmoid(g);
        dgs[i] = d * u * s * (1.0 + g * (1.0 - s));
        dus[i] = d * g * s;
    }
}

const CHUNK: usize = 4096;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "fused-swiglu"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, us: &CpuStorage, ul: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, u) = (slice(gs, gl, "swiglu gate")?, slice(us, ul, "swiglu up")?);
        if gl.dims() != ul.dims() {
            candle_core::bail!("swiglu: gate {:?}, up {:?}", gl.dims(), ul.dims());
        }
        let mut y = vec![0f32; g.len()];
        y.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK))).for_each(|(ys, (gs, us))| swiglu_rows(gs, us, ys));
        Ok((CpuStorage::F32(y), gl.shape().clone()))
    }

    fn bwd(&self, g: &Tensor, u: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dg, du) = with_data(g, "swiglu gate", |g| {
            with_data(u, "swiglu up", |u| {
                with_data(dy, "swiglu gradient", |dy| {
                    let (mut dg, mut du) = (vec![0f32; g.len()], vec![0f32; g.len()]);
                    dg.par_chunks_mut(CHUNK)
                        .zip(du.par_chunks_mut(CHUNK))
                        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)).zip(dy.par_chunks(CHUNK)))
                        .for_each(|((dgs, dus), ((gs, us), dys))| swiglu_grad_rows(gs, us, dys, dgs, dus));
                    (dg, du)
                })
            })
        })???;
        Ok((Some(tensor(dg, g.shape(), g)?), Some(tensor(du, u.shape(), u)?)))
    }
}

/// silu(gate) · up, element-wise (LLaMA's MLP between its gate/up and down projections).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn rms_norm_matches_the_composed_ops_and_its_backward_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&(Tensor::randn(0f32, 2.0, (3, 19, 24), &dev).unwrap() + 0.5).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 24, &dev).unwrap()).unwrap();
        let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap();
        let composed = super::super::ops::rms_norm_composed(x.as_tensor(), w.as_tensor(), 1e-6).unwrap();
        assert!(max_diff(&fused, &composed) < 1e-5);
        super::super::kernels::tests::check_gradients(&[x, w], |t| rms_norm(&t[0], &t[1], 1e-6).unwrap(), 2e-2);
    }

    #[test]
    fn swiglu_matches_the_composed_ops_and_its_backward_finite_differences() {
        let dev = Device::Cpu;
        let g = Var::from_tensor(&Tensor::randn(0f32, 2.0, (5, 48), &dev).unwrap()).unwrap();
        let u = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 48), &dev).unwrap()).unwrap();
        let fused = swiglu(g.as_tensor(), u.as_tensor()).unwrap();
        let composed = (g.as_tensor().silu().unwrap() * u.as_tensor()).unwrap();
        assert!(max_diff(&fused, &composed) < 1e-5);
        super::super::kernels::tests::check_gradients(&[g, u], |t| swiglu(&t[0], &t[1]).unwrap(), 2e-2);
        // Rows summed in fixed blocks: the weight gradient of RMS norm does not depend on threads.
        let x = Tensor::randn(0f32, 1.0, (70, 16), &dev).unwrap();
        let w = Var::from_tensor(&Tensor::ones(16, candle_core::DType::F32, &dev).unwrap()).unwrap();
        let loss = |w: &Var| rms_norm(&x, w.as_tensor(), 1e-6).unwrap().sum(D::Minus1).unwrap().sqr().unwrap().sum_all().unwrap();
        let one = loss(&w).backward().unwrap().get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let single = pool.install(|| loss(&w).backward().unwrap().get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(one, single);
    }
}
