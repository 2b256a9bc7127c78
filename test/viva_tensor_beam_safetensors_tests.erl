%% @doc EUnit tests of viva_tensor_beam_safetensors.
%%
%% Broken and converted files are written by the tests under a fresh temp
%% dir (the fixtures may be read-only). The expected values of the F16 and
%% BF16 decoders are worked by hand from the IEEE bit layouts. This module
%% also exports the small helpers the model tests use (fixture lookup, temp
%% dirs, an independent safetensors writer and reader).
-module(viva_tensor_beam_safetensors_tests).

-include_lib("eunit/include/eunit.hrl").

-export([fixtures/0, fixture/1, tmp_dir/1, remove_tmp_dirs/0, write_safetensors/2, read_raw/1,
         contains/2]).

-define(ST, viva_tensor_beam_safetensors).

%%====================================================================
%% Helpers (exported for viva_tensor_beam_model_tests)

%% @doc The fixtures folder: $VIVA_TENSOR_FIXTURES, else ../shared/fixtures
%% relative to the repo root (the working directory of the test run, or two
%% levels above this test's source file).
fixtures() -> viva_tensor_fixtures:dir().

fixture(Name) -> filename:join(fixtures(), Name).

%% @doc A fresh empty directory under $TMPDIR (or /tmp), inside one folder per
%% OS process that remove_tmp_dirs/0 deletes.
tmp_dir(Tag) ->
    Dir = filename:join(tmp_base(), lists:flatten(io_lib:format("~s_~w", [Tag, erlang:unique_integer([positive])]))),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

tmp_base() ->
    Base = case os:getenv("TMPDIR") of false -> "/tmp"; "" -> "/tmp"; T -> T end,
    filename:join(Base, "viva_tensor_beam_tests_" ++ os:getpid()).

%% @doc Deletes every directory tmp_dir/1 made in this OS process.
remove_tmp_dirs() ->
    _ = file:del_dir_r(tmp_base()),
    ok.

%% @doc Writes a safetensors file; tensors are laid out in list order.
%% Tensors: [{Name, Dtype, Shape, Bytes}].
write_safetensors(File, Tensors) ->
    {Entries, _} = lists:mapfoldl(
        fun({Name, Dtype, Shape, Bin}, Off) ->
            {{Name, #{<<"dtype">> => Dtype, <<"shape">> => Shape,
                      <<"data_offsets">> => [Off, Off + byte_size(Bin)]}},
             Off + byte_size(Bin)}
        end, 0, Tensors),
    Header0 = iolist_to_binary(viva_tensor_json:encode(
        maps:from_list([{<<"__metadata__">>, #{<<"format">> => <<"pt">>}} | Entries]))),
    Pad = (8 - byte_size(Header0) rem 8) rem 8,
    Header = <<Header0/binary, (binary:copy(<<" ">>, Pad))/binary>>,
    ok = file:write_file(File, [<<(byte_size(Header)):64/little>>, Header
                                | [Bin || {_, _, _, Bin} <- Tensors]]).

%% @doc Independent reader: [{Name, Dtype, Shape, Bytes}] in data order.
read_raw(File) ->
    {ok, <<N:64/little, Header:N/binary, Data/binary>>} = file:read_file(File),
    {ok, Map} = viva_tensor_json:decode(Header),
    L = [{B, Name, D, S, E} || {Name, #{<<"dtype">> := D, <<"shape">> := S,
                                        <<"data_offsets">> := [B, E]}} <- maps:to_list(Map)],
    [{Name, D, S, binary:part(Data, B, E - B)} || {B, Name, D, S, E} <- lists:sort(L)].

contains(Msg, Part) when is_binary(Msg) ->
    binary:match(Msg, unicode:characters_to_binary(Part)) =/= nomatch.

%%====================================================================
%% Reading the fixture

stories() -> fixture("stories260k").

open_fixture_test_() ->
    File = filename:join(stories(), "model.safetensors"),
    {ok, ByFile} = ?ST:open(File),
    {ok, ByDir} = ?ST:open(stories()),
    Raw = read_raw(File),
    {_, _, _, NormBytes} = lists:keyfind(<<"model.norm.weight">>, 1, Raw),
    [?_assertEqual(47, length(?ST:names(ByFile))),
     ?_assertEqual(?ST:names(ByFile), ?ST:names(ByDir)),
     ?_assertEqual(lists:sort([N || {N, _, _, _} <- Raw]), ?ST:names(ByFile)),
     ?_assertEqual({ok, {<<"F32">>, [512, 64]}}, ?ST:info(ByFile, <<"model.embed_tokens.weight">>)),
     ?_assertEqual({ok, [64], [X || <<X:32/float-little>> <= NormBytes]},
                   ?ST:read_f64(ByFile, <<"model.norm.weight">>)),
     ?_assertEqual({ok, [64], NormBytes}, ?ST:read_f32(ByFile, <<"model.norm.weight">>)),
     ?_assertMatch({error, {missing_tensor, _}}, ?ST:info(ByFile, <<"lm_head.weight">>)),
     ?_assertMatch({error, {missing_tensor, _}}, ?ST:read_f64(ByFile, <<"lm_head.weight">>))].

%%====================================================================
%% Conversions

%% F16 bit patterns and their values:
%%   0x0001 smallest subnormal 2^-24        0x03FF largest subnormal 1023 * 2^-24
%%   0x0400 smallest normal 2^-14           0x3C00 1.0
%%   0xC000 -2.0                            0x7BFF largest 65504
%%   0x8000 -0.0                            0x3555 (1 + 341/1024) * 2^-2 = 0.333251953125
%%   0x8201 -(513 * 2^-24)                  0x5640 (1 + 576/1024) * 2^6 = 100.0
f16_values_test() ->
    Dir = tmp_dir("f16"),
    Bits = [16#0001, 16#03FF, 16#0400, 16#3C00, 16#C000, 16#7BFF, 16#8000, 16#3555, 16#8201, 16#5640],
    Expected = [math:pow(2, -24), 1023 * math:pow(2, -24), math:pow(2, -14), 1.0, -2.0, 65504.0,
                -0.0, 0.333251953125, -513 * math:pow(2, -24), 100.0],
    File = filename:join(Dir, "h.safetensors"),
    write_safetensors(File, [{<<"h">>, <<"F16">>, [2, 5], << <<B:16/little>> || B <- Bits >>}]),
    {ok, St} = ?ST:open(File),
    {ok, [2, 5], Values} = ?ST:read_f64(St, <<"h">>),
    ?assertEqual(Expected, Values),
    %% the sign of zero survives (=:= tells -0.0 from 0.0 only on OTP 27+, so compare bits)
    ?assertEqual(<<1:1, 0:63>>, <<(lists:nth(7, Values)):64/float>>).

%% BF16 is the upper half of an f32:
%%   0x3F80 -> 1.0, 0xC040 -> -3.0, 0x3EAB -> 0x3EAB0000 = 0.333984375,
%%   0x0001 -> 0x00010000 = 2^-133 (an f32 subnormal), 0x7F7F -> 0x7F7F0000 = 3.3895313892515355e38
bf16_values_test() ->
    Dir = tmp_dir("bf16"),
    File = filename:join(Dir, "b.safetensors"),
    Bits = [16#3F80, 16#C040, 16#3EAB, 16#0001, 16#7F7F],
    write_safetensors(File, [{<<"b">>, <<"BF16">>, [5], << <<B:16/little>> || B <- Bits >>}]),
    {ok, St} = ?ST:open(File),
    ?assertEqual({ok, [5], [1.0, -3.0, 0.333984375, math:pow(2, -133), 3.3895313892515355e38]},
                 ?ST:read_f64(St, <<"b">>)),
    ?assertEqual({ok, {<<"BF16">>, [5]}}, ?ST:info(St, <<"b">>)).

non_finite_values_test_() ->
    Dir = tmp_dir("nonfinite"),
    File = filename:join(Dir, "n.safetensors"),
    write_safetensors(File, [{<<"f16_inf">>, <<"F16">>, [3], <<0:16, 0:16, 16#7C00:16/little>>},
                             {<<"f16_nan">>, <<"F16">>, [1], <<16#7E00:16/little>>},
                             {<<"f32_nan">>, <<"F32">>, [2], <<1.0:32/float-little, 16#7FC00000:32/little>>},
                             {<<"bf16_inf">>, <<"BF16">>, [1], <<16#FF80:16/little>>}]),
    {ok, St} = ?ST:open(File),
    [?_assertMatch({error, {invalid_safetensors, _}}, ?ST:read_f64(St, Name)) || Name <-
        [<<"f16_inf">>, <<"f16_nan">>, <<"f32_nan">>, <<"bf16_inf">>]] ++
    [fun() ->
         {error, {_, Msg}} = ?ST:read_f64(St, <<"f16_inf">>),
         ?assert(contains(Msg, "f16_inf")),
         ?assert(contains(Msg, "element 2"))
     end].

unsupported_dtype_test() ->
    Dir = tmp_dir("dtype"),
    File = filename:join(Dir, "i.safetensors"),
    write_safetensors(File, [{<<"ids">>, <<"I32">>, [2], <<1:32/little, 2:32/little>>},
                             {<<"w">>, <<"F32">>, [1], <<1.0:32/float-little>>}]),
    {ok, St} = ?ST:open(File),
    ?assertEqual({ok, {<<"I32">>, [2]}}, ?ST:info(St, <<"ids">>)),
    ?assertEqual({ok, [1], [1.0]}, ?ST:read_f64(St, <<"w">>)),
    {error, {unsupported_dtype, Msg}} = ?ST:read_f64(St, <<"ids">>),
    ?assert(contains(Msg, "ids")),
    ?assert(contains(Msg, "I32")).

%%====================================================================
%% Errors

not_found_test() ->
    Path = filename:join(tmp_dir("nf"), "nope"),
    {error, {not_found, Msg}} = ?ST:open(Path),
    ?assert(contains(Msg, Path)).

no_weights_test() ->
    Dir = tmp_dir("empty"),
    ok = file:write_file(filename:join(Dir, "config.json"), <<"{}">>),
    {error, {no_weights, Msg}} = ?ST:open(Dir),
    ?assert(contains(Msg, Dir)).

%% each broken file is `invalid_safetensors' with a message naming the file
%% (and the tensor where one is involved)
broken_files_test_() ->
    Dir = tmp_dir("broken"),
    {ok, Good} = file:read_file(filename:join(stories(), "model.safetensors")),
    W = fun(Name, Bytes) -> F = filename:join(Dir, Name), ok = file:write_file(F, Bytes), F end,
    Hdr = fun(Json, Data) -> H = iolist_to_binary(Json), [<<(byte_size(H)):64/little>>, H, Data] end,
    Cases = [
        {"shorter than 8 bytes", W("tiny.safetensors", <<1, 2, 3>>), []},
        {"header length beyond the file", W("hlen.safetensors", <<1000000:64/little, "{}">>), []},
        {"header not JSON", W("json.safetensors", Hdr("{\"a\": ", <<>>)), []},
        {"header not an object", W("array.safetensors", Hdr("[1, 2]", <<>>)), []},
        {"truncated data (half the fixture)",
         W("trunc.safetensors", binary:part(Good, 0, byte_size(Good) div 2)), ["model."]},
        {"offsets past the data",
         W("range.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                      "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}">>,
                                    <<0:64, 0:32>>)), ["u"]},
        {"offsets overlap",
         W("overlap.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                        "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}">>,
                                      <<0:96>>)), ["t", "u"]},
        {"size not dtype x shape",
         W("size.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}">>,
                                   <<0:64>>)), ["t", "BF16"]},
        {"a gap between tensors",
         W("gap.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                    "\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}">>,
                                  <<0:96>>)), ["u", "4..8"]},
        {"trailing bytes after the last tensor",
         W("trailing.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}">>,
                                       <<0:64>>)), ["trailing"]},
        {"bad entry",
         W("entry.safetensors", Hdr(<<"{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}">>,
                                    <<0:32>>)), ["t"]}
    ],
    [{Label, fun() ->
         {error, {invalid_safetensors, Msg}} = ?ST:open(File),
         ?assert(contains(Msg, File)),
         [?assert(contains(Msg, P)) || P <- Parts]
     end} || {Label, File, Parts} <- Cases].

%%====================================================================
%% Sharded checkpoints and folder resolution

sharded_test_() ->
    Dir = tmp_dir("sharded"),
    Raw = read_raw(filename:join(stories(), "model.safetensors")),
    {A, B} = lists:split(20, Raw),
    write_safetensors(filename:join(Dir, "model-00001-of-00002.safetensors"), A),
    write_safetensors(filename:join(Dir, "model-00002-of-00002.safetensors"), B),
    Map = maps:from_list([{N, <<"model-00001-of-00002.safetensors">>} || {N, _, _, _} <- A] ++
                         [{N, <<"model-00002-of-00002.safetensors">>} || {N, _, _, _} <- B]),
    Index = filename:join(Dir, "model.safetensors.index.json"),
    ok = file:write_file(Index, viva_tensor_json:encode(#{<<"metadata">> => #{},
                                                          <<"weight_map">> => Map})),
    {ok, St} = ?ST:open(Index),
    {ok, StDir} = ?ST:open(Dir),
    [?_assertEqual(lists:sort([N || {N, _, _, _} <- Raw]), ?ST:names(St)),
     ?_assertEqual(?ST:names(St), ?ST:names(StDir)),
     ?_assertEqual(2, length(?ST:files(St))),
     ?_test([?assertEqual({ok, S, Bin}, ?ST:read_f32(St, N)) || {N, _, S, Bin} <- Raw]),
     ?_test(begin
                Dir2 = tmp_dir("sharded_missing"),
                I2 = filename:join(Dir2, "model.safetensors.index.json"),
                ok = file:write_file(I2, viva_tensor_json:encode(
                    #{<<"weight_map">> => #{<<"x">> => <<"gone.safetensors">>}})),
                {error, {not_found, Msg}} = ?ST:open(I2),
                ?assert(contains(Msg, "gone.safetensors"))
            end),
     ?_test(begin
                Dir3 = tmp_dir("sharded_badjson"),
                I3 = filename:join(Dir3, "model.safetensors.index.json"),
                ok = file:write_file(I3, <<"{\"weight_map\": ">>),
                ?assertMatch({error, {invalid_safetensors, _}}, ?ST:open(I3))
            end),
     ?_test(begin
                Dir4 = tmp_dir("sharded_empty"),
                I4 = filename:join(Dir4, "model.safetensors.index.json"),
                ok = file:write_file(I4, <<"{\"weight_map\": {}}">>),
                ?assertMatch({error, {no_weights, _}}, ?ST:open(I4))
            end)].

folder_resolution_test_() ->
    T = [{<<"w">>, <<"F32">>, [1], <<1.0:32/float-little>>}],
    D1 = tmp_dir("res1"),
    write_safetensors(filename:join(D1, "model.safetensors"), T),
    write_safetensors(filename:join(D1, "other.safetensors"), T),
    D2 = tmp_dir("res2"),
    write_safetensors(filename:join(D2, "weights.safetensors"), T),
    D3 = tmp_dir("res3"),
    write_safetensors(filename:join(D3, "b.safetensors"), T),
    write_safetensors(filename:join(D3, "a.safetensors"), [{<<"v">>, <<"F32">>, [1], <<2.0:32/float-little>>}]),
    [?_assertEqual({ok, {file, list_to_binary(filename:join(D1, "model.safetensors"))}}, ?ST:resolve(D1)),
     ?_assertEqual({ok, {file, list_to_binary(filename:join(D2, "weights.safetensors"))}}, ?ST:resolve(D2)),
     %% several files and no index: all of them, sorted, as shards (as the NIF's loader does)
     ?_assertEqual({ok, {files, [list_to_binary(filename:join(D3, F)) || F <- ["a.safetensors", "b.safetensors"]]}},
                   ?ST:resolve(D3)),
     ?_test(begin
                {ok, St3} = ?ST:open(D3),
                ?assertEqual([<<"v">>, <<"w">>], ?ST:names(St3)),
                ?assertEqual({ok, [1], [2.0]}, ?ST:read_f64(St3, <<"v">>))
            end),
     ?_assertMatch({ok, _}, ?ST:open(list_to_binary(D2)))].

%% last in the module (EUnit runs a module's tests in order): remove the temp files
zz_cleanup_test() ->
    ?assertEqual(ok, remove_tmp_dirs()).
