%% @doc NIF stubs and loader for `libviva_tensor_nif'.
%%
%% The library is never loaded on module load: `viva_tensor_core' calls {@link load/0} only when a
%% native backend is wanted, so `VIVA_TENSOR_BACKEND=beam' runs with no NIF at all.
-module(viva_tensor_nif).

-export([load/0, is_loaded/0, lib_path/0]).
-export([nif_loaded/0, model_load/3, model_info/1, model_tokenize/3, model_detokenize/2,
         tokenizer_load/1, tokenizer_encode/3, tokenizer_decode/2, tokenizer_vocab_size/1,
         kv_cache_new/1, kv_cache_len/1, model_forward/3,
         generate_start/5, job_cancel/1, cuda_device/0]).

-define(LIB, "libviva_tensor_nif").
-define(NOT_LOADED, erlang:nif_error({nif_unavailable, <<"the viva_tensor NIF is not loaded">>})).

%% @doc Loads the NIF library once; `ok' or `{error, {nif_unavailable, Message}}'.
-spec load() -> ok | {error, {nif_unavailable, binary()}}.
load() ->
    case is_loaded() of
        true -> ok;
        false -> try_paths(candidates(), [])
    end.

%% @doc Whether the NIF library is loaded in this VM.
-spec is_loaded() -> boolean().
is_loaded() ->
    try nif_loaded() of
        true -> true;
        _ -> false
    catch
        _:_ -> false
    end.

%% @doc The first existing candidate path of the library (without extension), or `undefined'.
-spec lib_path() -> string() | undefined.
lib_path() ->
    case [P || P <- candidates(), filelib:is_regular(P ++ ".so")] of
        [P | _] -> P;
        [] -> undefined
    end.

try_paths([], Errors) ->
    Detail = lists:join("; ", [io_lib:format("~s: ~p", [P, R]) || {P, R} <- lists:reverse(Errors)]),
    {error, {nif_unavailable,
             iolist_to_binary(["cannot load ", ?LIB, ".so (build it with `make nif`; or set "
                               "VIVA_TENSOR_NIF to its path without extension). Tried: ", Detail])}};
try_paths([Path | Rest], Errors) ->
    case filelib:is_regular(Path ++ ".so") of
        false ->
            try_paths(Rest, [{Path, not_found} | Errors]);
        true ->
            case erlang:load_nif(Path, 0) of
                ok -> ok;
                {error, Reason} ->
                    %% Another process may have loaded it concurrently.
                    case is_loaded() of
                        true -> ok;
                        false -> try_paths(Rest, [{Path, Reason} | Errors])
                    end
            end
    end.

candidates() ->
    Env = case os:getenv("VIVA_TENSOR_NIF") of
              false -> [];
              "" -> [];
              P -> [filename:rootname(P, ".so")]
          end,
    App = case code:priv_dir(viva_tensor) of
              {error, _} -> [];
              Dir -> [filename:join(Dir, ?LIB)]
          end,
    Beside = case code:which(?MODULE) of
                 Beam when is_list(Beam) ->
                     Ebin = filename:dirname(Beam),
                     [filename:join([Ebin, "..", "priv", ?LIB]),
                      filename:join([Ebin, "..", "..", "priv", ?LIB]),
                      filename:join([Ebin, "..", "..", "..", "priv", ?LIB])];
                 _ -> []
             end,
    {ok, Cwd} = file:get_cwd(),
    Env ++ App ++ Beside ++ [filename:join([Cwd, "priv", ?LIB])].

%% Stubs, replaced when the library loads.
nif_loaded() -> false.
model_load(_Path, _Backend, _Weights) -> ?NOT_LOADED.
model_info(_Model) -> ?NOT_LOADED.
model_tokenize(_Model, _Text, _AddSpecial) -> ?NOT_LOADED.
model_detokenize(_Model, _Ids) -> ?NOT_LOADED.
tokenizer_load(_Path) -> ?NOT_LOADED.
tokenizer_encode(_Tok, _Text, _AddSpecial) -> ?NOT_LOADED.
tokenizer_decode(_Tok, _Ids) -> ?NOT_LOADED.
tokenizer_vocab_size(_Tok) -> ?NOT_LOADED.
kv_cache_new(_Model) -> ?NOT_LOADED.
kv_cache_len(_Cache) -> ?NOT_LOADED.
model_forward(_Model, _Cache, _Ids) -> ?NOT_LOADED.
generate_start(_Model, _Ids, _Opts, _Pid, _Ref) -> ?NOT_LOADED.
job_cancel(_Job) -> ?NOT_LOADED.
cuda_device() -> ?NOT_LOADED.
