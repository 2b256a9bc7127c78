%% @doc Pure-Erlang BPE tokenizer driven by a Hugging Face `tokenizer.json'.
%%
%% The file is the specification: this module follows the HF `tokenizers'
%% pipeline step by step, so ids and decoded text match what
%% `tokenizers' (and transformers' fast tokenizers) produce.
%%
%% Encoding a text:
%%   1. added tokens whose `normalized' flag is false are found in the raw
%%      text (leftmost-longest, honouring `single_word', `lstrip', `rstrip');
%%   2. every other piece is normalized, then added tokens with
%%      `normalized: true' are found in the normalized piece;
%%   3. the remaining pieces are pre-tokenized into words;
%%   4. every word goes through the BPE model (merge by rank);
%%   5. with AddSpecial, the post-processor adds its special tokens (BOS...).
%% Decoding maps ids to token strings (dropping special tokens on request)
%% and runs the decoder chain over that list of strings.
%%
%% Supported components (anything else is rejected at load time with an
%% `{invalid_tokenizer, Message}' that names the unsupported type):
%%   model:          BPE (vocab, merges as ["a","b"] pairs or "a b" strings,
%%                   unk_token, fuse_unk, byte_fallback, ignore_merges,
%%                   continuing_subword_prefix, end_of_word_suffix;
%%                   `dropout' is ignored: merges are always deterministic)
%%   normalizers:    Sequence, Prepend, Replace (String or Regex pattern),
%%                   NFC, NFD, NFKC, NFKD, Lowercase, Strip, null
%%   pre-tokenizers: Sequence, ByteLevel, Split (String or Regex pattern;
%%                   Removed, Isolated, MergedWithPrevious, MergedWithNext,
%%                   Contiguous; invert), Metaspace, Digits, Whitespace,
%%                   WhitespaceSplit, Punctuation, null
%%   post-processors: TemplateProcessing (single template), ByteLevel,
%%                   BertProcessing, RobertaProcessing, Sequence, null
%%   decoders:       Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel,
%%                   Metaspace, null (tokens joined with spaces)
%%
%% Regex patterns in tokenizer.json are written for Oniguruma; they are
%% compiled with OTP's `re' (PCRE) using the `unicode' and `ucp' options,
%% which covers the patterns used by GPT-2, Llama 3, Qwen and friends
%% (`\p{L}', `\p{N}', `(?i:...)', `(?!\S)', `{1,3}').
%%
%% The tokenizer term holds no references, funs or NIF resources, so it can
%% be stored, sent to other processes or nodes and kept in persistent_term.
-module(viva_tensor_beam_tokenizer).

-include_lib("kernel/include/file.hrl").

-export([
    load/1,
    from_json/1,
    encode/3,
    decode/3,
    vocab_size/1,
    token_to_id/2,
    id_to_token/2,
    bos_id/1,
    special_ids/1
]).

-export_type([tokenizer/0, error_reason/0]).

-type id() :: non_neg_integer().
-type error_reason() :: {atom(), binary()}.

-record(bpe, {
    vocab :: #{binary() => id()},
    %% {LeftId, RightId} => {Rank, MergedId}
    merges :: #{{id(), id()} => {non_neg_integer(), id()}},
    unk_id :: id() | undefined,
    fuse_unk :: boolean(),
    %% tuple of 256 ids (or undefined) for the <0xXX> tokens; undefined when
    %% byte_fallback is off
    byte_ids :: tuple() | undefined,
    ignore_merges :: boolean(),
    prefix :: binary() | undefined,
    suffix :: binary() | undefined
}).

-record(added, {
    id :: id(),
    special :: boolean(),
    lstrip :: boolean(),
    rstrip :: boolean(),
    single_word :: boolean()
}).

-record(vt_tokenizer, {
    model :: #bpe{},
    %% element(Id + 1) is the token string of Id (added tokens included)
    id_to_token :: tuple(),
    %% content => id for added tokens (checked before the model vocab)
    added_ids :: #{binary() => id()},
    %% added tokens matched in the raw text: patterns and content => #added{}
    raw_patterns :: [binary()],
    raw_added :: #{binary() => #added{}},
    %% added tokens matched in normalized text, keyed by normalized content
    norm_patterns :: [binary()],
    norm_added :: #{binary() => #added{}},
    special :: #{id() => true},
    normalizer :: term(),
    pre_tokenizer :: term(),
    post_processor :: term(),
    decoder :: term(),
    vocab_size :: non_neg_integer()
}).

-opaque tokenizer() :: #vt_tokenizer{}.

-define(GPT2_PATTERN,
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
).
%% Rust's char::is_ascii_punctuation or a Unicode punctuation (P*) character.
-define(PUNCT_PATTERN, "[\\p{P}!-/:-@\\[-`{-~]").

%%====================================================================
%% Loading
%%====================================================================

%% @doc Loads a tokenizer from `Path', a tokenizer.json file or a folder
%% holding one. Errors: `{not_found, Msg}' when the path (or the folder's
%% tokenizer.json) is missing, `{io_error, Msg}' when it cannot be read,
%% `{invalid_tokenizer, Msg}' for malformed JSON or unsupported contents.
%% Every message starts with the path.
-spec load(Path :: binary() | string()) -> {ok, tokenizer()} | {error, error_reason()}.
load(Path) when is_list(Path) ->
    case unicode:characters_to_binary(Path) of
        Bin when is_binary(Bin) -> load(Bin);
        _ -> {error, {not_found, <<"path is not valid UTF-8">>}}
    end;
load(Path) when is_binary(Path) ->
    case file:read_file_info(Path) of
        {ok, #file_info{type = directory}} ->
            File = filename:join(Path, <<"tokenizer.json">>),
            case file:read_file_info(File) of
                {ok, #file_info{type = regular}} ->
                    load_file(File);
                _ ->
                    {error, {not_found, <<Path/binary, ": folder has no tokenizer.json">>}}
            end;
        {ok, _} ->
            load_file(Path);
        {error, enoent} ->
            {error, {not_found, <<Path/binary, ": no such file or directory">>}};
        {error, enotdir} ->
            {error, {not_found, <<Path/binary, ": no such file or directory">>}};
        {error, Reason} ->
            {error, {io_error, posix_message(Path, Reason)}}
    end.

load_file(File) ->
    case file:read_file(File) of
        {ok, Json} ->
            case viva_tensor_json:decode(Json) of
                {ok, Map} ->
                    case from_json(Map) of
                        {ok, Tok} ->
                            {ok, Tok};
                        {error, {Kind, Msg}} ->
                            {error, {Kind, <<File/binary, ": ", Msg/binary>>}}
                    end;
                {error, {invalid_json, Msg}} ->
                    {error, {invalid_tokenizer, <<File/binary, ": invalid JSON: ", Msg/binary>>}}
            end;
        {error, enoent} ->
            {error, {not_found, <<File/binary, ": no such file or directory">>}};
        {error, Reason} ->
            {error, {io_error, posix_message(File, Reason)}}
    end.

posix_message(Path, Reason) ->
    iolist_to_binary([Path, ": ", file:format_error(Reason)]).

%% @doc Builds a tokenizer from a decoded tokenizer.json (binary keys, as
%% returned by `viva_tensor_json:decode/1'). Returns
%% `{error, {invalid_tokenizer, Msg}}' when a component is missing,
%% malformed or unsupported.
-spec from_json(map()) -> {ok, tokenizer()} | {error, error_reason()}.
from_json(Json) when is_map(Json) ->
    try
        {ok, build(Json)}
    catch
        throw:{?MODULE, Msg} ->
            {error, {invalid_tokenizer, iolist_to_binary(Msg)}}
    end;
from_json(_) ->
    {error, {invalid_tokenizer, <<"tokenizer JSON is not an object">>}}.

invalid(Fmt, Args) ->
    throw({?MODULE, io_lib:format(Fmt, Args)}).

build(Json) ->
    Model = parse_model(maps:get(<<"model">>, Json, undefined)),
    Normalizer = parse_normalizer(maps:get(<<"normalizer">>, Json, null)),
    PreTok = parse_pre_tokenizer(maps:get(<<"pre_tokenizer">>, Json, null)),
    Decoder = parse_decoder(maps:get(<<"decoder">>, Json, null)),
    Added = parse_added_tokens(maps:get(<<"added_tokens">>, Json, [])),
    AddedIds = maps:from_list([{C, A#added.id} || {C, A, _} <- Added]),
    Post = parse_post_processor(maps:get(<<"post_processor">>, Json, null)),
    RawAdded = maps:from_list([{C, A} || {C, A, false} <- Added, C =/= <<>>]),
    NormAdded = maps:from_list([
        {N, A}
     || {C, A, true} <- Added, N <- [normalize(Normalizer, C)], N =/= <<>>
    ]),
    %% One pass over the vocabulary: validate the ids, find the largest, and
    %% collect the inverse mapping (added tokens override model entries).
    {MaxVocabId, Inverse} = maps:fold(
        fun
            (T, Id, {Max, Acc}) when is_integer(Id), Id >= 0 ->
                {max(Max, Id), [{Id + 1, T} | Acc]};
            (T, Id, _) ->
                invalid("vocab entry \"~ts\" has a bad id ~ts", [T, short(Id)])
        end,
        {-1, []},
        Model#bpe.vocab
    ),
    AddedInverse = [{A#added.id + 1, C} || {C, A, _} <- Added],
    Size = lists:max([MaxVocabId + 1 | [I || {I, _} <- AddedInverse]]),
    IdToToken = erlang:make_tuple(Size, undefined, Inverse ++ AddedInverse),
    #vt_tokenizer{
        model = Model,
        id_to_token = IdToToken,
        added_ids = AddedIds,
        raw_patterns = maps:keys(RawAdded),
        raw_added = RawAdded,
        norm_patterns = maps:keys(NormAdded),
        norm_added = NormAdded,
        special = maps:from_list([{A#added.id, true} || {_, A, _} <- Added, A#added.special]),
        normalizer = Normalizer,
        pre_tokenizer = PreTok,
        post_processor = Post,
        decoder = Decoder,
        vocab_size = Size
    }.

parse_added_tokens(List) when is_list(List) ->
    [parse_added_token(T) || T <- List];
parse_added_tokens(null) ->
    [];
parse_added_tokens(_) ->
    invalid("added_tokens is not a list", []).

parse_added_token(#{<<"id">> := Id, <<"content">> := Content} = T) when
    is_integer(Id), Id >= 0, is_binary(Content)
->
    Special = flag(T, <<"special">>, false),
    A = #added{
        id = Id,
        special = Special,
        lstrip = flag(T, <<"lstrip">>, false),
        rstrip = flag(T, <<"rstrip">>, false),
        single_word = flag(T, <<"single_word">>, false)
    },
    {Content, A, flag(T, <<"normalized">>, not Special)};
parse_added_token(T) ->
    invalid("malformed added token ~ts", [short(T)]).

flag(Map, Key, Default) ->
    case maps:get(Key, Map, Default) of
        B when is_boolean(B) -> B;
        null -> Default;
        Other -> invalid("~ts must be a boolean, got ~ts", [Key, short(Other)])
    end.

%% A JSON value shortened for error messages (cut at a character boundary).
short(Term) ->
    Bin = iolist_to_binary(viva_tensor_json:encode(Term)),
    case string:length(Bin) > 80 of
        true -> unicode:characters_to_binary([string:slice(Bin, 0, 77), "..."]);
        false -> Bin
    end.

%%--------------------------------------------------------------------
%% Model
%%--------------------------------------------------------------------

parse_model(#{<<"type">> := <<"BPE">>} = M) ->
    parse_bpe(M);
parse_model(#{<<"type">> := Type}) when is_binary(Type) ->
    invalid("unsupported model type \"~ts\" (only BPE is supported)", [Type]);
parse_model(#{<<"merges">> := _, <<"vocab">> := _} = M) ->
    %% Old files omit the type; vocab + merges means BPE.
    parse_bpe(M);
parse_model(undefined) ->
    invalid("no model in tokenizer.json", []);
parse_model(Other) ->
    invalid("unsupported model ~ts", [short(Other)]).

parse_bpe(M) ->
    Vocab =
        case maps:get(<<"vocab">>, M, undefined) of
            V when is_map(V) -> V;
            Other -> invalid("BPE vocab must be an object, got ~ts", [short(Other)])
        end,
    Prefix = opt_binary(M, <<"continuing_subword_prefix">>),
    Suffix = opt_binary(M, <<"end_of_word_suffix">>),
    Merges = parse_merges(maps:get(<<"merges">>, M, []), Vocab, Prefix),
    UnkId =
        case opt_binary(M, <<"unk_token">>) of
            undefined -> undefined;
            Unk -> maps:get(Unk, Vocab, undefined)
        end,
    ByteIds =
        case flag(M, <<"byte_fallback">>, false) of
            true ->
                list_to_tuple([maps:get(byte_token(B), Vocab, undefined) || B <- lists:seq(0, 255)]);
            false ->
                undefined
        end,
    #bpe{
        vocab = Vocab,
        merges = Merges,
        unk_id = UnkId,
        fuse_unk = flag(M, <<"fuse_unk">>, false),
        byte_ids = ByteIds,
        ignore_merges = flag(M, <<"ignore_merges">>, false),
        prefix = Prefix,
        suffix = Suffix
    }.

opt_binary(M, Key) ->
    case maps:get(Key, M, null) of
        null -> undefined;
        B when is_binary(B) -> B;
        Other -> invalid("~ts must be a string, got ~ts", [Key, short(Other)])
    end.

byte_token(B) ->
    iolist_to_binary(io_lib:format("<0x~2.16.0B>", [B])).

parse_merges(List, Vocab, Prefix) when is_list(List) ->
    PrefixLen =
        case Prefix of
            undefined -> 0;
            _ -> byte_size(Prefix)
        end,
    %% Like HF: a repeated pair keeps its last rank (maps:from_list/1 keeps
    %% the last occurrence).
    maps:from_list(merge_entries(List, Vocab, PrefixLen, 0, []));
parse_merges(Other, _, _) ->
    invalid("BPE merges must be a list, got ~ts", [short(Other)]).

merge_entries([], _Vocab, _PrefixLen, _Rank, Acc) ->
    lists:reverse(Acc);
merge_entries([[A, B] | More], Vocab, 0, Rank, Acc) when is_binary(A), is_binary(B) ->
    %% The common case (no continuing_subword_prefix), kept tight: three
    %% vocabulary lookups per merge dominate loading time.
    case Vocab of
        #{A := IdA, B := IdB, <<A/binary, B/binary>> := New} ->
            merge_entries(More, Vocab, 0, Rank + 1, [{{IdA, IdB}, {Rank, New}} | Acc]);
        _ ->
            merge_entry_slow([A, B], More, Vocab, 0, Rank, Acc)
    end;
merge_entries([Merge | More], Vocab, PrefixLen, Rank, Acc) ->
    merge_entry_slow(Merge, More, Vocab, PrefixLen, Rank, Acc).

merge_entry_slow(Merge, More, Vocab, PrefixLen, Rank, Acc) ->
    {A, B} = merge_pair(Merge),
    IdA = merge_id(A, Vocab, Merge),
    IdB = merge_id(B, Vocab, Merge),
    BRest =
        case B of
            <<_:PrefixLen/binary, R/binary>> -> R;
            _ -> B
        end,
    New = merge_id(<<A/binary, BRest/binary>>, Vocab, Merge),
    merge_entries(More, Vocab, PrefixLen, Rank + 1, [{{IdA, IdB}, {Rank, New}} | Acc]).

merge_pair([A, B]) when is_binary(A), is_binary(B) ->
    {A, B};
merge_pair(S) when is_binary(S) ->
    case binary:split(S, <<" ">>, [global]) of
        [A, B] -> {A, B};
        _ -> invalid("malformed merge \"~ts\" (expected two tokens separated by one space)", [S])
    end;
merge_pair(Other) ->
    invalid("malformed merge ~ts", [short(Other)]).

merge_id(Token, Vocab, Merge) ->
    case Vocab of
        #{Token := Id} -> Id;
        _ -> invalid("merge ~ts uses \"~ts\", which is not in the vocabulary", [short(Merge), Token])
    end.

%%--------------------------------------------------------------------
%% Normalizers
%%--------------------------------------------------------------------

parse_normalizer(null) ->
    none;
parse_normalizer(#{<<"type">> := <<"Sequence">>, <<"normalizers">> := L}) when is_list(L) ->
    {sequence, [parse_normalizer(N) || N <- L]};
parse_normalizer(#{<<"type">> := <<"Prepend">>, <<"prepend">> := P}) when is_binary(P) ->
    {prepend, P};
parse_normalizer(#{<<"type">> := <<"Replace">>, <<"pattern">> := P, <<"content">> := C}) when
    is_binary(C)
->
    {replace, parse_pattern(P), C};
parse_normalizer(#{<<"type">> := <<"NFC">>}) ->
    nfc;
parse_normalizer(#{<<"type">> := <<"NFD">>}) ->
    nfd;
parse_normalizer(#{<<"type">> := <<"NFKC">>}) ->
    nfkc;
parse_normalizer(#{<<"type">> := <<"NFKD">>}) ->
    nfkd;
parse_normalizer(#{<<"type">> := <<"Lowercase">>}) ->
    lowercase;
parse_normalizer(#{<<"type">> := <<"Strip">>} = M) ->
    {strip, flag(M, <<"strip_left">>, false), flag(M, <<"strip_right">>, true)};
parse_normalizer(#{<<"type">> := Type}) when is_binary(Type) ->
    invalid("unsupported normalizer type \"~ts\"", [Type]);
parse_normalizer(Other) ->
    invalid("malformed normalizer ~ts", [short(Other)]).

parse_pattern(#{<<"String">> := S}) when is_binary(S) ->
    {string, S};
parse_pattern(#{<<"Regex">> := R}) when is_binary(R) ->
    {regex, compile_regex(R)};
parse_pattern(Other) ->
    invalid("malformed pattern ~ts", [short(Other)]).

compile_regex(R) ->
    case re:compile(R, [unicode, ucp]) of
        {ok, MP} ->
            MP;
        {error, {Why, Pos}} ->
            invalid("cannot compile regex \"~ts\": ~ts at position ~b", [R, Why, Pos])
    end.

normalize(none, B) ->
    B;
normalize({sequence, L}, B) ->
    lists:foldl(fun normalize/2, B, L);
normalize({prepend, _}, <<>>) ->
    <<>>;
normalize({prepend, P}, B) ->
    <<P/binary, B/binary>>;
normalize({replace, Pattern, Content}, B) ->
    replace(Pattern, Content, B);
normalize(nfc, B) ->
    unicode:characters_to_nfc_binary(B);
normalize(nfd, B) ->
    unicode:characters_to_nfd_binary(B);
normalize(nfkc, B) ->
    unicode:characters_to_nfkc_binary(B);
normalize(nfkd, B) ->
    unicode:characters_to_nfkd_binary(B);
normalize(lowercase, B) ->
    unicode:characters_to_binary(string:lowercase(B));
normalize({strip, Left, Right}, B) ->
    B1 =
        case Left of
            true -> binary:part(B, leading_ws(B), byte_size(B) - leading_ws(B));
            false -> B
        end,
    case Right of
        true -> binary:part(B1, 0, byte_size(B1) - trailing_ws(B1));
        false -> B1
    end.

%% Replaces every non-overlapping match (left to right) by Content, verbatim.
replace(_, _, <<>>) ->
    <<>>;
replace({string, <<>>}, _Content, B) ->
    B;
replace({string, P}, Content, B) ->
    binary:replace(B, P, Content, [global]);
replace({regex, MP}, Content, B) ->
    case re:run(B, MP, [global, {capture, first, index}]) of
        nomatch ->
            B;
        {match, Ms} ->
            splice([M || [M] <- Ms], Content, B, 0, [])
    end.

splice([], _Content, B, Pos, Acc) ->
    iolist_to_binary(lists:reverse(Acc, [binary:part(B, Pos, byte_size(B) - Pos)]));
splice([{Start, Len} | More], Content, B, Pos, Acc) ->
    splice(More, Content, B, Start + Len, [Content, binary:part(B, Pos, Start - Pos) | Acc]).

%%--------------------------------------------------------------------
%% Pre-tokenizers
%%--------------------------------------------------------------------

parse_pre_tokenizer(null) ->
    none;
parse_pre_tokenizer(#{<<"type">> := <<"Sequence">>, <<"pretokenizers">> := L}) when is_list(L) ->
    {sequence, [parse_pre_tokenizer(P) || P <- L]};
parse_pre_tokenizer(#{<<"type">> := <<"ByteLevel">>} = M) ->
    Re =
        case flag(M, <<"use_regex">>, true) of
            true -> compile_regex(<<?GPT2_PATTERN>>);
            false -> undefined
        end,
    {byte_level, flag(M, <<"add_prefix_space">>, true), Re, bytes_to_unicode()};
parse_pre_tokenizer(#{<<"type">> := <<"Split">>, <<"pattern">> := P} = M) ->
    {split, parse_pattern(P), parse_behavior(maps:get(<<"behavior">>, M, <<"Removed">>)),
        flag(M, <<"invert">>, false)};
parse_pre_tokenizer(#{<<"type">> := <<"Metaspace">>} = M) ->
    Repl =
        case maps:get(<<"replacement">>, M, <<"▁"/utf8>>) of
            R when is_binary(R), R =/= <<>> -> R;
            Other -> invalid("Metaspace replacement must be a string, got ~ts", [short(Other)])
        end,
    {metaspace, Repl, prepend_scheme(M), flag(M, <<"split">>, true)};
parse_pre_tokenizer(#{<<"type">> := <<"Digits">>} = M) ->
    Behavior =
        case flag(M, <<"individual_digits">>, false) of
            true -> isolated;
            false -> contiguous
        end,
    {split, {regex, compile_regex(<<"[0-9]">>)}, Behavior, false};
parse_pre_tokenizer(#{<<"type">> := <<"Whitespace">>}) ->
    {split, {regex, compile_regex(<<"\\w+|[^\\w\\s]+">>)}, removed, true};
parse_pre_tokenizer(#{<<"type">> := <<"WhitespaceSplit">>}) ->
    {split, {regex, compile_regex(<<"\\s">>)}, removed, false};
parse_pre_tokenizer(#{<<"type">> := <<"Punctuation">>} = M) ->
    {split, {regex, compile_regex(<<?PUNCT_PATTERN>>)},
        parse_behavior(maps:get(<<"behavior">>, M, <<"Isolated">>)), false};
parse_pre_tokenizer(#{<<"type">> := Type}) when is_binary(Type) ->
    invalid("unsupported pre-tokenizer type \"~ts\"", [Type]);
parse_pre_tokenizer(Other) ->
    invalid("malformed pre-tokenizer ~ts", [short(Other)]).

parse_behavior(<<"Removed">>) -> removed;
parse_behavior(<<"Isolated">>) -> isolated;
parse_behavior(<<"MergedWithPrevious">>) -> merged_with_previous;
parse_behavior(<<"MergedWithNext">>) -> merged_with_next;
parse_behavior(<<"Contiguous">>) -> contiguous;
parse_behavior(Other) -> invalid("unsupported split behavior ~ts", [short(Other)]).

%% Metaspace: `prepend_scheme' (tokenizers >= 0.14) or the older boolean
%% `add_prefix_space' (true meant "always").
prepend_scheme(M) ->
    case maps:get(<<"prepend_scheme">>, M, null) of
        <<"always">> -> always;
        <<"first">> -> first;
        <<"never">> -> never;
        null ->
            case flag(M, <<"add_prefix_space">>, true) of
                true -> always;
                false -> never
            end;
        Other ->
            invalid("unsupported Metaspace prepend_scheme ~ts", [short(Other)])
    end.

%% Pieces are {Text, AtStart}: AtStart is true when the piece starts at
%% offset 0 of the original input (Metaspace's "first" scheme needs it).
pre_tokenize(none, Pieces) ->
    Pieces;
pre_tokenize({sequence, L}, Pieces) ->
    lists:foldl(fun pre_tokenize/2, Pieces, L);
pre_tokenize(P, Pieces) ->
    lists:flatmap(fun(Piece) -> pre_one(P, Piece) end, Pieces).

pre_one({byte_level, AddPrefix, Re, Table}, {B, AtStart}) ->
    B1 =
        case AddPrefix of
            true when B =/= <<>> ->
                case B of
                    <<" ", _/binary>> -> B;
                    _ -> <<" ", B/binary>>
                end;
            _ ->
                B
        end,
    Parts =
        case Re of
            undefined -> [{B1, AtStart}];
            _ -> split(B1, AtStart, {regex, Re}, isolated, false)
        end,
    [{<<<<(element(Byte + 1, Table))/binary>> || <<Byte>> <= Part>>, S} || {Part, S} <- Parts];
pre_one({split, Pattern, Behavior, Invert}, {B, AtStart}) ->
    split(B, AtStart, Pattern, Behavior, Invert);
pre_one({metaspace, Repl, Scheme, Split}, {B, AtStart}) ->
    B1 = binary:replace(B, <<" ">>, Repl, [global]),
    Prepend =
        B1 =/= <<>> andalso not has_prefix(B1, Repl) andalso
            (Scheme =:= always orelse (Scheme =:= first andalso AtStart)),
    B2 =
        case Prepend of
            true -> <<Repl/binary, B1/binary>>;
            false -> B1
        end,
    case Split of
        true -> split(B2, AtStart, {string, Repl}, merged_with_next, false);
        false -> [{B2, AtStart}]
    end.

has_prefix(B, P) ->
    Size = byte_size(P),
    case B of
        <<P:Size/binary, _/binary>> -> true;
        _ -> false
    end.

%% HF's NormalizedString::split: find the matches, combine them with the
%% non-matching gaps according to the behavior, drop empty pieces.
split(B, AtStart, Pattern, Behavior, Invert) ->
    Matches0 = find_matches(Pattern, B),
    Matches =
        case Invert of
            true -> [{S, E, not M} || {S, E, M} <- Matches0];
            false -> Matches0
        end,
    Kept = apply_behavior(Behavior, Matches),
    [{binary:part(B, S, E - S), AtStart andalso S =:= 0} || {S, E} <- Kept, E > S].

find_matches(_Pattern, <<>>) ->
    [{0, 0, false}];
find_matches({regex, MP}, B) ->
    case re:run(B, MP, [global, {capture, first, index}]) of
        nomatch -> gaps([], B);
        {match, Ms} -> gaps([M || [M] <- Ms], B)
    end;
find_matches({string, <<>>}, B) ->
    [{0, byte_size(B), false}];
find_matches({string, P}, B) ->
    gaps(binary:matches(B, P), B).

gaps(Ms, B) ->
    gaps(Ms, 0, byte_size(B), []).

gaps([], Prev, Size, Acc) when Prev < Size ->
    lists:reverse(Acc, [{Prev, Size, false}]);
gaps([], _Prev, _Size, Acc) ->
    lists:reverse(Acc);
gaps([{S, L} | More], Prev, Size, Acc) when S > Prev ->
    gaps(More, S + L, Size, [{S, S + L, true}, {Prev, S, false} | Acc]);
gaps([{S, L} | More], _Prev, Size, Acc) ->
    gaps(More, S + L, Size, [{S, S + L, true} | Acc]).

apply_behavior(isolated, Ms) ->
    [{S, E} || {S, E, _} <- Ms];
apply_behavior(removed, Ms) ->
    [{S, E} || {S, E, false} <- Ms];
apply_behavior(merged_with_previous, Ms) ->
    %% A match is glued to the end of the piece before it (unless that piece
    %% was itself a match).
    {Acc, _} = lists:foldl(
        fun
            ({S, E, true}, {[], false}) -> {[{S, E}], true};
            ({_S, E, true}, {[{PS, _} | Acc], false}) -> {[{PS, E} | Acc], true};
            ({S, E, M}, {Acc, _}) -> {[{S, E} | Acc], M}
        end,
        {[], false},
        Ms
    ),
    lists:reverse(Acc);
apply_behavior(merged_with_next, Ms) ->
    %% A match is glued to the start of the piece after it (unless that piece
    %% is itself a match).
    {Acc, _} = lists:foldl(
        fun
            ({S, E, true}, {[], false}) -> {[{S, E}], true};
            ({S, _E, true}, {[{_, PE} | Acc], false}) -> {[{S, PE} | Acc], true};
            ({S, E, M}, {Acc, _}) -> {[{S, E} | Acc], M}
        end,
        {[], false},
        lists:reverse(Ms)
    ),
    Acc;
apply_behavior(contiguous, Ms) ->
    %% Consecutive pieces of the same kind are joined.
    {Acc, _} = lists:foldl(
        fun
            ({S, E, M}, {[], _}) -> {[{S, E}], M};
            ({_S, E, M}, {[{PS, _} | Acc], M}) -> {[{PS, E} | Acc], M};
            ({S, E, M}, {Acc, _}) -> {[{S, E} | Acc], M}
        end,
        {[], false},
        Ms
    ),
    lists:reverse(Acc).

%% GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
%% other 68 bytes to U+0100.. in byte order. Returns a 256-tuple of UTF-8
%% binaries indexed by byte + 1.
bytes_to_unicode() ->
    {Chars, _} = lists:mapfoldl(
        fun(B, N) ->
            case (B >= $! andalso B =< $~) orelse (B >= 16#A1 andalso B =< 16#AC) orelse
                (B >= 16#AE andalso B =< 16#FF)
            of
                true -> {<<B/utf8>>, N};
                false -> {<<(256 + N)/utf8>>, N + 1}
            end
        end,
        0,
        lists:seq(0, 255)
    ),
    list_to_tuple(Chars).

unicode_to_bytes() ->
    Table = bytes_to_unicode(),
    maps:from_list([
        {Cp, B}
     || B <- lists:seq(0, 255), <<Cp/utf8>> <- [element(B + 1, Table)]
    ]).

%%--------------------------------------------------------------------
%% Post-processors
%%--------------------------------------------------------------------

parse_post_processor(null) ->
    none;
parse_post_processor(#{<<"type">> := <<"Sequence">>, <<"processors">> := L}) when is_list(L) ->
    {sequence, [parse_post_processor(P) || P <- L]};
parse_post_processor(#{<<"type">> := <<"ByteLevel">>}) ->
    none;
parse_post_processor(#{<<"type">> := <<"TemplateProcessing">>} = M) ->
    Specials = maps:get(<<"special_tokens">>, M, #{}),
    Single =
        case maps:get(<<"single">>, M, undefined) of
            L when is_list(L) -> L;
            Other -> invalid("TemplateProcessing single must be a list, got ~ts", [short(Other)])
        end,
    {template, [template_item(Item, Specials) || Item <- Single]};
parse_post_processor(#{<<"type">> := Type} = M) when
    Type =:= <<"BertProcessing">>; Type =:= <<"RobertaProcessing">>
->
    Cls = special_pair(maps:get(<<"cls">>, M, undefined)),
    Sep = special_pair(maps:get(<<"sep">>, M, undefined)),
    {template, [{special, [Cls]}, sequence, {special, [Sep]}]};
parse_post_processor(#{<<"type">> := Type}) when is_binary(Type) ->
    invalid("unsupported post-processor type \"~ts\"", [Type]);
parse_post_processor(Other) ->
    invalid("malformed post-processor ~ts", [short(Other)]).

template_item(#{<<"Sequence">> := _}, _Specials) ->
    sequence;
template_item(#{<<"SpecialToken">> := #{<<"id">> := Name}}, Specials) ->
    case Specials of
        #{Name := #{<<"ids">> := Ids}} when is_list(Ids) ->
            case lists:all(fun(I) -> is_integer(I) andalso I >= 0 end, Ids) of
                true -> {special, Ids};
                false -> invalid("bad ids in special token \"~ts\"", [Name])
            end;
        _ ->
            invalid("TemplateProcessing uses special token \"~ts\" but does not define it", [Name])
    end;
template_item(Other, _Specials) ->
    invalid("malformed TemplateProcessing item ~ts", [short(Other)]).

special_pair([Name, Id]) when is_binary(Name), is_integer(Id) ->
    Id;
special_pair(Other) ->
    invalid("malformed special token ~ts", [short(Other)]).

post_process(none, Ids) ->
    Ids;
post_process({sequence, L}, Ids) ->
    lists:foldl(fun post_process/2, Ids, L);
post_process({template, Items}, Ids) ->
    lists:flatmap(
        fun
            (sequence) -> Ids;
            ({special, S}) -> S
        end,
        Items
    ).

first_special(none) ->
    undefined;
first_special({template, [{special, [Id | _]} | _]}) ->
    Id;
first_special({template, _}) ->
    undefined;
first_special({sequence, L}) ->
    lists:foldl(
        fun
            (P, undefined) -> first_special(P);
            (_, Found) -> Found
        end,
        undefined,
        L
    ).

%%--------------------------------------------------------------------
%% Decoders
%%--------------------------------------------------------------------

parse_decoder(null) ->
    none;
parse_decoder(D) ->
    lists:flatten(decoder_steps(D)).

decoder_steps(#{<<"type">> := <<"Sequence">>, <<"decoders">> := L}) when is_list(L) ->
    [decoder_steps(D) || D <- L];
decoder_steps(#{<<"type">> := <<"Replace">>, <<"pattern">> := P, <<"content">> := C}) when
    is_binary(C)
->
    [{replace, parse_pattern(P), C}];
decoder_steps(#{<<"type">> := <<"ByteFallback">>}) ->
    [byte_fallback];
decoder_steps(#{<<"type">> := <<"Fuse">>}) ->
    [fuse];
decoder_steps(#{<<"type">> := <<"Strip">>} = M) ->
    Content =
        case maps:get(<<"content">>, M, <<" ">>) of
            <<C/utf8>> -> C;
            Other -> invalid("Strip content must be one character, got ~ts", [short(Other)])
        end,
    [{strip, Content, count(M, <<"start">>), count(M, <<"stop">>)}];
decoder_steps(#{<<"type">> := <<"ByteLevel">>}) ->
    [{byte_level, unicode_to_bytes()}];
decoder_steps(#{<<"type">> := <<"Metaspace">>} = M) ->
    <<Repl/utf8>> = maps:get(<<"replacement">>, M, <<"▁"/utf8>>),
    [{metaspace, Repl, prepend_scheme(M)}];
decoder_steps(#{<<"type">> := Type}) when is_binary(Type) ->
    invalid("unsupported decoder type \"~ts\"", [Type]);
decoder_steps(Other) ->
    invalid("malformed decoder ~ts", [short(Other)]).

count(M, Key) ->
    case maps:get(Key, M, 0) of
        N when is_integer(N), N >= 0 -> N;
        Other -> invalid("~ts must be a non-negative integer, got ~ts", [Key, short(Other)])
    end.

run_decoder(none, Tokens) ->
    iolist_to_binary(lists:join(<<" ">>, Tokens));
run_decoder(Steps, Tokens) ->
    iolist_to_binary(lists:foldl(fun decode_step/2, Tokens, Steps)).

decode_step({replace, Pattern, Content}, Tokens) ->
    [replace(Pattern, Content, T) || T <- Tokens];
decode_step(byte_fallback, Tokens) ->
    byte_fallback(Tokens, [], []);
decode_step(fuse, Tokens) ->
    [iolist_to_binary(Tokens)];
decode_step({strip, C, Start, Stop}, Tokens) ->
    [strip_token(T, C, Start, Stop) || T <- Tokens];
decode_step({byte_level, Map}, Tokens) ->
    [lossy_utf8(iolist_to_binary([token_bytes(T, Map) || T <- Tokens]))];
decode_step({metaspace, Repl, Scheme}, Tokens) ->
    {Out, _} = lists:mapfoldl(
        fun(T, I) ->
            Drop = I =:= 0 andalso Scheme =/= never,
            {<<<<(metaspace_char(C, Repl, Drop))/binary>> || <<C/utf8>> <= T>>, I + 1}
        end,
        0,
        Tokens
    ),
    Out.

metaspace_char(Repl, Repl, true) -> <<>>;
metaspace_char(Repl, Repl, false) -> <<" ">>;
metaspace_char(C, _Repl, _Drop) -> <<C/utf8>>.

%% Runs of <0xXX> tokens become their bytes when those form valid UTF-8,
%% else one U+FFFD per byte of the run (exactly HF's ByteFallback).
byte_fallback([], Bytes, Acc) ->
    lists:reverse(flush_bytes(Bytes, Acc));
byte_fallback([<<"<0x", H1, H2, ">">> = T | More], Bytes, Acc) ->
    case {hex(H1), hex(H2)} of
        {A, B} when is_integer(A), is_integer(B) ->
            byte_fallback(More, [A * 16 + B | Bytes], Acc);
        _ ->
            byte_fallback(More, [], [T | flush_bytes(Bytes, Acc)])
    end;
byte_fallback([T | More], Bytes, Acc) ->
    byte_fallback(More, [], [T | flush_bytes(Bytes, Acc)]).

flush_bytes([], Acc) ->
    Acc;
flush_bytes(Rev, Acc) ->
    Bin = list_to_binary(lists:reverse(Rev)),
    case unicode:characters_to_binary(Bin) of
        Bin -> [Bin | Acc];
        _ -> [binary:copy(<<16#FFFD/utf8>>, length(Rev)) | Acc]
    end.

hex(C) when C >= $0, C =< $9 -> C - $0;
hex(C) when C >= $a, C =< $f -> C - $a + 10;
hex(C) when C >= $A, C =< $F -> C - $A + 10;
hex(_) -> bad.

strip_token(T, C, Start, Stop) ->
    Chars = unicode:characters_to_list(T),
    Chars1 = drop_n(Chars, C, Start),
    Chars2 = lists:reverse(drop_n(lists:reverse(Chars1), C, Stop)),
    unicode:characters_to_binary(Chars2).

drop_n([C | Rest], C, N) when N > 0 -> drop_n(Rest, C, N - 1);
drop_n(Chars, _C, _N) -> Chars.

%% A ByteLevel token maps back to bytes when every character is in the
%% byte alphabet; otherwise (e.g. an added token outside it) its own UTF-8.
token_bytes(T, Map) ->
    try
        <<<<(maps:get(C, Map))>> || <<C/utf8>> <= T>>
    catch
        error:_ -> T
    end.

%% Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes
%% one U+FFFD.
lossy_utf8(Bin) ->
    case unicode:characters_to_binary(Bin) of
        Bin -> Bin;
        _ -> iolist_to_binary(lossy(Bin, []))
    end.

lossy(<<>>, Acc) ->
    lists:reverse(Acc);
lossy(<<C/utf8, Rest/binary>>, Acc) ->
    lossy(Rest, [<<C/utf8>> | Acc]);
lossy(<<Lead, Rest/binary>>, Acc) ->
    {Need, Lo, Hi} = utf8_lead(Lead),
    Skip = valid_continuations(Rest, Need, Lo, Hi, 0),
    <<_:Skip/binary, Rest1/binary>> = Rest,
    lossy(Rest1, [<<16#FFFD/utf8>> | Acc]).

%% {continuation bytes needed, range of the first continuation byte}
utf8_lead(B) when B >= 16#C2, B =< 16#DF -> {1, 16#80, 16#BF};
utf8_lead(16#E0) -> {2, 16#A0, 16#BF};
utf8_lead(16#ED) -> {2, 16#80, 16#9F};
utf8_lead(B) when B >= 16#E1, B =< 16#EF -> {2, 16#80, 16#BF};
utf8_lead(16#F0) -> {3, 16#90, 16#BF};
utf8_lead(B) when B >= 16#F1, B =< 16#F3 -> {3, 16#80, 16#BF};
utf8_lead(16#F4) -> {3, 16#80, 16#8F};
utf8_lead(_) -> {0, 0, 0}.

valid_continuations(<<B, Rest/binary>>, Need, Lo, Hi, N) when N < Need, B >= Lo, B =< Hi ->
    valid_continuations(Rest, Need, 16#80, 16#BF, N + 1);
valid_continuations(_, _Need, _Lo, _Hi, N) ->
    N.

%%====================================================================
%% Encoding
%%====================================================================

%% @doc Encodes UTF-8 text into token ids. With `AddSpecial', the
%% post-processor's special tokens are added (e.g. BOS for Llama). Added
%% tokens written literally in the text (e.g. `<s>') are always recognised,
%% as in HF. Returns `{error, {invalid_option, Msg}}' when Text is not valid
%% UTF-8.
-spec encode(tokenizer(), Text :: unicode:chardata(), AddSpecial :: boolean()) ->
    {ok, [id()]} | {error, error_reason()}.
encode(#vt_tokenizer{} = Tok, Text, AddSpecial) when is_boolean(AddSpecial) ->
    case valid_text(Text) of
        {ok, Bin} ->
            Ids = encode_text(Tok, Bin),
            case AddSpecial of
                true -> {ok, post_process(Tok#vt_tokenizer.post_processor, Ids)};
                false -> {ok, Ids}
            end;
        error ->
            {error, {invalid_option, <<"text to tokenize is not valid UTF-8">>}}
    end.

valid_text(Text) ->
    try unicode:characters_to_binary(Text) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> error
    catch
        error:_ -> error
    end.

encode_text(Tok, Text) ->
    #vt_tokenizer{
        raw_patterns = RawP,
        raw_added = RawA,
        norm_patterns = NormP,
        norm_added = NormA,
        normalizer = Norm,
        pre_tokenizer = Pre,
        model = Model
    } = Tok,
    Pieces = split_added(Text, RawP, RawA),
    {Ids, _Cache} = lists:foldl(
        fun
            ({added, Id, _}, {Acc, Cache}) ->
                {[Id | Acc], Cache};
            ({text, T, Off}, {Acc, Cache}) ->
                Normalized = normalize(Norm, T),
                Sub = split_added(Normalized, NormP, NormA),
                lists:foldl(
                    fun
                        ({added, Id, _}, {A, C}) ->
                            {[Id | A], C};
                        ({text, S, SubOff}, {A, C}) ->
                            Words = pre_tokenize(Pre, [{S, Off =:= 0 andalso SubOff =:= 0}]),
                            words_to_ids(Words, Model, A, C)
                    end,
                    {Acc, Cache},
                    Sub
                )
        end,
        {[], #{}},
        Pieces
    ),
    lists:reverse(Ids).

words_to_ids([], _Model, Acc, Cache) ->
    {Acc, Cache};
words_to_ids([{W, _} | More], Model, Acc, Cache) ->
    case Cache of
        #{W := Ids} ->
            words_to_ids(More, Model, lists:reverse(Ids, Acc), Cache);
        _ ->
            Ids = bpe_word(W, Model),
            words_to_ids(More, Model, lists:reverse(Ids, Acc), Cache#{W => Ids})
    end.

%%--------------------------------------------------------------------
%% Added tokens
%%--------------------------------------------------------------------

%% Splits Text around the added tokens it contains. Returns a list of
%% {added, Id, Offset} and {text, Binary, Offset}; empty text pieces are
%% dropped (they produce no ids in HF either).
split_added(<<>>, _Patterns, _Info) ->
    [];
split_added(Text, [], _Info) ->
    [{text, Text, 0}];
split_added(Text, Patterns, Info) ->
    %% binary:matches/2 returns non-overlapping matches left to right and the
    %% longest pattern at a given position: aho-corasick's LeftmostLongest.
    split_matches(binary:matches(Text, Patterns), Text, 0, Info, []).

split_matches([], Text, Off, _Info, Acc) ->
    lists:reverse(text_piece(Text, Off, byte_size(Text), Acc));
split_matches([{Pos, _Len} | More], Text, Off, Info, Acc) when Pos < Off ->
    %% Overlaps whitespace eaten by a previous rstrip.
    split_matches(More, Text, Off, Info, Acc);
split_matches([{Pos, Len} | More], Text, Off, Info, Acc) ->
    A = maps:get(binary:part(Text, Pos, Len), Info),
    Stop0 = Pos + Len,
    case A#added.single_word andalso not is_single_word(Text, Pos, Stop0) of
        true ->
            split_matches(More, Text, Off, Info, Acc);
        false ->
            Start =
                case A#added.lstrip of
                    true -> Pos - trailing_ws(binary:part(Text, Off, Pos - Off));
                    false -> Pos
                end,
            Stop =
                case A#added.rstrip of
                    true -> Stop0 + leading_ws(binary:part(Text, Stop0, byte_size(Text) - Stop0));
                    false -> Stop0
                end,
            Acc1 = text_piece(Text, Off, Start, Acc),
            split_matches(More, Text, Stop, Info, [{added, A#added.id, Start} | Acc1])
    end.

text_piece(_Text, From, To, Acc) when From >= To ->
    Acc;
text_piece(Text, From, To, Acc) ->
    [{text, binary:part(Text, From, To - From), From} | Acc].

%% A single_word token must not touch a word character on either side.
is_single_word(Text, Start, Stop) ->
    Before = binary:part(Text, 0, Start),
    After = binary:part(Text, Stop, byte_size(Text) - Stop),
    not (Before =/= <<>> andalso is_word_char(last_char(Before))) andalso
        not (After =/= <<>> andalso is_word_char(first_char(After))).

is_word_char(C) ->
    re:run(<<C/utf8>>, <<"^[\\w\\p{M}\\x{200C}\\x{200D}]">>, [unicode, ucp]) =/= nomatch.

first_char(<<C/utf8, _/binary>>) -> C.

last_char(Bin) ->
    <<C/utf8>> = last_char_bin(Bin),
    C.

last_char_bin(Bin) ->
    Start = last_char_start(Bin, byte_size(Bin) - 1),
    binary:part(Bin, Start, byte_size(Bin) - Start).

last_char_start(Bin, I) when I > 0 ->
    case binary:at(Bin, I) of
        B when B >= 16#80, B < 16#C0 -> last_char_start(Bin, I - 1);
        _ -> I
    end;
last_char_start(_Bin, I) ->
    I.

%% Byte lengths of the leading / trailing Unicode White_Space run (Rust's
%% char::is_whitespace).
leading_ws(<<C/utf8, Rest/binary>> = B) ->
    case is_space(C) of
        true -> byte_size(B) - byte_size(Rest) + leading_ws(Rest);
        false -> 0
    end;
leading_ws(_) ->
    0.

trailing_ws(<<>>) ->
    0;
trailing_ws(B) ->
    Last = last_char_bin(B),
    <<C/utf8>> = Last,
    case is_space(C) of
        true -> byte_size(Last) + trailing_ws(binary:part(B, 0, byte_size(B) - byte_size(Last)));
        false -> 0
    end.

is_space(C) when C >= 9, C =< 13 -> true;
is_space(32) -> true;
is_space(16#85) -> true;
is_space(16#A0) -> true;
is_space(16#1680) -> true;
is_space(C) when C >= 16#2000, C =< 16#200A -> true;
is_space(16#2028) -> true;
is_space(16#2029) -> true;
is_space(16#202F) -> true;
is_space(16#205F) -> true;
is_space(16#3000) -> true;
is_space(_) -> false.

%%--------------------------------------------------------------------
%% BPE
%%--------------------------------------------------------------------

bpe_word(<<>>, _M) ->
    [];
bpe_word(Word, #bpe{ignore_merges = true, vocab = Vocab} = M) ->
    case Vocab of
        #{Word := Id} -> [Id];
        _ -> merge(symbols(Word, M), M#bpe.merges)
    end;
bpe_word(Word, M) ->
    merge(symbols(Word, M), M#bpe.merges).

%% Initial symbols: one per character (with the subword prefix / word suffix
%% when the model has them); unknown characters become <0xXX> byte tokens
%% (byte_fallback) or the unk token (fused when fuse_unk), like HF's
%% BPE::merge_word.
symbols(Word, M) ->
    symbols(Word, M, true, false, []).

symbols(<<>>, M, _First, Unk, Acc) ->
    lists:reverse(add_unk(Unk, M, Acc));
symbols(<<B0, _/binary>> = Bin, M, First, Unk, Acc) ->
    Size = char_size(B0),
    <<Ch:Size/binary, Rest/binary>> = Bin,
    S0 =
        case M#bpe.prefix of
            P when is_binary(P), not First -> <<P/binary, Ch/binary>>;
            _ -> Ch
        end,
    S =
        case M#bpe.suffix of
            X when is_binary(X), Rest =:= <<>> -> <<S0/binary, X/binary>>;
            _ -> S0
        end,
    case M#bpe.vocab of
        #{S := Id} ->
            symbols(Rest, M, false, false, [Id | add_unk(Unk, M, Acc)]);
        _ ->
            case byte_symbols(S, M#bpe.byte_ids, []) of
                {ok, Ids} ->
                    %% As in HF, a pending unk is not flushed here.
                    symbols(Rest, M, false, Unk, Ids ++ Acc);
                error when M#bpe.unk_id =:= undefined ->
                    %% No unk token: the character is dropped (HF does too).
                    symbols(Rest, M, false, Unk, Acc);
                error when Unk, M#bpe.fuse_unk ->
                    symbols(Rest, M, false, true, Acc);
                error ->
                    symbols(Rest, M, false, true, add_unk(Unk, M, Acc))
            end
    end.

add_unk(true, #bpe{unk_id = Id}, Acc) -> [Id | Acc];
add_unk(false, _M, Acc) -> Acc.

%% Ids of the <0xXX> tokens of S's bytes, reversed (ready to prepend).
byte_symbols(_S, undefined, _Acc) ->
    error;
byte_symbols(<<>>, _Table, Acc) ->
    {ok, Acc};
byte_symbols(<<B, Rest/binary>>, Table, Acc) ->
    case element(B + 1, Table) of
        undefined -> error;
        Id -> byte_symbols(Rest, Table, [Id | Acc])
    end.

char_size(B) when B < 16#80 -> 1;
char_size(B) when B >= 16#F0 -> 4;
char_size(B) when B >= 16#E0 -> 3;
char_size(B) when B >= 16#C0 -> 2;
char_size(_) -> 1.

%% Applies merges lowest rank first (leftmost on ties), which is what HF's
%% priority-queue Word::merge_all does. Short words use a plain scan, long
%% ones a gb_sets priority queue over a linked list held in a map.
merge([], _Merges) ->
    [];
merge([_] = Ids, _Merges) ->
    Ids;
merge(Ids, Merges) when length(Ids) =< 24 ->
    scan_merge(Ids, Merges);
merge(Ids, Merges) ->
    heap_merge(Ids, Merges).

scan_merge(Ids, Merges) ->
    case best_pair(Ids, Merges, 0, none) of
        none -> Ids;
        {_Rank, Pos, New} -> scan_merge(replace_pair(Ids, Pos, New), Merges)
    end.

best_pair([A, B | Rest], Merges, Pos, Best) ->
    case Merges of
        #{{A, B} := {Rank, New}} ->
            best_pair([B | Rest], Merges, Pos + 1, better({Rank, Pos, New}, Best));
        _ ->
            best_pair([B | Rest], Merges, Pos + 1, Best)
    end;
best_pair(_, _Merges, _Pos, Best) ->
    Best.

%% Strictly lower rank wins, so the leftmost pair wins ties.
better(Candidate, none) -> Candidate;
better({Rank, _, _} = Candidate, {BestRank, _, _}) when Rank < BestRank -> Candidate;
better(_Candidate, Best) -> Best.

replace_pair([_, _ | Rest], 0, New) -> [New | Rest];
replace_pair([X | Rest], Pos, New) -> [X | replace_pair(Rest, Pos - 1, New)].

%% Symbols: Pos => {Id, PrevPos, NextPos} (-1 = none). Queue entries are
%% {Rank, Pos, MergedId}; stale entries are skipped when popped.
heap_merge(Ids, Merges) ->
    {Syms, Queue} = heap_init(Ids, 0, Merges, #{}, []),
    heap_loop(gb_sets:from_list(Queue), Syms, Merges).

heap_init([Id], Pos, _Merges, Syms, Q) ->
    {Syms#{Pos => {Id, Pos - 1, -1}}, Q};
heap_init([A, B | Rest], Pos, Merges, Syms, Q) ->
    Q1 =
        case Merges of
            #{{A, B} := {Rank, New}} -> [{Rank, Pos, New} | Q];
            _ -> Q
        end,
    heap_init([B | Rest], Pos + 1, Merges, Syms#{Pos => {A, Pos - 1, Pos + 1}}, Q1).

heap_loop(Queue, Syms, Merges) ->
    case gb_sets:is_empty(Queue) of
        true ->
            collect(Syms, 0, []);
        false ->
            {{_Rank, Pos, New}, Queue1} = gb_sets:take_smallest(Queue),
            case Syms of
                #{Pos := {A, Prev, Next}} when Next =/= -1 ->
                    #{Next := {B, _, NextNext}} = Syms,
                    case Merges of
                        #{{A, B} := {_, New}} ->
                            Syms1 = maps:remove(Next, Syms#{Pos := {New, Prev, NextNext}}),
                            Syms2 =
                                case NextNext of
                                    -1 ->
                                        Syms1;
                                    _ ->
                                        {NId, _, NNext} = maps:get(NextNext, Syms1),
                                        Syms1#{NextNext := {NId, Pos, NNext}}
                                end,
                            Queue2 =
                                case Prev of
                                    -1 -> Queue1;
                                    _ -> push_pair(Prev, element(1, maps:get(Prev, Syms2)), New, Merges, Queue1)
                                end,
                            Queue3 =
                                case NextNext of
                                    -1 -> Queue2;
                                    _ -> push_pair(Pos, New, element(1, maps:get(NextNext, Syms2)), Merges, Queue2)
                                end,
                            heap_loop(Queue3, Syms2, Merges);
                        _ ->
                            heap_loop(Queue1, Syms, Merges)
                    end;
                _ ->
                    heap_loop(Queue1, Syms, Merges)
            end
    end.

push_pair(Pos, A, B, Merges, Queue) ->
    case Merges of
        %% insert/2 (not add/2): an entry is never pushed twice, since the
        %% pair at a position only ever grows and a rank names one pair.
        #{{A, B} := {Rank, New}} -> gb_sets:insert({Rank, Pos, New}, Queue);
        _ -> Queue
    end.

collect(_Syms, -1, Acc) ->
    lists:reverse(Acc);
collect(Syms, Pos, Acc) ->
    {Id, _, Next} = maps:get(Pos, Syms),
    collect(Syms, Next, [Id | Acc]).

%%====================================================================
%% Decoding and lookups
%%====================================================================

%% @doc Decodes ids into text. With `SkipSpecial', special added tokens
%% (e.g. `<s>', `</s>') are left out. Integer ids the tokenizer does not
%% know are skipped, as HF does; a non-integer element raises `badarg'.
%% Invalid byte sequences become U+FFFD (ByteFallback: one per byte of the
%% run; ByteLevel: one per maximal invalid subsequence, like Rust's
%% String::from_utf8_lossy).
-spec decode(tokenizer(), [id()], SkipSpecial :: boolean()) -> {ok, binary()}.
decode(#vt_tokenizer{id_to_token = Table, special = Special, decoder = Decoder}, Ids, SkipSpecial) when
    is_list(Ids), is_boolean(SkipSpecial)
->
    Tokens = lists:filtermap(
        fun
            (Id) when is_integer(Id), Id >= 0, Id < tuple_size(Table) ->
                case SkipSpecial andalso is_map_key(Id, Special) of
                    true ->
                        false;
                    false ->
                        case element(Id + 1, Table) of
                            undefined -> false;
                            T -> {true, T}
                        end
                end;
            (Id) when is_integer(Id) ->
                false;
            (_) ->
                erlang:error(badarg)
        end,
        Ids
    ),
    {ok, run_decoder(Decoder, Tokens)}.

%% @doc Number of ids: the largest id of the vocabulary or of the added
%% tokens, plus one.
-spec vocab_size(tokenizer()) -> non_neg_integer().
vocab_size(#vt_tokenizer{vocab_size = Size}) ->
    Size.

%% @doc The id of a token string (added tokens first, then the model
%% vocabulary), or `undefined'.
-spec token_to_id(tokenizer(), binary()) -> id() | undefined.
token_to_id(#vt_tokenizer{added_ids = Added, model = #bpe{vocab = Vocab}}, Token) when
    is_binary(Token)
->
    case Added of
        #{Token := Id} -> Id;
        _ -> maps:get(Token, Vocab, undefined)
    end.

%% @doc The token string of an id, or `undefined'.
-spec id_to_token(tokenizer(), id()) -> binary() | undefined.
id_to_token(#vt_tokenizer{id_to_token = Table}, Id) when
    is_integer(Id), Id >= 0, Id < tuple_size(Table)
->
    element(Id + 1, Table);
id_to_token(#vt_tokenizer{}, _Id) ->
    undefined.

%% @doc The first special token the post-processor puts in front of the
%% text (the BOS id of Llama-style tokenizers), or `undefined' when it adds
%% none.
-spec bos_id(tokenizer()) -> id() | undefined.
bos_id(#vt_tokenizer{post_processor = Post}) ->
    first_special(Post).

%% @doc The ids of the added tokens marked special, ascending.
-spec special_ids(tokenizer()) -> [id()].
special_ids(#vt_tokenizer{special = Special}) ->
    lists:sort(maps:keys(Special)).
