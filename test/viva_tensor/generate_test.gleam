//// Generation through the Gleam API against HF transformers' reference
//// outputs (../shared/fixtures/*/reference.json).

import viva_tensor as t
import viva_tensor/test_support.{
  each, expect_equal, fixture, greedy_opts, length, load, reference_cases, take,
}

// Prompt ids fed as they are: 64 greedy tokens equal HF's, for every case.
pub fn stories260k_greedy_prompt_ids_test() {
  let model = load("stories260k")
  each(reference_cases("stories260k"), fn(c: test_support.RefCase) {
    let assert Ok(result) =
      t.generate_with(model, "", greedy_opts(64), [t.PromptIds(c.input_ids)])
    expect_equal(result.tokens, c.greedy_new_ids, c.label <> ": tokens")
    expect_equal(result.text, c.greedy_new_text, c.label <> ": text")
    expect_equal(result.prompt_tokens, c.input_ids, c.label <> ": prompt_tokens")
    expect_equal(result.finish_reason, t.Length, c.label <> ": finish_reason")
  })
}

// The prompt text is tokenized (BOS first) exactly as HF does, then the same
// greedy continuation follows.
pub fn stories260k_greedy_prompt_text_test() {
  let model = load("stories260k")
  each(reference_cases("stories260k"), fn(c: test_support.RefCase) {
    let assert Ok(result) = t.generate(model, c.prompt, greedy_opts(64))
    expect_equal(result.prompt_tokens, c.input_ids, c.label <> ": prompt_tokens")
    expect_equal(result.tokens, c.greedy_new_ids, c.label <> ": tokens")
    expect_equal(result.text, c.greedy_new_text, c.label <> ": text")
    expect_equal(result.backend, t.model_backend(model), c.label <> ": backend")
  })
}

// Byte-level BPE model (GPT-2 style tokenizer, rms_norm_eps 1e-6, head_dim key).
pub fn bytelevel_tiny_greedy_prompt_ids_test() {
  let model = load("bytelevel-tiny")
  each(reference_cases("bytelevel-tiny"), fn(c: test_support.RefCase) {
    let assert Ok(result) =
      t.generate_with(model, "", greedy_opts(32), [t.PromptIds(c.input_ids)])
    expect_equal(result.tokens, c.greedy_new_ids, c.label <> ": tokens")
    expect_equal(result.text, c.greedy_new_text, c.label <> ": text")
    expect_equal(length(result.tokens), 32, c.label <> ": token count")
  })
}

// The original README's first example, unchanged, on the model file's path.
pub fn readme_quick_start_test() {
  let assert Ok(model) =
    t.load_model(fixture("stories260k") <> "/model.safetensors")
  let assert Ok(result) = t.generate(model, "Hello", t.default_generate_opts())
  let text: String = result.text
  let assert Ok(hello) = t.tokenize(t.model_tokenizer(model), "Hello", True)
  expect_equal(result.prompt_tokens, hello, "prompt_tokens")
  let assert True = length(result.tokens) <= 64
  let assert Ok(decoded) = t.detokenize(t.model_tokenizer(model), result.tokens)
  expect_equal(text, decoded, "text = detokenize(tokens)")
}

// default_generate_opts is greedy with EOS stopping; HF's 64-token greedy run
// of "Once upon a time" has no EOS, so the two agree.
pub fn default_opts_match_reference_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let model = load("stories260k")
  let opts = t.default_generate_opts()
  expect_equal(opts.max_new_tokens, 64, "max_new_tokens")
  expect_equal(opts.temperature, 0.0, "temperature")
  expect_equal(opts.top_k, t.TopKInfinity, "top_k")
  expect_equal(opts.top_p, 1.0, "top_p")
  expect_equal(opts.seed, 42, "seed")
  expect_equal(opts.stop_on_eos, True, "stop_on_eos")
  let assert Ok(result) = t.generate(model, first.prompt, opts)
  expect_equal(result.tokens, first.greedy_new_ids, "tokens")
  expect_equal(result.text, first.greedy_new_text, "text")
}

// The README's explicit options (50 greedy tokens) give the reference's first 50.
pub fn readme_explicit_opts_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let assert Ok(model) =
    t.load_model(fixture("stories260k") <> "/model.safetensors")
  let opts =
    t.GenerateOpts(
      max_new_tokens: 50,
      temperature: 0.0,
      top_k: t.TopKInfinity,
      top_p: 1.0,
      seed: 42,
      stop_on_eos: True,
    )
  let assert Ok(result) = t.generate(model, first.prompt, opts)
  expect_equal(result.tokens, take(first.greedy_new_ids, 50), "tokens")
  expect_equal(result.finish_reason, t.Length, "finish_reason")
}

// The README's reproducible-sampling options run and stay in bounds.
pub fn readme_sampling_opts_test() {
  let model = load("stories260k")
  let sampling_opts =
    t.GenerateOpts(
      max_new_tokens: 30,
      temperature: 0.8,
      top_k: t.TopK(40),
      top_p: 0.95,
      seed: 42,
      stop_on_eos: True,
    )
  let assert Ok(result) = t.generate(model, "Once upon a time", sampling_opts)
  let n = length(result.tokens)
  let assert True = n >= 1 && n <= 30
  let assert True =
    test_support.all(result.tokens, fn(id) { id >= 0 && id < 512 })
  case result.finish_reason {
    t.Length -> expect_equal(n, 30, "a Length finish after 30 tokens")
    t.Eos -> Nil
    other -> test_support.fail("unexpected finish_reason", other)
  }
}

// A stop sequence cuts the text right before its first occurrence.
pub fn stop_sequence_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let model = load("stories260k")
  let assert Ok(expected) = test_support.cut_before(first.greedy_new_text, " park")
  let assert Ok(result) =
    t.generate_with(model, first.prompt, greedy_opts(64), [
      t.StopSequences(["no such text", " park"]),
    ])
  expect_equal(result.text, expected, "text")
  expect_equal(result.finish_reason, t.Stop, "finish_reason")
}

// load_model_with: explicit weights and the pure-BEAM backend give the same
// greedy tokens.
pub fn load_model_with_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let path = fixture("stories260k")
  let assert Ok(auto) = t.load_model_with(path, t.Auto, t.DefaultWeights)
  let assert Ok(f32) = t.load_model_with(path, t.Auto, t.F32)
  let assert Ok(beam) = t.load_model_with(path, t.Beam, t.DefaultWeights)
  expect_equal(t.model_backend(beam), t.Beam, "backend of a Beam model")
  each([auto, f32, beam], fn(model) {
    let assert Ok(result) =
      t.generate_with(model, "", greedy_opts(16), [t.PromptIds(first.input_ids)])
    expect_equal(result.tokens, take(first.greedy_new_ids, 16), "tokens")
    expect_equal(result.backend, t.model_backend(model), "result backend")
  })
}

// Backend Auto never shows in a loaded model; under VIVA_TENSOR_BACKEND=beam
// the model runs on the BEAM.
pub fn model_backend_test() {
  let model = load("stories260k")
  let backend = t.model_backend(model)
  let assert True = backend != t.Auto
  case test_support.getenv("VIVA_TENSOR_BACKEND") {
    Ok("beam") -> expect_equal(backend, t.Beam, "backend under VIVA_TENSOR_BACKEND=beam")
    _ -> Nil
  }
}

// Cuda on a machine without a GPU (or without the NIF) is a clear error.
pub fn cuda_backend_test() {
  case t.load_model_with(fixture("stories260k"), t.Cuda, t.DefaultWeights) {
    Ok(model) -> expect_equal(t.model_backend(model), t.Cuda, "backend")
    Error(t.VivaError(kind: t.CudaUnavailable, message: _)) -> Nil
    Error(t.VivaError(kind: t.NifUnavailable, message: _)) -> Nil
    Error(e) -> test_support.fail("load_model_with Cuda", e)
  }
}
