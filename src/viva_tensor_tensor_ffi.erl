%% Adapters between the Gleam module viva_tensor/tensor (src/viva_tensor/tensor.gleam)
%% and the Erlang core viva_tensor_tensor. Only the Gleam module calls these.
%%
%% Gleam shapes used here:
%%   TensorError  {shape_mismatch, Msg} | {invalid_argument, Msg}
%%                (the core's {shape_mismatch, Msg} | {invalid_option, Msg})
%%   Dtype        f32 | bf16 | f16 | f64 (the core's atoms)
%%   Bias         {bias, Tensor} | no_bias (the core's Tensor | none)
%%   Result       {ok, _} | {error, _};  Nil is nil
-module(viva_tensor_tensor_ffi).

-export([from_list/1, from_list2d/1, from_flat_list/2, scalar/1, from_binary/3,
         zeros/1, ones/1, full/2, to_list2d/1, to_binary/2,
         reshape/2, transpose/1, transpose_axes/2, slice/3, concat/2,
         add/2, sub/2, mul/2, 'div'/2, maximum/2, minimum/2, scale/2,
         neg/1, exp/1, sqrt/1, tanh/1, sigmoid/1, silu/1, relu/1,
         matmul/2, sum_all/1, sum/2, mean/2, max/2, min/2, argmax/2,
         softmax/2, rmsnorm/3,
         prepack_fp8_weight_blocked/2, linear_fp8_w8a16/3, dequantize/1,
         packed_shape/1, e4m3_decode/1]).

-compile({no_auto_import, [max/2, min/2]}).

-define(T, viva_tensor_tensor).

-type gleam_error() :: {shape_mismatch, binary()} | {invalid_argument, binary()}.
-type gleam_result(T) :: {ok, T} | {error, gleam_error()}.

-spec from_list([float()]) -> gleam_result(term()).
from_list(Values) -> wrap(?T:from_list(Values)).

%% [] is a [0, 0] matrix (the core would read it as the vector [0]).
-spec from_list2d([[float()]]) -> gleam_result(term()).
from_list2d([]) -> wrap(?T:from_list([], [0, 0]));
from_list2d(Rows) -> wrap(?T:from_list(Rows)).

-spec from_flat_list([float()], [integer()]) -> gleam_result(term()).
from_flat_list(Values, Shape) -> wrap(?T:from_list(Values, Shape)).

-spec scalar(float()) -> term().
scalar(X) ->
    {ok, T} = ?T:from_list(X),
    T.

-spec from_binary(binary(), [integer()], atom()) -> gleam_result(term()).
from_binary(Bin, Shape, Dtype) -> wrap(?T:from_binary(Bin, Shape, Dtype)).

-spec zeros([integer()]) -> gleam_result(term()).
zeros(Shape) -> wrap(?T:zeros(Shape)).
-spec ones([integer()]) -> gleam_result(term()).
ones(Shape) -> wrap(?T:ones(Shape)).
-spec full([integer()], float()) -> gleam_result(term()).
full(Shape, V) -> wrap(?T:full(Shape, V)).

-spec to_list2d(term()) -> gleam_result([[float()]]).
to_list2d(T) ->
    case ?T:shape(T) of
        [_, _] ->
            {ok, ?T:to_list(T)};
        Shape ->
            {error, {invalid_argument,
                     iolist_to_binary(["to_list2d: the tensor is not 2-D: ", shape_text(Shape)])}}
    end.

%% The Dtype is typed on the Gleam side: the core cannot refuse it.
-spec to_binary(term(), atom()) -> binary().
to_binary(T, Dtype) ->
    {ok, Bin} = ?T:to_binary(T, Dtype),
    Bin.

-spec reshape(term(), [integer()]) -> gleam_result(term()).
reshape(T, Shape) -> wrap(?T:reshape(T, Shape)).
-spec transpose(term()) -> gleam_result(term()).
transpose(T) -> wrap(?T:transpose(T)).
-spec transpose_axes(term(), [integer()]) -> gleam_result(term()).
transpose_axes(T, Axes) -> wrap(?T:transpose(T, Axes)).
-spec slice(term(), [integer()], [integer()]) -> gleam_result(term()).
slice(T, Starts, Lengths) -> wrap(?T:slice(T, Starts, Lengths)).
-spec concat([term()], integer()) -> gleam_result(term()).
concat(Ts, Axis) -> wrap(?T:concat(Ts, Axis)).

-spec add(term(), term()) -> gleam_result(term()).
add(A, B) -> wrap(?T:add(A, B)).
-spec sub(term(), term()) -> gleam_result(term()).
sub(A, B) -> wrap(?T:sub(A, B)).
-spec mul(term(), term()) -> gleam_result(term()).
mul(A, B) -> wrap(?T:mul(A, B)).
-spec 'div'(term(), term()) -> gleam_result(term()).
'div'(A, B) -> wrap(?T:'div'(A, B)).
-spec maximum(term(), term()) -> gleam_result(term()).
maximum(A, B) -> wrap(?T:maximum(A, B)).
-spec minimum(term(), term()) -> gleam_result(term()).
minimum(A, B) -> wrap(?T:minimum(A, B)).
-spec scale(term(), float()) -> gleam_result(term()).
scale(T, S) -> wrap(?T:scale(T, S)).

-spec neg(term()) -> gleam_result(term()).
neg(T) -> wrap(?T:neg(T)).
-spec exp(term()) -> gleam_result(term()).
exp(T) -> wrap(?T:exp(T)).
-spec sqrt(term()) -> gleam_result(term()).
sqrt(T) -> wrap(?T:sqrt(T)).
-spec tanh(term()) -> gleam_result(term()).
tanh(T) -> wrap(?T:tanh(T)).
-spec sigmoid(term()) -> gleam_result(term()).
sigmoid(T) -> wrap(?T:sigmoid(T)).
-spec silu(term()) -> gleam_result(term()).
silu(T) -> wrap(?T:silu(T)).
-spec relu(term()) -> gleam_result(term()).
relu(T) -> wrap(?T:relu(T)).

-spec matmul(term(), term()) -> gleam_result(term()).
matmul(A, B) -> wrap(?T:matmul(A, B)).
-spec sum_all(term()) -> gleam_result(float()).
sum_all(T) -> wrap(?T:sum(T)).
-spec sum(term(), integer()) -> gleam_result(term()).
sum(T, Axis) -> wrap(?T:sum(T, Axis)).
-spec mean(term(), integer()) -> gleam_result(term()).
mean(T, Axis) -> wrap(?T:mean(T, Axis)).
-spec max(term(), integer()) -> gleam_result(term()).
max(T, Axis) -> wrap(?T:max(T, Axis)).
-spec min(term(), integer()) -> gleam_result(term()).
min(T, Axis) -> wrap(?T:min(T, Axis)).
-spec argmax(term(), integer()) -> gleam_result(term()).
argmax(T, Axis) -> wrap(?T:argmax(T, Axis)).
-spec softmax(term(), integer()) -> gleam_result(term()).
softmax(T, Axis) -> wrap(?T:softmax(T, Axis)).
-spec rmsnorm(term(), term(), float()) -> gleam_result(term()).
rmsnorm(X, W, Eps) -> wrap(?T:rmsnorm(X, W, Eps)).

-spec prepack_fp8_weight_blocked(term(), integer()) -> gleam_result(term()).
prepack_fp8_weight_blocked(W, Block) -> wrap(?T:prepack_fp8_weight_blocked(W, Block)).

-spec linear_fp8_w8a16(term(), term(), {bias, term()} | no_bias) -> gleam_result(term()).
linear_fp8_w8a16(Input, Packed, {bias, Bias}) -> wrap(?T:linear_fp8_w8a16(Input, Packed, Bias));
linear_fp8_w8a16(Input, Packed, no_bias) -> wrap(?T:linear_fp8_w8a16(Input, Packed, none)).

-spec dequantize(term()) -> gleam_result(term()).
dequantize(P) -> wrap(?T:dequantize(P)).

-spec packed_shape(term()) -> [non_neg_integer()].
packed_shape(P) ->
    {N, K, _Block} = ?T:packed_info(P),
    [N, K].

-spec e4m3_decode(integer()) -> {ok, float()} | {error, nil}.
e4m3_decode(C) when is_integer(C), C >= 0, C =< 255 ->
    case ?T:e4m3_decode(C) of
        nan -> {error, nil};
        V -> {ok, V}
    end;
e4m3_decode(_) ->
    {error, nil}.

%% --- errors -------------------------------------------------------------------

wrap({ok, V}) -> {ok, V};
wrap({error, {shape_mismatch, Msg}}) -> {error, {shape_mismatch, Msg}};
wrap({error, {invalid_option, Msg}}) -> {error, {invalid_argument, Msg}}.

shape_text(Shape) ->
    ["[", lists:join(",", [integer_to_list(D) || D <- Shape]), "]"].
