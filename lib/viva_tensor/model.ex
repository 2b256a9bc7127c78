defmodule VivaTensor.Model do
  @moduledoc """
  A loaded checkpoint, returned by `VivaTensor.load_model/2`.

  `ref` is the core's model term (`{:viva_tensor_model, backend, handle}`, a NIF resource
  or a pure-BEAM model); `backend` is the backend it runs on (`:cpu`, `:cuda` or `:beam`).
  A model is read-only: any number of processes may generate with it at once.
  """

  @enforce_keys [:ref, :backend]
  defstruct [:ref, :backend]

  @type backend :: :cpu | :cuda | :beam
  @type t :: %__MODULE__{ref: term(), backend: backend()}

  @doc """
  Facts about the model: `backend`, `vocab_size`, `hidden_size`, `num_layers`,
  `max_position_embeddings`, `bos_token_id`, `eos_token_ids` and `weights`.

      {:ok, model} = VivaTensor.load_model("test/fixtures/stories260k")
      VivaTensor.Model.info(model).vocab_size
      #=> 512
  """
  @spec info(t()) :: map()
  def info(%__MODULE__{ref: ref}) do
    case :viva_tensor_core.model_info(ref) do
      {:ok, info} -> info
      info when is_map(info) -> info
    end
  end

  defimpl Inspect do
    import Inspect.Algebra

    def inspect(%VivaTensor.Model{backend: backend} = model, opts) do
      fields =
        try do
          info = VivaTensor.Model.info(model)

          [
            "backend: #{backend}",
            "vocab_size: #{info[:vocab_size]}",
            "layers: #{info[:num_layers]}",
            "weights: #{info[:weights]}"
          ]
        rescue
          _ -> ["backend: #{backend}"]
        catch
          _, _ -> ["backend: #{backend}"]
        end

      container_doc("#VivaTensor.Model<", fields, ">", opts, fn field, _ -> string(field) end,
        separator: ","
      )
    end
  end
end
