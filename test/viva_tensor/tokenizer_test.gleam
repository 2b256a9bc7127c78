//// Tokenizer round trips against the HF `tokenizers` reference vectors.

import viva_tensor as t
import viva_tensor/test_support.{
  each, expect_equal, fixture, reference_cases, tokenizer_vectors,
}

fn check_vectors(tok: t.Tokenizer, fixture_name: String) -> Nil {
  each(tokenizer_vectors(fixture_name), fn(v: test_support.TokVector) {
    let assert Ok(with_bos) = t.tokenize(tok, v.text, True)
    expect_equal(with_bos, v.ids_with_bos, fixture_name <> " ids_with_bos: " <> v.text)
    let assert Ok(no_special) = t.tokenize(tok, v.text, False)
    expect_equal(no_special, v.ids_no_special, fixture_name <> " ids_no_special: " <> v.text)
    let assert Ok(text) = t.detokenize(tok, v.ids_with_bos)
    expect_equal(text, v.decode_skip_special, fixture_name <> " decode: " <> v.text)
  })
}

pub fn stories260k_tokenizer_vectors_test() {
  let assert Ok(tok) = t.load_tokenizer(fixture("stories260k") <> "/tokenizer.json")
  check_vectors(tok, "stories260k")
}

pub fn bytelevel_tokenizer_vectors_test() {
  let assert Ok(tok) = t.load_tokenizer(fixture("bytelevel-tiny"))
  check_vectors(tok, "bytelevel-tiny")
}

// The model's own tokenizer: prompts give the reference input_ids, and the
// generated ids decode to the reference text.
pub fn model_tokenizer_round_trip_test() {
  let model = test_support.load("stories260k")
  let tok = t.model_tokenizer(model)
  each(reference_cases("stories260k"), fn(c: test_support.RefCase) {
    let assert Ok(ids) = t.tokenize(tok, c.prompt, True)
    expect_equal(ids, c.input_ids, c.label <> ": input_ids")
    let assert Ok(prompt) = t.detokenize(tok, ids)
    expect_equal(prompt, c.prompt, c.label <> ": detokenize(input_ids)")
    let assert Ok(text) = t.detokenize(tok, c.greedy_new_ids)
    expect_equal(text, c.greedy_new_text, c.label <> ": detokenize(greedy_new_ids)")
  })
}

pub fn load_tokenizer_errors_test() {
  let assert Error(t.VivaError(kind: t.NotFound, message: _)) =
    t.load_tokenizer(fixture("no-such-fixture") <> "/tokenizer.json")
  let assert Error(t.VivaError(kind: t.InvalidTokenizer, message: _)) =
    t.load_tokenizer(fixture("stories260k") <> "/config.json")
}
