//// Errors reach Gleam as `VivaError(kind, message)` with the core's kinds.

import viva_tensor as t
import viva_tensor/test_support.{expect_equal, fixture, greedy_opts, load, range}

fn expect_error(
  result: Result(a, t.VivaError),
  kind: t.ErrorKind,
  what: String,
) -> Nil {
  case result {
    Error(t.VivaError(kind: got, message: message)) -> {
      expect_equal(got, kind, what)
      let assert True = message != ""
      Nil
    }
    Ok(_) -> test_support.fail(what <> ": expected an error", kind)
  }
}

pub fn missing_path_is_not_found_test() {
  expect_error(
    t.load_model(fixture("no-such-fixture")),
    t.NotFound,
    "missing folder",
  )
  expect_error(
    t.load_model(fixture("stories260k") <> "/no-such.safetensors"),
    t.NotFound,
    "missing file",
  )
}

pub fn invalid_options_test() {
  let model = load("stories260k")
  let base = greedy_opts(8)
  test_support.each(
    [
      #("max_new_tokens -1", t.GenerateOpts(..base, max_new_tokens: -1)),
      #("top_p 0.0", t.GenerateOpts(..base, top_p: 0.0)),
      #("top_p 1.5", t.GenerateOpts(..base, top_p: 1.5)),
      #("temperature -1.0", t.GenerateOpts(..base, temperature: -1.0)),
      #("top_k -1", t.GenerateOpts(..base, top_k: t.TopK(-1))),
    ],
    fn(pair) {
      let #(what, opts) = pair
      expect_error(t.generate(model, "Hello", opts), t.InvalidOption, what)
    },
  )
  expect_error(
    t.generate_with(model, "Hello", base, [t.PromptIds([])]),
    t.InvalidOption,
    "empty prompt ids",
  )
  test_support.each(
    [
      #("min_p -0.5", t.MinP(-0.5)),
      #("min_p 1.5", t.MinP(1.5)),
      #("repetition_penalty 0.0", t.RepetitionPenalty(0.0)),
      #("presence_penalty 2.5", t.PresencePenalty(2.5)),
      #("frequency_penalty -3.0", t.FrequencyPenalty(-3.0)),
    ],
    fn(pair) {
      let #(what, option) = pair
      expect_error(
        t.generate_with(model, "Hello", base, [option]),
        t.InvalidOption,
        what,
      )
    },
  )
}

// stories260k's context is 512 positions.
pub fn prompt_too_long_test() {
  let model = load("stories260k")
  let ids = test_support.map(range(0, 600), fn(i) { 3 + i % 500 })
  expect_error(
    t.generate_with(model, "", greedy_opts(4), [t.PromptIds(ids)]),
    t.PromptTooLong,
    "600 prompt ids",
  )
}

pub fn token_out_of_range_test() {
  let model = load("stories260k")
  expect_error(
    t.generate_with(model, "", greedy_opts(4), [t.PromptIds([1, 512])]),
    t.TokenOutOfRange,
    "prompt id 512 of a 512-token vocabulary",
  )
}

// max_new_tokens 0 generates nothing.
pub fn zero_new_tokens_test() {
  let model = load("stories260k")
  let assert Ok(result) = t.generate(model, "Hello", greedy_opts(0))
  expect_equal(result.tokens, [], "tokens")
  expect_equal(result.text, "", "text")
  expect_equal(result.finish_reason, t.Length, "finish_reason")
}
