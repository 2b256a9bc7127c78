%% @doc Dense f64 tensors on the BEAM: the tensor API shared by Gleam
%% (`viva_tensor/tensor') and Elixir (`VivaTensor.Tensor'), with no native code.
%%
%% A tensor is `{viva_tensor_tensor, Shape, Data}': Shape a list of
%% non-negative integers (`[]' is a scalar), Data a flat tuple of floats in
%% row-major order (`tuple_size(Data) =:= product(Shape)'). Every value is an
%% f64; f32/bf16/f16 appear only at the binary boundary (`from_binary/3',
%% `to_binary/2'), where values are widened exactly and narrowed with
%% round-to-nearest-even.
%%
%% Errors: `{error, {shape_mismatch, Msg}}' (the op and both shapes) or
%% `{error, {invalid_option, Msg}}' (a bad axis, dtype, shape, binary size,
%% slice bound, or a result that is not a finite f64: the BEAM has no
%% infinities or NaNs, so an overflow, a division by zero or `sqrt' of a
%% negative number is reported instead of producing one). Every public
%% function returns `{ok, _}' or `{error, _}' except the getters `shape/1',
%% `size/1', `to_list/1', `to_flat_list/1', `is_tensor/1', `packed_info/1',
%% `is_packed/1' and the scalar codecs `e4m3_encode/1', `e4m3_decode/1'. Terms of the
%% wrong type (not a tensor, a shape that is not a list) raise
%% `function_clause'/`badarg', as in any Erlang API.
%%
%% == Representation (measured) ==
%%
%% Candidates: a flat list of floats, a flat tuple of floats, and an f64
%% binary, each with the shape beside it. In every case the inner loops run
%% on float lists (a float read out of a binary is boxed on every read, and
%% `element/2' in a triple loop pays an index computation per multiply-add),
%% so what differs is the cost of getting operands into lists and results
%% back, and what the storage makes cheap besides.
%%
%% Measured with OTP 25 (JIT) on this project's dev VM: 2 shared vCPUs with a
%% load average of 3-6 from other builds during every run, so take +-30% (the
%% minimum is the steadiest figure). Each timing in a fresh process (default
%% heap unless said), reps interleaved round robin across variants; ms,
%% min / median.
%% ```
%% Exploration, 11 reps (33 for add):                   default heap   4M-word heap
%% matmul [256,256] x [256,256]
%%   list:  rows . list-transposed columns, dot x4         239 / 284      274 / 290
%%   list:  axpy with the rows of B                        410 / 621      972 / 1833
%%   tuple: element/2 triple loop                          542 / 700      818 / 1061
%%   tuple: tuple_to_list, as list, list_to_tuple          249 / 277      240 / 256
%%   f64 binary: row binaries . B^T lists, dot x8          745 / 913      522 / 615
%%   f64 binary: row binaries . B^T binaries, dot x4       830 / 891     1207 / 1426
%%   f64 binary: to lists, as list, back to binary         272 / 311      231 / 299
%% add, 1e5 elements
%%   list:  body-recursive zip                             8.2 / 8.8      5.0 / 5.2
%%   tuple: element/2 loop, list_to_tuple                  8.0 / 9.2      2.0 / 2.1
%%   tuple: tuple_to_list, zip, list_to_tuple             14.2 / 15.1     4.8 / 5.2
%%   f64 binary: match both, append                        8.6 / 9.4     11.9 / 12.9
%%   f64 binary: to lists, zip, back to binary            37.4 / 40.1     7.8 / 9.1
%%
%% Final: the best of each representation (this module for the tuple), two
%% runs (11 and 15 reps; 3x that for add and transpose), default heap:
%% matmul [256,256] x [256,256]                          run 1          run 2
%%   list:  rows . list-transposed columns, dot x4         274 / 433      722 / 1079
%%   tuple: row + strided column gathers (matmul/2)        206 / 312      241 / 436
%%   f64 binary: row lists . strided column matches        284 / 470      517 / 661
%% add, 1e5 elements
%%   list:  body-recursive zip                            10.6 / 15.0    12.4 / 15.1
%%   tuple: element/2 loop (add/2)                        13.0 / 17.9    15.8 / 19.1
%%   f64 binary: match both, append                        9.6 / 11.8     9.8 / 18.1
%% transpose [256,256]
%%   list:  transpose of the row lists                     4.5 / 6.4      5.3 / 6.8
%%   tuple: strided gather (transpose/1)                   0.6 / 0.9      0.8 / 0.9
%%   f64 binary: strided matches                           4.7 / 7.7      7.3 / 7.9
%% '''
%%
%% Chosen: the flat tuple. Matmul is fastest with it (a column of B is a
%% strided read, so there is no transpose pass), elementwise ops are within
%% the noise of the other two, and it gives O(1) reads that allocate
%% nothing, so one strided gather (`gather/4') serves matmul columns,
%% transpose (6-8x faster than with lists or binaries), slice, broadcasting,
%% reductions and softmax along any axis. An f64 binary is 3x smaller (8 vs
%% 24 bytes an element) and free to send to another process, but strided
%% access boxes a float per read. The price of the tuple: at most 16777215
%% elements (the BEAM's largest tuple), reported as `invalid_option'.
-module(viva_tensor_tensor).

-compile({no_auto_import, [size/1, max/2, min/2]}).

-export([from_list/1, from_list/2, from_binary/3, zeros/1, ones/1, full/2,
         to_list/1, to_flat_list/1, to_binary/2, shape/1, size/1, is_tensor/1,
         reshape/2, transpose/1, transpose/2, slice/3, concat/2,
         add/2, sub/2, mul/2, 'div'/2, maximum/2, minimum/2, scale/2,
         neg/1, exp/1, sqrt/1, tanh/1, sigmoid/1, silu/1, relu/1,
         matmul/2, sum/1, sum/2, mean/2, max/2, min/2, argmax/2,
         softmax/2, rmsnorm/3,
         prepack_fp8_weight_blocked/2, linear_fp8_w8a16/3, dequantize/1,
         packed_info/1, is_packed/1,
         e4m3_encode/1, e4m3_decode/1]).

-export_type([tensor/0, packed/0, dtype/0, error/0]).

-define(MAX_ELEMENTS, 16777215).
-define(E4M3_MAX, 448.0).

-opaque tensor() :: {viva_tensor_tensor, [non_neg_integer()], tuple()}.
%% FP8 E4M3FN weight [N, K], one f32 scale per block of BlockSize consecutive
%% elements of a row (the last block of a row may be shorter):
%% `{viva_tensor_fp8_packed, N, K, BlockSize, Codes, Scales}', Codes N*K bytes
%% row-major, Scales N*ceil(K/BlockSize) little-endian f32.
-opaque packed() :: {viva_tensor_fp8_packed, non_neg_integer(), non_neg_integer(),
                     pos_integer(), binary(), binary()}.
-type dtype() :: f32 | bf16 | f16 | f64.
-type error() :: {error, {shape_mismatch | invalid_option, binary()}}.
-type result(T) :: {ok, T} | error().
-type nested() :: float() | integer() | [nested()].

%% ============================================================================
%% Constructors
%% ============================================================================

%% @doc A tensor from nested lists of numbers (integers become floats); the
%% nesting gives the shape: `from_list([[1, 2, 3], [4, 5, 6]])' is `[2,3]', a
%% bare number is a scalar (shape `[]'), `[]' is shape `[0]'.
-spec from_list(nested()) -> result(tensor()).
from_list(X) when is_number(X) ->
    with_arith(from_list, fun() -> {ok, mk([], {num(X)})} end);
from_list(L) when is_list(L) ->
    Shape = nested_shape(L),
    with_arith(from_list, fun() ->
        try flatten(L, Shape, [], []) of
            Flat -> new(from_list, Shape, Flat)
        catch
            throw:{viva_tensor_tensor, Error} -> Error
        end
    end).

%% @doc A tensor of the given shape from a flat list of numbers (row-major).
-spec from_list([number()], [non_neg_integer()]) -> result(tensor()).
from_list(Flat, Shape) when is_list(Flat) ->
    maybe_shape(from_list, Shape, fun() ->
        N = prod(Shape),
        case length(Flat) of
            N ->
                case lists:all(fun erlang:is_number/1, Flat) of
                    true -> with_arith(from_list, fun() -> new(from_list, Shape, [num(X) || X <- Flat]) end);
                    false -> err(invalid_option, "from_list: every value must be a number", [])
                end;
            Len ->
                err(shape_mismatch, "from_list: ~b values for shape ~s (~b elements)",
                    [Len, fmt_shape(Shape), N])
        end
    end).

%% @doc A tensor from little-endian binary data: `f32', `bf16', `f16' (and
%% `f64'). The binary must hold exactly `product(Shape)' values; infinities
%% and NaNs are refused (the BEAM has none).
-spec from_binary(binary(), [non_neg_integer()], dtype()) -> result(tensor()).
from_binary(Bin, Shape, Dtype) when is_binary(Bin) ->
    case dtype_width(Dtype) of
        error ->
            err(invalid_option, "from_binary: unknown dtype ~tp (expected f32, bf16, f16 or f64)", [Dtype]);
        Width ->
            maybe_shape(from_binary, Shape, fun() ->
                N = prod(Shape),
                case byte_size(Bin) of
                    Bytes when Bytes =:= N * Width ->
                        Values = decode_binary(Dtype, Bin),
                        case length(Values) of
                            N -> new(from_binary, Shape, Values);
                            I -> err(invalid_option, "from_binary: value ~b of the ~s data is not finite "
                                     "(infinities and NaNs cannot be represented)", [I, Dtype])
                        end;
                    Bytes ->
                        err(invalid_option, "from_binary: ~b bytes for shape ~s of ~s (~b bytes expected)",
                            [Bytes, fmt_shape(Shape), Dtype, N * Width])
                end
            end)
    end.

%% @doc A tensor of zeros.
-spec zeros([non_neg_integer()]) -> result(tensor()).
zeros(Shape) -> full(Shape, 0.0).

%% @doc A tensor of ones.
-spec ones([non_neg_integer()]) -> result(tensor()).
ones(Shape) -> full(Shape, 1.0).

%% @doc A tensor whose every element is `Value'.
-spec full([non_neg_integer()], number()) -> result(tensor()).
full(Shape, Value) when is_number(Value) ->
    maybe_shape(full, Shape, fun() ->
        with_arith(full, fun() -> {ok, mk(Shape, erlang:make_tuple(prod(Shape), num(Value)))} end)
    end).

%% ============================================================================
%% Getters and conversions
%% ============================================================================

-spec shape(tensor()) -> [non_neg_integer()].
shape({viva_tensor_tensor, Shape, _}) -> Shape.

%% @doc The number of elements.
-spec size(tensor()) -> non_neg_integer().
size({viva_tensor_tensor, _, Data}) -> tuple_size(Data).

-spec is_tensor(term()) -> boolean().
is_tensor({viva_tensor_tensor, Shape, Data}) -> is_list(Shape) andalso is_tuple(Data);
is_tensor(_) -> false.

%% @doc The elements as nested lists (a scalar as a bare float).
-spec to_list(tensor()) -> float() | [term()].
to_list({viva_tensor_tensor, [], {X}}) -> X;
to_list({viva_tensor_tensor, Shape, Data}) -> nest(tuple_to_list(Data), Shape).

%% @doc The elements as one flat list, row-major.
-spec to_flat_list(tensor()) -> [float()].
to_flat_list({viva_tensor_tensor, _, Data}) -> tuple_to_list(Data).

%% @doc The elements as little-endian binary data of the given dtype, rounded
%% to nearest even; values beyond the dtype's range become its infinity.
-spec to_binary(tensor(), dtype()) -> result(binary()).
to_binary({viva_tensor_tensor, _, Data}, Dtype) ->
    L = tuple_to_list(Data),
    case Dtype of
        f64 -> {ok, << <<X:64/float-little>> || X <- L >>};
        f32 -> {ok, << <<X:32/float-little>> || X <- L >>};   % C (float) cast: RNE, overflow -> inf
        bf16 -> {ok, << <<(ieee_bits(X, 8, 7, 127)):16/little>> || X <- L >>};
        f16 -> {ok, << <<(ieee_bits(X, 5, 10, 15)):16/little>> || X <- L >>};
        _ -> err(invalid_option, "to_binary: unknown dtype ~tp (expected f32, bf16, f16 or f64)", [Dtype])
    end.

%% ============================================================================
%% Shape operations
%% ============================================================================

%% @doc The same elements under another shape; one dimension may be -1
%% (inferred).
-spec reshape(tensor(), [integer()]) -> result(tensor()).
reshape({viva_tensor_tensor, Old, Data}, New) when is_list(New) ->
    N = tuple_size(Data),
    case {[D || D <- New, not is_integer(D) orelse D < -1], [D || D <- New, D =:= -1]} of
        {[], []} ->
            case prod(New) of
                N -> {ok, mk(New, Data)};
                M -> err(shape_mismatch, "reshape: ~s (~b elements) to ~s (~b elements)",
                         [fmt_shape(Old), N, fmt_shape(New), M])
            end;
        {[], [-1]} ->
            Known = prod([D || D <- New, D =/= -1]),
            if
                Known > 0, N rem Known =:= 0 ->
                    {ok, mk([case D of -1 -> N div Known; _ -> D end || D <- New], Data)};
                Known =:= 0 ->
                    err(invalid_option, "reshape: ~s to ~s: -1 is ambiguous beside a 0 dimension",
                        [fmt_shape(Old), fmt_shape(New)]);
                true ->
                    err(shape_mismatch, "reshape: ~s (~b elements) to ~s: ~b is not a multiple of ~b",
                        [fmt_shape(Old), N, fmt_shape(New), N, Known])
            end;
        {[], _} ->
            err(invalid_option, "reshape: ~s: at most one dimension may be -1", [fmt_shape(New)]);
        {[Bad | _], _} ->
            err(invalid_option, "reshape: ~tp: dimensions must be integers >= 0 (or one -1), got ~tp",
                [New, Bad])
    end.

%% @doc The transpose: the axes in reverse order (for a matrix, rows become
%% columns).
-spec transpose(tensor()) -> result(tensor()).
transpose({viva_tensor_tensor, Shape, _} = T) ->
    transpose(T, lists:reverse(lists:seq(0, length(Shape) - 1))).

%% @doc The axes permuted: axis `i' of the result is axis `lists:nth(i + 1,
%% Axes)' of `T' (negative axes count from the end).
-spec transpose(tensor(), [integer()]) -> result(tensor()).
transpose({viva_tensor_tensor, Shape, Data}, Axes) when is_list(Axes) ->
    R = length(Shape),
    Norm = [norm_axis(A, R) || A <- Axes],
    case lists:sort(Norm) =:= lists:seq(0, R - 1) of
        false ->
            err(invalid_option, "transpose: axes ~tp are not a permutation of the ~b axes of ~s",
                [Axes, R, fmt_shape(Shape)]);
        true ->
            Strides = strides(Shape),
            NewShape = [lists:nth(A + 1, Shape) || A <- Norm],
            NewStrides = [lists:nth(A + 1, Strides) || A <- Norm],
            case Norm =:= lists:seq(0, R - 1) of
                true -> {ok, mk(Shape, Data)};
                false -> {ok, mk(NewShape, list_to_tuple(gather(Data, NewShape, NewStrides, 0)))}
            end
    end.

%% @doc The block starting at index `Starts' with extent `Lengths' (one of
%% each per axis).
-spec slice(tensor(), [non_neg_integer()], [non_neg_integer()]) -> result(tensor()).
slice({viva_tensor_tensor, Shape, Data}, Starts, Lengths) when is_list(Starts), is_list(Lengths) ->
    R = length(Shape),
    case length(Starts) =:= R andalso length(Lengths) =:= R of
        false ->
            err(invalid_option, "slice: ~s needs ~b starts and ~b lengths, got ~tp and ~tp",
                [fmt_shape(Shape), R, R, Starts, Lengths]);
        true ->
            Bad = [{I, S, L, D} || {I, {S, L, D}} <- lists:zip(lists:seq(0, R - 1),
                                                                lists:zip3(Starts, Lengths, Shape)),
                                   not (is_integer(S) andalso is_integer(L) andalso S >= 0
                                        andalso L >= 0 andalso S + L =< D)],
            case Bad of
                [] ->
                    Strides = strides(Shape),
                    Base = lists:sum([S * St || {S, St} <- lists:zip(Starts, Strides)]),
                    {ok, mk(Lengths, list_to_tuple(gather(Data, Lengths, Strides, Base)))};
                [{I, S, L, D} | _] ->
                    err(invalid_option, "slice: ~s: axis ~b: start ~tp length ~tp is outside 0..~b",
                        [fmt_shape(Shape), I, S, L, D])
            end
    end.

%% @doc The tensors joined along `Axis'; the other dimensions must agree.
-spec concat([tensor()], integer()) -> result(tensor()).
concat([], _Axis) ->
    err(invalid_option, "concat: no tensors", []);
concat([{viva_tensor_tensor, S0, _} | _] = Ts, Axis) when is_integer(Axis) ->
    R = length(S0),
    Shapes = [S || {viva_tensor_tensor, S, _} <- Ts],
    case norm_axis(Axis, R) of
        error ->
            err(invalid_option, "concat: axis ~b is out of range for ~s", [Axis, fmt_shape(S0)]);
        A ->
            Others = fun(S) when length(S) =:= R -> drop_nth(A, S);
                         (_) -> different_rank
                     end,
            case [S || S <- Shapes, Others(S) =/= Others(S0)] of
                [Bad | _] ->
                    err(shape_mismatch, "concat: ~s and ~s differ outside axis ~b",
                        [fmt_shape(S0), fmt_shape(Bad), A]);
                [] ->
                    {Pre, _} = lists:split(A, S0),
                    Outer = prod(Pre),
                    Inner = prod(lists:nthtail(A + 1, S0)),
                    Parts = [{Data, lists:nth(A + 1, S) * Inner} || {viva_tensor_tensor, S, Data} <- Ts],
                    Total = lists:sum([lists:nth(A + 1, S) || S <- Shapes]),
                    Out = setnth(A, S0, Total),
                    with_size(concat, Out, fun() ->
                        {ok, mk(Out, list_to_tuple(concat_rows(Outer - 1, Parts, [])))}
                    end)
            end
    end.

%% Outer index O from the last down: for each part (in reverse), its chunk O.
concat_rows(-1, _Parts, Acc) -> Acc;
concat_rows(O, Parts, Acc) ->
    Acc2 = lists:foldl(fun({Data, Chunk}, A) -> range_to_list(Data, O * Chunk, Chunk, A) end,
                       Acc, lists:reverse(Parts)),
    concat_rows(O - 1, Parts, Acc2).

%% ============================================================================
%% Elementwise
%% ============================================================================

-spec add(tensor(), tensor()) -> result(tensor()).
add(A, B) -> binary_op(add, A, B).
-spec sub(tensor(), tensor()) -> result(tensor()).
sub(A, B) -> binary_op(sub, A, B).
-spec mul(tensor(), tensor()) -> result(tensor()).
mul(A, B) -> binary_op(mul, A, B).
-spec 'div'(tensor(), tensor()) -> result(tensor()).
'div'(A, B) -> binary_op('div', A, B).
-spec maximum(tensor(), tensor()) -> result(tensor()).
maximum(A, B) -> binary_op(maximum, A, B).
-spec minimum(tensor(), tensor()) -> result(tensor()).
minimum(A, B) -> binary_op(minimum, A, B).

%% @doc Every element times `Scalar'.
-spec scale(tensor(), number()) -> result(tensor()).
scale({viva_tensor_tensor, Shape, Data}, S) when is_number(S) ->
    with_arith(scale, fun() ->
        F = num(S),
        {ok, mk(Shape, list_to_tuple(scale_loop(Data, F, tuple_size(Data), [])))}
    end).

-spec neg(tensor()) -> result(tensor()).
neg(T) -> unary(neg, fun(X) -> -X end, T).
-spec exp(tensor()) -> result(tensor()).
exp(T) -> unary(exp, fun math:exp/1, T).
-spec sqrt(tensor()) -> result(tensor()).
sqrt(T) -> unary(sqrt, fun math:sqrt/1, T).
-spec tanh(tensor()) -> result(tensor()).
tanh(T) -> unary(tanh, fun math:tanh/1, T).
%% @doc 1 / (1 + e^-x), computed without overflow for any x.
-spec sigmoid(tensor()) -> result(tensor()).
sigmoid(T) -> unary(sigmoid, fun sigmoid_f/1, T).
%% @doc x * sigmoid(x) (SiLU, "swish").
-spec silu(tensor()) -> result(tensor()).
silu(T) -> unary(silu, fun(X) -> X * sigmoid_f(X) end, T).
-spec relu(tensor()) -> result(tensor()).
relu(T) -> unary(relu, fun(X) when X > 0.0 -> X; (_) -> 0.0 end, T).

sigmoid_f(X) when X >= 0.0 -> 1.0 / (1.0 + math:exp(-X));
sigmoid_f(X) -> E = math:exp(X), E / (1.0 + E).

unary(Op, F, {viva_tensor_tensor, Shape, Data}) ->
    with_arith(Op, fun() -> {ok, mk(Shape, list_to_tuple(map_loop(Data, F, tuple_size(Data), [])))} end).

map_loop(_, _, 0, Acc) -> Acc;
map_loop(D, F, I, Acc) -> map_loop(D, F, I - 1, [F(element(I, D)) | Acc]).

scale_loop(_, _, 0, Acc) -> Acc;
scale_loop(D, S, I, Acc) -> scale_loop(D, S, I - 1, [element(I, D) * S | Acc]).

%% NumPy broadcasting: shapes aligned on the right; each pair of dimensions
%% equal, or one of them 1.
binary_op(Op, {viva_tensor_tensor, SA, DA}, {viva_tensor_tensor, SB, DB}) ->
    case broadcast_shapes(SA, SB) of
        {ok, Out} ->
            with_size(Op, Out, fun() ->
                with_arith(Op, fun() ->
                    XA = expand(SA, DA, Out),
                    XB = expand(SB, DB, Out),
                    {ok, mk(Out, list_to_tuple(ew(Op, XA, XB, tuple_size(XA), [])))}
                end)
            end);
        {error, {DimA, DimB}} ->
            err(shape_mismatch, "~s: ~s and ~s do not broadcast (dimension ~b vs ~b)",
                [Op, fmt_shape(SA), fmt_shape(SB), DimA, DimB])
    end.

%% Data of shape S as a tuple of the broadcast shape Out.
expand(S, D, S) -> D;
expand(S, D, Out) ->
    Pad = length(Out) - length(S),
    S1 = lists:duplicate(Pad, 1) ++ S,
    St = [case Dim of 1 -> 0; _ -> Stride end
          || {Dim, Stride} <- lists:zip(S1, lists:duplicate(Pad, 0) ++ strides(S))],
    list_to_tuple(gather(D, Out, St, 0)).

ew(add, A, B, I, Acc) -> ew_add(A, B, I, Acc);
ew(sub, A, B, I, Acc) -> ew_sub(A, B, I, Acc);
ew(mul, A, B, I, Acc) -> ew_mul(A, B, I, Acc);
ew('div', A, B, I, Acc) -> ew_div(A, B, I, Acc);
ew(maximum, A, B, I, Acc) -> ew_max(A, B, I, Acc);
ew(minimum, A, B, I, Acc) -> ew_min(A, B, I, Acc).

ew_add(_, _, 0, Acc) -> Acc;
ew_add(A, B, I, Acc) -> ew_add(A, B, I - 1, [element(I, A) + element(I, B) | Acc]).
ew_sub(_, _, 0, Acc) -> Acc;
ew_sub(A, B, I, Acc) -> ew_sub(A, B, I - 1, [element(I, A) - element(I, B) | Acc]).
ew_mul(_, _, 0, Acc) -> Acc;
ew_mul(A, B, I, Acc) -> ew_mul(A, B, I - 1, [element(I, A) * element(I, B) | Acc]).
ew_div(_, _, 0, Acc) -> Acc;
ew_div(A, B, I, Acc) -> ew_div(A, B, I - 1, [element(I, A) / element(I, B) | Acc]).
ew_max(_, _, 0, Acc) -> Acc;
ew_max(A, B, I, Acc) ->
    X = element(I, A), Y = element(I, B),
    ew_max(A, B, I - 1, [if X >= Y -> X; true -> Y end | Acc]).
ew_min(_, _, 0, Acc) -> Acc;
ew_min(A, B, I, Acc) ->
    X = element(I, A), Y = element(I, B),
    ew_min(A, B, I - 1, [if X =< Y -> X; true -> Y end | Acc]).

broadcast_shapes(SA, SB) ->
    N = erlang:max(length(SA), length(SB)),
    PA = lists:duplicate(N - length(SA), 1) ++ SA,
    PB = lists:duplicate(N - length(SB), 1) ++ SB,
    broadcast_dims(PA, PB, []).

broadcast_dims([], [], Acc) -> {ok, lists:reverse(Acc)};
broadcast_dims([D | As], [D | Bs], Acc) -> broadcast_dims(As, Bs, [D | Acc]);
broadcast_dims([1 | As], [D | Bs], Acc) -> broadcast_dims(As, Bs, [D | Acc]);
broadcast_dims([D | As], [1 | Bs], Acc) -> broadcast_dims(As, Bs, [D | Acc]);
broadcast_dims([DA | _], [DB | _], _) -> {error, {DA, DB}}.

%% ============================================================================
%% Matmul
%% ============================================================================

%% @doc The matrix product, with NumPy's `matmul' rules: 2-D x 2-D is
%% `[M,K] x [K,N] -> [M,N]'; a 1-D left operand is a row vector and a 1-D
%% right operand a column vector, whose added dimension is removed again
%% (`[K] x [K] -> []', `[K] x [K,N] -> [N]', `[M,K] x [K] -> [M]'); leading
%% dimensions of 3-D (and higher) operands are batch dimensions, broadcast
%% (`[B,M,K] x [B,K,N] -> [B,M,N]', `[B,M,K] x [K,N] -> [B,M,N]'). Sums run
%% left to right over K in f64.
-spec matmul(tensor(), tensor()) -> result(tensor()).
matmul({viva_tensor_tensor, SA, _}, {viva_tensor_tensor, SB, _}) when SA =:= []; SB =:= [] ->
    err(shape_mismatch, "matmul: ~s x ~s: operands need at least one dimension",
        [fmt_shape(SA), fmt_shape(SB)]);
matmul({viva_tensor_tensor, SA, DA}, {viva_tensor_tensor, SB, DB}) ->
    SA2 = case SA of [KA] -> [1, KA]; _ -> SA end,
    SB2 = case SB of [KB] -> [KB, 1]; _ -> SB end,
    {BatchA, [M, K1]} = lists:split(length(SA2) - 2, SA2),
    {BatchB, [K2, N]} = lists:split(length(SB2) - 2, SB2),
    if
        K1 =/= K2 ->
            err(shape_mismatch, "matmul: ~s x ~s: inner dimensions ~b and ~b differ",
                [fmt_shape(SA), fmt_shape(SB), K1, K2]);
        true ->
            case broadcast_shapes(BatchA, BatchB) of
                {error, _} ->
                    err(shape_mismatch, "matmul: ~s x ~s: batch dimensions ~s and ~s do not broadcast",
                        [fmt_shape(SA), fmt_shape(SB), fmt_shape(BatchA), fmt_shape(BatchB)]);
                {ok, Batch} ->
                    Out0 = Batch ++ [M, N],
                    Out = case {SA, SB} of
                              {[_], [_]} -> Batch;
                              {[_], _} -> Batch ++ [N];
                              {_, [_]} -> Batch ++ [M];
                              _ -> Out0
                          end,
                    with_size(matmul, Out, fun() ->
                        with_arith(matmul, fun() ->
                            OffA = batch_offsets(BatchA, Batch, M * K1),
                            OffB = batch_offsets(BatchB, Batch, K1 * N),
                            Blocks = [mm_block(DA, OA, DB, OB, M, K1, N) || {OA, OB} <- lists:zip(OffA, OffB)],
                            {ok, mk(Out, list_to_tuple(lists:append(Blocks)))}
                        end)
                    end)
            end
    end.

%% One [M,K] x [K,N] product: rows of A and columns of B gathered as lists
%% (the column gather is a strided read: no transpose pass), then dot
%% products, four multiply-adds a step.
mm_block(DA, OA, DB, OB, M, K, N) ->
    Cols = [gather(DB, [K], [N], OB + J) || J <- lists:seq(0, N - 1)],
    lists:append([begin
                      Row = range_to_list(DA, OA + I * K, K, []),
                      [dot(Row, C, 0.0) || C <- Cols]
                  end || I <- lists:seq(0, M - 1)]).

%% Flat offsets of each batch index of Batch (row-major) in an operand of batch
%% shape Own (right-aligned, broadcast), each matrix MatSize elements.
batch_offsets(Own, Batch, MatSize) ->
    Pad = length(Batch) - length(Own),
    Own1 = lists:duplicate(Pad, 1) ++ Own,
    St = [case D of 1 -> 0; _ -> S * MatSize end
          || {D, S} <- lists:zip(Own1, strides(Own1))],
    offsets(Batch, St, 0).

offsets([], [], Base) -> [Base];
offsets([D | Ds], [S | Ss], Base) ->
    lists:append([offsets(Ds, Ss, Base + I * S) || I <- lists:seq(0, D - 1)]).

dot([A0, A1, A2, A3 | As], [B0, B1, B2, B3 | Bs], Acc)
  when is_float(A0), is_float(A1), is_float(A2), is_float(A3),
       is_float(B0), is_float(B1), is_float(B2), is_float(B3), is_float(Acc) ->
    dot(As, Bs, Acc + A0 * B0 + A1 * B1 + A2 * B2 + A3 * B3);
dot([A | As], [B | Bs], Acc) ->
    dot(As, Bs, Acc + A * B);
dot([], [], Acc) ->
    Acc.

%% ============================================================================
%% Reductions, softmax, rmsnorm
%% ============================================================================

%% @doc The sum of every element (left to right).
-spec sum(tensor()) -> {ok, float()} | error().
sum({viva_tensor_tensor, _, Data}) ->
    with_arith(sum, fun() -> {ok, sum_list(tuple_to_list(Data), 0.0)} end).

%% @doc Sums along `Axis' (negative counts from the end); the axis is removed.
-spec sum(tensor(), integer()) -> result(tensor()).
sum(T, Axis) -> reduce(sum, T, Axis, fun(L) -> sum_list(L, 0.0) end, true).

%% @doc The mean along `Axis'.
-spec mean(tensor(), integer()) -> result(tensor()).
mean(T, Axis) -> reduce(mean, T, Axis, fun(L) -> sum_list(L, 0.0) / length(L) end, false).

-spec max(tensor(), integer()) -> result(tensor()).
max(T, Axis) -> reduce(max, T, Axis, fun([X | Xs]) -> lists:foldl(fun erlang:max/2, X, Xs) end, false).

-spec min(tensor(), integer()) -> result(tensor()).
min(T, Axis) -> reduce(min, T, Axis, fun([X | Xs]) -> lists:foldl(fun erlang:min/2, X, Xs) end, false).

%% @doc The index of the largest element along `Axis' (the first on ties), as
%% floats (tensors hold floats only).
-spec argmax(tensor(), integer()) -> result(tensor()).
argmax(T, Axis) -> reduce(argmax, T, Axis, fun([X | Xs]) -> float(argmax_loop(Xs, 1, X, 0)) end, false).

argmax_loop([], _, _, Best) -> Best;
argmax_loop([X | Xs], I, M, _Best) when X > M -> argmax_loop(Xs, I + 1, X, I);
argmax_loop([_ | Xs], I, M, Best) -> argmax_loop(Xs, I + 1, M, Best).

sum_list([X | Xs], Acc) -> sum_list(Xs, Acc + X);
sum_list([], Acc) -> Acc.

%% F gets the D values along the axis of each position (outer, inner).
reduce(Op, {viva_tensor_tensor, Shape, Data}, Axis, F, EmptyOk) when is_integer(Axis) ->
    case norm_axis(Axis, length(Shape)) of
        error ->
            err(invalid_option, "~s: axis ~b is out of range for ~s", [Op, Axis, fmt_shape(Shape)]);
        A ->
            case lists:nth(A + 1, Shape) of
                0 when not EmptyOk ->
                    err(invalid_option, "~s: axis ~b of ~s is empty", [Op, A, fmt_shape(Shape)]);
                _ ->
                    Out = drop_nth(A, Shape),
                    with_arith(Op, fun() ->
                        Groups = axis_groups(Data, Shape, A),
                        {ok, mk(Out, list_to_tuple([F(G) || G <- Groups]))}
                    end)
            end
    end.

%% The values along axis A for every other index, in row-major order of the
%% remaining axes: a list of lists of length D.
axis_groups(Data, Shape, A) ->
    {Pre, [D | Post]} = lists:split(A, Shape),
    Outer = prod(Pre),
    Inner = prod(Post),
    Flat = case Inner of
               1 -> tuple_to_list(Data);
               _ -> gather(Data, [Outer, Inner, D], [D * Inner, 1, Inner], 0)
           end,
    chunk(Flat, D, Outer * Inner).

chunk(_, _, 0) -> [];
chunk(L, 0, Count) -> lists:duplicate(Count, []) ++ chunk(L, 0, 0);
chunk(L, D, Count) ->
    {C, Rest} = lists:split(D, L),
    [C | chunk(Rest, D, Count - 1)].

%% @doc Softmax along `Axis': `exp(x - max) / sum(exp(x - max))', so no
%% overflow whatever the values.
-spec softmax(tensor(), integer()) -> result(tensor()).
softmax({viva_tensor_tensor, Shape, Data}, Axis) when is_integer(Axis) ->
    case norm_axis(Axis, length(Shape)) of
        error ->
            err(invalid_option, "softmax: axis ~b is out of range for ~s", [Axis, fmt_shape(Shape)]);
        A ->
            with_arith(softmax, fun() ->
                {Pre, [D | Post]} = lists:split(A, Shape),
                Outer = prod(Pre),
                Inner = prod(Post),
                Rows = [softmax_row(G) || G <- axis_groups(Data, Shape, A)],
                Flat = lists:append(Rows),
                case Inner of
                    1 ->
                        {ok, mk(Shape, list_to_tuple(Flat))};
                    _ ->
                        %% Flat is laid out [Outer, Inner, D]: back to [Outer, D, Inner].
                        Tmp = list_to_tuple(Flat),
                        {ok, mk(Shape, list_to_tuple(gather(Tmp, [Outer, D, Inner], [Inner * D, 1, D], 0)))}
                end
            end)
    end.

softmax_row([]) -> [];
softmax_row([X | Xs] = Row) ->
    M = lists:foldl(fun erlang:max/2, X, Xs),
    E = [math:exp(V - M) || V <- Row],
    Z = sum_list(E, 0.0),
    [V / Z || V <- E].

%% @doc RMS normalisation over the last axis, as HF Llama's `LlamaRMSNorm':
%% `y = w * (x / sqrt(mean(x^2) + Eps))', `Weight' of shape `[D]' for a last
%% dimension D.
-spec rmsnorm(tensor(), tensor(), number()) -> result(tensor()).
rmsnorm({viva_tensor_tensor, S, _}, _, _) when S =:= [] ->
    err(shape_mismatch, "rmsnorm: x [] has no last axis", []);
rmsnorm({viva_tensor_tensor, S, Data}, {viva_tensor_tensor, SW, W}, Eps) ->
    D = lists:last(S),
    if
        SW =/= [D] ->
            err(shape_mismatch, "rmsnorm: x ~s, weight ~s: the weight must be [~b]",
                [fmt_shape(S), fmt_shape(SW), D]);
        not is_number(Eps); Eps < 0 ->
            err(invalid_option, "rmsnorm: eps must be a number >= 0, got ~tp", [Eps]);
        D =:= 0 ->
            {ok, mk(S, Data)};
        true ->
            with_arith(rmsnorm, fun() ->
                WL = tuple_to_list(W),
                E = num(Eps),
                Rows = chunk(tuple_to_list(Data), D, tuple_size(Data) div D),
                {ok, mk(S, list_to_tuple(lists:append([rms_row(R, WL, D, E) || R <- Rows])))}
            end)
    end.

rms_row(Row, W, D, Eps) ->
    Ms = sum_list([X * X || X <- Row], 0.0) / D,
    R = 1.0 / math:sqrt(Ms + Eps),
    [Wi * (X * R) || {X, Wi} <- lists:zip(Row, W)].

%% ============================================================================
%% FP8 E4M3FN weight-only quantisation (W8A16)
%% ============================================================================

%% @doc Quantises a weight `[N, K]' (rows = output features) to E4M3FN with
%% one scale per row and per block of `BlockSize' consecutive K elements (the
%% last block of a row is shorter when BlockSize does not divide K):
%% `scale = max|w| / 448' rounded to f32 (1.0 for an all-zero block), then
%% `q = e4m3(w / scale)' (round to nearest even, saturating at +-448).
-spec prepack_fp8_weight_blocked(tensor(), pos_integer()) -> result(packed()).
prepack_fp8_weight_blocked({viva_tensor_tensor, S, _}, _) when length(S) =/= 2 ->
    err(shape_mismatch, "prepack_fp8_weight_blocked: the weight must be 2-D [N, K], got ~s", [fmt_shape(S)]);
prepack_fp8_weight_blocked(_, Block) when not is_integer(Block); Block < 1 ->
    err(invalid_option, "prepack_fp8_weight_blocked: block size must be an integer >= 1, got ~tp", [Block]);
prepack_fp8_weight_blocked({viva_tensor_tensor, [N, K], Data}, Block) ->
    with_arith(prepack_fp8_weight_blocked, fun() ->
        Rows = chunk(tuple_to_list(Data), K, N),
        {Codes, Scales} =
            lists:unzip([lists:unzip([quant_block(B) || B <- blocks(Row, Block)]) || Row <- Rows]),
        {ok, {viva_tensor_fp8_packed, N, K, Block, iolist_to_binary(Codes),
              << <<Sc:32/float-little>> || Sc <- lists:append(Scales) >>}}
    end).

blocks([], _) -> [];
blocks(Row, Block) when length(Row) =< Block -> [Row];
blocks(Row, Block) ->
    {B, Rest} = lists:split(Block, Row),
    [B | blocks(Rest, Block)].

%% An all-zero block gets scale 1.0 (codes 0); so does a block whose
%% max|w| / 448 underflows f32 to 0 (max|w| < ~6e-43): its codes are 0 too.
quant_block(Vals) ->
    Amax = lists:foldl(fun(V, M) -> erlang:max(abs(V), M) end, 0.0, Vals),
    Scale = case f32(Amax / ?E4M3_MAX) of
                S when S == 0.0 -> 1.0;
                S -> S
            end,
    {<< <<(e4m3_encode(V / Scale))>> || V <- Vals >>, Scale}.

%% X rounded to f32 (nearest even); beyond the f32 range: badarith.
f32(X) ->
    case <<X:32/float>> of
        <<Y:32/float>> -> Y;
        _ -> erlang:error(badarith)
    end.

%% @doc The dequantised weight `[N, K]': `e4m3_decode(q) * scale', exact.
-spec dequantize(packed()) -> result(tensor()).
dequantize({viva_tensor_fp8_packed, N, K, _, _, _} = P) ->
    {ok, mk([N, K], list_to_tuple(lists:append(dequant_rows(P))))}.

dequant_rows({viva_tensor_fp8_packed, N, K, Block, Codes, ScaleBin}) ->
    NB = (K + Block - 1) div Block,
    Scales = [S || <<S:32/float-little>> <= ScaleBin],
    dequant_rows(N, K, NB, Block, Codes, Scales, e4m3_table()).

dequant_rows(0, _, _, _, _, _, _) -> [];
dequant_rows(N, K, NB, Block, Codes, Scales, Table) ->
    <<Row:K/binary, Rest/binary>> = Codes,
    {RowScales, MoreScales} = lists:split(NB, Scales),
    [dequant_row(Row, RowScales, Block, Table) | dequant_rows(N - 1, K, NB, Block, Rest, MoreScales, Table)].

dequant_row(<<>>, _, _, _) -> [];
dequant_row(Codes, [S | Ss], Block, Table) ->
    case Codes of
        <<B:Block/binary, Rest/binary>> ->
            [element(C + 1, Table) * S || <<C>> <= B] ++ dequant_row(Rest, Ss, Block, Table);
        Last ->
            [element(C + 1, Table) * S || <<C>> <= Last]
    end.

%% @doc `Input . dequantize(Packed)^T + Bias' in f64: Input `[M, K]' (or
%% `[K]'), Packed from a weight `[N, K]', Bias `[N]' or `none'; the result is
%% `[M, N]' (or `[N]'). The "A16" of W8A16: every input value is first
%% rounded to bf16 (nearest even), as the native kernels take bf16/f16
%% activations; the products and sums are f64 (the GPU accumulates in f32, so
%% it agrees to about f32 rounding).
-spec linear_fp8_w8a16(tensor(), packed(), tensor() | none) -> result(tensor()).
linear_fp8_w8a16({viva_tensor_tensor, SI, DI}, {viva_tensor_fp8_packed, N, K, _, _, _} = P, Bias) ->
    {M, KI} = case SI of
                  [KI0] -> {1, KI0};
                  [M0, KI0] -> {M0, KI0};
                  _ -> {error, error}
              end,
    BiasOk = case Bias of
                 none -> ok;
                 {viva_tensor_tensor, [N], _} -> ok;
                 {viva_tensor_tensor, SB0, _} -> {bad, SB0}
             end,
    if
        M =:= error ->
            err(shape_mismatch, "linear_fp8_w8a16: the input must be [M, K] or [K], got ~s", [fmt_shape(SI)]);
        KI =/= K ->
            err(shape_mismatch, "linear_fp8_w8a16: input ~s x weight [~b,~b]: inner dimensions ~b and ~b differ",
                [fmt_shape(SI), N, K, KI, K]);
        BiasOk =/= ok ->
            {bad, SB} = BiasOk,
            err(shape_mismatch, "linear_fp8_w8a16: weight [~b,~b], bias ~s: the bias must be [~b]",
                [N, K, fmt_shape(SB), N]);
        true ->
            with_arith(linear_fp8_w8a16, fun() ->
                WRows = dequant_rows(P),
                BL = case Bias of
                         none -> lists:duplicate(N, 0.0);
                         {viva_tensor_tensor, _, BD} -> tuple_to_list(BD)
                     end,
                Out = lists:append(
                        [begin
                             X = [bf16_round(V) || V <- range_to_list(DI, I * K, K, [])],
                             [dot(X, W, 0.0) + B || {W, B} <- lists:zip(WRows, BL)]
                         end || I <- lists:seq(0, M - 1)]),
                OutShape = case SI of [_] -> [N]; _ -> [M, N] end,
                {ok, mk(OutShape, list_to_tuple(Out))}
            end)
    end.

%% @doc `{N, K, BlockSize}' of a packed weight.
-spec packed_info(packed()) -> {non_neg_integer(), non_neg_integer(), pos_integer()}.
packed_info({viva_tensor_fp8_packed, N, K, Block, _, _}) -> {N, K, Block}.

-spec is_packed(term()) -> boolean().
is_packed({viva_tensor_fp8_packed, _, _, _, _, _}) -> true;
is_packed(_) -> false.

%% @doc A float to its E4M3FN code (1 sign, 4 exponent bits with bias 7, 3
%% mantissa bits; subnormals below 2^-6 in steps of 2^-9; no infinities, 0x7F
%% and 0xFF are NaN): round to nearest even, saturating at +-448 (0x7E/0xFE).
-spec e4m3_encode(number()) -> 0..255.
e4m3_encode(X) ->
    <<S:1, _:63>> = <<(float(X)):64/float>>,
    (S bsl 7) bor erlang:min(magnitude_code(abs(float(X)), 3, 7), 16#7E).

%% @doc An E4M3FN code to its value, exactly (`nan' for 0x7F and 0xFF).
-spec e4m3_decode(0..255) -> float() | nan.
e4m3_decode(C) when C band 16#7F =:= 16#7F -> nan;
e4m3_decode(C) ->
    V = decode_magnitude(C band 16#7F, 3, 7),
    case C band 16#80 of
        0 -> V;
        _ -> -V
    end.

e4m3_table() ->
    list_to_tuple([case e4m3_decode(C) of nan -> 0.0; V -> V end || C <- lists:seq(0, 255)]).

bf16_round(X) ->
    case ieee_bits(X, 8, 7, 127) of
        B when B band 16#7F80 =:= 16#7F80 -> erlang:error(badarith);   % beyond bf16: inf
        B -> <<Y:32/float>> = <<B:16, 0:16>>, Y
    end.

%% ============================================================================
%% Binary float formats
%% ============================================================================

dtype_width(f64) -> 8;
dtype_width(f32) -> 4;
dtype_width(bf16) -> 2;
dtype_width(f16) -> 2;
dtype_width(_) -> error.

%% Decodes values until the first non-finite one (a binary generator stops at
%% the first segment its pattern does not match); the caller compares counts.
decode_binary(f64, Bin) -> [X || <<X:64/float-little>> <= Bin];
decode_binary(f32, Bin) -> [X || <<X:32/float-little>> <= Bin];
decode_binary(bf16, Bin) -> decode_16(Bin, fun(B) -> <<X:32/float>> = <<B:16, 0:16>>, X end, 8, 7);
decode_binary(f16, Bin) -> decode_16(Bin, fun(B) -> f16_value(B) end, 5, 10).

decode_16(<<B:16/little, Rest/binary>>, F, EBits, MBits) ->
    case (B bsr MBits) band ((1 bsl EBits) - 1) =:= (1 bsl EBits) - 1 of
        true -> [];
        false -> [F(B) | decode_16(Rest, F, EBits, MBits)]
    end;
decode_16(<<>>, _, _, _) -> [].

f16_value(B) ->
    V = decode_magnitude(B band 16#7FFF, 10, 15),
    case B band 16#8000 of
        0 -> V;
        _ -> -V
    end.

%% Value of a sign-less code of a binary float format with MBits mantissa bits
%% and exponent bias Bias (exponent field 0: subnormal).
decode_magnitude(C, MBits, Bias) ->
    E = C bsr MBits,
    M = C band ((1 bsl MBits) - 1),
    case E of
        0 -> M * pow2(1 - Bias - MBits);
        _ -> ((1 bsl MBits) + M) * pow2(E - Bias - MBits)
    end.

pow2(N) -> math:pow(2.0, N).

%% The IEEE half-width code (bf16: 8/7/127, f16: 5/10/15) of X: round to
%% nearest even, beyond the largest finite value: infinity.
ieee_bits(X, EBits, MBits, Bias) ->
    <<S:1, _:63>> = <<X:64/float>>,
    Inf = ((1 bsl EBits) - 1) bsl MBits,
    (S bsl (EBits + MBits)) bor erlang:min(magnitude_code(abs(X), MBits, Bias), Inf).

%% The code (without sign) of A >= 0 rounded to nearest even onto the format
%% with MBits mantissa bits and exponent bias Bias; the result may exceed the
%% format's largest code (an overflow the caller saturates or maps to inf).
%% A = Mant * 2^Exp exactly; the quantum at A is 2^Q with
%% Q = max(floor(log2 A), 1 - Bias) - MBits; R = round(A / 2^Q); then
%% code = ((max(e, emin) + Bias) << MBits) + R - 2^MBits, which also carries
%% R = 2^(MBits+1) into the next binade and gives subnormals (R < 2^MBits).
magnitude_code(A, MBits, Bias) ->
    <<_:1, Ex:11, F:52>> = <<A:64/float>>,   % abs(-0.0) is -0.0: ignore the sign
    case Ex of
        0 when F =:= 0 -> 0;
        _ ->
            {Mant, Exp, E} = case Ex of
                                 0 -> {F, -1074, bit_length(F) - 1 - 1074};
                                 _ -> {F bor (1 bsl 52), Ex - 1075, Ex - 1023}
                             end,
            E1 = erlang:max(E, 1 - Bias),
            Q = E1 - MBits,
            R = round_shift(Mant, Q - Exp),
            ((E1 + Bias) bsl MBits) + R - (1 bsl MBits)
    end.

%% round(M / 2^S), ties to even (S =< 0: M * 2^-S, exact).
round_shift(M, S) when S =< 0 -> M bsl (-S);
round_shift(_M, S) when S > 60 -> 0;    % M < 2^53: below half of one unit
round_shift(M, S) ->
    Q = M bsr S,
    Rem = M band ((1 bsl S) - 1),
    Half = 1 bsl (S - 1),
    if
        Rem > Half -> Q + 1;
        Rem < Half -> Q;
        true -> Q + (Q band 1)
    end.

bit_length(0) -> 0;
bit_length(N) -> 1 + bit_length(N bsr 1).

%% ============================================================================
%% Helpers
%% ============================================================================

mk(Shape, Data) -> {viva_tensor_tensor, Shape, Data}.

new(Op, Shape, Flat) ->
    with_size(Op, Shape, fun() -> {ok, mk(Shape, list_to_tuple(Flat))} end).

with_size(Op, Shape, Fun) ->
    case prod(Shape) of
        N when N > ?MAX_ELEMENTS ->
            err(invalid_option, "~s: ~s has ~b elements, more than the ~b a pure-BEAM tensor holds",
                [Op, fmt_shape(Shape), N, ?MAX_ELEMENTS]);
        _ ->
            Fun()
    end.

maybe_shape(Op, Shape, Fun) ->
    case is_list(Shape) andalso lists:all(fun(D) -> is_integer(D) andalso D >= 0 end, Shape) of
        true -> with_size(Op, Shape, Fun);
        false -> err(invalid_option, "~s: a shape is a list of integers >= 0, got ~tp", [Op, Shape])
    end.

%% Runs Fun, turning a float overflow, a division by zero or a domain error
%% (the BEAM raises badarith where IEEE would give inf or NaN) into an error.
with_arith(Op, Fun) ->
    try
        Fun()
    catch
        error:badarith ->
            err(invalid_option, "~s: a result is not a finite number (overflow, division by zero "
                "or outside the function's domain)", [Op]);
        error:{viva_tensor_too_large, N} ->
            err(invalid_option, "~s: the integer ~b is too large for a float", [Op, N])
    end.

%% A number as a float (raising {viva_tensor_too_large, N} for an integer
%% beyond the f64 range, which with_arith/2 reports).
num(X) when is_float(X) -> X;
num(X) when is_integer(X) ->
    try
        float(X)
    catch
        error:badarg -> erlang:error({viva_tensor_too_large, X})
    end.

err(Kind, Fmt, Args) ->
    {error, {Kind, unicode:characters_to_binary(io_lib:format(Fmt, Args))}}.

fmt_shape(Shape) ->
    ["[", lists:join(",", [integer_to_list(D) || D <- Shape]), "]"].

prod(L) -> lists:foldl(fun(D, Acc) -> D * Acc end, 1, L).

strides(Shape) ->
    {St, _} = lists:foldr(fun(D, {Acc, P}) -> {[P | Acc], P * D} end, {[], 1}, Shape),
    St.

norm_axis(A, R) when is_integer(A), A >= 0, A < R -> A;
norm_axis(A, R) when is_integer(A), A < 0, A >= -R -> A + R;
norm_axis(_, _) -> error.

drop_nth(I, L) ->
    {Pre, [_ | Post]} = lists:split(I, L),
    Pre ++ Post.

setnth(I, L, V) ->
    {Pre, [_ | Post]} = lists:split(I, L),
    Pre ++ [V | Post].

%% Elements of Data (0-based offsets) at Base + sum(i_d * Strides_d) for
%% every index of Shape, row-major, as a list. Built from the last index
%% down, so every step is a cons onto the accumulator.
gather(Data, Shape, Strides, Base) ->
    gather(Data, Shape, Strides, Base, []).

gather(Data, [], [], Base, Acc) ->
    [element(Base + 1, Data) | Acc];
gather(Data, [D], [S], Base, Acc) ->
    gather1(Data, Base + (D - 1) * S + 1, S, D, Acc);
gather(Data, [D | Ds], [S | Ss], Base, Acc) ->
    gather_outer(Data, D - 1, Ds, S, Ss, Base, Acc).

gather_outer(_, -1, _, _, _, _, Acc) -> Acc;
gather_outer(Data, I, Ds, S, Ss, Base, Acc) ->
    gather_outer(Data, I - 1, Ds, S, Ss, Base, gather(Data, Ds, Ss, Base + I * S, Acc)).

gather1(_, _, _, 0, Acc) -> Acc;
gather1(Data, I, S, N, Acc) -> gather1(Data, I - S, S, N - 1, [element(I, Data) | Acc]).

%% Data elements at 0-based offsets Off .. Off + Len - 1, prepended to Acc.
range_to_list(Data, Off, Len, Acc) -> gather1(Data, Off + Len, 1, Len, Acc).

%% Shape of a nested list: the lengths of the first elements down.
nested_shape(L) when is_list(L) ->
    case L of
        [H | _] -> [length(L) | nested_shape(H)];
        [] -> [0]
    end;
nested_shape(_) -> [].

%% The leaves in order (reversed in Acc until the end); throws an error on a
%% ragged list or a non-number.
flatten(L, Shape, Path, Acc) ->
    lists:reverse(flatten_(L, Shape, Path, Acc)).

flatten_(X, [], _Path, Acc) when is_number(X) -> [num(X) | Acc];
flatten_(X, [], Path, _Acc) when is_list(X) ->
    throw({viva_tensor_tensor, err(shape_mismatch, "from_list: ragged nested list: element ~w is a list "
                                   "where a number is expected", [lists:reverse(Path)])});
flatten_(X, [], Path, _Acc) ->
    throw({viva_tensor_tensor, err(invalid_option, "from_list: element ~w is not a number: ~tp",
                                   [lists:reverse(Path), X])});
flatten_(L, [D | Ds], Path, Acc) when is_list(L), length(L) =:= D ->
    {_, Acc2} = lists:foldl(fun(X, {I, A}) -> {I + 1, flatten_(X, Ds, [I | Path], A)} end, {0, Acc}, L),
    Acc2;
flatten_(L, [D | _], Path, _Acc) when is_list(L) ->
    throw({viva_tensor_tensor, err(shape_mismatch, "from_list: ragged nested list: ~s has ~b elements, "
                                   "expected ~b", [where(Path), length(L), D])});
flatten_(_, [D | _], Path, _Acc) ->
    throw({viva_tensor_tensor, err(shape_mismatch, "from_list: ragged nested list: ~s is not a list "
                                   "(expected ~b elements)", [where(Path), D])}).

where([]) -> "the list";
where(Path) -> io_lib:format("element ~w", [lists:reverse(Path)]).

%% A flat list as nested lists of Shape.
nest(Flat, [_]) -> Flat;
nest(Flat, [D | Ds]) ->
    Inner = prod(Ds),
    [nest(C, Ds) || C <- chunk(Flat, Inner, D)].
