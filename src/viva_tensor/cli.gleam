//// Command-line generation, for Gleam users:
////
//// ```sh
//// erl -noshell -pa EBIN -eval 'viva_tensor@cli:main(), halt().' \
////   -extra MODEL PROMPT [--max-new-tokens N] [--temperature T] [--top-k K] \
////   [--top-p P] [--min-p P] [--repetition-penalty R] [--presence-penalty P] \
////   [--frequency-penalty F] [--seed S] [--stop STR]... [--prompt-ids 1,2,3] \
////   [--backend B] [--weights W] [--json]
//// ```
////
//// (`gleam run -m viva_tensor/cli -- MODEL PROMPT ...` where a `gleam` binary
//// exists.) The argument parsing and printing are shared with the Elixir Mix
//// task, in the Erlang module `viva_tensor_cli`.

/// Runs the command line on the VM's plain arguments (those after `-extra`)
/// and halts the VM with the command's exit status (0 on success).
///
/// ```sh
/// erl -noshell -pa _build/ebin -eval 'viva_tensor@cli:main(), halt().' \
///   -extra ../shared/fixtures/stories260k "Once upon a time" --max-new-tokens 32
/// ```
pub fn main() -> Nil {
  halt(cli_main(plain_arguments()))
}

// The arguments after `-extra`, as Erlang strings.
type PlainArguments

@external(erlang, "init", "get_plain_arguments")
fn plain_arguments() -> PlainArguments

@external(erlang, "viva_tensor_cli", "main")
fn cli_main(args: PlainArguments) -> Int

@external(erlang, "erlang", "halt")
fn halt(status: Int) -> Nil
