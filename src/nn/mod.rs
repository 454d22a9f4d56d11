//! Building blocks every model family is made of, written for training as well as inference:
//! differentiable layers with a train/eval switch, fused CPU kernels with their own backward passes,
//! the optimiser, and the packing of a padded batch. Nothing here knows a model family.

pub mod attention;
pub mod gated;
pub mod kernels;
pub mod layers;
pub mod lora;
pub mod ops;
pub mod optim;
pub mod packing;
pub mod pooling;
pub mod rotary;
pub mod weights;

pub use layers::{LayerNorm, Linear, LoraAdapter, Mode, Then};
pub use pooling::{pool, Pooling};
pub use weights::Weights;
