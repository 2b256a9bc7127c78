defmodule VivaTensor.TokenizerTest do
  # Tokenizers against HF `tokenizers` 0.23.3 outputs: the real Llama-2 vocabulary
  # (llama2-tokenizer/vectors.json, 40 strings) and the fixtures' own tokenizer vectors.
  use ExUnit.Case, async: true

  import VivaTensor.TestSupport

  @llama2 read_json!(Path.join(fixture("llama2-tokenizer"), "vectors.json"))["vectors"]

  setup_all do
    {:ok, llama2} = VivaTensor.load_tokenizer(fixture("llama2-tokenizer"))
    %{llama2: llama2}
  end

  describe "llama2-tokenizer vectors" do
    for {v, i} <- Enum.with_index(@llama2) do
      @vector v

      test "vector #{i}: #{inspect(String.slice(v["text"], 0, 40))}", %{llama2: tok} do
        v = @vector
        assert VivaTensor.tokenize(tok, v["text"]) == {:ok, v["ids_with_bos"]}

        assert VivaTensor.tokenize(tok, v["text"], add_special_tokens: false) ==
                 {:ok, v["ids_no_special"]}

        assert VivaTensor.detokenize(tok, v["ids_with_bos"]) == {:ok, v["decode_skip_special"]}
      end
    end
  end

  describe "fixture tokenizers (reference.json tokenizer_vectors)" do
    for name <- ["stories260k", "bytelevel-tiny"] do
      @name name

      test "#{name}" do
        {:ok, tok} = VivaTensor.load_tokenizer(Path.join(fixture(@name), "tokenizer.json"))

        for v <- reference!(@name)["tokenizer_vectors"] do
          assert VivaTensor.tokenize(tok, v["text"]) == {:ok, v["ids_with_bos"]},
                 "encode #{inspect(v["text"])}"

          assert VivaTensor.tokenize(tok, v["text"], add_special_tokens: false) ==
                   {:ok, v["ids_no_special"]}

          assert VivaTensor.detokenize(tok, v["ids_with_bos"]) ==
                   {:ok, v["decode_skip_special"]}
        end
      end
    end
  end

  describe "load_tokenizer/1" do
    test "takes a tokenizer.json file or a folder holding one" do
      assert {:ok, a} = VivaTensor.load_tokenizer(fixture("llama2-tokenizer"))

      assert {:ok, b} =
               VivaTensor.load_tokenizer(Path.join(fixture("llama2-tokenizer"), "tokenizer.json"))

      assert VivaTensor.tokenize(a, "Hello world") == {:ok, [1, 15043, 3186]}
      assert VivaTensor.tokenize(b, "Hello world") == {:ok, [1, 15043, 3186]}
    end

    test "inspect does not dump the handle", %{llama2: tok} do
      assert inspect(tok) =~ ~r/^#VivaTensor.Tokenizer<(nif|beam)>$/
    end

    test "a missing path is :not_found" do
      assert_error(VivaTensor.load_tokenizer("/no/such/tokenizer.json"), :not_found)
    end

    test "a folder without tokenizer.json is :not_found" do
      dir = tmp_dir!("no_tokenizer")
      assert_error(VivaTensor.load_tokenizer(dir), :not_found)
    end

    test "a malformed tokenizer.json is :invalid_tokenizer" do
      dir = tmp_dir!("bad_tokenizer")
      File.write!(Path.join(dir, "tokenizer.json"), ~s({"model": {"type": "BPE", "vocab": ))
      assert_error(VivaTensor.load_tokenizer(dir), :invalid_tokenizer)
    end

    test "tokenize rejects unknown options", %{llama2: tok} do
      assert_error(VivaTensor.tokenize(tok, "x", add_bos: true), :invalid_option)
    end

    test "detokenize of an id past the vocabulary is an error, not a crash", %{llama2: tok} do
      assert {:error, {kind, message}} = VivaTensor.detokenize(tok, [1, 15043, 99_999])
      assert kind in [:token_out_of_range, :invalid_option]
      assert is_binary(message)
    end
  end
end
