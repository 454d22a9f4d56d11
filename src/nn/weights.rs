//! A checkpoint's tensors by name, handed out to the layers that load them: each frozen (a plain tensor)
//! or trainable (a Var, recorded with its name in load order, which is the optimiser's order).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Result, Tensor, Var};

/// The checkpoint's tensors by name, each either frozen (a plain tensor) or trainable (a Var).
pub struct Weights {
    /// The file they were read from, for messages.
    pub source: PathBuf,
    tensors: HashMap<String, Tensor>,
    trainable: bool,
    /// Every weight made trainable, by checkpoint name, in load order.
    pub vars: Vec<(String, Var)>,
    /// Elements of every tensor taken so far.
    pub loaded: usize,
    /// Frozen matrices the checkpoint stores in bf16 stay in bf16, to be widened to f32 one layer at a
    /// time as they are used (`nn::kernels::weight_values`): exact, since every bf16 is an f32, and half
    /// the memory. Set by a family whose every use of a matrix accepts it (the decoder's).
    pub keep_bf16: bool,
}

impl Weights {
    /// The tensors under the names the family's loader asks for (`rename` maps a checkpoint's own names
    /// to those, for checkpoints saved under other class names or older conventions).
    pub fn new(source: PathBuf, raw: HashMap<String, Tensor>, rename: fn(&str) -> String, trainable: bool) -> Weights {
        let tensors = raw.into_iter().map(|(k, v)| (rename(&k), v)).collect();
        Weights { source, tensors, trainable, vars: Vec::new(), loaded: 0, keep_bf16: false }
    }

    /// Whether the checkpoint has a tensor of this name (after name normalisation).
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.tensors.get(name).ok_or_else(|| candle_core::Error::Msg(format!("the checkpoint has no tensor {name}")))?;
        if t.dims() != shape {
            candle_core::bail!("{name}: shape {:?} in the checkpoint, expected {shape:?}", t.dims());
        }
        if self.keep_bf16 && !self.trainable && t.dtype() == DType::BF16 && shape.len() == 2 {
            self.loaded += t.elem_count();
            return Ok(t.clone());
        }
        let t = t.to_dtype(DType::F32)?;
        self.loaded += t.elem_count();
        if self.trainable {
            let v = Var::from_tensor(&t)?;
            let t = v.as_tensor().clone();
            self.vars.push((name.to_string(), v));
            Ok(t)
        } else {
            Ok(t)
        }
    }

    /// A new tensor (not from the checkpoint), always trainable: a task head's fresh weights.
    pub fn fresh(&mut self, name: &str, t: Tensor) -> Result<Tensor> {
        let v = Var::from_tensor(&t)?;
        let t = v.as_tensor().clone();
        self.vars.push((name.to_string(), v));
        Ok(t)
    }

    /// A candle error while loading, as an error naming the checkpoint file.
    pub fn invalid(&self, e: candle_core::Error) -> crate::error::ModelError {
        crate::error::ModelError::Invalid { path: self.source.clone(), message: e.to_string() }
    }
}
