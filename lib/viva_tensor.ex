defmodule VivaTensor do
  @moduledoc """
  LLM inference for the BEAM.

  Loads Hugging Face Llama-family checkpoints (`config.json`, `tokenizer.json` and
  safetensors weights) and generates text with them. The work runs in a Rust engine
  loaded as a NIF (on the CPU, or on an NVIDIA GPU with CUDA); where the NIF is absent a
  pure-Erlang backend runs the same model with the same greedy tokens.

      {:ok, model} = VivaTensor.load_model("path/to/stories260k")
      {:ok, result} = VivaTensor.generate(model, "Once upon a time", max_new_tokens: 32)
      result.text
      #=> ", there was a little girl named Lily. She loved to play outside in the park."

      model |> VivaTensor.stream("Once upon a time") |> Enum.each(&IO.write/1)

  ## Backends

  `load_model/2` takes `backend: :auto | :cpu | :cuda | :beam` (default `:auto`, which
  follows the `VIVA_TENSOR_BACKEND` environment variable, else picks CUDA when a device
  is present, else the NIF's CPU path, else pure BEAM). `backend/0` says what `:auto`
  resolves to in this VM.

  ## Errors

  Every fallible function returns `{:ok, value}` or `{:error, {kind, message}}`, where
  `kind` is an atom (`:not_found`, `:no_weights`, `:invalid_safetensors`,
  `:missing_tensor`, `:shape_mismatch`, `:unsupported_dtype`, `:invalid_config`,
  `:invalid_tokenizer`, `:invalid_option`, `:prompt_too_long`, `:token_out_of_range`,
  `:cuda_unavailable`, `:cuda_error`, `:io_error`, `:cancelled`) and `message` a string
  naming the path, tensor, option or value at fault. The bang variants raise
  `VivaTensor.Error` instead.

  This module is a thin layer over the Erlang core `:viva_tensor_core`, which the Gleam
  API shares; option values are validated there.
  """

  alias VivaTensor.{Error, Model, Tokenizer}

  @typedoc "The reason of an `{:error, reason}` tuple."
  @type reason :: {kind :: atom(), message :: String.t()}

  @typedoc "Options of `load_model/2`."
  @type load_option ::
          {:backend, :auto | :cpu | :cuda | :beam} | {:weights, :auto | :f32 | :bf16 | :fp8}

  @typedoc "Options of `generate/3` and `stream/3`."
  @type generate_option ::
          {:max_new_tokens, non_neg_integer()}
          | {:temperature, number()}
          | {:top_k, non_neg_integer() | :infinity}
          | {:top_p, number()}
          | {:min_p, number()}
          | {:repetition_penalty, number()}
          | {:presence_penalty, number()}
          | {:frequency_penalty, number()}
          | {:seed, integer()}
          | {:stop_on_eos, boolean()}
          | {:stop, [String.t()]}
          | {:prompt_ids, [non_neg_integer()]}

  @typedoc "The result of `generate/3`."
  @type result :: %{
          text: String.t(),
          tokens: [non_neg_integer()],
          prompt_tokens: [non_neg_integer()],
          finish_reason: :eos | :stop | :length | :cancelled,
          backend: Model.backend(),
          prefill_us: non_neg_integer(),
          decode_us: non_neg_integer()
        }

  @typedoc "Something that tokenizes: a model (its own tokenizer) or a tokenizer."
  @type tokenizer_like :: Model.t() | Tokenizer.t()

  ## Models

  @doc """
  Loads a checkpoint: a folder holding `config.json`, `tokenizer.json` and safetensors
  weights (one file or an index with shards), a `.safetensors` file, or a
  `model.safetensors.index.json` file.

  Options:

    * `:backend` - `:auto` (default: `VIVA_TENSOR_BACKEND` when set, else CUDA when a
      usable GPU is present, else the NIF's CPU path, else pure BEAM), `:cpu`, `:cuda` or
      `:beam` (pure Erlang, no NIF).
    * `:weights` - `:auto` (default: f32 on the CPU and pure-BEAM backends; on CUDA, FP8
      where the GPU supports it, else bf16), `:f32` (CPU or BEAM; with `backend: :auto`
      it keeps the model off the GPU), `:bf16` or `:fp8` (E4M3 weight-only, CUDA only).
      Only f32 reproduces Hugging Face's fp32 greedy tokens exactly.

  ## Examples

      {:ok, model} = VivaTensor.load_model("path/to/stories260k")
      {:ok, model} = VivaTensor.load_model("path/to/stories260k", backend: :beam)
      {:error, {:not_found, _message}} = VivaTensor.load_model("/no/such/dir")
  """
  @spec load_model(Path.t(), [load_option()]) :: {:ok, Model.t()} | {:error, reason()}
  def load_model(path, opts \\ []) do
    with {:ok, opts} <- to_map(opts),
         {:ok, ref} <- :viva_tensor_core.load_model(to_binary(path), opts) do
      {:ok, %Model{ref: ref, backend: elem(ref, 1)}}
    end
  end

  @doc """
  Like `load_model/2`, but returns the model or raises `VivaTensor.Error`.

      model = VivaTensor.load_model!("path/to/stories260k")
  """
  @spec load_model!(Path.t(), [load_option()]) :: Model.t()
  def load_model!(path, opts \\ []), do: unwrap!(load_model(path, opts))

  @doc """
  The backend this VM runs models on when `backend: :auto`: `:cpu` when the NIF loads,
  else `:beam` (or what `VIVA_TENSOR_BACKEND` names). The NIF itself moves a model to the
  GPU at load time when one is usable, so `model.backend` is the final word.

      VivaTensor.backend()
      #=> :cpu
  """
  @spec backend() :: Model.backend()
  def backend, do: :viva_tensor_core.backend()

  ## Generation

  @doc """
  Generates a continuation of `prompt`.

  The prompt is tokenized with the model's tokenizer (BOS added as the tokenizer says),
  or replaced by `:prompt_ids`, fed to the model as they are.

  Options (defaults in brackets):

    * `:max_new_tokens` - how many tokens to generate at most [64].
    * `:temperature` - 0.0 is greedy (argmax) [0.0].
    * `:top_k` - keep the k most likely tokens; `0` or `:infinity` keeps all [`:infinity`].
    * `:top_p` - nucleus sampling, in (0, 1] [1.0].
    * `:min_p` - after the nucleus, keep only tokens at least this fraction as likely as the
      most likely one, in [0, 1]; 0 is off [0.0].
    * `:repetition_penalty` - Hugging Face's: the logit of every id already in the prompt or
      the output is divided by it when positive, multiplied when negative; > 0 [1.0: off].
    * `:presence_penalty` - subtracted from the logit of every id generated at least once,
      in [-2, 2] [0.0].
    * `:frequency_penalty` - subtracted, times the id's count in the output, in [-2, 2] [0.0].
      The penalties apply to greedy decoding too (on CUDA it then reads the logits on the host).
    * `:seed` - the sampler's seed; same seed, same tokens [42].
    * `:stop_on_eos` - stop at the model's EOS token [true].
    * `:stop` - stop sequences; the text is cut right before the first one [`[]`].
    * `:prompt_ids` - token ids fed instead of the prompt text (no BOS added).

  The result holds `:text` (the generated text only), `:tokens` (the generated ids),
  `:prompt_tokens` (the ids fed to the model), `:finish_reason` (`:eos`, `:stop`,
  `:length` or `:cancelled`), `:backend`, and `:prefill_us` / `:decode_us` (timing, in
  microseconds).

  ## Examples

      {:ok, result} = VivaTensor.generate(model, "Once upon a time", max_new_tokens: 16)
      result.text
      #=> ", there was a little girl named Lily. She loved to play"
      result.prompt_tokens
      #=> [1, 403, 407, 261, 378]

      {:ok, result} =
        VivaTensor.generate(model, "", prompt_ids: [1, 403], temperature: 0.8, top_p: 0.9, seed: 7)

      {:ok, %{finish_reason: :stop}} = VivaTensor.generate(model, "Once", stop: ["Lily"])

      {:error, {:invalid_option, _}} = VivaTensor.generate(model, "Hi", top_p: 1.5)
  """
  @spec generate(Model.t(), String.t(), [generate_option()]) ::
          {:ok, result()} | {:error, reason()}
  def generate(%Model{ref: ref}, prompt, opts \\ []) when is_binary(prompt) do
    with {:ok, opts} <- generate_opts(opts) do
      :viva_tensor_core.generate(ref, prompt, opts)
    end
  end

  @doc """
  Like `generate/3`, but returns the result or raises `VivaTensor.Error`.

      VivaTensor.generate!(model, "Once upon a time").text
  """
  @spec generate!(Model.t(), String.t(), [generate_option()]) :: result()
  def generate!(%Model{} = model, prompt, opts \\ []), do: unwrap!(generate(model, prompt, opts))

  @doc """
  Generates like `generate/3`, as a lazy stream of text pieces.

  The generation starts when the stream is enumerated and runs in the engine while the
  enumerating process receives the pieces; halting the stream early (`Enum.take/2`,
  `Stream.take_while/2`, ...) cancels it. The pieces concatenate to the `:text` that
  `generate/3` returns for the same options. A piece is held back while it could be the
  start of a stop sequence or an incomplete UTF-8 character. Invalid options raise
  `VivaTensor.Error` here, when the stream is made; errors that depend on the prompt (too
  long for the context, token ids out of range) raise it during enumeration.

  ## Examples

      model
      |> VivaTensor.stream("Once upon a time", max_new_tokens: 32)
      |> Enum.each(&IO.write/1)

      VivaTensor.stream(model, "Once upon a time") |> Enum.take(3)
      #=> [",", " there", " was"]
  """
  @spec stream(Model.t(), String.t(), [generate_option()]) :: Enumerable.t()
  def stream(%Model{ref: ref}, prompt, opts \\ []) when is_binary(prompt) do
    opts = unwrap!(generate_opts(opts))
    unwrap!(:viva_tensor_core.normalize_generate_opts(opts))

    Stream.resource(
      fn -> stream_start(ref, prompt, opts) end,
      &stream_next/1,
      &stream_after/1
    )
  end

  defp stream_start(ref, prompt, opts) do
    case :viva_tensor_core.stream_start(ref, prompt, opts) do
      {:ok, job} -> {:running, job, 0}
      {:error, reason} -> raise Error, reason
    end
  end

  # `sent` is the byte size of the text emitted so far.
  defp stream_next({:running, job, sent} = state) do
    tag = elem(job, 1)

    receive do
      {:viva_tensor, ^tag, {:token, _id, ""}} ->
        {[], state}

      {:viva_tensor, ^tag, {:token, _id, piece}} ->
        {[piece], {:running, job, sent + byte_size(piece)}}

      {:viva_tensor, ^tag, {:done, stats}} ->
        {remainder(stats, sent), {:finished, job}}

      {:viva_tensor, ^tag, {:error, reason}} ->
        raise Error, reason
    end
  end

  defp stream_next({:finished, _job} = state), do: {:halt, state}

  defp stream_after({:running, job, _sent}) do
    :ok = :viva_tensor_core.cancel(job)
    drain(elem(job, 1))
  end

  defp stream_after({:finished, _job}), do: :ok

  # The text held back (a possible stop-sequence prefix) comes with `done`.
  defp remainder(%{text: text}, sent) when byte_size(text) > sent,
    do: [binary_part(text, sent, byte_size(text) - sent)]

  defp remainder(_stats, _sent), do: []

  # After a cancel, the job still ends with exactly one `done` or `error` message: wait
  # for it so that nothing is left in the caller's mailbox.
  defp drain(tag) do
    receive do
      {:viva_tensor, ^tag, {:token, _, _}} -> drain(tag)
      {:viva_tensor, ^tag, {:done, _}} -> :ok
      {:viva_tensor, ^tag, {:error, _}} -> :ok
    after
      5_000 -> :ok
    end
  end

  ## Tokenizers

  @doc """
  Loads a tokenizer from a `tokenizer.json` file, or from a folder holding one.

      {:ok, tokenizer} = VivaTensor.load_tokenizer("path/to/llama2-tokenizer")
      {:ok, [1, 15043, 3186]} = VivaTensor.tokenize(tokenizer, "Hello world")
  """
  @spec load_tokenizer(Path.t()) :: {:ok, Tokenizer.t()} | {:error, reason()}
  def load_tokenizer(path) do
    with {:ok, ref} <- :viva_tensor_core.load_tokenizer(to_binary(path)) do
      {:ok, %Tokenizer{ref: ref, impl: elem(ref, 1)}}
    end
  end

  @doc """
  Turns text into token ids with a model's tokenizer or a `VivaTensor.Tokenizer`.

  `add_special_tokens: true` (the default) adds what the tokenizer's post-processor adds
  (BOS for Llama tokenizers), like Hugging Face's `encode(text)`.

      {:ok, [1, 15043, 3186]} = VivaTensor.tokenize(tokenizer, "Hello world")
      {:ok, [15043, 3186]} = VivaTensor.tokenize(tokenizer, "Hello world", add_special_tokens: false)
  """
  @spec tokenize(tokenizer_like(), String.t(), add_special_tokens: boolean()) ::
          {:ok, [non_neg_integer()]} | {:error, reason()}
  def tokenize(model_or_tokenizer, text, opts \\ []) when is_binary(text) do
    case Keyword.validate(opts, add_special_tokens: true) do
      {:ok, opts} ->
        :viva_tensor_core.tokenize(core_ref(model_or_tokenizer), text, opts[:add_special_tokens])

      {:error, unknown} ->
        {:error, {:invalid_option, "unknown option(s) #{inspect(unknown)} for tokenize"}}
    end
  end

  @doc """
  Turns token ids back into text, skipping special tokens, like Hugging Face's
  `decode(ids, skip_special_tokens=True)`.

      {:ok, "Hello world"} = VivaTensor.detokenize(tokenizer, [1, 15043, 3186])
  """
  @spec detokenize(tokenizer_like(), [non_neg_integer()]) ::
          {:ok, String.t()} | {:error, reason()}
  def detokenize(model_or_tokenizer, ids) when is_list(ids) do
    :viva_tensor_core.detokenize(core_ref(model_or_tokenizer), ids)
  end

  ## Helpers

  defp core_ref(%Model{ref: ref}), do: ref
  defp core_ref(%Tokenizer{ref: ref}), do: ref

  defp generate_opts(opts) do
    with {:ok, map} <- to_map(opts) do
      case map do
        %{top_k: :infinity} -> {:ok, %{map | top_k: 0}}
        _ -> {:ok, map}
      end
    end
  end

  # Keyword list -> the core's option map. Keys and values are validated by the core.
  defp to_map(opts) do
    if is_list(opts) and Keyword.keyword?(opts) do
      # The first occurrence of a key wins, as in Keyword.get/2.
      {:ok, Map.new(Enum.reverse(opts))}
    else
      {:error, {:invalid_option, "options must be a keyword list, got: #{inspect(opts)}"}}
    end
  end

  defp to_binary(path) when is_binary(path), do: path
  defp to_binary(path), do: IO.chardata_to_string(path)

  defp unwrap!({:ok, value}), do: value
  defp unwrap!({:error, reason}), do: raise(Error, reason)

  @doc """
  Quantises a 2-D weight to FP8 (E4M3) with one f32 scale per block of `block_size` elements
  along K. See `VivaTensor.Quant.prepack_fp8_weight_blocked/2`.
  """
  defdelegate prepack_fp8_weight_blocked(weight, block_size), to: VivaTensor.Quant

  @doc """
  `input · dequant(packed)ᵀ + bias` with bf16 activations. See `VivaTensor.Quant.linear_fp8_w8a16/3`.
  """
  defdelegate linear_fp8_w8a16(input, packed, bias), to: VivaTensor.Quant
end
