defmodule VivaTensor.MixProject do
  use Mix.Project

  @version "0.1.0"

  def project do
    [
      app: :viva_tensor,
      version: @version,
      elixir: "~> 1.14",
      description: "LLM inference for the BEAM: a Rust NIF engine with a pure-Erlang fallback.",
      # The Erlang core lives in src/*.erl; Mix ignores the src/*.gleam files next to it.
      erlc_paths: ["src"],
      elixirc_paths: ["lib"],
      # :viva_nif builds priv/libviva_tensor_nif.so with cargo (see Mix.Tasks.Compile.VivaNif below).
      compilers: [:viva_nif | Mix.compilers()],
      deps: [],
      # test/ also holds Gleam (*.gleam) and EUnit (*.erl) tests: Mix only runs *_test.exs,
      # and never compiles test/*.erl because erlc_paths is ["src"] in every environment.
      test_paths: ["test"],
      test_pattern: "*_test.exs",
      warn_test_pattern: "*_test.ex",
      docs: [main: "VivaTensor"]
    ]
  end

  def application do
    [extra_applications: []]
  end
end

defmodule Mix.Tasks.Compile.VivaNif do
  @shortdoc "Builds the viva_tensor Rust NIF (priv/libviva_tensor_nif.so) with cargo"

  @moduledoc """
  Builds the Rust NIF and copies it to `priv/libviva_tensor_nif.so`.

  Runs `cargo build --release --manifest-path native/Cargo.toml -p viva_nif` when the
  library is missing or older than any file under `native/*/src`, `native/*/kernels`,
  `native/**/Cargo.toml` or `native/Cargo.lock`; otherwise it does nothing.

  Without cargo it prints a warning and succeeds: the pure-BEAM backend still works.
  Set `VIVA_TENSOR_SKIP_NIF=1` (or `VIVA_TENSOR_BACKEND=beam`) to skip the build.
  `CARGO_TARGET_DIR` is honoured.
  """

  use Mix.Task.Compiler

  @root __DIR__
  @nif "libviva_tensor_nif.so"

  @impl Mix.Task.Compiler
  def run(_args) do
    native = Path.join(@root, "native")
    target = Path.join([@root, "priv", @nif])

    cond do
      not File.exists?(Path.join(native, "Cargo.toml")) ->
        :noop

      skip_reason() != nil ->
        # On stderr: stdout may be a task's data (`mix viva_tensor.generate --json`).
        unless File.exists?(target), do: IO.puts(:stderr, "viva_tensor: #{skip_reason()}")
        :noop

      fresh?(target, native) ->
        :noop

      System.find_executable("cargo") == nil ->
        warn(
          "cargo not found: the NIF (#{@nif}) is not built; viva_tensor will use the pure-BEAM backend"
        )

        {:ok, [diagnostic(:warning, "cargo not found; NIF not built")]}

      true ->
        build(native, target)
    end
  end

  defp skip_reason do
    cond do
      System.get_env("VIVA_TENSOR_SKIP_NIF") not in [nil, "", "0", "false"] ->
        "VIVA_TENSOR_SKIP_NIF is set: not building the NIF"

      System.get_env("VIVA_TENSOR_BACKEND") == "beam" ->
        "VIVA_TENSOR_BACKEND=beam: not building the NIF"

      true ->
        nil
    end
  end

  defp build(native, target) do
    Mix.shell().info("Compiling viva_tensor NIF (cargo build --release -p viva_nif)")

    args = [
      "build",
      "--release",
      "--manifest-path",
      Path.join(native, "Cargo.toml"),
      "-p",
      "viva_nif"
    ]

    # cargo reports progress on stderr, which goes straight to the terminal.
    case System.cmd("cargo", args, cd: @root, into: IO.stream(:stdio, :line)) do
      {_, 0} ->
        copy_library(native, target)

      {_, status} ->
        message =
          "cargo build failed (exit status #{status}); fix the build, or set " <>
            "VIVA_TENSOR_SKIP_NIF=1 to use the pure-BEAM backend only"

        Mix.shell().error("viva_tensor: " <> message)
        {:error, [diagnostic(:error, message)]}
    end
  end

  defp copy_library(native, target) do
    target_dir =
      Path.expand(System.get_env("CARGO_TARGET_DIR") || Path.join(native, "target"), @root)

    release = Path.join(target_dir, "release")

    built =
      ["libviva_tensor_nif.so", "libviva_tensor_nif.dylib", "viva_tensor_nif.dll"]
      |> Enum.map(&Path.join(release, &1))
      |> Enum.find(&File.exists?/1)

    if built do
      File.mkdir_p!(Path.dirname(target))
      # Copy through a temporary name so a running VM never sees a half-written library.
      tmp = target <> ".tmp"
      File.cp!(built, tmp)
      File.rename!(tmp, target)
      {:ok, []}
    else
      message = "cargo succeeded but no NIF library was found in #{release}"
      Mix.shell().error("viva_tensor: " <> message)
      {:error, [diagnostic(:error, message)]}
    end
  end

  # The library is fresh when it is newer than every input of the build.
  defp fresh?(target, native) do
    case File.stat(target, time: :posix) do
      {:ok, %{mtime: built}} -> Enum.all?(inputs(native), &(mtime(&1) <= built))
      {:error, _} -> false
    end
  end

  # Globs stay out of native/target (cargo's output, thousands of files).
  defp inputs(native) do
    [
      "*/{src,kernels}/**/*",
      "Cargo.toml",
      "*/Cargo.toml",
      "*/*/Cargo.toml",
      "*/build.rs",
      "Cargo.lock"
    ]
    |> Enum.flat_map(&Path.wildcard(Path.join(native, &1)))
    |> Enum.reject(&String.starts_with?(&1, Path.join(native, "target") <> "/"))
  end

  defp mtime(path) do
    case File.stat(path, time: :posix) do
      {:ok, %{type: :regular, mtime: mtime}} -> mtime
      _ -> 0
    end
  end

  defp warn(message), do: Mix.shell().error("warning: viva_tensor: " <> message)

  defp diagnostic(severity, message) do
    %Mix.Task.Compiler.Diagnostic{
      compiler_name: "viva_nif",
      file: Path.join(@root, "native/Cargo.toml"),
      position: nil,
      message: message,
      severity: severity
    }
  end
end
