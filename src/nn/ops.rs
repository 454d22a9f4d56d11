//! Differentiable building blocks. candle-nn's fused layer norm and `softmax_last_dim` have no backward
//! pass, so an encoder built on them silently trains only its head (FINDINGS.md). On CPU these dispatch
//! to `kernels` (fused, with backward passes); elsewhere they are composed of ops candle differentiates.

use candle_core::{DType, Device, Result, Tensor, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::kernels;

/// Layer norm over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if kernels::fusable(x) {
        kernels::layer_norm(x, weight, bias, eps)
    } else {
        layer_norm_composed(x, weight, bias, eps)
    }
}

/// Layer norm of the residual sum a + r.
pub fn add_layer_norm(a: &Tensor, r: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if kernels::fusable(a) {
        kernels::add_layer_norm(a, r, weight, bias, eps)
    } else {
        layer_norm_composed(&(a + r)?, weight, bias, eps)
    }
}

/// `layer_norm` from candle ops (any device).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// RMS norm over the last dimension (LLaMA's): x / sqrt(mean(x²) + eps) · weight, no centring, no bias.
pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if kernels::fusable(x) {
        super::gated::rms_norm(x, weight, eps)
    } else {
        rms_norm_composed(x, weight, eps)
    }
}

/// `rms_norm` from candle ops (any device).
pub fn rms_norm_composed(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(mean_square + eps)?.sqrt()?)?.broadcast_mul(weight)
}

/// silu(gate) · up (SwiGLU).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if kernels::fusable(gate) {
        super::gated::swiglu(gate, up)
    } else {
        gate.silu()? * up
    }
}

/// Attention weights: softmax(scores · scale + bias) over the last dimension, with scores
/// [batch, heads, q, k] and the padding bias of `attention_bias` [batch, 1, 1, k].
/// (On CPU the encoder uses `fused_attention` instead.)
pub fn attention_softmax(scores: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    softmax_composed(&(scores * scale)?.broadcast_add(bias)?)
}

/// Softmax over the last dimension from candle ops. The max is subtracted for stability and detached:
/// softmax does not depend on the shift, so no gradient flows through it.
pub fn softmax_composed(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Inverted dropout with a mask drawn from the run's seeded generator (candle's own dropout uses an
/// unseeded thread RNG, which would make training irreproducible). One number is drawn from `rng` per
/// call; each element's keep/drop decision is a hash of it and the element's index, so the mask can be
/// made in parallel and the same on any number of threads.
pub fn dropout(x: &Tensor, p: f64, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let key = rng.gen::<u64>();
    if kernels::fusable(x) {
        return kernels::dropout(x, p, key);
    }
    let mask = kernels::dropout_mask(x.elem_count(), p, key);
    let mask = Tensor::from_vec(mask, x.shape(), &Device::Cpu)?.to_device(x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

/// The activations Hugging Face configs name in `hidden_act` (the families that use these).
pub fn activation(x: &Tensor, name: &str) -> Result<Tensor> {
    match name {
        "gelu" if kernels::fusable(x) => kernels::gelu_erf(x),
        "gelu" => x.gelu_erf(),
        "gelu_new" | "gelu_pytorch_tanh" => x.gelu(),
        "relu" => x.relu(),
        other => candle_core::bail!("unsupported activation {other}"),
    }
}

/// Additive attention bias from a 0/1 mask [batch, seq]: 0 where attended, a large negative number at
/// padding, shaped [batch, 1, 1, seq] to broadcast over heads and query positions.
pub fn attention_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * f64::from(f32::MAX))?;
    bias.reshape((b, 1, 1, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < tol, "max abs difference {d}");
    }

    #[test]
    fn composed_ops_match_candle_nn_and_have_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1f32, (3, 5, 8), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.1f32, 8, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 0.1f32, 8, &dev).unwrap()).unwrap();
        let ours = layer_norm_composed(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        let theirs = candle_nn::ops::layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12).unwrap();
        close(&ours, &theirs, 1e-5);
        close(&softmax_composed(x.as_tensor()).unwrap(), &candle_nn::ops::softmax_last_dim(x.as_tensor()).unwrap(), 1e-6);
        let loss = softmax_composed(&ours).unwrap().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for v in [&x, &w, &b] {
            let g = grads.get(v.as_tensor()).expect("gradient");
            assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        }
    }

    #[test]
    fn dropout_is_seeded_and_scaled() {
        use rand::SeedableRng;
        let x = Tensor::ones((1000,), DType::F32, &Device::Cpu).unwrap();
        let a = dropout(&x, 0.25, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let b = dropout(&x, 0.25, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        close(&a, &b, 0.0 + f32::EPSILON);
        let v = a.to_vec1::<f32>().unwrap();
        let kept = v.iter().filter(|&&x| x > 0.0).count();
        assert!((700..800).contains(&kept), "{kept}");
        assert!(v.iter().all(|&x| x == 0.0 || (x - 4.0 / 3.0).abs() < 1e-6));
    }
}
