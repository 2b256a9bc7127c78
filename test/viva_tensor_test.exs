defmodule VivaTensorTest do
  # Generation against Hugging Face transformers' reference outputs (fixtures' reference.json),
  # streaming, sampling and the Model struct. Runs on whichever backend `:auto` resolves to
  # (VIVA_TENSOR_BACKEND=beam runs it without the NIF).
  use ExUnit.Case, async: true

  import VivaTensor.TestSupport

  @stories reference!("stories260k")
  @bytelevel reference!("bytelevel-tiny")

  setup_all do
    %{stories: load_f32!("stories260k"), bytelevel: load_f32!("bytelevel-tiny")}
  end

  describe "greedy decoding reproduces HF transformers (stories260k, 64 tokens)" do
    for {c, i} <- Enum.with_index(@stories["cases"]) do
      @case c

      test "case #{i} #{inspect(c["prompt"])} from prompt_ids", %{stories: model} do
        c = @case

        assert {:ok, result} =
                 VivaTensor.generate(model, "",
                   prompt_ids: c["input_ids"],
                   max_new_tokens: 64,
                   temperature: 0.0,
                   stop_on_eos: false
                 )

        assert result.tokens == c["greedy_new_ids"]
        assert result.text == c["greedy_new_text"]
        assert result.prompt_tokens == c["input_ids"]
        assert result.finish_reason == :length
        assert result.backend == model.backend
        assert is_integer(result.prefill_us) and result.prefill_us >= 0
        assert is_integer(result.decode_us) and result.decode_us >= 0
      end

      test "case #{i} #{inspect(c["prompt"])} from the prompt text", %{stories: model} do
        c = @case

        assert {:ok, result} =
                 VivaTensor.generate(model, c["prompt"], max_new_tokens: 64, stop_on_eos: false)

        assert result.prompt_tokens == c["input_ids"]
        assert result.tokens == c["greedy_new_ids"]
        assert result.text == c["greedy_new_text"]
      end
    end
  end

  describe "greedy decoding reproduces HF transformers (bytelevel-tiny, 32 tokens)" do
    for {c, i} <- Enum.with_index(@bytelevel["cases"]) do
      @case c

      test "case #{i} #{c["label"]}", %{bytelevel: model} do
        c = @case

        assert {:ok, result} =
                 VivaTensor.generate(model, "",
                   prompt_ids: c["input_ids"],
                   max_new_tokens: 32,
                   stop_on_eos: false
                 )

        assert result.tokens == c["greedy_new_ids"]
        assert result.prompt_tokens == c["input_ids"]
        assert result.text == c["greedy_new_text"]
      end
    end
  end

  describe "generate/3" do
    test "max_new_tokens bounds the output; 0 generates nothing", %{stories: model} do
      [c | _] = @stories["cases"]
      assert {:ok, r} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 5)
      assert r.tokens == Enum.take(c["greedy_new_ids"], 5)
      assert r.finish_reason == :length

      assert {:ok, r0} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 0)
      assert r0.tokens == []
      assert r0.text == ""
      assert r0.prompt_tokens == c["input_ids"]
    end

    test "a stop sequence cuts the text right before it", %{stories: model} do
      [c | _] = @stories["cases"]
      full = c["greedy_new_text"]
      [before | _] = String.split(full, "Lily", parts: 2)
      assert before != full

      assert {:ok, r} =
               VivaTensor.generate(model, c["prompt"],
                 max_new_tokens: 64,
                 stop_on_eos: false,
                 stop: ["Lily", "never appears"]
               )

      assert r.finish_reason == :stop
      assert r.text == before
      assert r.tokens == Enum.take(c["greedy_new_ids"], length(r.tokens))
    end

    test "stops at EOS by default, keeping the EOS id in tokens" do
      # stories260k never emits its EOS (2) greedily, so make 426 ("She" in case 0's
      # reference continuation) the EOS id of a copy of the checkpoint.
      [c | _] = @stories["cases"]
      eos = 426
      eos_at = Enum.find_index(c["greedy_new_ids"], &(&1 == eos))
      dir = copy_without_weights!("stories260k", "eos")

      File.ln_s!(
        Path.join(fixture("stories260k"), "model.safetensors"),
        Path.join(dir, "model.safetensors")
      )

      for file <- ["config.json", "generation_config.json"] do
        path = Path.join(dir, file)
        json = path |> read_json!() |> Map.put("eos_token_id", eos) |> :viva_tensor_json.encode()
        File.write!(path, json)
      end

      model = load_f32!(dir)
      assert eos in VivaTensor.Model.info(model).eos_token_ids

      assert {:ok, r} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 64)
      assert r.finish_reason == :eos
      assert r.tokens == Enum.take(c["greedy_new_ids"], eos_at + 1)
      {:ok, before} = VivaTensor.detokenize(model, Enum.take(c["greedy_new_ids"], eos_at))
      assert r.text == before
      assert model |> VivaTensor.stream(c["prompt"], max_new_tokens: 64) |> Enum.join() == before

      assert {:ok, r} =
               VivaTensor.generate(model, c["prompt"], max_new_tokens: 64, stop_on_eos: false)

      assert r.tokens == c["greedy_new_ids"]
      assert r.finish_reason == :length
    end

    test "generation stops at the end of the context", %{stories: model} do
      # 510 prompt ids + at most 2 new tokens fit the 512 positions.
      ids = [1 | List.duplicate(261, 509)]

      assert {:ok, r} =
               VivaTensor.generate(model, "",
                 prompt_ids: ids,
                 max_new_tokens: 10,
                 stop_on_eos: false
               )

      assert r.finish_reason == :length
      assert length(r.tokens) in 1..3
    end

    test "generate!/3 returns the result and raises VivaTensor.Error", %{stories: model} do
      [c | _] = @stories["cases"]

      assert VivaTensor.generate!(model, c["prompt"], max_new_tokens: 3).tokens ==
               Enum.take(c["greedy_new_ids"], 3)

      error =
        assert_raise VivaTensor.Error, fn -> VivaTensor.generate!(model, "x", top_p: 1.5) end

      assert error.kind == :invalid_option
      assert Exception.message(error) =~ "top_p"
    end
  end

  describe "stream/3" do
    for {c, i} <- Enum.with_index(@stories["cases"]) do
      @case c

      test "pieces concatenate to generate's text, case #{i}", %{stories: model} do
        c = @case
        opts = [max_new_tokens: 64, stop_on_eos: false]
        {:ok, r} = VivaTensor.generate(model, c["prompt"], opts)
        pieces = model |> VivaTensor.stream(c["prompt"], opts) |> Enum.to_list()
        assert Enum.join(pieces) == r.text
        assert Enum.join(pieces) == c["greedy_new_text"]
        assert Enum.all?(pieces, &(is_binary(&1) and &1 != ""))
      end
    end

    test "with stop sequences (held-back text comes at the end)", %{stories: model} do
      for stop <- [["Lily"], ["Li"], [". She"], ["said"], ["zzz"], [", "]] do
        opts = [max_new_tokens: 64, stop_on_eos: false, stop: stop]
        {:ok, r} = VivaTensor.generate(model, "Once upon a time", opts)
        streamed = model |> VivaTensor.stream("Once upon a time", opts) |> Enum.join()
        assert streamed == r.text, "stop #{inspect(stop)}"
      end
    end

    test "byte-level pieces (incomplete UTF-8 held back) concatenate to the text",
         %{bytelevel: model} do
      for c <- @bytelevel["cases"] do
        opts = [prompt_ids: c["input_ids"], max_new_tokens: 32, stop_on_eos: false]
        {:ok, r} = VivaTensor.generate(model, "", opts)
        assert model |> VivaTensor.stream("", opts) |> Enum.join() == r.text
      end
    end

    test "is lazy, and halting early cancels the job", %{stories: model} do
      stream = VivaTensor.stream(model, "Once upon a time", max_new_tokens: 64)
      refute_received {:viva_tensor, _, _}

      assert [first, _, _] = Enum.take(stream, 3)
      assert String.starts_with?(hd(@stories["cases"])["greedy_new_text"], first)
      refute_receive {:viva_tensor, _, _}, 200

      # The model still works after the cancelled job.
      assert {:ok, %{tokens: [_]}} = VivaTensor.generate(model, "Once", max_new_tokens: 1)
    end
  end

  describe "seeded sampling" do
    @sample [max_new_tokens: 32, temperature: 1.0, stop_on_eos: false]

    test "the same seed gives the same tokens", %{stories: model} do
      {:ok, a} = VivaTensor.generate(model, "Once upon a time", [seed: 1234] ++ @sample)
      {:ok, b} = VivaTensor.generate(model, "Once upon a time", [seed: 1234] ++ @sample)
      assert a.tokens == b.tokens
      assert a.text == b.text
      assert length(a.tokens) == 32
    end

    test "different seeds give different tokens", %{stories: model} do
      results =
        for seed <- [0, 1, 2, 3] do
          {:ok, r} = VivaTensor.generate(model, "Once upon a time", [seed: seed] ++ @sample)
          r.tokens
        end

      assert length(Enum.uniq(results)) > 1
    end

    test "seeds are taken modulo 2^64", %{stories: model} do
      {:ok, a} = VivaTensor.generate(model, "Once upon a time", [seed: 5] ++ @sample)

      {:ok, b} =
        VivaTensor.generate(
          model,
          "Once upon a time",
          [seed: 5 + 18_446_744_073_709_551_616] ++ @sample
        )

      {:ok, c} = VivaTensor.generate(model, "Once upon a time", [seed: -1] ++ @sample)

      {:ok, d} =
        VivaTensor.generate(
          model,
          "Once upon a time",
          [seed: 18_446_744_073_709_551_615] ++ @sample
        )

      assert a.tokens == b.tokens
      assert c.tokens == d.tokens
    end

    test "temperature 0 is greedy whatever the seed and filters", %{stories: model} do
      [c | _] = @stories["cases"]

      for {seed, top_k, top_p} <- [{0, 0, 1.0}, {7, 5, 0.5}, {99, :infinity, 0.9}] do
        {:ok, r} =
          VivaTensor.generate(model, c["prompt"],
            max_new_tokens: 64,
            stop_on_eos: false,
            temperature: 0.0,
            seed: seed,
            top_k: top_k,
            top_p: top_p
          )

        assert r.tokens == c["greedy_new_ids"]
      end
    end

    test "top_k 1 samples the argmax (HF greedy)", %{stories: model} do
      [c | _] = @stories["cases"]

      {:ok, r} =
        VivaTensor.generate(
          model,
          c["prompt"],
          [top_k: 1, seed: 3, max_new_tokens: 64] ++ @sample
        )

      assert r.tokens == c["greedy_new_ids"]
    end

    test "min_p 1.0 samples the argmax (HF greedy); a small min_p changes the draws", %{stories: model} do
      [c | _] = @stories["cases"]
      opts = [top_k: 0, top_p: 1.0, seed: 3, max_new_tokens: 64] ++ @sample
      {:ok, r} = VivaTensor.generate(model, c["prompt"], [min_p: 1.0] ++ opts)
      assert r.tokens == c["greedy_new_ids"]

      # Seeds 1..5 at min_p 0.2 against plain sampling: the cut tail changes some draws.
      runs =
        for seed <- 1..5 do
          {:ok, a} = VivaTensor.generate(model, "The cat", [seed: seed, max_new_tokens: 24] ++ @sample)

          {:ok, b} =
            VivaTensor.generate(model, "The cat", [seed: seed, max_new_tokens: 24, min_p: 0.2] ++ @sample)

          a.tokens == b.tokens
        end

      assert Enum.any?(runs, &(!&1))
    end

    test "penalties at their off values keep HF's greedy tokens; on, they cut repeats", %{stories: model} do
      [c | _] = @stories["cases"]
      greedy = [max_new_tokens: 64, stop_on_eos: false]
      off = [repetition_penalty: 1.0, presence_penalty: 0.0, frequency_penalty: 0.0]
      {:ok, r} = VivaTensor.generate(model, c["prompt"], off ++ greedy)
      assert r.tokens == c["greedy_new_ids"]

      repeats = fn ids -> length(ids) - length(Enum.uniq(ids)) end
      plain = repeats.(c["greedy_new_ids"])
      assert plain > 0

      for on <- [[presence_penalty: 2.0], [frequency_penalty: 2.0], [repetition_penalty: 3.0]] do
        {:ok, p} = VivaTensor.generate(model, c["prompt"], on ++ greedy)
        assert length(p.tokens) == 64
        assert repeats.(p.tokens) < plain, "#{inspect(on)}: #{repeats.(p.tokens)} repeats, greedy #{plain}"
      end
    end

    test "top_k: :infinity is top_k: 0 (no limit)", %{stories: model} do
      {:ok, a} = VivaTensor.generate(model, "The cat", [top_k: :infinity, seed: 11] ++ @sample)
      {:ok, b} = VivaTensor.generate(model, "The cat", [top_k: 0, seed: 11] ++ @sample)
      assert a.tokens == b.tokens
    end

    test "stream/3 samples the same tokens as generate/3", %{stories: model} do
      opts = [seed: 77, top_p: 0.9, top_k: 40] ++ @sample
      {:ok, r} = VivaTensor.generate(model, "The cat", opts)
      assert model |> VivaTensor.stream("The cat", opts) |> Enum.join() == r.text
    end
  end

  describe "models" do
    test "inspect shows the backend and vocab size, not the handle", %{stories: model} do
      text = inspect(model)
      assert text =~ "#VivaTensor.Model<"
      assert text =~ "backend: #{model.backend}"
      assert text =~ "vocab_size: 512"
      refute text =~ "#Reference"
      refute text =~ "viva_tensor_model"
    end

    test "info/1 reports the config", %{stories: model, bytelevel: bytelevel} do
      info = VivaTensor.Model.info(model)
      assert info.vocab_size == 512
      assert info.hidden_size == 64
      assert info.num_layers == 5
      assert info.max_position_embeddings == 512
      assert info.bos_token_id == 1
      assert 2 in info.eos_token_ids
      assert VivaTensor.Model.info(bytelevel).vocab_size == 1752
    end

    test "the backend is the one :auto resolves to" do
      {:ok, model} = VivaTensor.load_model(fixture("stories260k"))
      assert model.backend == VivaTensor.backend()
      assert model.backend in [:cpu, :cuda, :beam]
    end

    test "a .safetensors file path loads the model of its folder" do
      path = Path.join(fixture("stories260k"), "model.safetensors")
      assert {:ok, model} = VivaTensor.load_model(path, weights: :f32)
      [c | _] = @stories["cases"]
      assert {:ok, r} = VivaTensor.generate(model, c["prompt"], max_new_tokens: 8)
      assert r.tokens == Enum.take(c["greedy_new_ids"], 8)
    end

    test "the model's tokenizer matches the reference vectors", %{stories: model} do
      for v <- @stories["tokenizer_vectors"] do
        assert VivaTensor.tokenize(model, v["text"]) == {:ok, v["ids_with_bos"]}

        assert VivaTensor.tokenize(model, v["text"], add_special_tokens: false) ==
                 {:ok, v["ids_no_special"]}

        assert VivaTensor.detokenize(model, v["ids_with_bos"]) == {:ok, v["decode_skip_special"]}
      end
    end

    test "load_model!/2 raises VivaTensor.Error" do
      error =
        assert_raise VivaTensor.Error, fn -> VivaTensor.load_model!("/no/such/viva_tensor") end

      assert error.kind == :not_found
      assert Exception.message(error) =~ "not_found"
    end
  end
end
