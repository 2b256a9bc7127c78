//! Compute backends. Every backend implements the same batch-shaped step: N sequences, each with its
//! own KV cache and position (only N = 1 is tuned so far).

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod linalg;
