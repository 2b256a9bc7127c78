//! A loaded model: validated config, tokenizer and one backend's weights. Read-only and shared by
//! every generation; per-sequence state lives in [`KvCache`].

use crate::backend::cpu::{CpuCache, CpuModel};
#[cfg(feature = "cuda")]
use crate::backend::cuda::{self, CudaCache, CudaModel};
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
    /// The backend's default: f32 on the CPU; on CUDA fp8 where the GPU converts FP8 in hardware
    /// (sm_89+), else bf16. The FP8 block size is `VIVA_TENSOR_FP8_BLOCK` (default `row`: one scale per row).
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

#[allow(clippy::large_enum_variant)] // one per loaded model
enum Engine {
    Cpu(CpuModel),
    #[cfg(feature = "cuda")]
    Cuda(CudaModel),
}

/// Per-sequence state: the KV cache and its position.
pub enum KvCache {
    Cpu(CpuCache),
    #[cfg(feature = "cuda")]
    Cuda(Box<CudaCache>),
}

impl KvCache {
    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        match self {
            KvCache::Cpu(c) => c.len(),
            #[cfg(feature = "cuda")]
            KvCache::Cuda(c) => c.len(),
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
            Error::NotFound(_) => {
                Error::NotFound(format!("{}: tokenizer.json not found beside the weights", paths.tokenizer.display()))
            }
            other => other,
        })?;
        let store = TensorStore::open(&paths.weight_files)?;
        let tied = config.tie_word_embeddings || !store.contains(names::LM_HEAD);
        let cpu_only = opts.weights == WeightFormat::F32;
        let want_cuda = match opts.backend {
            BackendKind::Cuda if cpu_only => {
                return Err(Error::InvalidOption(
                    "weights f32 need the cpu backend; the cuda backend takes bf16 or fp8".into(),
                ))
            }
            BackendKind::Cuda => true,
            BackendKind::Auto => !cpu_only && cuda_usable(),
            BackendKind::Cpu => false,
        };
        if want_cuda {
            #[cfg(feature = "cuda")]
            {
                let format = match opts.weights {
                    WeightFormat::Bf16 => cuda::Format::Bf16,
                    WeightFormat::Fp8 => cuda::Format::Fp8 { block: cuda::fp8_block_from_env()? },
                    _ if cuda::prefers_fp8() => cuda::Format::Fp8 { block: cuda::fp8_block_from_env()? },
                    _ => cuda::Format::Bf16,
                };
                let weights = match format {
                    cuda::Format::Bf16 => WeightFormat::Bf16,
                    cuda::Format::Fp8 { .. } => WeightFormat::Fp8,
                };
                let engine = Engine::Cuda(CudaModel::load(&config, &store, tied, format)?);
                return Ok(Model { config, tokenizer, dir: paths.dir, engine, weights });
            }
            #[cfg(not(feature = "cuda"))]
            return Err(Error::CudaUnavailable("this build of viva_tensor has no CUDA backend".into()));
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
            #[cfg(feature = "cuda")]
            Engine::Cuda(_) => "cuda",
        }
    }

    pub fn weight_format(&self) -> WeightFormat {
        self.weights
    }

    /// Does a decode step run as the one persistent CUDA kernel (FP8 on sm_90+, docs/gpu.md v8)?
    pub fn persistent_decode(&self) -> bool {
        match &self.engine {
            Engine::Cpu(_) => false,
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.persistent_decode(),
        }
    }

    /// The kernel of a decode step's attention: `"cpu"`, or on CUDA `"tensor-core cluster"` (v11, sm_90+ with a
    /// bf16 KV cache), `"gqa"` (v4), `"per-head"` (v1-v3, `VIVA_TENSOR_ATTN=old`) or `"persistent kernel"` (v8).
    pub fn decode_attention(&self) -> &'static str {
        match &self.engine {
            Engine::Cpu(_) => "cpu",
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => m.decode_attention(),
        }
    }

    /// A fresh, empty KV cache for one sequence.
    pub fn new_cache(&self) -> Result<KvCache> {
        match &self.engine {
            Engine::Cpu(m) => Ok(KvCache::Cpu(m.new_cache())),
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => Ok(KvCache::Cuda(Box::new(m.new_cache()?))),
        }
    }

    /// Feeds `tokens` at the cache's next positions; returns the last position's logits.
    pub fn forward(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Vec<f32>> {
        match (&self.engine, cache) {
            (Engine::Cpu(m), KvCache::Cpu(c)) => m.forward(c, tokens),
            #[cfg(feature = "cuda")]
            (Engine::Cuda(m), KvCache::Cuda(c)) => m.forward(c, tokens),
            #[cfg(feature = "cuda")]
            _ => Err(Error::InvalidOption("this KV cache belongs to a model on another backend".into())),
        }
    }

    /// Greedy decoding: feeds `token` at the cache's next position, then each argmax (lowest index on
    /// ties), calling `on_token` with every generated token (`false` stops); at most `max_new` tokens,
    /// never past the context. Returns the generated tokens; the cache advances by their number.
    /// On CUDA the argmax stays on the device and the host runs one step ahead (no logits copies).
    pub fn decode_greedy(
        &self,
        cache: &mut KvCache,
        token: u32,
        max_new: usize,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Result<Vec<u32>> {
        match (&self.engine, cache) {
            #[cfg(feature = "cuda")]
            (Engine::Cuda(m), KvCache::Cuda(c)) => m.decode_greedy(c, token, max_new, on_token),
            (_, cache) => {
                let mut out = Vec::new();
                let mut next = token;
                while out.len() < max_new && cache.len() < self.config.max_position_embeddings {
                    let logits = self.forward(cache, &[next])?;
                    next = crate::sampler::argmax(&logits);
                    out.push(next);
                    if !on_token(next) {
                        break;
                    }
                }
                Ok(out)
            }
        }
    }

    /// Weight bytes a decode step streams from memory (CUDA; `None` on the CPU).
    pub fn weight_bytes_per_token(&self) -> Option<usize> {
        match &self.engine {
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => Some(m.weight_bytes_per_token()),
            _ => None,
        }
    }

    /// Per-kernel device time of one forward of `tokens` on CUDA (`None` on the CPU); see
    /// `CudaModel::profile`.
    pub fn profile(&self, cache: &mut KvCache, tokens: &[u32]) -> Result<Option<Vec<(String, f64, usize)>>> {
        match (&self.engine, cache) {
            #[cfg(feature = "cuda")]
            (Engine::Cuda(m), KvCache::Cuda(c)) => m.profile(c, tokens).map(Some),
            _ => Ok(None),
        }
    }

    /// The in-graph timeline of `reps` decode steps on CUDA (`None` on the CPU); see `CudaModel::timeline`.
    #[cfg(feature = "cuda")]
    pub fn timeline(
        &self,
        cache: &mut KvCache,
        token: u32,
        reps: usize,
    ) -> Result<Option<Vec<crate::backend::cuda::TimelineRow>>> {
        match (&self.engine, cache) {
            (Engine::Cuda(m), KvCache::Cuda(c)) => m.timeline(c, token, reps).map(Some),
            _ => Ok(None),
        }
    }

    /// The GPU in use (`None` on the CPU).
    pub fn device_name(&self) -> Option<String> {
        match &self.engine {
            #[cfg(feature = "cuda")]
            Engine::Cuda(m) => Some(m.device_name()),
            _ => None,
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

/// Whether `BackendKind::Auto` takes CUDA: a device is present and its kernels compile.
fn cuda_usable() -> bool {
    #[cfg(feature = "cuda")]
    {
        cuda::available().is_ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}
