%% @doc EUnit tests of viva_tensor_beam_pcg32 and viva_tensor_beam_sampler.
%%
%% Expected values are independent of the code under test: the PCG32 outputs
%% are the ones pinned in DESIGN.md (checked there against rand_pcg 0.9), and
%% every sampler expectation is worked by hand in the comment above it,
%% following the contract's order of operations.
-module(viva_tensor_beam_sampler_tests).

-include_lib("eunit/include/eunit.hrl").

-define(PCG, viva_tensor_beam_pcg32).
-define(S, viva_tensor_beam_sampler).

%% first three next_u32 outputs of rand_pcg::Pcg32::new(Seed, 0xa02bdbf7bb3c0a7)
pcg_vectors_test_() ->
    [?_assertEqual([3894649422, 2055130073, 2315086854], draws(0, 3)),
     ?_assertEqual([3270867926, 1795671209, 1924641435], draws(42, 3)),
     ?_assertEqual([3643879478, 3444271506, 2072954526], draws(18446744073709551615, 3))].

pcg_seed_mod_2_64_test_() ->
    [?_assertEqual(draws(18446744073709551615, 3), draws(-1, 3)),
     ?_assertEqual(draws(0, 3), draws(18446744073709551616, 3)),
     ?_assertEqual(draws(42, 3), draws(42 - 18446744073709551616, 3))].

%% u = (next_u32 >> 8) / 2^24: 3894649422 >> 8 = 15213474, / 16777216
pcg_uniform_test() ->
    {U1, R1} = ?PCG:uniform(?PCG:new(0)),
    {U2, _} = ?PCG:uniform(R1),
    ?assertEqual(15213474 / 16777216, U1),
    ?assertEqual((2055130073 bsr 8) / 16777216, U2),
    ?assert(U1 > 0.90679 andalso U1 < 0.90680),
    ?assert(U2 > 0.47849 andalso U2 < 0.47850).

pcg_is_a_value_test() ->
    %% the state is immutable: the same state gives the same draw
    R = ?PCG:new(7),
    ?assertEqual(?PCG:next_u32(R), ?PCG:next_u32(R)).

%% temperature 0: argmax, lowest index on ties, no draw (Rng unchanged)
greedy_test_() ->
    R = ?PCG:new(0),
    [?_assertEqual({1, R}, ?S:sample([1.0, 2.0, 0.5, 2.0], #{temperature => 0.0}, R)),
     ?_assertEqual({1, R}, ?S:sample({1.0, 2.0, 0.5, 2.0}, #{temperature => 0}, R)),
     ?_assertEqual({0, R}, ?S:sample([-1.0, -1.0], #{temperature => 0.0, top_k => 1}, R)),
     ?_assertEqual({3, R}, ?S:sample([-5.0, -4.0, -3.0, 7.5], #{temperature => 0.0}, R)),
     ?_assertEqual(2, ?S:argmax([0.0, 1.0, 3.0, 3.0, 2.0]))].

%% logits [1.0, 2.0, 0.5, 2.0], T = 1, top_k = 2, top_p = 1:
%%   sorted by l desc, ties lower index: (2.0, #1), (2.0, #3), (1.0, #0), (0.5, #2)
%%   keep 2: #1, #3; m = 2.0; e = [1, 1]; Z = 2; p = [0.5, 0.5]
%%   running sum 0.5, 1.0 >= 1 -> prefix [#1, #3], Zp = 1.0
%%   seed 0: u1 = 0.906794 -> c = 0.5 (not > u), c = 1.0 > u -> #3
%%           u2 = 0.478497 -> c = 0.5 > u -> #1
top_k_hand_worked_test() ->
    Opts = #{temperature => 1.0, top_k => 2, top_p => 1.0},
    Logits = [1.0, 2.0, 0.5, 2.0],
    {A, R1} = ?S:sample(Logits, Opts, ?PCG:new(0)),
    {B, _} = ?S:sample(Logits, Opts, R1),
    ?assertEqual({3, 1}, {A, B}).

%% logits [1.0, 3.0, 2.0], T = 0.5: l = [2, 6, 4]; sorted #1 (6), #2 (4), #0 (2)
%%   e = [1, e^-2, e^-4] = [1, 0.135335, 0.018316]; Z = 1.153651
%%   p = [0.866813, 0.117311, 0.015876]; all kept (top_p 1)
%%   seed 0, u = 0.906794: c = 0.866813 (no), c = 0.984124 > u -> #2
%%   seed 42, u = (3270867926 >> 8) / 2^24 = 0.761557: c = 0.866813 > u -> #1
temperature_hand_worked_test() ->
    Opts = #{temperature => 0.5, top_k => 0, top_p => 1.0},
    ?assertMatch({2, _}, ?S:sample([1.0, 3.0, 2.0], Opts, ?PCG:new(0))),
    ?assertMatch({1, _}, ?S:sample([1.0, 3.0, 2.0], Opts, ?PCG:new(42))).

%% logits [ln 4, ln 2, 0, 0], T = 1: p = [0.5, 0.25, 0.125, 0.125]
%%   top_p = 0.7: running sums 0.5, 0.75 >= 0.7 -> prefix [#0, #1], Zp = 0.75
%%   c walks 0.666667, 1.0
%%   seed 0: u1 = 0.906794 -> #1; u2 = 0.478497 -> #0
%%   top_p = 0.5: running sum 0.5 >= 0.5 -> prefix [#0] -> #0 whatever u
top_p_hand_worked_test() ->
    Logits = [math:log(4.0), math:log(2.0), 0.0, 0.0],
    Opts = #{temperature => 1.0, top_k => 0, top_p => 0.7},
    {A, R1} = ?S:sample(Logits, Opts, ?PCG:new(0)),
    {B, _} = ?S:sample(Logits, Opts, R1),
    ?assertEqual({1, 0}, {A, B}),
    ?assertMatch({0, _}, ?S:sample(Logits, Opts#{top_p => 0.5}, ?PCG:new(0))).

%% logits [ln 4, ln 2, 0, 0], T = 1: p = [0.5, 0.25, 0.125, 0.125]
%%   min_p = 0.3: floor 0.15 -> run [#0, #1], Zp = 0.75; c walks 0.666667, 1.0
%%   seed 0: u1 = 0.906794 -> #1; u2 = 0.478497 -> #0 (as top_p 0.7 above)
%%   min_p = 0.25: floor 0.125 keeps all four (>=): u1 = 0.906794 walks
%%   0.5, 0.75, 0.875, 1.0 -> #3
%%   min_p = 1: floor 0.5 -> [#0] whatever u, still one draw
min_p_hand_worked_test() ->
    Logits = [math:log(4.0), math:log(2.0), 0.0, 0.0],
    Opts = #{temperature => 1.0, top_k => 0, top_p => 1.0, min_p => 0.3},
    {A, R1} = ?S:sample(Logits, Opts, ?PCG:new(0)),
    {B, _} = ?S:sample(Logits, Opts, R1),
    ?assertEqual({1, 0}, {A, B}),
    ?assertMatch({3, _}, ?S:sample(Logits, Opts#{min_p => 0.25}, ?PCG:new(0))),
    R0 = ?PCG:new(0),
    {_, Next} = ?PCG:next_u32(R0),
    ?assertEqual({0, Next}, ?S:sample(Logits, Opts#{min_p => 1.0}, R0)).

%% Prompt {0}; generated: #3 twice, #1 once. r 2, presence 0.5, frequency 0.25:
%%   #0: 2 / 2 = 1; #1: -1 * 2 - 0.5 - 0.25 = -2.75; #2 (unseen): 0.5;
%%   #3: 3 / 2 - 0.5 - 0.5 = 0.5. Greedy then picks #0 (without them, #3).
penalize_hand_worked_test() ->
    Pen = #{repetition => 2.0, presence => 0.5, frequency => 0.25},
    Seen = #{0 => true, 1 => true, 3 => true},
    Counts = #{1 => 1, 3 => 2},
    Pl = ?S:penalize([2.0, -1.0, 0.5, 3.0], Pen, Seen, Counts),
    ?assertEqual([1.0, -2.75, 0.5, 0.5], Pl),
    ?assertEqual(0, ?S:argmax(Pl)),
    Off = #{repetition => 1.0, presence => 0.0, frequency => 0.0},
    ?assertEqual([2.0, -1.0, 0.5, 3.0], ?S:penalize({2.0, -1.0, 0.5, 3.0}, Off, Seen, Counts)).

%% [2.0, 2.0]: p = [0.5, 0.5] exactly; top_p 0.5 is reached by the first
%% candidate (>=, not >), so #0 even for u = 0.906794; with top_p 0.6 both are
%% kept and u = 0.906794 picks #1.
top_p_boundary_is_inclusive_test() ->
    ?assertMatch({0, _}, ?S:sample([2.0, 2.0], #{temperature => 1.0, top_p => 0.5}, ?PCG:new(0))),
    ?assertMatch({1, _}, ?S:sample([2.0, 2.0], #{temperature => 1.0, top_p => 0.6}, ?PCG:new(0))).

%% top_k = 1 is argmax whatever the draw, and still consumes one draw
top_k_one_test() ->
    R0 = ?PCG:new(5),
    {_, R1} = ?PCG:next_u32(R0),
    ?assertEqual({2, R1}, ?S:sample([0.1, 0.2, 0.9, 0.3], #{temperature => 0.7, top_k => 1}, R0)).

%% negative and positive zero tie; the lower index goes first
signed_zero_tie_test() ->
    NegZero = -1.0 * 0.0,
    Opts = #{temperature => 1.0, top_k => 1},
    ?assertMatch({0, _}, ?S:sample([NegZero, 0.0], Opts, ?PCG:new(0))),
    ?assertMatch({0, _}, ?S:sample([0.0, NegZero], Opts, ?PCG:new(0))).

%% tuple and list logits give the same token and the same next state
tuple_equals_list_test() ->
    L = [0.3, -1.2, 2.5, 2.4, 0.0, 1.1],
    Opts = #{temperature => 0.8, top_k => 4, top_p => 0.9},
    [?assertEqual(?S:sample(L, Opts, ?PCG:new(Seed)), ?S:sample(list_to_tuple(L), Opts, ?PCG:new(Seed)))
     || Seed <- lists:seq(0, 20)].

%% an overflowing logit / T falls back to argmax instead of crashing
tiny_temperature_test() ->
    ?assertMatch({1, _}, ?S:sample([1.0, 2.0], #{temperature => 1.0e-320}, ?PCG:new(0))).

%% over many seeds the frequencies follow p (loose bounds: 4000 draws)
distribution_test() ->
    Logits = [math:log(0.6), math:log(0.3), math:log(0.1)],
    Picks = [element(1, ?S:sample(Logits, #{temperature => 1.0}, ?PCG:new(S))) || S <- lists:seq(1, 4000)],
    F = fun(I) -> length([P || P <- Picks, P =:= I]) / 4000 end,
    ?assert(abs(F(0) - 0.6) < 0.04),
    ?assert(abs(F(1) - 0.3) < 0.04),
    ?assert(abs(F(2) - 0.1) < 0.03).

draws(Seed, N) ->
    {Out, _} = lists:mapfoldl(fun(_, R) -> ?PCG:next_u32(R) end, ?PCG:new(Seed), lists:seq(1, N)),
    Out.
