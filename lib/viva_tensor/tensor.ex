defmodule VivaTensor.Tensor do
  @moduledoc """
  Dense f64 tensors on the BEAM, with no native code: constructors, NumPy-style
  broadcasting arithmetic, `matmul/2`, reductions, `softmax/2` and `rmsnorm/3`.

      {:ok, a} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      {:ok, b} = VivaTensor.Tensor.from_list([[7, 8], [9, 10], [11, 12]])
      {:ok, c} = VivaTensor.Tensor.matmul(a, b)
      VivaTensor.Tensor.to_list(c)
      #=> [[58.0, 64.0], [139.0, 154.0]]

  This module wraps the Erlang core `:viva_tensor_tensor`, which the Gleam API
  (`viva_tensor/tensor`) shares; `ref` is the core's term. Every value is an f64;
  `:f32`, `:bf16` and `:f16` (and `:f64`) appear only at the binary boundary
  (`from_binary/3`, `to_binary/2`, little-endian). A tensor holds at most
  16,777,215 elements.

  Operations take tensors, or numbers where a tensor operand is expected (a number
  is a scalar, broadcast). Axes are integers; a negative axis counts from the end.

  ## Errors

  Every fallible function returns `{:ok, value}` or `{:error, {kind, message}}`:
  `:shape_mismatch` (the message names the operation and both shapes, e.g.
  `"matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ"`) or `:invalid_option`
  (a bad axis, dtype, shape, slice or binary size, or a result that is not a finite
  number: the BEAM has no infinities or NaNs, so an overflow, a division by zero or
  `sqrt/1` of a negative number is an error).
  """

  import Kernel, except: [div: 2, max: 2, min: 2]

  @enforce_keys [:ref, :shape]
  defstruct [:ref, :shape]

  @typedoc "A tensor: `ref` is the core term, `shape` its dimensions (`[]` for a scalar)."
  @type t :: %__MODULE__{ref: term(), shape: [non_neg_integer()]}

  @typedoc "Element format of binary data (little-endian)."
  @type dtype :: :f32 | :bf16 | :f16 | :f64

  @typedoc "A tensor, or a number standing for a scalar tensor."
  @type tensor_like :: t() | number()

  @typedoc "The reason of an `{:error, reason}` tuple."
  @type reason :: {:shape_mismatch | :invalid_option, String.t()}

  @typedoc "The result of an operation that makes a tensor."
  @type result :: {:ok, t()} | {:error, reason()}

  ## Constructors

  @doc """
  A tensor from nested lists of numbers; the nesting gives the shape. A bare number
  is a scalar (shape `[]`).

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      iex> VivaTensor.Tensor.shape(t)
      [2, 3]
      iex> VivaTensor.Tensor.from_list([[1, 2], [3]])
      {:error, {:shape_mismatch, "from_list: ragged nested list: element [1] has 1 elements, expected 2"}}
  """
  @spec from_list(number() | list()) :: result()
  def from_list(list), do: wrap(:viva_tensor_tensor.from_list(list))

  @doc """
  A tensor of the given shape from a flat list of numbers in row-major order.

      iex> {:ok, t} = VivaTensor.Tensor.from_list([1, 2, 3, 4, 5, 6], [3, 2])
      iex> VivaTensor.Tensor.to_list(t)
      [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
  """
  @spec from_list([number()], [non_neg_integer()]) :: result()
  def from_list(flat, shape), do: wrap(:viva_tensor_tensor.from_list(flat, shape))

  @doc """
  A tensor from little-endian binary data of `dtype` (`:f32`, `:bf16`, `:f16` or
  `:f64`). The binary must hold exactly as many values as `shape` has elements;
  infinities and NaNs are refused.

      iex> {:ok, t} = VivaTensor.Tensor.from_binary(<<1.0::float-32-little, -2.5::float-32-little>>, [2], :f32)
      iex> VivaTensor.Tensor.to_list(t)
      [1.0, -2.5]
  """
  @spec from_binary(binary(), [non_neg_integer()], dtype()) :: result()
  def from_binary(binary, shape, dtype),
    do: wrap(:viva_tensor_tensor.from_binary(binary, shape, dtype))

  @doc "A tensor of zeros."
  @spec zeros([non_neg_integer()]) :: result()
  def zeros(shape), do: wrap(:viva_tensor_tensor.zeros(shape))

  @doc "A tensor of ones."
  @spec ones([non_neg_integer()]) :: result()
  def ones(shape), do: wrap(:viva_tensor_tensor.ones(shape))

  @doc """
  A tensor whose every element is `value`.

      iex> {:ok, t} = VivaTensor.Tensor.full([2, 2], 0.5)
      iex> VivaTensor.Tensor.to_list(t)
      [[0.5, 0.5], [0.5, 0.5]]
  """
  @spec full([non_neg_integer()], number()) :: result()
  def full(shape, value), do: wrap(:viva_tensor_tensor.full(shape, value))

  ## Getters and conversions

  @doc "The shape."
  @spec shape(t()) :: [non_neg_integer()]
  def shape(%__MODULE__{shape: shape}), do: shape

  @doc "The number of elements."
  @spec size(t()) :: non_neg_integer()
  def size(%__MODULE__{ref: ref}), do: :viva_tensor_tensor.size(ref)

  @doc """
  The elements as nested lists (a scalar as a bare float).

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 2], [3, 4]])
      iex> VivaTensor.Tensor.to_list(t)
      [[1.0, 2.0], [3.0, 4.0]]
  """
  @spec to_list(t()) :: float() | list()
  def to_list(%__MODULE__{ref: ref}), do: :viva_tensor_tensor.to_list(ref)

  @doc "The elements as one flat list, row-major."
  @spec to_flat_list(t()) :: [float()]
  def to_flat_list(%__MODULE__{ref: ref}), do: :viva_tensor_tensor.to_flat_list(ref)

  @doc """
  The elements as little-endian binary data of `dtype` (default `:f32`), rounded to
  nearest even; values beyond the dtype's range become its infinity.

      iex> {:ok, t} = VivaTensor.Tensor.from_list([1.0, -2.0])
      iex> VivaTensor.Tensor.to_binary(t, :bf16)
      {:ok, <<0x80, 0x3F, 0x00, 0xC0>>}
  """
  @spec to_binary(t(), dtype()) :: {:ok, binary()} | {:error, reason()}
  def to_binary(%__MODULE__{ref: ref}, dtype \\ :f32),
    do: :viva_tensor_tensor.to_binary(ref, dtype)

  ## Shape operations

  @doc """
  The same elements under another shape; one dimension may be `-1` (inferred).

      iex> {:ok, t} = VivaTensor.Tensor.from_list([1, 2, 3, 4, 5, 6])
      iex> {:ok, m} = VivaTensor.Tensor.reshape(t, [-1, 3])
      iex> VivaTensor.Tensor.shape(m)
      [2, 3]
  """
  @spec reshape(t(), [integer()]) :: result()
  def reshape(t, shape), do: wrap(:viva_tensor_tensor.reshape(ref(t), shape))

  @doc """
  The transpose: the axes in reverse order (rows and columns swapped for a matrix).
  With `axes`, the axes permuted: axis `i` of the result is axis `Enum.at(axes, i)`.

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      iex> {:ok, tt} = VivaTensor.Tensor.transpose(t)
      iex> VivaTensor.Tensor.to_list(tt)
      [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
  """
  @spec transpose(t(), [integer()] | nil) :: result()
  def transpose(t, axes \\ nil)
  def transpose(t, nil), do: wrap(:viva_tensor_tensor.transpose(ref(t)))
  def transpose(t, axes), do: wrap(:viva_tensor_tensor.transpose(ref(t), axes))

  @doc """
  The block that starts at `starts` with extent `lengths` (one of each per axis).

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      iex> {:ok, s} = VivaTensor.Tensor.slice(t, [0, 1], [2, 2])
      iex> VivaTensor.Tensor.to_list(s)
      [[2.0, 3.0], [5.0, 6.0]]
  """
  @spec slice(t(), [non_neg_integer()], [non_neg_integer()]) :: result()
  def slice(t, starts, lengths), do: wrap(:viva_tensor_tensor.slice(ref(t), starts, lengths))

  @doc """
  The tensors joined along `axis`; their other dimensions must agree.

      iex> {:ok, a} = VivaTensor.Tensor.from_list([[1, 2]])
      iex> {:ok, c} = VivaTensor.Tensor.concat([a, a], 0)
      iex> VivaTensor.Tensor.to_list(c)
      [[1.0, 2.0], [1.0, 2.0]]
  """
  @spec concat([t()], integer()) :: result()
  def concat(tensors, axis) when is_list(tensors),
    do: wrap(:viva_tensor_tensor.concat(Enum.map(tensors, &ref/1), axis))

  ## Elementwise

  @doc """
  `a + b` with NumPy broadcasting (shapes aligned on the right, each pair of
  dimensions equal or one of them 1).

      iex> {:ok, col} = VivaTensor.Tensor.from_list([[1], [2]])
      iex> {:ok, row} = VivaTensor.Tensor.from_list([10, 20, 30])
      iex> {:ok, s} = VivaTensor.Tensor.add(col, row)
      iex> VivaTensor.Tensor.to_list(s)
      [[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]]
  """
  @spec add(tensor_like(), tensor_like()) :: result()
  def add(a, b), do: wrap(:viva_tensor_tensor.add(ref(a), ref(b)))

  @doc "`a - b`, broadcast."
  @spec sub(tensor_like(), tensor_like()) :: result()
  def sub(a, b), do: wrap(:viva_tensor_tensor.sub(ref(a), ref(b)))

  @doc "`a * b` elementwise, broadcast."
  @spec mul(tensor_like(), tensor_like()) :: result()
  def mul(a, b), do: wrap(:viva_tensor_tensor.mul(ref(a), ref(b)))

  @doc "`a / b` elementwise, broadcast; a division by zero is `:invalid_option`."
  @spec div(tensor_like(), tensor_like()) :: result()
  def div(a, b), do: wrap(:viva_tensor_tensor.div(ref(a), ref(b)))

  @doc "The larger of `a` and `b` elementwise, broadcast."
  @spec maximum(tensor_like(), tensor_like()) :: result()
  def maximum(a, b), do: wrap(:viva_tensor_tensor.maximum(ref(a), ref(b)))

  @doc "The smaller of `a` and `b` elementwise, broadcast."
  @spec minimum(tensor_like(), tensor_like()) :: result()
  def minimum(a, b), do: wrap(:viva_tensor_tensor.minimum(ref(a), ref(b)))

  @doc "Every element times `factor`."
  @spec scale(t(), number()) :: result()
  def scale(t, factor), do: wrap(:viva_tensor_tensor.scale(ref(t), factor))

  @doc "`-x` elementwise."
  @spec neg(t()) :: result()
  def neg(t), do: wrap(:viva_tensor_tensor.neg(ref(t)))

  @doc "`e^x` elementwise (an overflow, x > ~709.78, is `:invalid_option`)."
  @spec exp(t()) :: result()
  def exp(t), do: wrap(:viva_tensor_tensor.exp(ref(t)))

  @doc "The square root elementwise (a negative element is `:invalid_option`)."
  @spec sqrt(t()) :: result()
  def sqrt(t), do: wrap(:viva_tensor_tensor.sqrt(ref(t)))

  @doc "The hyperbolic tangent elementwise."
  @spec tanh(t()) :: result()
  def tanh(t), do: wrap(:viva_tensor_tensor.tanh(ref(t)))

  @doc "`1 / (1 + e^-x)` elementwise, without overflow for any x."
  @spec sigmoid(t()) :: result()
  def sigmoid(t), do: wrap(:viva_tensor_tensor.sigmoid(ref(t)))

  @doc "`x * sigmoid(x)` elementwise (SiLU)."
  @spec silu(t()) :: result()
  def silu(t), do: wrap(:viva_tensor_tensor.silu(ref(t)))

  @doc "`max(x, 0)` elementwise."
  @spec relu(t()) :: result()
  def relu(t), do: wrap(:viva_tensor_tensor.relu(ref(t)))

  ## Matmul, reductions, normalisation

  @doc """
  The matrix product with NumPy's `matmul` rules: `[m, k] x [k, n]` is `[m, n]`; a
  1-D left operand is a row vector and a 1-D right one a column vector (`[k] x [k]`
  is a scalar, `[k] x [k, n]` is `[n]`, `[m, k] x [k]` is `[m]`); leading dimensions
  beyond two are batch dimensions, broadcast (`[b, m, k] x [b, k, n]` is
  `[b, m, n]`). Sums run in f64, left to right.

      iex> {:ok, a} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      iex> VivaTensor.Tensor.matmul(a, a)
      {:error, {:shape_mismatch, "matmul: [2,3] x [2,3]: inner dimensions 3 and 2 differ"}}
  """
  @spec matmul(t(), t()) :: result()
  def matmul(a, b), do: wrap(:viva_tensor_tensor.matmul(ref(a), ref(b)))

  @doc """
  The sum of all elements (`sum/1`), or the sums along `axis`, which is removed
  from the shape (`sum/2`).

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 2, 3], [4, 5, 6]])
      iex> VivaTensor.Tensor.sum(t)
      {:ok, 21.0}
      iex> {:ok, s} = VivaTensor.Tensor.sum(t, 0)
      iex> VivaTensor.Tensor.to_list(s)
      [5.0, 7.0, 9.0]
  """
  @spec sum(t()) :: {:ok, float()} | {:error, reason()}
  def sum(t), do: :viva_tensor_tensor.sum(ref(t))

  @spec sum(t(), integer()) :: result()
  def sum(t, axis), do: wrap(:viva_tensor_tensor.sum(ref(t), axis))

  @doc "The mean along `axis` (an empty axis is `:invalid_option`)."
  @spec mean(t(), integer()) :: result()
  def mean(t, axis), do: wrap(:viva_tensor_tensor.mean(ref(t), axis))

  @doc "The largest element along `axis`."
  @spec max(t(), integer()) :: result()
  def max(t, axis), do: wrap(:viva_tensor_tensor.max(ref(t), axis))

  @doc "The smallest element along `axis`."
  @spec min(t(), integer()) :: result()
  def min(t, axis), do: wrap(:viva_tensor_tensor.min(ref(t), axis))

  @doc """
  The index of the largest element along `axis` (the first on ties), as floats.

      iex> {:ok, t} = VivaTensor.Tensor.from_list([[1, 9, 3], [7, 5, 7]])
      iex> {:ok, i} = VivaTensor.Tensor.argmax(t, 1)
      iex> VivaTensor.Tensor.to_list(i)
      [1.0, 0.0]
  """
  @spec argmax(t(), integer()) :: result()
  def argmax(t, axis), do: wrap(:viva_tensor_tensor.argmax(ref(t), axis))

  @doc """
  Softmax along `axis`, as `exp(x - max) / sum(exp(x - max))` so that no value
  overflows.

      iex> {:ok, t} = VivaTensor.Tensor.from_list([1000.0, 1000.0])
      iex> {:ok, p} = VivaTensor.Tensor.softmax(t, -1)
      iex> VivaTensor.Tensor.to_list(p)
      [0.5, 0.5]
  """
  @spec softmax(t(), integer()) :: result()
  def softmax(t, axis), do: wrap(:viva_tensor_tensor.softmax(ref(t), axis))

  @doc """
  RMS normalisation over the last axis, as Llama's RMSNorm:
  `weight * x / sqrt(mean(x^2) + eps)`; `weight` has the shape `[d]` of the last
  dimension.

      iex> {:ok, x} = VivaTensor.Tensor.from_list([3.0, 4.0])
      iex> {:ok, w} = VivaTensor.Tensor.from_list([1.0, 2.0])
      iex> {:ok, y} = VivaTensor.Tensor.rmsnorm(x, w, 0.0)
      iex> Enum.map(VivaTensor.Tensor.to_list(y), &Float.round(&1, 6))
      [0.848528, 2.262742]
  """
  @spec rmsnorm(t(), t(), number()) :: result()
  def rmsnorm(x, weight, eps), do: wrap(:viva_tensor_tensor.rmsnorm(ref(x), ref(weight), eps))

  ## Internals

  @doc false
  @spec wrap({:ok, term()} | {:error, reason()}) :: result()
  def wrap({:ok, ref}), do: {:ok, from_ref(ref)}
  def wrap({:error, _} = error), do: error

  @doc false
  @spec from_ref(term()) :: t()
  def from_ref(ref), do: %__MODULE__{ref: ref, shape: :viva_tensor_tensor.shape(ref)}

  @doc false
  @spec ref(tensor_like()) :: term()
  def ref(%__MODULE__{ref: ref}), do: ref

  def ref(x) when is_number(x) do
    {:ok, ref} = :viva_tensor_tensor.from_list(x)
    ref
  end

  def ref(other) do
    raise ArgumentError, "expected a VivaTensor.Tensor or a number, got: #{inspect(other)}"
  end

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(%VivaTensor.Tensor{shape: shape} = t, opts) do
      values = :viva_tensor_tensor.to_flat_list(t.ref)
      shown = Enum.take(values, 6)
      more = if length(values) > length(shown), do: [string("...")], else: []

      items = Enum.map(shown, &to_doc(&1, opts)) ++ more

      concat([
        string("#VivaTensor.Tensor<f64#{Kernel.inspect(shape, charlists: :as_lists)} "),
        container_doc("[", items, "]", opts, fn doc, _ -> doc end, separator: ","),
        string(">")
      ])
    end
  end
end
