//// Helpers shared by the Gleam tests: fixtures, reference outputs, small list
//// functions (there is no gleam_stdlib here) and assertions. The Erlang side
//// is test/viva_tensor_test_ffi.erl.

import viva_tensor as t

/// One generation case of a fixture's reference.json (HF transformers output).
pub type RefCase {
  RefCase(
    /// The prompt text, or the case's label when it has no prompt.
    label: String,
    /// The prompt text ("" for cases given as ids only).
    prompt: String,
    /// The prompt's ids, BOS first.
    input_ids: List(Int),
    /// HF greedy continuation, EOS not stopping.
    greedy_new_ids: List(Int),
    /// decode(greedy_new_ids), special tokens skipped.
    greedy_new_text: String,
  )
}

/// One tokenizer vector of a fixture's reference.json.
pub type TokVector {
  TokVector(
    text: String,
    ids_with_bos: List(Int),
    ids_no_special: List(Int),
    decode_skip_special: String,
  )
}

/// The fixtures folder: `$VIVA_TENSOR_FIXTURES`, else `../shared/fixtures`
/// relative to the working directory (the repository root).
@external(erlang, "viva_tensor_test_ffi", "fixtures_dir")
pub fn fixtures_dir() -> String

/// The folder of one fixture (`stories260k`, `bytelevel-tiny`, ...).
pub fn fixture(name: String) -> String {
  fixtures_dir() <> "/" <> name
}

/// The generation cases of a fixture's reference.json.
@external(erlang, "viva_tensor_test_ffi", "reference_cases")
pub fn reference_cases(fixture_name: String) -> List(RefCase)

/// The tokenizer vectors of a fixture's reference.json.
@external(erlang, "viva_tensor_test_ffi", "tokenizer_vectors")
pub fn tokenizer_vectors(fixture_name: String) -> List(TokVector)

/// An environment variable, if set.
@external(erlang, "viva_tensor_test_ffi", "getenv")
pub fn getenv(name: String) -> Result(String, Nil)

/// Fails the test (raising, with both values in the reason) unless got == want.
@external(erlang, "viva_tensor_test_ffi", "expect_equal")
pub fn expect_equal(got: a, want: a, what: String) -> Nil

/// Fails the test with a message and a value.
@external(erlang, "viva_tensor_test_ffi", "fail")
pub fn fail(message: String, value: a) -> b

@external(erlang, "viva_tensor_test_ffi", "println")
pub fn println(text: String) -> Nil

@external(erlang, "erlang", "integer_to_binary")
pub fn int_to_string(n: Int) -> String

@external(erlang, "erlang", "length")
pub fn length(list: List(a)) -> Int

/// Greedy options: temperature 0.0, no top-k/top-p limit, EOS not stopping
/// (as in the HF references).
pub fn greedy_opts(max_new_tokens: Int) -> t.GenerateOpts {
  t.GenerateOpts(
    max_new_tokens: max_new_tokens,
    temperature: 0.0,
    top_k: t.TopKInfinity,
    top_p: 1.0,
    seed: 42,
    stop_on_eos: False,
  )
}

/// Loads a fixture's model (its folder), failing the test on error.
pub fn load(fixture_name: String) -> t.Model {
  case t.load_model(fixture(fixture_name)) {
    Ok(model) -> model
    Error(e) -> fail("load_model " <> fixture_name, e)
  }
}

pub fn each(list: List(a), f: fn(a) -> b) -> Nil {
  case list {
    [] -> Nil
    [x, ..rest] -> {
      f(x)
      each(rest, f)
    }
  }
}

pub fn map(list: List(a), f: fn(a) -> b) -> List(b) {
  case list {
    [] -> []
    [x, ..rest] -> [f(x), ..map(rest, f)]
  }
}

pub fn take(list: List(a), n: Int) -> List(a) {
  case list {
    [] -> []
    [x, ..rest] ->
      case n > 0 {
        True -> [x, ..take(rest, n - 1)]
        False -> []
      }
  }
}

/// [from, from + 1, ..., to - 1]
pub fn range(from: Int, to: Int) -> List(Int) {
  case from < to {
    True -> [from, ..range(from + 1, to)]
    False -> []
  }
}

pub fn all(list: List(a), pred: fn(a) -> Bool) -> Bool {
  case list {
    [] -> True
    [x, ..rest] ->
      case pred(x) {
        True -> all(rest, pred)
        False -> False
      }
  }
}

/// The distinct elements, in first-seen order.
pub fn unique(list: List(a)) -> List(a) {
  unique_loop(list, [])
}

fn unique_loop(list: List(a), seen: List(a)) -> List(a) {
  case list {
    [] -> reverse(seen, [])
    [x, ..rest] ->
      case contains(seen, x) {
        True -> unique_loop(rest, seen)
        False -> unique_loop(rest, [x, ..seen])
      }
  }
}

pub fn contains(list: List(a), x: a) -> Bool {
  case list {
    [] -> False
    [y, ..rest] ->
      case x == y {
        True -> True
        False -> contains(rest, x)
      }
  }
}

fn reverse(list: List(a), acc: List(a)) -> List(a) {
  case list {
    [] -> acc
    [x, ..rest] -> reverse(rest, [x, ..acc])
  }
}

/// The concatenation of a list of strings.
pub fn concat(parts: List(String)) -> String {
  case parts {
    [] -> ""
    [x, ..rest] -> x <> concat(rest)
  }
}

/// Remembers a streamed piece (in the calling process).
@external(erlang, "viva_tensor_test_ffi", "record_piece")
pub fn record_piece(piece: String) -> Nil

/// The pieces remembered since the last call, in order; forgets them.
@external(erlang, "viva_tensor_test_ffi", "take_pieces")
pub fn take_pieces() -> List(String)

/// The text before the first occurrence of `pattern`, if it occurs.
@external(erlang, "viva_tensor_test_ffi", "cut_before")
pub fn cut_before(text: String, pattern: String) -> Result(String, Nil)
