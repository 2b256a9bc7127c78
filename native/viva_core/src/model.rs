//! A loaded model: validated config, tokenizer and one backend's weights. Read-only and shared by
//! every generation; per-sequence state lives in [`KvCache`].

use crate::backend::cpu::{CpuCache, CpuModel};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::loader::{self, TensorStore};
use crate::names;
use crate::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

/// Which compute backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// CUDA when a usable GPU is present, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl BackendKind {
    pub fn parse(s: &str) -> Result<BackendKind> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "cpu" => Ok(BackendKind::Cpu),
            "cuda" => Ok(BackendKind::Cuda),
            other => Err(Error::InvalidOption(format!("backend must be auto, cpu or cuda, got {other:?}"))),
        }
    }
}

/// Weight format requested at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// The backend's default: f32 on the CPU.
    Auto,
    F32,
    Bf16,
    Fp8,
}

impl WeightFormat {
    pub fn parse(s: &str) -> Result<WeightFormat> {
        match s {
            "auto" => Ok(WeightFormat::Auto),
            "f32" => Ok(WeightFormat::F32),
            "bf16" => Ok(WeightFormat::Bf16),
            "fp8" => Ok(WeightFormat::Fp8),
            other => Err(Error::InvalidOption(format!("weights must be auto, f32, bf16 or fp8, got {other:?}"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Auto => "auto",
            WeightFormat::F32 => "f32",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Fp8 => "fp8",
        }
    }
}

/// Load options.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub backend: BackendKind,
    pub weights: WeightFormat,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { backend: BackendKind::Auto, weights: WeightFormat::Auto }
    }
}

enum Engine {
    Cpu(CpuModel),
}

/// Per-sequence state: the KV cache and its position.
pub enum KvCache {
    Cpu(CpuCache),
}

impl KvCache {
    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        match self {
            KvCache::Cpu(c) => c.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loaded checkpoint.
pub struct Model {
    pub config: Config,
    pub tokenizer: Tokenizer,
    pub dir: PathBuf,
    engine: Engine,
    weights: WeightFormat,
}

impl Model {
    /// Loads a checkpoint: a folder, a `.safetensors` file or a `model.safetensors.index.json`,
    /// with `config.json` and `tokenizer.json` beside the weights.
    pub fn load(path: &Path, opts: LoadOptions) -> Result<Model> {
        let paths = loader::resolve(path)?;
        let config = Config::from_file(&paths.config)?;
        let tokenizer = Tokenizer::from_path(&paths.tokenizer).map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!(
                "{}: tokenizer.json not found beside the weights",
                paths.tokenizer.display()
            )),
            other => other,
        })?;
        let store = TensorStore::open(&paths.weight_files)?;
        let tied = config.tie_word_embeddings || !store.contains(names::LM_HEAD);
        match opts.backend {
            BackendKind::Cuda => {
                return Err(Error::CudaUnavailable(
                    "this build of viva_tensor has no CUDA backend".into(),
                ))
            }
            BackendKind::Auto | BackendKind::Cpu => {}
        }
        let weights = match opts.weights {
            WeightFormat::Auto | WeightFormat::F32 => WeightFormat::F32,
            other => {
                return Err(Error::InvalidOption(format!(
                    "weights {} need the cuda backend; the cpu backend computes in f32",
                    other.name()
                )))
            }
        };
        let engine = Engine::Cpu(CpuModel::load(&config, &store, tied)?);
        Ok(Model { config, tokenizer, dir: paths.dir, engine, weights })
    }

    /// Name of the backend in use (`"cpu"` or `"cuda"`).
    pub fn backend_name(&self) -> &'static str {
        match self.engine {
            Engine::Cpu(_) => "cpu",
        }
    }

    pub fn weight_format(&self) -> WeightFormat {
        self.weights
    }

    /// A fresh, empty KV cache for one sequence.
    pub fn new_cache(&self) -> Result<KvCache> {
        match &self.engine {
            Engine::Cpu(m) => Ok(KvCache::Cpu(m.new_cache())),
        }
    }

    /// Feeds `tokens` at the cache's next positions; returns the last position's logits.
    pub fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>> {
        match (&self.engine, cache) {
            (Engine::Cpu(m), KvCache::Cpu(c)) => m.forward(c, tokens),
        }
    }

    /// One decode step for N sequences (token `tokens[i]` appended to `caches[i]`); returns N logit rows.
    /// The batch-shaped entry point the serving layer builds on.
    pub fn decode_batch(&self, caches: &mut [&mut KvCache], tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        if caches.len() != tokens.len() {
            return Err(Error::InvalidOption(format!(
                "decode_batch: {} caches but {} tokens",
                caches.len(),
                tokens.len()
            )));
        }
        caches.iter_mut().zip(tokens).map(|(c, &t)| self.forward(c, &[t])).collect()
    }
}
