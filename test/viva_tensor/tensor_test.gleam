//// The Gleam tensor API (viva_tensor/tensor) against hand-worked examples
//// and f64 references computed here; errors reach Gleam as
//// `ShapeMismatch(message)` / `InvalidArgument(message)`.

import viva_tensor as t
import viva_tensor/tensor.{
  Bf16, Bias, F16, F32, InvalidArgument, NoBias, ShapeMismatch,
}
import viva_tensor/test_support.{each, expect_equal, fail, map, range}

// --- helpers -------------------------------------------------------------------

fn ok(result: Result(a, tensor.TensorError), what: String) -> a {
  case result {
    Ok(value) -> value
    Error(e) -> fail(what <> ": unexpected error", e)
  }
}

fn vec(values: List(Float)) -> tensor.Tensor {
  ok(tensor.from_list(values), "from_list")
}

fn mat(rows: List(List(Float))) -> tensor.Tensor {
  ok(tensor.from_list2d(rows), "from_list2d")
}

fn abs(x: Float) -> Float {
  case x <. 0.0 {
    True -> 0.0 -. x
    False -> x
  }
}

/// Fails unless got and want have the same length and every pair is within
/// tol (absolute).
fn expect_close(got: List(Float), want: List(Float), tol: Float, what: String) {
  case close_all(got, want, tol) {
    True -> Nil
    False -> fail(what <> ": not close", #(got, want))
  }
}

fn close_all(got: List(Float), want: List(Float), tol: Float) -> Bool {
  case got, want {
    [], [] -> True
    [g, ..gs], [w, ..ws] ->
      case abs(g -. w) <=. tol {
        True -> close_all(gs, ws, tol)
        False -> False
      }
    _, _ -> False
  }
}

fn expect_shape_mismatch(result: Result(a, tensor.TensorError), what: String) -> String {
  case result {
    Error(ShapeMismatch(message)) if message != "" -> message
    Error(e) -> fail(what <> ": expected ShapeMismatch", e)
    Ok(_) -> fail(what <> ": expected an error", what)
  }
}

fn expect_invalid(result: Result(a, tensor.TensorError), what: String) -> String {
  case result {
    Error(InvalidArgument(message)) if message != "" -> message
    Error(e) -> fail(what <> ": expected InvalidArgument", e)
    Ok(_) -> fail(what <> ": expected an error", what)
  }
}

fn sum_list(values: List(Float)) -> Float {
  case values {
    [] -> 0.0
    [x, ..rest] -> x +. sum_list(rest)
  }
}

@external(erlang, "math", "exp")
fn exp(x: Float) -> Float

@external(erlang, "math", "sqrt")
fn sqrt(x: Float) -> Float

// --- constructors --------------------------------------------------------------

pub fn constructors_test() {
  let m = mat([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  expect_equal(tensor.shape(m), [2, 3], "from_list2d shape")
  expect_equal(tensor.size(m), 6, "size")
  expect_equal(tensor.to_list(m), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "to_list")
  expect_equal(
    tensor.to_list2d(m),
    Ok([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    "to_list2d",
  )
  let f = ok(tensor.from_flat_list([1.0, 2.0, 3.0, 4.0], [2, 1, 2]), "flat")
  expect_equal(tensor.shape(f), [2, 1, 2], "from_flat_list shape")
  expect_equal(tensor.shape(tensor.scalar(2.5)), [], "scalar shape")
  expect_equal(tensor.to_list(tensor.scalar(2.5)), [2.5], "scalar value")
  expect_equal(tensor.shape(mat([])), [0, 0], "empty matrix")
  expect_equal(tensor.to_list(ok(tensor.zeros([2]), "zeros")), [0.0, 0.0], "zeros")
  expect_equal(tensor.to_list(ok(tensor.ones([1, 2]), "ones")), [1.0, 1.0], "ones")
  expect_equal(
    tensor.to_list(ok(tensor.full([3], 0.5), "full")),
    [0.5, 0.5, 0.5],
    "full",
  )
}

pub fn constructor_errors_test() {
  expect_shape_mismatch(tensor.from_list2d([[1.0, 2.0], [3.0]]), "ragged rows")
  expect_shape_mismatch(
    tensor.from_flat_list([1.0, 2.0, 3.0], [2, 2]),
    "3 values for [2,2]",
  )
  expect_invalid(tensor.zeros([2, -1]), "negative dimension")
  expect_invalid(tensor.to_list2d(vec([1.0])), "to_list2d of a vector")
  Nil
}

// --- binaries ------------------------------------------------------------------

// bf16 is the top half of an f32: 1.0 = 0x3F80, -2.0 = 0xC000,
// 3.140625 = 201/64 = 0x4049, 65280 = 255 * 2^8 = 0x477F: all exact.
pub fn bf16_round_trip_test() {
  let bytes = [0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40, 0x7F, 0x47]
  let v = vec([1.0, -2.0, 3.140625, 65280.0])
  expect_equal(tensor.bytes_to_list(tensor.to_binary(v, Bf16)), bytes, "to bf16")
  let back =
    ok(
      tensor.from_binary(tensor.bytes_from_list(bytes), [2, 2], Bf16),
      "from bf16",
    )
  expect_equal(tensor.shape(back), [2, 2], "bf16 shape")
  expect_equal(tensor.to_list(back), [1.0, -2.0, 3.140625, 65280.0], "bf16 values")
}

// f32 1.5 = 0x3FC00000, f16 -2.5 = 0xC100 (little-endian bytes).
pub fn f32_f16_test() {
  let v = vec([1.5])
  expect_equal(
    tensor.bytes_to_list(tensor.to_binary(v, F32)),
    [0x00, 0x00, 0xC0, 0x3F],
    "to f32",
  )
  let h =
    ok(
      tensor.from_binary(tensor.bytes_from_list([0x00, 0xC1]), [1], F16),
      "from f16",
    )
  expect_equal(tensor.to_list(h), [-2.5], "f16 value")
  expect_equal(tensor.bytes_size(tensor.to_binary(h, F16)), 2, "f16 size")
}

pub fn binary_errors_test() {
  expect_invalid(
    tensor.from_binary(tensor.bytes_from_list([0, 0, 0]), [1], F32),
    "3 bytes for one f32",
  )
  // bf16 0x7F80 is +infinity
  expect_invalid(
    tensor.from_binary(tensor.bytes_from_list([0x80, 0x7F]), [1], Bf16),
    "bf16 infinity",
  )
  Nil
}

// --- shape operations ------------------------------------------------------------

pub fn shape_ops_test() {
  let m = mat([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  expect_equal(
    tensor.shape(ok(tensor.reshape(m, [-1, 2]), "reshape")),
    [3, 2],
    "reshape -1",
  )
  expect_equal(
    tensor.to_list(ok(tensor.transpose(m), "transpose")),
    [1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
    "transpose",
  )
  let cube = ok(tensor.zeros([2, 3, 4]), "zeros")
  expect_equal(
    tensor.shape(ok(tensor.permute(cube, [2, 0, 1]), "permute")),
    [4, 2, 3],
    "permute",
  )
  expect_equal(
    tensor.to_list(ok(tensor.slice(m, [0, 1], [2, 2]), "slice")),
    [2.0, 3.0, 5.0, 6.0],
    "slice",
  )
  expect_equal(
    tensor.to_list2d(ok(tensor.concat([m, m], 1), "concat")),
    Ok([[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 4.0, 5.0, 6.0]]),
    "concat axis 1",
  )
  expect_shape_mismatch(tensor.reshape(m, [4, 2]), "reshape 6 -> 8")
  expect_invalid(tensor.permute(cube, [0, 0, 1]), "not a permutation")
  expect_invalid(tensor.slice(m, [1, 0], [2, 1]), "slice past the end")
  expect_shape_mismatch(tensor.concat([m, vec([1.0])], 0), "concat ranks")
  expect_invalid(tensor.concat([], 0), "concat of nothing")
  Nil
}

// --- elementwise ---------------------------------------------------------------

// [2,1] + [3] -> [2,3]: out[i][j] = col[i] + row[j].
pub fn broadcasting_test() {
  let col = mat([[1.0], [2.0]])
  let row = vec([10.0, 20.0, 30.0])
  let s = ok(tensor.add(col, row), "add")
  expect_equal(tensor.shape(s), [2, 3], "broadcast shape")
  expect_equal(
    tensor.to_list(s),
    [11.0, 21.0, 31.0, 12.0, 22.0, 32.0],
    "broadcast add",
  )
  let p = ok(tensor.mul(row, tensor.scalar(2.0)), "mul by a scalar")
  expect_equal(tensor.to_list(p), [20.0, 40.0, 60.0], "mul scalar")
  let cube = ok(tensor.ones([4, 1, 3]), "ones")
  let b = ok(tensor.zeros([2, 1]), "zeros")
  expect_equal(
    tensor.shape(ok(tensor.sub(cube, b), "sub")),
    [4, 2, 3],
    "[4,1,3] - [2,1]",
  )
  let message =
    expect_shape_mismatch(
      tensor.add(mat([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), vec([1.0, 2.0])),
      "[2,3] + [2]",
    )
  expect_equal(
    message,
    "add: [2,3] and [2] do not broadcast (dimension 3 vs 2)",
    "broadcast message",
  )
}

pub fn elementwise_test() {
  let a = vec([1.0, -2.0, 3.0])
  let b = vec([4.0, 5.0, -6.0])
  expect_equal(tensor.to_list(ok(tensor.sub(a, b), "sub")), [-3.0, -7.0, 9.0], "sub")
  expect_equal(tensor.to_list(ok(tensor.div(a, b), "div")), [0.25, -0.4, -0.5], "div")
  expect_equal(
    tensor.to_list(ok(tensor.maximum(a, b), "maximum")),
    [4.0, 5.0, 3.0],
    "maximum",
  )
  expect_equal(
    tensor.to_list(ok(tensor.minimum(a, b), "minimum")),
    [1.0, -2.0, -6.0],
    "minimum",
  )
  expect_equal(
    tensor.to_list(ok(tensor.scale(a, 0.5), "scale")),
    [0.5, -1.0, 1.5],
    "scale",
  )
  expect_equal(tensor.to_list(ok(tensor.neg(a), "neg")), [-1.0, 2.0, -3.0], "neg")
  expect_equal(tensor.to_list(ok(tensor.relu(a), "relu")), [1.0, 0.0, 3.0], "relu")
  expect_close(
    tensor.to_list(ok(tensor.exp(a), "exp")),
    [exp(1.0), exp(-2.0), exp(3.0)],
    1.0e-12,
    "exp",
  )
  expect_close(
    tensor.to_list(ok(tensor.sqrt(vec([4.0, 2.0])), "sqrt")),
    [2.0, sqrt(2.0)],
    1.0e-15,
    "sqrt",
  )
  // sigmoid(0) = 0.5; silu(2) = 2 / (1 + e^-2); tanh(0) = 0
  expect_close(
    tensor.to_list(ok(tensor.sigmoid(vec([0.0, -1000.0])), "sigmoid")),
    [0.5, 0.0],
    1.0e-15,
    "sigmoid",
  )
  expect_close(
    tensor.to_list(ok(tensor.silu(vec([2.0])), "silu")),
    [2.0 /. { 1.0 +. exp(-2.0) }],
    1.0e-15,
    "silu",
  )
  expect_equal(tensor.to_list(ok(tensor.tanh(vec([0.0])), "tanh")), [0.0], "tanh")
  expect_invalid(tensor.div(a, vec([0.0])), "division by zero")
  expect_invalid(tensor.exp(vec([1000.0])), "exp overflow")
  expect_invalid(tensor.sqrt(vec([-1.0])), "sqrt of a negative number")
  Nil
}

// --- matmul --------------------------------------------------------------------

// 1*7+2*9+3*11 = 58, 1*8+2*10+3*12 = 64, 4*7+5*9+6*11 = 139, 4*8+5*10+6*12 = 154
pub fn matmul_hand_test() {
  let a = mat([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
  let b = mat([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
  let c = ok(tensor.matmul(a, b), "matmul")
  expect_equal(tensor.shape(c), [2, 2], "matmul shape")
  expect_equal(tensor.to_list(c), [58.0, 64.0, 139.0, 154.0], "matmul values")
  // 1-D cases: [3] . [3] = 32 (a scalar), [3] x [3,2] = [58, 64]
  let d = ok(tensor.matmul(vec([1.0, 2.0, 3.0]), vec([4.0, 5.0, 6.0])), "dot")
  expect_equal(#(tensor.shape(d), tensor.to_list(d)), #([], [32.0]), "dot")
  let r = ok(tensor.matmul(vec([1.0, 2.0, 3.0]), b), "vector x matrix")
  expect_equal(#(tensor.shape(r), tensor.to_list(r)), #([2], [58.0, 64.0]), "vm")
  // batched: [2,2,3] x [2,3,2], batch 1 = 2 * batch 0 -> 2 * [[58,64],[139,154]]
  let a3 =
    ok(
      tensor.from_flat_list(
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        [2, 2, 3],
      ),
      "a3",
    )
  let b3 = ok(tensor.concat([b, b], 0), "concat")
  let b3 = ok(tensor.reshape(b3, [2, 3, 2]), "b3")
  let c3 = ok(tensor.matmul(a3, b3), "batched")
  expect_equal(tensor.shape(c3), [2, 2, 2], "batched shape")
  expect_equal(
    tensor.to_list(c3),
    [58.0, 64.0, 139.0, 154.0, 116.0, 128.0, 278.0, 308.0],
    "batched values",
  )
}

pub fn matmul_errors_test() {
  let a = ok(tensor.zeros([2, 3]), "a")
  let b = ok(tensor.zeros([4, 5]), "b")
  expect_equal(
    expect_shape_mismatch(tensor.matmul(a, b), "[2,3] x [4,5]"),
    "matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ",
    "matmul message",
  )
}

// --- reductions, softmax, rmsnorm ------------------------------------------------

pub fn reductions_test() {
  let m = mat([[1.0, 9.0, 3.0], [7.0, 5.0, 7.0]])
  expect_equal(tensor.to_list(ok(tensor.sum(m, 0), "sum 0")), [8.0, 14.0, 10.0], "sum 0")
  expect_equal(tensor.to_list(ok(tensor.sum(m, -1), "sum -1")), [13.0, 19.0], "sum -1")
  expect_equal(tensor.sum_all(m), Ok(32.0), "sum_all")
  expect_equal(tensor.to_list(ok(tensor.mean(m, 0), "mean")), [4.0, 7.0, 5.0], "mean")
  expect_equal(tensor.to_list(ok(tensor.max(m, 1), "max")), [9.0, 7.0], "max")
  expect_equal(tensor.to_list(ok(tensor.min(m, 1), "min")), [1.0, 5.0], "min")
  expect_equal(
    tensor.to_list(ok(tensor.argmax(m, 1), "argmax")),
    [1.0, 0.0],
    "argmax, first on ties",
  )
  expect_invalid(tensor.sum(m, 2), "axis 2 of a matrix")
  expect_invalid(tensor.max(ok(tensor.zeros([2, 0]), "empty"), 1), "max of nothing")
  Nil
}

// softmax([1,2,3]) = [e^-2, e^-1, 1] / (e^-2 + e^-1 + 1)
pub fn softmax_test() {
  let logits = mat([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]])
  let p = ok(tensor.softmax(logits, -1), "softmax")
  let z = exp(-2.0) +. exp(-1.0) +. 1.0
  let hand = [exp(-2.0) /. z, exp(-1.0) /. z, 1.0 /. z]
  let assert Ok([row1, row2]) = tensor.to_list2d(p)
  expect_close(row1, hand, 1.0e-15, "softmax row 1")
  expect_close(row2, hand, 1.0e-15, "softmax row 2 (shifted by 1000)")
  expect_close([sum_list(row1), sum_list(row2)], [1.0, 1.0], 1.0e-15, "rows sum to 1")
  expect_close(
    row1,
    [0.0900305731703805, 0.2447284710547976, 0.6652409557748219],
    1.0e-15,
    "softmax numbers",
  )
  expect_invalid(tensor.softmax(logits, 2), "softmax axis 2")
  Nil
}

// x = [3,4], w = [1,2]: mean(x^2) = 12.5, y = [3, 8] / sqrt(12.5)
//   = [0.848528, 2.262742]
pub fn rmsnorm_test() {
  let y = ok(tensor.rmsnorm(vec([3.0, 4.0]), vec([1.0, 2.0]), 0.0), "rmsnorm")
  expect_close(tensor.to_list(y), [0.848528, 2.262742], 1.0e-6, "rmsnorm")
  expect_close(
    tensor.to_list(y),
    [3.0 /. sqrt(12.5), 8.0 /. sqrt(12.5)],
    1.0e-15,
    "rmsnorm f64",
  )
  expect_shape_mismatch(
    tensor.rmsnorm(vec([3.0, 4.0]), vec([1.0, 2.0, 3.0]), 0.0),
    "weight [3] for x [2]",
  )
  expect_invalid(
    tensor.rmsnorm(vec([3.0, 4.0]), vec([1.0, 2.0]), -1.0),
    "negative eps",
  )
  Nil
}

// --- FP8 -----------------------------------------------------------------------

// 448 = 1.75 * 2^8 -> 0 1111 110; 1.0 -> 0 0111 000; 2^-9 -> 0 0000 001;
// -2.0 -> 1 1000 000; 0.3 / 2^-5 = 9.6 -> 10 * 2^-5 = 0.3125 -> 0 0101 010.
pub fn e4m3_test() {
  expect_equal(tensor.e4m3_encode(448.0), 0x7E, "448")
  expect_equal(tensor.e4m3_encode(1.0), 0x38, "1.0")
  expect_equal(tensor.e4m3_encode(0.001953125), 0x01, "2^-9")
  expect_equal(tensor.e4m3_encode(-2.0), 0xC0, "-2.0")
  expect_equal(tensor.e4m3_encode(0.3), 0x2A, "0.3")
  expect_equal(tensor.e4m3_encode(1000.0), 0x7E, "saturates")
  expect_equal(tensor.e4m3_decode(0x2A), Ok(0.3125), "0x2A")
  expect_equal(tensor.e4m3_decode(0x7E), Ok(448.0), "0x7E")
  expect_equal(tensor.e4m3_decode(0x01), Ok(0.001953125), "0x01")
  expect_equal(tensor.e4m3_decode(0x7F), Error(Nil), "NaN code")
  // every finite code decodes and encodes back
  each(range(0, 256), fn(code) {
    case tensor.e4m3_decode(code) {
      Ok(value) ->
        case code == 0x80 {
          True -> Nil
          False -> expect_equal(tensor.e4m3_encode(value), code, "round trip")
        }
      Error(Nil) -> expect_equal(code == 0x7F || code == 0xFF, True, "NaN codes")
    }
  })
}

// The README's lines, through the top-level module: w = [[1, -2, 0.5, 4]]
// (one block: scale 4/448, codes 112, -224, 56, 448: all exact E4M3 values),
// so dequantize(w) = w up to the f32 rounding of the scale, and
// [1, 1, 1, 1] . w + 0.5 = 1 - 2 + 0.5 + 4 + 0.5 = 4.0.
pub fn readme_quantized_linear_test() {
  let weight = mat([[1.0, -2.0, 0.5, 4.0], [0.0, 0.0, 0.0, 0.0]])
  let assert Ok(packed) = t.prepack_fp8_weight_blocked(weight, 16)
  expect_equal(tensor.packed_shape(packed), [2, 4], "packed shape")
  let input = mat([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
  let bias = Bias(vec([0.5, -0.5]))
  let assert Ok(output) = t.linear_fp8_w8a16(input, packed, bias)
  expect_equal(tensor.shape(output), [2, 2], "output shape")
  expect_close(tensor.to_list(output), [4.0, -0.5, 2.5, -0.5], 1.0e-6, "output")
  // exactly the f64 product with the dequantized weight, plus the bias
  let w = ok(tensor.dequantize(packed), "dequantize")
  expect_close(
    tensor.to_list(w),
    [1.0, -2.0, 0.5, 4.0, 0.0, 0.0, 0.0, 0.0],
    1.0e-6,
    "dequantized",
  )
  let wt = ok(tensor.transpose(w), "transpose")
  let ref = ok(tensor.matmul(input, wt), "reference")
  let ref = ok(tensor.add(ref, vec([0.5, -0.5])), "reference + bias")
  expect_equal(tensor.to_list(output), tensor.to_list(ref), "f64 reference")
  let assert Ok(no_bias) = t.linear_fp8_w8a16(input, packed, NoBias)
  expect_equal(
    tensor.to_list(no_bias),
    tensor.to_list(ok(tensor.matmul(input, wt), "ref")),
    "no bias",
  )
}

pub fn quant_errors_test() {
  let weight = ok(tensor.ones([4, 8]), "weight")
  expect_invalid(tensor.prepack_fp8_weight_blocked(weight, 0), "block size 0")
  expect_shape_mismatch(
    tensor.prepack_fp8_weight_blocked(vec([1.0]), 16),
    "1-D weight",
  )
  let assert Ok(packed) = tensor.prepack_fp8_weight_blocked(weight, 4)
  expect_shape_mismatch(
    tensor.linear_fp8_w8a16(ok(tensor.ones([2, 5]), "x"), packed, NoBias),
    "input [2,5] for weight [4,8]",
  )
  expect_shape_mismatch(
    tensor.linear_fp8_w8a16(
      ok(tensor.ones([2, 8]), "x"),
      packed,
      Bias(vec([1.0])),
    ),
    "bias [1] for 4 outputs",
  )
  // every row of a [3, 8] input gives 4 outputs
  let out =
    ok(
      tensor.linear_fp8_w8a16(ok(tensor.ones([3, 8]), "x"), packed, NoBias),
      "linear",
    )
  expect_equal(tensor.shape(out), [3, 4], "linear shape")
  // ones . ones = 8, up to the f32 rounding of the scale 1/448
  expect_close(
    tensor.to_list(out),
    map(range(0, 12), fn(_) { 8.0 }),
    1.0e-5,
    "ones . ones",
  )
}
