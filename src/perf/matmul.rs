//! The machine's matrix-product rate through the same engine (candle's CPU gemm), so a workload's
//! achieved GFLOP/s can be read against what this machine can do at all.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct MatmulRate {
    /// (m, k, n): an [m, k] by [k, n] product.
    pub shape: (usize, usize, usize),
    pub gflop_per_s: f64,
}

/// Square 1024 (the usual peak probe) and MiniLM's two feed-forward products at 2,048 tokens.
pub const SHAPES: [(usize, usize, usize); 3] = [(1024, 1024, 1024), (2048, 384, 1536), (2048, 1536, 384)];

/// Repeats each product for at least `min_time` after one untimed run; f32, all threads.
pub fn rates(min_time: Duration) -> candle_core::Result<Vec<MatmulRate>> {
    SHAPES
        .iter()
        .map(|&(m, k, n)| {
            let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
            let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?;
            a.matmul(&b)?;
            let started = Instant::now();
            let mut reps = 0usize;
            while started.elapsed() < min_time {
                a.matmul(&b)?;
                reps += 1;
            }
            let flop = 2.0 * (m * k * n) as f64 * reps as f64;
            Ok(MatmulRate { shape: (m, k, n), gflop_per_s: flop / started.elapsed().as_secs_f64() / 1e9 })
        })
        .collect()
}

/// The best of the rates: the peak the workloads are compared with.
pub fn peak(rates: &[MatmulRate]) -> f64 {
    rates.iter().map(|r| r.gflop_per_s).fold(0.0, f64::max)
}
