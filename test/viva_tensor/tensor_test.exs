defmodule VivaTensor.TensorTest do
  # VivaTensor.Tensor and VivaTensor.Quant against hand-worked examples and f64
  # references computed here; pure BEAM, so the same with and without the NIF.
  use ExUnit.Case, async: true

  import VivaTensor.TestSupport, only: [assert_error: 2]

  alias VivaTensor.{Quant, Tensor}

  doctest VivaTensor.Tensor
  doctest VivaTensor.Quant

  defp t!(list) do
    {:ok, t} = Tensor.from_list(list)
    t
  end

  defp ok!({:ok, value}), do: value

  defp assert_close(got, want, tol \\ 1.0e-12)

  defp assert_close(got, want, tol) when is_list(got) and is_list(want) do
    assert length(got) == length(want), "lengths differ: #{inspect(got)} vs #{inspect(want)}"
    Enum.zip(got, want) |> Enum.each(fn {g, w} -> assert_close(g, w, tol) end)
  end

  defp assert_close(got, want, tol) when is_number(got) and is_number(want) do
    assert abs(got - want) <= tol * max(1.0, abs(want)), "#{got} is not close to #{want}"
  end

  # deterministic floats in [-1, 1)
  defp rnd(n, seed) do
    state = :rand.seed_s(:exsss, {seed, 7, 11})

    {values, _} =
      Enum.map_reduce(1..n, state, fn _, s ->
        {u, s} = :rand.uniform_s(s)
        {2 * u - 1, s}
      end)

    values
  end

  # f64 reference [m, k] x [k, n] on nested lists
  defp ref_matmul(a, b) do
    cols = Enum.zip_with(b, & &1)
    for row <- a, do: for(col <- cols, do: Enum.zip_reduce(row, col, 0.0, &(&1 * &2 + &3)))
  end

  describe "constructors and conversions" do
    test "nested lists give the shape" do
      t = t!([[1, 2, 3], [4, 5, 6]])
      assert Tensor.shape(t) == [2, 3]
      assert t.shape == [2, 3]
      assert Tensor.size(t) == 6
      assert Tensor.to_list(t) == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
      assert Tensor.to_flat_list(t) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      assert Tensor.shape(t!(2.5)) == []
      assert Tensor.to_list(t!(2.5)) == 2.5
      assert Tensor.shape(t!([])) == [0]
    end

    test "flat list with a shape, zeros, ones, full" do
      assert Tensor.to_list(ok!(Tensor.from_list([1, 2, 3, 4, 5, 6], [3, 2]))) ==
               [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]

      assert Tensor.to_list(ok!(Tensor.zeros([2, 2]))) == [[0.0, 0.0], [0.0, 0.0]]
      assert Tensor.to_list(ok!(Tensor.ones([3]))) == [1.0, 1.0, 1.0]
      assert Tensor.to_list(ok!(Tensor.full([1, 2], -1.5))) == [[-1.5, -1.5]]
    end

    test "constructor errors" do
      assert assert_error(Tensor.from_list([[1, 2], [3]]), :shape_mismatch) =~ "ragged"
      assert assert_error(Tensor.from_list([1, :x]), :invalid_option) =~ "not a number"
      assert assert_error(Tensor.from_list([1, 2, 3], [2, 2]), :shape_mismatch) =~ "[2,2]"
      assert assert_error(Tensor.zeros([2, -1]), :invalid_option) =~ "shape"
    end

    # bf16 is the top half of an f32: 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00,
    # 3.140625 = 201/64 = 0x4049, 65280 = 255 * 2^8 = 0x477F, -2^-7 = 0xBC00.
    test "bf16 round trip of exactly representable values" do
      bin = <<0x80, 0x3F, 0x00, 0xC0, 0x00, 0x3F, 0x49, 0x40, 0x7F, 0x47, 0x00, 0xBC>>
      values = [1.0, -2.0, 0.5, 3.140625, 65280.0, -0.0078125]
      t = ok!(Tensor.from_list(values, [3, 2]))
      assert Tensor.to_binary(t, :bf16) == {:ok, bin}
      back = ok!(Tensor.from_binary(bin, [3, 2], :bf16))
      assert Tensor.shape(back) == [3, 2]
      assert Tensor.to_flat_list(back) == values
    end

    # f32 and f16 bytes: 1.5 = 0x3FC00000; f16 1.0 = 0x3C00, -2.5 = 0xC100, 65504 = 0x7BFF
    test "f32, f16 and f64 binaries" do
      t = t!([1.5, -2.5])
      assert Tensor.to_binary(t) == {:ok, <<1.5::float-32-little, -2.5::float-32-little>>}
      assert Tensor.to_binary(t, :f64) == {:ok, <<1.5::float-64-little, -2.5::float-64-little>>}

      f16 = <<0x3C00::little-16, 0xC100::little-16, 0x7BFF::little-16>>
      assert Tensor.to_flat_list(ok!(Tensor.from_binary(f16, [3], :f16))) == [1.0, -2.5, 65504.0]
      assert Tensor.to_binary(t!([1.0, -2.5, 65504.0]), :f16) == {:ok, f16}
    end

    test "binary errors" do
      assert assert_error(Tensor.from_binary(<<0, 0, 0>>, [1], :f32), :invalid_option) =~
               "3 bytes"

      assert assert_error(Tensor.from_binary(<<0, 0>>, [1], :fp8), :invalid_option) =~ "dtype"

      assert assert_error(Tensor.from_binary(<<0x7F80::little-16>>, [1], :bf16), :invalid_option) =~
               "finite"

      assert assert_error(Tensor.to_binary(t!([1.0]), :int8), :invalid_option) =~ "dtype"
    end

    test "inspect shows the shape and the first values" do
      assert inspect(t!([[1, 2, 3], [4, 5, 6], [7, 8, 9]])) ==
               "#VivaTensor.Tensor<f64[3, 3] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, ...]>"

      assert inspect(t!([10, 13])) == "#VivaTensor.Tensor<f64[2] [10.0, 13.0]>"
    end
  end

  describe "shape operations" do
    test "reshape, transpose, slice, concat" do
      t = t!([[1, 2, 3], [4, 5, 6]])
      assert Tensor.shape(ok!(Tensor.reshape(t, [3, -1]))) == [3, 2]
      assert Tensor.to_list(ok!(Tensor.transpose(t))) == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
      cube = ok!(Tensor.zeros([2, 3, 4]))
      assert Tensor.shape(ok!(Tensor.transpose(cube, [2, 0, 1]))) == [4, 2, 3]
      assert Tensor.to_list(ok!(Tensor.slice(t, [1, 0], [1, 2]))) == [[4.0, 5.0]]

      assert Tensor.to_list(ok!(Tensor.concat([t, t], 0))) ==
               [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    end

    test "shape errors" do
      t = t!([[1, 2, 3], [4, 5, 6]])
      assert assert_error(Tensor.reshape(t, [4, 2]), :shape_mismatch) =~ "[2,3]"
      assert assert_error(Tensor.reshape(t, [-1, -1]), :invalid_option) =~ "-1"
      assert assert_error(Tensor.transpose(t, [0, 0]), :invalid_option) =~ "permutation"
      assert assert_error(Tensor.slice(t, [0, 2], [1, 2]), :invalid_option) =~ "axis 1"
      assert assert_error(Tensor.concat([t, t!([1])], 0), :shape_mismatch) =~ "[2,3] and [1]"
      assert assert_error(Tensor.concat([], 0), :invalid_option) =~ "no tensors"
    end
  end

  describe "elementwise" do
    # [2,1] op [3] -> [2,3]: out[i][j] = col[i] op row[j]
    test "broadcasting against index loops" do
      col = [[1.5], [-2.0]]
      row = [10.0, 20.0, -30.0]

      for {fun, op} <- [
            {&Tensor.add/2, &+/2},
            {&Tensor.sub/2, &-/2},
            {&Tensor.mul/2, &*/2},
            {&Tensor.div/2, &//2},
            {&Tensor.maximum/2, &max/2},
            {&Tensor.minimum/2, &min/2}
          ] do
        want = for [c] <- col, do: for(r <- row, do: op.(c, r))
        assert Tensor.to_list(ok!(fun.(t!(col), t!(row)))) == want
      end

      assert Tensor.shape(ok!(Tensor.add(ok!(Tensor.ones([4, 1, 3])), ok!(Tensor.ones([2, 1]))))) ==
               [4, 2, 3]

      # numbers are scalars
      assert Tensor.to_list(ok!(Tensor.mul(t!(row), 2))) == [20.0, 40.0, -60.0]
      assert Tensor.to_list(ok!(Tensor.sub(1, t!(row)))) == [-9.0, -19.0, 31.0]
    end

    test "broadcast errors name the op and both shapes" do
      assert assert_error(Tensor.add(t!([[1, 2, 3], [4, 5, 6]]), t!([1, 2])), :shape_mismatch) ==
               "add: [2,3] and [2] do not broadcast (dimension 3 vs 2)"
    end

    test "unary ops against :math" do
      xs = [-3.0, -0.5, 0.0, 0.25, 2.0]
      t = t!(xs)
      sig = fn x -> 1 / (1 + :math.exp(-x)) end
      assert_close(Tensor.to_list(ok!(Tensor.exp(t))), Enum.map(xs, &:math.exp/1))
      assert_close(Tensor.to_list(ok!(Tensor.tanh(t))), Enum.map(xs, &:math.tanh/1))
      assert_close(Tensor.to_list(ok!(Tensor.sigmoid(t))), Enum.map(xs, sig))
      assert_close(Tensor.to_list(ok!(Tensor.silu(t))), Enum.map(xs, &(&1 * sig.(&1))))
      assert Tensor.to_list(ok!(Tensor.relu(t))) == [0.0, 0.0, 0.0, 0.25, 2.0]
      assert Tensor.to_list(ok!(Tensor.neg(t))) == Enum.map(xs, &(-&1))
      assert Tensor.to_list(ok!(Tensor.scale(t, 2))) == Enum.map(xs, &(&1 * 2))
      assert Tensor.to_list(ok!(Tensor.sqrt(t!([4.0, 0.25])))) == [2.0, 0.5]
    end

    test "results that are not finite numbers are errors" do
      assert assert_error(Tensor.exp(t!([1000.0])), :invalid_option) =~ "exp"
      assert assert_error(Tensor.sqrt(t!([-1.0])), :invalid_option) =~ "sqrt"
      assert assert_error(Tensor.div(t!([1.0]), t!([0.0])), :invalid_option) =~ "div"
    end
  end

  describe "matmul" do
    # 1*7+2*9+3*11 = 58, 1*8+2*10+3*12 = 64, 4*7+5*9+6*11 = 139, 4*8+5*10+6*12 = 154
    test "a hand-worked 2x3 . 3x2" do
      c = ok!(Tensor.matmul(t!([[1, 2, 3], [4, 5, 6]]), t!([[7, 8], [9, 10], [11, 12]])))
      assert Tensor.to_list(c) == [[58.0, 64.0], [139.0, 154.0]]
    end

    test "1-D operands follow NumPy" do
      b = t!([[7, 8], [9, 10], [11, 12]])
      assert Tensor.to_list(ok!(Tensor.matmul(t!([1, 2, 3]), t!([4, 5, 6])))) == 32.0
      assert Tensor.to_list(ok!(Tensor.matmul(t!([1, 2, 3]), b))) == [58.0, 64.0]

      assert Tensor.to_list(ok!(Tensor.matmul(t!([[1, 2, 3], [4, 5, 6]]), t!([1, 1, 1])))) == [
               6.0,
               15.0
             ]
    end

    test "random and batched against an f64 reference" do
      a = rnd(35, 1) |> Enum.chunk_every(7)
      b = rnd(28, 2) |> Enum.chunk_every(4)
      assert_close(Tensor.to_list(ok!(Tensor.matmul(t!(a), t!(b)))), ref_matmul(a, b))

      a3 = rnd(24, 3) |> Enum.chunk_every(4) |> Enum.chunk_every(2)
      b3 = rnd(60, 4) |> Enum.chunk_every(5) |> Enum.chunk_every(4)
      c3 = ok!(Tensor.matmul(t!(a3), t!(b3)))
      assert Tensor.shape(c3) == [3, 2, 5]
      assert_close(Tensor.to_list(c3), Enum.zip_with(a3, b3, &ref_matmul/2))
      # a 2-D right operand broadcasts over the batch
      c4 = ok!(Tensor.matmul(t!(a3), t!(hd(b3))))
      assert_close(Tensor.to_list(c4), Enum.map(a3, &ref_matmul(&1, hd(b3))))
    end

    test "shape errors" do
      assert assert_error(
               Tensor.matmul(ok!(Tensor.zeros([2, 3])), ok!(Tensor.zeros([4, 5]))),
               :shape_mismatch
             ) ==
               "matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ"

      assert assert_error(
               Tensor.matmul(ok!(Tensor.zeros([2, 2, 3])), ok!(Tensor.zeros([3, 3, 4]))),
               :shape_mismatch
             ) =~ "batch dimensions [2] and [3]"
    end
  end

  describe "reductions, softmax, rmsnorm" do
    test "reductions along an axis and over everything" do
      t = t!([[1, 9, 3], [7, 5, 7]])
      assert Tensor.sum(t) == {:ok, 32.0}
      assert Tensor.to_list(ok!(Tensor.sum(t, 0))) == [8.0, 14.0, 10.0]
      assert Tensor.to_list(ok!(Tensor.mean(t, -1))) == [13 / 3, 19 / 3]
      assert Tensor.to_list(ok!(Tensor.max(t, 0))) == [7.0, 9.0, 7.0]
      assert Tensor.to_list(ok!(Tensor.min(t, 1))) == [1.0, 5.0]
      assert Tensor.to_list(ok!(Tensor.argmax(t, 1))) == [1.0, 0.0]
      assert assert_error(Tensor.sum(t, 2), :invalid_option) =~ "axis 2"
      assert assert_error(Tensor.max(ok!(Tensor.zeros([2, 0])), 1), :invalid_option) =~ "empty"
    end

    # softmax([1,2,3]) = [e^-2, e^-1, 1] / (e^-2 + e^-1 + 1)
    test "softmax rows sum to 1 and match a hand computation" do
      p = ok!(Tensor.softmax(t!([[1, 2, 3], [1000, 1001, 1002]]), 1))
      z = :math.exp(-2) + :math.exp(-1) + 1
      hand = [:math.exp(-2) / z, :math.exp(-1) / z, 1 / z]
      [r1, r2] = Tensor.to_list(p)
      assert_close(r1, hand)
      assert_close(r2, hand)
      assert_close(r1, [0.0900305731703805, 0.2447284710547976, 0.6652409557748219], 1.0e-15)
      assert_close(Enum.sum(r1), 1.0)
      assert_close(Enum.sum(r2), 1.0)
      # along axis 0: each column sums to 1
      q = ok!(Tensor.softmax(t!([[1, 2], [3, 5]]), 0))
      assert_close(Tensor.to_list(ok!(Tensor.sum(q, 0))), [1.0, 1.0])
      assert_close(hd(Tensor.to_list(q)), [1 / (1 + :math.exp(2)), 1 / (1 + :math.exp(3))])
      assert assert_error(Tensor.softmax(p, 2), :invalid_option) =~ "axis 2"
    end

    # x = [3,4], w = [1,2]: mean(x^2) = 12.5, y = [3, 8] / sqrt(12.5) = [0.848528, 2.262742]
    test "rmsnorm worked example" do
      y = ok!(Tensor.rmsnorm(t!([3, 4]), t!([1, 2]), 0))
      assert_close(Tensor.to_list(y), [0.848528, 2.262742], 1.0e-6)
      assert_close(Tensor.to_list(y), [3 / :math.sqrt(12.5), 8 / :math.sqrt(12.5)])

      assert assert_error(Tensor.rmsnorm(t!([3, 4]), t!([1, 2, 3]), 0), :shape_mismatch) ==
               "rmsnorm: x [2], weight [3]: the weight must be [2]"

      assert assert_error(Tensor.rmsnorm(t!([3, 4]), t!([1, 2]), -1), :invalid_option) =~ "eps"
    end
  end

  describe "FP8 E4M3 W8A16" do
    # 448 = 1.75 * 2^8 -> 0 1111 110; 1.0 -> 0 0111 000; 2^-9 -> 0 0000 001 (min
    # subnormal); -2.0 -> 1 1000 000; 0.3 / 2^-5 = 9.6 -> 10 -> 0.3125 = 0 0101 010
    # (0.28125 is farther); 2^-10 halfway to 0 -> even 0x00; beyond 448 saturates.
    test "E4M3 encode/decode table" do
      for {x, code} <- [
            {448.0, 0x7E},
            {1.0, 0x38},
            {0.001953125, 0x01},
            {-2.0, 0xC0},
            {0.3, 0x2A},
            {0.0009765625, 0x00},
            {1.0625, 0x38},
            {1000.0, 0x7E},
            {-1000.0, 0xFE}
          ] do
        assert {x, Quant.e4m3_encode(x)} == {x, code}
      end

      assert Quant.e4m3_decode(0x2A) == 0.3125
      assert Quant.e4m3_decode(0x7E) == 448.0
      assert Quant.e4m3_decode(0x01) == :math.pow(2, -9)
      assert Quant.e4m3_decode(0x7F) == :nan
    end

    test "every finite code round-trips, values by definition" do
      for code <- 1..0x7E do
        e = Bitwise.bsr(code, 3)
        m = Bitwise.band(code, 7)
        value = if e == 0, do: m / 8 * :math.pow(2, -6), else: (1 + m / 8) * :math.pow(2, e - 7)
        assert Quant.e4m3_decode(code) == value
        assert Quant.e4m3_encode(value) == code
        assert Quant.e4m3_encode(-value) == Bitwise.bor(code, 0x80)
      end
    end

    test "prepack + linear against an f64 reference with the dequantized weights" do
      {n, k, m} = {6, 40, 3}
      w = rnd(n * k, 11) |> Enum.map(&(&1 * 2)) |> Enum.chunk_every(k)
      # inputs that are exact in bf16 (8 significant bits), so the A16 rounding is a no-op
      x = rnd(m * k, 12) |> Enum.map(&(Float.round(&1 * 64) / 64)) |> Enum.chunk_every(k)
      bias = rnd(n, 13)

      {:ok, packed} = Quant.prepack_fp8_weight_blocked(t!(w), 16)
      assert packed.shape == [n, k]
      assert packed.block_size == 16
      assert inspect(packed) == "#VivaTensor.Quant.PackedWeight<fp8_e4m3[6, 40] block_size: 16>"

      wd = Tensor.to_list(ok!(Quant.dequantize(packed)))
      # E4M3 keeps 3 mantissa bits: each weight within 1/16 relative, or the
      # subnormal step of its block
      for {rq, rw} <- Enum.zip(wd, w), {q, v} <- Enum.zip(rq, rw) do
        assert abs(q - v) <= abs(v) / 16 + 2.0e-3
      end

      want =
        for xr <- x do
          for {wr, b} <- Enum.zip(wd, bias), do: Enum.zip_reduce(xr, wr, 0.0, &(&1 * &2 + &3)) + b
        end

      out = ok!(Quant.linear_fp8_w8a16(t!(x), packed, t!(bias)))
      assert Tensor.shape(out) == [m, n]
      assert_close(Tensor.to_list(out), want)

      no_bias = ok!(Quant.linear_fp8_w8a16(t!(x), packed, nil))

      assert_close(
        Tensor.to_list(no_bias),
        for(r <- want, do: Enum.zip_with(r, bias, &(&1 - &2)))
      )
    end

    # Activations are rounded to bf16: 1 + 2^-9 is below the bf16 midpoint 1 + 2^-8, so 1.0.
    test "activations are rounded to bf16 first" do
      {:ok, packed} = Quant.prepack_fp8_weight_blocked(t!([[1.0]]), 16)
      [[w]] = Tensor.to_list(ok!(Quant.dequantize(packed)))

      assert Tensor.to_list(
               ok!(Quant.linear_fp8_w8a16(t!([[1 + :math.pow(2, -9)]]), packed, nil))
             ) == [[w]]
    end

    test "errors" do
      {:ok, packed} = Quant.prepack_fp8_weight_blocked(ok!(Tensor.ones([4, 8])), 4)

      assert assert_error(Quant.prepack_fp8_weight_blocked(t!([1.0, 2.0]), 16), :shape_mismatch) =~
               "2-D"

      assert assert_error(Quant.prepack_fp8_weight_blocked(t!([[1.0]]), -1), :invalid_option) =~
               "block size"

      assert assert_error(
               Quant.linear_fp8_w8a16(ok!(Tensor.ones([2, 5])), packed, nil),
               :shape_mismatch
             ) ==
               "linear_fp8_w8a16: input [2,5] x weight [4,8]: inner dimensions 5 and 8 differ"

      assert assert_error(
               Quant.linear_fp8_w8a16(ok!(Tensor.ones([2, 8])), packed, t!([1.0])),
               :shape_mismatch
             ) =~
               "bias [1]"
    end
  end
end
