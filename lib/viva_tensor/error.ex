defmodule VivaTensor.Error do
  @moduledoc """
  Raised by the bang functions (`VivaTensor.load_model!/2`, `VivaTensor.generate!/3`, ...)
  and by `VivaTensor.stream/3` (for invalid options when it is called, for prompt errors while
  it is enumerated).

  `kind` is the error kind of the `{:error, {kind, message}}` tuple the non-bang
  function returns (`:not_found`, `:invalid_option`, `:prompt_too_long`, ...; the full
  list is in `docs/architecture.md`) and `message` names the path, tensor, option or
  value at fault.

      VivaTensor.load_model!("/no/such/checkpoint")
      #=> ** (VivaTensor.Error) not_found: /no/such/checkpoint ...
  """

  defexception [:kind, :message]

  @type t :: %__MODULE__{kind: atom(), message: String.t()}

  @impl true
  def message(%__MODULE__{kind: kind, message: message}), do: "#{kind}: #{message}"

  @doc """
  Builds the exception from the `reason` of an `{:error, reason}` tuple.

      iex> VivaTensor.Error.exception({:invalid_option, "top_p must be in (0, 1], got 1.5"})
      %VivaTensor.Error{kind: :invalid_option, message: "top_p must be in (0, 1], got 1.5"}
  """
  @impl true
  @spec exception({atom(), String.t()} | term()) :: t()
  def exception({kind, message}) when is_atom(kind) and is_binary(message),
    do: %__MODULE__{kind: kind, message: message}

  def exception(opts) when is_list(opts) do
    if Keyword.keyword?(opts) and Keyword.has_key?(opts, :kind) do
      %__MODULE__{kind: opts[:kind], message: to_string(opts[:message] || "")}
    else
      %__MODULE__{kind: :error, message: inspect(opts)}
    end
  end

  def exception(other), do: %__MODULE__{kind: :error, message: inspect(other)}
end
