%% The command-line front end shared by `mix viva_tensor.generate` and the Gleam CLI module.
%%
%%   MODEL PROMPT [--prompt-ids 1,2,3] [--stop STR]... [--max-new-tokens N] [--temperature T]
%%   [--top-k K] [--top-p P] [--min-p P] [--repetition-penalty R] [--presence-penalty P]
%%   [--frequency-penalty F] [--seed S] [--backend B] [--weights W] [--json] [--no-stop-on-eos]
%%
%% main/1 returns the exit status instead of halting: 0 on success, 1 when loading or
%% generating fails, 2 for bad arguments (flags, values, or options the core rejects).
-module(viva_tensor_cli).

-export([main/1, usage/0]).

-define(USAGE,
    "usage: viva_tensor.generate MODEL PROMPT [options]\n"
    "\n"
    "  MODEL                 checkpoint folder, .safetensors file or .index.json file\n"
    "  PROMPT                text to continue (may be omitted with --prompt-ids)\n"
    "\n"
    "options:\n"
    "  --prompt-ids 1,2,3    feed these token ids as they are (no BOS) instead of PROMPT\n"
    "  --stop STR            stop before STR (repeatable)\n"
    "  --max-new-tokens N    generate at most N tokens (default 64)\n"
    "  --temperature T       0 is greedy (default 0)\n"
    "  --top-k K             keep the K most likely tokens; 0 keeps all (default 0)\n"
    "  --top-p P             nucleus sampling, 0 < P <= 1 (default 1)\n"
    "  --min-p P             keep tokens at least P times as likely as the top one (default 0: off)\n"
    "  --repetition-penalty R  HF's repetition penalty on prompt and output ids, R > 0 (default 1: off)\n"
    "  --presence-penalty P  subtracted from generated ids' logits, -2 <= P <= 2 (default 0)\n"
    "  --frequency-penalty F subtracted per generation of an id, -2 <= F <= 2 (default 0)\n"
    "  --seed S              sampler seed (default 42)\n"
    "  --backend B           auto | cpu | cuda | beam (default auto)\n"
    "  --weights W           auto | f32 | bf16 | fp8 (default auto)\n"
    "  --no-stop-on-eos      keep generating past the EOS token\n"
    "  --json                print one JSON object (text, tokens, prompt_tokens, backend,\n"
    "                        finish_reason, prefill_ms, decode_ms, decode_tok_s)\n"
    "  -h, --help            show this help\n"
).

%% Flags that set one generate option: {flag, option, integer | number}.
-define(GEN_FLAGS, [{<<"max-new-tokens">>, max_new_tokens, integer}, {<<"temperature">>, temperature, number},
                    {<<"top-k">>, top_k, integer}, {<<"top-p">>, top_p, number}, {<<"min-p">>, min_p, number},
                    {<<"repetition-penalty">>, repetition_penalty, number},
                    {<<"presence-penalty">>, presence_penalty, number},
                    {<<"frequency-penalty">>, frequency_penalty, number}, {<<"seed">>, seed, integer}]).
-define(VALUED, [<<"prompt-ids">>, <<"stop">>, <<"backend">>, <<"weights">> | [F || {F, _, _} <- ?GEN_FLAGS]]).

-record(cli, {
    positional = [] :: [binary()],
    load = #{} :: map(),
    gen = #{} :: map(),
    stop = [] :: [binary()],
    json = false :: boolean(),
    help = false :: boolean()
}).

%% @doc The usage text.
-spec usage() -> string().
usage() -> ?USAGE.

%% @doc Runs the command line `Args` (strings or binaries) and returns the exit status.
-spec main([string() | binary()]) -> non_neg_integer().
main(Args) ->
    try run_args([to_bin(A) || A <- Args]) of
        Status -> Status
    catch
        throw:{usage, Message} ->
            err(["viva_tensor: ", Message, "\n", "try --help for the options\n"]),
            2
    end.

run_args(Args) ->
    case parse(Args, #cli{}) of
        #cli{help = true} ->
            out(list_to_binary(?USAGE)),
            0;
        Cli ->
            run(Cli)
    end.

%% --- argument parsing -------------------------------------------------------------------

parse([], Cli) ->
    Cli#cli{positional = lists:reverse(Cli#cli.positional), stop = lists:reverse(Cli#cli.stop)};
parse([<<"--">> | Rest], Cli) ->
    parse([], Cli#cli{positional = lists:reverse(Rest, Cli#cli.positional)});
parse([<<"-h">> | Rest], Cli) ->
    parse(Rest, Cli#cli{help = true});
parse([<<"--help">> | Rest], Cli) ->
    parse(Rest, Cli#cli{help = true});
parse([<<"--json">> | Rest], Cli) ->
    parse(Rest, Cli#cli{json = true});
parse([<<"--no-stop-on-eos">> | Rest], Cli = #cli{gen = Gen}) ->
    parse(Rest, Cli#cli{gen = Gen#{stop_on_eos => false}});
parse([<<"--", Flag/binary>> | Rest0], Cli) when Flag =/= <<>> ->
    case binary:split(Flag, <<"=">>) of
        [Name, Value] ->
            parse(Rest0, flag(Name, Value, Cli));
        [Name] ->
            case {lists:member(Name, ?VALUED), Rest0} of
                {true, [Value | Rest]} -> parse(Rest, flag(Name, Value, Cli));
                {true, []} -> usage_error("--~ts needs a value", [Name]);
                {false, _} -> usage_error("unknown option --~ts", [Name])
            end
    end;
parse([<<"-", C, _/binary>> = Arg | _], _Cli) when C < $0; C > $9 ->
    usage_error("unknown option ~ts", [Arg]);
parse([Arg | Rest], Cli = #cli{positional = Pos}) ->
    parse(Rest, Cli#cli{positional = [Arg | Pos]}).

flag(<<"prompt-ids">>, V, Cli = #cli{gen = G}) ->
    Cli#cli{gen = G#{prompt_ids => ids(V)}};
flag(<<"stop">>, V, Cli = #cli{stop = S}) ->
    Cli#cli{stop = [V | S]};
flag(<<"backend">>, V, Cli = #cli{load = L}) ->
    Cli#cli{load = L#{backend => choice(<<"--backend">>, V, [auto, cpu, cuda, beam])}};
flag(<<"weights">>, V, Cli = #cli{load = L}) ->
    Cli#cli{load = L#{weights => choice(<<"--weights">>, V, [auto, f32, bf16, fp8])}};
flag(Name, _V, _Cli) when Name =:= <<"json">>; Name =:= <<"no-stop-on-eos">>; Name =:= <<"help">> ->
    usage_error("--~ts takes no value", [Name]);
flag(Name, V, Cli = #cli{gen = G}) ->
    case lists:keyfind(Name, 1, ?GEN_FLAGS) of
        {_, Key, integer} -> Cli#cli{gen = G#{Key => integer(<<"--", Name/binary>>, V)}};
        {_, Key, number} -> Cli#cli{gen = G#{Key => number(<<"--", Name/binary>>, V)}};
        false -> usage_error("unknown option --~ts", [Name])
    end.

%% "1,2,3" (spaces allowed around the commas) -> [1, 2, 3].
ids(V) ->
    Parts = [string:trim(P) || P <- binary:split(V, <<",">>, [global])],
    case Parts of
        [<<>>] -> [];
        _ -> [integer(<<"--prompt-ids">>, P) || P <- Parts]
    end.

integer(Flag, V) ->
    case strict_integer(V) of
        {ok, I} -> I;
        error -> usage_error("~ts: expected an integer, got \"~ts\"", [Flag, V])
    end.

number(Flag, V) ->
    case strict_number(V) of
        {ok, N} -> N;
        error -> usage_error("~ts: expected a number, got \"~ts\"", [Flag, V])
    end.

choice(Flag, V, Atoms) ->
    case [A || A <- Atoms, atom_to_binary(A, utf8) =:= V] of
        [A] ->
            A;
        [] ->
            Names = lists:join(" | ", [atom_to_list(A) || A <- Atoms]),
            usage_error("~ts: expected one of ~ts, got \"~ts\"", [Flag, Names, V])
    end.

strict_integer(V) ->
    case string:to_integer(V) of
        {I, <<>>} when is_integer(I) -> {ok, I};
        _ -> error
    end.

%% Integers ("0", "-3") and decimals ("0.5", ".5", "5.", "1e-3", "2.5E+2"), nothing else.
strict_number(V) ->
    case strict_integer(V) of
        {ok, I} ->
            {ok, float(I)};
        error ->
            case re:run(V, "^([+-]?)([0-9]*)(?:\\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$",
                        [{capture, all_but_first, binary}]) of
                {match, [Sign, Int, Frac | Exp]} when Int =/= <<>>; Frac =/= <<>> ->
                    Canonical = iolist_to_binary([
                        Sign, nonempty(Int), ".", nonempty(Frac),
                        case Exp of
                            [E] when E =/= <<>> -> ["e", E];
                            _ -> []
                        end
                    ]),
                    try {ok, binary_to_float(Canonical)}
                    catch error:badarg -> error
                    end;
                _ ->
                    error
            end
    end.

nonempty(<<>>) -> <<"0">>;
nonempty(B) -> B.

usage_error(Format, Args) ->
    throw({usage, io_lib:format(Format, Args)}).

%% --- running ----------------------------------------------------------------------------

run(Cli = #cli{positional = Positional, gen = Gen0}) ->
    HasIds = maps:is_key(prompt_ids, Gen0),
    {Path, Prompt} =
        case Positional of
            [P, Text] -> {P, Text};
            [P] when HasIds -> {P, <<>>};
            [_] -> throw_usage("missing PROMPT (or --prompt-ids)");
            [] -> throw_usage("missing MODEL and PROMPT");
            [_, _ | Extra] -> throw_usage(io_lib:format("unexpected argument \"~ts\"", [hd(Extra)]))
        end,
    Gen =
        case Cli#cli.stop of
            [] -> Gen0;
            Stops -> Gen0#{stop => Stops}
        end,
    case viva_tensor_core:load_model(Path, Cli#cli.load) of
        {ok, Model} when Cli#cli.json ->
            finish(viva_tensor_core:generate(Model, Prompt, Gen), fun print_json/1);
        {ok, Model} ->
            finish(stream(Model, Prompt, Gen), fun print_stats/1);
        {error, Reason} ->
            report(Reason)
    end.

throw_usage(Message) ->
    throw({usage, Message}).

finish({ok, Result}, Print) ->
    Print(Result),
    0;
finish({error, Reason}, _Print) ->
    report(Reason).

%% Options the core rejects are bad arguments (2); anything else failed to run (1).
report({invalid_option, Message}) ->
    err(["viva_tensor: invalid option: ", Message, "\n"]),
    2;
report({Kind, Message}) when is_atom(Kind), is_binary(Message) ->
    err(["viva_tensor: error: ", atom_to_binary(Kind, utf8), ": ", Message, "\n"]),
    1;
report(Other) ->
    err(io_lib:format("viva_tensor: error: ~tp~n", [Other])),
    1.

%% Streams the pieces to stdout as they come; returns the done Stats with the final text.
stream(Model, Prompt, Gen) ->
    case viva_tensor_core:stream_start(Model, Prompt, Gen) of
        %% No cancel needed: the job ends with done/error, or when this process dies.
        {ok, {viva_tensor_job, Ref, _}} ->
            receive_pieces(Ref, 0);
        {error, _} = Error ->
            Error
    end.

receive_pieces(Ref, Sent) ->
    receive
        {viva_tensor, Ref, {token, _Id, Piece}} ->
            out(Piece),
            receive_pieces(Ref, Sent + byte_size(Piece));
        {viva_tensor, Ref, {done, Stats}} ->
            %% The text held back as a possible stop-sequence prefix comes with done.
            case Stats of
                #{text := Text} when byte_size(Text) > Sent ->
                    out(binary:part(Text, Sent, byte_size(Text) - Sent));
                _ ->
                    ok
            end,
            out(<<"\n">>),
            {ok, Stats};
        {viva_tensor, Ref, {error, Reason}} ->
            out(<<"\n">>),
            {error, Reason}
    end.

print_stats(Stats = #{tokens := Tokens, prompt_tokens := PromptTokens}) ->
    N = length(Tokens),
    PrefillMs = ms(maps:get(prefill_us, Stats, 0)),
    DecodeMs = ms(maps:get(decode_us, Stats, 0)),
    err(io_lib:format(
        "[viva_tensor] ~b tokens, ~.1f tok/s decode (~.1f ms); prompt ~b tokens, prefill ~.1f ms; "
        "backend ~ts; finish ~ts~n",
        [N, tok_s(Stats), DecodeMs, length(PromptTokens), PrefillMs,
         to_text(maps:get(backend, Stats, unknown)), to_text(maps:get(finish_reason, Stats, unknown))]
    )).

print_json(Result = #{text := Text, tokens := Tokens, prompt_tokens := PromptTokens}) ->
    PrefillUs = maps:get(prefill_us, Result, 0),
    DecodeUs = maps:get(decode_us, Result, 0),
    Object = #{
        <<"text">> => Text,
        <<"tokens">> => Tokens,
        <<"prompt_tokens">> => PromptTokens,
        <<"backend">> => to_text(maps:get(backend, Result, null)),
        <<"finish_reason">> => to_text(maps:get(finish_reason, Result, null)),
        <<"prefill_us">> => PrefillUs,
        <<"decode_us">> => DecodeUs,
        <<"prefill_ms">> => ms(PrefillUs),
        <<"decode_ms">> => ms(DecodeUs),
        <<"decode_tok_s">> => tok_s(Result)
    },
    out(iolist_to_binary([viva_tensor_json:encode(Object), "\n"])).

%% Decode speed: the first token comes out of the prefill, the others out of decode_us.
tok_s(#{tokens := Tokens} = Stats) ->
    case {length(Tokens) - 1, maps:get(decode_us, Stats, 0)} of
        {Steps, Us} when Steps > 0, Us > 0 -> Steps * 1.0e6 / Us;
        _ -> 0.0
    end.

ms(Us) when is_integer(Us) -> Us / 1000;
ms(_) -> 0.0.

to_text(null) -> null;
to_text(A) when is_atom(A) -> atom_to_binary(A, utf8);
to_text(B) when is_binary(B) -> B;
to_text(Other) -> iolist_to_binary(io_lib:format("~tp", [Other])).

%% --- output -----------------------------------------------------------------------------

%% Pieces are UTF-8 binaries. A device in latin1 mode (erl -noshell) gets the raw bytes,
%% which a UTF-8 terminal shows right; a unicode device (Elixir, CaptureIO) gets the text.
out(<<>>) ->
    ok;
out(Bin) ->
    put_utf8(standard_io, Bin).

err(IoData) ->
    put_utf8(standard_error, unicode:characters_to_binary(IoData)).

put_utf8(Device, Bin) ->
    case io:getopts(Device) of
        Opts when is_list(Opts) ->
            case proplists:get_value(encoding, Opts, latin1) of
                latin1 -> io:request(Device, {put_chars, latin1, Bin});
                _ -> io:put_chars(Device, Bin)
            end;
        _ ->
            io:put_chars(Device, Bin)
    end,
    ok.

%% Arguments from init:get_plain_arguments/0 are code points when the VM decodes its
%% command line as UTF-8 (+fnu, the default in a UTF-8 locale), else raw bytes.
to_bin(A) when is_binary(A) -> A;
to_bin(A) when is_list(A) ->
    case file:native_name_encoding() =:= latin1 andalso lists:all(fun(C) -> C < 256 end, A) of
        true ->
            list_to_binary(A);
        false ->
            case unicode:characters_to_binary(A) of
                B when is_binary(B) -> B;
                _ -> list_to_binary(A)
            end
    end.
