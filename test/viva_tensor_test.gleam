//// Test entry point: `viva_tensor_test:main()` runs every public function
//// whose name ends in `_test` in the Gleam test modules (test/**/*.gleam),
//// prints failures and a summary line, and halts with status 1 when any
//// test failed. (No gleeunit here: see DESIGN.md, "Toolchain facts".)
////
//// Fixtures: $VIVA_TENSOR_FIXTURES, else ../shared/fixtures from the
//// repository root. VIVA_TENSOR_BACKEND=beam runs everything without the NIF.

import viva_tensor/test_support.{int_to_string, println}

pub fn main() -> Nil {
  let #(passed, failed) = run_tests()
  println(
    "Gleam: " <> int_to_string(passed) <> " passed, " <> int_to_string(failed) <> " failed",
  )
  case failed == 0 && passed > 0 {
    True -> Nil
    False -> halt(1)
  }
}

@external(erlang, "viva_tensor_test_ffi", "run_tests")
fn run_tests() -> #(Int, Int)

@external(erlang, "erlang", "halt")
fn halt(status: Int) -> Nil
