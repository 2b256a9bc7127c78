%% @doc EUnit tests for viva_tensor_beam_tokenizer.
%%
%% References are independent of this code: the HF `tokenizers' outputs
%% stored in the fixtures (llama2-tokenizer/vectors.json,
%% stories260k/reference.json, bytelevel-tiny/reference.json) and small
%% synthetic tokenizer.json files built here whose expected ids are worked
%% out by hand from HF's documented semantics. Fixtures are read from
%% ../shared/fixtures next to the repo root, or from $VIVA_TENSOR_FIXTURES;
%% temporary files go under /tmp.
-module(viva_tensor_beam_tokenizer_tests).

-include_lib("eunit/include/eunit.hrl").

-define(TOK, viva_tensor_beam_tokenizer).
-define(FFFD, 16#FFFD/utf8).

%%====================================================================
%% Helpers
%%====================================================================

fixtures_dir() -> viva_tensor_fixtures:dir().

fixture_path(Rel) ->
    unicode:characters_to_binary(filename:join(fixtures_dir(), Rel)).

fixture_json(Rel) ->
    {ok, Bin} = file:read_file(fixture_path(Rel)),
    {ok, Term} = viva_tensor_json:decode(Bin),
    Term.

load_fixture(Rel) ->
    {ok, Tok} = ?TOK:load(fixture_path(Rel)),
    Tok.

tmp_dir() ->
    Dir = filename:join("/tmp", "vt_tokenizer_tests_" ++ os:getpid()),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

%% Writes a tokenizer.json built from a map into its own folder under /tmp
%% and loads it through load/1 (the same path users take).
load_map(Name, Map) ->
    Dir = filename:join(tmp_dir(), Name),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    File = filename:join(Dir, "tokenizer.json"),
    ok = file:write_file(File, viva_tensor_json:encode(Map)),
    {ok, Tok} = ?TOK:load(unicode:characters_to_binary(Dir)),
    Tok.

enc(Tok, Text) ->
    {ok, Ids} = ?TOK:encode(Tok, Text, false),
    Ids.

enc_special(Tok, Text) ->
    {ok, Ids} = ?TOK:encode(Tok, Text, true),
    Ids.

dec(Tok, Ids, Skip) ->
    {ok, Text} = ?TOK:decode(Tok, Ids, Skip),
    Text.

%% A vector from the fixtures: every field HF produced for one string.
check_vector(Tok, V) ->
    #{
        <<"text">> := Text,
        <<"ids_with_bos">> := WithBos,
        <<"ids_no_special">> := NoSpecial,
        <<"tokens_no_special">> := Pieces,
        <<"decode_skip_special">> := Skip,
        <<"decode_keep_special">> := Keep
    } = V,
    ?assertEqual({Text, WithBos}, {Text, enc_special(Tok, Text)}),
    ?assertEqual({Text, NoSpecial}, {Text, enc(Tok, Text)}),
    ?assertEqual({Text, Pieces}, {Text, [?TOK:id_to_token(Tok, I) || I <- NoSpecial]}),
    ?assertEqual({Text, Skip}, {Text, dec(Tok, WithBos, true)}),
    ?assertEqual({Text, Keep}, {Text, dec(Tok, WithBos, false)}).

vector_tests(Tok, Vectors) ->
    [
        {unicode:characters_to_binary(io_lib:format("~3..0b ~ts", [N, label(maps:get(<<"text">>, V))])),
            fun() -> check_vector(Tok, V) end}
     || {N, V} <- lists:zip(lists:seq(1, length(Vectors)), Vectors)
    ].

label(Text) ->
    Printable = <<<<(printable(C))/utf8>> || <<C/utf8>> <= Text>>,
    case string:length(Printable) > 30 of
        true -> [string:slice(Printable, 0, 30), "..."];
        false -> Printable
    end.

printable(C) when C < 32 -> $.;
printable(C) -> C.

%% GPT-2's byte alphabet, written out independently of the module: the
%% printable Latin-1 bytes stand for themselves, the other 68 bytes map to
%% U+0100, U+0101, ... in byte order.
gpt2_char(B) ->
    Printable = lists:seq($!, $~) ++ lists:seq(16#A1, 16#AC) ++ lists:seq(16#AE, 16#FF),
    case lists:member(B, Printable) of
        true -> B;
        false -> 256 + length([X || X <- lists:seq(0, B - 1), not lists:member(X, Printable)])
    end.

gpt2_token(Bytes) ->
    <<<<(gpt2_char(B))/utf8>> || <<B>> <= Bytes>>.

added_token(Id, Content, Special) ->
    added_token(Id, Content, Special, #{}).

added_token(Id, Content, Special, Flags) ->
    maps:merge(
        #{
            <<"id">> => Id,
            <<"content">> => Content,
            <<"single_word">> => false,
            <<"lstrip">> => false,
            <<"rstrip">> => false,
            <<"normalized">> => not Special,
            <<"special">> => Special
        },
        Flags
    ).

bpe_model(Vocab, Merges, Opts) ->
    maps:merge(
        #{
            <<"type">> => <<"BPE">>,
            <<"dropout">> => null,
            <<"unk_token">> => null,
            <<"continuing_subword_prefix">> => null,
            <<"end_of_word_suffix">> => null,
            <<"fuse_unk">> => false,
            <<"byte_fallback">> => false,
            <<"ignore_merges">> => false,
            <<"vocab">> => Vocab,
            <<"merges">> => Merges
        },
        Opts
    ).

tokenizer_json(Model, Fields) ->
    maps:merge(
        #{
            <<"version">> => <<"1.0">>,
            <<"truncation">> => null,
            <<"padding">> => null,
            <<"added_tokens">> => [],
            <<"normalizer">> => null,
            <<"pre_tokenizer">> => null,
            <<"post_processor">> => null,
            <<"decoder">> => null,
            <<"model">> => Model
        },
        Fields
    ).

%%====================================================================
%% Llama-2 tokenizer (real 32000-piece vocabulary): vectors.json
%%====================================================================

llama2_test_() ->
    {setup, fun() -> load_fixture("llama2-tokenizer") end, fun(Tok) ->
        #{<<"vectors">> := Vectors} = fixture_json("llama2-tokenizer/vectors.json"),
        [
            {"40 HF vectors", ?_assertEqual(40, length(Vectors))},
            {"lookups", fun() -> llama2_lookups(Tok) end},
            {"byte fallback decoding", fun() -> llama2_byte_fallback(Tok) end},
            {"long words (heap merge path)", fun() -> llama2_long_text(Tok, Vectors) end}
            | vector_tests(Tok, Vectors)
        ]
    end}.

llama2_lookups(Tok) ->
    ?assertEqual(32000, ?TOK:vocab_size(Tok)),
    ?assertEqual(1, ?TOK:bos_id(Tok)),
    ?assertEqual([0, 1, 2], ?TOK:special_ids(Tok)),
    ?assertEqual(1, ?TOK:token_to_id(Tok, <<"<s>">>)),
    ?assertEqual(2, ?TOK:token_to_id(Tok, <<"</s>">>)),
    ?assertEqual(29871, ?TOK:token_to_id(Tok, <<"▁"/utf8>>)),
    ?assertEqual(13, ?TOK:token_to_id(Tok, <<"<0x0A>">>)),
    ?assertEqual(undefined, ?TOK:token_to_id(Tok, <<"no such token">>)),
    ?assertEqual(<<"<unk>">>, ?TOK:id_to_token(Tok, 0)),
    ?assertEqual(<<"▁Hello"/utf8>>, ?TOK:id_to_token(Tok, 15043)),
    ?assertEqual(undefined, ?TOK:id_to_token(Tok, 32000)),
    ?assertEqual(undefined, ?TOK:id_to_token(Tok, -1)),
    %% ids the tokenizer does not know are skipped, as in HF
    ?assertEqual(<<"Hello">>, dec(Tok, [15043, 32000, 99999], true)),
    ?assertEqual({ok, [1]}, ?TOK:encode(Tok, <<>>, true)),
    ?assertEqual({ok, []}, ?TOK:encode(Tok, <<>>, false)),
    ?assertEqual({ok, <<>>}, ?TOK:decode(Tok, [], true)),
    %% chardata is accepted, invalid UTF-8 is not
    ?assertEqual({ok, [1, 15043, 3186]}, ?TOK:encode(Tok, "Hello world", true)),
    ?assertMatch({error, {invalid_option, _}}, ?TOK:encode(Tok, <<"a", 255>>, true)),
    ?assertMatch({error, {invalid_option, _}}, ?TOK:encode(Tok, <<16#E6, 16#97>>, true)).

%% Llama's decoder: Replace(▁→space), ByteFallback, Fuse, Strip(1 leading).
%% <0xE6> <0x97> <0xA5> are ids 233 154 168 (byte + 3); 263 is "▁a".
llama2_byte_fallback(Tok) ->
    ?assertEqual(<<"日"/utf8>>, dec(Tok, [233, 154, 168], true)),
    %% an invalid run gives one U+FFFD per byte of the run
    ?assertEqual(<<?FFFD, ?FFFD>>, dec(Tok, [233, 154], true)),
    ?assertEqual(<<?FFFD, ?FFFD, " a">>, dec(Tok, [233, 154, 263], true)),
    ?assertEqual(<<"a", ?FFFD>>, dec(Tok, [263, 233], true)),
    %% a valid run is decoded even when followed by an invalid one
    ?assertEqual(<<"日 a"/utf8, ?FFFD>>, dec(Tok, [233, 154, 168, 263, 233], true)),
    %% Strip removes exactly one leading space
    ?assertEqual(<<"a">>, dec(Tok, [263], true)),
    ?assertEqual(<<" a">>, dec(Tok, [29871, 263], true)).

%% For SentencePiece vocabularies no piece spans "x▁y", so the ids of
%% "X X ... X" are those of X repeated: an independent check of long words
%% (the whole normalized text is one BPE word here).
llama2_long_text(Tok, Vectors) ->
    Texts = [
        maps:get(<<"text">>, V)
     || V <- Vectors,
        lists:member(
            maps:get(<<"text">>, V),
            [<<"Hello world">>, <<"Once upon a time, there was a little girl named Lily.">>]
        )
    ],
    ?assertEqual(2, length(Texts)),
    lists:foreach(
        fun(Text) ->
            Ids = enc(Tok, Text),
            Long = iolist_to_binary(lists:join(<<" ">>, lists:duplicate(60, Text))),
            ?assertEqual(lists:append(lists:duplicate(60, Ids)), enc(Tok, Long)),
            ?assertEqual(Long, dec(Tok, enc_special(Tok, Long), true))
        end,
        Texts
    ).

%%====================================================================
%% stories260k: tokenizer_vectors, prompts and greedy continuations
%%====================================================================

stories260k_test_() ->
    {setup, fun() -> load_fixture("stories260k/tokenizer.json") end, fun(Tok) ->
        Ref = fixture_json("stories260k/reference.json"),
        Vectors = maps:get(<<"tokenizer_vectors">>, Ref),
        Cases = maps:get(<<"cases">>, Ref),
        [
            {"6 vectors, 4 cases", ?_assertEqual({6, 4}, {length(Vectors), length(Cases)})},
            {"lookups", fun() ->
                ?assertEqual(512, ?TOK:vocab_size(Tok)),
                ?assertEqual(1, ?TOK:bos_id(Tok)),
                ?assertEqual([0, 1, 2], ?TOK:special_ids(Tok))
            end}
        ] ++
            vector_tests(Tok, Vectors) ++
            [
                {iolist_to_binary(["case: ", maps:get(<<"prompt">>, C)]), fun() ->
                    #{
                        <<"prompt">> := Prompt,
                        <<"input_ids">> := InputIds,
                        <<"greedy_new_ids">> := New,
                        <<"greedy_new_text">> := NewText,
                        <<"full_text">> := Full
                    } = C,
                    ?assertEqual(InputIds, enc_special(Tok, Prompt)),
                    ?assertEqual(NewText, dec(Tok, New, true)),
                    ?assertEqual(Full, dec(Tok, InputIds ++ New, true))
                end}
             || C <- Cases
            ]
    end}.

%% The same tokenizer with merges in the older "a b" string form.
stories260k_string_merges_test() ->
    Json = fixture_json("stories260k/tokenizer.json"),
    #{<<"model">> := Model = #{<<"merges">> := Merges}} = Json,
    StringMerges = [<<A/binary, " ", B/binary>> || [A, B] <- Merges],
    {ok, Tok} = ?TOK:from_json(Json#{<<"model">> := Model#{<<"merges">> := StringMerges}}),
    Ref = fixture_json("stories260k/reference.json"),
    [check_vector(Tok, V) || V <- maps:get(<<"tokenizer_vectors">>, Ref)],
    [
        ?assertEqual(maps:get(<<"input_ids">>, C), enc_special(Tok, maps:get(<<"prompt">>, C)))
     || C <- maps:get(<<"cases">>, Ref)
    ].

%%====================================================================
%% bytelevel-tiny: GPT-2 style byte-level BPE
%%====================================================================

bytelevel_tiny_test_() ->
    {setup, fun() -> load_fixture("bytelevel-tiny") end, fun(Tok) ->
        Ref = fixture_json("bytelevel-tiny/reference.json"),
        Vectors = maps:get(<<"tokenizer_vectors">>, Ref),
        Cases = maps:get(<<"cases">>, Ref),
        [
            {"12 vectors, 3 cases", ?_assertEqual({12, 3}, {length(Vectors), length(Cases)})},
            {"lookups", fun() ->
                ?assertEqual(1752, ?TOK:vocab_size(Tok)),
                ?assertEqual(0, ?TOK:bos_id(Tok)),
                ?assertEqual([0, 1], ?TOK:special_ids(Tok)),
                ?assertEqual(<<"Ġ"/utf8>>, ?TOK:id_to_token(Tok, 222))
            end}
        ] ++
            vector_tests(Tok, Vectors) ++
            [
                {iolist_to_binary(["case: ", maps:get(<<"label">>, C)]), fun() ->
                    #{
                        <<"input_ids">> := InputIds,
                        <<"greedy_new_ids">> := New,
                        <<"greedy_new_text">> := NewText,
                        <<"full_text">> := Full
                    } = C,
                    %% random-model output: partial UTF-8 sequences decode to
                    %% U+FFFD (from_utf8_lossy) exactly like HF
                    ?assertEqual(NewText, dec(Tok, New, true)),
                    ?assertEqual(Full, dec(Tok, InputIds ++ New, true)),
                    %% the prompts were built from the text in the label
                    case maps:get(<<"label">>, C) of
                        <<"text:'", Rest/binary>> ->
                            Text = binary:part(Rest, 0, byte_size(Rest) - 1),
                            ?assertEqual(InputIds, enc_special(Tok, Text));
                        _ ->
                            ok
                    end
                end}
             || C <- Cases
            ]
    end}.

%%====================================================================
%% Synthetic Llama-3 layout: Split(regex) + ByteLevel(use_regex=false),
%% ignore_merges, special tokens at the end of the vocabulary
%%====================================================================

-define(LLAMA3_PATTERN,
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
).

%% Vocabulary: id B is the byte-level token of byte B (0..255), then
%% 256 he, 257 ll, 258 hell, 259 hello, 260 Ġw, 261 Ġworld (no merge path
%% builds it), 262 34; added: 263 <|begin_of_text|>, 264 <|end_of_text|>.
llama3_json(IgnoreMerges) ->
    Bytes = [{gpt2_token(<<B>>), B} || B <- lists:seq(0, 255)],
    Extra = [
        {<<"he">>, 256},
        {<<"ll">>, 257},
        {<<"hell">>, 258},
        {<<"hello">>, 259},
        {gpt2_token(<<" w">>), 260},
        {gpt2_token(<<" world">>), 261},
        {<<"34">>, 262}
    ],
    Merges = [
        [<<"h">>, <<"e">>],
        [<<"l">>, <<"l">>],
        [<<"he">>, <<"ll">>],
        [<<"hell">>, <<"o">>],
        [gpt2_token(<<" ">>), <<"w">>],
        [<<"3">>, <<"4">>]
    ],
    Model = bpe_model(maps:from_list(Bytes ++ Extra), Merges, #{<<"ignore_merges">> => IgnoreMerges}),
    tokenizer_json(Model, #{
        <<"added_tokens">> => [
            added_token(263, <<"<|begin_of_text|>">>, true),
            added_token(264, <<"<|end_of_text|>">>, true)
        ],
        <<"pre_tokenizer">> => #{
            <<"type">> => <<"Sequence">>,
            <<"pretokenizers">> => [
                #{
                    <<"type">> => <<"Split">>,
                    <<"pattern">> => #{<<"Regex">> => <<?LLAMA3_PATTERN>>},
                    <<"behavior">> => <<"Isolated">>,
                    <<"invert">> => false
                },
                #{
                    <<"type">> => <<"ByteLevel">>,
                    <<"add_prefix_space">> => false,
                    <<"trim_offsets">> => true,
                    <<"use_regex">> => false
                }
            ]
        },
        <<"post_processor">> => #{
            <<"type">> => <<"Sequence">>,
            <<"processors">> => [
                #{
                    <<"type">> => <<"ByteLevel">>,
                    <<"add_prefix_space">> => true,
                    <<"trim_offsets">> => false,
                    <<"use_regex">> => true
                },
                #{
                    <<"type">> => <<"TemplateProcessing">>,
                    <<"single">> => [
                        #{<<"SpecialToken">> => #{<<"id">> => <<"<|begin_of_text|>">>, <<"type_id">> => 0}},
                        #{<<"Sequence">> => #{<<"id">> => <<"A">>, <<"type_id">> => 0}}
                    ],
                    <<"pair">> => [],
                    <<"special_tokens">> => #{
                        <<"<|begin_of_text|>">> => #{
                            <<"id">> => <<"<|begin_of_text|>">>,
                            <<"ids">> => [263],
                            <<"tokens">> => [<<"<|begin_of_text|>">>]
                        }
                    }
                }
            ]
        },
        <<"decoder">> => #{
            <<"type">> => <<"ByteLevel">>,
            <<"add_prefix_space">> => true,
            <<"trim_offsets">> => true,
            <<"use_regex">> => true
        }
    }).

llama3_layout_test() ->
    Tok = load_map("llama3", llama3_json(true)),
    ?assertEqual(265, ?TOK:vocab_size(Tok)),
    ?assertEqual(263, ?TOK:bos_id(Tok)),
    ?assertEqual([263, 264], ?TOK:special_ids(Tok)),
    ?assertEqual(264, ?TOK:token_to_id(Tok, <<"<|end_of_text|>">>)),
    ?assertEqual(<<"Ġworld"/utf8>>, ?TOK:id_to_token(Tok, 261)),
    %% "hello", " world" -> hello (merges), Ġworld (whole word in the vocab)
    ?assertEqual([259, 261], enc(Tok, <<"hello world">>)),
    ?assertEqual([263, 259, 261], enc_special(Tok, <<"hello world">>)),
    %% " worlds" is not in the vocab: Ġ w o r l d s with the Ġ+w merge
    ?assertEqual([259, 260, $o, $r, $l, $d, $s], enc(Tok, <<"hello worlds">>)),
    %% " hello" -> Ġ + the four merges on "hello"
    ?assertEqual([$I, $', $M, $\s, 259], enc(Tok, <<"I'M hello">>)),
    %% digits go in groups of three: "123" "4", so 3+4 never merge
    ?assertEqual([$1, $2, $3, $4], enc(Tok, <<"1234">>)),
    ?assertEqual([262], enc(Tok, <<"34">>)),
    ?assertEqual([262, $3, $4], enc(Tok, <<"3434">>)),
    %% newlines are their own piece (Ċ = byte 10)
    ?assertEqual([259, 10, 10, $w, $o, $r, $l, $d], enc(Tok, <<"hello\n\nworld">>)),
    %% "é" is bytes C3 A9
    ?assertEqual([16#C3, 16#A9], enc(Tok, <<"é"/utf8>>)),
    %% special tokens written in the text
    ?assertEqual([264, 259], enc(Tok, <<"<|end_of_text|>hello">>)),
    ?assertEqual([263, 263, 259, 264], enc_special(Tok, <<"<|begin_of_text|>hello<|end_of_text|>">>)),
    %% decoding
    ?assertEqual(<<"hello world">>, dec(Tok, [263, 259, 261], true)),
    ?assertEqual(<<"<|begin_of_text|>hello world">>, dec(Tok, [263, 259, 261], false)),
    ?assertEqual(<<"é"/utf8>>, dec(Tok, [16#C3, 16#A9], true)),
    %% from_utf8_lossy: one U+FFFD per maximal invalid subsequence
    ?assertEqual(<<?FFFD>>, dec(Tok, [16#C3], true)),
    ?assertEqual(<<?FFFD>>, dec(Tok, [16#E6, 16#97], true)),
    ?assertEqual(<<?FFFD, "a">>, dec(Tok, [16#F0, 16#9F, 16#98, $a], true)),
    ?assertEqual(<<?FFFD, ?FFFD>>, dec(Tok, [16#C0, 16#80], true)),
    ?assertEqual(<<?FFFD, ?FFFD, ?FFFD>>, dec(Tok, [16#ED, 16#A0, 16#80], true)),
    ?assertEqual(<<"a", ?FFFD, "日"/utf8>>, dec(Tok, [$a, 16#FF, 16#E6, 16#97, 16#A5], true)).

llama3_without_ignore_merges_test() ->
    Tok = load_map("llama3_merges", llama3_json(false)),
    %% " world" now has to be built by merges: only Ġ+w exists
    ?assertEqual([259, 260, $o, $r, $l, $d], enc(Tok, <<"hello world">>)).

%%====================================================================
%% Synthetic SentencePiece layout with a Metaspace pre-tokenizer
%%====================================================================

%% 0 <unk> 1 <s> 2 </s> 3 ▁ 4 a 5 b 6 ▁a 7 ▁ab; merges ▁+a, ▁a+b.
metaspace_json(Scheme, FuseUnk) ->
    Vocab = #{
        <<"<unk>">> => 0,
        <<"<s>">> => 1,
        <<"</s>">> => 2,
        <<"▁"/utf8>> => 3,
        <<"a">> => 4,
        <<"b">> => 5,
        <<"▁a"/utf8>> => 6,
        <<"▁ab"/utf8>> => 7
    },
    Merges = [[<<"▁"/utf8>>, <<"a">>], [<<"▁a"/utf8>>, <<"b">>]],
    Meta = #{
        <<"type">> => <<"Metaspace">>,
        <<"replacement">> => <<"▁"/utf8>>,
        <<"prepend_scheme">> => Scheme,
        <<"split">> => true
    },
    tokenizer_json(
        bpe_model(Vocab, Merges, #{<<"unk_token">> => <<"<unk>">>, <<"fuse_unk">> => FuseUnk}),
        #{
            <<"added_tokens">> => [
                added_token(0, <<"<unk>">>, true),
                added_token(1, <<"<s>">>, true),
                added_token(2, <<"</s>">>, true)
            ],
            <<"pre_tokenizer">> => Meta,
            <<"decoder">> => Meta,
            <<"post_processor">> => #{
                <<"type">> => <<"TemplateProcessing">>,
                <<"single">> => [
                    #{<<"SpecialToken">> => #{<<"id">> => <<"<s>">>, <<"type_id">> => 0}},
                    #{<<"Sequence">> => #{<<"id">> => <<"A">>, <<"type_id">> => 0}}
                ],
                <<"special_tokens">> => #{
                    <<"<s>">> => #{<<"id">> => <<"<s>">>, <<"ids">> => [1], <<"tokens">> => [<<"<s>">>]}
                }
            }
        }
    ).

metaspace_first_test() ->
    {ok, Tok} = ?TOK:from_json(metaspace_json(<<"first">>, true)),
    %% "▁ab▁ab" split before each ▁
    ?assertEqual([7, 7], enc(Tok, <<"ab ab">>)),
    ?assertEqual([1, 7, 7], enc_special(Tok, <<"ab ab">>)),
    %% "▁ab▁▁b": MergedWithNext gives ▁ab | ▁ | ▁b
    ?assertEqual([7, 3, 3, 5], enc(Tok, <<"ab  b">>)),
    %% unknown characters: x y z fused into one <unk>
    ?assertEqual([3, 0, 6], enc(Tok, <<"xyz a">>)),
    %% "first": no ▁ for a piece that does not start the text
    ?assertEqual([1, 4, 5], enc(Tok, <<"<s>ab">>)),
    ?assertEqual([7, 2, 4, 5], enc(Tok, <<"ab</s>ab">>)),
    %% decoder: the replacement becomes a space, dropped in the first token
    ?assertEqual(<<"ab ab">>, dec(Tok, [1, 7, 7], true)),
    ?assertEqual(<<"<s> ab ab">>, dec(Tok, [1, 7, 7], false)),
    ?assertEqual(<<"ab b">>, dec(Tok, [7, 3, 5], true)),
    ?assertEqual(1, ?TOK:bos_id(Tok)).

metaspace_always_never_test() ->
    {ok, Always} = ?TOK:from_json(metaspace_json(<<"always">>, false)),
    ?assertEqual([1, 7], enc(Always, <<"<s>ab">>)),
    %% without fuse_unk every unknown character is its own <unk>
    ?assertEqual([3, 0, 0, 0, 6], enc(Always, <<"xyz a">>)),
    {ok, Never} = ?TOK:from_json(metaspace_json(<<"never">>, true)),
    ?assertEqual([4, 5, 7], enc(Never, <<"ab ab">>)),
    ?assertEqual(<<" ab">>, dec(Never, [7], true)),
    %% legacy form: add_prefix_space instead of prepend_scheme
    Legacy = metaspace_json(null, true),
    #{<<"pre_tokenizer">> := Meta} = Legacy,
    Meta1 = maps:put(<<"add_prefix_space">>, true, maps:remove(<<"prepend_scheme">>, Meta)),
    {ok, LegacyTok} = ?TOK:from_json(Legacy#{<<"pre_tokenizer">> := Meta1, <<"decoder">> := Meta1}),
    ?assertEqual([1, 7], enc(LegacyTok, <<"<s>ab">>)).

%%====================================================================
%% Added tokens: flags, longest match, normalized matching
%%====================================================================

%% Character vocabulary: a..z = 1..26, " " = 27, "-" = 28, "<" 29, ">" 30.
char_vocab() ->
    maps:from_list(
        [{<<C>>, C - $a + 1} || C <- lists:seq($a, $z)] ++
            [{<<" ">>, 27}, {<<"-">>, 28}, {<<"<">>, 29}, {<<">">>, 30}]
    ).

added_flags_json() ->
    tokenizer_json(bpe_model(char_vocab(), [], #{}), #{
        <<"normalizer">> => #{<<"type">> => <<"Lowercase">>},
        <<"added_tokens">> => [
            added_token(100, <<"<L>">>, true, #{<<"lstrip">> => true}),
            added_token(101, <<"<R>">>, true, #{<<"rstrip">> => true}),
            added_token(102, <<"sw">>, false, #{<<"single_word">> => true, <<"normalized">> => false}),
            added_token(103, <<"TOK">>, false, #{<<"normalized">> => true}),
            added_token(104, <<"qq">>, false, #{<<"normalized">> => false}),
            added_token(105, <<"qqq">>, false, #{<<"normalized">> => false})
        ]
    }).

added_tokens_test() ->
    {ok, Tok} = ?TOK:from_json(added_flags_json()),
    A = 1,
    B = 2,
    Sp = 27,
    %% lstrip eats the whitespace before the token, rstrip the one after
    ?assertEqual([A, 100, B], enc(Tok, <<"a  <L>b">>)),
    ?assertEqual([A, 101, B], enc(Tok, <<"a<R> \t b">>)),
    ?assertEqual([A, Sp, 101, B], enc(Tok, <<"a <R> b">>)),
    %% single_word: only when no word character touches it
    ?assertEqual([102], enc(Tok, <<"sw">>)),
    ?assertEqual([A, Sp, 102, Sp, B], enc(Tok, <<"a sw b">>)),
    ?assertEqual([102, 28, A], enc(Tok, <<"sw-a">>)),
    ?assertEqual([A, $s - $a + 1, $w - $a + 1], enc(Tok, <<"asw">>)),
    ?assertEqual([$s - $a + 1, $w - $a + 1, A], enc(Tok, <<"swa">>)),
    %% normalized tokens match the normalized text (Lowercase: "TOK" -> "tok")
    ?assertEqual([A, Sp, 103, Sp, B], enc(Tok, <<"a TOK b">>)),
    ?assertEqual([A, Sp, 103, Sp, B], enc(Tok, <<"A tok B">>)),
    %% leftmost-longest: "qqq" wins over "qq" at the same position
    ?assertEqual([105, $q - $a + 1], enc(Tok, <<"qqqq">>)),
    ?assertEqual([A, 104, A], enc(Tok, <<"aqqa">>)),
    %% no decoder: tokens joined with spaces (HF); special ones skipped
    ?assertEqual(<<"a b">>, dec(Tok, [A, 100, B], true)),
    ?assertEqual(<<"a <L> b">>, dec(Tok, [A, 100, B], false)),
    ?assertEqual([100, 101], ?TOK:special_ids(Tok)),
    ?assertEqual(undefined, ?TOK:bos_id(Tok)),
    %% encode with AddSpecial and no post-processor adds nothing
    ?assertEqual([A], enc_special(Tok, <<"a">>)).

%%====================================================================
%% Split behaviors, other pre-tokenizers, normalizers
%%====================================================================

%% Vocabulary a=1 b=2 c=3 d=4 -=5 a-=6 -b=7 --=8, merges a+-, -+b, -+-.
split_json(PreTok) ->
    Vocab = #{
        <<"a">> => 1,
        <<"b">> => 2,
        <<"c">> => 3,
        <<"d">> => 4,
        <<"-">> => 5,
        <<"a-">> => 6,
        <<"-b">> => 7,
        <<"--">> => 8
    },
    Merges = [[<<"a">>, <<"-">>], [<<"-">>, <<"b">>], [<<"-">>, <<"-">>]],
    tokenizer_json(bpe_model(Vocab, Merges, #{}), #{<<"pre_tokenizer">> => PreTok}).

split_tok(Behavior) ->
    split_tok(#{<<"String">> => <<"-">>}, Behavior, false).

split_tok(Pattern, Behavior, Invert) ->
    {ok, Tok} = ?TOK:from_json(
        split_json(#{
            <<"type">> => <<"Split">>,
            <<"pattern">> => Pattern,
            <<"behavior">> => Behavior,
            <<"invert">> => Invert
        })
    ),
    Tok.

split_behaviors_test() ->
    {ok, NoPre} = ?TOK:from_json(split_json(null)),
    ?assertEqual([6, 2], enc(NoPre, <<"a-b">>)),
    ?assertEqual([1, 2], enc(split_tok(<<"Removed">>), <<"a-b">>)),
    ?assertEqual([1, 5, 2], enc(split_tok(<<"Isolated">>), <<"a-b">>)),
    ?assertEqual([6, 2], enc(split_tok(<<"MergedWithPrevious">>), <<"a-b">>)),
    ?assertEqual([1, 7], enc(split_tok(<<"MergedWithNext">>), <<"a-b">>)),
    ?assertEqual([1, 5, 2], enc(split_tok(<<"Contiguous">>), <<"a-b">>)),
    %% consecutive matches: Contiguous joins them, Isolated does not
    ?assertEqual([1, 8, 2], enc(split_tok(<<"Contiguous">>), <<"a--b">>)),
    ?assertEqual([1, 5, 5, 2], enc(split_tok(<<"Isolated">>), <<"a--b">>)),
    %% MergedWithPrevious: "a-" "-b"... the second match follows a match
    ?assertEqual([6, 5, 2], enc(split_tok(<<"MergedWithPrevious">>), <<"a--b">>)),
    %% MergedWithNext: "a" "-" "-b"
    ?assertEqual([1, 5, 7], enc(split_tok(<<"MergedWithNext">>), <<"a--b">>)),
    %% invert: the matches are the pieces, the rest is the delimiter
    InvRemoved = split_tok(#{<<"Regex">> => <<"[a-d]+">>}, <<"Removed">>, true),
    ?assertEqual([1, 2, 3, 4], enc(InvRemoved, <<"ab-cd">>)),
    ?assertEqual([1, 2], enc(InvRemoved, <<"a-b">>)),
    InvIsolated = split_tok(#{<<"Regex">> => <<"-">>}, <<"Removed">>, true),
    ?assertEqual([5, 5], enc(InvIsolated, <<"a--b">>)).

other_pre_tokenizers_test() ->
    Vocab = maps:merge(char_vocab(), #{
        <<"1">> => 40, <<"2">> => 41, <<"12">> => 42, <<",">> => 43, <<"!">> => 44,
        <<"ab">> => 45, <<"b ">> => 46
    }),
    Merges = [[<<"1">>, <<"2">>], [<<"b">>, <<" ">>], [<<"a">>, <<"b">>]],
    Make = fun(Pre) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(bpe_model(Vocab, Merges, #{}), #{<<"pre_tokenizer">> => Pre})),
        T
    end,
    None = Make(null),
    ?assertEqual([1, 42], enc(None, <<"a12">>)),
    Individual = Make(#{<<"type">> => <<"Digits">>, <<"individual_digits">> => true}),
    ?assertEqual([1, 40, 41], enc(Individual, <<"a12">>)),
    Grouped = Make(#{<<"type">> => <<"Digits">>, <<"individual_digits">> => false}),
    ?assertEqual([1, 42, 2], enc(Grouped, <<"a12b">>)),
    %% without a pre-tokenizer "b " (rank 1) wins over "ab" (rank 2);
    %% WhitespaceSplit drops the whitespace first
    ?assertEqual([1, 46, 27, 45], enc(None, <<"ab  ab">>)),
    WsSplit = Make(#{<<"type">> => <<"WhitespaceSplit">>}),
    ?assertEqual([45, 45], enc(WsSplit, <<"ab  ab">>)),
    %% Whitespace: \w+ | [^\w\s]+
    Ws = Make(#{<<"type">> => <<"Whitespace">>}),
    ?assertEqual([45, 43, 3, 4, 44], enc(Ws, <<"ab, cd!">>)),
    %% Sequence of two
    Seq = Make(#{
        <<"type">> => <<"Sequence">>,
        <<"pretokenizers">> => [
            #{<<"type">> => <<"WhitespaceSplit">>},
            #{<<"type">> => <<"Digits">>, <<"individual_digits">> => true}
        ]
    }),
    ?assertEqual([45, 40, 41, 1], enc(Seq, <<" ab 12a ">>)),
    %% ByteLevel with add_prefix_space and the GPT-2 regex
    BL = Make(#{<<"type">> => <<"ByteLevel">>, <<"add_prefix_space">> => true, <<"use_regex">> => true}),
    %% "ab" -> " ab" -> "Ġab": Ġ is not in this vocabulary (dropped, no unk)
    ?assertEqual([45], enc(BL, <<"ab">>)).

normalizers_test() ->
    Vocab = maps:merge(char_vocab(), #{
        <<"é"/utf8>> => 50, <<"e\x{301}"/utf8>> => 51, <<"_">> => 52, <<"\x{301}"/utf8>> => 53
    }),
    Make = fun(Norm) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(bpe_model(Vocab, [], #{}), #{<<"normalizer">> => Norm})),
        T
    end,
    Decomposed = <<"e", 16#301/utf8>>,
    ?assertEqual([5, 53], enc(Make(null), Decomposed)),
    ?assertEqual([50], enc(Make(#{<<"type">> => <<"NFC">>}), Decomposed)),
    ?assertEqual([5, 53], enc(Make(#{<<"type">> => <<"NFD">>}), <<"é"/utf8>>)),
    %% NFKC: the "fi" ligature U+FB01 becomes "fi"
    ?assertEqual([6, 9], enc(Make(#{<<"type">> => <<"NFKC">>}), <<16#FB01/utf8>>)),
    ?assertEqual([6, 9], enc(Make(#{<<"type">> => <<"NFKD">>}), <<16#FB01/utf8>>)),
    ?assertEqual([1, 2], enc(Make(#{<<"type">> => <<"Lowercase">>}), <<"AB">>)),
    Regex = Make(#{
        <<"type">> => <<"Replace">>,
        <<"pattern">> => #{<<"Regex">> => <<" +">>},
        <<"content">> => <<"_">>
    }),
    ?assertEqual([1, 52, 2, 52, 3], enc(Regex, <<"a   b c">>)),
    %% the content is inserted verbatim (no \1 or & expansion)
    Amp = Make(#{
        <<"type">> => <<"Replace">>,
        <<"pattern">> => #{<<"Regex">> => <<"b">>},
        <<"content">> => <<"&">>
    }),
    ?assertEqual([1], enc(Amp, <<"ab">>)),
    Strip = Make(#{<<"type">> => <<"Strip">>, <<"strip_left">> => true, <<"strip_right">> => true}),
    ?assertEqual([1, 27, 2], enc(Strip, <<"  a b \t">>)),
    Seq = Make(#{
        <<"type">> => <<"Sequence">>,
        <<"normalizers">> => [
            #{<<"type">> => <<"Lowercase">>},
            #{<<"type">> => <<"Prepend">>, <<"prepend">> => <<"_">>},
            #{<<"type">> => <<"Replace">>, <<"pattern">> => #{<<"String">> => <<" ">>}, <<"content">> => <<"_">>}
        ]
    }),
    ?assertEqual([52, 1, 52, 2], enc(Seq, <<"A B">>)),
    ?assertEqual([], enc(Seq, <<>>)).

decoders_test() ->
    Vocab = maps:merge(char_vocab(), #{<<"_">> => 52, <<"_a_">> => 60, <<"__b">> => 61}),
    Make = fun(Dec) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(bpe_model(Vocab, [], #{}), #{<<"decoder">> => Dec})),
        T
    end,
    %% Strip per token (no Fuse): both ends, up to the given counts
    Strip = Make(#{<<"type">> => <<"Strip">>, <<"content">> => <<"_">>, <<"start">> => 1, <<"stop">> => 1}),
    ?assertEqual(<<"a_b">>, dec(Strip, [60, 61], true)),
    Seq = Make(#{
        <<"type">> => <<"Sequence">>,
        <<"decoders">> => [
            #{<<"type">> => <<"Replace">>, <<"pattern">> => #{<<"String">> => <<"_">>}, <<"content">> => <<" ">>},
            #{<<"type">> => <<"Fuse">>},
            #{<<"type">> => <<"Strip">>, <<"content">> => <<" ">>, <<"start">> => 2, <<"stop">> => 1}
        ]
    }),
    %% "___a_b__" -> "   a b  " -> two leading and one trailing space cut
    ?assertEqual(<<" a b ">>, dec(Seq, [52, 52, 52, 1, 52, 2, 52, 52], true)).

%%====================================================================
%% Errors
%%====================================================================

load_errors_test() ->
    Missing = <<"/nonexistent/viva_tensor/tokenizer.json">>,
    {error, {not_found, Msg1}} = ?TOK:load(Missing),
    ?assertNotEqual(nomatch, binary:match(Msg1, Missing)),
    EmptyDir = filename:join(tmp_dir(), "empty_folder"),
    ok = filelib:ensure_dir(filename:join(EmptyDir, "x")),
    {error, {not_found, Msg2}} = ?TOK:load(unicode:characters_to_binary(EmptyDir)),
    ?assertNotEqual(nomatch, binary:match(Msg2, <<"tokenizer.json">>)),
    Bad = filename:join(tmp_dir(), "bad.json"),
    ok = file:write_file(Bad, <<"{\"model\": {\"type\": \"BPE\",}">>),
    {error, {invalid_tokenizer, Msg3}} = ?TOK:load(Bad),
    ?assertNotEqual(nomatch, binary:match(Msg3, <<"invalid JSON">>)),
    ?assertNotEqual(nomatch, binary:match(Msg3, <<"byte offset 25">>)),
    ?assertNotEqual(nomatch, binary:match(Msg3, <<"bad.json">>)),
    %% a string path works too
    ?assertMatch({ok, _}, ?TOK:load(filename:join(fixtures_dir(), "stories260k"))).

unsupported_components_test() ->
    Base = tokenizer_json(bpe_model(#{<<"a">> => 0}, [], #{}), #{}),
    Expect = fun(Json, Name) ->
        {error, {invalid_tokenizer, Msg}} = ?TOK:from_json(Json),
        ?assertNotEqual({Msg, nomatch}, {Msg, binary:match(Msg, Name)})
    end,
    Expect(Base#{<<"model">> := #{<<"type">> => <<"WordPiece">>, <<"vocab">> => #{}}}, <<"WordPiece">>),
    Expect(Base#{<<"model">> := #{<<"type">> => <<"Unigram">>, <<"vocab">> => []}}, <<"Unigram">>),
    Expect(maps:remove(<<"model">>, Base), <<"no model">>),
    Expect(Base#{<<"normalizer">> := #{<<"type">> => <<"BertNormalizer">>}}, <<"BertNormalizer">>),
    Expect(Base#{<<"normalizer">> := #{<<"type">> => <<"Precompiled">>}}, <<"Precompiled">>),
    Expect(Base#{<<"pre_tokenizer">> := #{<<"type">> => <<"BertPreTokenizer">>}}, <<"BertPreTokenizer">>),
    Expect(Base#{<<"decoder">> := #{<<"type">> => <<"WordPiece">>}}, <<"WordPiece">>),
    Expect(Base#{<<"post_processor">> := #{<<"type">> => <<"Fancy">>}}, <<"Fancy">>),
    Expect(
        Base#{<<"pre_tokenizer">> := #{<<"type">> => <<"Split">>, <<"pattern">> => #{<<"Regex">> => <<"(">>}}},
        <<"regex">>
    ),
    Expect(
        Base#{<<"model">> := bpe_model(#{<<"a">> => 0}, [[<<"a">>, <<"zz">>]], #{})},
        <<"zz">>
    ),
    Expect(Base#{<<"model">> := bpe_model(#{<<"a">> => 0}, [<<"a b c">>], #{})}, <<"a b c">>),
    ?assertMatch({error, {invalid_tokenizer, _}}, ?TOK:from_json(<<"{}">>)),
    %% an unsupported type inside a file is reported with the path
    {error, {invalid_tokenizer, Msg}} = ?TOK:load(
        begin
            F = filename:join(tmp_dir(), "wordpiece.json"),
            ok = file:write_file(F, viva_tensor_json:encode(Base#{<<"model">> := #{<<"type">> => <<"WordPiece">>}})),
            unicode:characters_to_binary(F)
        end
    ),
    ?assertNotEqual(nomatch, binary:match(Msg, <<"wordpiece.json: unsupported model type \"WordPiece\"">>)).

%%====================================================================
%% Smaller model options and other components
%%====================================================================

model_options_test() ->
    Make = fun(Vocab, Merges, Opts) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(bpe_model(Vocab, Merges, Opts), #{})),
        T
    end,
    %% unk handling: one <unk> per unknown character, or fused runs
    Unk = #{<<"<unk>">> => 0, <<"a">> => 1, <<"b">> => 2},
    NotFused = Make(Unk, [], #{<<"unk_token">> => <<"<unk>">>}),
    ?assertEqual([1, 0, 0, 2], enc(NotFused, <<"accb">>)),
    Fused = Make(Unk, [], #{<<"unk_token">> => <<"<unk>">>, <<"fuse_unk">> => true}),
    ?assertEqual([1, 0, 2], enc(Fused, <<"accb">>)),
    %% without an unk token, unknown characters are dropped
    NoUnk = Make(Unk, [], #{}),
    ?assertEqual([1, 2], enc(NoUnk, <<"acb">>)),
    %% byte fallback: a character outside the vocabulary becomes its bytes
    %% when they all have <0xXX> tokens, else <unk>
    Bytes = Make(
        #{<<"<unk>">> => 0, <<"<0x61>">> => 1, <<"<0xC3>">> => 2, <<"<0xA9>">> => 3},
        [],
        #{<<"unk_token">> => <<"<unk>">>, <<"byte_fallback">> => true}
    ),
    ?assertEqual([1], enc(Bytes, <<"a">>)),
    ?assertEqual([2, 3], enc(Bytes, <<"é"/utf8>>)),
    ?assertEqual([0], enc(Bytes, <<"c">>)),
    %% continuing_subword_prefix: merges join "a" + "##b" into "ab"
    Prefix = Make(
        #{<<"a">> => 0, <<"##b">> => 1, <<"##c">> => 2, <<"ab">> => 3, <<"abc">> => 4},
        [[<<"a">>, <<"##b">>], [<<"ab">>, <<"##c">>]],
        #{<<"continuing_subword_prefix">> => <<"##">>}
    ),
    ?assertEqual([3], enc(Prefix, <<"ab">>)),
    ?assertEqual([4], enc(Prefix, <<"abc">>)),
    ?assertEqual([0, 2], enc(Prefix, <<"ac">>)),
    %% end_of_word_suffix on the last character
    Suffix = Make(
        #{<<"a">> => 0, <<"b</w>">> => 1, <<"ab</w>">> => 2, <<"b">> => 3},
        [[<<"a">>, <<"b</w>">>]],
        #{<<"end_of_word_suffix">> => <<"</w>">>}
    ),
    ?assertEqual([2], enc(Suffix, <<"ab">>)),
    ?assertEqual([1], enc(Suffix, <<"b">>)),
    ?assertEqual([3, 1], enc(Suffix, <<"bb">>)),
    %% a pair listed twice keeps its last rank (HF builds a map)
    Dup = Make(
        #{<<"a">> => 0, <<"b">> => 1, <<"c">> => 2, <<"ab">> => 3, <<"bc">> => 4},
        [[<<"a">>, <<"b">>], [<<"b">>, <<"c">>], [<<"a">>, <<"b">>]],
        #{}
    ),
    ?assertEqual([0, 4], enc(Dup, <<"abc">>)).

post_processors_test() ->
    Vocab = maps:merge(char_vocab(), #{<<"[CLS]">> => 101, <<"[SEP]">> => 102}),
    Make = fun(Post) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(bpe_model(Vocab, [], #{}), #{
            <<"added_tokens">> => [
                added_token(101, <<"[CLS]">>, true),
                added_token(102, <<"[SEP]">>, true)
            ],
            <<"post_processor">> => Post
        })),
        T
    end,
    Bert = Make(#{<<"type">> => <<"BertProcessing">>, <<"sep">> => [<<"[SEP]">>, 102], <<"cls">> => [<<"[CLS]">>, 101]}),
    ?assertEqual([101, 1, 2, 102], enc_special(Bert, <<"ab">>)),
    ?assertEqual([1, 2], enc(Bert, <<"ab">>)),
    ?assertEqual(101, ?TOK:bos_id(Bert)),
    Roberta = Make(#{
        <<"type">> => <<"RobertaProcessing">>,
        <<"sep">> => [<<"[SEP]">>, 102],
        <<"cls">> => [<<"[CLS]">>, 101],
        <<"trim_offsets">> => true,
        <<"add_prefix_space">> => false
    }),
    ?assertEqual([101, 1, 102], enc_special(Roberta, <<"a">>)),
    %% a template that only appends: no BOS
    Eos = Make(#{
        <<"type">> => <<"TemplateProcessing">>,
        <<"single">> => [
            #{<<"Sequence">> => #{<<"id">> => <<"A">>, <<"type_id">> => 0}},
            #{<<"SpecialToken">> => #{<<"id">> => <<"[SEP]">>, <<"type_id">> => 0}}
        ],
        <<"special_tokens">> => #{<<"[SEP]">> => #{<<"id">> => <<"[SEP]">>, <<"ids">> => [102], <<"tokens">> => [<<"[SEP]">>]}}
    }),
    ?assertEqual([1, 102], enc_special(Eos, <<"a">>)),
    ?assertEqual(undefined, ?TOK:bos_id(Eos)),
    Punct = Make(null),
    ?assertEqual(<<"a b">>, dec(Punct, [101, 1, 2, 102], true)),
    ?assertError(badarg, ?TOK:decode(Punct, [1, foo], true)).

punctuation_test() ->
    Vocab = maps:merge(char_vocab(), #{<<",">> => 40, <<"a,">> => 41, <<"«"/utf8>> => 42}),
    Make = fun(Pre) ->
        {ok, T} = ?TOK:from_json(tokenizer_json(
            bpe_model(Vocab, [[<<"a">>, <<",">>]], #{}),
            #{<<"pre_tokenizer">> => Pre}
        )),
        T
    end,
    ?assertEqual([41, 2], enc(Make(null), <<"a,b">>)),
    ?assertEqual([1, 40, 2], enc(Make(#{<<"type">> => <<"Punctuation">>, <<"behavior">> => <<"Isolated">>}), <<"a,b">>)),
    ?assertEqual([41, 2], enc(Make(#{<<"type">> => <<"Punctuation">>, <<"behavior">> => <<"MergedWithPrevious">>}), <<"a,b">>)),
    ?assertEqual([42, 1], enc(Make(#{<<"type">> => <<"Punctuation">>}), <<"«a"/utf8>>)).
