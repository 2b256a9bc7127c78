//// Dense f64 tensors on the BEAM, with no native code: constructors,
//// NumPy-style broadcasting arithmetic, `matmul`, reductions, `softmax`,
//// `rmsnorm`, and the FP8 E4M3 weight-only quantized linear (W8A16).
////
//// This module is a typed wrapper over the Erlang core `viva_tensor_tensor`,
//// which the Elixir API (`VivaTensor.Tensor`) shares. Every value is an f64;
//// f32 / bf16 / f16 appear only at the binary boundary (`from_binary`,
//// `to_binary`). Tensors hold at most 16,777,215 elements.
////
//// ```gleam
//// import viva_tensor/tensor
////
//// let assert Ok(a) = tensor.from_list2d([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
//// let assert Ok(b) = tensor.from_list2d([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
//// let assert Ok(c) = tensor.matmul(a, b)
//// tensor.to_list(c)  // [58.0, 64.0, 139.0, 154.0]
//// tensor.shape(c)    // [2, 2]
//// ```
////
//// Axes are `Int`s; a negative axis counts from the end (`-1` is the last).

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// An immutable tensor of f64 values with a shape (`[]` for a scalar).
pub type Tensor

/// A weight `[n, k]` quantized by `prepack_fp8_weight_blocked`: E4M3FN codes
/// with one f32 scale per block of consecutive elements of each row.
pub type PackedWeight

/// Raw bytes (an Erlang binary: the same runtime value as a Gleam `BitArray`).
/// Build them with `bytes_from_list`, or get them from `to_binary`.
pub type Bytes

/// What went wrong.
pub type TensorError {
  /// The shapes of the operands do not fit the operation; the message names
  /// the operation and the shapes, e.g.
  /// `"matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ"`.
  ShapeMismatch(String)
  /// A bad argument: an axis out of range, a bad shape, slice or block size,
  /// a binary of the wrong size, or a result that is not a finite number
  /// (overflow, division by zero, `sqrt` of a negative number: the BEAM has
  /// no infinities or NaNs).
  InvalidArgument(String)
}

/// Element formats of binary data (little-endian).
pub type Dtype {
  /// IEEE binary32.
  F32
  /// bfloat16 (the upper half of an f32).
  Bf16
  /// IEEE binary16.
  F16
  /// IEEE binary64.
  F64
}

/// The optional bias of `linear_fp8_w8a16`.
pub type Bias {
  /// A bias of shape `[n]`, added to every output row.
  Bias(Tensor)
  /// No bias.
  NoBias
}

// ---------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------

/// A 1-D tensor.
///
/// ```gleam
/// let assert Ok(v) = tensor.from_list([1.0, 2.0, 3.0])
/// tensor.shape(v)  // [3]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "from_list")
pub fn from_list(values: List(Float)) -> Result(Tensor, TensorError)

/// A 2-D tensor from its rows, which must all have the same length.
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
/// tensor.shape(m)  // [3, 2]
/// let assert Error(tensor.ShapeMismatch(_)) = tensor.from_list2d([[1.0], []])
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "from_list2d")
pub fn from_list2d(rows: List(List(Float))) -> Result(Tensor, TensorError)

/// A tensor of any shape from its values in row-major order.
///
/// ```gleam
/// let assert Ok(t) = tensor.from_flat_list([1.0, 2.0, 3.0, 4.0], [2, 1, 2])
/// let assert Error(tensor.ShapeMismatch(_)) =
///   tensor.from_flat_list([1.0, 2.0, 3.0], [2, 2])
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "from_flat_list")
pub fn from_flat_list(
  values: List(Float),
  shape: List(Int),
) -> Result(Tensor, TensorError)

/// A scalar (shape `[]`).
///
/// ```gleam
/// tensor.shape(tensor.scalar(2.5))  // []
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "scalar")
pub fn scalar(value: Float) -> Tensor

/// A tensor from little-endian binary data. The data must hold exactly as
/// many values as the shape has elements; infinities and NaNs are refused.
///
/// ```gleam
/// // bf16 1.0 and -2.0
/// let data = tensor.bytes_from_list([0x80, 0x3F, 0x00, 0xC0])
/// let assert Ok(t) = tensor.from_binary(data, [2], tensor.Bf16)
/// tensor.to_list(t)  // [1.0, -2.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "from_binary")
pub fn from_binary(
  data: Bytes,
  shape: List(Int),
  dtype: Dtype,
) -> Result(Tensor, TensorError)

/// A tensor of zeros.
///
/// ```gleam
/// let assert Ok(z) = tensor.zeros([2, 3])
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "zeros")
pub fn zeros(shape: List(Int)) -> Result(Tensor, TensorError)

/// A tensor of ones.
///
/// ```gleam
/// let assert Ok(o) = tensor.ones([4])
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "ones")
pub fn ones(shape: List(Int)) -> Result(Tensor, TensorError)

/// A tensor whose every element is `value`.
///
/// ```gleam
/// let assert Ok(t) = tensor.full([2, 2], 0.5)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "full")
pub fn full(shape: List(Int), value: Float) -> Result(Tensor, TensorError)

// ---------------------------------------------------------------------------
// Getters and conversions
// ---------------------------------------------------------------------------

/// The shape.
///
/// ```gleam
/// let assert Ok(m) = tensor.zeros([2, 3])
/// tensor.shape(m)  // [2, 3]
/// ```
@external(erlang, "viva_tensor_tensor", "shape")
pub fn shape(t: Tensor) -> List(Int)

/// The number of elements.
///
/// ```gleam
/// let assert Ok(m) = tensor.zeros([2, 3])
/// tensor.size(m)  // 6
/// ```
@external(erlang, "viva_tensor_tensor", "size")
pub fn size(t: Tensor) -> Int

/// All elements in row-major order.
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0], [3.0, 4.0]])
/// tensor.to_list(m)  // [1.0, 2.0, 3.0, 4.0]
/// ```
@external(erlang, "viva_tensor_tensor", "to_flat_list")
pub fn to_list(t: Tensor) -> List(Float)

/// The rows of a 2-D tensor.
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0], [3.0, 4.0]])
/// let assert Ok(t) = tensor.transpose(m)
/// tensor.to_list2d(t)  // Ok([[1.0, 3.0], [2.0, 4.0]])
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "to_list2d")
pub fn to_list2d(t: Tensor) -> Result(List(List(Float)), TensorError)

/// The elements as little-endian binary data, rounded to nearest even;
/// values beyond the range of `dtype` become its infinity.
///
/// ```gleam
/// let assert Ok(v) = tensor.from_list([1.0, -2.0])
/// tensor.bytes_to_list(tensor.to_binary(v, tensor.Bf16))  // [0x80, 0x3F, 0x00, 0xC0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "to_binary")
pub fn to_binary(t: Tensor, dtype: Dtype) -> Bytes

/// Bytes from a list of integers 0..255.
///
/// ```gleam
/// tensor.bytes_from_list([0x00, 0x00, 0x80, 0x3F])  // f32 1.0
/// ```
@external(erlang, "erlang", "list_to_binary")
pub fn bytes_from_list(bytes: List(Int)) -> Bytes

/// The bytes as a list of integers 0..255.
///
/// ```gleam
/// tensor.bytes_to_list(tensor.bytes_from_list([1, 2]))  // [1, 2]
/// ```
@external(erlang, "erlang", "binary_to_list")
pub fn bytes_to_list(bytes: Bytes) -> List(Int)

/// The number of bytes.
///
/// ```gleam
/// tensor.bytes_size(tensor.bytes_from_list([1, 2]))  // 2
/// ```
@external(erlang, "erlang", "byte_size")
pub fn bytes_size(bytes: Bytes) -> Int

// ---------------------------------------------------------------------------
// Shape operations
// ---------------------------------------------------------------------------

/// The same elements under another shape; one dimension may be `-1`, inferred
/// from the others.
///
/// ```gleam
/// let assert Ok(v) = tensor.from_list([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
/// let assert Ok(m) = tensor.reshape(v, [-1, 3])
/// tensor.shape(m)  // [2, 3]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "reshape")
pub fn reshape(t: Tensor, shape: List(Int)) -> Result(Tensor, TensorError)

/// The transpose: the axes in reverse order (rows and columns swapped for a
/// matrix).
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
/// let assert Ok(t) = tensor.transpose(m)
/// tensor.to_list(t)  // [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "transpose")
pub fn transpose(t: Tensor) -> Result(Tensor, TensorError)

/// The axes permuted: axis `i` of the result is axis `axes[i]` of `t`.
///
/// ```gleam
/// let assert Ok(t) = tensor.zeros([2, 3, 4])
/// let assert Ok(p) = tensor.permute(t, [2, 0, 1])
/// tensor.shape(p)  // [4, 2, 3]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "transpose_axes")
pub fn permute(t: Tensor, axes: List(Int)) -> Result(Tensor, TensorError)

/// The block that starts at `starts` with extent `lengths` (one of each per
/// axis).
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
/// let assert Ok(s) = tensor.slice(m, [0, 1], [2, 2])
/// tensor.to_list(s)  // [2.0, 3.0, 5.0, 6.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "slice")
pub fn slice(
  t: Tensor,
  starts: List(Int),
  lengths: List(Int),
) -> Result(Tensor, TensorError)

/// The tensors joined along `axis`; their other dimensions must agree.
///
/// ```gleam
/// let assert Ok(a) = tensor.from_list2d([[1.0, 2.0]])
/// let assert Ok(b) = tensor.from_list2d([[3.0, 4.0]])
/// let assert Ok(c) = tensor.concat([a, b], 0)
/// tensor.shape(c)  // [2, 2]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "concat")
pub fn concat(tensors: List(Tensor), axis: Int) -> Result(Tensor, TensorError)

// ---------------------------------------------------------------------------
// Elementwise arithmetic (NumPy broadcasting: shapes aligned on the right,
// each pair of dimensions equal or one of them 1)
// ---------------------------------------------------------------------------

/// `a + b`, broadcast.
///
/// ```gleam
/// let assert Ok(col) = tensor.from_list2d([[1.0], [2.0]])       // [2, 1]
/// let assert Ok(row) = tensor.from_list([10.0, 20.0, 30.0])     // [3]
/// let assert Ok(s) = tensor.add(col, row)                       // [2, 3]
/// tensor.to_list(s)  // [11.0, 21.0, 31.0, 12.0, 22.0, 32.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "add")
pub fn add(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// `a - b`, broadcast.
///
/// ```gleam
/// let assert Ok(d) = tensor.sub(a, b)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "sub")
pub fn sub(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// `a * b` elementwise, broadcast.
///
/// ```gleam
/// let assert Ok(p) = tensor.mul(a, b)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "mul")
pub fn mul(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// `a / b` elementwise, broadcast; a division by zero is an
/// `InvalidArgument` error.
///
/// ```gleam
/// let assert Ok(q) = tensor.div(a, b)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "div")
pub fn div(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// The larger of `a` and `b` elementwise, broadcast.
///
/// ```gleam
/// let assert Ok(m) = tensor.maximum(a, b)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "maximum")
pub fn maximum(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// The smaller of `a` and `b` elementwise, broadcast.
///
/// ```gleam
/// let assert Ok(m) = tensor.minimum(a, b)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "minimum")
pub fn minimum(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// Every element times `factor`.
///
/// ```gleam
/// let assert Ok(v) = tensor.from_list([1.0, 2.0])
/// let assert Ok(h) = tensor.scale(v, 0.5)  // [0.5, 1.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "scale")
pub fn scale(t: Tensor, factor: Float) -> Result(Tensor, TensorError)

/// `-x` elementwise.
///
/// ```gleam
/// let assert Ok(n) = tensor.neg(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "neg")
pub fn neg(t: Tensor) -> Result(Tensor, TensorError)

/// `e^x` elementwise; an overflow (x > ~709.78) is an `InvalidArgument`.
///
/// ```gleam
/// let assert Ok(e) = tensor.exp(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "exp")
pub fn exp(t: Tensor) -> Result(Tensor, TensorError)

/// The square root elementwise; a negative element is an `InvalidArgument`.
///
/// ```gleam
/// let assert Ok(r) = tensor.sqrt(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "sqrt")
pub fn sqrt(t: Tensor) -> Result(Tensor, TensorError)

/// The hyperbolic tangent elementwise.
///
/// ```gleam
/// let assert Ok(h) = tensor.tanh(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "tanh")
pub fn tanh(t: Tensor) -> Result(Tensor, TensorError)

/// `1 / (1 + e^-x)` elementwise, without overflow for any x.
///
/// ```gleam
/// let assert Ok(s) = tensor.sigmoid(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "sigmoid")
pub fn sigmoid(t: Tensor) -> Result(Tensor, TensorError)

/// `x * sigmoid(x)` elementwise (SiLU, as in Llama's MLP).
///
/// ```gleam
/// let assert Ok(s) = tensor.silu(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "silu")
pub fn silu(t: Tensor) -> Result(Tensor, TensorError)

/// `max(x, 0)` elementwise.
///
/// ```gleam
/// let assert Ok(r) = tensor.relu(t)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "relu")
pub fn relu(t: Tensor) -> Result(Tensor, TensorError)

// ---------------------------------------------------------------------------
// Matmul, reductions, normalisation
// ---------------------------------------------------------------------------

/// The matrix product, with NumPy's `matmul` rules: `[m, k] x [k, n]` is
/// `[m, n]`; a 1-D left operand is a row vector and a 1-D right one a column
/// vector (`[k] x [k]` is a scalar, `[k] x [k, n]` is `[n]`, `[m, k] x [k]`
/// is `[m]`); leading dimensions beyond two are batch dimensions, broadcast
/// (`[b, m, k] x [b, k, n]` is `[b, m, n]`). Sums run in f64, left to right.
///
/// ```gleam
/// let assert Ok(a) = tensor.from_list2d([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
/// let assert Ok(b) = tensor.from_list2d([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
/// let assert Ok(c) = tensor.matmul(a, b)
/// tensor.to_list(c)  // [58.0, 64.0, 139.0, 154.0]
/// let assert Error(tensor.ShapeMismatch(_)) = tensor.matmul(a, a)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "matmul")
pub fn matmul(a: Tensor, b: Tensor) -> Result(Tensor, TensorError)

/// The sum of all elements.
///
/// ```gleam
/// let assert Ok(v) = tensor.from_list([1.0, 2.0, 3.5])
/// tensor.sum_all(v)  // Ok(6.5)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "sum_all")
pub fn sum_all(t: Tensor) -> Result(Float, TensorError)

/// Sums along `axis`, which is removed from the shape.
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
/// let assert Ok(s) = tensor.sum(m, 0)
/// tensor.to_list(s)  // [5.0, 7.0, 9.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "sum")
pub fn sum(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// The mean along `axis` (an empty axis is an `InvalidArgument`).
///
/// ```gleam
/// let assert Ok(m) = tensor.mean(t, -1)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "mean")
pub fn mean(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// The largest element along `axis`.
///
/// ```gleam
/// let assert Ok(m) = tensor.max(t, 1)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "max")
pub fn max(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// The smallest element along `axis`.
///
/// ```gleam
/// let assert Ok(m) = tensor.min(t, 1)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "min")
pub fn min(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// The index of the largest element along `axis` (the first on ties), as
/// floats.
///
/// ```gleam
/// let assert Ok(m) = tensor.from_list2d([[1.0, 9.0, 3.0], [7.0, 5.0, 7.0]])
/// let assert Ok(i) = tensor.argmax(m, 1)
/// tensor.to_list(i)  // [1.0, 0.0]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "argmax")
pub fn argmax(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// Softmax along `axis`, computed as `exp(x - max) / sum(exp(x - max))` so
/// that no value overflows.
///
/// ```gleam
/// let assert Ok(logits) = tensor.from_list2d([[1.0, 2.0, 3.0]])
/// let assert Ok(p) = tensor.softmax(logits, -1)
/// // [0.0900306, 0.2447285, 0.6652410]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "softmax")
pub fn softmax(t: Tensor, axis: Int) -> Result(Tensor, TensorError)

/// RMS normalisation over the last axis, as Llama's RMSNorm:
/// `weight * x / sqrt(mean(x^2) + eps)`; `weight` has the shape `[d]` of the
/// last dimension.
///
/// ```gleam
/// let assert Ok(x) = tensor.from_list([3.0, 4.0])
/// let assert Ok(w) = tensor.from_list([1.0, 2.0])
/// let assert Ok(y) = tensor.rmsnorm(x, w, 0.0)
/// tensor.to_list(y)  // [0.848528..., 2.262742...]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "rmsnorm")
pub fn rmsnorm(
  x: Tensor,
  weight: Tensor,
  eps: Float,
) -> Result(Tensor, TensorError)

// ---------------------------------------------------------------------------
// FP8 W8A16 quantized linear
// ---------------------------------------------------------------------------

/// Quantizes a weight `[n, k]` (one row per output feature) to FP8 E4M3FN
/// with one f32 scale per row and per block of `block_size` consecutive
/// elements (16 is the usual size; a row's last block is shorter when
/// `block_size` does not divide `k`): `scale = max|w| / 448` (1.0 for an
/// all-zero block), `q = e4m3(w / scale)`, rounded to nearest even and
/// saturating at ±448.
///
/// ```gleam
/// let assert Ok(weight) = tensor.from_list2d([[1.0, -2.0, 0.5, 4.0]])
/// let assert Ok(packed) = tensor.prepack_fp8_weight_blocked(weight, 16)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "prepack_fp8_weight_blocked")
pub fn prepack_fp8_weight_blocked(
  weight: Tensor,
  block_size: Int,
) -> Result(PackedWeight, TensorError)

/// `input · dequantize(packed)ᵀ + bias`: input `[m, k]` (or `[k]`), bias
/// `[n]`, result `[m, n]` (or `[n]`). The activations are 16-bit ("A16"):
/// each input value is first rounded to bf16 (nearest even); products and
/// sums are then f64.
///
/// ```gleam
/// let assert Ok(packed) = tensor.prepack_fp8_weight_blocked(weight, 16)
/// let assert Ok(input) = tensor.from_list2d([[1.0, 1.0, 1.0, 1.0]])
/// let assert Ok(output) = tensor.linear_fp8_w8a16(input, packed, tensor.NoBias)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "linear_fp8_w8a16")
pub fn linear_fp8_w8a16(
  input: Tensor,
  packed: PackedWeight,
  bias: Bias,
) -> Result(Tensor, TensorError)

/// The weight a `PackedWeight` stands for, `[n, k]`: each code's E4M3 value
/// times its block's scale (exact).
///
/// ```gleam
/// let assert Ok(w) = tensor.dequantize(packed)
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "dequantize")
pub fn dequantize(packed: PackedWeight) -> Result(Tensor, TensorError)

/// The `[n, k]` shape of the weight a `PackedWeight` stands for.
///
/// ```gleam
/// tensor.packed_shape(packed)  // [1, 4]
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "packed_shape")
pub fn packed_shape(packed: PackedWeight) -> List(Int)

/// The E4M3FN code (0..255) of a value: round to nearest even, saturating
/// at ±448.
///
/// ```gleam
/// tensor.e4m3_encode(1.0)    // 0x38
/// tensor.e4m3_encode(448.0)  // 0x7E
/// tensor.e4m3_encode(0.3)    // 0x2A, which stands for 0.3125
/// ```
@external(erlang, "viva_tensor_tensor", "e4m3_encode")
pub fn e4m3_encode(value: Float) -> Int

/// The value of an E4M3FN code; `Error(Nil)` for the NaN codes 0x7F and
/// 0xFF.
///
/// ```gleam
/// tensor.e4m3_decode(0x7E)  // Ok(448.0)
/// tensor.e4m3_decode(0x01)  // Ok(0.001953125), 2^-9
/// ```
@external(erlang, "viva_tensor_tensor_ffi", "e4m3_decode")
pub fn e4m3_decode(code: Int) -> Result(Float, Nil)
