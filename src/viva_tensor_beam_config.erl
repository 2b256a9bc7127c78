%% @doc Llama-family `config.json' reader of the pure-BEAM backend.
%%
%% Reads the HF layout (transformers 4.x / Hub: top-level `rope_theta' and
%% `rope_scaling'; transformers 5.x `rope_parameters' is read too) and returns
%% a validated map:
%%
%% ```
%% #{hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
%%   num_key_value_heads,          % default: num_attention_heads
%%   head_dim,                     % default: hidden_size div num_attention_heads
%%   rms_norm_eps,                 % default 1.0e-6
%%   rope_theta,                   % default 10000.0
%%   rope_scaling,                 % none | #{type => llama3, factor, low_freq_factor,
%%                                 %          high_freq_factor, original_max_position_embeddings}
%%   tie_word_embeddings,          % default false
%%   bos_token_id,                 % integer() | undefined (the first one if a list)
%%   eos_token_ids,                % [integer()] (integer or list in the file)
%%   vocab_size,
%%   max_position_embeddings}      % default 2048
%% '''
%%
%% Defaults and checks follow the NIF's reader (native/viva_core/src/config.rs)
%% so both backends accept and reject the same files. Every problem is
%% `{error, {invalid_config, Message}}' naming the file and the key: a missing
%% config.json, malformed JSON, a `model_type' outside llama / mistral / qwen2,
%% a missing or non-positive size, heads not divisible by KV heads, an odd
%% head_dim (RoPE rotates halves), a rope scaling type other than llama3
%% (`default' counts as none). Beyond the NIF's reader (which would compute
%% without them) this one also rejects `attention_bias' / `mlp_bias' true and
%% a `hidden_act' other than silu.
-module(viva_tensor_beam_config).

-export([load/1]).

%% @doc Reads `Dir/config.json' (or `Dir' itself when it is a .json file).
%% A missing file is `invalid_config' too, as in the NIF.
-spec load(file:filename_all()) -> {ok, map()} | {error, {atom(), binary()}}.
load(Dir) ->
    File =
        case filename:extension(Dir) of
            E when E =:= ".json"; E =:= <<".json">> -> unicode:characters_to_binary(Dir);
            _ -> unicode:characters_to_binary(filename:join(Dir, <<"config.json">>))
        end,
    case file:read_file(File) of
        {error, enoent} ->
            err(invalid_config, File, "config.json not found", []);
        {error, Reason} ->
            err(io_error, File, "~ts", [file:format_error(Reason)]);
        {ok, Bin} ->
            case viva_tensor_json:decode(Bin) of
                {ok, Map} when is_map(Map) ->
                    try
                        {ok, build(Map, File)}
                    catch
                        throw:{invalid, Msg} -> {error, {invalid_config, Msg}}
                    end;
                {ok, _} ->
                    err(invalid_config, File, "not a JSON object", []);
                {error, {_, Msg}} ->
                    err(invalid_config, File, "not valid JSON: ~ts", [Msg])
            end
    end.

%%--------------------------------------------------------------------

build(M, File) ->
    case opt(M, <<"model_type">>) of
        MT when MT =:= undefined; MT =:= <<"llama">>; MT =:= <<"mistral">>; MT =:= <<"qwen2">> -> ok;
        MT -> invalid(File, "model_type ~ts is not a Llama-family architecture", [show(MT)])
    end,
    Hidden = pos_int(M, <<"hidden_size">>, File),
    Inter = pos_int(M, <<"intermediate_size">>, File),
    Layers = pos_int(M, <<"num_hidden_layers">>, File),
    Heads = pos_int(M, <<"num_attention_heads">>, File),
    KvHeads = pos_int(M, <<"num_key_value_heads">>, File, Heads),
    Vocab = pos_int(M, <<"vocab_size">>, File),
    MaxPos = pos_int(M, <<"max_position_embeddings">>, File, 2048),
    HeadDim =
        case opt(M, <<"head_dim">>) of
            undefined when Hidden rem Heads =/= 0 ->
                invalid(File, "hidden_size ~w is not divisible by num_attention_heads ~w "
                        "and there is no head_dim", [Hidden, Heads]);
            undefined ->
                Hidden div Heads;
            _ ->
                pos_int(M, <<"head_dim">>, File)
        end,
    HeadDim rem 2 =:= 0 orelse invalid(File, "head_dim ~w must be even (RoPE)", [HeadDim]),
    Heads rem KvHeads =:= 0 orelse
        invalid(File, "num_attention_heads ~w is not divisible by num_key_value_heads ~w",
                [Heads, KvHeads]),
    Eps = pos_num(M, <<"rms_norm_eps">>, File, 1.0e-6),
    RopeParams =
        case opt(M, <<"rope_parameters">>) of
            RP when is_map(RP) -> RP;
            _ -> #{}
        end,
    Theta =
        case opt(RopeParams, <<"rope_theta">>) of
            undefined -> pos_num(M, <<"rope_theta">>, File, 10000.0);
            _ -> pos_num(RopeParams, <<"rope_theta">>, File, 10000.0)
        end,
    Scaling =
        case opt(M, <<"rope_scaling">>) of
            undefined when RopeParams =/= #{} -> rope_scaling(RopeParams, File);
            undefined -> none;
            S -> rope_scaling(S, File)
        end,
    Tie = bool(M, <<"tie_word_embeddings">>, File, false),
    check_not(M, <<"attention_bias">>, File),
    check_not(M, <<"mlp_bias">>, File),
    case opt(M, <<"hidden_act">>) of
        undefined -> ok;
        <<"silu">> -> ok;
        Act -> invalid(File, "hidden_act ~ts is not supported (only silu)", [show(Act)])
    end,
    Bos =
        case opt(M, <<"bos_token_id">>) of
            undefined -> undefined;
            B when is_integer(B), B >= 0 -> B;
            [B | _] = Bs when is_integer(B), B >= 0 ->
                lists:all(fun(X) -> is_integer(X) andalso X >= 0 end, Bs) orelse
                    invalid(File, "bos_token_id must be an integer or a list of integers", []),
                B;
            [] -> undefined;
            B -> invalid(File, "bos_token_id must be a non-negative integer, got ~ts", [show(B)])
        end,
    Eos =
        case opt(M, <<"eos_token_id">>) of
            undefined -> [];
            I when is_integer(I), I >= 0 -> [I];
            L when is_list(L) ->
                lists:all(fun(X) -> is_integer(X) andalso X >= 0 end, L) orelse
                    invalid(File, "eos_token_id must be an integer or a list of integers", []),
                L;
            X -> invalid(File, "eos_token_id must be an integer or a list of integers, got ~ts",
                         [show(X)])
        end,
    #{hidden_size => Hidden,
      intermediate_size => Inter,
      num_hidden_layers => Layers,
      num_attention_heads => Heads,
      num_key_value_heads => KvHeads,
      head_dim => HeadDim,
      rms_norm_eps => float(Eps),
      rope_theta => float(Theta),
      rope_scaling => Scaling,
      tie_word_embeddings => Tie,
      bos_token_id => Bos,
      eos_token_ids => Eos,
      vocab_size => Vocab,
      max_position_embeddings => MaxPos}.

rope_scaling(S, File) when is_map(S) ->
    Type =
        case {opt(S, <<"rope_type">>), opt(S, <<"type">>)} of
            {undefined, T} -> T;
            {T, _} -> T
        end,
    case Type of
        <<"default">> ->
            none;
        <<"llama3">> ->
            Factor = pos_num(S, <<"factor">>, File),
            Low = pos_num(S, <<"low_freq_factor">>, File),
            High = pos_num(S, <<"high_freq_factor">>, File),
            Orig = pos_int(S, <<"original_max_position_embeddings">>, File),
            High > Low orelse
                invalid(File, "rope_scaling: high_freq_factor ~p must be larger than "
                        "low_freq_factor ~p", [High, Low]),
            #{type => llama3, factor => float(Factor), low_freq_factor => float(Low),
              high_freq_factor => float(High), original_max_position_embeddings => Orig};
        undefined ->
            invalid(File, "rope_scaling has no rope_type", []);
        Other ->
            invalid(File, "rope_scaling type ~ts is not supported (only llama3)", [show(Other)])
    end;
rope_scaling(S, File) ->
    invalid(File, "rope_scaling must be null or an object, got ~ts", [show(S)]).

%%--------------------------------------------------------------------

opt(M, Key) ->
    case maps:get(Key, M, null) of
        null -> undefined;
        V -> V
    end.

pos_int(M, Key, File) ->
    case opt(M, Key) of
        undefined -> invalid(File, "~ts is missing", [Key]);
        _ -> pos_int(M, Key, File, undefined)
    end.

pos_int(M, Key, File, Default) ->
    case opt(M, Key) of
        undefined -> Default;
        V when is_integer(V), V > 0 -> V;
        V -> invalid(File, "~ts must be a positive integer, got ~ts", [Key, show(V)])
    end.

pos_num(M, Key, File) ->
    case opt(M, Key) of
        undefined -> invalid(File, "~ts is missing", [Key]);
        _ -> pos_num(M, Key, File, undefined)
    end.

pos_num(M, Key, File, Default) ->
    case opt(M, Key) of
        undefined -> Default;
        V when is_number(V), V > 0 -> V;
        V -> invalid(File, "~ts must be a positive number, got ~ts", [Key, show(V)])
    end.

bool(M, Key, File, Default) ->
    case opt(M, Key) of
        undefined -> Default;
        V when is_boolean(V) -> V;
        V -> invalid(File, "~ts must be true or false, got ~ts", [Key, show(V)])
    end.

check_not(M, Key, File) ->
    case opt(M, Key) of
        true -> invalid(File, "~ts = true is not supported", [Key]);
        _ -> ok
    end.

show(V) -> iolist_to_binary(viva_tensor_json:encode(V)).

invalid(File, Fmt, Args) ->
    throw({invalid, unicode:characters_to_binary([File, ": ", io_lib:format(Fmt, Args)])}).

err(Kind, File, Fmt, Args) ->
    {error, {Kind, unicode:characters_to_binary([File, ": ", io_lib:format(Fmt, Args)])}}.
