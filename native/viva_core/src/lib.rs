//! viva_tensor's engine: Llama-family checkpoints from HF safetensors, tokenization, sampling and
//! generation on the CPU (and CUDA). Knows nothing of the BEAM; `viva_nif` wraps it.

pub mod backend;
pub mod config;
pub mod error;
pub mod generate;
pub mod loader;
pub mod model;
pub mod names;
pub mod probe;
pub mod sampler;
pub mod testckpt;
pub mod tokenizer;

pub use error::{Error, Result};
pub use generate::{generate, FinishReason, GenOpts, GenStats};
pub use model::{BackendKind, KvCache, LoadOptions, Model, WeightFormat};
