//! One training step of a classifier: forward with dropout, cross-entropy, backward, clipping and an
//! AdamW update, under a linear warm-up then linear decay of the learning rate.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::batches::Group;
use super::classifier::Classifier;
use super::params::TrainParams;
use crate::error::{MethodError, ModelError};
use crate::nn::optim::{Optim, Settings};
use crate::nn::Mode;

/// Learning rate at a step: linear warm-up to `peak`, then linear decay to 0 at `total`.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

/// AdamW over named trainable tensors, as Hugging Face's Trainer sets it up: weight decay on the tensors
/// the family says decay (weight matrices, not biases or norms), betas (0.9, 0.999), eps 1e-8, clipping
/// at the params' max_grad_norm.
pub fn optimizer(trainable: &[(String, Var)], decays: fn(&str) -> bool, p: &TrainParams) -> Result<Optim, MethodError> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = trainable.iter().partition(|(name, _)| decays(name));
    let group = |g: Vec<&(String, Var)>| g.into_iter().map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let settings = Settings { beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm: p.max_grad_norm };
    Ok(Optim::new(vec![(group(decay), p.weight_decay), (group(no_decay), 0.0)], settings).map_err(ModelError::from)?)
}

/// What one training step reports.
pub struct StepOutcome {
    /// The batch's mean cross-entropy, with dropout.
    pub loss: f64,
    /// Global L2 norm of the gradient, before clipping.
    pub grad_norm: f64,
}

/// One model with its optimiser state: the training step shared by `fit` and `bench perf`.
pub struct Trainer {
    pub model: Classifier,
    /// Every trainable tensor (encoder weights for full fine-tuning, adapters, pooler and head).
    pub vars: Vec<Var>,
    optim: Optim,
    dropout_rng: ChaCha8Rng,
    /// `micro_batch` was given: a backward pass per group, gradients added.
    accumulate: bool,
}

impl Trainer {
    pub fn new(model: Classifier, p: &TrainParams, seed: u64) -> Result<Trainer, MethodError> {
        let vars: Vec<Var> = model.trainable.iter().map(|(_, v)| v.clone()).collect();
        let optim = optimizer(&model.trainable, model.checkpoint.family.decays, p)?;
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(seed);
        dropout_rng.set_stream(2);
        Ok(Trainer { model, vars, optim, dropout_rng, accumulate: p.micro_batch.is_some() })
    }

    /// Forward with dropout, cross-entropy, backward, clipping and one AdamW update at `lr` over one batch
    /// given as groups; the loss and the gradient norm before clipping. The loss is the mean over all the
    /// batch's examples (each group's mean weighted by its share), so the gradient is the one the whole
    /// batch padded as one tensor would give. Runs on rayon's pool (`kernels::in_pool`).
    pub fn step(&mut self, groups: &[Group], lr: f64) -> candle_core::Result<StepOutcome> {
        let device = groups.first().map_or(candle_core::Device::Cpu, |g| g.tok.device().clone());
        crate::nn::kernels::in_pool(&device, || self.step_here(groups, lr))
    }

    /// Each group's forward pass in turn, its loss weighted by its share of the batch, then one optimiser
    /// step. Without `micro_batch` the weighted losses are summed and differentiated once (the groups'
    /// activations all alive until then); with it each group's backward pass runs after its forward pass and
    /// the gradients are added, so one group's activations are alive at a time. The two are the same
    /// gradient up to the order of f32 additions; the first is kept where `micro_batch` is not asked for, so
    /// that earlier runs (`bucketing: split`) repeat to the bit.
    fn step_here(&mut self, groups: &[Group], lr: f64) -> candle_core::Result<StepOutcome> {
        let total: usize = groups.iter().map(|g| g.targets.dims1()).sum::<candle_core::Result<usize>>()?;
        let (mut loss, mut summed, mut grads): (f64, Option<Tensor>, Option<GradStore>) = (0.0, None, None);
        for g in groups {
            let logits = self.model.forward(&g.tok, &g.mask, &mut Mode::train(&mut self.dropout_rng))?;
            let mut part = candle_nn::loss::cross_entropy(&logits, &g.targets)?;
            if groups.len() > 1 {
                part = part.affine(g.targets.dims1()? as f64 / total as f64, 0.0)?;
            }
            if self.accumulate {
                loss += f64::from(part.to_scalar::<f32>()?);
                let part_grads = part.backward()?;
                grads = Some(match grads {
                    None => part_grads,
                    Some(sum) => self.add_gradients(sum, &part_grads)?,
                });
            } else {
                summed = Some(match summed {
                    Some(sum) => (sum + part)?,
                    None => part,
                });
            }
        }
        if let Some(summed) = summed {
            loss = f64::from(summed.to_scalar::<f32>()?);
            grads = Some(summed.backward()?);
        }
        let mut grads = grads.ok_or_else(|| candle_core::Error::Msg("a training step needs at least one group".into()))?;
        let grad_norm = self.optim.step(&mut grads, lr)?;
        Ok(StepOutcome { loss, grad_norm })
    }

    /// `sum` with `part`'s gradient of every trainable tensor added.
    fn add_gradients(&self, mut sum: GradStore, part: &GradStore) -> candle_core::Result<GradStore> {
        for v in &self.vars {
            if let Some(g) = part.get(v.as_tensor()) {
                let added = match sum.get(v.as_tensor()) {
                    Some(s) => (s + g)?,
                    None => g.clone(),
                };
                sum.insert(v.as_tensor(), added);
            }
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        let lrs: Vec<f64> = (0..10).map(|s| learning_rate(s, 10, 2, 1.0)).collect();
        assert_eq!(lrs[0], 0.5);
        assert_eq!(lrs[1], 1.0);
        assert_eq!(lrs[2], 1.0);
        assert!((lrs[9] - 1.0 / 8.0).abs() < 1e-12);
        assert!(lrs.windows(2).skip(2).all(|w| w[1] <= w[0]));
    }
}
