%% @doc Strict JSON (RFC 8259) decoder and encoder for the pure-BEAM backend.
%%
%% Runs on OTP 25 and later (OTP's own `json' module only exists from OTP 27).
%%
%% Decoding maps JSON onto Erlang terms as follows:
%%
%%   object  -> map with binary keys (a duplicated key: the last one wins)
%%   array   -> list
%%   string  -> UTF-8 binary (every escape, `\uXXXX' surrogate pairs; a lone
%%              surrogate becomes U+FFFD)
%%   number  -> integer when it has neither fraction nor exponent, else float
%%              (a float that overflows the double range is an error; one
%%              that underflows becomes 0.0)
%%   true / false / null -> the atoms `true', `false', `null'
%%
%% The decoder is strict: no trailing data, no comments, no trailing commas,
%% no leading zeros, no unescaped control characters, no invalid UTF-8 inside
%% strings, no byte order mark. Errors are
%% `{error, {invalid_json, Message}}' where Message names the problem and the
%% byte offset where it was found, e.g.
%% `<<"expected ',' or '}' but found '\"' at byte offset 9">>'.
%%
%% The decoder walks the input with binary pattern matching and returns
%% sub-binaries of the input for strings without escapes, so large documents
%% (a 3.6 MB tokenizer.json) decode in a fraction of a second.
-module(viva_tensor_json).

-export([decode/1, encode/1]).

-export_type([json_term/0]).

-type json_term() ::
    #{binary() => json_term()}
    | [json_term()]
    | binary()
    | integer()
    | float()
    | boolean()
    | null.

-define(IS_WS(C), (C =:= $\s orelse C =:= $\t orelse C =:= $\n orelse C =:= $\r)).
-define(IS_DIGIT(C), (C >= $0 andalso C =< $9)).

%%====================================================================
%% Decoding
%%====================================================================

%% @doc Decodes one JSON document (optionally surrounded by whitespace).
%% Returns `{ok, Term}' or `{error, {invalid_json, Message}}'.
-spec decode(binary()) -> {ok, json_term()} | {error, {invalid_json, binary()}}.
decode(Bin) when is_binary(Bin) ->
    try value(ws(Bin)) of
        {Value, Rest} ->
            case ws(Rest) of
                <<>> ->
                    {ok, Value};
                Trailing ->
                    {error, {invalid_json, message(Bin, Trailing, trailing)}}
            end
    catch
        throw:{?MODULE, Rest, Reason} ->
            {error, {invalid_json, message(Bin, Rest, Reason)}}
    end;
decode(_Other) ->
    erlang:error(badarg).

ws(<<C, Rest/binary>>) when ?IS_WS(C) -> ws(Rest);
ws(Rest) -> Rest.

-spec fail(binary(), term()) -> no_return().
fail(Rest, Reason) ->
    throw({?MODULE, Rest, Reason}).

value(<<${, Rest/binary>>) ->
    object(ws(Rest));
value(<<$[, Rest/binary>>) ->
    array(ws(Rest));
value(<<$", Rest/binary>>) ->
    string(Rest, Rest, 0);
value(<<"true", Rest/binary>>) ->
    {true, Rest};
value(<<"false", Rest/binary>>) ->
    {false, Rest};
value(<<"null", Rest/binary>>) ->
    {null, Rest};
value(<<C, _/binary>> = Bin) when C =:= $-; ?IS_DIGIT(C) ->
    number(Bin);
value(<<C, _/binary>> = Bin) when C =:= $t; C =:= $f; C =:= $n ->
    fail(Bin, invalid_literal);
value(<<>> = Bin) ->
    fail(Bin, {eof, <<"a value">>});
value(Bin) ->
    fail(Bin, {expected, <<"a value">>}).

object(<<$}, Rest/binary>>) ->
    {#{}, Rest};
object(Bin) ->
    members(Bin, []).

members(<<$", Rest/binary>>, Acc) ->
    {Key, R1} = string(Rest, Rest, 0),
    R2 =
        case ws(R1) of
            <<$:, R/binary>> -> ws(R);
            Other -> expected(Other, <<"':'">>)
        end,
    {Value, R3} = value(R2),
    case ws(R3) of
        <<$,, R4/binary>> ->
            members(ws(R4), [{Key, Value} | Acc]);
        <<$}, R4/binary>> ->
            {maps:from_list(lists:reverse(Acc, [{Key, Value}])), R4};
        Other2 ->
            expected(Other2, <<"',' or '}'">>)
    end;
members(Bin, _Acc) ->
    expected(Bin, <<"a string key">>).

array(<<$], Rest/binary>>) ->
    {[], Rest};
array(Bin) ->
    elements(Bin, []).

elements(Bin, Acc) ->
    {Value, R1} = value(Bin),
    case ws(R1) of
        <<$,, R2/binary>> ->
            elements(ws(R2), [Value | Acc]);
        <<$], R2/binary>> ->
            {lists:reverse(Acc, [Value]), R2};
        Other ->
            expected(Other, <<"',' or ']'">>)
    end.

-spec expected(binary(), binary()) -> no_return().
expected(<<>> = Bin, What) -> fail(Bin, {eof, What});
expected(Bin, What) -> fail(Bin, {expected, What}).

%% Strings. `Start' is the binary right after the opening quote (or after the
%% last escape) and `N' the number of plain bytes seen since; a string without
%% escapes is returned as a sub-binary of the input.
string(<<$", Rest/binary>>, Start, N) ->
    {binary_part(Start, 0, N), Rest};
string(<<$\\, _/binary>> = Bin, Start, N) ->
    escaped(Bin, [binary_part(Start, 0, N)]);
string(<<C, Rest/binary>>, Start, N) when C >= 16#20, C < 16#80 ->
    string(Rest, Start, N + 1);
string(<<C/utf8, Rest/binary>>, Start, N) when C >= 16#80 ->
    string(Rest, Start, N + utf8_size(C));
string(<<>> = Bin, _Start, _N) ->
    fail(Bin, unterminated_string);
string(<<C, _/binary>> = Bin, _Start, _N) when C < 16#20 ->
    fail(Bin, {control_character, C});
string(Bin, _Start, _N) ->
    fail(Bin, invalid_utf8).

%% After the first escape: accumulate an iolist.
escaped(<<$", Rest/binary>>, Acc) ->
    {iolist_to_binary(lists:reverse(Acc)), Rest};
escaped(<<$\\, Rest/binary>> = Bin, Acc) ->
    case Rest of
        <<$", R/binary>> -> escaped(R, [$" | Acc]);
        <<$\\, R/binary>> -> escaped(R, [$\\ | Acc]);
        <<$/, R/binary>> -> escaped(R, [$/ | Acc]);
        <<$b, R/binary>> -> escaped(R, [$\b | Acc]);
        <<$f, R/binary>> -> escaped(R, [$\f | Acc]);
        <<$n, R/binary>> -> escaped(R, [$\n | Acc]);
        <<$r, R/binary>> -> escaped(R, [$\r | Acc]);
        <<$t, R/binary>> -> escaped(R, [$\t | Acc]);
        <<$u, R/binary>> -> unicode_escape(R, Bin, Acc);
        <<>> -> fail(Rest, unterminated_string);
        _ -> fail(Bin, invalid_escape)
    end;
escaped(Bin, Acc) ->
    plain_run(Bin, Bin, 0, Acc).

plain_run(<<C, Rest/binary>>, Start, N, Acc) when C >= 16#20, C < 16#80, C =/= $", C =/= $\\ ->
    plain_run(Rest, Start, N + 1, Acc);
plain_run(<<C/utf8, Rest/binary>>, Start, N, Acc) when C >= 16#80 ->
    plain_run(Rest, Start, N + utf8_size(C), Acc);
plain_run(<<C, _/binary>> = Bin, Start, N, Acc) when C =:= $"; C =:= $\\ ->
    escaped(Bin, [binary_part(Start, 0, N) | Acc]);
plain_run(<<>> = Bin, _Start, _N, _Acc) ->
    fail(Bin, unterminated_string);
plain_run(<<C, _/binary>> = Bin, _Start, _N, _Acc) when C < 16#20 ->
    fail(Bin, {control_character, C});
plain_run(Bin, _Start, _N, _Acc) ->
    fail(Bin, invalid_utf8).

%% `\uXXXX': Bin points at the backslash (for error offsets), R after the `u'.
unicode_escape(R, Bin, Acc) ->
    Hi = hex4(R, Bin),
    <<_:4/binary, R1/binary>> = R,
    if
        Hi >= 16#D800, Hi =< 16#DBFF ->
            case R1 of
                <<"\\u", R2/binary>> ->
                    Lo = hex4(R2, R1),
                    if
                        Lo >= 16#DC00, Lo =< 16#DFFF ->
                            <<_:4/binary, R3/binary>> = R2,
                            Cp = 16#10000 + ((Hi - 16#D800) bsl 10) + (Lo - 16#DC00),
                            escaped(R3, [<<Cp/utf8>> | Acc]);
                        true ->
                            %% Lone high surrogate; the next escape is decoded
                            %% on its own (it may start a pair itself).
                            escaped(R1, [<<16#FFFD/utf8>> | Acc])
                    end;
                _ ->
                    escaped(R1, [<<16#FFFD/utf8>> | Acc])
            end;
        Hi >= 16#DC00, Hi =< 16#DFFF ->
            escaped(R1, [<<16#FFFD/utf8>> | Acc]);
        true ->
            escaped(R1, [<<Hi/utf8>> | Acc])
    end.

hex4(<<A, B, C, D, _/binary>>, Bin) ->
    case {hex(A), hex(B), hex(C), hex(D)} of
        {HA, HB, HC, HD} when is_integer(HA), is_integer(HB), is_integer(HC), is_integer(HD) ->
            (HA bsl 12) bor (HB bsl 8) bor (HC bsl 4) bor HD;
        _ ->
            fail(Bin, invalid_unicode_escape)
    end;
hex4(_, Bin) ->
    fail(Bin, invalid_unicode_escape).

hex(C) when C >= $0, C =< $9 -> C - $0;
hex(C) when C >= $a, C =< $f -> C - $a + 10;
hex(C) when C >= $A, C =< $F -> C - $A + 10;
hex(_) -> bad.

utf8_size(C) when C < 16#800 -> 2;
utf8_size(C) when C < 16#10000 -> 3;
utf8_size(_) -> 4.

%% Numbers: scan the lexeme (validating the grammar), then convert it.
number(Bin) ->
    {N, Kind} =
        case Bin of
            <<$-, R/binary>> -> int_part(R, Bin, 1);
            _ -> int_part(Bin, Bin, 0)
        end,
    <<Text:N/binary, Rest/binary>> = Bin,
    case Kind of
        integer ->
            {binary_to_integer(Text), Rest};
        {float, HasFrac} ->
            {to_float(Text, HasFrac, Bin), Rest}
    end.

int_part(<<$0, C, _/binary>>, Bin, N) when ?IS_DIGIT(C) ->
    fail(skip(Bin, N), leading_zero);
int_part(<<$0, R/binary>>, Bin, N) ->
    frac_part(R, Bin, N + 1);
int_part(<<C, R/binary>>, Bin, N) when C >= $1, C =< $9 ->
    {R1, N1} = digits(R, N + 1),
    frac_part(R1, Bin, N1);
int_part(_, Bin, N) ->
    fail(skip(Bin, N), {invalid_number, <<"a digit">>}).

frac_part(<<$., C, R/binary>>, Bin, N) when ?IS_DIGIT(C) ->
    {R1, N1} = digits(R, N + 2),
    exp_part(R1, Bin, N1, true);
frac_part(<<$., _/binary>>, Bin, N) ->
    fail(skip(Bin, N + 1), {invalid_number, <<"a digit after '.'">>});
frac_part(R, Bin, N) ->
    exp_part(R, Bin, N, false).

exp_part(<<E, R/binary>>, Bin, N, HasFrac) when E =:= $e; E =:= $E ->
    {R1, N1} =
        case R of
            <<S, RS/binary>> when S =:= $+; S =:= $- -> {RS, N + 2};
            _ -> {R, N + 1}
        end,
    case R1 of
        <<C, R2/binary>> when ?IS_DIGIT(C) ->
            {_, N2} = digits(R2, N1 + 1),
            {N2, {float, HasFrac}};
        _ ->
            fail(skip(Bin, N1), {invalid_number, <<"a digit in the exponent">>})
    end;
exp_part(_R, _Bin, N, true) ->
    {N, {float, true}};
exp_part(_R, _Bin, N, false) ->
    {N, integer}.

digits(<<C, R/binary>>, N) when ?IS_DIGIT(C) -> digits(R, N + 1);
digits(R, N) -> {R, N}.

skip(Bin, N) ->
    <<_:N/binary, Rest/binary>> = Bin,
    Rest.

%% binary_to_float/1 needs a fraction, so "1e5" is rewritten as "1.0e5".
to_float(Text, HasFrac, Bin) ->
    Canonical =
        case HasFrac of
            true ->
                Text;
            false ->
                [Mantissa, Exp] = binary:split(Text, [<<"e">>, <<"E">>]),
                <<Mantissa/binary, ".0e", Exp/binary>>
        end,
    try
        binary_to_float(Canonical)
    catch
        error:badarg -> fail(Bin, number_out_of_range)
    end.

%% Error messages: "<what> at byte offset <N>".
message(Whole, Rest, Reason) ->
    Offset = byte_size(Whole) - byte_size(Rest),
    What = describe(Reason, Rest),
    iolist_to_binary([What, " at byte offset ", integer_to_binary(Offset)]).

describe(trailing, Rest) ->
    ["unexpected trailing data ", show(Rest)];
describe({eof, What}, _Rest) ->
    ["unexpected end of input, expected ", What];
describe({expected, What}, Rest) ->
    ["expected ", What, " but found ", show(Rest)];
describe(invalid_literal, _Rest) ->
    "invalid literal (expected true, false or null)";
describe(unterminated_string, _Rest) ->
    "unexpected end of input inside a string";
describe({control_character, C}, _Rest) ->
    io_lib:format("unescaped control character 0x~2.16.0B in a string", [C]);
describe(invalid_utf8, Rest) ->
    ["invalid UTF-8 in a string (byte ", show(Rest), ")"];
describe(invalid_escape, Rest) ->
    ["invalid escape sequence ", show_escape(Rest)];
describe(invalid_unicode_escape, Rest) ->
    ["invalid \\u escape ", show_escape(Rest)];
describe(leading_zero, _Rest) ->
    "leading zero in a number";
describe({invalid_number, What}, <<>>) ->
    ["invalid number: unexpected end of input, expected ", What];
describe({invalid_number, What}, Rest) ->
    ["invalid number: expected ", What, " but found ", show(Rest)];
describe(number_out_of_range, _Rest) ->
    "number out of the double-precision range".

show(<<>>) ->
    "end of input";
show(<<C, _/binary>>) when C >= 16#21, C =< 16#7E, C =/= $' ->
    [$', C, $'];
show(<<C, _/binary>>) ->
    io_lib:format("byte 0x~2.16.0B", [C]).

show_escape(Bin) ->
    Prefix = binary:part(Bin, 0, min(6, byte_size(Bin))),
    Printable = [C || <<C>> <= Prefix, C >= 16#20, C < 16#7F],
    [$", Printable, $"].

%%====================================================================
%% Encoding
%%====================================================================

%% @doc Encodes a term as compact JSON (no whitespace).
%%
%% Maps become objects (binary or atom keys, written in sorted key order),
%% lists become arrays, binaries become strings (they must be UTF-8; `"',
%% `\' and control characters are escaped, everything else is written as is),
%% integers and floats become numbers (floats in the shortest form that reads
%% back to the same double), `true'/`false'/`null' become literals and other
%% atoms become strings. Anything else (tuples, pids, invalid UTF-8, keys that
%% are neither binaries nor atoms) raises `error({unencodable, Term})'.
-spec encode(term()) -> iodata().
encode(true) ->
    <<"true">>;
encode(false) ->
    <<"false">>;
encode(null) ->
    <<"null">>;
encode(Atom) when is_atom(Atom) ->
    encode_string(atom_to_binary(Atom, utf8));
encode(Bin) when is_binary(Bin) ->
    encode_string(Bin);
encode(Int) when is_integer(Int) ->
    integer_to_binary(Int);
encode(Float) when is_float(Float) ->
    float_to_binary(Float, [short]);
encode(Map) when is_map(Map) ->
    Pairs = lists:keysort(1, [{key(K), V} || {K, V} <- maps:to_list(Map)]),
    case Pairs of
        [] ->
            <<"{}">>;
        [{K0, V0} | More] ->
            [${, encode_string(K0), $:, encode(V0),
             [[$,, encode_string(K), $:, encode(V)] || {K, V} <- More], $}]
    end;
encode([]) ->
    <<"[]">>;
encode([First | More] = List) when is_list(More) ->
    case is_proper(More) of
        true -> [$[, encode(First), [[$,, encode(E)] || E <- More], $]];
        false -> erlang:error({unencodable, List})
    end;
encode(Other) ->
    erlang:error({unencodable, Other}).

is_proper([]) -> true;
is_proper([_ | T]) -> is_proper(T);
is_proper(_) -> false.

key(K) when is_binary(K) -> K;
key(K) when is_atom(K) -> atom_to_binary(K, utf8);
key(K) -> erlang:error({unencodable, K}).

encode_string(Bin) ->
    [$", escape(Bin, Bin, 0, 0, []), $"].

%% escape(Rest, Whole, RunStart, RunLen, Acc): copies runs of bytes that need
%% no escaping as sub-binaries of Whole.
escape(<<>>, Whole, Start, Len, Acc) ->
    lists:reverse(Acc, [binary_part(Whole, Start, Len)]);
escape(<<C, Rest/binary>>, Whole, Start, Len, Acc) when C >= 16#20, C < 16#80, C =/= $", C =/= $\\ ->
    escape(Rest, Whole, Start, Len + 1, Acc);
escape(<<C/utf8, Rest/binary>>, Whole, Start, Len, Acc) when C >= 16#80 ->
    escape(Rest, Whole, Start, Len + utf8_size(C), Acc);
escape(<<C, Rest/binary>>, Whole, Start, Len, Acc) when C < 16#80 ->
    Esc = escape_char(C),
    Next = Start + Len + 1,
    escape(Rest, Whole, Next, 0, [Esc, binary_part(Whole, Start, Len) | Acc]);
escape(_Invalid, Whole, _Start, _Len, _Acc) ->
    erlang:error({unencodable, Whole}).

escape_char($") -> <<"\\\"">>;
escape_char($\\) -> <<"\\\\">>;
escape_char($\n) -> <<"\\n">>;
escape_char($\r) -> <<"\\r">>;
escape_char($\t) -> <<"\\t">>;
escape_char($\b) -> <<"\\b">>;
escape_char($\f) -> <<"\\f">>;
escape_char(C) -> iolist_to_binary(io_lib:format("\\u~4.16.0B", [C])).
