defmodule VivaTensor.Quant do
  @moduledoc """
  The low-level quantized-linear API: FP8 E4M3 weight-only quantization with one
  scale per block of a row (W8A16), on `VivaTensor.Tensor`s.

      {:ok, weight} = VivaTensor.Tensor.from_list([[1.0, -2.0, 0.5, 4.0], [0.0, 0.0, 0.0, 0.0]])
      {:ok, packed} = VivaTensor.Quant.prepack_fp8_weight_blocked(weight, 16)
      {:ok, input} = VivaTensor.Tensor.from_list([[1.0, 1.0, 1.0, 1.0]])
      {:ok, bias} = VivaTensor.Tensor.from_list([0.5, -0.5])
      {:ok, output} = VivaTensor.Quant.linear_fp8_w8a16(input, packed, bias)
      VivaTensor.Tensor.to_list(output)
      #=> [[4.0000001564621925, -0.5]]  (4.0 up to the f32 rounding of the scale 4/448)

  The quantization (`prepack_fp8_weight_blocked/2`): per row of the weight `[n, k]`
  and per block of `block_size` consecutive elements (16 is the usual size; a row's
  last block is shorter when `block_size` does not divide `k`),
  `scale = max|w| / 448` rounded to f32 (1.0 for an all-zero block) and
  `q = e4m3(w / scale)`, where `e4m3` rounds to the nearest E4M3FN value (1 sign,
  4 exponent bits with bias 7, 3 mantissa bits, subnormals, no infinities), ties to
  even, saturating at ±448.

  The product (`linear_fp8_w8a16/3`): `input · dequantize(packed)ᵀ + bias`, with the
  activations 16-bit as in the native kernels ("A16"): every input value is first
  rounded to bf16, then products and sums are f64.

  This module wraps the Erlang core `:viva_tensor_tensor`; it runs on the BEAM
  whatever the backend.
  """

  alias VivaTensor.Tensor

  defmodule PackedWeight do
    @moduledoc """
    A weight quantized by `VivaTensor.Quant.prepack_fp8_weight_blocked/2`: `ref` is
    the core's term (E4M3 codes and f32 block scales), `shape` the `[n, k]` of the
    weight it stands for, `block_size` the elements per scale.
    """
    @enforce_keys [:ref, :shape, :block_size]
    defstruct [:ref, :shape, :block_size]

    @type t :: %__MODULE__{ref: term(), shape: [non_neg_integer()], block_size: pos_integer()}

    defimpl Inspect do
      def inspect(%{shape: [n, k], block_size: block}, _opts) do
        "#VivaTensor.Quant.PackedWeight<fp8_e4m3[#{n}, #{k}] block_size: #{block}>"
      end
    end
  end

  @typedoc "The reason of an `{:error, reason}` tuple."
  @type reason :: {:shape_mismatch | :invalid_option, String.t()}

  @doc """
  Quantizes a weight `[n, k]` (one row per output feature) to FP8 E4M3 with one
  f32 scale per row and per block of `block_size` elements.

      iex> {:ok, w} = VivaTensor.Tensor.from_list([[1.0, -2.0, 0.5, 4.0]])
      iex> {:ok, packed} = VivaTensor.Quant.prepack_fp8_weight_blocked(w, 16)
      iex> packed.shape
      [1, 4]
      iex> VivaTensor.Quant.prepack_fp8_weight_blocked(w, 0)
      {:error, {:invalid_option, "prepack_fp8_weight_blocked: block size must be an integer >= 1, got 0"}}
  """
  @spec prepack_fp8_weight_blocked(Tensor.t(), pos_integer()) ::
          {:ok, PackedWeight.t()} | {:error, reason()}
  def prepack_fp8_weight_blocked(%Tensor{ref: ref}, block_size) do
    case :viva_tensor_tensor.prepack_fp8_weight_blocked(ref, block_size) do
      {:ok, packed} ->
        {n, k, block} = :viva_tensor_tensor.packed_info(packed)
        {:ok, %PackedWeight{ref: packed, shape: [n, k], block_size: block}}

      {:error, _} = error ->
        error
    end
  end

  @doc """
  `input · dequantize(packed)ᵀ + bias`: `input` `[m, k]` (or `[k]`), `bias` `[n]` or
  `nil`; the result is `[m, n]` (or `[n]`). Input values are rounded to bf16 first.

      iex> {:ok, w} = VivaTensor.Tensor.from_list([[1.0, 2.0], [3.0, 4.0]])
      iex> {:ok, packed} = VivaTensor.Quant.prepack_fp8_weight_blocked(w, 16)
      iex> {:ok, x} = VivaTensor.Tensor.from_list([[1.0, 1.0, 1.0]])
      iex> VivaTensor.Quant.linear_fp8_w8a16(x, packed, nil)
      {:error, {:shape_mismatch, "linear_fp8_w8a16: input [1,3] x weight [2,2]: inner dimensions 3 and 2 differ"}}
  """
  @spec linear_fp8_w8a16(Tensor.t(), PackedWeight.t(), Tensor.t() | nil) ::
          {:ok, Tensor.t()} | {:error, reason()}
  def linear_fp8_w8a16(%Tensor{ref: input}, %PackedWeight{ref: packed}, bias) do
    bias_ref =
      case bias do
        nil -> :none
        %Tensor{ref: ref} -> ref
      end

    Tensor.wrap(:viva_tensor_tensor.linear_fp8_w8a16(input, packed, bias_ref))
  end

  @doc """
  The weight `[n, k]` a packed weight stands for: each code's E4M3 value times its
  block's scale (exact).
  """
  @spec dequantize(PackedWeight.t()) :: {:ok, Tensor.t()} | {:error, reason()}
  def dequantize(%PackedWeight{ref: packed}),
    do: Tensor.wrap(:viva_tensor_tensor.dequantize(packed))

  @doc """
  The E4M3FN code (0..255) of a number: round to nearest even, saturating at ±448.

      iex> Enum.map([448.0, 1.0, 0.001953125, -2.0], &VivaTensor.Quant.e4m3_encode/1)
      [0x7E, 0x38, 0x01, 0xC0]
  """
  @spec e4m3_encode(number()) :: 0..255
  def e4m3_encode(x), do: :viva_tensor_tensor.e4m3_encode(x)

  @doc """
  The value of an E4M3FN code (`:nan` for 0x7F and 0xFF).

      iex> VivaTensor.Quant.e4m3_decode(0x2A)
      0.3125
  """
  @spec e4m3_decode(0..255) :: float() | :nan
  def e4m3_decode(code), do: :viva_tensor_tensor.e4m3_decode(code)
end
