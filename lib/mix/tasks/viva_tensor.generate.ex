defmodule Mix.Tasks.VivaTensor.Generate do
  @shortdoc "Generates text with a checkpoint: mix viva_tensor.generate MODEL PROMPT [flags]"

  @moduledoc """
  Generates text with a checkpoint from the command line.

      mix viva_tensor.generate MODEL PROMPT [flags]

  `MODEL` is a checkpoint folder (config.json, tokenizer.json, safetensors weights), a
  `.safetensors` file or a `model.safetensors.index.json` file. Without `--json` the text
  is streamed to stdout as it is generated and a stats line (tokens, tok/s, backend) goes
  to stderr.

  ## Flags

    * `--prompt-ids 1,2,3` - feed these token ids as they are (no BOS added) instead of
      tokenizing PROMPT; PROMPT may then be omitted
    * `--stop STR` - stop right before STR (repeatable)
    * `--max-new-tokens N` - generate at most N tokens (default 64)
    * `--temperature T` - 0 is greedy (default 0)
    * `--top-k K` - keep the K most likely tokens, 0 keeps all (default 0)
    * `--top-p P` - nucleus sampling, 0 < P <= 1 (default 1)
    * `--min-p P` - keep tokens at least P times as likely as the top one, 0 <= P <= 1 (default 0: off)
    * `--repetition-penalty R`, `--presence-penalty P`, `--frequency-penalty F` - the penalties of
      `VivaTensor.generate/3` (defaults 1, 0, 0: off)
    * `--seed S` - sampler seed (default 42)
    * `--backend B` - `auto`, `cpu`, `cuda` or `beam` (default `auto`, or the
      `VIVA_TENSOR_BACKEND` environment variable)
    * `--weights W` - `auto`, `f32`, `bf16` or `fp8` (default `auto`)
    * `--no-stop-on-eos` - keep generating past the EOS token
    * `--json` - print one JSON object: `text`, `tokens` (generated ids), `prompt_tokens`
      (ids fed), `backend`, `finish_reason`, `prefill_ms`, `decode_ms`, `decode_tok_s`
      (plus `prefill_us`, `decode_us`). Mix compiles the project before it runs a task and
      reports that on stdout ("Compiling 7 files (.ex)"), so when stdout must hold only the
      JSON (piped to `jq`, read by a script), run `mix compile` first or set `MIX_QUIET=1`.

  ## Examples

      mix viva_tensor.generate ../shared/fixtures/stories260k "Once upon a time"
      mix viva_tensor.generate ../shared/fixtures/stories260k "" --prompt-ids 1,403,407 --json
      MIX_QUIET=1 mix viva_tensor.generate ../shared/fixtures/stories260k "Once" --json | jq .text
      mix viva_tensor.generate path/to/model "Hello" --temperature 0.8 --top-p 0.95 --seed 7

  Exit status: 0 on success, 1 when loading or generating fails, 2 for bad arguments.
  The work is done by `:viva_tensor_cli.main/1`, which the Gleam CLI shares.
  """

  use Mix.Task

  @impl Mix.Task
  def run(args) do
    Mix.Task.run("app.start")

    case :viva_tensor_cli.main(args) do
      0 -> :ok
      status -> exit({:shutdown, status})
    end
  end
end
