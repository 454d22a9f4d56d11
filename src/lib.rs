//! textbench: a benchmark harness for text classification.
//!
//! A YAML spec expands into fully resolved run configs; each run loads and splits its data, fits a
//! method, predicts the evaluation split and stores one JSON record with metrics over the whole set.

pub mod check;
pub mod cli;
pub mod commands;
pub mod data;
pub mod environment;
pub mod error;
pub mod methods;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod perf;
pub mod progress;
pub mod report;
pub mod runner;
pub mod shard;
pub mod slurm;
pub mod spec;
pub mod store;
