defmodule VivaTensor.CLITest do
  # The shared command line (:viva_tensor_cli.main/1) and `mix viva_tensor.generate`.
  # Not async: it captures the VM-wide :standard_error.
  use ExUnit.Case, async: false

  import ExUnit.CaptureIO
  import VivaTensor.TestSupport

  @stories fixture("stories260k")
  @cases reference!("stories260k")["cases"]

  # Reference comparisons use f32 weights (the numerics contract; see load_f32!/1).
  @f32 ["--weights", "f32"]

  # Runs the CLI; returns {status, stdout, stderr}.
  defp cli(args) do
    {{status, out}, err} =
      with_io(:stderr, fn -> with_io(fn -> :viva_tensor_cli.main(args) end) end)

    {status, out, err}
  end

  defp json!(out), do: out |> String.trim() |> decode_json!()

  describe "--json" do
    for {c, i} <- Enum.with_index(@cases) do
      @case c

      test "reproduces the reference tokens, case #{i}" do
        c = @case

        {0, out, _err} =
          cli(
            [@stories, c["prompt"], "--json", "--max-new-tokens", "64", "--no-stop-on-eos"] ++
              @f32
          )

        result = json!(out)
        assert result["tokens"] == c["greedy_new_ids"]
        assert result["prompt_tokens"] == c["input_ids"]
        assert result["text"] == c["greedy_new_text"]
        assert result["finish_reason"] == "length"
        assert result["backend"] in ["cpu", "cuda", "beam"]

        for key <- ["prefill_ms", "decode_ms", "decode_tok_s"] do
          assert is_number(result[key]) and result[key] >= 0, key
        end
      end
    end

    test "with --prompt-ids feeds the ids as they are (no BOS), PROMPT omitted" do
      [c | _] = @cases
      ids = Enum.join(c["input_ids"], ",")

      {0, out, _} =
        cli([@stories, "--prompt-ids", ids, "--max-new-tokens", "64", "--json"] ++ @f32)

      result = json!(out)
      assert result["prompt_tokens"] == c["input_ids"]
      assert result["tokens"] == c["greedy_new_ids"]

      # Without the BOS id, the ids fed are exactly the ones given.
      no_bos = tl(c["input_ids"])

      {0, out, _} =
        cli([@stories, "", "--prompt-ids", Enum.join(no_bos, ","), "--max-new-tokens=4", "--json"])

      assert json!(out)["prompt_tokens"] == no_bos
    end

    test "sampling flags are passed through (same seed, same tokens as the API)" do
      args =
        ["--temperature", "0.8", "--top-k", "40", "--top-p", "0.9", "--min-p", "0.05", "--seed", "7"] ++
          ["--repetition-penalty", "1.2", "--presence-penalty", "0.3", "--frequency-penalty", "-0.2"]

      {0, out, _} = cli([@stories, "The cat", "--json", "--max-new-tokens", "20"] ++ args ++ @f32)
      model = load_f32!(@stories)

      {:ok, r} =
        VivaTensor.generate(model, "The cat",
          max_new_tokens: 20,
          temperature: 0.8,
          top_k: 40,
          top_p: 0.9,
          min_p: 0.05,
          repetition_penalty: 1.2,
          presence_penalty: 0.3,
          frequency_penalty: -0.2,
          seed: 7
        )

      assert json!(out)["tokens"] == r.tokens
    end

    test "--temperature 0 and --temperature 0.0 are both greedy" do
      [c | _] = @cases

      for t <- ["0", "0.0"] do
        {0, out, _} =
          cli([@stories, c["prompt"], "--json", "--temperature", t, "--seed", "3"] ++ @f32)

        assert json!(out)["tokens"] == Enum.take(c["greedy_new_ids"], 64)
      end
    end

    test "--stop cuts the text" do
      [c | _] = @cases
      [before | _] = String.split(c["greedy_new_text"], "Lily", parts: 2)

      {0, out, _} =
        cli([@stories, c["prompt"], "--json", "--stop", "Lily", "--stop", "zzz"] ++ @f32)

      assert json!(out)["text"] == before
      assert json!(out)["finish_reason"] == "stop"
    end

    test "--backend picks the backend" do
      {0, out, _} = cli([@stories, "Hi", "--json", "--max-new-tokens", "2", "--backend", "beam"])

      assert json!(out)["backend"] == "beam"
    end
  end

  describe "streaming output" do
    test "prints the text on stdout and a stats line on stderr" do
      [c | _] = @cases

      {0, out, err} =
        cli([@stories, c["prompt"], "--max-new-tokens", "64", "--no-stop-on-eos"] ++ @f32)

      assert out == c["greedy_new_text"] <> "\n"
      assert err =~ "64 tokens"
      assert err =~ "tok/s"
      assert err =~ "backend"
    end

    test "held-back stop-sequence text is printed at the end" do
      [c | _] = @cases
      [before | _] = String.split(c["greedy_new_text"], ". She", parts: 2)
      {0, out, _} = cli([@stories, c["prompt"], "--stop", ". She", "--stop", ". Shz"] ++ @f32)
      assert out == before <> "\n"
    end
  end

  describe "bad arguments exit with status 2" do
    for {label, args} <- [
          {"no arguments", []},
          {"no prompt", ["model"]},
          {"unknown flag", ["model", "p", "--bogus"]},
          {"flag without value", ["model", "p", "--seed"]},
          {"non-numeric temperature", ["model", "p", "--temperature", "hot"]},
          {"float max-new-tokens", ["model", "p", "--max-new-tokens", "1.5"]},
          {"bad prompt ids", ["model", "--prompt-ids", "1,x,3"]},
          {"unknown backend", ["model", "p", "--backend", "tpu"]},
          {"unknown weights", ["model", "p", "--weights", "int3"]},
          {"extra argument", ["model", "p", "q"]}
        ] do
      @args args
      test label do
        {status, out, err} = cli(@args)
        assert status == 2
        assert out == ""
        assert err =~ "viva_tensor:"
      end
    end

    test "values the core rejects (top_p 1.5, negative max-new-tokens)" do
      {2, "", err} = cli([@stories, "Hi", "--top-p", "1.5"])
      assert err =~ "top_p"
      {2, "", err} = cli([@stories, "Hi", "--max-new-tokens", "-1"])
      assert err =~ "max_new_tokens"
    end

    test "--help prints the usage and exits 0" do
      {0, out, _} = cli(["--help"])
      assert out =~ "--prompt-ids"
      assert out =~ "--json"
    end
  end

  describe "failures exit with status 1" do
    test "a missing model" do
      {1, _out, err} = cli(["/no/such/model", "Hi"])
      assert err =~ "not_found"
    end

    test "a prompt too long" do
      ids = Enum.join([1 | List.duplicate(261, 599)], ",")
      {1, _out, err} = cli([@stories, "--prompt-ids", ids, "--json"])
      assert err =~ "prompt_too_long"
    end
  end

  describe "mix viva_tensor.generate" do
    test "runs the CLI (--json)" do
      [c | _] = @cases

      out =
        capture_io(fn ->
          Mix.Task.rerun("viva_tensor.generate", [@stories, c["prompt"], "--json" | @f32])
        end)

      result = json!(out)
      assert result["tokens"] == c["greedy_new_ids"]
      assert result["prompt_tokens"] == c["input_ids"]
    end

    test "exits with the CLI's status on errors" do
      capture_io(:stderr, fn ->
        assert catch_exit(Mix.Task.rerun("viva_tensor.generate", ["model", "p", "--bogus"])) ==
                 {:shutdown, 2}

        assert catch_exit(Mix.Task.rerun("viva_tensor.generate", ["/no/such/model", "p"])) ==
                 {:shutdown, 1}
      end)
    end
  end
end
