%% @doc Token sampler of the pure-BEAM backend.
%%
%% Implements the sampler contract of docs/architecture.md ("Sampler") in the
%% exact order of operations, so that the Rust engine, given the same logits
%% and seed, picks the same token bit for bit:
%%
%% <ol>
%%  <li>`temperature == 0' : argmax, the lowest index on ties; no draw.</li>
%%  <li>`l_i = logit_i / T' (f64).</li>
%%  <li>candidates sorted by `l' descending, ties: lower index first;
%%      keep the first `top_k' (all when 0).</li>
%%  <li>`m = l_first', `e_i = exp(l_i - m)', `Z = sum e_i' left to right,
%%      `p_i = e_i / Z'.</li>
%%  <li>nucleus: the shortest prefix whose running sum (left to right) is
%%      `>= top_p' (all when rounding never reaches it);
%%      `Zp = sum p_i' over that prefix, left to right.</li>
%%  <li>min-p: that prefix's leading run with `p_i >= min_p * p_first' (all
%%      when `min_p' is 0); when it cuts, `Zp' is summed again over the run,
%%      left to right.</li>
%%  <li>`u = (next_u32() bsr 8) / 2^24' (one PCG32 draw); walking the prefix
%%      with `c += p_i / Zp', the first `i' with `c > u' wins, else the last.</li>
%% </ol>
%%
%% Logits may be a list or a tuple of floats; a list is the fast path (the
%% forward pass produces lists, and the sort and walks below are list
%% traversals; a tuple is converted once).
%%
%% Deviation, on purpose: Erlang floats cannot be infinite, so a temperature
%% so small that `logit / T' overflows the f64 range (a `badarith') falls back
%% to argmax; the Rust engine would compute with infinities there.
-module(viva_tensor_beam_sampler).

-export([sample/3, argmax/1, penalize/4]).

%% @doc Picks one token id (0-based) from `Logits'. `Opts' holds
%% `temperature' (number >= 0, default 0.0), `top_k' (integer >= 0, 0 = no
%% limit, default 0), `top_p' (in (0, 1], default 1.0) and `min_p' (in [0, 1],
%% default 0.0: off). `Rng' is a
%% {@link viva_tensor_beam_pcg32} state; it is returned unchanged when no draw
%% happens (temperature 0).
-spec sample([float()] | tuple(), map(), viva_tensor_beam_pcg32:state()) ->
    {non_neg_integer(), viva_tensor_beam_pcg32:state()}.
sample(Logits, Opts, Rng) when is_tuple(Logits) ->
    sample(tuple_to_list(Logits), Opts, Rng);
sample(Logits, Opts, Rng) when is_list(Logits), Logits =/= [] ->
    T = maps:get(temperature, Opts, 0.0),
    case T == 0 of
        true ->
            {argmax(Logits), Rng};
        false ->
            TopK = maps:get(top_k, Opts, 0),
            TopP = maps:get(top_p, Opts, 1.0),
            MinP = maps:get(min_p, Opts, 0.0),
            try scaled(Logits, T, 0, []) of
                Scaled -> draw(Scaled, TopK, TopP, MinP, Rng)
            catch
                error:badarith -> {argmax(Logits), Rng}
            end
    end.

%% @doc The logits after the repetition, presence and frequency penalties
%% (`Pen' = `#{repetition, presence, frequency}'), as the Rust engine's
%% `sampler::penalize' computes them, for {@link sample/3}. `Seen' holds (as
%% keys) the ids in the prompt or generated so far, `Counts' how many times
%% each id was generated. Per id, in this order: for a seen id, `l / r' if
%% `l >= 0', else `l * r' (only when `r' is not 1); `l - presence' if its count
%% is above 0 (only when presence is not 0); `l - frequency * count' (only when
%% frequency is not 0 and the count is above 0).
-spec penalize([float()] | tuple(), map(), map(), map()) -> [float()].
penalize(Logits, Pen, Seen, Counts) when is_tuple(Logits) ->
    penalize(tuple_to_list(Logits), Pen, Seen, Counts);
penalize(Logits, #{repetition := R, presence := P, frequency := F}, Seen, Counts) ->
    pen(Logits, 0, R, P, F, Seen, Counts, []).

pen([L0 | Rest], I, R, P, F, Seen, Counts, Acc) ->
    L1 = case R /= 1 andalso maps:is_key(I, Seen) of
             true when L0 < 0 -> L0 * R;
             true -> L0 / R;
             false -> L0
         end,
    C = maps:get(I, Counts, 0),
    L2 = case P /= 0 andalso C > 0 of
             true -> L1 - P;
             false -> L1
         end,
    L3 = case F /= 0 andalso C > 0 of
             true -> L2 - F * C;
             false -> L2
         end,
    pen(Rest, I + 1, R, P, F, Seen, Counts, [L3 | Acc]);
pen([], _I, _R, _P, _F, _Seen, _Counts, Acc) ->
    lists:reverse(Acc).

%% @doc Index (0-based) of the largest value; the lowest index wins ties.
-spec argmax([number()] | tuple()) -> non_neg_integer().
argmax(Logits) when is_tuple(Logits) ->
    argmax(tuple_to_list(Logits));
argmax([First | Rest]) ->
    argmax(Rest, 1, First, 0).

argmax([X | Rest], I, Best, _BestI) when X > Best ->
    argmax(Rest, I + 1, X, I);
argmax([_ | Rest], I, Best, BestI) ->
    argmax(Rest, I + 1, Best, BestI);
argmax([], _I, _Best, BestI) ->
    BestI.

%%--------------------------------------------------------------------

%% Sort keys `{0.0 - l, Index, l}': ascending order of the key is l descending
%% with the lower index first on ties. `0.0 - l' (rather than `-l') turns both
%% zeros into +0.0, so -0.0 and 0.0 tie as they do in f64 comparisons on
%% every OTP release.
scaled([X | Rest], T, I, Acc) ->
    L = X / T,
    scaled(Rest, T, I + 1, [{0.0 - L, I, L} | Acc]);
scaled([], _T, _I, Acc) ->
    Acc.

draw(Keyed, TopK, TopP, MinP, Rng0) ->
    Sorted = lists:sort(Keyed),
    Kept =
        case TopK of
            K when is_integer(K), K > 0 -> lists:sublist(Sorted, K);
            _ -> Sorted
        end,
    [{_, _, M} | _] = Kept,
    Es = [{I, math:exp(L - M)} || {_, I, L} <- Kept],
    Z = sum_left(Es, 0.0),
    Ps = [{I, E / Z} || {I, E} <- Es],
    {Nucleus, Zn} = nucleus(Ps, TopP, 0.0, []),
    {Prefix, Zp} = min_p(Nucleus, Zn, MinP),
    {U, Rng} = viva_tensor_beam_pcg32:uniform(Rng0),
    {walk(Prefix, Zp, U, 0.0), Rng}.

sum_left([{_, E} | Rest], Acc) -> sum_left(Rest, Acc + E);
sum_left([], Acc) -> Acc.

%% The shortest prefix whose running sum reaches TopP, and that running sum
%% (which is exactly Zp: the same additions in the same order).
nucleus([{_, P} = C | Rest], TopP, Cum0, Acc) ->
    Cum = Cum0 + P,
    case Cum >= TopP of
        true -> {lists:reverse([C | Acc]), Cum};
        false -> nucleus(Rest, TopP, Cum, [C | Acc])
    end;
nucleus([], _TopP, Cum, Acc) ->
    {lists:reverse(Acc), Cum}.

%% The nucleus's leading run at or above MinP times its first (largest)
%% probability, and its sum: the nucleus's own sum when nothing is cut.
min_p(Nucleus, Zn, MinP) when MinP == 0 ->
    {Nucleus, Zn};
min_p([{_, P0} | _] = Nucleus, Zn, MinP) ->
    Floor = MinP * P0,
    case lists:takewhile(fun({_, P}) -> P >= Floor end, Nucleus) of
        Nucleus -> {Nucleus, Zn};
        Run -> {Run, sum_left(Run, 0.0)}
    end.

walk([{I, _}], _Zp, _U, _C) ->
    I;
walk([{I, P} | Rest], Zp, U, C0) ->
    C = C0 + P / Zp,
    case C > U of
        true -> I;
        false -> walk(Rest, Zp, U, C)
    end.
