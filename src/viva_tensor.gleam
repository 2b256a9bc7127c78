//// LLM inference for the BEAM: load a Llama-family Hugging Face checkpoint
//// (safetensors + config.json + tokenizer.json) and generate text.
////
//// The work is done by the Erlang core `viva_tensor_core`, which runs the Rust
//// engine (NIF, CPU or CUDA) when it is available and a pure-BEAM fallback
//// otherwise; the environment variable `VIVA_TENSOR_BACKEND=auto|cuda|cpu|beam`
//// picks one for the whole VM. This module is a typed wrapper over that core.
////
//// ```gleam
//// import viva_tensor as t
////
//// let assert Ok(model) = t.load_model("tmp/tinyllama/model.safetensors")
//// let assert Ok(result) = t.generate(model, "Hello", t.default_generate_opts())
//// result.text
//// ```

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// A loaded model: weights, config and tokenizer, shared read-only by any
/// number of callers. Get one with `load_model` or `load_model_with`.
pub type Model

/// A tokenizer (from `load_tokenizer`, or a model's own via `model_tokenizer`).
pub type Tokenizer

/// How many of the most likely tokens the sampler keeps.
pub type TopK {
  /// Keep the `n` most likely tokens (`n` ≥ 1; `TopK(0)` means no limit).
  TopK(Int)
  /// No limit: every token of the vocabulary stays a candidate.
  TopKInfinity
}

/// Generation options. `temperature: 0.0` is greedy decoding (argmax, no random
/// draw); otherwise tokens are sampled with `top_k` / `top_p` from a PCG32
/// generator seeded with `seed`, so the same seed gives the same tokens on any
/// machine.
pub type GenerateOpts {
  GenerateOpts(
    /// Most tokens to generate (≥ 0).
    max_new_tokens: Int,
    /// Softmax temperature (≥ 0.0); 0.0 is greedy.
    temperature: Float,
    /// Keep only the `top_k` most likely tokens before sampling.
    top_k: TopK,
    /// Nucleus sampling: keep the shortest prefix of candidates whose
    /// probabilities add up to at least `top_p` (in (0.0, 1.0]).
    top_p: Float,
    /// Seed of the sampler's random generator (taken modulo 2^64).
    seed: Int,
    /// Stop when the model produces an end-of-sequence token.
    stop_on_eos: Bool,
  )
}

/// Options beyond `GenerateOpts`, for `generate_with` and `stream_with`.
pub type GenerateOption {
  /// Stop sequences: generation stops at the first occurrence of any of these
  /// strings in the generated text, which is cut right before it
  /// (finish reason `Stop`).
  StopSequences(List(String))
  /// Feed these token ids to the model as they are (no BOS is added), instead
  /// of tokenizing the prompt text.
  PromptIds(List(Int))
  /// Min-p sampling: after the nucleus (`top_p`), keep only the tokens at
  /// least this fraction as likely as the most likely one (in [0.0, 1.0];
  /// 0.0 is off). No effect at temperature 0.0.
  MinP(Float)
  /// Hugging Face's repetition penalty: the logit of every id already in the
  /// prompt or the output is divided by it when positive, multiplied by it
  /// when negative (> 0.0; 1.0 is off). Applies to greedy decoding too.
  RepetitionPenalty(Float)
  /// Subtracted from the logit of every id generated at least once (in
  /// [-2.0, 2.0]; 0.0 is off).
  PresencePenalty(Float)
  /// Subtracted, times the number of times it was generated, from every id's
  /// logit (in [-2.0, 2.0]; 0.0 is off).
  FrequencyPenalty(Float)
}

/// Why generation ended.
pub type FinishReason {
  /// The model produced an end-of-sequence token (with `stop_on_eos: True`).
  Eos
  /// A stop sequence was found.
  Stop
  /// `max_new_tokens` were generated, or the context window is full.
  Length
  /// The generation was cancelled.
  Cancelled
}

/// Where the model runs.
pub type Backend {
  /// CUDA when a GPU is present, else the native CPU engine, else pure BEAM
  /// (or what `VIVA_TENSOR_BACKEND` says).
  Auto
  /// The native engine on the CPU.
  Cpu
  /// The native engine on an NVIDIA GPU.
  Cuda
  /// Pure Erlang, no native code.
  Beam
}

/// Weight format in memory.
pub type WeightFormat {
  /// The backend's default for the checkpoint.
  DefaultWeights
  /// 32-bit floats.
  F32
  /// bfloat16.
  Bf16
  /// FP8 E4M3 weights with per-block scales (weight-only quantization).
  Fp8
}

/// The result of a generation.
pub type GenerateResult {
  GenerateResult(
    /// The generated text (special tokens skipped).
    text: String,
    /// The generated token ids (an EOS that ended generation included).
    tokens: List(Int),
    /// The token ids fed to the model.
    prompt_tokens: List(Int),
    /// Why generation ended.
    finish_reason: FinishReason,
    /// The backend that ran it.
    backend: Backend,
    /// Prompt processing time, microseconds.
    prefill_us: Int,
    /// Token generation time, microseconds.
    decode_us: Int,
  )
}

/// What went wrong.
pub type ErrorKind {
  /// The path does not exist.
  NotFound
  /// A folder without any `.safetensors` file.
  NoWeights
  /// A truncated or corrupt safetensors file.
  InvalidSafetensors
  /// A tensor the architecture needs is not in the checkpoint.
  MissingTensor
  /// A tensor has the wrong shape for the config.
  ShapeMismatch
  /// A tensor's dtype is not supported.
  UnsupportedDtype
  /// `config.json` is missing or invalid.
  InvalidConfig
  /// `tokenizer.json` is missing or invalid.
  InvalidTokenizer
  /// A generation option is out of range.
  InvalidOption
  /// The prompt has more tokens than the model's context window.
  PromptTooLong
  /// A token id is not in the vocabulary.
  TokenOutOfRange
  /// No usable GPU, driver or CUDA library.
  CudaUnavailable
  /// A CUDA call failed.
  CudaError
  /// Reading a file failed.
  IoError
  /// The operation was cancelled.
  /// (Named `CancelledError` because `Cancelled` is a `FinishReason`.)
  CancelledError
  /// The native engine is not loaded (e.g. `Cpu` asked for under
  /// `VIVA_TENSOR_BACKEND=beam`).
  NifUnavailable
}

/// An error: its kind and a message naming the path, tensor, option or value.
pub type VivaError {
  VivaError(kind: ErrorKind, message: String)
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// The default options: up to 64 new tokens, greedy (temperature 0.0), no
/// top-k limit, top_p 1.0, seed 42, stop at end-of-sequence.
///
/// ```gleam
/// let opts = t.GenerateOpts(..t.default_generate_opts(), max_new_tokens: 16)
/// let assert Ok(result) = t.generate(model, "Once upon a time", opts)
/// ```
pub fn default_generate_opts() -> GenerateOpts {
  GenerateOpts(
    max_new_tokens: 64,
    temperature: 0.0,
    top_k: TopKInfinity,
    top_p: 1.0,
    seed: 42,
    stop_on_eos: True,
  )
}

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

/// Loads a checkpoint: a `.safetensors` file, a `model.safetensors.index.json`
/// or a folder holding either, with `config.json` and `tokenizer.json` next to
/// it. The backend is `Auto` (or `VIVA_TENSOR_BACKEND`), the weights the
/// backend's default.
///
/// ```gleam
/// let assert Ok(model) = t.load_model("tmp/tinyllama/model.safetensors")
/// let assert Error(t.VivaError(kind: t.NotFound, message: _)) =
///   t.load_model("no/such/dir")
/// ```
pub fn load_model(path: String) -> Result(Model, VivaError) {
  ffi_load_model(path, Auto, DefaultWeights)
}

/// Loads a checkpoint like `load_model`, on the given backend and in the
/// given weight format. `Auto` and `DefaultWeights` leave the choice to the
/// core (and to `VIVA_TENSOR_BACKEND`).
///
/// ```gleam
/// let assert Ok(model) = t.load_model_with("tmp/tinyllama", t.Cuda, t.Fp8)
/// t.model_backend(model)  // Cuda
/// ```
pub fn load_model_with(
  path: String,
  backend: Backend,
  weights: WeightFormat,
) -> Result(Model, VivaError) {
  ffi_load_model(path, backend, weights)
}

/// The backend a model runs on (never `Auto`).
///
/// ```gleam
/// let assert Ok(model) = t.load_model("tmp/tinyllama")
/// case t.model_backend(model) {
///   t.Cuda -> "on the GPU"
///   _ -> "on the CPU"
/// }
/// ```
@external(erlang, "viva_tensor_ffi", "model_backend")
pub fn model_backend(model: Model) -> Backend

/// The model's own tokenizer.
///
/// ```gleam
/// let assert Ok(model) = t.load_model("tmp/tinyllama")
/// let assert Ok(ids) = t.tokenize(t.model_tokenizer(model), "Hello", True)
/// ```
@external(erlang, "viva_tensor_ffi", "model_tokenizer")
pub fn model_tokenizer(model: Model) -> Tokenizer

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

/// Generates a continuation of `prompt` (tokenized with a BOS token first).
///
/// ```gleam
/// let opts =
///   t.GenerateOpts(
///     max_new_tokens: 50,
///     temperature: 0.0,
///     top_k: t.TopKInfinity,
///     top_p: 1.0,
///     seed: 42,
///     stop_on_eos: True,
///   )
/// let assert Ok(result) = t.generate(model, "Hello", opts)
/// result.text
/// ```
pub fn generate(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
) -> Result(GenerateResult, VivaError) {
  ffi_generate(model, prompt, opts, [])
}

/// Generates like `generate`, with further options: stop sequences, or token
/// ids to feed instead of the prompt text.
///
/// ```gleam
/// let assert Ok(result) =
///   t.generate_with(model, "Once upon a time", t.default_generate_opts(), [
///     t.StopSequences(["."]),
///   ])
/// result.finish_reason  // t.Stop, when a "." was generated
///
/// // Ids as they are (no BOS added); the prompt text is then ignored.
/// let assert Ok(result) =
///   t.generate_with(model, "", t.default_generate_opts(), [
///     t.PromptIds([1, 403, 407]),
///   ])
/// ```
pub fn generate_with(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
  extra: List(GenerateOption),
) -> Result(GenerateResult, VivaError) {
  ffi_generate(model, prompt, opts, extra)
}

/// Generates like `generate`, calling `on_piece` with each piece of text as
/// soon as it is decoded, in order, in the calling process. The pieces
/// concatenate to `result.text` (text held back while it might be the start
/// of a stop sequence comes last). `on_piece` is never called with "".
///
/// ```gleam
/// let assert Ok(result) =
///   t.stream(model, "Once upon a time", t.default_generate_opts(), fn(piece) {
///     io.print(piece)
///   })
/// ```
pub fn stream(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
  on_piece: fn(String) -> Nil,
) -> Result(GenerateResult, VivaError) {
  ffi_stream(model, prompt, opts, [], on_piece)
}

/// Streams like `stream`, with the further options of `generate_with`.
///
/// ```gleam
/// let assert Ok(result) =
///   t.stream_with(model, "Once", opts, [t.StopSequences(["\n"])], fn(piece) {
///     io.print(piece)
///   })
/// ```
pub fn stream_with(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
  extra: List(GenerateOption),
  on_piece: fn(String) -> Nil,
) -> Result(GenerateResult, VivaError) {
  ffi_stream(model, prompt, opts, extra, on_piece)
}

// ---------------------------------------------------------------------------
// Tokenizers
// ---------------------------------------------------------------------------

/// Loads a tokenizer from a `tokenizer.json` file or a folder holding one.
///
/// ```gleam
/// let assert Ok(tok) = t.load_tokenizer("tmp/tinyllama/tokenizer.json")
/// ```
@external(erlang, "viva_tensor_ffi", "load_tokenizer")
pub fn load_tokenizer(path: String) -> Result(Tokenizer, VivaError)

/// Turns text into token ids; `add_special_tokens: True` applies the
/// tokenizer's post-processor (for Llama: a BOS id first).
///
/// ```gleam
/// let assert Ok(ids) = t.tokenize(tok, "Once upon a time", True)
/// // [1, 403, 407, 261, 378] with the stories260k tokenizer
/// ```
@external(erlang, "viva_tensor_ffi", "tokenize")
pub fn tokenize(
  tokenizer: Tokenizer,
  text: String,
  add_special_tokens: Bool,
) -> Result(List(Int), VivaError)

/// Turns token ids back into text, skipping special tokens.
///
/// ```gleam
/// let assert Ok(text) = t.detokenize(tok, [1, 403, 407, 261, 378])
/// // "Once upon a time"
/// ```
@external(erlang, "viva_tensor_ffi", "detokenize")
pub fn detokenize(
  tokenizer: Tokenizer,
  ids: List(Int),
) -> Result(String, VivaError)

// ---------------------------------------------------------------------------
// Erlang adapters (src/viva_tensor_ffi.erl)
// ---------------------------------------------------------------------------

@external(erlang, "viva_tensor_ffi", "load_model")
fn ffi_load_model(
  path: String,
  backend: Backend,
  weights: WeightFormat,
) -> Result(Model, VivaError)

@external(erlang, "viva_tensor_ffi", "generate")
fn ffi_generate(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
  extra: List(GenerateOption),
) -> Result(GenerateResult, VivaError)

@external(erlang, "viva_tensor_ffi", "stream")
fn ffi_stream(
  model: Model,
  prompt: String,
  opts: GenerateOpts,
  extra: List(GenerateOption),
  on_piece: fn(String) -> Nil,
) -> Result(GenerateResult, VivaError)

// ---------------------------------------------------------------------------
// Low-level quantized linears (the tensors are viva_tensor/tensor's)
// ---------------------------------------------------------------------------

import viva_tensor/tensor

/// A weight quantized to FP8 E4M3 with per-block scales, from
/// `prepack_fp8_weight_blocked` (the same type as `tensor.PackedWeight`).
pub type PackedWeight =
  tensor.PackedWeight

/// Quantizes a weight `[n, k]` to FP8 E4M3 with one scale per block of
/// `block_size` elements of a row; see `viva_tensor/tensor`.
///
/// ```gleam
/// import viva_tensor/tensor
///
/// let assert Ok(weight) = tensor.from_list2d([[1.0, -2.0, 0.5, 4.0]])
/// let assert Ok(packed) = t.prepack_fp8_weight_blocked(weight, 16)
/// ```
pub fn prepack_fp8_weight_blocked(
  weight: tensor.Tensor,
  block_size: Int,
) -> Result(PackedWeight, tensor.TensorError) {
  tensor.prepack_fp8_weight_blocked(weight, block_size)
}

/// `input · dequantize(packed)ᵀ + bias` with bf16-rounded activations; see
/// `viva_tensor/tensor`.
///
/// ```gleam
/// let assert Ok(input) = tensor.from_list2d([[1.0, 1.0, 1.0, 1.0]])
/// let bias = tensor.NoBias
/// let assert Ok(output) = t.linear_fp8_w8a16(input, packed, bias)
/// ```
pub fn linear_fp8_w8a16(
  input: tensor.Tensor,
  packed: PackedWeight,
  bias: tensor.Bias,
) -> Result(tensor.Tensor, tensor.TensorError) {
  tensor.linear_fp8_w8a16(input, packed, bias)
}
