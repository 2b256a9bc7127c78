%% @doc Where the EUnit suites find `../shared/fixtures': `$VIVA_TENSOR_FIXTURES', else the folder
%% beside the repository root (the working directory of `make test', or two levels above this file).
-module(viva_tensor_fixtures).

-export([dir/0, path/1]).

%% @doc The fixtures folder; raises `{fixtures_not_found, Candidates}' when none holds stories260k.
-spec dir() -> file:filename().
dir() ->
    Src = proplists:get_value(source, ?MODULE:module_info(compile), "."),
    Candidates =
        [D || D <- [os:getenv("VIVA_TENSOR_FIXTURES")], D =/= false, D =/= ""] ++
        [filename:absname("../shared/fixtures"),
         filename:join([filename:dirname(Src), "..", "..", "shared", "fixtures"])],
    case [D || D <- Candidates, filelib:is_dir(filename:join(D, "stories260k"))] of
        [D | _] -> D;
        [] -> error({fixtures_not_found, Candidates})
    end.

%% @doc `Rel' inside the fixtures folder, as a binary.
-spec path(file:filename()) -> binary().
path(Rel) ->
    unicode:characters_to_binary(filename:join(dir(), Rel)).
