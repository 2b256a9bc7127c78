%% End-to-end GPU timing through the BEAM (NIF + Erlang core), for bench/gpu/run.sh's `beam` step.
%%   erl -noshell -pa EBIN -run viva_gpu_beam main CHECKPOINT_DIR WEIGHTS [BACKEND (default cuda)]
%% Prints decode tok/s from generate/3's decode_us (256 new tokens after a 128-id prompt; decode_us
%% covers the 255 decode steps after the token sampled from the prefill logits) and prefill_us of a
%% 512-id prompt, and appends one JSON line to $OUT/results.jsonl when OUT is set.
-module(viva_gpu_beam).
-export([main/1]).

ids(N, Seed, Vocab) ->
    {L, _} = lists:mapfoldl(
               fun(_, S) ->
                       S1 = (S * 6364136223846793005 + 1442695040888963407) band 16#FFFFFFFFFFFFFFFF,
                       {3 + ((S1 bsr 33) rem (Vocab - 3)), S1}
               end, Seed, lists:seq(1, N)),
    L.

median(L) -> lists:nth(length(L) div 2 + 1, lists:sort(L)).

main([Dir, Weights]) -> main([Dir, Weights, "cuda"]);
main([Dir, Weights, Backend]) ->
    T0 = erlang:monotonic_time(millisecond),
    {ok, M} = viva_tensor_core:load_model(list_to_binary(Dir),
                                          #{backend => list_to_atom(Backend), weights => list_to_atom(Weights)}),
    LoadMs = erlang:monotonic_time(millisecond) - T0,
    Info = viva_tensor_core:model_info(M),
    Vocab = maps:get(vocab_size, Info),
    P128 = ids(128, 1, Vocab),
    P512 = ids(512, 2, Vocab),
    Gen = fun(P, N) ->
                  {ok, R} = viva_tensor_core:generate(M, <<>>, #{prompt_ids => P, max_new_tokens => N,
                                                                 stop_on_eos => false}),
                  R
          end,
    _ = Gen(P128, 32),
    Runs = [begin
                R = Gen(P128, 256),
                Toks = length(maps:get(tokens, R)),
                {maps:get(decode_us, R) / (Toks - 1), Toks}
            end || _ <- lists:seq(1, 5)],
    UsTok = median([U || {U, _} <- Runs]),
    _ = Gen(P512, 1),
    Pre = median([maps:get(prefill_us, Gen(P512, 1)) || _ <- lists:seq(1, 3)]),
    R1 = Gen(P128, 16),
    io:format("beam ~s: backend ~p, load ~p ms, decode ~.1f tok/s (~.3f ms/token, median of 5 x ~p tokens), "
              "prefill 512 ~.2f ms; first tokens ~w~n",
              [Weights, maps:get(backend, R1), LoadMs, 1.0e6 / UsTok, UsTok / 1000, element(2, hd(Runs)),
               Pre / 1000, lists:sublist(maps:get(tokens, R1), 8)]),
    case os:getenv("OUT") of
        false -> ok;
        Out ->
            Line = io_lib:format("{\"beam\":\"~s\",\"tok_s\":~.2f,\"ms_tok\":~.4f,\"prefill_ms\":~.3f}~n",
                                 [Weights, 1.0e6 / UsTok, UsTok / 1000, Pre / 1000]),
            file:write_file(filename:join(Out, "results.jsonl"), Line, [append])
    end,
    halt(0);
main(Args) when is_list(Args) ->
    io:format("usage: viva_gpu_beam CHECKPOINT_DIR WEIGHTS (got ~p)~n", [Args]),
    halt(2).
