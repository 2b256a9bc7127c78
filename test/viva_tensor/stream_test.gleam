//// Streaming: the pieces arrive in order, are never empty, and concatenate
//// to the result's text.

import viva_tensor as t
import viva_tensor/test_support.{
  concat, each, expect_equal, greedy_opts, load, record_piece, reference_cases,
  take_pieces,
}

pub fn stream_pieces_concatenate_to_text_test() {
  let model = load("stories260k")
  each(reference_cases("stories260k"), fn(c: test_support.RefCase) {
    let _ = take_pieces()
    let assert Ok(result) = t.stream(model, c.prompt, greedy_opts(64), record_piece)
    let pieces = take_pieces()
    expect_equal(concat(pieces), result.text, c.label <> ": concatenated pieces")
    expect_equal(result.text, c.greedy_new_text, c.label <> ": text")
    expect_equal(result.tokens, c.greedy_new_ids, c.label <> ": tokens")
    let assert False = test_support.contains(pieces, "")
    let assert True = test_support.length(pieces) > 1
  })
}

// Byte-level tokens that end inside a UTF-8 character: still no piece is
// empty and the pieces concatenate to the text.
pub fn stream_bytelevel_test() {
  let model = load("bytelevel-tiny")
  each(reference_cases("bytelevel-tiny"), fn(c: test_support.RefCase) {
    let _ = take_pieces()
    let assert Ok(result) =
      t.stream_with(model, "", greedy_opts(32), [t.PromptIds(c.input_ids)], record_piece)
    let pieces = take_pieces()
    expect_equal(concat(pieces), result.text, c.label <> ": concatenated pieces")
    expect_equal(result.tokens, c.greedy_new_ids, c.label <> ": tokens")
    let assert False = test_support.contains(pieces, "")
  })
}

// With a stop sequence the text is held back while it may start the stop
// string; the pieces still concatenate to the (cut) text.
pub fn stream_with_stop_sequence_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let model = load("stories260k")
  let assert Ok(expected) = test_support.cut_before(first.greedy_new_text, " park")
  each([[" park"], [" park", "Lily. She loved"], ["in the park"]], fn(stops) {
    let _ = take_pieces()
    let assert Ok(result) =
      t.stream_with(model, first.prompt, greedy_opts(64), [t.StopSequences(stops)], record_piece)
    let pieces = take_pieces()
    expect_equal(concat(pieces), result.text, "concatenated pieces")
    expect_equal(result.finish_reason, t.Stop, "finish_reason")
    case stops {
      [" park"] -> expect_equal(result.text, expected, "text")
      _ -> Nil
    }
  })
}

// A stop string that never occurs but whose prefix does (" p" of " pq"):
// the held-back tail comes out at the end.
pub fn stream_held_back_tail_test() {
  let assert [first, ..] = reference_cases("stories260k")
  let model = load("stories260k")
  let _ = take_pieces()
  let assert Ok(result) =
    t.stream_with(model, first.prompt, greedy_opts(64), [t.StopSequences([" park.zzz", "said!"])], record_piece)
  expect_equal(concat(take_pieces()), result.text, "concatenated pieces")
  expect_equal(result.text, first.greedy_new_text, "text")
  expect_equal(result.finish_reason, t.Length, "finish_reason")
}

pub fn stream_error_test() {
  let model = load("stories260k")
  let _ = take_pieces()
  let opts = t.GenerateOpts(..greedy_opts(8), top_p: 0.0)
  let assert Error(t.VivaError(kind: t.InvalidOption, message: _)) =
    t.stream(model, "Hello", opts, record_piece)
  expect_equal(take_pieces(), [], "no pieces")
}
