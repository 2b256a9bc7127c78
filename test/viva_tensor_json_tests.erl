%% @doc EUnit tests for viva_tensor_json: hand-worked examples of every JSON
%% construct and of every error class, encoder output, and round trips over
%% the fixture files (read from ../shared/fixtures next to the repo root, or
%% from $VIVA_TENSOR_FIXTURES).
-module(viva_tensor_json_tests).

-include_lib("eunit/include/eunit.hrl").

-define(D(Json), viva_tensor_json:decode(Json)).
-define(OK(Term, Json), ?assertEqual({ok, Term}, ?D(Json))).
-define(ENC(Term), iolist_to_binary(viva_tensor_json:encode(Term))).

%%--------------------------------------------------------------------
%% Fixtures helper
%%--------------------------------------------------------------------

fixtures_dir() -> viva_tensor_fixtures:dir().

fixture(Rel) ->
    {ok, Bin} = file:read_file(filename:join(fixtures_dir(), Rel)),
    Bin.

%% Asserts an invalid_json error whose message contains every given piece.
assert_error(Json, Pieces) ->
    case ?D(Json) of
        {error, {invalid_json, Msg}} when is_binary(Msg) ->
            [
                ?assertNotEqual({Msg, nomatch}, {Msg, binary:match(Msg, P)})
             || P <- Pieces
            ],
            ok;
        Other ->
            erlang:error({expected_invalid_json, Json, Other})
    end.

%%--------------------------------------------------------------------
%% Literals, numbers
%%--------------------------------------------------------------------

literals_test() ->
    ?OK(true, <<"true">>),
    ?OK(false, <<"false">>),
    ?OK(null, <<"null">>),
    ?OK(true, <<" \t\r\n true \n">>).

integers_test() ->
    ?OK(0, <<"0">>),
    ?OK(0, <<"-0">>),
    ?OK(123, <<"123">>),
    ?OK(-45, <<"-45">>),
    ?OK(12345678901234567890123, <<"12345678901234567890123">>),
    ?OK(-9007199254740993, <<"-9007199254740993">>).

floats_test() ->
    ?OK(1.5, <<"1.5">>),
    ?OK(-0.25, <<"-0.25">>),
    ?OK(1.0e-5, <<"1e-05">>),
    ?OK(100.0, <<"1E2">>),
    ?OK(1500.0, <<"1.5e+3">>),
    ?OK(0.001, <<"1E-3">>),
    ?OK(0.0, <<"0.0">>),
    ?OK(1.0, <<"1.0">>),
    ?OK(1.0e308, <<"1e308">>),
    %% underflow rounds to zero (as serde_json does); overflow is an error
    ?OK(0.0, <<"1e-400">>),
    {ok, NegZero} = ?D(<<"-0.0">>),
    ?assert(is_float(NegZero)),
    ?assertEqual(<<"-0.0">>, float_to_binary(NegZero, [short])),
    %% the exact double nearest to the text
    ?OK(0.1, <<"0.1">>),
    ?OK(9.999999747378752e-6, <<"9.999999747378752e-06">>).

%%--------------------------------------------------------------------
%% Strings
%%--------------------------------------------------------------------

strings_test() ->
    ?OK(<<>>, <<"\"\"">>),
    ?OK(<<"abc">>, <<"\"abc\"">>),
    ?OK(<<"a\"b\\c/d\be\ff\ng\rh\ti">>, <<"\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"">>),
    ?OK(<<"A">>, <<"\"\\u0041\"">>),
    ?OK(<<"é"/utf8>>, <<"\"\\u00e9\"">>),
    ?OK(<<"€"/utf8>>, <<"\"\\u20AC\"">>),
    ?OK(<<0>>, <<"\"\\u0000\"">>),
    %% raw UTF-8 passes through
    ?OK(<<"é😀▁"/utf8>>, <<"\"é😀▁\""/utf8>>),
    %% DEL (0x7F) is not a control character for JSON
    ?OK(<<"a", 16#7F, "b">>, <<"\"a", 16#7F, "b\"">>),
    %% escapes mixed with plain runs
    ?OK(<<"x\ny\"z"/utf8>>, <<"\"x\\ny\\\"z\"">>),
    ?OK(<<"é\né"/utf8>>, <<"\"é\\né\""/utf8>>).

surrogates_test() ->
    %% a pair becomes one code point
    ?OK(<<"😀"/utf8>>, <<"\"\\ud83d\\ude00\"">>),
    ?OK(<<"😀"/utf8>>, <<"\"\\uD83D\\uDE00\"">>),
    %% lone high, lone low, high followed by a non-surrogate escape,
    %% high followed by a full pair
    ?OK(<<16#FFFD/utf8, "x">>, <<"\"\\ud800x\"">>),
    ?OK(<<16#FFFD/utf8>>, <<"\"\\udc00\"">>),
    ?OK(<<16#FFFD/utf8, "A">>, <<"\"\\ud800\\u0041\"">>),
    ?OK(<<16#FFFD/utf8, "😀"/utf8>>, <<"\"\\ud800\\ud83d\\ude00\"">>),
    ?OK(<<16#FFFD/utf8>>, <<"\"\\ud800\"">>),
    ?OK(<<16#FFFD/utf8, 16#FFFD/utf8>>, <<"\"\\ude00\\ud83d\"">>).

%%--------------------------------------------------------------------
%% Arrays and objects
%%--------------------------------------------------------------------

arrays_test() ->
    ?OK([], <<"[]">>),
    ?OK([], <<"[ ]">>),
    ?OK([1, <<"a">>, true, null, 2.5], <<"[1,\"a\",true,null,2.5]">>),
    ?OK([1, [2, [[]]], #{}], <<"[ 1 , [2,[ [ ] ] ] , { } ]">>).

objects_test() ->
    ?OK(#{}, <<"{}">>),
    ?OK(#{}, <<"{ \n }">>),
    ?OK(#{<<"a">> => 1, <<"b">> => [true]}, <<"{\"a\":1,\"b\":[true]}">>),
    ?OK(#{<<"k">> => #{<<"n">> => null}}, <<" { \"k\" : { \"n\" : null } } ">>),
    %% keys go through escapes too
    ?OK(#{<<"a\nb">> => 1, <<"é"/utf8>> => 2}, <<"{\"a\\nb\":1,\"\\u00e9\":2}">>),
    %% duplicate keys: the last one wins
    ?OK(#{<<"a">> => 3, <<"b">> => 2}, <<"{\"a\":1,\"b\":2,\"a\":3}">>).

%%--------------------------------------------------------------------
%% Errors: one test per class, checking the message and the offset
%%--------------------------------------------------------------------

empty_input_test() ->
    assert_error(<<>>, [<<"unexpected end of input">>, <<"at byte offset 0">>]),
    assert_error(<<"   ">>, [<<"unexpected end of input">>, <<"at byte offset 3">>]).

truncated_test() ->
    assert_error(<<"[1,2">>, [<<"unexpected end of input">>, <<"',' or ']'">>, <<"offset 4">>]),
    assert_error(<<"{\"a\":1">>, [<<"unexpected end of input">>, <<"',' or '}'">>, <<"offset 6">>]),
    assert_error(<<"{\"a\"">>, [<<"unexpected end of input">>, <<"':'">>, <<"offset 4">>]),
    assert_error(<<"[">>, [<<"unexpected end of input">>, <<"a value">>, <<"offset 1">>]).

unterminated_string_test() ->
    assert_error(<<"\"abc">>, [<<"end of input inside a string">>, <<"offset 4">>]),
    assert_error(<<"\"ab\\n">>, [<<"end of input inside a string">>, <<"offset 5">>]),
    assert_error(<<"\"\\">>, [<<"end of input inside a string">>, <<"offset 2">>]).

trailing_data_test() ->
    assert_error(<<"[1] x">>, [<<"trailing data 'x'">>, <<"offset 4">>]),
    assert_error(<<"1 2">>, [<<"trailing data">>, <<"offset 2">>]),
    assert_error(<<"{}}">>, [<<"trailing data">>, <<"offset 2">>]),
    assert_error(<<"nullx">>, [<<"trailing data">>, <<"offset 4">>]).

unexpected_character_test() ->
    assert_error(<<"[1,]">>, [<<"expected a value but found ']'">>, <<"offset 3">>]),
    assert_error(<<"[1 2]">>, [<<"expected ',' or ']' but found '2'">>, <<"offset 3">>]),
    assert_error(<<"{\"a\" 1}">>, [<<"expected ':' but found '1'">>, <<"offset 5">>]),
    assert_error(<<"{\"a\":1,}">>, [<<"expected a string key but found '}'">>, <<"offset 7">>]),
    assert_error(<<"{\"a\":1 \"b\":2}">>, [<<"expected ',' or '}'">>, <<"offset 7">>]),
    assert_error(<<"{1:2}">>, [<<"expected a string key but found '1'">>, <<"offset 1">>]),
    assert_error(<<"{'a':1}">>, [<<"expected a string key but found byte 0x27">>, <<"offset 1">>]),
    assert_error(<<"+1">>, [<<"expected a value but found '+'">>, <<"offset 0">>]),
    assert_error(<<".5">>, [<<"expected a value">>, <<"offset 0">>]),
    assert_error(<<"True">>, [<<"expected a value">>, <<"offset 0">>]),
    assert_error(<<"[1,2]/*c*/">>, [<<"trailing data '/'">>, <<"offset 5">>]),
    %% a byte order mark is not JSON whitespace
    assert_error(<<16#EF, 16#BB, 16#BF, "{}">>, [<<"byte 0xEF">>, <<"offset 0">>]),
    assert_error(<<"[\x01]">>, [<<"byte 0x01">>, <<"offset 1">>]).

invalid_literal_test() ->
    assert_error(<<"tru">>, [<<"invalid literal">>, <<"offset 0">>]),
    assert_error(<<"[nul]">>, [<<"invalid literal">>, <<"offset 1">>]),
    assert_error(<<"fals">>, [<<"invalid literal">>, <<"offset 0">>]).

leading_zero_test() ->
    assert_error(<<"01">>, [<<"leading zero">>, <<"offset 0">>]),
    assert_error(<<"-01">>, [<<"leading zero">>, <<"offset 1">>]),
    assert_error(<<"[00]">>, [<<"leading zero">>, <<"offset 1">>]).

invalid_number_test() ->
    assert_error(<<"-">>, [<<"invalid number">>, <<"a digit">>, <<"offset 1">>]),
    assert_error(<<"-a">>, [<<"invalid number">>, <<"found 'a'">>, <<"offset 1">>]),
    assert_error(<<"1.">>, [<<"invalid number">>, <<"after '.'">>, <<"offset 2">>]),
    assert_error(<<"1.e5">>, [<<"invalid number">>, <<"after '.'">>, <<"offset 2">>]),
    assert_error(<<"1e">>, [<<"invalid number">>, <<"exponent">>, <<"offset 2">>]),
    assert_error(<<"[1e+]">>, [<<"invalid number">>, <<"exponent">>, <<"found ']'">>, <<"offset 4">>]).

number_out_of_range_test() ->
    assert_error(<<"1E400">>, [<<"out of the double-precision range">>, <<"offset 0">>]),
    assert_error(<<"[0, -1.5e309]">>, [<<"out of the double-precision range">>, <<"offset 4">>]).

control_character_test() ->
    assert_error(<<"\"a\nb\"">>, [<<"control character 0x0A">>, <<"offset 2">>]),
    assert_error(<<"\"a\tb\"">>, [<<"control character 0x09">>, <<"offset 2">>]),
    %% also after an escape (the slow path)
    assert_error(<<"\"\\n\x00\"">>, [<<"control character 0x00">>, <<"offset 3">>]).

invalid_escape_test() ->
    assert_error(<<"\"\\x\"">>, [<<"invalid escape sequence">>, <<"\\x">>, <<"offset 1">>]),
    assert_error(<<"\"ab\\'\"">>, [<<"invalid escape sequence">>, <<"offset 3">>]),
    assert_error(<<"\"\\u12G4\"">>, [<<"invalid \\u escape">>, <<"\\u12G4">>, <<"offset 1">>]),
    assert_error(<<"\"\\u12\"">>, [<<"invalid \\u escape">>, <<"offset 1">>]),
    %% the escape after a high surrogate is checked as well
    assert_error(<<"\"\\ud83d\\uZZZZ\"">>, [<<"invalid \\u escape">>, <<"offset 7">>]).

invalid_utf8_test() ->
    assert_error(<<"\"", 16#FF, "\"">>, [<<"invalid UTF-8">>, <<"0xFF">>, <<"offset 1">>]),
    %% overlong encoding of '/', an encoded surrogate, a truncated sequence
    assert_error(<<"\"", 16#C0, 16#AF, "\"">>, [<<"invalid UTF-8">>, <<"offset 1">>]),
    assert_error(<<"\"a", 16#ED, 16#A0, 16#80, "\"">>, [<<"invalid UTF-8">>, <<"offset 2">>]),
    assert_error(<<"\"", 16#E2, 16#82, "\"">>, [<<"invalid UTF-8">>, <<"offset 1">>]),
    %% in the slow path after an escape
    assert_error(<<"\"\\n", 16#80, "\"">>, [<<"invalid UTF-8">>, <<"offset 3">>]).

non_binary_input_test() ->
    ?assertError(badarg, viva_tensor_json:decode("[]")).

%%--------------------------------------------------------------------
%% Encoding
%%--------------------------------------------------------------------

encode_literals_test() ->
    ?assertEqual(<<"true">>, ?ENC(true)),
    ?assertEqual(<<"false">>, ?ENC(false)),
    ?assertEqual(<<"null">>, ?ENC(null)),
    ?assertEqual(<<"\"other\"">>, ?ENC(other)).

encode_numbers_test() ->
    ?assertEqual(<<"0">>, ?ENC(0)),
    ?assertEqual(<<"-42">>, ?ENC(-42)),
    ?assertEqual(<<"12345678901234567890123">>, ?ENC(12345678901234567890123)),
    ?assertEqual(<<"1.5">>, ?ENC(1.5)),
    ?assertEqual(<<"0.1">>, ?ENC(0.1)),
    ?assertEqual(<<"1.0e-5">>, ?ENC(1.0e-5)),
    ?assertEqual(<<"-0.0">>, ?ENC(-0.0)),
    ?assertEqual(<<"1.0e300">>, ?ENC(1.0e300)),
    %% shortest representation that reads back to the same double
    ?assertEqual(<<"9.999999747378752e-6">>, ?ENC(9.999999747378752e-6)).

encode_strings_test() ->
    ?assertEqual(<<"\"\"">>, ?ENC(<<>>)),
    ?assertEqual(<<"\"plain\"">>, ?ENC(<<"plain">>)),
    ?assertEqual(
        <<"\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\fc\\u0001\\u001F/\"">>,
        ?ENC(<<"q\"b\\n\nr\rt\tb\bf\fc", 1, 16#1F, "/">>)
    ),
    %% non-ASCII is written as UTF-8, not escaped
    ?assertEqual(<<"\"é😀▁\""/utf8>>, ?ENC(<<"é😀▁"/utf8>>)),
    ?assertEqual(<<"\"a\\\"é\\\"\""/utf8>>, ?ENC(<<"a\"é\""/utf8>>)).

encode_containers_test() ->
    ?assertEqual(<<"[]">>, ?ENC([])),
    ?assertEqual(<<"{}">>, ?ENC(#{})),
    ?assertEqual(<<"[1,[2,[]],\"x\"]">>, ?ENC([1, [2, []], <<"x">>])),
    %% keys sorted, atom and binary keys alike
    ?assertEqual(
        <<"{\"a\":[true,false,null],\"b\":1,\"c\":{\"d\":\"e\"}}">>,
        ?ENC(#{<<"b">> => 1, a => [true, false, null], <<"c">> => #{d => e}})
    ).

encode_errors_test() ->
    ?assertError({unencodable, {1, 2}}, viva_tensor_json:encode({1, 2})),
    ?assertError({unencodable, _}, viva_tensor_json:encode(<<255>>)),
    ?assertError({unencodable, _}, viva_tensor_json:encode([1 | 2])),
    ?assertError({unencodable, _}, viva_tensor_json:encode(#{1 => 2})),
    ?assertError({unencodable, _}, viva_tensor_json:encode(self())).

roundtrip_terms_test() ->
    Terms = [
        #{<<"a">> => [1, 2.5, -3, <<"x\ny\"\\">>, true, false, null]},
        [#{}, [], <<>>, <<"é😀"/utf8>>, <<0, 31, 127>>],
        #{<<"nested">> => #{<<"deep">> => [[[#{<<"k">> => 1.0e-300}]]]}},
        [0.1, 1.0e22, 5.0e-324, 1.7976931348623157e308, -0.5, 123456789]
    ],
    [?assertEqual({ok, T}, ?D(?ENC(T))) || T <- Terms].

%%--------------------------------------------------------------------
%% Fixture files: decode, re-encode, decode again
%%--------------------------------------------------------------------

fixture_roundtrip_test_() ->
    Files = [
        "llama2-tokenizer/tokenizer.json",
        "llama2-tokenizer/vectors.json",
        "stories260k/reference.json",
        "stories260k/tokenizer.json",
        "stories260k/config.json",
        "bytelevel-tiny/reference.json",
        "bytelevel-tiny/tokenizer.json"
    ],
    [
        {F, {timeout, 60, fun() ->
            {ok, Term} = ?D(fixture(F)),
            ?assertEqual({ok, Term}, ?D(?ENC(Term)))
        end}}
     || F <- Files
    ].

llama2_tokenizer_content_test_() ->
    {timeout, 60, fun() ->
        {ok, T} = ?D(fixture("llama2-tokenizer/tokenizer.json")),
        #{<<"model">> := #{<<"vocab">> := Vocab, <<"merges">> := Merges}} = T,
        ?assertEqual(32000, map_size(Vocab)),
        ?assertEqual(61249, length(Merges)),
        ?assertEqual(1, maps:get(<<"<s>">>, Vocab)),
        ?assertEqual(29871, maps:get(<<"▁"/utf8>>, Vocab)),
        ?assertEqual([<<"▁"/utf8>>, <<"t">>], hd(Merges)),
        ?assertEqual(null, maps:get(<<"truncation">>, T))
    end}.
