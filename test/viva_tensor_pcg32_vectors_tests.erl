%% @doc The pure-Erlang PCG32 and sampler against `test/vectors/pcg32.json', which the Rust engine
%% generated (native/viva_core/tests/pcg32_vectors.rs): both sides must draw the same numbers
%% and the same tokens bit for bit.
-module(viva_tensor_pcg32_vectors_tests).
-include_lib("eunit/include/eunit.hrl").

vectors() ->
    {ok, Bin} = file:read_file(filename:join([root(), "test", "vectors", "pcg32.json"])),
    {ok, V} = viva_tensor_json:decode(Bin),
    V.

root() ->
    filename:dirname(filename:dirname(filename:absname(?FILE))).

stream_test_() ->
    #{<<"streams">> := Streams} = vectors(),
    [{binary_to_list(S), fun() -> check_stream(Seed, U32s, Us) end}
     || #{<<"seed">> := S, <<"next_u32">> := U32s, <<"uniform_times_2_24">> := Us} <- Streams,
        Seed <- [binary_to_integer(S)]].

check_stream(Seed, U32s, Us) ->
    {Got, _} = lists:mapfoldl(fun(_, R) -> viva_tensor_beam_pcg32:next_u32(R) end,
                              viva_tensor_beam_pcg32:new(Seed), U32s),
    ?assertEqual(U32s, Got),
    {GotU, _} = lists:mapfoldl(fun(_, R) -> viva_tensor_beam_pcg32:uniform(R) end,
                               viva_tensor_beam_pcg32:new(Seed), Us),
    ?assertEqual(Us, [round(U * 16777216) || U <- GotU]).

sampler_draws_test_() ->
    #{<<"sampler_logits">> := Logits, <<"sampler_draws">> := Draws} = vectors(),
    Floats = [float(L) || L <- Logits],
    [{iolist_to_binary(io_lib:format("seed ~s T ~p k ~p p ~p min_p ~p", [S, T, K, P, maps:get(<<"min_p">>, D, 0)])),
      fun() ->
          Opts = #{temperature => float(T), top_k => K, top_p => float(P),
                   min_p => float(maps:get(<<"min_p">>, D, 0.0))},
          {Got, _} = lists:mapfoldl(fun(_, R) -> viva_tensor_beam_sampler:sample(Floats, Opts, R) end,
                                    viva_tensor_beam_pcg32:new(binary_to_integer(S)), Tokens),
          ?assertEqual(Tokens, Got)
      end}
     || #{<<"seed">> := S, <<"temperature">> := T, <<"top_k">> := K, <<"top_p">> := P,
          <<"tokens">> := Tokens} = D <- Draws].

%% Penalised generation: each of 16 draws after the penalties of the history so far (the prompt,
%% then every id drawn), as the beam backend's generate loop keeps it.
penalised_draws_test_() ->
    #{<<"sampler_logits">> := Logits, <<"penalty_prompt">> := Prompt, <<"penalised_draws">> := Draws} = vectors(),
    Floats = [float(L) || L <- Logits],
    [{iolist_to_binary(io_lib:format("seed ~s T ~p rep ~p pres ~p freq ~p", [S, T, Rep, Pres, Freq])),
      fun() ->
          Opts = #{temperature => float(T), top_k => K, top_p => float(P), min_p => float(M)},
          Pen = #{repetition => float(Rep), presence => float(Pres), frequency => float(Freq)},
          Seen0 = maps:from_list([{I, true} || I <- Prompt]),
          {Got, _} = lists:mapfoldl(
                       fun(_, {R, Seen, Counts}) ->
                               Pl = viva_tensor_beam_sampler:penalize(Floats, Pen, Seen, Counts),
                               {Id, R1} = viva_tensor_beam_sampler:sample(Pl, Opts, R),
                               {Id, {R1, Seen#{Id => true}, Counts#{Id => maps:get(Id, Counts, 0) + 1}}}
                       end, {viva_tensor_beam_pcg32:new(binary_to_integer(S)), Seen0, #{}}, Tokens),
          ?assertEqual(Tokens, Got)
      end}
     || #{<<"seed">> := S, <<"temperature">> := T, <<"top_k">> := K, <<"top_p">> := P, <<"min_p">> := M,
          <<"repetition_penalty">> := Rep, <<"presence_penalty">> := Pres, <<"frequency_penalty">> := Freq,
          <<"tokens">> := Tokens} <- Draws].
