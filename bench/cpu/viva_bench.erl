%% CPU benchmark driver for viva_tensor through the public BEAM API (bench/cpu/run.sh compiles it
%% into build/bench/ebin beside src/*.erl).
%%
%%   erl -noshell -pa build/bench/ebin -run viva_bench main \
%%       CKPT BACKEND LABEL IDS_FILE NEW_TOKENS REPEATS OUT_JSONL
%%
%% BACKEND is cpu (the Rust NIF; VIVA_TENSOR_NIF points at priv/libviva_tensor_nif.so) or beam
%% (pure Erlang). IDS_FILE holds the prompt ids (comma, space or newline separated), fed as
%% `prompt_ids' (no BOS). One warm-up generation, then REPEATS timed ones with greedy sampling and
%% stop_on_eos false, so every run produces exactly NEW_TOKENS tokens. Appends one JSON line to
%% OUT_JSONL with the raw per-repeat numbers; run.sh takes the medians.
%%
%% Timing comes from the result map: `prefill_us' is the forward over the prompt; `decode_us' covers
%% sampling NEW_TOKENS tokens and the NEW_TOKENS - 1 single-token forwards between them (the first
%% token comes from the prefill logits), so ms/token = decode_us / (NEW_TOKENS - 1).
-module(viva_bench).
-export([main/1]).

main([Ckpt, Backend, Label, IdsFile, NewS, RepsS, Out]) ->
    try
        run(Ckpt, list_to_atom(Backend), Label, IdsFile, list_to_integer(NewS),
            list_to_integer(RepsS), Out),
        halt(0)
    catch
        C:R:St ->
            io:format(standard_error, "viva_bench ~s/~s failed: ~p:~p~n~p~n", [Label, Backend, C, R, St]),
            halt(1)
    end.

run(Ckpt, Backend, Label, IdsFile, New, Reps, Out) ->
    {ok, Bin} = file:read_file(IdsFile),
    Ids = [binary_to_integer(X) || X <- binary:split(Bin, [<<",">>, <<" ">>, <<"\n">>], [global, trim_all])],
    {LoadUs, {ok, Model}} = timer:tc(fun() -> viva_tensor_core:load_model(list_to_binary(Ckpt), #{backend => Backend}) end),
    Info = viva_tensor_core:model_info(Model),
    Backend = maps:get(backend, Info),
    Opts = #{prompt_ids => Ids, max_new_tokens => New, stop_on_eos => false, temperature => 0.0},
    _ = gen(Model, Opts#{max_new_tokens => min(New, 8)}),
    Runs = [gen(Model, Opts) || _ <- lists:seq(1, Reps)],
    Prefill = [P / 1.0e6 || {P, _, _} <- Runs],
    DecodeTok = [D / 1.0e6 / (N - 1) || {_, D, N} <- Runs],
    Engine = case Backend of cpu -> "viva NIF (cpu)"; beam -> "viva pure BEAM"; B -> "viva " ++ atom_to_list(B) end,
    Line = io_lib:format("{\"model\": \"~s\", \"engine\": \"~s\", \"backend\": \"~s\", \"prompt_len\": ~b, "
                         "\"new_tokens\": ~b, \"load_s\": ~.6f, \"prefill_s\": ~s, \"decode_s_per_token\": ~s, "
                         "\"weights\": \"~s\"}~n",
                         [Label, Engine, Backend, length(Ids), New, LoadUs / 1.0e6, floats(Prefill),
                          floats(DecodeTok), maps:get(weights, Info)]),
    ok = file:write_file(Out, Line, [append]),
    io:format("~s ~s: prefill ~s s, decode ~s s/token (load ~.2f s)~n",
              [Label, Engine, floats(Prefill), floats(DecodeTok), LoadUs / 1.0e6]).

gen(Model, Opts) ->
    {ok, R} = viva_tensor_core:generate(Model, <<>>, Opts),
    N = length(maps:get(tokens, R)),
    N = maps:get(max_new_tokens, Opts),
    {maps:get(prefill_us, R), maps:get(decode_us, R), N}.

floats(L) -> ["[", lists:join(", ", [io_lib:format("~.6f", [X]) || X <- L]), "]"].
