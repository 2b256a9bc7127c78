%% @doc safetensors reader of the pure-BEAM backend.
%%
%% A safetensors file is an 8-byte little-endian header length N, N bytes of
%% JSON header (`{"name": {"dtype", "shape", "data_offsets": [Begin, End]},
%% "__metadata__": {...}}', offsets relative to the data region that follows),
%% then the data region. Every file is read once with `file:read_file/1'; the
%% tensors are sub-binaries of that one binary, so reading a tensor copies
%% nothing until it is converted.
%%
%% `open/1' accepts a `.safetensors' file, a sharded checkpoint's
%% `*.safetensors.index.json' (its `weight_map' names the shard files; each
%% shard is read once), or a folder holding either: `model.safetensors' is
%% preferred, then `model.safetensors.index.json', then the `*.safetensors'
%% files present (several are read as shards). This is the resolution order
%% of the NIF's loader (native/viva_core/src/loader.rs).
%%
%% Checks made at open (kind `invalid_safetensors' unless said otherwise,
%% every message names the file, and the tensor where there is one):
%% file shorter than 8 bytes, header length beyond the end of the file,
%% header that is not a JSON object, entries without a string dtype / a shape
%% of non-negative integers / two integer data_offsets, offsets outside the
%% data region (a truncated file), `End - Begin' not equal to
%% `prod(shape) * dtype size', tensors that overlap, leave a gap or do not
%% end at the end of the file (the tensors must tile the data region, as the
%% `safetensors' crate requires); a missing path or shard is `not_found', a
%% folder without weights or an empty weight_map `no_weights'. A dtype this reader cannot convert (anything but F32, BF16, F16)
%% is accepted at open (checkpoints may carry unused integer tensors) and is an
%% `unsupported_dtype' error when the tensor is read or checked by the model.
%%
%% Two readers convert tensor data: {@link read_f64/2} gives a flat row-major
%% list of floats; {@link read_f32/2} gives little-endian f32 bytes (zero-copy
%% for F32; BF16 and F16 values are exactly representable in f32), which is the
%% representation the model keeps its weights in (see
%% viva_tensor_beam_model for the measurements behind that choice). Erlang
%% floats cannot be inf or NaN: a tensor holding one is reported as
%% `invalid_safetensors' naming the tensor and the element index.
-module(viva_tensor_beam_safetensors).

-export([open/1, resolve/1, names/1, info/2, read_f64/2, read_f32/2, files/1]).
-export_type([st/0, dtype/0]).

-type dtype() :: binary().
-type error() :: {error, {atom(), binary()}}.

%% tensors: Name => {Dtype, Shape, Data :: binary(), File :: binary()}
-opaque st() :: #{files := [binary()], tensors := #{binary() => tuple()}}.

%% bytes per element of the dtypes the safetensors format defines
-define(DTYPE_SIZES, #{
    <<"F64">> => 8, <<"F32">> => 4, <<"F16">> => 2, <<"BF16">> => 2,
    <<"I64">> => 8, <<"I32">> => 4, <<"I16">> => 2, <<"I8">> => 1,
    <<"U64">> => 8, <<"U32">> => 4, <<"U16">> => 2, <<"U8">> => 1,
    <<"BOOL">> => 1, <<"F8_E4M3">> => 1, <<"F8_E5M2">> => 1, <<"F8_E8M0">> => 1
}).

%% @doc Opens a checkpoint (file, index.json or folder) and validates every
%% header. See the module doc for the errors.
-spec open(file:filename_all()) -> {ok, st()} | error().
open(Path) ->
    case resolve(Path) of
        {ok, {file, File}} ->
            case read_file(File) of
                {ok, Tensors} -> {ok, #{files => [File], tensors => Tensors}};
                Error -> Error
            end;
        {ok, {index, Index}} ->
            open_index(Index);
        {ok, {files, Files}} ->
            open_files(Files);
        Error ->
            Error
    end.

%% @doc Which weights a path designates, without reading them:
%% `{file, SafetensorsPath}', `{index, IndexJsonPath}' or, for a folder
%% holding several `.safetensors' files and no index, `{files, Paths}'
%% (sorted; all of them are read as shards). Paths are absolute binaries.
-spec resolve(file:filename_all()) ->
    {ok, {file | index, binary()} | {files, [binary()]}} | error().
resolve(Path0) ->
    Path = unicode:characters_to_binary(filename:absname(Path0)),
    case filelib:is_dir(Path) of
        true ->
            resolve_dir(Path);
        false ->
            case filelib:is_regular(Path) of
                false ->
                    err(not_found, "~ts: no such file or directory", [Path]);
                true ->
                    case is_suffix(<<".json">>, Path) of
                        true -> {ok, {index, Path}};
                        false -> {ok, {file, Path}}
                    end
            end
    end.

%% @doc Names of all tensors, sorted.
-spec names(st()) -> [binary()].
names(#{tensors := T}) ->
    lists:sort(maps:keys(T)).

%% @doc The files the checkpoint was read from.
-spec files(st()) -> [binary()].
files(#{files := Files}) ->
    Files.

%% @doc Dtype (as written in the header, e.g. `<<"BF16">>') and shape.
-spec info(st(), binary()) ->
    {ok, {dtype(), [non_neg_integer()]}} | error().
info(#{tensors := T, files := Files}, Name) ->
    case T of
        #{Name := {Dtype, Shape, _Data, _File}} -> {ok, {Dtype, Shape}};
        _ -> missing(Name, Files)
    end.

%% @doc The tensor as a flat row-major list of floats (F32, BF16 and F16).
-spec read_f64(st(), binary()) ->
    {ok, [non_neg_integer()], [float()]} | error().
read_f64(St, Name) ->
    case read_f32(St, Name) of
        {ok, Shape, F32} -> {ok, Shape, [X || <<X:32/float-little>> <= F32]};
        Error -> Error
    end.

%% @doc The tensor as little-endian f32 bytes (F32, BF16 and F16; exact).
-spec read_f32(st(), binary()) ->
    {ok, [non_neg_integer()], binary()} | error().
read_f32(#{tensors := T, files := Files}, Name) ->
    case T of
        #{Name := {Dtype, Shape, Data, File}} ->
            case to_f32(Dtype, Data) of
                {ok, F32} ->
                    case first_non_finite(F32, 0) of
                        none ->
                            {ok, Shape, F32};
                        I ->
                            err(invalid_safetensors,
                                "~ts: tensor ~ts holds inf or NaN at element ~w; "
                                "the BEAM backend needs finite weights",
                                [File, Name, I])
                    end;
                unsupported ->
                    err(unsupported_dtype,
                        "~ts: tensor ~ts has dtype ~ts; supported: F32, BF16, F16",
                        [File, Name, Dtype])
            end;
        _ ->
            missing(Name, Files)
    end.

%%--------------------------------------------------------------------
%% Resolution

resolve_dir(Dir) ->
    Single = filename:join(Dir, <<"model.safetensors">>),
    Index = filename:join(Dir, <<"model.safetensors.index.json">>),
    case {filelib:is_regular(Single), filelib:is_regular(Index)} of
        {true, _} ->
            {ok, {file, Single}};
        {false, true} ->
            {ok, {index, Index}};
        {false, false} ->
            Entries =
                case file:list_dir(Dir) of
                    {ok, Es} -> lists:sort([unicode:characters_to_binary(E) || E <- Es]);
                    {error, _} -> []
                end,
            Files = [filename:join(Dir, E) || E <- Entries, is_suffix(<<".safetensors">>, E),
                                              filelib:is_regular(filename:join(Dir, E))],
            case Files of
                [] ->
                    err(no_weights, "~ts: no model.safetensors, model.safetensors.index.json "
                        "or *.safetensors file in this folder", [Dir]);
                [F] ->
                    {ok, {file, F}};
                _ ->
                    {ok, {files, Files}}
            end
    end.

%%--------------------------------------------------------------------
%% Sharded checkpoints

open_index(Index) ->
    case file:read_file(Index) of
        {error, Reason} ->
            io_err(Index, Reason);
        {ok, Bin} ->
            case viva_tensor_json:decode(Bin) of
                {ok, #{<<"weight_map">> := Map}} when is_map(Map) ->
                    open_shards(Index, Map);
                {ok, _} ->
                    err(invalid_safetensors, "~ts: index has no \"weight_map\" object", [Index]);
                {error, {_, Msg}} ->
                    err(invalid_safetensors, "~ts: index is not valid JSON: ~ts", [Index, Msg])
            end
    end.

open_shards(Index, WeightMap) ->
    Dir = filename:dirname(Index),
    Pairs = lists:sort(maps:to_list(WeightMap)),
    case [N || {N, F} <- Pairs, not is_binary(F)] of
        [Bad | _] ->
            err(invalid_safetensors, "~ts: weight_map entry ~ts is not a file name", [Index, Bad]);
        [] when Pairs =:= [] ->
            err(no_weights, "~ts: weight_map is empty", [Index]);
        [] ->
            open_files([filename:join(Dir, S) || S <- lists:usort([F || {_, F} <- Pairs])])
    end.

open_files(Files) ->
    case read_shards(Files, #{}) of
        {ok, Tensors} -> {ok, #{files => Files, tensors => Tensors}};
        Error -> Error
    end.

read_shards([], Acc) ->
    {ok, Acc};
read_shards([File | Rest], Acc) ->
    case filelib:is_regular(File) of
        false ->
            err(not_found, "~ts: shard named by the index does not exist", [File]);
        true ->
            case read_file(File) of
                {ok, Tensors} -> read_shards(Rest, maps:merge(Acc, Tensors));
                Error -> Error
            end
    end.

%%--------------------------------------------------------------------
%% One file

read_file(File) ->
    case file:read_file(File) of
        {ok, Bin} -> parse(File, Bin);
        {error, enoent} -> err(not_found, "~ts: no such file or directory", [File]);
        {error, Reason} -> io_err(File, Reason)
    end.

parse(File, Bin) when byte_size(Bin) < 8 ->
    err(invalid_safetensors, "~ts: truncated file (~w bytes, shorter than the 8-byte header length)",
        [File, byte_size(Bin)]);
parse(File, <<N:64/little, Rest/binary>>) when N > byte_size(Rest) ->
    err(invalid_safetensors, "~ts: header length ~w is larger than the rest of the file (~w bytes)",
        [File, N, byte_size(Rest)]);
parse(File, <<N:64/little, Header:N/binary, Data/binary>>) ->
    case viva_tensor_json:decode(Header) of
        {ok, Map} when is_map(Map) ->
            entries(File, lists:sort(maps:to_list(maps:remove(<<"__metadata__">>, Map))),
                    Data, #{});
        {ok, _} ->
            err(invalid_safetensors, "~ts: header is not a JSON object", [File]);
        {error, {_, Msg}} ->
            err(invalid_safetensors, "~ts: header is not valid JSON: ~ts", [File, Msg])
    end.

entries(File, [], Data, Acc) ->
    check_layout(File, lists:sort([{B, E, N} || {N, {_, _, B, E}} <- maps:to_list(Acc)]),
                 0, Data, Acc);
entries(File, [{Name, Entry} | Rest], Data, Acc) ->
    case entry(Entry) of
        {ok, Dtype, Shape, B, E} ->
            Size = byte_size(Data),
            Count = prod(Shape),
            if
                B > E; E > Size ->
                    err(invalid_safetensors,
                        "~ts: tensor ~ts: data_offsets [~w,~w] lie outside the data region "
                        "(~w bytes; truncated file?)", [File, Name, B, E, Size]);
                true ->
                    case maps:find(Dtype, ?DTYPE_SIZES) of
                        {ok, ElSize} when Count * ElSize =/= E - B ->
                            err(invalid_safetensors,
                                "~ts: tensor ~ts: data_offsets [~w,~w] span ~w bytes but "
                                "~ts ~w needs ~w", [File, Name, B, E, E - B, Dtype,
                                                    Shape, Count * ElSize]);
                        _ ->
                            entries(File, Rest, Data, Acc#{Name => {Dtype, Shape, B, E}})
                    end
            end;
        error ->
            err(invalid_safetensors,
                "~ts: tensor ~ts: header entry needs a string dtype, a shape of "
                "non-negative integers and two integer data_offsets", [File, Name])
    end.

entry(#{<<"dtype">> := Dtype, <<"shape">> := Shape, <<"data_offsets">> := [B, E]})
  when is_binary(Dtype), is_list(Shape), is_integer(B), is_integer(E), B >= 0 ->
    case lists:all(fun(D) -> is_integer(D) andalso D >= 0 end, Shape) of
        true -> {ok, Dtype, Shape, B, E};
        false -> error
    end;
entry(_) ->
    error.

%% Like the reference implementation (the `safetensors' crate, which the NIF
%% uses), the tensors must tile the data region exactly: sorted by offset, each
%% begins where the previous one ends, and the last ends at the end of the file.
check_layout(File, [{B, E, N} | Rest], Expected, Data, Acc) ->
    if
        B < Expected ->
            err(invalid_safetensors, "~ts: tensor ~ts (data_offsets [~w,~w]) overlaps the "
                "tensor before it, which ends at ~w", [File, N, B, E, Expected]);
        B > Expected ->
            err(invalid_safetensors, "~ts: bytes ~w..~w of the data region belong to no tensor "
                "(the next one, ~ts, begins at ~w)", [File, Expected, B, N, B]);
        true ->
            check_layout(File, Rest, E, Data, Acc)
    end;
check_layout(File, [], Expected, Data, _Acc) when Expected =/= byte_size(Data) ->
    err(invalid_safetensors, "~ts: the tensors cover ~w bytes but the data region holds ~w "
        "(trailing data?)", [File, Expected, byte_size(Data)]);
check_layout(File, [], _Expected, Data, Acc) ->
    {ok, maps:map(fun(_Name, {Dtype, Shape, B, E}) ->
                          {Dtype, Shape, binary:part(Data, B, E - B), File}
                  end, Acc)}.

%%--------------------------------------------------------------------
%% Conversion

to_f32(<<"F32">>, Data) ->
    {ok, Data};
to_f32(<<"BF16">>, Data) ->
    %% bf16 is the top half of an f32: little-endian [lo, hi] -> [0, 0, lo, hi]
    {ok, << <<0:16, H:16/bitstring>> || <<H:16/bitstring>> <= Data >>};
to_f32(<<"F16">>, Data) ->
    {ok, << <<(f16_bits_to_f32_bits(H)):32/little>> || <<H:16/little>> <= Data >>};
to_f32(_, _) ->
    unsupported.

%% IEEE half -> IEEE single, bit patterns (exact: every half is a single).
%% Normal: rebias the exponent (15 -> 127) and widen the mantissa (10 -> 23
%% bits). Subnormal (exponent 0): value = M * 2^-24, renormalised for f32.
%% Exponent 31: inf / NaN, kept as the f32 inf / NaN pattern (caught later by
%% the finiteness check).
f16_bits_to_f32_bits(H) ->
    S = (H bsr 15) bsl 31,
    E = (H bsr 10) band 16#1F,
    M = H band 16#3FF,
    if
        E =:= 0, M =:= 0 ->
            S;
        E =:= 0 ->
            %% M * 2^-24 with M in 1..1023: shift M up until bit 10 is set
            {M1, E1} = normalise(M, 0),
            S bor ((127 - 15 - E1 + 1) bsl 23) bor ((M1 band 16#3FF) bsl 13);
        E =:= 31 ->
            S bor (16#FF bsl 23) bor (M bsl 13);
        true ->
            S bor ((E - 15 + 127) bsl 23) bor (M bsl 13)
    end.

normalise(M, Shift) when M band 16#400 =/= 0 -> {M, Shift};
normalise(M, Shift) -> normalise(M bsl 1, Shift + 1).

%% Index of the first f32 (little-endian) whose exponent bits are all ones.
first_non_finite(<<_:16, B2, B3, Rest/binary>>, I) ->
    case (B3 band 16#7F) =:= 16#7F andalso (B2 band 16#80) =:= 16#80 of
        true -> I;
        false -> first_non_finite(Rest, I + 1)
    end;
first_non_finite(<<>>, _I) ->
    none.

%%--------------------------------------------------------------------

prod(Shape) -> lists:foldl(fun(D, A) -> D * A end, 1, Shape).

is_suffix(Suffix, Bin) ->
    S = byte_size(Suffix),
    B = byte_size(Bin),
    B >= S andalso binary:part(Bin, B - S, S) =:= Suffix.

missing(Name, Files) ->
    err(missing_tensor, "~ts: no tensor named ~ts", [lists:join(<<", ">>, Files), Name]).

io_err(File, Reason) ->
    err(io_error, "~ts: ~ts", [File, file:format_error(Reason)]).

err(Kind, Fmt, Args) ->
    {error, {Kind, unicode:characters_to_binary(io_lib:format(Fmt, Args))}}.
