//! Transformer methods on candle: the BERT encoder, its checkpoint loading, and the methods built on it.

pub mod artifact;
pub mod backbone;
pub mod cache;
pub mod classifier;
pub mod config;
pub mod embed;
pub mod encoder;
pub mod frozen;
pub mod fused_attention;
pub mod fused_lora;
pub mod hub;
pub mod kernels;
pub mod ops;
pub mod optim;
pub mod packing;
pub mod params;
pub mod train;
