defmodule VivaTensor.TestSupport do
  @moduledoc false
  # Fixtures, references and broken-checkpoint builders shared by the ExUnit suites.

  @repo_root Path.expand("..", __DIR__)

  @doc "The shared fixtures folder: $VIVA_TENSOR_FIXTURES, else ../shared/fixtures."
  def fixtures_dir do
    case System.get_env("VIVA_TENSOR_FIXTURES") do
      dir when dir not in [nil, ""] -> Path.expand(dir)
      _ -> Path.expand("../shared/fixtures", @repo_root)
    end
  end

  def fixture(name), do: Path.join(fixtures_dir(), name)

  @doc """
  Loads a fixture (or a checkpoint path) with f32 weights: the numerics contract (greedy ids
  equal to HF transformers' fp32 ones) is for f32. `weights: :f32` runs on the NIF's CPU
  path or on the pure-BEAM backend; on a GPU machine `:auto` would pick CUDA with FP8/bf16
  weights, whose agreement with f32 is measured, not asserted (see cuda_test.exs).
  """
  def load_f32!(name_or_path) do
    path = if File.exists?(name_or_path), do: name_or_path, else: fixture(name_or_path)
    {:ok, model} = VivaTensor.load_model(path, weights: :f32)
    model
  end

  @doc "Decodes a JSON document with the project's own decoder (`:viva_tensor_json`)."
  def decode_json!(text) do
    case :viva_tensor_json.decode(text) do
      {:ok, term} -> term
      {:error, reason} -> raise "JSON decode failed: #{inspect(reason)}"
      term -> term
    end
  end

  def read_json!(path), do: path |> File.read!() |> decode_json!()

  @doc "The `reference.json` of a fixture (a map with binary keys)."
  def reference!(name), do: read_json!(Path.join(fixture(name), "reference.json"))

  @doc "A fresh, empty folder under the system tmp dir."
  def tmp_dir!(label) do
    dir =
      Path.join(
        System.tmp_dir!(),
        "viva_tensor_test_#{label}_#{System.unique_integer([:positive])}"
      )

    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    dir
  end

  @doc """
  Copies the fixture `name` (config.json, tokenizer files) into a fresh tmp folder, without
  its weights, and returns the folder.
  """
  def copy_without_weights!(name, label) do
    dir = tmp_dir!(label)

    for file <- File.ls!(fixture(name)), not String.ends_with?(file, ".safetensors") do
      File.cp!(Path.join(fixture(name), file), Path.join(dir, file))
    end

    dir
  end

  @doc """
  Reads a safetensors file into `{metadata, [{name, %{"dtype", "shape"}, data}]}`
  (tensors in file order). The format: 8-byte little-endian header length, JSON header
  `{name: {dtype, shape, data_offsets: [begin, end]}}`, then the data.
  """
  def read_safetensors!(path) do
    <<n::little-unsigned-64, header::binary-size(n), data::binary>> = File.read!(path)
    header = decode_json!(header)
    {metadata, tensors} = Map.pop(header, "__metadata__")

    tensors =
      tensors
      |> Enum.map(fn {name, %{"data_offsets" => [b, e]} = info} ->
        {name, Map.delete(info, "data_offsets"), binary_part(data, b, e - b), b}
      end)
      |> Enum.sort_by(&elem(&1, 3))
      |> Enum.map(fn {name, info, bytes, _} -> {name, info, bytes} end)

    {metadata, tensors}
  end

  @doc "Writes tensors (as from `read_safetensors!/1`) as a well-formed safetensors file."
  def write_safetensors!(path, {metadata, tensors}) do
    {entries, data, _} =
      Enum.reduce(tensors, {[], [], 0}, fn {name, info, bytes}, {entries, data, offset} ->
        entry = {name, Map.put(info, "data_offsets", [offset, offset + byte_size(bytes)])}
        {[entry | entries], [data, bytes], offset + byte_size(bytes)}
      end)

    header = Map.new(entries)
    header = if metadata, do: Map.put(header, "__metadata__", metadata), else: header
    write_raw_safetensors!(path, header, data)
  end

  @doc "Writes a header map and data as-is (no consistency checks: for broken files)."
  def write_raw_safetensors!(path, header, data) do
    json = IO.iodata_to_binary(:viva_tensor_json.encode(header))
    # Pad the header with spaces to a multiple of 8, as the reference writer does.
    json = json <> String.duplicate(" ", rem(8 - rem(byte_size(json), 8), 8))
    File.write!(path, [<<byte_size(json)::little-unsigned-64>>, json, data])
  end

  @doc """
  Builds a checkpoint folder from fixture `name` whose weights are the fixture's, passed
  through `fun` (`{metadata, tensors} -> {metadata, tensors}`). Returns the folder.
  """
  def checkpoint_with!(name, label, fun) do
    dir = copy_without_weights!(name, label)
    tensors = read_safetensors!(Path.join(fixture(name), "model.safetensors"))
    write_safetensors!(Path.join(dir, "model.safetensors"), fun.(tensors))
    dir
  end

  @doc "Asserts `{:error, {kind, message}}` with a non-empty message; returns the message."
  defmacro assert_error(expr, kind) do
    quote do
      result = unquote(expr)

      case result do
        {:error, {unquote(kind), message}} when is_binary(message) and message != "" ->
          message

        other ->
          ExUnit.Assertions.flunk(
            "expected {:error, {#{inspect(unquote(kind))}, message}}, got: #{inspect(other)}"
          )
      end
    end
  end
end

# --- which backend, and what is skipped --------------------------------------------------

backend = :viva_tensor_core.backend()
cuda? = System.get_env("VIVA_TENSOR_CUDA_TESTS") in ["1", "true"] or backend == :cuda
exclude = if cuda?, do: [], else: [:cuda]

IO.puts(
  "\n==> viva_tensor ExUnit: backend #{backend} " <>
    "(VIVA_TENSOR_BACKEND=#{System.get_env("VIVA_TENSOR_BACKEND") || "unset"}); " <>
    if(cuda?,
      do: "CUDA tests included",
      else: "CUDA tests SKIPPED (tag :cuda; run with --include cuda or VIVA_TENSOR_CUDA_TESTS=1)"
    ) <> "\n==> fixtures: #{VivaTensor.TestSupport.fixtures_dir()}\n"
)

ExUnit.start(exclude: exclude)
