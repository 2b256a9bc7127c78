%% Erlang helpers for the Gleam tests (test/**/*.gleam): the test runner,
%% fixtures and reference.json, assertions, environment.
-module(viva_tensor_test_ffi).

-export([run_tests/0, fixtures_dir/0, reference_cases/1, tokenizer_vectors/1,
         getenv/1, expect_equal/3, fail/2, println/1,
         record_piece/1, take_pieces/0, cut_before/2]).

-define(PIECES, viva_tensor_test_pieces).

%% --- runner -------------------------------------------------------------------

%% Runs every exported arity-0 function ending in `_test` of the Gleam test
%% modules (viva_tensor_test and viva_tensor@..._test, found next to this
%% module's .beam), each in its own process, up to VIVA_TENSOR_TEST_JOBS at once
%% (default: the number of schedulers; 1 runs them one by one). Prints one line
%% per test, in module and name order, with the reason of each failure; returns
%% {Passed, Failed}. VIVA_TENSOR_TEST_TIMEOUT (seconds, default 600) bounds one test.
-spec run_tests() -> {non_neg_integer(), non_neg_integer()}.
run_tests() ->
    Tests = [{M, F} || M <- test_modules(), F <- test_functions(M)],
    Timeout = env_integer("VIVA_TENSOR_TEST_TIMEOUT", 600),
    Jobs = max(1, env_integer("VIVA_TENSOR_TEST_JOBS", erlang:system_info(schedulers_online))),
    io:format("Running ~b Gleam tests (backend ~s, fixtures ~ts, ~b at a time)~n",
              [length(Tests), backend_name(), fixtures_dir(), Jobs]),
    Indexed = lists:zip(lists:seq(1, length(Tests)), Tests),
    Results = run_pool(Indexed, #{}, #{}, 1, Jobs, Timeout * 1000, []),
    Failed = length([x || failed <- Results]),
    {length(Results) - Failed, Failed}.

env_integer(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        S -> list_to_integer(S)
    end.

backend_name() ->
    case os:getenv("VIVA_TENSOR_BACKEND") of
        false -> "auto";
        B -> B
    end.

test_modules() ->
    Dir = filename:dirname(code:which(?MODULE)),
    Names = [filename:basename(F, ".beam")
             || F <- filelib:wildcard(filename:join(Dir, "*_test.beam"))],
    lists:sort([list_to_atom(N) || N <- Names,
                                   N =:= "viva_tensor_test"
                                       orelse lists:prefix("viva_tensor@", N)]).

test_functions(Module) ->
    {module, Module} = code:ensure_loaded(Module),
    lists:sort([F || {F, 0} <- Module:module_info(exports),
                     lists:suffix("_test", atom_to_list(F))]).

%% Pending: [{Index, {M, F}}] not started yet; Running: Pid => {Index, Test,
%% MRef, TRef, Start}; Done: Index => {Test, Outcome, Ms}; Next: the next index
%% to print. Returns the printed outcomes (passed | failed), in order.
run_pool([], Running, _Done, _Next, _Jobs, _Timeout, Acc) when map_size(Running) =:= 0 ->
    lists:reverse(Acc);
run_pool([{I, {M, F} = Test} | Pending], Running, Done, Next, Jobs, Timeout, Acc)
  when map_size(Running) < Jobs ->
    {Pid, MRef} = spawn_monitor(fun() ->
                                        try M:F() of
                                            _ -> exit(passed)
                                        catch
                                            Class:Reason:Stack ->
                                                exit({failed, Class, Reason, Stack})
                                        end
                                end),
    TRef = erlang:send_after(Timeout, self(), {test_timeout, Pid}),
    Running2 = Running#{Pid => {I, Test, MRef, TRef, erlang:monotonic_time(millisecond)}},
    run_pool(Pending, Running2, Done, Next, Jobs, Timeout, Acc);
run_pool(Pending, Running, Done, Next, Jobs, Timeout, Acc) ->
    {Pid, Outcome} =
        receive
            {'DOWN', _, process, P, passed} when is_map_key(P, Running) -> {P, passed};
            {'DOWN', _, process, P, {failed, C, R, S}} when is_map_key(P, Running) -> {P, {C, R, S}};
            {'DOWN', _, process, P, Other} when is_map_key(P, Running) -> {P, {exit, Other, []}};
            {test_timeout, P} when is_map_key(P, Running) ->
                {_, _, MRef0, _, _} = maps:get(P, Running),
                demonitor(MRef0, [flush]),
                exit(P, kill),
                {P, {timeout, Timeout div 1000, []}}
        end,
    {I, Test, MRef, TRef, Start} = maps:get(Pid, Running),
    demonitor(MRef, [flush]),
    _ = erlang:cancel_timer(TRef),
    receive {test_timeout, Pid} -> ok after 0 -> ok end,
    Ms = erlang:monotonic_time(millisecond) - Start,
    Done2 = Done#{I => {Test, Outcome, Ms}},
    {Next2, Acc2} = print_ready(Done2, Next, Acc),
    run_pool(Pending, maps:remove(Pid, Running), Done2, Next2, Jobs, Timeout, Acc2).

%% Prints the finished tests from index Next on, up to the first unfinished one.
print_ready(Done, Next, Acc) ->
    case maps:find(Next, Done) of
        {ok, {{M, F}, Outcome, Ms}} ->
            Name = io_lib:format("~ts.~ts", [gleam_module_name(M), F]),
            Result = case Outcome of
                         passed ->
                             io:format("  ok    ~ts (~b ms)~n", [Name, Ms]),
                             passed;
                         {Class, Reason, Stack} ->
                             io:format("  FAIL  ~ts (~b ms)~n~ts~n",
                                       [Name, Ms, format_failure(Class, Reason, Stack)]),
                             failed
                     end,
            print_ready(Done, Next + 1, [Result | Acc]);
        error ->
            {Next, Acc}
    end.

gleam_module_name(M) ->
    string:replace(atom_to_list(M), "@", "/", all).

format_failure(timeout, Seconds, _) ->
    io_lib:format("        timed out after ~b s (VIVA_TENSOR_TEST_TIMEOUT)", [Seconds]);
format_failure(error, #{gleam_error := Kind} = E, _Stack) ->
    %% Gleam's `let assert`, `panic` and `todo`.
    Where = io_lib:format("~ts.~ts line ~p", [maps:get(module, E, <<"?">>),
                                              maps:get(function, E, <<"?">>),
                                              maps:get(line, E, 0)]),
    Value = case E of
                #{value := V} -> io_lib:format("~n        value: ~tP", [V, 40]);
                _ -> ""
            end,
    io_lib:format("        ~p at ~ts: ~ts~ts",
                  [Kind, Where, maps:get(message, E, <<>>), Value]);
format_failure(error, {expect_equal, What, Got, Want}, Stack) ->
    io_lib:format("        ~ts~n        got:  ~tP~n        want: ~tP~ts",
                  [What, Got, 60, Want, 60, caller(Stack)]);
format_failure(error, {test_failed, Message, Value}, Stack) ->
    io_lib:format("        ~ts: ~tP~ts", [Message, Value, 40, caller(Stack)]);
format_failure(Class, Reason, Stack) ->
    Frames = [io_lib:format("~n          ~tp", [Frame]) || Frame <- lists:sublist(Stack, 4)],
    io_lib:format("        ~p: ~tP~ts", [Class, Reason, 40, Frames]).

%% "\n        at Module:Function/Arity line N" (of the generated Erlang) for the
%% first stack frame outside this module, if any (a tail call leaves none).
caller(Stack) ->
    case [Frame || {M, _, _, _} = Frame <- Stack, M =/= ?MODULE] of
        [{M, F, A, Loc} | _] ->
            Arity = case A of
                        N when is_integer(N) -> N;
                        L -> length(L)
                    end,
            io_lib:format("~n        at ~ts:~ts/~b line ~p of the generated Erlang",
                          [gleam_module_name(M), F, Arity, proplists:get_value(line, Loc, 0)]);
        [] ->
            ""
    end.

%% --- assertions and output ----------------------------------------------------

-spec expect_equal(term(), term(), binary()) -> nil.
expect_equal(Same, Same, _What) -> nil;
expect_equal(Got, Want, What) -> erlang:error({expect_equal, What, Got, Want}).

-spec fail(binary(), term()) -> no_return().
fail(Message, Value) -> erlang:error({test_failed, Message, Value}).

-spec println(binary()) -> nil.
println(Text) ->
    io:put_chars([Text, $\n]),
    nil.

-spec record_piece(binary()) -> nil.
record_piece(Piece) ->
    put(?PIECES, [Piece | case get(?PIECES) of undefined -> []; L -> L end]),
    nil.

-spec take_pieces() -> [binary()].
take_pieces() ->
    case erase(?PIECES) of
        undefined -> [];
        L -> lists:reverse(L)
    end.

-spec cut_before(binary(), binary()) -> {ok, binary()} | {error, nil}.
cut_before(Text, Pattern) ->
    case binary:match(Text, Pattern) of
        {Pos, _} -> {ok, binary:part(Text, 0, Pos)};
        nomatch -> {error, nil}
    end.

%% --- environment and fixtures -------------------------------------------------

-spec getenv(binary()) -> {ok, binary()} | {error, nil}.
getenv(Name) ->
    case os:getenv(binary_to_list(Name)) of
        false -> {error, nil};
        Value -> {ok, unicode:characters_to_binary(Value)}
    end.

-spec fixtures_dir() -> binary().
fixtures_dir() ->
    Dir = case os:getenv("VIVA_TENSOR_FIXTURES") of
              false -> "../shared/fixtures";
              "" -> "../shared/fixtures";
              D -> D
          end,
    unicode:characters_to_binary(normalize(filename:absname(Dir))).

%% "/a/b/../c/." -> "/a/c"
normalize(Path) ->
    [Root | Parts] = filename:split(Path),
    filename:join([Root | lists:reverse(lists:foldl(fun(".", Acc) -> Acc;
                                                       ("..", [_ | Acc]) -> Acc;
                                                       ("..", []) -> [];
                                                       (P, Acc) -> [P | Acc]
                                                    end, [], Parts))]).

%% reference.json "cases" as Gleam RefCase records:
%% {ref_case, Label, Prompt, InputIds, GreedyNewIds, GreedyNewText}.
-spec reference_cases(binary()) -> [tuple()].
reference_cases(Fixture) ->
    [begin
         Prompt = case get_key(<<"prompt">>, C, null) of
                      P when is_binary(P) -> P;
                      _ -> <<>>
                  end,
         Label = case get_key(<<"label">>, C, null) of
                     L when is_binary(L) -> L;
                     _ -> Prompt
                 end,
         {ref_case, Label, Prompt,
          get_key(<<"input_ids">>, C),
          get_key(<<"greedy_new_ids">>, C),
          get_key(<<"greedy_new_text">>, C)}
     end || C <- get_key(<<"cases">>, reference(Fixture))].

%% reference.json "tokenizer_vectors" as Gleam TokVector records:
%% {tok_vector, Text, IdsWithBos, IdsNoSpecial, DecodeSkipSpecial}.
-spec tokenizer_vectors(binary()) -> [tuple()].
tokenizer_vectors(Fixture) ->
    [{tok_vector,
      get_key(<<"text">>, V),
      get_key(<<"ids_with_bos">>, V),
      get_key(<<"ids_no_special">>, V),
      get_key(<<"decode_skip_special">>, V)}
     || V <- get_key(<<"tokenizer_vectors">>, reference(Fixture))].

%% The fixture's reference.json, decoded with the project's own JSON decoder.
reference(Fixture) ->
    Path = filename:join([fixtures_dir(), Fixture, <<"reference.json">>]),
    Bin = case file:read_file(Path) of
              {ok, B} -> B;
              {error, Reason} -> erlang:error({test_failed, <<"cannot read reference.json">>, {Path, Reason}})
          end,
    case viva_tensor_json:decode(Bin) of
        {ok, Term} -> Term;
        {error, Reason2} -> erlang:error({test_failed, <<"cannot decode reference.json">>, {Path, Reason2}});
        Term -> Term
    end.

get_key(Key, Object) ->
    case get_key(Key, Object, '$missing') of
        '$missing' -> erlang:error({test_failed, <<"reference.json: missing key">>, Key});
        Value -> Value
    end.

get_key(Key, Object, Default) when is_map(Object) ->
    case maps:find(Key, Object) of
        {ok, V} -> V;
        error -> maps:get(binary_to_atom(Key, utf8), Object, Default)
    end.
