//! Rotary position embeddings in Hugging Face's rotate-half layout: each head's vector is split into two
//! halves (x₁, x₂), and pair i of the halves is turned by the angle position · θᵢ:
//! x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁). Composed of candle ops, so that it is
//! differentiable; the angles are computed per call for the positions a batch has (a packed batch
//! restarts them at every sequence), never for the whole context window.

use candle_core::{Device, Result, Tensor};

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

/// x [rows, heads · head_dim] turned by the tables of `Rotary::tables` for its rows.
pub fn apply(x: &Tensor, heads: usize, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (rows, width) = x.dims2()?;
    let dh = width / heads;
    let x3 = x.reshape((rows, heads, dh))?;
    let (x1, x2) = (x3.narrow(2, 0, dh / 2)?, x3.narrow(2, dh / 2, dh / 2)?);
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], 2)?;
    let y = (x3.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?)?;
    y.reshape((rows, width))
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
