defmodule VivaTensor.Tokenizer do
  @moduledoc """
  A tokenizer loaded from a `tokenizer.json` by `VivaTensor.load_tokenizer/1`.

  `ref` is the core's tokenizer term (`{:viva_tensor_tokenizer, impl, handle}`) and `impl`
  says which implementation holds it (`:nif` or `:beam`). Use it with
  `VivaTensor.tokenize/3` and `VivaTensor.detokenize/2`; a `VivaTensor.Model` works there too.
  """

  @enforce_keys [:ref, :impl]
  defstruct [:ref, :impl]

  @type t :: %__MODULE__{ref: term(), impl: :nif | :beam}

  defimpl Inspect do
    def inspect(%VivaTensor.Tokenizer{impl: impl}, _opts), do: "#VivaTensor.Tokenizer<#{impl}>"
  end
end
