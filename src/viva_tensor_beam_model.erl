%% @doc Llama forward pass in pure Erlang (the pure-BEAM backend's model).
%%
%% Implements HF `LlamaForCausalLM' (fp32 semantics, computed in f64):
%%
%% ```
%% x = embed_tokens[id]                                  % [hidden]
%% for each layer:
%%   h = rmsnorm(x, input_layernorm)                     % x * rsqrt(mean(x^2) + eps) * w
%%   q = q_proj(h), k = k_proj(h), v = v_proj(h)          % [heads*hd], [kv*hd], [kv*hd]
%%   q, k = rope(q, pos), rope(k, pos)                    % half rotation, see rope/3
%%   a_h = softmax(q_h . K_g^T / sqrt(hd)) V_g, g = h div (heads div kv)   % GQA, causal
%%   x = x + o_proj(concat(a_h))
%%   h = rmsnorm(x, post_attention_layernorm)
%%   x = x + down_proj(silu(gate_proj(h)) * up_proj(h))
%% logits = lm_head(rmsnorm(x, norm))                    % lm_head = embed_tokens when tied
%% '''
%%
%% Representation (measured, see below): every weight matrix is a list of
%% rows, each row a little-endian f32 binary (a sub-binary of the file for F32
%% checkpoints; BF16/F16 are widened to f32 once at load, exactly); norm weights,
%% activations, the KV cache and the logits are lists of floats. The matvec
%% walks a row binary eight floats at a time against the activation list.
%%
%% Measured on this project's dev VM (AMD EPYC, 2 vCPU shared with other
%% builds, so +-20% noise; OTP 25 JIT): one token's worth of
%% stories260k-shaped matvecs (259k multiply-adds, 36 matrices), each variant
%% in a fresh process, ns per multiply-add (lower is better):
%% <ul>
%%  <li>rows as lists of floats, unrolled x4 / x8: 48-57 / 43 with a 2M-word
%%      heap, ~61 with the default heap (16 when one small matrix is reused
%%      and stays in cache: a list costs 32 bytes per weight, a whole model's
%%      worth no longer fits in cache);</li>
%%  <li>rows as tuples of floats (element/2): ~2x slower than lists;</li>
%%  <li>rows as f64 binaries, x4 / x8: 38 / 38 (2M-word heap), 62-72 (default);</li>
%%  <li>rows as f32 binaries, x4 / x8: 34-37 / 33-36 (2M-word heap), 58-70
%%      (default) -- chosen, x8;</li>
%%  <li>weights and activations both as binaries: 3-5x slower (every float
%%      read from a binary is boxed on the heap).</li>
%% </ul>
%% Binaries also make the model 8x smaller than float lists and free to hand
%% to another process (refc binaries are shared, not copied: spawning a worker
%% with the list representation copied ~20 ms of data, with binaries < 3 ms),
%% which matters because every generation job runs in its own process. The
%% worker starts with a larger heap (see viva_tensor_beam) to cut the number of
%% garbage collections the boxed floats cause.
%%
%% End to end (viva_tensor_beam jobs, greedy, same VM): stories260k decodes at
%% roughly 70-110 tok/s over the first 64 tokens and ~55 tok/s averaged over
%% 256 (attention grows with the context); bytelevel-tiny at ~35-50 tok/s.
%%
%% The prefill runs the prompt tokens one position at a time through the
%% layers in a single call (each token attends to the cache built so far,
%% which is exactly causal attention); only the last position gets the final
%% norm and lm_head.
-module(viva_tensor_beam_model).

-export([load/1, new_cache/1, forward/4, config/1, cache_len/1, rope_inv_freq/1]).
-export_type([model/0, cache/0]).

-record(layer, {
    attn_norm :: [float()],             % [hidden]
    wq :: [binary()],                   % [heads*hd] rows of [hidden]
    wk :: [binary()],                   % [kv*hd] rows of [hidden]
    wv :: [binary()],                   % [kv*hd] rows of [hidden]
    wo :: [binary()],                   % [hidden] rows of [heads*hd]
    ffn_norm :: [float()],              % [hidden]
    wgu :: [{binary(), binary()}],      % [inter] pairs of (gate row, up row), rows of [hidden]
    wdown :: [binary()]                 % [hidden] rows of [inter]
}).

-record(model, {
    cfg :: map(),
    embed :: tuple(),                   % vocab rows of [hidden] (f32 binaries)
    layers :: [#layer{}],
    norm :: [float()],                  % [hidden]
    lm_head :: [binary()],              % [vocab] rows of [hidden]
    inv_freq :: [float()],              % [hd/2]
    heads :: pos_integer(),
    kv_heads :: pos_integer(),
    head_dim :: pos_integer(),
    group :: pos_integer(),             % heads div kv_heads
    eps :: float(),
    scale :: float(),                   % 1 / sqrt(head_dim)
    vocab :: pos_integer(),
    max_pos :: pos_integer()
}).

-opaque model() :: #model{}.
%% {kv_cache, Len, Layers}: per layer, per KV head {Keys, ValueColumns}: Keys
%% is a list of [hd] key vectors, newest position first; ValueColumns is hd
%% lists (one per value dimension) of [Len] values, newest first, so that the
%% weighted sum of values is hd dot products instead of Len vector updates.
-opaque cache() :: {kv_cache, non_neg_integer(), [[{[[float()]], [[float()]]}]]}.

-type error() :: {error, {atom(), binary()}}.

%%====================================================================
%% Loading

%% @doc Loads a checkpoint: a folder, a `.safetensors' file or an
%% `index.json', with `config.json' beside the weights. Every tensor is checked
%% for presence (`missing_tensor'), dtype (`unsupported_dtype') and shape
%% (`shape_mismatch', e.g.
%% `<<"model.layers.3.self_attn.k_proj.weight: expected [256,2048], got [2048,2048]">>')
%% before any data is converted. Embeddings are tied when the config says so
%% or when `lm_head.weight' is absent.
-spec load(file:filename_all()) -> {ok, model()} | error().
load(Path) ->
    case viva_tensor_beam_safetensors:resolve(Path) of
        {ok, {_Kind, File}} ->
            Dir =
                case filelib:is_dir(Path) of
                    true -> Path;
                    false -> filename:dirname(File)
                end,
            case viva_tensor_beam_config:load(Dir) of
                {ok, Cfg} ->
                    case viva_tensor_beam_safetensors:open(File) of
                        {ok, St} -> build(Cfg, St);
                        Error -> Error
                    end;
                Error ->
                    Error
            end;
        Error ->
            Error
    end.

%% @doc The validated config map (see viva_tensor_beam_config).
-spec config(model()) -> map().
config(#model{cfg = Cfg}) -> Cfg.

%% @doc The RoPE inverse frequencies in use (after llama3 scaling), [hd/2].
-spec rope_inv_freq(model()) -> [float()].
rope_inv_freq(#model{inv_freq = F}) -> F.

%% @doc An empty KV cache for one sequence.
-spec new_cache(model()) -> cache().
new_cache(#model{layers = Layers, kv_heads = Kv, head_dim = HD}) ->
    {kv_cache, 0, [lists:duplicate(Kv, {[], lists:duplicate(HD, [])}) || _ <- Layers]}.

%% @doc Number of positions held by the cache.
-spec cache_len(cache()) -> non_neg_integer().
cache_len({kv_cache, Len, _}) -> Len.

build(Cfg, St) ->
    #{hidden_size := H, intermediate_size := I, num_hidden_layers := NL,
      num_attention_heads := NH, num_key_value_heads := NKV, head_dim := HD,
      vocab_size := V, tie_word_embeddings := Tie0} = Cfg,
    HasHead = element(1, viva_tensor_beam_safetensors:info(St, <<"lm_head.weight">>)) =:= ok,
    Tie = Tie0 orelse not HasHead,
    LayerSpecs =
        fun(L) ->
            P = <<"model.layers.", (integer_to_binary(L))/binary, ".">>,
            [{<<P/binary, "input_layernorm.weight">>, [H]},
             {<<P/binary, "self_attn.q_proj.weight">>, [NH * HD, H]},
             {<<P/binary, "self_attn.k_proj.weight">>, [NKV * HD, H]},
             {<<P/binary, "self_attn.v_proj.weight">>, [NKV * HD, H]},
             {<<P/binary, "self_attn.o_proj.weight">>, [H, NH * HD]},
             {<<P/binary, "post_attention_layernorm.weight">>, [H]},
             {<<P/binary, "mlp.gate_proj.weight">>, [I, H]},
             {<<P/binary, "mlp.up_proj.weight">>, [I, H]},
             {<<P/binary, "mlp.down_proj.weight">>, [H, I]}]
        end,
    Specs =
        [{<<"model.embed_tokens.weight">>, [V, H]}] ++
        lists:append([LayerSpecs(L) || L <- lists:seq(0, NL - 1)]) ++
        [{<<"model.norm.weight">>, [H]}] ++
        [{<<"lm_head.weight">>, [V, H]} || not Tie],
    case check_all(St, Specs) of
        ok ->
            try
                Emb = rows(St, <<"model.embed_tokens.weight">>),
                Layers = [layer(St, LayerSpecs(L)) || L <- lists:seq(0, NL - 1)],
                Head =
                    case Tie of
                        true -> Emb;
                        false -> rows(St, <<"lm_head.weight">>)
                    end,
                {ok, #model{cfg = Cfg#{tie_word_embeddings => Tie},
                            embed = list_to_tuple(Emb),
                            layers = Layers,
                            norm = vec(St, <<"model.norm.weight">>),
                            lm_head = Head,
                            inv_freq = inv_freq(Cfg),
                            heads = NH, kv_heads = NKV, head_dim = HD, group = NH div NKV,
                            eps = maps:get(rms_norm_eps, Cfg),
                            scale = 1.0 / math:sqrt(HD),
                            vocab = V,
                            max_pos = maps:get(max_position_embeddings, Cfg)}}
            catch
                throw:{read_error, Error} -> Error
            end;
        Error ->
            Error
    end.

check_all(_St, []) ->
    ok;
check_all(St, [{Name, Shape} | Rest]) ->
    case viva_tensor_beam_safetensors:info(St, Name) of
        {error, _} = E ->
            E;
        {ok, {Dtype, _}} when Dtype =/= <<"F32">>, Dtype =/= <<"BF16">>, Dtype =/= <<"F16">> ->
            err(unsupported_dtype, "~ts: dtype ~ts is not supported (F32, BF16, F16) in ~ts",
                [Name, Dtype, files(St)]);
        {ok, {_, Shape}} ->
            check_all(St, Rest);
        {ok, {_, Got}} ->
            err(shape_mismatch, "~ts: expected ~ts, got ~ts", [Name, dims(Shape), dims(Got)])
    end.

layer(St, Specs) ->
    [{AN, _}, {Q, _}, {K, _}, {V, _}, {O, _}, {FN, _}, {G, _}, {U, _}, {D, _}] = Specs,
    #layer{attn_norm = vec(St, AN), wq = rows(St, Q), wk = rows(St, K), wv = rows(St, V),
           wo = rows(St, O), ffn_norm = vec(St, FN),
           wgu = lists:zip(rows(St, G), rows(St, U)), wdown = rows(St, D)}.

read(St, Name) ->
    case viva_tensor_beam_safetensors:read_f32(St, Name) of
        {ok, Shape, Bin} -> {Shape, Bin};
        Error -> throw({read_error, Error})
    end.

rows(St, Name) ->
    {[_, Cols], Bin} = read(St, Name),
    split_rows(Bin, Cols * 4, []).

split_rows(<<>>, _N, Acc) -> lists:reverse(Acc);
split_rows(Bin, N, Acc) ->
    <<Row:N/binary, Rest/binary>> = Bin,
    split_rows(Rest, N, [Row | Acc]).

vec(St, Name) ->
    {_, Bin} = read(St, Name),
    [X || <<X:32/float-little>> <= Bin].

files(St) -> lists:join(<<", ">>, viva_tensor_beam_safetensors:files(St)).

dims(Shape) -> [$[, lists:join($,, [integer_to_list(D) || D <- Shape]), $]].

%% RoPE inverse frequencies, [hd/2]: inv_freq_i = theta^(-2i/hd), rounded the
%% way HF computes them in f32 (`1.0 / theta ** (arange(0, hd, 2).float() / hd)':
%% exponent, power and reciprocal each rounded to f32), so that the angles
%% below match HF's to the bit at long contexts, where f32 rounding of
%% `pos * inv_freq' is the dominant difference between f32 and exact RoPE.
%%
%% With `rope_scaling = llama3' (Llama 3.1+), each frequency is rescaled by
%% its wavelength `w = 2*pi / f', with `L = original_max_position_embeddings':
%%   w < L / high_freq_factor  (high frequencies):  f unchanged
%%   w > L / low_freq_factor   (low frequencies):   f / factor
%%   otherwise, with s = (L / w - low_freq_factor) / (high_freq_factor - low_freq_factor):
%%                                                  (1 - s) * f / factor + s * f
%% (computed in f64 on the f32 frequencies, the result rounded to f32).
inv_freq(#{head_dim := HD, rope_theta := Theta, rope_scaling := Scaling}) ->
    Base = [f32(1.0 / f32(math:pow(Theta, f32((2 * I) / HD)))) || I <- lists:seq(0, HD div 2 - 1)],
    case Scaling of
        none ->
            Base;
        #{type := llama3, factor := Factor, low_freq_factor := Low,
          high_freq_factor := High, original_max_position_embeddings := L} ->
            LowWave = L / Low,
            HighWave = L / High,
            [f32(begin
                     W = 2 * math:pi() / F,
                     if
                         W < HighWave -> F;
                         W > LowWave -> F / Factor;
                         true ->
                             S = (L / W - Low) / (High - Low),
                             (1 - S) * F / Factor + S * F
                     end
                 end) || F <- Base]
    end.

%% round an f64 to the nearest f32
f32(X) ->
    <<Y:32/float>> = <<X:32/float>>,
    Y.

%%====================================================================
%% Forward

%% @doc Runs `Ids' at positions `Pos0, Pos0+1, ...' (a prefill of several ids
%% or one decode step) and returns the logits of the last position, [vocab].
%% `Pos0' must equal the number of positions already in `Cache'.
-spec forward(model(), cache(), [non_neg_integer()], non_neg_integer()) ->
    {ok, [float()], cache()} | error().
forward(_M, _Cache, [], _Pos0) ->
    err(invalid_option, "forward: no token ids", []);
forward(#model{} = M, {kv_cache, Len, _} = Cache, Ids, Pos0) ->
    N = length(Ids),
    case [Id || Id <- Ids, not (is_integer(Id) andalso Id >= 0 andalso Id < M#model.vocab)] of
        [Bad | _] ->
            err(token_out_of_range, "token id ~p is outside the vocabulary (size ~w)",
                [Bad, M#model.vocab]);
        [] when Pos0 =/= Len ->
            err(invalid_option, "forward: position ~w does not follow the cache (~w positions)",
                [Pos0, Len]);
        [] when Pos0 + N > M#model.max_pos ->
            err(prompt_too_long, "~w positions from position ~w exceed max_position_embeddings ~w",
                [N, Pos0, M#model.max_pos]);
        [] ->
            {X, Cache1} = run(M, Cache, Ids, Pos0),
            Xn = rmsnorm(X, M#model.norm, M#model.eps),
            {ok, matvec(M#model.lm_head, Xn), Cache1}
    end.

run(M, Cache, [Id], Pos) ->
    step(M, Cache, Id, Pos);
run(M, Cache, [Id | Rest], Pos) ->
    {_, Cache1} = step(M, Cache, Id, Pos),
    run(M, Cache1, Rest, Pos + 1).

%% One position through every layer: the residual stream after the last layer.
step(#model{embed = Emb, layers = Layers, inv_freq = InvFreq} = M, {kv_cache, Len, KvLayers}, Id, Pos) ->
    X0 = [X || <<X:32/float-little>> <= element(Id + 1, Emb)],
    Angles = [f32(Pos * F) || F <- InvFreq],          % f32 like HF; cos/sin in f64
    Cos = [math:cos(A) || A <- Angles],
    Sin = [math:sin(A) || A <- Angles],
    {X, KvLayers1} = layers(Layers, KvLayers, X0, Cos, Sin, M, []),
    {X, {kv_cache, Len + 1, KvLayers1}}.

layers([L | Ls], [Kv | Kvs], X, Cos, Sin, M, Acc) ->
    {X1, Kv1} = layer_forward(L, Kv, X, Cos, Sin, M),
    layers(Ls, Kvs, X1, Cos, Sin, M, [Kv1 | Acc]);
layers([], [], X, _Cos, _Sin, _M, Acc) ->
    {X, lists:reverse(Acc)}.

layer_forward(#layer{} = L, Kv, X, Cos, Sin,
              #model{head_dim = HD, group = G, eps = Eps, scale = Scale}) ->
    H = rmsnorm(X, L#layer.attn_norm, Eps),
    QHeads = [rope(Q, Cos, Sin) || Q <- chunks(matvec(L#layer.wq, H), HD)],
    KHeads = [rope(K, Cos, Sin) || K <- chunks(matvec(L#layer.wk, H), HD)],
    VHeads = chunks(matvec(L#layer.wv, H), HD),
    Kv1 = [{[K | Ks], push_cols(V, VCols)} || {{Ks, VCols}, K, V} <- lists:zip3(Kv, KHeads, VHeads)],
    %% head h reads KV head h div G: q heads come in runs of G per KV head
    Attn = attend_groups(chunks(QHeads, G), Kv1, Scale, []),
    X1 = add(X, matvec(L#layer.wo, Attn)),
    H2 = rmsnorm(X1, L#layer.ffn_norm, Eps),
    %% down(silu(gate(h)) * up(h))
    A = [silu(dot(GRow, H2, 0.0)) * dot(URow, H2, 0.0) || {GRow, URow} <- L#layer.wgu],
    {add(X1, matvec(L#layer.wdown, A)), Kv1}.

attend_groups([Qs | QGroups], [{Ks, VCols} | Kv], Scale, Acc) ->
    Outs = [attend(Q, Ks, VCols, Scale) || Q <- Qs],
    attend_groups(QGroups, Kv, Scale, lists:reverse(lists:append(Outs), Acc));
attend_groups([], [], _Scale, Acc) ->
    lists:reverse(Acc).

%% softmax(q . k_t * scale) over every cached position t, then
%% out_j = sum_t p_t * v_tj, computed as (sum_t e_t * v_tj) / Z with one dot
%% product per value column (the same sum as HF's up to f64 rounding, far
%% below f32 precision).
attend(Q, Ks, VCols, Scale) ->
    {Scores, Max} = scores(Ks, Q, Scale, [], -1.0e308),
    {Es, Z} = exps(Scores, Max, [], 0.0),
    [dotl(Es, Col, 0.0) / Z || Col <- VCols].

%% scores come out oldest first: reverse them back to the cache's newest-first order
scores([K | Ks], Q, Scale, Acc, Max) ->
    S = dotl(Q, K, 0.0) * Scale,
    scores(Ks, Q, Scale, [S | Acc], max(S, Max));
scores([], _Q, _Scale, Acc, Max) ->
    {Acc, Max}.

exps([S | Ss], Max, Acc, Z) ->
    E = math:exp(S - Max),
    exps(Ss, Max, [E | Acc], Z + E);
exps([], _Max, Acc, Z) ->
    {Acc, Z}.

%% prepend one value vector [hd] to the hd value columns
push_cols([X | Xs], [Col | Cols]) -> [[X | Col] | push_cols(Xs, Cols)];
push_cols([], []) -> [].

%% HF rotate_half: pairs (i, i + hd/2);
%% out_i = x_i cos_i - x_{i+hd/2} sin_i,  out_{i+hd/2} = x_{i+hd/2} cos_i + x_i sin_i
rope(X, Cos, Sin) ->
    {X1, X2} = lists:split(length(Cos), X),
    rot1(X1, X2, Cos, Sin) ++ rot2(X1, X2, Cos, Sin).

rot1([A | As], [B | Bs], [C | Cs], [S | Ss]) -> [A * C - B * S | rot1(As, Bs, Cs, Ss)];
rot1([], [], [], []) -> [].

rot2([A | As], [B | Bs], [C | Cs], [S | Ss]) -> [B * C + A * S | rot2(As, Bs, Cs, Ss)];
rot2([], [], [], []) -> [].

%% x * rsqrt(mean(x^2) + eps) * w
rmsnorm(X, W, Eps) ->
    Inv = 1.0 / math:sqrt(dotl(X, X, 0.0) / length(X) + Eps),
    scale_mul(X, Inv, W).

scale_mul([X | Xs], Inv, [W | Ws]) -> [X * Inv * W | scale_mul(Xs, Inv, Ws)];
scale_mul([], _Inv, []) -> [].

%% x * sigmoid(x), written so that exp never overflows
silu(X) when X >= 0.0 -> X / (1.0 + math:exp(-X));
silu(X) -> E = math:exp(X), X * E / (1.0 + E).

add([A | As], [B | Bs]) -> [A + B | add(As, Bs)];
add([], []) -> [].

chunks([], _N) -> [];
chunks(L, N) ->
    {C, Rest} = lists:split(N, L),
    [C | chunks(Rest, N)].

matvec(Rows, X) -> [dot(R, X, 0.0) || R <- Rows].

%% f32 row binary . float list, eight at a time
dot(<<A0:32/float-little, A1:32/float-little, A2:32/float-little, A3:32/float-little,
      A4:32/float-little, A5:32/float-little, A6:32/float-little, A7:32/float-little,
      Rest/binary>>,
    [X0, X1, X2, X3, X4, X5, X6, X7 | Xs], Acc)
  when is_float(X0), is_float(X1), is_float(X2), is_float(X3),
       is_float(X4), is_float(X5), is_float(X6), is_float(X7), is_float(Acc) ->
    dot(Rest, Xs,
        Acc + A0 * X0 + A1 * X1 + A2 * X2 + A3 * X3 + A4 * X4 + A5 * X5 + A6 * X6 + A7 * X7);
dot(<<A:32/float-little, Rest/binary>>, [X | Xs], Acc) ->
    dot(Rest, Xs, Acc + A * X);
dot(<<>>, [], Acc) ->
    Acc.

%% float list . float list, four at a time
dotl([A0, A1, A2, A3 | As], [B0, B1, B2, B3 | Bs], Acc)
  when is_float(A0), is_float(A1), is_float(A2), is_float(A3),
       is_float(B0), is_float(B1), is_float(B2), is_float(B3), is_float(Acc) ->
    dotl(As, Bs, Acc + A0 * B0 + A1 * B1 + A2 * B2 + A3 * B3);
dotl([A | As], [B | Bs], Acc) ->
    dotl(As, Bs, Acc + A * B);
dotl([], [], Acc) ->
    Acc.

err(Kind, Fmt, Args) ->
    {error, {Kind, unicode:characters_to_binary(io_lib:format(Fmt, Args))}}.
