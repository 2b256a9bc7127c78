defmodule VivaTensor.ConcurrencyTest do
  # One model, many callers: 16 processes generating at once each get exactly the tokens
  # they get alone (greedy and seeded sampling, different prompts and lengths).
  use ExUnit.Case, async: true

  import VivaTensor.TestSupport

  setup_all do
    %{model: load_f32!("stories260k"), cases: reference!("stories260k")["cases"]}
  end

  defp jobs(cases) do
    for i <- 0..15 do
      c = Enum.at(cases, rem(i, length(cases)))
      sampling = if rem(i, 2) == 0, do: [], else: [temperature: 0.9, top_p: 0.95, seed: i]
      {c, [max_new_tokens: 8 + i, stop_on_eos: false] ++ sampling}
    end
  end

  test "16 concurrent generate/3 calls get the tokens they get alone", %{model: m, cases: cases} do
    jobs = jobs(cases)

    alone =
      for {c, opts} <- jobs do
        {:ok, r} = VivaTensor.generate(m, c["prompt"], opts)
        r
      end

    together =
      jobs
      |> Task.async_stream(
        fn {c, opts} -> VivaTensor.generate(m, c["prompt"], opts) end,
        max_concurrency: 16,
        ordered: true,
        timeout: 120_000
      )
      |> Enum.map(fn {:ok, {:ok, r}} -> r end)

    for {a, t} <- Enum.zip(alone, together) do
      assert t.tokens == a.tokens
      assert t.text == a.text
    end

    # The greedy ones are also HF's tokens.
    for {{c, opts}, r} <- Enum.zip(jobs, together), not Keyword.has_key?(opts, :seed) do
      assert r.tokens == Enum.take(c["greedy_new_ids"], opts[:max_new_tokens])
    end
  end

  test "16 concurrent streams get the text generate/3 gives", %{model: m, cases: cases} do
    jobs = jobs(cases)

    expected =
      for {c, opts} <- jobs do
        {:ok, r} = VivaTensor.generate(m, c["prompt"], opts)
        r.text
      end

    streamed =
      jobs
      |> Task.async_stream(
        fn {c, opts} -> m |> VivaTensor.stream(c["prompt"], opts) |> Enum.join() end,
        max_concurrency: 16,
        ordered: true,
        timeout: 120_000
      )
      |> Enum.map(fn {:ok, text} -> text end)

    assert streamed == expected
  end

  test "a caller that dies mid-generation does not disturb the others", %{model: m, cases: cases} do
    [c | _] = cases

    victims =
      for _ <- 1..4 do
        spawn(fn -> VivaTensor.generate(m, c["prompt"], max_new_tokens: 64) end)
      end

    Enum.each(victims, &Process.exit(&1, :kill))
    assert {:ok, r} = VivaTensor.generate(m, c["prompt"], max_new_tokens: 64, stop_on_eos: false)
    assert r.tokens == c["greedy_new_ids"]
  end
end
