defmodule VivaTensor.ErrorsTest do
  # Every failure is `{:error, {kind, message}}` with the documented kind, and the VM (and
  # the model) keep working afterwards. Broken checkpoints are built from the stories260k
  # fixture under System.tmp_dir!().
  use ExUnit.Case, async: true

  import VivaTensor.TestSupport

  @stories "stories260k"

  setup_all do
    %{model: load_f32!(@stories)}
  end

  # The model still generates the reference tokens after the error.
  setup %{model: model} do
    on_exit(fn ->
      [c | _] = reference!(@stories)["cases"]
      assert {:ok, %{tokens: tokens}} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 4)
      assert tokens == Enum.take(c["greedy_new_ids"], 4)
    end)
  end

  defp update_tensor({meta, tensors}, name, fun) do
    assert Enum.any?(tensors, &(elem(&1, 0) == name))
    {meta, Enum.map(tensors, fn {n, _, _} = t -> if n == name, do: fun.(t), else: t end)}
  end

  describe "loading" do
    test "a missing path is :not_found" do
      msg = assert_error(VivaTensor.load_model("/no/such/viva_tensor/checkpoint"), :not_found)
      assert msg =~ "/no/such/viva_tensor/checkpoint"
    end

    test "a folder without weights is :no_weights" do
      dir = copy_without_weights!(@stories, "no_weights")
      assert_error(VivaTensor.load_model(dir), :no_weights)
    end

    test "a truncated safetensors file is :invalid_safetensors" do
      dir = copy_without_weights!(@stories, "truncated")
      bytes = File.read!(Path.join(fixture(@stories), "model.safetensors"))

      File.write!(
        Path.join(dir, "model.safetensors"),
        binary_part(bytes, 0, div(byte_size(bytes), 2))
      )

      assert_error(VivaTensor.load_model(dir), :invalid_safetensors)
    end

    test "a file shorter than its header length is :invalid_safetensors" do
      dir = copy_without_weights!(@stories, "short_header")
      File.write!(Path.join(dir, "model.safetensors"), <<1_000_000::little-64, "{}">>)
      assert_error(VivaTensor.load_model(dir), :invalid_safetensors)
    end

    test "a header that is not JSON is :invalid_safetensors" do
      dir = copy_without_weights!(@stories, "header_not_json")
      File.write!(Path.join(dir, "model.safetensors"), <<8::little-64, "{nope!!!">>)
      assert_error(VivaTensor.load_model(dir), :invalid_safetensors)
    end

    test "data offsets past the end of the file are :invalid_safetensors" do
      dir = copy_without_weights!(@stories, "lying_offsets")
      {meta, tensors} = read_safetensors!(Path.join(fixture(@stories), "model.safetensors"))

      {header, data, size} =
        Enum.reduce(tensors, {%{}, [], 0}, fn {name, info, bytes}, {h, d, off} ->
          {Map.put(h, name, Map.put(info, "data_offsets", [off, off + byte_size(bytes)])),
           [d, bytes], off + byte_size(bytes)}
        end)

      # The last tensor claims 4 KiB more than the file holds.
      {last, _, bytes} = List.last(tensors)
      header = put_in(header, [last, "data_offsets"], [size - byte_size(bytes), size + 4096])
      path = Path.join(dir, "model.safetensors")
      write_raw_safetensors!(path, Map.put(header, "__metadata__", meta), data)
      assert_error(VivaTensor.load_model(dir), :invalid_safetensors)
    end

    test "offsets that disagree with dtype and shape are :invalid_safetensors" do
      dir = copy_without_weights!(@stories, "offsets_vs_shape")
      {meta, tensors} = read_safetensors!(Path.join(fixture(@stories), "model.safetensors"))

      {header, data, _} =
        Enum.reduce(tensors, {%{}, [], 0}, fn {name, info, bytes}, {h, d, off} ->
          {Map.put(h, name, Map.put(info, "data_offsets", [off, off + byte_size(bytes)])),
           [d, bytes], off + byte_size(bytes)}
        end)

      # model.norm.weight is [64] F32 = 256 bytes; claim 128.
      [b, _e] = header["model.norm.weight"]["data_offsets"]
      header = put_in(header, ["model.norm.weight", "data_offsets"], [b, b + 128])
      path = Path.join(dir, "model.safetensors")
      write_raw_safetensors!(path, Map.put(header, "__metadata__", meta), data)
      assert_error(VivaTensor.load_model(dir), :invalid_safetensors)
    end

    test "a missing tensor is :missing_tensor, naming it" do
      dir =
        checkpoint_with!(@stories, "missing_tensor", fn {meta, tensors} ->
          {meta, Enum.reject(tensors, &(elem(&1, 0) == "model.layers.2.self_attn.v_proj.weight"))}
        end)

      msg = assert_error(VivaTensor.load_model(dir), :missing_tensor)
      assert msg =~ "model.layers.2.self_attn.v_proj.weight"
    end

    test "a tensor of the wrong shape is :shape_mismatch, naming it" do
      # gate_proj is [172, 64]; store the same bytes as [64, 172].
      name = "model.layers.1.mlp.gate_proj.weight"

      dir =
        checkpoint_with!(@stories, "shape_mismatch", fn st ->
          update_tensor(st, name, fn {n, info, bytes} ->
            assert info["shape"] == [172, 64]
            {n, %{info | "shape" => [64, 172]}, bytes}
          end)
        end)

      msg = assert_error(VivaTensor.load_model(dir), :shape_mismatch)
      assert msg =~ name
    end

    test "an unsupported dtype is :unsupported_dtype" do
      # Same byte count, but I32 weights are not something a Llama loader computes with.
      dir =
        checkpoint_with!(@stories, "unsupported_dtype", fn st ->
          update_tensor(st, "model.norm.weight", fn {n, info, bytes} ->
            {n, %{info | "dtype" => "I32"}, bytes}
          end)
        end)

      msg = assert_error(VivaTensor.load_model(dir), :unsupported_dtype)
      assert msg =~ "I32" or msg =~ "model.norm.weight"
    end

    test "a malformed config.json is :invalid_config" do
      dir = checkpoint_with!(@stories, "bad_config", & &1)
      File.write!(Path.join(dir, "config.json"), ~s({"hidden_size": 64, "num_hidden_layers": ))
      assert_error(VivaTensor.load_model(dir), :invalid_config)
    end

    test "a config.json without required fields is :invalid_config" do
      dir = checkpoint_with!(@stories, "config_missing_fields", & &1)
      File.write!(Path.join(dir, "config.json"), ~s({"model_type": "llama"}))
      assert_error(VivaTensor.load_model(dir), :invalid_config)
    end

    test "a malformed tokenizer.json is :invalid_tokenizer" do
      dir = checkpoint_with!(@stories, "bad_tokenizer", & &1)
      File.write!(Path.join(dir, "tokenizer.json"), ~s({"version": "1.0", "model": [}))
      assert_error(VivaTensor.load_model(dir), :invalid_tokenizer)
    end

    test "an unknown backend or weight format is :invalid_option" do
      assert_error(VivaTensor.load_model(fixture(@stories), backend: :tpu), :invalid_option)
      assert_error(VivaTensor.load_model(fixture(@stories), weights: :int3), :invalid_option)
      assert_error(VivaTensor.load_model(fixture(@stories), bogus: 1), :invalid_option)
    end

    test "a rebuilt, well-formed copy loads and generates the reference (control)" do
      dir = checkpoint_with!(@stories, "control", & &1)
      assert {:ok, model} = VivaTensor.load_model(dir, weights: :f32)
      [c | _] = reference!(@stories)["cases"]
      assert {:ok, r} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 16)
      assert r.tokens == Enum.take(c["greedy_new_ids"], 16)
    end
  end

  describe "generate options" do
    test "negative max_new_tokens is :invalid_option", %{model: m} do
      msg = assert_error(VivaTensor.generate(m, "Hi", max_new_tokens: -1), :invalid_option)
      assert msg =~ "max_new_tokens"
    end

    test "top_p 0.0 is :invalid_option", %{model: m} do
      assert assert_error(VivaTensor.generate(m, "Hi", top_p: 0.0), :invalid_option) =~ "top_p"
    end

    test "min_p -0.1 and 1.5 are :invalid_option", %{model: m} do
      for p <- [-0.1, 1.5, :high] do
        assert assert_error(VivaTensor.generate(m, "Hi", min_p: p), :invalid_option) =~ "min_p"
      end
    end

    test "penalties out of range are :invalid_option naming them", %{model: m} do
      for {k, v} <- [repetition_penalty: 0, repetition_penalty: -1.0, presence_penalty: 2.5, frequency_penalty: -3] do
        assert assert_error(VivaTensor.generate(m, "Hi", [{k, v}]), :invalid_option) =~ Atom.to_string(k)
      end
    end

    test "top_p 1.5 is :invalid_option", %{model: m} do
      assert assert_error(VivaTensor.generate(m, "Hi", top_p: 1.5), :invalid_option) =~ "top_p"
    end

    test "a negative temperature is :invalid_option", %{model: m} do
      msg = assert_error(VivaTensor.generate(m, "Hi", temperature: -0.5), :invalid_option)
      assert msg =~ "temperature"
    end

    test "a negative top_k is :invalid_option", %{model: m} do
      assert_error(VivaTensor.generate(m, "Hi", top_k: -3), :invalid_option)
    end

    test "values of the wrong type are :invalid_option", %{model: m} do
      assert_error(VivaTensor.generate(m, "Hi", max_new_tokens: "10"), :invalid_option)
      assert_error(VivaTensor.generate(m, "Hi", stop_on_eos: :yes), :invalid_option)
      assert_error(VivaTensor.generate(m, "Hi", stop: "x"), :invalid_option)
      assert_error(VivaTensor.generate(m, "Hi", prompt_ids: [1, -2]), :invalid_option)
    end

    test "an unknown option is :invalid_option, naming it", %{model: m} do
      msg = assert_error(VivaTensor.generate(m, "Hi", max_tokens: 3), :invalid_option)
      assert msg =~ "max_tokens"
    end

    test "options that are not a keyword list are :invalid_option", %{model: m} do
      assert_error(VivaTensor.generate(m, "Hi", %{max_new_tokens: 3}), :invalid_option)
      assert_error(VivaTensor.generate(m, "Hi", [3]), :invalid_option)
    end

    test "empty prompt_ids are :invalid_option", %{model: m} do
      assert_error(VivaTensor.generate(m, "", prompt_ids: []), :invalid_option)
    end

    test "a prompt id past the vocabulary is :token_out_of_range", %{model: m} do
      assert_error(VivaTensor.generate(m, "", prompt_ids: [1, 512]), :token_out_of_range)
    end

    test "a prompt longer than the context is :prompt_too_long", %{model: m} do
      # stories260k: max_position_embeddings 512.
      ids = [1 | List.duplicate(261, 599)]
      assert_error(VivaTensor.generate(m, "", prompt_ids: ids), :prompt_too_long)

      text = String.duplicate("Once upon a time ", 200)
      assert_error(VivaTensor.generate(m, text, max_new_tokens: 1), :prompt_too_long)
    end

    test "stream/3 raises on invalid options when the stream is made, before any enumeration", %{
      model: m
    } do
      assert %VivaTensor.Error{kind: :invalid_option} =
               assert_raise(VivaTensor.Error, fn ->
                 VivaTensor.stream(m, "Once", temperature: -1.0)
               end)

      assert %VivaTensor.Error{kind: :invalid_option} =
               assert_raise(VivaTensor.Error, fn ->
                 VivaTensor.stream(m, "Once", [:not_a_keyword])
               end)

      refute_receive {:viva_tensor, _, _}, 100
    end

    test "stream/3 raises prompt-dependent errors when enumerated", %{model: m} do
      ids = [1 | List.duplicate(261, 599)]

      assert %VivaTensor.Error{kind: :prompt_too_long} =
               assert_raise(VivaTensor.Error, fn ->
                 m |> VivaTensor.stream("", prompt_ids: ids) |> Enum.to_list()
               end)

      refute_receive {:viva_tensor, _, _}, 100
    end
  end
end
