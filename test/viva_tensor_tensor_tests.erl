%% @doc EUnit tests of viva_tensor_tensor (the BEAM tensor core).
%%
%% Expectations are independent of the code under test: hand-worked examples
%% (worked in the comment above them), or references computed here in f64 by
%% the plainest loops (index arithmetic on nested lists, a brute-force nearest
%% search over the 126 finite positive E4M3 values, bf16 rounding by integer
%% arithmetic on f32 bits).
-module(viva_tensor_tensor_tests).

-include_lib("eunit/include/eunit.hrl").

-define(T, viva_tensor_tensor).
-define(TOL, 1.0e-12).

%% --- helpers ------------------------------------------------------------------

ok({ok, V}) -> V;
ok(Other) -> erlang:error({expected_ok, Other}).

t(Nested) -> ok(?T:from_list(Nested)).

l(T) -> ?T:to_list(T).

close(A, B) -> close(A, B, ?TOL).
close(A, B, Tol) when is_number(A), is_number(B) -> abs(A - B) =< Tol * erlang:max(1.0, abs(B));
close(A, B, Tol) when is_list(A), is_list(B), length(A) =:= length(B) ->
    lists:all(fun({X, Y}) -> close(X, Y, Tol) end, lists:zip(A, B));
close(_, _, _) -> false.

-define(assertClose(Want, Got), ?assert(close(Got, Want), {got, Got, want, Want})).
-define(assertClose(Want, Got, Tol), ?assert(close(Got, Want, Tol), {got, Got, want, Want})).
-define(_assertClose(Want, Got), ?_test(?assertClose(Want, Got))).

%% {error, {Kind, Msg}} with a non-empty binary message; returns Msg.
err(Kind, Result) ->
    ?assertMatch({error, {Kind, <<_, _/binary>>}}, Result),
    {error, {Kind, Msg}} = Result,
    Msg.

has(Msg, Part) -> binary:match(Msg, Part) =/= nomatch.

%% Deterministic pseudo-random floats in [-1, 1).
rnd(N, Seed) ->
    S0 = rand:seed_s(exsss, {Seed, 7, 11}),
    {L, _} = lists:foldl(fun(_, {Acc, S}) ->
                                 {U, S2} = rand:uniform_s(S),
                                 {[2.0 * U - 1.0 | Acc], S2}
                         end, {[], S0}, lists:seq(1, N)),
    L.

chunks([], _) -> [];
chunks(L, N) -> {C, R} = lists:split(N, L), [C | chunks(R, N)].

nth(I, L) -> lists:nth(I + 1, L).

%% f64 reference [M,K] x [K,N] on nested lists, plain triple loop.
ref_matmul(A, B) ->
    N = length(hd(B)),
    [[lists:foldl(fun({X, Brow}, Acc) -> Acc + X * nth(J, Brow) end, 0.0, lists:zip(Row, B))
      || J <- lists:seq(0, N - 1)] || Row <- A].

%% --- constructors and getters ---------------------------------------------------

from_list_shapes_test_() ->
    [?_assertEqual([2, 3], ?T:shape(t([[1, 2, 3], [4, 5, 6]]))),
     ?_assertEqual([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], l(t([[1, 2, 3], [4, 5, 6]]))),
     ?_assertEqual([2, 1, 2], ?T:shape(t([[[1, 2]], [[3, 4]]]))),
     ?_assertEqual([], ?T:shape(t(2.5))),
     ?_assertEqual(2.5, l(t(2.5))),
     ?_assertEqual([0], ?T:shape(t([]))),
     ?_assertEqual([2, 0], ?T:shape(t([[], []]))),
     ?_assertEqual([[], []], l(t([[], []]))),
     ?_assertEqual(6, ?T:size(t([[1, 2, 3], [4, 5, 6]]))),
     ?_assertEqual([1.0, 2.0, 3.0, 4.0], ?T:to_flat_list(t([[1, 2], [3, 4]]))),
     ?_assert(?T:is_tensor(t([1]))),
     ?_assertNot(?T:is_tensor({1, 2}))].

from_flat_list_test_() ->
    [?_assertEqual([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], l(ok(?T:from_list([1, 2, 3, 4, 5, 6], [3, 2])))),
     ?_assertEqual(7.0, l(ok(?T:from_list([7], [])))),
     ?_assertEqual([[[]]], l(ok(?T:from_list([], [1, 1, 0]))))].

zeros_ones_full_test_() ->
    [?_assertEqual([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], l(ok(?T:zeros([2, 3])))),
     ?_assertEqual([1.0, 1.0], l(ok(?T:ones([2])))),
     ?_assertEqual([[0.5], [0.5]], l(ok(?T:full([2, 1], 0.5)))),
     ?_assertEqual(3.0, l(ok(?T:full([], 3))))].

constructor_errors_test_() ->
    [?_assert(has(err(shape_mismatch, ?T:from_list([[1, 2], [3]])), <<"ragged">>)),
     ?_assert(has(err(shape_mismatch, ?T:from_list([1, [2]])), <<"ragged">>)),
     ?_assert(has(err(shape_mismatch, ?T:from_list([[1], 2])), <<"ragged">>)),
     ?_assert(has(err(invalid_option, ?T:from_list([[1, 2], [3, x]])), <<"[1,1]">>)),
     ?_assert(has(err(shape_mismatch, ?T:from_list([1, 2, 3], [2, 2])), <<"[2,2]">>)),
     ?_assert(has(err(invalid_option, ?T:from_list([1, 2], [2, -1])), <<"shape">>)),
     ?_assert(has(err(invalid_option, ?T:from_list([1, a], [2])), <<"number">>)),
     ?_assert(has(err(invalid_option, ?T:zeros([2, x])), <<"shape">>)),
     ?_assert(has(err(invalid_option, ?T:ones([-1])), <<"shape">>)),
     ?_assert(has(err(invalid_option, ?T:full([4096, 4097], 0.0)), <<"16777215">>)),
     ?_assert(has(err(invalid_option, ?T:from_list([1 bsl 1100])), <<"too large">>))].

%% --- binaries -------------------------------------------------------------------

%% bf16 is the top half of an f32: values with at most 8 significant bits and
%% an exponent in f32's range are exact. Bytes worked out by hand:
%% 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00, 3.140625 = 201/64 = 0x4049,
%% 65280 = 255 * 2^8 = 0x477F, bf16 max (2 - 2^-7) * 2^127 = 0x7F7F,
%% min subnormal 2^-133 = 0x0001, -0.0078125 = -2^-7 = 0xBC00.
bf16_round_trip_test() ->
    Values = [1.0, -2.0, 0.5, 3.140625, 65280.0, (2 - math:pow(2, -7)) * math:pow(2, 127),
              math:pow(2, -133), -0.0078125],
    Want = <<16#80, 16#3F, 16#00, 16#C0, 16#00, 16#3F, 16#49, 16#40, 16#7F, 16#47,
             16#7F, 16#7F, 16#01, 16#00, 16#00, 16#BC>>,
    T = ok(?T:from_list(Values, [2, 4])),
    ?assertEqual({ok, Want}, ?T:to_binary(T, bf16)),
    Back = ok(?T:from_binary(Want, [2, 4], bf16)),
    ?assertEqual([2, 4], ?T:shape(Back)),
    ?assertEqual(Values, ?T:to_flat_list(Back)).

%% Round to nearest even: 1 + 2^-8 is halfway between 1.0 (0x3F80) and
%% 1 + 2^-7 (0x3F81) -> even 0x3F80; 1 + 3 * 2^-8 is halfway between 0x3F81
%% and 0x3F82 -> even 0x3F82; 1 + 2^-8 + 2^-20 is above halfway -> 0x3F81;
%% 1e39 is beyond bf16's max -> +inf 0x7F80, -1e39 -> 0xFF80.
bf16_rounding_test() ->
    T = t([1 + math:pow(2, -8), 1 + 3 * math:pow(2, -8), 1 + math:pow(2, -8) + math:pow(2, -20),
           1.0e39, -1.0e39]),
    ?assertEqual({ok, <<16#3F80:16/little, 16#3F82:16/little, 16#3F81:16/little,
                        16#7F80:16/little, 16#FF80:16/little>>},
                 ?T:to_binary(T, bf16)).

%% f16 (1/5/10, bias 15): 1.0 = 0x3C00, -2.5 = 0xC100, max 65504 = 0x7BFF,
%% min subnormal 2^-24 = 0x0001, 1e6 overflows -> 0x7C00, 2^-26 rounds to 0.
f16_test() ->
    T = t([1.0, -2.5, 65504.0, math:pow(2, -24), 1.0e6, math:pow(2, -26)]),
    Bin = <<16#3C00:16/little, 16#C100:16/little, 16#7BFF:16/little, 16#0001:16/little,
            16#7C00:16/little, 16#0000:16/little>>,
    ?assertEqual({ok, Bin}, ?T:to_binary(T, f16)),
    Exact = <<16#3C00:16/little, 16#C100:16/little, 16#7BFF:16/little, 16#0001:16/little>>,
    ?assertEqual([1.0, -2.5, 65504.0, math:pow(2, -24)],
                 ?T:to_flat_list(ok(?T:from_binary(Exact, [4], f16)))).

f32_f64_test() ->
    Bin32 = <<1.5:32/float-little, -0.25:32/float-little, 3.0:32/float-little, 1.0e-3:32/float-little>>,
    T = ok(?T:from_binary(Bin32, [2, 2], f32)),
    <<_:12/binary, Thousandth:32/float-little>> = Bin32,
    ?assertEqual([[1.5, -0.25], [3.0, Thousandth]], l(T)),
    ?assertEqual({ok, Bin32}, ?T:to_binary(T, f32)),
    T64 = t([0.1, -1.0e300]),
    {ok, Bin64} = ?T:to_binary(T64, f64),
    ?assertEqual(<<0.1:64/float-little, -1.0e300:64/float-little>>, Bin64),
    ?assertEqual([0.1, -1.0e300], ?T:to_flat_list(ok(?T:from_binary(Bin64, [2], f64)))),
    %% beyond f32: inf
    ?assertEqual({ok, <<16#7F800000:32/little>>}, ?T:to_binary(t([1.0e300]), f32)).

binary_errors_test_() ->
    Inf32 = <<1.0:32/float-little, 16#7F800000:32/little>>,
    [?_assert(has(err(invalid_option, ?T:from_binary(<<0, 0, 0>>, [1], f32)), <<"3 bytes">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(<<0, 0, 0, 0>>, [2, 2], bf16)), <<"[2,2]">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(<<0, 0>>, [1], f8)), <<"dtype">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(Inf32, [2], f32)), <<"finite">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(<<16#7FC0:16/little>>, [1], bf16)), <<"finite">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(<<16#7C00:16/little>>, [1], f16)), <<"finite">>)),
     ?_assert(has(err(invalid_option, ?T:from_binary(<<>>, [a], f32)), <<"shape">>)),
     ?_assert(has(err(invalid_option, ?T:to_binary(t([1]), int8)), <<"dtype">>))].

%% --- shape operations -----------------------------------------------------------

reshape_test_() ->
    T = t([[1, 2, 3], [4, 5, 6]]),
    [?_assertEqual([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], l(ok(?T:reshape(T, [3, 2])))),
     ?_assertEqual([3, 2], ?T:shape(ok(?T:reshape(T, [-1, 2])))),
     ?_assertEqual([6], ?T:shape(ok(?T:reshape(T, [-1])))),
     ?_assertEqual([1, 6, 1], ?T:shape(ok(?T:reshape(T, [1, -1, 1])))),
     ?_assert(has(err(shape_mismatch, ?T:reshape(T, [4, 2])), <<"[2,3]">>)),
     ?_assert(has(err(shape_mismatch, ?T:reshape(T, [-1, 4])), <<"[-1,4]">>)),
     ?_assert(has(err(invalid_option, ?T:reshape(T, [-1, -1])), <<"-1">>)),
     ?_assert(has(err(invalid_option, ?T:reshape(T, [-2, -3])), <<"-2">>)),
     ?_assert(has(err(invalid_option, ?T:reshape(ok(?T:zeros([0, 3])), [0, -1])), <<"ambiguous">>))].

transpose_test_() ->
    T = t([[1, 2, 3], [4, 5, 6]]),
    %% T3[i][j][k] = 100i + 10j + k, shape [2,3,4]
    T3L = [[[100.0 * I + 10 * J + K || K <- lists:seq(0, 3)] || J <- lists:seq(0, 2)] || I <- lists:seq(0, 1)],
    T3 = t(T3L),
    P = ok(?T:transpose(T3, [2, 0, 1])),
    %% P[a][b][c] = T3[b][c][a]
    PRef = [[[nth(A, nth(C, nth(B, T3L))) || C <- lists:seq(0, 2)] || B <- lists:seq(0, 1)] || A <- lists:seq(0, 3)],
    [?_assertEqual([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]], l(ok(?T:transpose(T)))),
     ?_assertEqual([4, 2, 3], ?T:shape(P)),
     ?_assertEqual(PRef, l(P)),
     ?_assertEqual(l(P), l(ok(?T:transpose(T3, [-1, 0, 1])))),
     ?_assertEqual(T3L, l(ok(?T:transpose(T3, [0, 1, 2])))),
     %% transpose/1 reverses all axes
     ?_assertEqual(l(ok(?T:transpose(T3, [2, 1, 0]))), l(ok(?T:transpose(T3)))),
     ?_assertEqual([1.0, 2.0], l(ok(?T:transpose(t([1, 2]))))),
     ?_assert(has(err(invalid_option, ?T:transpose(T3, [0, 0, 1])), <<"permutation">>)),
     ?_assert(has(err(invalid_option, ?T:transpose(T3, [0, 1])), <<"permutation">>)),
     ?_assert(has(err(invalid_option, ?T:transpose(T3, [0, 1, 3])), <<"permutation">>))].

slice_test_() ->
    T = t([[1, 2, 3], [4, 5, 6]]),
    [?_assertEqual([[2.0, 3.0], [5.0, 6.0]], l(ok(?T:slice(T, [0, 1], [2, 2])))),
     ?_assertEqual([[4.0]], l(ok(?T:slice(T, [1, 0], [1, 1])))),
     ?_assertEqual([[], []], l(ok(?T:slice(T, [0, 3], [2, 0])))),
     ?_assert(has(err(invalid_option, ?T:slice(T, [0, 2], [2, 2])), <<"axis 1">>)),
     ?_assert(has(err(invalid_option, ?T:slice(T, [-1, 0], [1, 1])), <<"axis 0">>)),
     ?_assert(has(err(invalid_option, ?T:slice(T, [0], [1])), <<"2 starts">>))].

concat_test_() ->
    A = t([[1, 2], [3, 4]]),
    B = t([[5, 6]]),
    C = t([[7], [8]]),
    [?_assertEqual([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], l(ok(?T:concat([A, B], 0)))),
     ?_assertEqual([[1.0, 2.0, 7.0], [3.0, 4.0, 8.0]], l(ok(?T:concat([A, C], 1)))),
     ?_assertEqual([[7.0, 1.0, 2.0, 7.0], [8.0, 3.0, 4.0, 8.0]], l(ok(?T:concat([C, A, C], -1)))),
     ?_assertEqual([1.0, 2.0, 3.0], l(ok(?T:concat([t([1]), t([2, 3])], 0)))),
     ?_assert(has(err(shape_mismatch, ?T:concat([A, B], 1)), <<"[1,2]">>)),
     ?_assert(has(err(shape_mismatch, ?T:concat([A, t([1, 2])], 0)), <<"[2]">>)),
     ?_assert(has(err(invalid_option, ?T:concat([A, A], 2)), <<"axis">>)),
     ?_assert(has(err(invalid_option, ?T:concat([], 0)), <<"no tensors">>))].

%% --- elementwise and broadcasting -----------------------------------------------

broadcast_shapes_test_() ->
    Col = t([[1], [2]]),            % [2,1]
    Row = t([10, 20, 30]),          % [3]
    [?_assertEqual([[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]], l(ok(?T:add(Col, Row)))),
     ?_assertEqual([[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]], l(ok(?T:add(Row, Col)))),
     ?_assertEqual([[2.0, 3.0], [4.0, 5.0]], l(ok(?T:add(t([[1, 2], [3, 4]]), t(1))))),
     ?_assertEqual([[0.0, 1.0], [2.0, 3.0]], l(ok(?T:sub(t([[1, 2], [3, 4]]), t([1]))))),
     ?_assertEqual([2, 0], ?T:shape(ok(?T:mul(ok(?T:zeros([2, 1])), ok(?T:zeros([0])))))),
     ?_assertEqual([4, 2, 3], ?T:shape(ok(?T:mul(ok(?T:ones([4, 1, 3])), ok(?T:ones([2, 1])))))),
     ?_assertEqual(<<"add: [2,3] and [2] do not broadcast (dimension 3 vs 2)">>,
                   err(shape_mismatch, ?T:add(t([[1, 2, 3], [4, 5, 6]]), t([1, 2])))),
     ?_assert(has(err(shape_mismatch, ?T:mul(ok(?T:zeros([2, 3, 4])), ok(?T:zeros([3, 1, 5])))),
                  <<"[2,3,4] and [3,1,5]">>))].

%% [4,1,3] op [2,1] -> [4,2,3]: out[i][j][k] = a[i][0][k] op b[j][0], against
%% index loops.
broadcast_values_test_() ->
    AL = chunks(rnd(12, 1), 3),                          % [4][3]
    BL = rnd(2, 2),                                      % [2]
    A = ok(?T:from_list(lists:append(AL), [4, 1, 3])),
    B = ok(?T:from_list(BL, [2, 1])),
    Ref = fun(F) -> [[[F(nth(K, nth(I, AL)), nth(J, BL)) || K <- lists:seq(0, 2)]
                      || J <- lists:seq(0, 1)] || I <- lists:seq(0, 3)] end,
    Flat = fun(X) -> lists:flatten(X) end,
    [?_assertEqual(Flat(Ref(fun(X, Y) -> X + Y end)), ?T:to_flat_list(ok(?T:add(A, B)))),
     ?_assertEqual(Flat(Ref(fun(X, Y) -> X - Y end)), ?T:to_flat_list(ok(?T:sub(A, B)))),
     ?_assertEqual(Flat(Ref(fun(X, Y) -> X * Y end)), ?T:to_flat_list(ok(?T:mul(A, B)))),
     ?_assertEqual(Flat(Ref(fun(X, Y) -> X / Y end)), ?T:to_flat_list(ok(?T:'div'(A, B)))),
     ?_assertEqual(Flat(Ref(fun erlang:max/2)), ?T:to_flat_list(ok(?T:maximum(A, B)))),
     ?_assertEqual(Flat(Ref(fun erlang:min/2)), ?T:to_flat_list(ok(?T:minimum(A, B)))),
     ?_assertEqual([4, 2, 3], ?T:shape(ok(?T:add(A, B))))].

elementwise_test_() ->
    A = t([1.0, -2.0, 3.0]),
    B = t([4.0, 5.0, -6.0]),
    [?_assertEqual([5.0, 3.0, -3.0], l(ok(?T:add(A, B)))),
     ?_assertEqual([-3.0, -7.0, 9.0], l(ok(?T:sub(A, B)))),
     ?_assertEqual([4.0, -10.0, -18.0], l(ok(?T:mul(A, B)))),
     ?_assertEqual([0.25, -0.4, -0.5], l(ok(?T:'div'(A, B)))),
     ?_assertEqual([4.0, 5.0, 3.0], l(ok(?T:maximum(A, B)))),
     ?_assertEqual([1.0, -2.0, -6.0], l(ok(?T:minimum(A, B)))),
     ?_assertEqual([2.5, -5.0, 7.5], l(ok(?T:scale(A, 2.5)))),
     ?_assertEqual([-1.0, 2.0, -3.0], l(ok(?T:neg(A)))),
     ?_assertEqual([1.0, 0.0, 3.0], l(ok(?T:relu(A))))].

unary_test_() ->
    Xs = [-3.0, -0.5, 0.0, 0.25, 2.0, 10.0],
    T = t(Xs),
    Sig = fun(X) -> 1.0 / (1.0 + math:exp(-X)) end,
    [?_assertClose([math:exp(X) || X <- Xs], l(ok(?T:exp(T)))),
     ?_assertClose([math:tanh(X) || X <- Xs], l(ok(?T:tanh(T)))),
     ?_assertClose([Sig(X) || X <- Xs], l(ok(?T:sigmoid(T)))),
     ?_assertClose([X * Sig(X) || X <- Xs], l(ok(?T:silu(T)))),
     ?_assertClose([0.0, 0.5, 2.0, 3.0], l(ok(?T:sqrt(t([0, 0.25, 4, 9]))))),
     %% no overflow at the extremes: sigmoid(-1000) = 0, sigmoid(1000) = 1
     ?_assertEqual([0.0, 1.0], l(ok(?T:sigmoid(t([-1000.0, 1000.0]))))),
     ?_assertEqual([-0.0, 1000.0], l(ok(?T:silu(t([-1000.0, 1000.0])))))].

arith_errors_test_() ->
    [?_assert(has(err(invalid_option, ?T:exp(t([1.0, 1000.0]))), <<"exp">>)),
     ?_assert(has(err(invalid_option, ?T:sqrt(t([4.0, -1.0]))), <<"sqrt">>)),
     ?_assert(has(err(invalid_option, ?T:'div'(t([1.0]), t([0.0]))), <<"div">>)),
     ?_assert(has(err(invalid_option, ?T:mul(t([1.0e200]), t([1.0e200]))), <<"mul">>)),
     ?_assert(has(err(invalid_option, ?T:scale(t([1.0e300]), 1.0e10)), <<"scale">>))].

%% --- matmul -------------------------------------------------------------------

%% [[1,2,3],[4,5,6]] . [[7,8],[9,10],[11,12]]:
%% 1*7+2*9+3*11 = 58, 1*8+2*10+3*12 = 64, 4*7+5*9+6*11 = 139, 4*8+5*10+6*12 = 154
matmul_hand_test() ->
    C = ok(?T:matmul(t([[1, 2, 3], [4, 5, 6]]), t([[7, 8], [9, 10], [11, 12]]))),
    ?assertEqual([2, 2], ?T:shape(C)),
    ?assertEqual([[58.0, 64.0], [139.0, 154.0]], l(C)).

%% NumPy's 1-D rules: [3].[3] = 1*4+2*5+3*6 = 32 (a scalar);
%% [3] x [3,2] = [1*7+2*9+3*11, 1*8+2*10+3*12] = [58, 64];
%% [2,3] x [3] = [1*1+2*1+3*1, 4+5+6] = [6, 15].
matmul_1d_test_() ->
    A = t([[1, 2, 3], [4, 5, 6]]),
    B = t([[7, 8], [9, 10], [11, 12]]),
    [?_assertEqual({[], 32.0}, sl(ok(?T:matmul(t([1, 2, 3]), t([4, 5, 6]))))),
     ?_assertEqual({[2], [58.0, 64.0]}, sl(ok(?T:matmul(t([1, 2, 3]), B)))),
     ?_assertEqual({[2], [6.0, 15.0]}, sl(ok(?T:matmul(A, t([1, 1, 1])))))].

sl(T) -> {?T:shape(T), l(T)}.

matmul_random_test() ->
    AL = chunks(rnd(35, 3), 7),
    BL = chunks(rnd(28, 4), 4),
    C = ok(?T:matmul(t(AL), t(BL))),
    ?assertEqual([5, 4], ?T:shape(C)),
    ?assertClose(lists:append(ref_matmul(AL, BL)), ?T:to_flat_list(C)).

%% Batched: [3,2,4] x [3,4,5] -> [3,2,5], batch b = A[b] . B[b]; and
%% [3,2,4] x [4,5] / [1,2,4] x [3,4,5] broadcast the missing batch.
matmul_batched_test() ->
    AL = [chunks(X, 4) || X <- chunks(rnd(24, 5), 8)],     % [3][2][4]
    BL = [chunks(X, 5) || X <- chunks(rnd(60, 6), 20)],    % [3][4][5]
    C = ok(?T:matmul(t(AL), t(BL))),
    ?assertEqual([3, 2, 5], ?T:shape(C)),
    ?assertClose(lists:flatten([ref_matmul(A, B) || {A, B} <- lists:zip(AL, BL)]), ?T:to_flat_list(C)),
    C2 = ok(?T:matmul(t(AL), t(hd(BL)))),
    ?assertEqual([3, 2, 5], ?T:shape(C2)),
    ?assertClose(lists:flatten([ref_matmul(A, hd(BL)) || A <- AL]), ?T:to_flat_list(C2)),
    C3 = ok(?T:matmul(t([hd(AL)]), t(BL))),
    ?assertEqual([3, 2, 5], ?T:shape(C3)),
    ?assertClose(lists:flatten([ref_matmul(hd(AL), B) || B <- BL]), ?T:to_flat_list(C3)),
    %% empty inner dimension: zeros
    ?assertEqual([[0.0, 0.0], [0.0, 0.0]], l(ok(?T:matmul(ok(?T:zeros([2, 0])), ok(?T:zeros([0, 2])))))).

matmul_errors_test_() ->
    [?_assertEqual(<<"matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ">>,
                   err(shape_mismatch, ?T:matmul(ok(?T:zeros([2, 3])), ok(?T:zeros([4, 5]))))),
     ?_assertEqual(<<"matmul: [3] x [4]: inner dimensions 3 and 4 differ">>,
                   err(shape_mismatch, ?T:matmul(ok(?T:zeros([3])), ok(?T:zeros([4]))))),
     ?_assert(has(err(shape_mismatch, ?T:matmul(ok(?T:zeros([2, 2, 3])), ok(?T:zeros([3, 3, 4])))),
                  <<"batch dimensions [2] and [3]">>)),
     ?_assert(has(err(shape_mismatch, ?T:matmul(t(1.0), t([1.0]))), <<"[] x [1]">>))].

%% --- reductions -------------------------------------------------------------------

reductions_test_() ->
    T = t([[1, 9, 3], [7, 5, 7]]),
    [?_assertEqual([8.0, 14.0, 10.0], l(ok(?T:sum(T, 0)))),
     ?_assertEqual([13.0, 19.0], l(ok(?T:sum(T, 1)))),
     ?_assertEqual([13.0, 19.0], l(ok(?T:sum(T, -1)))),
     ?_assertEqual({ok, 32.0}, ?T:sum(T)),
     ?_assertEqual([4.0, 7.0, 5.0], l(ok(?T:mean(T, 0)))),
     ?_assertEqual([9.0, 7.0], l(ok(?T:max(T, 1)))),
     ?_assertEqual([1.0, 5.0], l(ok(?T:min(T, 1)))),
     ?_assertEqual([7.0, 9.0, 7.0], l(ok(?T:max(T, 0)))),
     %% first index on ties: row 1 has 7 at 0 and 2
     ?_assertEqual([1.0, 0.0], l(ok(?T:argmax(T, 1)))),
     ?_assertEqual([1.0, 0.0, 1.0], l(ok(?T:argmax(T, 0)))),
     ?_assertEqual(6.0, l(ok(?T:sum(t([1, 2, 3]), 0)))),
     ?_assertEqual([0.0, 0.0], l(ok(?T:sum(ok(?T:zeros([2, 0])), 1))))].

%% The middle axis of a [2,3,4] tensor against index loops.
reduce_middle_axis_test() ->
    XL = [chunks(X, 4) || X <- chunks(rnd(24, 7), 12)],     % [2][3][4]
    T = t(XL),
    Along = fun(I, K) -> [nth(K, nth(J, nth(I, XL))) || J <- lists:seq(0, 2)] end,
    Ref = fun(F) -> [F(Along(I, K)) || I <- [0, 1], K <- lists:seq(0, 3)] end,
    ?assertEqual([2, 4], ?T:shape(ok(?T:sum(T, 1)))),
    ?assertClose(Ref(fun lists:sum/1), ?T:to_flat_list(ok(?T:sum(T, 1)))),
    ?assertClose(Ref(fun(L) -> lists:sum(L) / 3 end), ?T:to_flat_list(ok(?T:mean(T, 1)))),
    ?assertEqual(Ref(fun lists:max/1), ?T:to_flat_list(ok(?T:max(T, 1)))),
    ?assertEqual(Ref(fun lists:min/1), ?T:to_flat_list(ok(?T:min(T, -2)))),
    ArgMax = fun(L) -> M = lists:max(L), float(length(lists:takewhile(fun(X) -> X =/= M end, L))) end,
    ?assertEqual(Ref(ArgMax), ?T:to_flat_list(ok(?T:argmax(T, 1)))).

reduction_errors_test_() ->
    T = t([[1, 2], [3, 4]]),
    E = ok(?T:zeros([2, 0])),
    [?_assert(has(err(invalid_option, ?T:sum(T, 2)), <<"axis 2">>)),
     ?_assert(has(err(invalid_option, ?T:mean(T, -3)), <<"axis -3">>)),
     ?_assert(has(err(invalid_option, ?T:max(E, 1)), <<"empty">>)),
     ?_assert(has(err(invalid_option, ?T:min(E, 1)), <<"empty">>)),
     ?_assert(has(err(invalid_option, ?T:argmax(E, 1)), <<"empty">>)),
     ?_assert(has(err(invalid_option, ?T:mean(E, 1)), <<"empty">>)),
     ?_assert(has(err(invalid_option, ?T:max(t(1.0), 0)), <<"axis 0">>))].

%% --- softmax and rmsnorm ---------------------------------------------------------

%% softmax([1,2,3]) = [e^-2, e^-1, 1] / (e^-2 + e^-1 + 1)
%%                  = [0.0900305731703805, 0.2447284710547976, 0.6652409557748219]
softmax_test() ->
    T = t([[1, 2, 3], [1000, 1001, 1002], [-5, -5, -5]]),
    P = ok(?T:softmax(T, 1)),
    Z = math:exp(-2) + math:exp(-1) + 1,
    Hand = [math:exp(-2) / Z, math:exp(-1) / Z, 1 / Z],
    [R1, R2, R3] = l(P),
    ?assertClose(Hand, R1),
    ?assertClose([0.0900305731703805, 0.2447284710547976, 0.6652409557748219], R1, 1.0e-15),
    ?assertClose(Hand, R2),                                 % shift-invariant, no overflow
    ?assertClose([1 / 3, 1 / 3, 1 / 3], R3),
    [?assertClose(1.0, lists:sum(R)) || R <- l(P)],
    ?assertEqual(l(P), l(ok(?T:softmax(T, -1)))).

softmax_axis0_test() ->
    XL = chunks(rnd(12, 9), 4),                              % [3][4]
    P = ok(?T:softmax(t(XL), 0)),
    Cols = [[nth(J, R) || R <- XL] || J <- lists:seq(0, 3)],
    Soft = fun(C) -> M = lists:max(C), E = [math:exp(X - M) || X <- C], S = lists:sum(E), [X / S || X <- E] end,
    RefCols = [Soft(C) || C <- Cols],
    Ref = [[nth(I, C) || C <- RefCols] || I <- lists:seq(0, 2)],
    ?assertClose(lists:append(Ref), ?T:to_flat_list(P)),
    ?assert(has(err(invalid_option, ?T:softmax(t(XL), 2)), <<"axis 2">>)).

%% x = [3,4], w = [1,2], eps = 0: mean(x^2) = (9 + 16) / 2 = 12.5,
%% rms = sqrt(12.5) = 3.5355339..., y = [3 / rms * 1, 4 / rms * 2]
%% = [0.848528137..., 2.262741699...].
rmsnorm_test() ->
    Y = ok(?T:rmsnorm(t([3, 4]), t([1, 2]), 0)),
    ?assertClose([0.848528, 2.262742], l(Y), 1.0e-6),
    ?assertClose([3 / math:sqrt(12.5), 8 / math:sqrt(12.5)], l(Y)),
    %% rows independently; eps inside the square root
    Y2 = ok(?T:rmsnorm(t([[3, 4], [1, 1]]), t([1, 2]), 0.5)),
    ?assertClose([[3 / math:sqrt(13.0), 8 / math:sqrt(13.0)], [1 / math:sqrt(1.5), 2 / math:sqrt(1.5)]], l(Y2)).

rmsnorm_errors_test_() ->
    [?_assertEqual(<<"rmsnorm: x [2,2], weight [3]: the weight must be [2]">>,
                   err(shape_mismatch, ?T:rmsnorm(t([[1, 2], [3, 4]]), t([1, 2, 3]), 1.0e-6))),
     ?_assert(has(err(shape_mismatch, ?T:rmsnorm(t(1.0), t([1]), 0.0)), <<"rmsnorm">>)),
     ?_assert(has(err(invalid_option, ?T:rmsnorm(t([1, 2]), t([1, 2]), -1.0)), <<"eps">>)),
     ?_assert(has(err(invalid_option, ?T:rmsnorm(t([0, 0]), t([1, 2]), 0.0)), <<"rmsnorm">>))].

%% --- E4M3FN --------------------------------------------------------------------

%% Codes worked by hand (sign | exponent (bias 7) | mantissa):
%% 448 = 1.75 * 2^8 -> 0 1111 110 = 0x7E; 1.0 -> 0 0111 000 = 0x38;
%% 2^-9 = 1/8 * 2^-6 (min subnormal) -> 0 0000 001 = 0x01; -2.0 -> 1 1000 000 = 0xC0;
%% 0.3: 2^-2 <= 0.3 < 2^-1, step 2^-5, 0.3 / 2^-5 = 9.6 -> 10 -> 0.3125
%% (0.28125 is 0.01875 away, 0.3125 only 0.0125) -> 0 0101 010 = 0x2A;
%% 2^-10 is halfway between 0 and 2^-9 -> even 0x00; 1.0625 halfway between
%% 1.0 (0x38) and 1.125 (0x39) -> even 0x38; 1.1875 halfway 0x39/0x3A -> 0x3A;
%% 1000 and 464 (halfway 448/480, and beyond) saturate to 0x7E, -1000 to 0xFE.
e4m3_table_test_() ->
    Cases = [{448.0, 16#7E}, {1.0, 16#38}, {0.001953125, 16#01}, {-2.0, 16#C0}, {0.3, 16#2A},
             {0.0009765625, 16#00}, {1.0625, 16#38}, {1.1875, 16#3A}, {1000.0, 16#7E},
             {464.0, 16#7E}, {-1000.0, 16#FE}, {0.0, 16#00}, {-0.0, 16#80},
             {0.015625, 16#08}, {0.013671875, 16#07}, {240.0, 16#77}, {-0.3, 16#AA}],
    [?_assertEqual({X, C}, {X, ?T:e4m3_encode(X)}) || {X, C} <- Cases] ++
    [?_assertEqual(0.3125, ?T:e4m3_decode(16#2A)),
     ?_assertEqual(448.0, ?T:e4m3_decode(16#7E)),
     ?_assertEqual(-448.0, ?T:e4m3_decode(16#FE)),
     ?_assertEqual(math:pow(2, -9), ?T:e4m3_decode(16#01)),
     ?_assertEqual(0.013671875, ?T:e4m3_decode(16#07)),       % max subnormal 7/8 * 2^-6
     ?_assertEqual(1.0, ?T:e4m3_decode(16#38)),
     ?_assertEqual(-2.0, ?T:e4m3_decode(16#C0)),
     ?_assertEqual(nan, ?T:e4m3_decode(16#7F)),
     ?_assertEqual(nan, ?T:e4m3_decode(16#FF))].

%% The finite non-negative E4M3FN values by their definition, independent of
%% the module: code c = e << 3 | m, value (e == 0 ? m/8 * 2^-6 : (1 + m/8) * 2^(e-7)).
e4m3_values() ->
    [{C, case C bsr 3 of
             0 -> (C band 7) / 8 * math:pow(2, -6);
             E -> (1 + (C band 7) / 8) * math:pow(2, E - 7)
         end} || C <- lists:seq(0, 16#7E)].

%% Brute force: the nearest value, ties to the even code; beyond 448: 448.
e4m3_ref(X) ->
    Sign = case X < 0 of true -> 16#80; false -> 0 end,
    A = abs(X),
    {_, Best} = lists:min([{{abs(V - A), C band 1}, C} || {C, V} <- e4m3_values()]),
    Sign bor Best.

e4m3_every_code_test() ->
    [begin
         ?assertEqual(V, ?T:e4m3_decode(C)),
         ?assertEqual(C, ?T:e4m3_encode(V)),
         ?assertEqual(-V, ?T:e4m3_decode(C bor 16#80)),
         ?assertEqual(C bor 16#80, ?T:e4m3_encode(-V))
     end || {C, V} <- e4m3_values(), C =/= 0].

e4m3_brute_force_test() ->
    Xs = [X * 500.0 || X <- rnd(400, 11)] ++ [X * 0.05 || X <- rnd(400, 12)]
        ++ [X * 2.0 || X <- rnd(200, 13)]
        %% every midpoint between neighbours (ties), and just beside them
        ++ lists:append([[(V1 + V2) / 2, (V1 + V2) / 2 * (1 + 1.0e-9), (V1 + V2) / 2 * (1 - 1.0e-9)]
                         || {{_, V1}, {_, V2}} <- lists:zip(lists:droplast(e4m3_values()),
                                                            tl(e4m3_values()))]),
    Bad = [{X, ?T:e4m3_encode(X), e4m3_ref(X)} || X <- Xs, ?T:e4m3_encode(X) =/= e4m3_ref(X)],
    ?assertEqual([], Bad).

%% --- FP8 prepack / dequantize / linear -------------------------------------------

f32(X) -> <<Y:32/float>> = <<X:32/float>>, Y.

%% The dequantised weight by the recipe, from the brute-force encoder:
%% per row, per block of Block: scale = f32(max|w| / 448) (1.0 if zero),
%% w' = value(e4m3_ref(w / scale)) * scale.
ref_dequant(Rows, Block) ->
    Values = maps:from_list(e4m3_values()),
    Dq = fun(X) -> C = e4m3_ref(X), V = maps:get(C band 16#7F, Values),
                   case C band 16#80 of 0 -> V; _ -> -V end end,
    [lists:append([begin
                       Amax = lists:max([abs(W) || W <- B]),
                       Scale = case Amax == 0.0 of true -> 1.0; false -> f32(Amax / 448) end,
                       [Dq(W / Scale) * Scale || W <- B]
                   end || B <- blocks(Row, Block)]) || Row <- Rows].

blocks([], _) -> [];
blocks(L, N) when length(L) =< N -> [L];
blocks(L, N) -> {B, R} = lists:split(N, L), [B | blocks(R, N)].

%% bf16 rounding of an f32-representable value by integer arithmetic on its
%% f32 bits: (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 (round to nearest even).
bf16_ref(X) ->
    <<Bits:32>> = <<X:32/float>>,
    Top = (Bits + 16#7FFF + ((Bits bsr 16) band 1)) bsr 16,
    <<Y:32/float>> = <<Top:16, 0:16>>,
    Y.

prepack_dequantize_test() ->
    WL = chunks([X * 3.0 || X <- rnd(6 * 40, 21)], 40),    % [6, 40]
    %% an all-zero block (row 2, elements 16..31) and a lone big value
    WL2 = [case I of
               2 -> lists:sublist(R, 16) ++ lists:duplicate(16, 0.0) ++ lists:nthtail(32, R);
               4 -> [250.0 | tl(R)];
               _ -> R
           end || {I, R} <- lists:zip(lists:seq(0, 5), WL)],
    W = t(WL2),
    [begin
         P = ok(?T:prepack_fp8_weight_blocked(W, Block)),
         ?assertEqual({6, 40, Block}, ?T:packed_info(P)),
         D = ok(?T:dequantize(P)),
         ?assertEqual([6, 40], ?T:shape(D)),
         ?assertEqual(lists:append(ref_dequant(WL2, Block)), ?T:to_flat_list(D)),
         %% every value within half an E4M3 step (relative 2^-4) of the weight,
         %% or within the subnormal step of its block
         [?assert(abs(Q - X) =< abs(X) / 16 + 1.0e-2) || {Q, X} <- lists:zip(?T:to_flat_list(D), lists:append(WL2))]
     end || Block <- [16, 32, 7, 40, 64, 1]],
    %% the zero block dequantises to zeros
    D16 = l(ok(?T:dequantize(ok(?T:prepack_fp8_weight_blocked(W, 16))))),
    ?assertEqual(lists:duplicate(16, 0.0), lists:sublist(nth(2, D16), 17, 16)).

%% Scales exactly representable: w = [[1, -2, 0.5, 4], [0.3, 0, 0, 0]] with
%% block 2: blocks [1,-2] (scale 2/448: 1 -> 224, -2 -> -448, exact),
%% [0.5, 4] (scale 4/448: 0.5 -> 56, 4 -> 448, exact); [0.3, 0] (scale
%% 0.3/448: 0.3 -> 448, exact), [0, 0] (scale 1). With exact E4M3 targets the
%% dequantised weight is w up to the f32 rounding of the scale.
prepack_exact_test() ->
    W = t([[1, -2, 0.5, 4], [0.3, 0, 0, 0]]),
    D = l(ok(?T:dequantize(ok(?T:prepack_fp8_weight_blocked(W, 2))))),
    ?assertClose([[1.0, -2.0, 0.5, 4.0], [0.3, 0.0, 0.0, 0.0]], D, 1.0e-7),
    ?assertEqual([[448 * f32(2 / 448) / 2, -448 * f32(2 / 448), 56 * f32(4 / 448), 448 * f32(4 / 448)],
                  [448 * f32(0.3 / 448), 0.0, 0.0, 0.0]], D).

linear_test() ->
    N = 5, K = 37, M = 3,
    WL = chunks(rnd(N * K, 31), K),
    %% f32-representable inputs, so that bf16_ref (from f32 bits) is exact
    XL = chunks([f32(X * 4.0) || X <- rnd(M * K, 32)], K),
    BL = rnd(N, 33),
    P = ok(?T:prepack_fp8_weight_blocked(t(WL), 16)),
    Wd = l(ok(?T:dequantize(P))),
    Xr = [[bf16_ref(X) || X <- R] || R <- XL],
    %% f64 reference: Xr . Wd^T + b
    Ref = [[lists:sum([A * B || {A, B} <- lists:zip(XR, WR)]) + Bi || {WR, Bi} <- lists:zip(Wd, BL)] || XR <- Xr],
    Out = ok(?T:linear_fp8_w8a16(t(XL), P, t(BL))),
    ?assertEqual([M, N], ?T:shape(Out)),
    ?assertClose(lists:append(Ref), ?T:to_flat_list(Out)),
    NoBias = ok(?T:linear_fp8_w8a16(t(XL), P, none)),
    ?assertClose([X - Bi || R <- Ref, {X, Bi} <- lists:zip(R, BL)], ?T:to_flat_list(NoBias)),
    %% a 1-D input gives a 1-D output
    One = ok(?T:linear_fp8_w8a16(t(hd(XL)), P, t(BL))),
    ?assertEqual([N], ?T:shape(One)),
    ?assertClose(hd(Ref), l(One)),
    %% the activations really are rounded: 1 + 2^-9 is 1.0 in bf16
    P1 = ok(?T:prepack_fp8_weight_blocked(t([[1.0]]), 16)),
    ?assertEqual(l(ok(?T:dequantize(P1))), l(ok(?T:linear_fp8_w8a16(t([[1 + math:pow(2, -9)]]), P1, none)))).

quant_errors_test_() ->
    P = ok(?T:prepack_fp8_weight_blocked(ok(?T:ones([4, 8])), 4)),
    [?_assert(has(err(shape_mismatch, ?T:prepack_fp8_weight_blocked(t([1, 2]), 16)), <<"[2]">>)),
     ?_assert(has(err(shape_mismatch, ?T:prepack_fp8_weight_blocked(ok(?T:zeros([2, 2, 2])), 16)),
                  <<"[2,2,2]">>)),
     ?_assert(has(err(invalid_option, ?T:prepack_fp8_weight_blocked(t([[1]]), 0)), <<"block size">>)),
     ?_assert(has(err(invalid_option, ?T:prepack_fp8_weight_blocked(t([[1]]), 2.0)), <<"block size">>)),
     ?_assertEqual(<<"linear_fp8_w8a16: input [2,5] x weight [4,8]: inner dimensions 5 and 8 differ">>,
                   err(shape_mismatch, ?T:linear_fp8_w8a16(ok(?T:zeros([2, 5])), P, none))),
     ?_assert(has(err(shape_mismatch, ?T:linear_fp8_w8a16(ok(?T:zeros([2, 8])), P, t([1, 2]))),
                  <<"bias [2]">>)),
     ?_assert(has(err(shape_mismatch, ?T:linear_fp8_w8a16(ok(?T:zeros([1, 2, 8])), P, none)),
                  <<"[1,2,8]">>)),
     ?_assert(has(err(invalid_option, ?T:linear_fp8_w8a16(t([[1.0e39, 0, 0, 0, 0, 0, 0, 0]]), P, none)),
                  <<"linear_fp8_w8a16">>))].
