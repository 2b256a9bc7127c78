%% @doc EUnit tests of the pure-BEAM model, loader errors and generation jobs
%% (viva_tensor_beam_model, viva_tensor_beam_config, viva_tensor_beam).
%%
%% References are independent of this code: HF transformers fp32 outputs in
%% the fixtures' reference.json (greedy ids, greedy text, last-position top-10
%% logits and L2 norm), and hand-worked values in comments. Broken, converted
%% and re-configured checkpoints are written under a temp dir from the
%% fixtures (copy of config/tokenizer, rewritten safetensors).
-module(viva_tensor_beam_model_tests).

-include_lib("eunit/include/eunit.hrl").

-define(M, viva_tensor_beam_model).
-define(B, viva_tensor_beam).
-define(H, viva_tensor_beam_safetensors_tests).
-define(SLOW(T), {timeout, 600, T}).

%%====================================================================
%% Helpers

fixture(Name) -> ?H:fixture(Name).

reference(Name) ->
    {ok, Bin} = file:read_file(filename:join(fixture(Name), "reference.json")),
    {ok, Ref} = viva_tensor_json:decode(Bin),
    Ref.

cases(Name) -> maps:get(<<"cases">>, reference(Name)).

load(Path) ->
    {ok, M} = ?M:load(Path),
    M.

logits(M, Ids) ->
    {ok, L, _} = ?M:forward(M, ?M:new_cache(M), Ids, 0),
    L.

%% greedy decoding straight on the model (no tokenizer): N argmax tokens
greedy(M, Ids, N) ->
    {ok, L, C} = ?M:forward(M, ?M:new_cache(M), Ids, 0),
    greedy_loop(M, C, L, length(Ids), N, []).

greedy_loop(_M, _C, L, _P, 1, Acc) ->
    lists:reverse([viva_tensor_beam_sampler:argmax(L) | Acc]);
greedy_loop(M, C, L, P, N, Acc) ->
    T = viva_tensor_beam_sampler:argmax(L),
    {ok, L2, C2} = ?M:forward(M, C, [T], P),
    greedy_loop(M, C2, L2, P + 1, N - 1, [T | Acc]).

%% top-10 logits within 1e-4 relative (of max(|ref|, 1)), L2 norm within 1e-4 relative
check_logits(Logits, Case) ->
    LP = maps:get(<<"last_position">>, Case),
    T = list_to_tuple(Logits),
    [?assert(abs(element(I + 1, T) - V) =< 1.0e-4 * max(1.0, abs(V))) || [I, V] <- maps:get(<<"top10">>, LP)],
    L2 = math:sqrt(lists:sum([X * X || X <- Logits])),
    Ref = maps:get(<<"l2_norm">>, LP),
    ?assert(abs(L2 - Ref) =< 1.0e-4 * Ref),
    ?assertEqual(maps:get(<<"argmax">>, LP), viva_tensor_beam_sampler:argmax(Logits)).

%% Copies a fixture checkpoint to a temp dir with its tensors and config
%% rewritten. TensorsFun maps the raw [{Name, Dtype, Shape, Bytes}] list;
%% ConfigFun maps the config.json map (or returns a binary to write as is).
make_ckpt(Tag, Fixture, TensorsFun, ConfigFun) ->
    Src = fixture(Fixture),
    Dir = ?H:tmp_dir(Tag),
    {ok, CfgBin} = file:read_file(filename:join(Src, "config.json")),
    {ok, Cfg} = viva_tensor_json:decode(CfgBin),
    NewCfg = case ConfigFun(Cfg) of
                 B when is_binary(B) -> B;
                 Map -> viva_tensor_json:encode(Map)
             end,
    ok = file:write_file(filename:join(Dir, "config.json"), NewCfg),
    {ok, _} = file:copy(filename:join(Src, "tokenizer.json"), filename:join(Dir, "tokenizer.json")),
    Raw = ?H:read_raw(filename:join(Src, "model.safetensors")),
    case TensorsFun(Raw) of
        none -> ok;
        Tensors -> ?H:write_safetensors(filename:join(Dir, "model.safetensors"), Tensors)
    end,
    Dir.

same(X) -> X.

%% f32 bytes -> nearest bf16 (round half to even on the bit pattern)
to_bf16(F32) ->
    << <<(bf16_round(U)):16/little>> || <<U:32/little>> <= F32 >>.

bf16_round(U) ->
    (U + 16#7FFF + ((U bsr 16) band 1)) bsr 16.

%% f64 -> nearest f16 bit pattern (round half to even), for finite values
%% within the f16 range; computed with exact f64 arithmetic.
f16_bits(X) when X < 0.0 -> 16#8000 bor f16_bits(-X);
f16_bits(X) when X == 0.0 -> 0;
f16_bits(X) ->
    E0 = floor(math:log2(X)),
    P0 = math:pow(2, E0),
    E = if
            X >= 2 * P0 -> E0 + 1;   % guard against log2 rounding
            X < P0 -> E0 - 1;
            true -> E0
        end,
    case E < -14 of
        true ->
            %% subnormal: X = q * 2^-24
            round_even(X * math:pow(2, 24));
        false ->
            Q = round_even((X / math:pow(2, E) - 1.0) * 1024),
            %% Q = 1024 carries into the exponent, which the bit layout does by itself
            ((E + 15) bsl 10) + Q
    end.

round_even(Y) ->
    F = floor(Y),
    D = Y - F,
    if
        D > 0.5 -> F + 1;
        D < 0.5 -> F;
        F rem 2 =:= 0 -> F;
        true -> F + 1
    end.

to_f16(F32) ->
    << <<(f16_bits(X)):16/little>> || <<X:32/float-little>> <= F32 >>.

%% the f32 bytes of values that are exactly the f16 / bf16 ones
bf16_as_f32(F32) -> << <<0:16, H:16/bitstring>> || <<H:16/bitstring>> <= to_bf16(F32) >>.

f16_as_f32(F32) ->
    << <<(f16_value(H)):32/float-little>> || <<H:16/little>> <= to_f16(F32) >>.

f16_value(H) ->
    S = case H bsr 15 of 0 -> 1.0; 1 -> -1.0 end,
    E = (H bsr 10) band 31,
    M = H band 1023,
    case E of
        0 -> S * M * math:pow(2, -24);
        _ -> S * (1 + M / 1024) * math:pow(2, E - 15)
    end.

convert(Raw, Fun, Dtype) ->
    [{N, case D of <<"F32">> -> Dtype; _ -> D end, S, Fun(B)} || {N, D, S, B} <- Raw].

err_msg({error, {_Kind, Msg}}) -> Msg.

%%====================================================================
%% Logits and greedy ids against HF (model only, no tokenizer)

stories_logits_test_() ->
    M = load(fixture("stories260k")),
    [{binary_to_list(maps:get(<<"prompt">>, C)),
      fun() -> check_logits(logits(M, maps:get(<<"input_ids">>, C)), C) end}
     || C <- cases("stories260k")].

bytelevel_logits_test_() ->
    M = load(fixture("bytelevel-tiny")),
    [{binary_to_list(maps:get(<<"label">>, C)),
      ?SLOW(fun() -> check_logits(logits(M, maps:get(<<"input_ids">>, C)), C) end)}
     || C <- cases("bytelevel-tiny")].

stories_greedy_test_() ->
    M = load(fixture("stories260k")),
    [?SLOW(?_assertEqual(maps:get(<<"greedy_new_ids">>, C),
                         greedy(M, maps:get(<<"input_ids">>, C), length(maps:get(<<"greedy_new_ids">>, C)))))
     || C <- cases("stories260k")].

bytelevel_greedy_test_() ->
    M = load(fixture("bytelevel-tiny")),
    [?SLOW(?_assertEqual(maps:get(<<"greedy_new_ids">>, C),
                         greedy(M, maps:get(<<"input_ids">>, C), length(maps:get(<<"greedy_new_ids">>, C)))))
     || C <- cases("bytelevel-tiny")].

%% a prefill of n ids in one call equals n-1 ids then one decode step, exactly
prefill_equals_steps_test() ->
    M = load(fixture("stories260k")),
    Ids = [1, 403, 407, 261, 378],
    {ok, A, CA} = ?M:forward(M, ?M:new_cache(M), Ids, 0),
    {ok, _, C1} = ?M:forward(M, ?M:new_cache(M), lists:sublist(Ids, 4), 0),
    {ok, B, CB} = ?M:forward(M, C1, [378], 4),
    ?assertEqual(A, B),
    ?assertEqual(5, ?M:cache_len(CA)),
    ?assertEqual(CA, CB).

forward_errors_test_() ->
    M = load(fixture("stories260k")),
    C = ?M:new_cache(M),
    [?_assertMatch({error, {token_out_of_range, _}}, ?M:forward(M, C, [1, 512], 0)),
     ?_assertMatch({error, {token_out_of_range, _}}, ?M:forward(M, C, [-1], 0)),
     ?_assertMatch({error, {prompt_too_long, _}}, ?M:forward(M, C, lists:duplicate(513, 1), 0)),
     ?_assertMatch({error, {invalid_option, _}}, ?M:forward(M, C, [1], 3)),
     ?_assertMatch({error, {invalid_option, _}}, ?M:forward(M, C, [], 0))].

%% an index.json checkpoint (two shards) gives the same logits as the file
sharded_checkpoint_test() ->
    Dir = make_ckpt("model_sharded", "stories260k", fun(_) -> none end, fun same/1),
    Raw = ?H:read_raw(filename:join(fixture("stories260k"), "model.safetensors")),
    {A, B} = lists:split(30, Raw),
    ?H:write_safetensors(filename:join(Dir, "s1.safetensors"), A),
    ?H:write_safetensors(filename:join(Dir, "s2.safetensors"), B),
    Map = maps:from_list([{N, <<"s1.safetensors">>} || {N, _, _, _} <- A] ++
                         [{N, <<"s2.safetensors">>} || {N, _, _, _} <- B]),
    Index = filename:join(Dir, "model.safetensors.index.json"),
    ok = file:write_file(Index, viva_tensor_json:encode(#{<<"weight_map">> => Map})),
    Ids = [1, 403, 407, 261, 378],
    Ref = logits(load(fixture("stories260k")), Ids),
    ?assertEqual(Ref, logits(load(Index), Ids)),
    ?assertEqual(Ref, logits(load(Dir), Ids)),
    %% a path to the .safetensors file works too
    ?assertEqual(Ref, logits(load(filename:join(fixture("stories260k"), "model.safetensors")), Ids)).

%% an explicit lm_head.weight (untied) equal to the embeddings changes nothing
untied_head_test() ->
    Dir = make_ckpt("untied", "stories260k",
                    fun(Raw) ->
                        {_, D, S, E} = lists:keyfind(<<"model.embed_tokens.weight">>, 1, Raw),
                        Raw ++ [{<<"lm_head.weight">>, D, S, E}]
                    end,
                    fun(C) -> C#{<<"tie_word_embeddings">> => false} end),
    Ids = [1, 403, 407],
    ?assertEqual(logits(load(fixture("stories260k")), Ids), logits(load(Dir), Ids)),
    ?assertEqual(false, maps:get(tie_word_embeddings, ?M:config(load(Dir)))).

%% llama3 rope scaling, head_dim 8, theta 10000: base inv_freq [1, 0.1, 0.01, 0.001],
%% wavelengths 2*pi/f = [6.28, 62.8, 628.3, 6283]. factor 8, low 1, high 4,
%% original context 2048: low-freq wavelen 2048, high-freq wavelen 512.
%%   f = 1, 0.1: wavelen < 512 -> unchanged
%%   f = 0.001: wavelen 6283 > 2048 -> 0.001 / 8 = 0.000125
%%   f = 0.01: s = (2048 / 628.3185 - 1) / (4 - 1) = (3.259493 - 1) / 3 = 0.753164;
%%             (1 - s) * 0.01 / 8 + s * 0.01 = 0.000308545 + 0.00753164 = 0.00784019
llama3_rope_test() ->
    Dir = make_ckpt("llama3", "stories260k", fun(_) -> none end,
                    fun(C) -> C#{<<"rope_scaling">> => #{<<"rope_type">> => <<"llama3">>, <<"factor">> => 8.0,
                                                         <<"low_freq_factor">> => 1.0,
                                                         <<"high_freq_factor">> => 4.0,
                                                         <<"original_max_position_embeddings">> => 2048}} end),
    {ok, _} = file:copy(filename:join(fixture("stories260k"), "model.safetensors"),
                        filename:join(Dir, "model.safetensors")),
    %% the frequencies are kept as f32 values (like HF): compare to 1e-7 relative
    Near = fun(A, B) -> abs(A - B) =< 1.0e-7 * B end,
    [F0, F1, F2, F3] = ?M:rope_inv_freq(load(Dir)),
    ?assert(Near(F0, 1.0)),
    ?assert(Near(F1, 0.1)),
    ?assert(abs(F2 - 0.00784019) < 1.0e-8),
    ?assert(Near(F3, 0.000125)),
    %% without scaling: theta^(-2i/hd)
    [G0, G1, G2, G3] = ?M:rope_inv_freq(load(fixture("stories260k"))),
    ?assert(Near(G0, 1.0) andalso Near(G1, 0.1) andalso Near(G2, 0.01) andalso Near(G3, 0.001)).

%%====================================================================
%% BF16 and F16 checkpoints
%%
%% What is compared, honestly: (1) the loader's conversion is exact: a BF16
%% (F16) checkpoint gives bit-identical logits to an F32 checkpoint holding
%% the same bf16-(f16-)rounded values, the rounding done here independently
%% (bit arithmetic for bf16, exact f64 arithmetic for f16); (2) against HF's
%% f32 reference the rounded weights are a slightly different model, so only
%% the greedy tokens are compared. Measured when this test was written: both
%% the bf16 and the f16 variant reproduce all 64 reference tokens of all 4
%% stories260k cases (the smallest top-1/top-2 margin there is 0.021); the
%% test asserts case 0 in full. Should a future fixture drift under bf16
%% rounding, (1) is the exact check and (2) is the one to relax.

half_variant(Tag, Dtype, ToHalf, AsF32) ->
    D1 = make_ckpt(Tag ++ "_half", "stories260k", fun(Raw) -> convert(Raw, ToHalf, Dtype) end, fun same/1),
    D2 = make_ckpt(Tag ++ "_f32", "stories260k", fun(Raw) -> convert(Raw, AsF32, <<"F32">>) end, fun same/1),
    {load(D1), load(D2)}.

bf16_checkpoint_test_() ->
    ?SLOW(fun() ->
        {Half, Ref} = half_variant("bf16", <<"BF16">>, fun to_bf16/1, fun bf16_as_f32/1),
        [C | _] = cases("stories260k"),
        Ids = maps:get(<<"input_ids">>, C),
        ?assertEqual(logits(Ref, Ids), logits(Half, Ids)),
        Greedy = maps:get(<<"greedy_new_ids">>, C),
        ?assertEqual(Greedy, greedy(Half, Ids, length(Greedy)))
    end).

f16_checkpoint_test_() ->
    ?SLOW(fun() ->
        {Half, Ref} = half_variant("f16", <<"F16">>, fun to_f16/1, fun f16_as_f32/1),
        [C | _] = cases("stories260k"),
        Ids = maps:get(<<"input_ids">>, C),
        ?assertEqual(logits(Ref, Ids), logits(Half, Ids)),
        Greedy = maps:get(<<"greedy_new_ids">>, C),
        ?assertEqual(Greedy, greedy(Half, Ids, length(Greedy)))
    end).

%% the test's own f16 rounding against hand values (it feeds the checks above)
f16_rounding_helper_test() ->
    ?assertEqual(16#3C00, f16_bits(1.0)),
    ?assertEqual(16#C000, f16_bits(-2.0)),
    ?assertEqual(16#3555, f16_bits(1 / 3)),
    ?assertEqual(16#0001, f16_bits(math:pow(2, -24))),
    ?assertEqual(16#0000, f16_bits(math:pow(2, -25))),            % tie -> even (0)
    ?assertEqual(16#0002, f16_bits(3 * math:pow(2, -25))),        % tie -> even (2)
    ?assertEqual(16#3C00, f16_bits(1.0 + math:pow(2, -11))),      % tie -> even
    ?assertEqual(16#3C02, f16_bits(1.0 + 3 * math:pow(2, -11))),  % tie -> even
    ?assertEqual(16#4000, f16_bits(1.99999)),                      % carry into exponent
    ?assertEqual(16#3F80, bf16_round(16#3F800000)),
    ?assertEqual(16#3F80, bf16_round(16#3F808000)),               % tie -> even
    ?assertEqual(16#3F82, bf16_round(16#3F818000)).               % tie -> even

%%====================================================================
%% Loader errors

expect_error(Kind, Path, Parts) ->
    R = ?M:load(Path),
    ?assertMatch({error, {Kind, _}}, R),
    [?assert(?H:contains(err_msg(R), P)) || P <- Parts].

missing_path_test() ->
    P = filename:join(?H:tmp_dir("nopath"), "nothing_here"),
    expect_error(not_found, P, [P]),
    ?assertMatch({error, {not_found, _}}, ?B:load_model(list_to_binary(P), #{})).

no_weights_test() ->
    Dir = make_ckpt("noweights", "stories260k", fun(_) -> none end, fun same/1),
    expect_error(no_weights, Dir, [Dir]).

truncated_test() ->
    Dir = make_ckpt("truncated", "stories260k", fun same/1, fun same/1),
    F = filename:join(Dir, "model.safetensors"),
    {ok, Bin} = file:read_file(F),
    ok = file:write_file(F, binary:part(Bin, 0, byte_size(Bin) - 1000)),
    expect_error(invalid_safetensors, Dir, [F]).

%% the header claims offsets that overlap the previous tensor's bytes
lying_offsets_test() ->
    Dir = make_ckpt("lying", "stories260k", fun(_) -> none end, fun same/1),
    Raw = ?H:read_raw(filename:join(fixture("stories260k"), "model.safetensors")),
    {Entries, _} = lists:mapfoldl(
        fun({N, D, S, B}, Off) ->
            Begin = case N of <<"model.norm.weight">> -> Off - 8; _ -> Off end,
            {{N, #{<<"dtype">> => D, <<"shape">> => S, <<"data_offsets">> => [Begin, Begin + byte_size(B)]}},
             Off + byte_size(B)}
        end, 0, Raw),
    H = iolist_to_binary(viva_tensor_json:encode(maps:from_list(Entries))),
    F = filename:join(Dir, "model.safetensors"),
    ok = file:write_file(F, [<<(byte_size(H)):64/little>>, H | [B || {_, _, _, B} <- Raw]]),
    expect_error(invalid_safetensors, Dir, [F, "model.norm.weight", "overlap"]).

missing_tensor_test() ->
    Name = <<"model.layers.3.mlp.up_proj.weight">>,
    Dir = make_ckpt("missing", "stories260k", fun(Raw) -> lists:keydelete(Name, 1, Raw) end, fun same/1),
    expect_error(missing_tensor, Dir, [Name]).

wrong_shape_test() ->
    Dir = make_ckpt("shape", "stories260k",
                    fun(Raw) ->
                        {_, D, S, B} = lists:keyfind(<<"model.layers.3.self_attn.q_proj.weight">>, 1, Raw),
                        lists:keyreplace(<<"model.layers.3.self_attn.k_proj.weight">>, 1, Raw,
                                         {<<"model.layers.3.self_attn.k_proj.weight">>, D, S, B})
                    end, fun same/1),
    ?assertEqual({error, {shape_mismatch,
                          <<"model.layers.3.self_attn.k_proj.weight: expected [32,64], got [64,64]">>}},
                 ?M:load(Dir)).

unsupported_dtype_test() ->
    Name = <<"model.layers.0.self_attn.q_proj.weight">>,
    Dir = make_ckpt("dtype", "stories260k",
                    fun(Raw) ->
                        {_, _, S, B} = lists:keyfind(Name, 1, Raw),
                        F64 = << <<X:64/float-little>> || <<X:32/float-little>> <= B >>,
                        lists:keyreplace(Name, 1, Raw, {Name, <<"F64">>, S, F64})
                    end, fun same/1),
    expect_error(unsupported_dtype, Dir, [Name, "F64"]).

malformed_config_test_() ->
    Bad = fun(Tag, Cfg, Parts) ->
        {Tag, fun() ->
            Dir = make_ckpt("cfg_" ++ Tag, "stories260k", fun(_) -> none end, fun(_) -> Cfg end),
            {ok, _} = file:copy(filename:join(fixture("stories260k"), "model.safetensors"),
                                filename:join(Dir, "model.safetensors")),
            expect_error(invalid_config, Dir, ["config.json" | Parts])
        end}
    end,
    {ok, Good} = viva_tensor_json:decode(element(2, file:read_file(
        filename:join(fixture("stories260k"), "config.json")))),
    Enc = fun(M) -> iolist_to_binary(viva_tensor_json:encode(M)) end,
    [Bad("truncated_json", <<"{\"hidden_size\": 64,">>, []),
     Bad("not_object", <<"[1, 2, 3]">>, []),
     Bad("missing_key", Enc(maps:remove(<<"hidden_size">>, Good)), ["hidden_size"]),
     Bad("negative", Enc(Good#{<<"num_hidden_layers">> => -5}), ["num_hidden_layers"]),
     Bad("kv_heads", Enc(Good#{<<"num_key_value_heads">> => 3}), ["num_key_value_heads"]),
     Bad("rope_yarn", Enc(Good#{<<"rope_scaling">> => #{<<"rope_type">> => <<"yarn">>,
                                                        <<"factor">> => 4.0}}), ["yarn"]),
     Bad("eos_string", Enc(Good#{<<"eos_token_id">> => <<"2">>}), ["eos_token_id"]),
     Bad("model_type", Enc(Good#{<<"model_type">> => <<"gpt2">>}), ["gpt2"]),
     {"missing config.json", fun() ->
         Dir = ?H:tmp_dir("cfg_missing"),
         {ok, _} = file:copy(filename:join(fixture("stories260k"), "model.safetensors"),
                             filename:join(Dir, "model.safetensors")),
         expect_error(invalid_config, Dir, ["config.json"])
     end}].

config_defaults_test() ->
    Dir = ?H:tmp_dir("cfg_defaults"),
    ok = file:write_file(filename:join(Dir, "config.json"),
                         <<"{\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 5,"
                           " \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512,"
                           " \"rms_norm_eps\": 1e-5, \"eos_token_id\": [2, 3]}">>),
    {ok, C} = viva_tensor_beam_config:load(Dir),
    ?assertMatch(#{num_key_value_heads := 8, head_dim := 8, rope_theta := 10000.0,
                   rope_scaling := none, tie_word_embeddings := false,
                   bos_token_id := undefined, eos_token_ids := [2, 3]}, C).

%%====================================================================
%% Generation jobs (viva_tensor_beam, needs the tokenizer)

handle(Fixture) ->
    {ok, H} = ?B:load_model(list_to_binary(fixture(Fixture)), #{}),
    H.

job_opts(Over) ->
    maps:merge(#{max_new_tokens => 64, temperature => 0.0, top_k => 0, top_p => 1.0,
                 seed => 42, stop_on_eos => true, stop => []}, Over).

%% runs a job to its end: {[{Id, Piece}], Stats}
run_job(H, Prompt, Opts) ->
    Ref = make_ref(),
    {ok, _Pid} = ?B:start_job(H, Prompt, job_opts(Opts), self(), Ref),
    collect(Ref, []).

collect(Ref, Acc) ->
    receive
        {viva_tensor, Ref, {token, Id, Piece}} -> collect(Ref, [{Id, Piece} | Acc]);
        {viva_tensor, Ref, {done, Stats}} -> {lists:reverse(Acc), Stats};
        {viva_tensor, Ref, {error, E}} -> error({job_error, E})
    after 120000 -> error(job_timeout)
    end.

pieces(Msgs) -> iolist_to_binary([P || {_, P} <- Msgs]).

job_greedy_cases(Fixture) ->
    {setup, fun() -> handle(Fixture) end, fun(H) -> [?SLOW(fun() ->
        Ids = maps:get(<<"input_ids">>, C),
        Greedy = maps:get(<<"greedy_new_ids">>, C),
        {Msgs, S} = run_job(H, Ids, #{max_new_tokens => length(Greedy), stop_on_eos => false}),
        ?assertEqual(Greedy, maps:get(tokens, S)),
        ?assertEqual(Greedy, [Id || {Id, _} <- Msgs]),
        ?assertEqual(maps:get(<<"greedy_new_text">>, C), maps:get(text, S)),
        ?assertEqual(maps:get(text, S), pieces(Msgs)),
        ?assertMatch(#{finish_reason := length, backend := beam, prompt_tokens := Ids}, S),
        ?assert(is_integer(maps:get(prefill_us, S)) andalso is_integer(maps:get(decode_us, S)))
     end) || C <- cases(Fixture)] end}.

stories_job_greedy_test_() -> job_greedy_cases("stories260k").

bytelevel_job_greedy_test_() -> job_greedy_cases("bytelevel-tiny").

info_test() ->
    ?assertEqual(#{backend => beam, vocab_size => 512, hidden_size => 64, num_layers => 5,
                   max_position_embeddings => 512, bos_token_id => 1, eos_token_ids => [2],
                   weights => f32},
                 ?B:info(handle("stories260k"))).

forward_logits_test() ->
    [C | _] = cases("stories260k"),
    {ok, L} = ?B:forward_logits(handle("stories260k"), maps:get(<<"input_ids">>, C)),
    check_logits(L, C).

seeds_test_() ->
    ?SLOW(fun() ->
        H = handle("stories260k"),
        P = [1, 403, 407, 261, 378],
        Opts = #{temperature => 1.0, top_k => 40, top_p => 0.95, max_new_tokens => 16, stop_on_eos => false},
        Tok = fun(Seed) -> maps:get(tokens, element(2, run_job(H, P, Opts#{seed => Seed}))) end,
        A = Tok(7),
        ?assertEqual(16, length(A)),
        ?assertEqual(A, Tok(7)),
        ?assertEqual(Tok(7 - 18446744073709551616), A),        % seeds are taken mod 2^64
        Others = [Tok(S) || S <- [8, 9, 10]],
        ?assert(lists:all(fun(B) -> B =/= A end, Others)),
        %% temperature 0 ignores the seed and is the greedy path
        [C | _] = cases("stories260k"),
        G = lists:sublist(maps:get(<<"greedy_new_ids">>, C), 16),
        ?assertEqual(G, maps:get(tokens, element(2, run_job(H, P, Opts#{temperature => 0.0, seed => 1})))),
        ?assertEqual(G, maps:get(tokens, element(2, run_job(H, P, Opts#{temperature => 0.0, seed => 2}))))
    end).

%% reference text of case 0: ", there was a little girl named Lily. ..."
stop_sequence_test_() ->
    ?SLOW(fun() ->
        H = handle("stories260k"),
        [C | _] = cases("stories260k"),
        P = maps:get(<<"input_ids">>, C),
        {Msgs, S} = run_job(H, P, #{stop => [<<" girl">>, <<"zzz">>]}),
        ?assertMatch(#{finish_reason := stop, text := <<", there was a little">>}, S),
        ?assertEqual(<<", there was a little">>, pieces(Msgs)),
        %% the tokens run up to the one that completed " girl", which is kept
        Greedy = maps:get(<<"greedy_new_ids">>, C),
        Toks = maps:get(tokens, S),
        ?assertEqual(lists:sublist(Greedy, length(Toks)), Toks),
        ?assert(length(Toks) < 10),
        %% a stop string spanning several tokens (" little girl"), and one that never occurs
        {_, S2} = run_job(H, P, #{stop => [<<"le girl n">>]}),
        ?assertEqual(<<", there was a litt">>, maps:get(text, S2)),
        {_, S3} = run_job(H, P, #{stop => [<<"never occurs">>], max_new_tokens => 10}),
        ?assertEqual(length, maps:get(finish_reason, S3)),
        {_, S4} = run_job(H, P, #{stop => [], max_new_tokens => 10}),
        ?assertEqual(maps:get(text, S4), maps:get(text, S3)),
        %% hold-back: tokens ", there was a little g..." against "a little boy": after " a" the
        %% "a" is held, after " little" "a little" is held (an empty piece), then "g" does not
        %% continue the stop string and "a little g" is released at once
        {Msgs5, S5} = run_job(H, P, #{stop => [<<"a little boy">>], stop_on_eos => false}),
        ?assertEqual(maps:get(<<"greedy_new_text">>, C), maps:get(text, S5)),
        ?assertEqual(maps:get(text, S5), pieces(Msgs5)),
        ?assertEqual(length, maps:get(finish_reason, S5)),
        ?assertEqual([<<",">>, <<" there">>, <<" was">>, <<" ">>, <<>>, <<"a little g">>],
                     [Pc || {_, Pc} <- lists:sublist(Msgs5, 6)])
    end).

%% EOS: a config whose eos_token_id is the third greedy token of case 0
eos_test_() ->
    ?SLOW(fun() ->
        [C | _] = cases("stories260k"),
        [T1, T2, T3 | _] = maps:get(<<"greedy_new_ids">>, C),
        Dir = make_ckpt("eos", "stories260k", fun(_) -> none end,
                        fun(Cfg) -> Cfg#{<<"eos_token_id">> => [999, T3]} end),
        {ok, _} = file:copy(filename:join(fixture("stories260k"), "model.safetensors"),
                            filename:join(Dir, "model.safetensors")),
        {ok, H} = ?B:load_model(list_to_binary(Dir), #{}),
        P = maps:get(<<"input_ids">>, C),
        {Msgs, S} = run_job(H, P, #{}),
        ?assertMatch(#{finish_reason := eos, tokens := [T1, T2, T3]}, S),
        ?assertEqual([{T3, <<>>}], lists:nthtail(2, Msgs)),
        {ok, Text2} = viva_tensor_beam_tokenizer:decode(?B:tokenizer(H), [T1, T2], true),
        ?assertEqual(Text2, maps:get(text, S)),
        %% stop_on_eos => false runs past it
        {_, S2} = run_job(H, P, #{stop_on_eos => false, max_new_tokens => 5}),
        ?assertMatch(#{finish_reason := length, tokens := [T1, T2, T3, _, _]}, S2)
    end).

%% context end: max_position_embeddings 8 and a 5-id prompt: positions 0-4 are
%% the prompt, tokens 1-3 are fed at 5-7, token 4 is sampled from position 7
%% and kept (the NIF's generate.rs does the same); a prompt of 8 ids gets 1 token
context_end_test_() ->
    ?SLOW(fun() ->
        [C | _] = cases("stories260k"),
        Dir = make_ckpt("ctx", "stories260k", fun(_) -> none end,
                        fun(Cfg) -> Cfg#{<<"max_position_embeddings">> => 8} end),
        {ok, _} = file:copy(filename:join(fixture("stories260k"), "model.safetensors"),
                            filename:join(Dir, "model.safetensors")),
        {ok, H} = ?B:load_model(list_to_binary(Dir), #{}),
        P = maps:get(<<"input_ids">>, C),
        {_, S} = run_job(H, P, #{max_new_tokens => 50}),
        ?assertMatch(#{finish_reason := length}, S),
        ?assertEqual(lists:sublist(maps:get(<<"greedy_new_ids">>, C), 4), maps:get(tokens, S)),
        {[_], S2} = run_job(H, [1, 2, 3, 4, 5, 6, 7, 8], #{}),
        ?assertMatch(#{finish_reason := length, tokens := [_]}, S2)
    end).

max_new_tokens_zero_test() ->
    {[], S} = run_job(handle("stories260k"), [1, 403], #{max_new_tokens => 0}),
    ?assertMatch(#{finish_reason := length, tokens := [], text := <<>>, prompt_tokens := [1, 403]}, S).

cancel_test_() ->
    ?SLOW(fun() ->
        H = handle("stories260k"),
        Ref = make_ref(),
        {ok, Pid} = ?B:start_job(H, [1, 403], job_opts(#{max_new_tokens => 400, stop_on_eos => false}),
                                 self(), Ref),
        receive {viva_tensor, Ref, {token, _, _}} -> ok after 30000 -> error(no_token) end,
        ok = ?B:cancel(Pid),
        {_, S} = collect(Ref, []),
        ?assertEqual(cancelled, maps:get(finish_reason, S)),
        ?assert(length(maps:get(tokens, S)) < 400),
        ok = ?B:cancel(Pid),                                  % harmless after the end
        %% a cancel sent before the prefill ends is seen before the first draw: no tokens
        Ref2 = make_ref(),
        {ok, Pid2} = ?B:start_job(H, [1, 403], job_opts(#{}), self(), Ref2),
        ok = ?B:cancel(Pid2),
        ?assertMatch({[], #{finish_reason := cancelled, tokens := [], text := <<>>}}, collect(Ref2, []))
    end).

caller_death_test_() ->
    ?SLOW(fun() ->
        H = handle("stories260k"),
        Self = self(),
        Caller = spawn(fun() ->
            {ok, W} = ?B:start_job(H, [1, 403], job_opts(#{max_new_tokens => 400, stop_on_eos => false}),
                                   self(), make_ref()),
            Self ! {worker, W},
            receive {viva_tensor, _, {token, _, _}} -> ok end
            %% and dies
        end),
        W = receive {worker, P} -> P after 30000 -> error(no_worker) end,
        MRef = erlang:monitor(process, W),
        receive {'DOWN', MRef, process, W, _} -> ok after 10000 -> error(worker_still_running) end,
        ?assertNot(is_process_alive(Caller))
    end).

%% last in the module (EUnit runs a module's tests in order): remove the temp files
zz_cleanup_test() ->
    ?assertEqual(ok, ?H:remove_tmp_dirs()).
