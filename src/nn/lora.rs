//! A frozen linear layer with its LoRA adapter as one CPU op: y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ, with a
//! backward pass that returns the gradients of x, A and B only.
//!
//! Composed of candle ops, each adapted layer was a frozen product, a dropout, two thin products, a
//! scaling and an addition, each a full pass with its own output, and backward through all of them
//! (candle also differentiated the frozen weight). Here the bias, the base product and the low-rank
//! product accumulate into one output buffer; the scale is applied on the rank-r intermediate, which is
//! r/out the size; backward recomputes the dropped input from the mask key instead of storing it.
//!
//! Thin products: gemm computes a row-major result transposed, the result's columns becoming the
//! microkernel's vector lanes, so a result of r = 8 columns filled half of one 16-lane AVX-512 register,
//! in its narrowest kernel. The rank-r intermediates h and dh are therefore kept transposed, [r, rows],
//! and dB is computed as dBᵀ, so that each product's long side (rows or out) is the one vectorised.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use std::borrow::Cow;

use super::kernels::{add_masked, affine_new, dropout_mask, masked, product, product_new, slice, tensor, times_mask, with_data, with_weight};

pub struct LoraLinear {
    /// The frozen weight [out, in] and bias [out].
    pub weight: Tensor,
    pub bias: Tensor,
    /// alpha / r
    pub scale: f32,
    /// Dropout on the adapter's input: probability and mask key, in training.
    pub dropout: Option<(f64, u64)>,
}

/// rows, in, out, rank
#[derive(Clone, Copy)]
struct Dims {
    rows: usize,
    inp: usize,
    out: usize,
    r: usize,
}

impl LoraLinear {
    fn dims(&self, xl: &Layout, al: &Layout, bl: &Layout) -> Result<Dims> {
        let (rows, inp) = xl.shape().dims2()?;
        let (r, a_in) = al.shape().dims2()?;
        let (out, b_r) = bl.shape().dims2()?;
        if a_in != inp || b_r != r || self.weight.dims() != [out, inp] || self.bias.dims() != [out] {
            candle_core::bail!("LoRA linear: x {:?}, A {:?}, B {:?}, W {:?}, bias {:?}", xl.dims(), al.dims(), bl.dims(), self.weight.dims(), self.bias.dims());
        }
        Ok(Dims { rows, inp, out, r })
    }

    /// The adapter's input in the forward pass: x with dropout applied, or x itself.
    fn dropped<'a>(&self, x: &'a [f32]) -> Cow<'a, [f32]> {
        match self.dropout {
            None => Cow::Borrowed(x),
            Some((p, key)) => Cow::Owned(masked(x, key, p)),
        }
    }

    /// hᵀ = scale · A · drop(x)ᵀ, [r, rows]: the rank-r intermediate h stored transposed (see the
    /// module's note on thin products).
    fn low_rank_t(&self, d: Dims, xd: &[f32], a: &[f32]) -> Vec<f32> {
        // SAFETY: A is r × in; drop(x)ᵀ is read from xd [rows, in] (row stride 1, column stride in).
        let mut ht = unsafe { product_new((d.r, d.rows, d.inp), (a.as_ptr(), d.inp, 1), (xd.as_ptr(), 1, d.inp), true) };
        ht.iter_mut().for_each(|v| *v *= self.scale);
        ht
    }
}

impl CustomOp3 for LoraLinear {
    fn name(&self) -> &'static str {
        "fused-lora-linear"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, as_: &CpuStorage, al: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = self.dims(xl, al, bl)?;
        let (x, a, b) = (slice(xs, xl, "LoRA input")?, slice(as_, al, "lora_A")?, slice(bs, bl, "lora_B")?);
        let ht = self.low_rank_t(d, &self.dropped(x), a);
        let y = with_weight(&self.weight, "frozen weight", |w| {
            with_data(&self.bias, "frozen bias", |bias| {
                // SAFETY: y is rows × out; x rows × in; W [out, in]; h read from hᵀ [r, rows] (row stride 1,
                // column stride rows); Bᵀ from B [out, r] (sizes checked by `dims`).
                unsafe {
                    let mut y = affine_new((d.rows, d.out, d.inp), x, w, bias);
                    product((d.rows, d.out, d.r), y.as_mut_ptr(), d.out, true, (ht.as_ptr(), 1, d.rows), (b.as_ptr(), 1, d.r), true);
                    y
                }
            })
        })??;
        Ok((CpuStorage::F32(y), Shape::from((d.rows, d.out))))
    }

    fn bwd(&self, x: &Tensor, a: &Tensor, b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = self.dims(x.layout(), a.layout(), b.layout())?;
        let (dx, da, db) = with_data(x, "LoRA input", |x| {
            with_data(a, "lora_A", |a| {
                with_data(b, "lora_B", |b| {
                    with_data(dy, "LoRA gradient", |dy| {
                        with_weight(&self.weight, "frozen weight", |w| {
                            // The mask is drawn once here, for the dropped input and for dx (hashing
                            // it is the costly part, not applying it).
                            let mask = self.dropout.map(|(p, key)| dropout_mask(x.len(), p, key));
                            let xd = match &mask {
                                Some(m) => Cow::Owned(times_mask(x, m)),
                                None => Cow::Borrowed(x),
                            };
                            let ht = self.low_rank_t(d, &xd, a);
                            // SAFETY (all products): every view addresses exactly its matrix (rows × in,
                            // r × in, out × r, r × rows, rows × out) with the strides given.
                            let (dbt, mut dht) = unsafe {
                                (
                                    // dBᵀ = hᵀ · dy  (h already carries the scale)
                                    product_new((d.r, d.out, d.rows), (ht.as_ptr(), d.rows, 1), (dy.as_ptr(), d.out, 1), true),
                                    // dhᵀ = scale · Bᵀ · dyᵀ
                                    product_new((d.r, d.rows, d.out), (b.as_ptr(), 1, d.r), (dy.as_ptr(), 1, d.out), true),
                                )
                            };
                            dht.iter_mut().for_each(|v| *v *= self.scale);
                            let mut db = vec![0f32; d.out * d.r];
                            for i in 0..d.r {
                                (0..d.out).for_each(|o| db[o * d.r + i] = dbt[i * d.out + o]);
                            }
                            let (da, mut dx) = unsafe {
                                (
                                    // dA = dhᵀ · drop(x)
                                    product_new((d.r, d.inp, d.rows), (dht.as_ptr(), d.rows, 1), (xd.as_ptr(), d.inp, 1), true),
                                    // dx = dy · W, then + mask ⊙ (dh · A)
                                    product_new((d.rows, d.inp, d.out), (dy.as_ptr(), d.out, 1), (w.as_ptr(), d.inp, 1), true),
                                )
                            };
                            // dh read from dhᵀ [r, rows]: row stride 1, column stride rows.
                            let dh = (dht.as_ptr(), 1, d.rows);
                            match &mask {
                                None => unsafe { product((d.rows, d.inp, d.r), dx.as_mut_ptr(), d.inp, true, dh, (a.as_ptr(), d.inp, 1), true) },
                                Some(m) => {
                                    let through = unsafe { product_new((d.rows, d.inp, d.r), dh, (a.as_ptr(), d.inp, 1), true) };
                                    add_masked(&through, m, &mut dx);
                                }
                            }
                            (dx, da, db)
                        })
                    })
                })
            })
        })?????;
        Ok((Some(tensor(dx, x.shape(), x)?), Some(tensor(da, a.shape(), a)?), Some(tensor(db, b.shape(), b)?)))
    }
}

/// x [rows, in] through a frozen linear layer (weight [out, in], bias [out]) and its adapter (A [r, in],
/// B [out, r], scale), with dropout (p, key) on the adapter's input in training.
pub fn lora_linear(x: &Tensor, weight: &Tensor, bias: &Tensor, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<(f64, u64)>) -> Result<Tensor> {
    let op = LoraLinear { weight: weight.contiguous()?, bias: bias.contiguous()?, scale: scale as f32, dropout: dropout.filter(|(p, _)| *p > 0.0) };
    x.contiguous()?.apply_op3(&a.contiguous()?, &b.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_abs(t: &Tensor) -> f32 {
        t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The composed path of `encoder::Linear` with an adapter, the dropout drawn from the same key.
    fn composed(x: &Tensor, w: &Tensor, bias: &Tensor, a: &Tensor, b: &Tensor, scale: f64, dropout: Option<(f64, u64)>) -> Tensor {
        let y = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(bias).unwrap();
        let xd = match dropout {
            Some((p, key)) => super::super::kernels::dropout(x, p, key).unwrap(),
            None => x.clone(),
        };
        (y + (xd.matmul(&a.t().unwrap()).unwrap().matmul(&b.t().unwrap()).unwrap() * scale).unwrap()).unwrap()
    }

    #[test]
    fn fused_lora_matches_the_composed_ops_and_finite_differences() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (13, 10), &dev).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (7, 10), &dev).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 7, &dev).unwrap();
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 10), &dev).unwrap()).unwrap();
        // B is zero at initialisation; a random B exercises every gradient.
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (7, 3), &dev).unwrap()).unwrap();
        let proj = Tensor::randn(0f32, 1.0, (13, 7), &dev).unwrap();
        for dropout in [None, Some((0.25, 5u64))] {
            let fused = lora_linear(x.as_tensor(), &w, &bias, a.as_tensor(), b.as_tensor(), 2.0, dropout).unwrap();
            let reference = composed(x.as_tensor(), &w, &bias, a.as_tensor(), b.as_tensor(), 2.0, dropout);
            assert!(max_abs(&(&fused - &reference).unwrap()) < 1e-4, "dropout {dropout:?}");
            super::super::kernels::tests::check_gradients(
                &[x.clone(), a.clone(), b.clone()],
                |t| lora_linear(&t[0], &w, &bias, &t[1], &t[2], 2.0, dropout).unwrap(),
                2e-2,
            );
            let g1 = (fused * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (reference * &proj).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, var) in [("x", &x), ("A", &a), ("B", &b)] {
                let (p, q) = (g1.get(var.as_tensor()).unwrap(), g2.get(var.as_tensor()).unwrap());
                let (diff, size) = (max_abs(&(p - q).unwrap()), max_abs(q));
                assert!(size > 0.0 && diff < 1e-4 * (1.0 + size), "d{name}, dropout {dropout:?}: max difference {diff}");
            }
        }
    }
}
