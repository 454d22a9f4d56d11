//! Rotary position embeddings in Hugging Face's rotate-half layout: each head's vector is split into two
//! halves (x₁, x₂), and pair i of the halves is turned by the angle position · θᵢ:
//! x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁). Composed of candle ops, so that it is
//! differentiable; the angles are computed per call for the positions a batch has (a packed batch
//! restarts them at every sequence), never for the whole context window.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// How a checkpoint stretches its rotary frequencies beyond its training context (config.json's
/// `rope_scaling`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scaling {
    /// θᵢ = base^(−2i/d).
    None,
    /// Every frequency divided by the factor.
    Linear { factor: f64 },
    /// LLaMA 3.1's: low frequencies divided by the factor, high ones kept, a smooth blend between.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

pub struct Rotary {
    /// θᵢ for each pair, head_dim / 2 of them.
    inv_freq: Vec<f32>,
}

impl Rotary {
    /// Frequencies as transformers computes them (`_compute_default_rope_parameters` and the
    /// scalings), in f32 as there.
    pub fn new(head_dim: usize, base: f64, scaling: Scaling) -> Rotary {
        let inv_freq = (0..head_dim / 2)
            .map(|i| {
                let theta = 1.0 / base.powf((2 * i) as f64 / head_dim as f64);
                let theta = match scaling {
                    Scaling::None => theta,
                    Scaling::Linear { factor } => theta / factor,
                    Scaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings: old } => {
                        let wavelen = 2.0 * std::f64::consts::PI / theta;
                        if wavelen < old / high_freq_factor {
                            theta
                        } else if wavelen > old / low_freq_factor {
                            theta / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * theta / factor + smooth * theta
                        }
                    }
                };
                theta as f32
            })
            .collect();
        Rotary { inv_freq }
    }

    /// cos and sin of every position's angles, each [rows, 1, head_dim] (the halves repeated), to
    /// broadcast over the heads.
    pub fn tables(&self, positions: &[u32], device: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let (mut cos, mut sin) = (Vec::with_capacity(positions.len() * 2 * half), Vec::with_capacity(positions.len() * 2 * half));
        for &p in positions {
            let angles: Vec<f32> = self.inv_freq.iter().map(|&f| p as f32 * f).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
        }
        let shape = (positions.len(), 1, 2 * half);
        Ok((Tensor::from_vec(cos, shape, device)?, Tensor::from_vec(sin, shape, device)?))
    }
}

/// x [rows, heads · head_dim] turned by the tables of `Rotary::tables` for its rows: on the CPU one
/// fused op (backward turns the gradient back by the same angles, and keeps nothing but the tables),
/// elsewhere composed of candle ops.
pub fn apply(x: &Tensor, heads: usize, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if super::kernels::fusable(x) {
        let (rows, width) = x.dims2()?;
        let half = width / heads / 2;
        // The tables' first half of each row: the second repeats it.
        let first = |t: &Tensor| -> Result<Arc<[f32]>> { Ok(t.reshape((rows, 2 * half))?.narrow(1, 0, half)?.flatten_all()?.to_vec1::<f32>()?.into()) };
        return x.contiguous()?.apply_op1(Turn { heads, cos: first(cos)?, sin: first(sin)?, back: false });
    }
    apply_composed(x, heads, cos, sin)
}

/// `apply` from candle ops (any device).
pub fn apply_composed(x: &Tensor, heads: usize, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (rows, width) = x.dims2()?;
    let dh = width / heads;
    let x3 = x.reshape((rows, heads, dh))?;
    let (x1, x2) = (x3.narrow(2, 0, dh / 2)?, x3.narrow(2, dh / 2, dh / 2)?);
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], 2)?;
    let y = (x3.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?;
    y.reshape((rows, width))
}

/// The rotation as one op: each row's pairs (x₁ᵢ, x₂ᵢ) of every head become
/// (x₁ᵢ·cos − x₂ᵢ·sin, x₂ᵢ·cos + x₁ᵢ·sin); `back` turns by the opposite angles (the backward pass:
/// a rotation's transpose is its inverse).
struct Turn {
    heads: usize,
    /// cos and sin of each row's angles, [rows, head_dim / 2].
    cos: Arc<[f32]>,
    sin: Arc<[f32]>,
    back: bool,
}

impl Turn {
    fn run(&self, x: &[f32], width: usize) -> Vec<f32> {
        let half = width / self.heads / 2;
        let sign = if self.back { -1.0f32 } else { 1.0 };
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(width).zip(x.par_chunks(width)).enumerate().for_each(|(r, (yr, xr))| {
            let (c, s) = (&self.cos[r * half..(r + 1) * half], &self.sin[r * half..(r + 1) * half]);
            for (yh, xh) in yr.chunks_mut(2 * half).zip(xr.chunks(2 * half)) {
                let (x1, x2) = xh.split_at(half);
                let (y1, y2) = yh.split_at_mut(half);
                for i in 0..half {
                    let si = sign * s[i];
                    y1[i] = x1[i] * c[i] - x2[i] * si;
                    y2[i] = x2[i] * c[i] + x1[i] * si;
                }
            }
        });
        y
    }
}

impl CustomOp1 for Turn {
    fn name(&self) -> &'static str {
        "fused-rotary"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::kernels::slice(s, l, "rotary input")?;
        let (rows, width) = l.shape().dims2()?;
        if width % (2 * self.heads) != 0 || self.cos.len() * 2 * self.heads != rows * width {
            candle_core::bail!("rotary: input {:?} for {} heads and {} angle rows", l.dims(), self.heads, self.cos.len());
        }
        Ok((CpuStorage::F32(self.run(x, width)), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let width = x.dim(1)?;
        let back = Turn { heads: self.heads, cos: self.cos.clone(), sin: self.sin.clone(), back: !self.back };
        let dx = super::kernels::with_data(dy, "rotary gradient", |dy| back.run(dy, width))?;
        Ok(Some(super::kernels::tensor(dx, x.shape(), x)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_keeps_norms_and_position_zero_is_the_identity() {
        let dev = Device::Cpu;
        let rotary = Rotary::new(8, 10_000.0, Scaling::None);
        let x = Tensor::randn(0f32, 1.0, (3, 16), &dev).unwrap();
        let (cos, sin) = rotary.tables(&[0, 5, 17], &dev).unwrap();
        let y = apply(&x, 2, &cos, &sin).unwrap();
        let first = (y.get(0).unwrap() - x.get(0).unwrap()).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(first < 1e-6);
        let norms = |t: &Tensor| t.reshape((3, 2, 8)).unwrap().sqr().unwrap().sum(2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in norms(&x).iter().zip(norms(&y)) {
            assert!((a - b).abs() < 1e-4 * a.max(1.0), "{a} {b}");
        }
        // Pair 0 of head 0 at position 5 turns by 5 radians (θ₀ = 1).
        let (x0, x4) = (x.get(1).unwrap().get(0).unwrap().to_scalar::<f32>().unwrap(), x.get(1).unwrap().get(4).unwrap().to_scalar::<f32>().unwrap());
        let y0 = y.get(1).unwrap().get(0).unwrap().to_scalar::<f32>().unwrap();
        assert!((y0 - (x0 * 5f32.cos() - x4 * 5f32.sin())).abs() < 1e-5);
    }

    #[test]
    fn the_fused_rotation_matches_the_composed_ops_and_its_backward_finite_differences() {
        let dev = Device::Cpu;
        let rotary = Rotary::new(8, 10_000.0, Scaling::None);
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 24), &dev).unwrap()).unwrap();
        let (cos, sin) = rotary.tables(&[0, 3, 1, 7, 30], &dev).unwrap();
        let fused = apply(x.as_tensor(), 3, &cos, &sin).unwrap();
        let composed = apply_composed(x.as_tensor(), 3, &cos, &sin).unwrap();
        let diff = (fused - composed).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        super::super::kernels::tests::check_gradients(&[x], |t| apply(&t[0], 3, &cos, &sin).unwrap(), 2e-2);
    }

    #[test]
    fn llama3_scaling_keeps_high_frequencies_and_divides_low_ones() {
        let plain = Rotary::new(128, 500_000.0, Scaling::None);
        let scaled = Rotary::new(
            128,
            500_000.0,
            Scaling::Llama3 { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192.0 },
        );
        assert_eq!(plain.inv_freq[0], scaled.inv_freq[0]);
        let last = plain.inv_freq.len() - 1;
        assert!((plain.inv_freq[last] / 32.0 - scaled.inv_freq[last]).abs() < 1e-12);
        let linear = Rotary::new(128, 500_000.0, Scaling::Linear { factor: 2.0 });
        assert_eq!(linear.inv_freq[3], (plain.inv_freq[3] as f64 / 2.0) as f32);
    }
}
