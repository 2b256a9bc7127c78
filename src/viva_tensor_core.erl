%% @doc The Erlang core of viva_tensor, shared by the Gleam and Elixir APIs.
%%
%% It validates options, picks the backend (`cuda' / `cpu' through the NIF, or the pure-BEAM
%% `beam' backend), tokenizes prompts, checks them against the model, and runs generations as
%% jobs that stream messages to the caller (see docs/architecture.md for every term).
-module(viva_tensor_core).

-export([load_model/2, generate/3, stream_start/3, cancel/1, collect/1,
         load_tokenizer/1, tokenize/3, detokenize/2, model_info/1, model_backend/1,
         forward_logits/2, backend/0, default_backend/0, normalize_generate_opts/1]).

-export_type([model/0, tokenizer/0, job/0, reason/0]).

-type backend() :: cpu | cuda | beam.
-opaque model() :: {viva_tensor_model, backend(), term()}.
-opaque tokenizer() :: {viva_tensor_tokenizer, nif | beam, term()}.
-opaque job() :: {viva_tensor_job, reference(), term()}.
-type reason() :: {atom(), binary()}.

-define(U64, 16#FFFFFFFFFFFFFFFF).

%%% ---------------------------------------------------------------- backends

%% @doc The backend requested by `VIVA_TENSOR_BACKEND' (`auto' when unset).
-spec default_backend() -> auto | backend().
default_backend() ->
    case os:getenv("VIVA_TENSOR_BACKEND") of
        false -> auto;
        "" -> auto;
        "auto" -> auto;
        "cpu" -> cpu;
        "cuda" -> cuda;
        "beam" -> beam;
        _ -> auto
    end.

%% @doc What `auto' resolves to in this VM: `cuda' when the NIF loads and a usable GPU is
%% present, `cpu' when only the NIF loads, else `beam'.
-spec backend() -> backend().
backend() ->
    case default_backend() of
        auto ->
            case viva_tensor_nif:load() of
                ok ->
                    case viva_tensor_nif:cuda_device() of
                        {ok, _} -> cuda;
                        {error, _} -> cpu
                    end;
                {error, _} -> beam
            end;
        B -> B
    end.

%%% ---------------------------------------------------------------- loading

%% @doc Loads a checkpoint (folder, `.safetensors' file or `model.safetensors.index.json').
%% Options: `backend => auto | cpu | cuda | beam', `weights => auto | f32 | bf16 | fp8'.
-spec load_model(iodata(), map()) -> {ok, model()} | {error, reason()}.
load_model(Path0, Opts) when is_map(Opts) ->
    maybe_ok([
        fun(_) -> to_text(Path0, <<"path">>) end,
        fun(Path) ->
            case check_keys(Opts, [backend, weights]) of
                ok -> {ok, Path};
                E -> E
            end
        end,
        fun(Path) ->
            Backend = maps:get(backend, Opts, default_backend()),
            Weights = maps:get(weights, Opts, auto),
            case {lists:member(Backend, [auto, cpu, cuda, beam]),
                  lists:member(Weights, [auto, f32, bf16, fp8])} of
                {false, _} -> invalid("backend must be auto, cpu, cuda or beam, got ~p", [Backend]);
                {_, false} -> invalid("weights must be auto, f32, bf16 or fp8, got ~p", [Weights]);
                _ -> load_with(Path, Backend, Weights)
            end
        end], undefined);
load_model(_Path, Opts) ->
    invalid("load options must be a map, got ~p", [Opts]).

load_with(Path, beam, Weights) when Weights =:= auto; Weights =:= f32 ->
    case viva_tensor_beam:load_model(Path, #{}) of
        {ok, H} -> {ok, {viva_tensor_model, beam, H}};
        Err -> Err
    end;
load_with(_Path, beam, Weights) ->
    invalid("weights ~p need a native backend; the beam backend computes in f64/f32", [Weights]);
load_with(Path, auto, Weights) ->
    case {default_backend(), viva_tensor_nif:load()} of
        {beam, _} -> load_with(Path, beam, Weights);
        {_, ok} -> load_native(Path, auto, Weights);
        {_, {error, _}} -> load_with(Path, beam, Weights)
    end;
load_with(Path, Backend, Weights) ->
    case viva_tensor_nif:load() of
        ok -> load_native(Path, Backend, Weights);
        Err -> Err
    end.

load_native(Path, Backend, Weights) ->
    case viva_tensor_nif:model_load(Path, Backend, Weights) of
        {ok, H} ->
            #{backend := B} = viva_tensor_nif:model_info(H),
            {ok, {viva_tensor_model, B, H}};
        {error, _} = Err -> Err
    end.

%% @doc Loads a `tokenizer.json' (or the one inside a folder), natively when the NIF is available.
-spec load_tokenizer(iodata()) -> {ok, tokenizer()} | {error, reason()}.
load_tokenizer(Path0) ->
    case to_text(Path0, <<"path">>) of
        {ok, Path} ->
            UseNif = default_backend() =/= beam andalso viva_tensor_nif:load() =:= ok,
            case UseNif of
                true -> wrap_tok(nif, viva_tensor_nif:tokenizer_load(Path));
                false -> wrap_tok(beam, viva_tensor_beam_tokenizer:load(Path))
            end;
        Err -> Err
    end.

wrap_tok(Kind, {ok, H}) -> {ok, {viva_tensor_tokenizer, Kind, H}};
wrap_tok(_, Err) -> Err.

%%% ---------------------------------------------------------------- model facts

%% @doc Facts about a model: backend, weights, vocab_size, hidden_size, num_layers,
%% max_position_embeddings, bos_token_id, eos_token_ids, ...
-spec model_info(model()) -> map().
model_info({viva_tensor_model, beam, H}) -> viva_tensor_beam:info(H);
model_info({viva_tensor_model, _, H}) -> viva_tensor_nif:model_info(H).

%% @doc The backend a model runs on.
-spec model_backend(model()) -> backend().
model_backend({viva_tensor_model, B, _}) -> B.

%%% ---------------------------------------------------------------- tokenizing

%% @doc Token ids of `Text' with a model's or a standalone tokenizer.
-spec tokenize(model() | tokenizer(), iodata(), boolean()) -> {ok, [non_neg_integer()]} | {error, reason()}.
tokenize(Tok, Text0, AddSpecial) when is_boolean(AddSpecial) ->
    case to_text(Text0, <<"text">>) of
        {ok, Text} -> do_tokenize(Tok, Text, AddSpecial);
        Err -> Err
    end;
tokenize(_Tok, _Text, AddSpecial) ->
    invalid("add_special_tokens must be a boolean, got ~p", [AddSpecial]).

do_tokenize({viva_tensor_model, beam, H}, Text, Add) ->
    viva_tensor_beam_tokenizer:encode(viva_tensor_beam:tokenizer(H), Text, Add);
do_tokenize({viva_tensor_model, _, H}, Text, Add) -> viva_tensor_nif:model_tokenize(H, Text, Add);
do_tokenize({viva_tensor_tokenizer, beam, H}, Text, Add) -> viva_tensor_beam_tokenizer:encode(H, Text, Add);
do_tokenize({viva_tensor_tokenizer, nif, H}, Text, Add) -> viva_tensor_nif:tokenizer_encode(H, Text, Add);
do_tokenize(Other, _, _) -> invalid("expected a model or a tokenizer, got ~p", [Other]).

%% @doc Text of `Ids' (special tokens skipped).
-spec detokenize(model() | tokenizer(), [non_neg_integer()]) -> {ok, binary()} | {error, reason()}.
detokenize(Tok, Ids) ->
    case valid_ids(Ids) of
        true -> do_detokenize(Tok, Ids);
        false -> invalid("token ids must be a list of non-negative integers, got ~p", [Ids])
    end.

do_detokenize({viva_tensor_model, beam, H}, Ids) -> beam_decode(viva_tensor_beam:tokenizer(H), Ids);
do_detokenize({viva_tensor_model, _, H}, Ids) -> viva_tensor_nif:model_detokenize(H, Ids);
do_detokenize({viva_tensor_tokenizer, beam, H}, Ids) -> beam_decode(H, Ids);
do_detokenize({viva_tensor_tokenizer, nif, H}, Ids) -> viva_tensor_nif:tokenizer_decode(H, Ids);
do_detokenize(Other, _) -> invalid("expected a model or a tokenizer, got ~p", [Other]).

beam_decode(Tok, Ids) ->
    Vocab = viva_tensor_beam_tokenizer:vocab_size(Tok),
    case [I || I <- Ids, I >= Vocab] of
        [] -> viva_tensor_beam_tokenizer:decode(Tok, Ids, true);
        [Bad | _] -> error_msg(token_out_of_range, "token id ~p is outside the vocabulary (size ~p)", [Bad, Vocab])
    end.

%%% ---------------------------------------------------------------- generation

%% @doc Generates a continuation of `Prompt' and waits for it. See docs/architecture.md for options.
-spec generate(model(), iodata(), map()) -> {ok, map()} | {error, reason()}.
generate(Model, Prompt, Opts) ->
    case stream_start(Model, Prompt, Opts) of
        {ok, Job} -> collect(Job);
        Err -> Err
    end.

%% @doc Waits for a started job's `done' (or `error') message, dropping its token messages.
-spec collect(job()) -> {ok, map()} | {error, reason()}.
collect({viva_tensor_job, Ref, Handle}) ->
    Mon = case is_pid(Handle) of
              true -> erlang:monitor(process, Handle);
              false -> undefined
          end,
    Result = collect_loop(Ref, Mon),
    case Mon of
        undefined -> ok;
        _ -> erlang:demonitor(Mon, [flush])
    end,
    Result.

collect_loop(Ref, Mon) ->
    receive
        {viva_tensor, Ref, {token, _, _}} -> collect_loop(Ref, Mon);
        {viva_tensor, Ref, {done, Stats}} -> {ok, Stats};
        {viva_tensor, Ref, {error, Reason}} -> {error, Reason};
        {'DOWN', Mon, process, _, Why} when Mon =/= undefined ->
            error_msg(internal, "the generation process died: ~p", [Why])
    end.

%% @doc Starts a generation job; the caller receives `{viva_tensor, Ref, {token, Id, Piece}}'
%% messages and then `{viva_tensor, Ref, {done, Stats}}' or `{viva_tensor, Ref, {error, Reason}}'.
-spec stream_start(model(), iodata(), map()) -> {ok, job()} | {error, reason()}.
stream_start({viva_tensor_model, Backend, H} = Model, Prompt, Opts0) ->
    maybe_ok([
        fun(_) -> normalize_generate_opts(Opts0) end,
        fun(Opts) ->
            case prompt_ids(Model, Prompt, Opts) of
                {ok, Ids} -> {ok, {Opts, Ids}};
                E -> E
            end
        end,
        fun({Opts, Ids}) ->
            case check_prompt(model_info(Model), Ids) of
                ok -> {ok, {Opts, Ids}};
                E -> E
            end
        end,
        fun({Opts, Ids}) ->
            Ref = make_ref(),
            JobOpts = maps:remove(prompt_ids, Opts),
            Started = case Backend of
                          beam -> viva_tensor_beam:start_job(H, Ids, JobOpts, self(), Ref);
                          _ -> viva_tensor_nif:generate_start(H, Ids, JobOpts, self(), Ref)
                      end,
            case Started of
                {ok, Handle} -> {ok, {viva_tensor_job, Ref, Handle}};
                Err -> Err
            end
        end], undefined);
stream_start(Other, _Prompt, _Opts) ->
    invalid("expected a model, got ~p", [Other]).

%% @doc Asks a job to stop; it still ends with `done' and `finish_reason => cancelled'.
-spec cancel(job()) -> ok.
cancel({viva_tensor_job, _Ref, Pid}) when is_pid(Pid) -> viva_tensor_beam:cancel(Pid);
cancel({viva_tensor_job, _Ref, Handle}) -> viva_tensor_nif:job_cancel(Handle), ok.

%% @doc Last-position logits (floats) of `Ids' fed to a fresh cache: for tests and tools.
-spec forward_logits(model(), [non_neg_integer()]) -> {ok, [float()]} | {error, reason()}.
forward_logits({viva_tensor_model, beam, H}, Ids) -> viva_tensor_beam:forward_logits(H, Ids);
forward_logits({viva_tensor_model, _, H}, Ids) ->
    case viva_tensor_nif:kv_cache_new(H) of
        {ok, Cache} ->
            case viva_tensor_nif:model_forward(H, Cache, Ids) of
                {ok, Bin} -> {ok, [X || <<X:32/float-little>> <= Bin]};
                Err -> Err
            end;
        Err -> Err
    end.

prompt_ids(Model, Prompt, #{prompt_ids := undefined}) ->
    case to_text(Prompt, <<"prompt">>) of
        {ok, Text} -> tokenize(Model, Text, true);
        Err -> Err
    end;
prompt_ids(_Model, _Prompt, #{prompt_ids := Ids}) ->
    {ok, Ids}.

check_prompt(#{vocab_size := Vocab, max_position_embeddings := Ctx}, Ids) ->
    N = length(Ids),
    case [I || I <- Ids, I >= Vocab] of
        _ when N =:= 0 -> invalid("the prompt has no tokens", []);
        _ when N > Ctx ->
            error_msg(prompt_too_long, "the prompt has ~p tokens but the model's context is ~p positions",
                      [N, Ctx]);
        [Bad | _] ->
            error_msg(token_out_of_range, "prompt token id ~p is outside the vocabulary (size ~p)", [Bad, Vocab]);
        [] -> ok
    end.

%%% ---------------------------------------------------------------- options

-define(GEN_DEFAULTS, #{max_new_tokens => 64, temperature => 0.0, top_k => 0, top_p => 1.0, min_p => 0.0,
                        repetition_penalty => 1.0, presence_penalty => 0.0, frequency_penalty => 0.0,
                        seed => 42, stop_on_eos => true, stop => [], prompt_ids => undefined}).

%% @doc Validates generation options and fills in defaults; errors are `{invalid_option, Msg}'.
-spec normalize_generate_opts(map()) -> {ok, map()} | {error, reason()}.
normalize_generate_opts(Opts) when is_map(Opts) ->
    case check_keys(Opts, maps:keys(?GEN_DEFAULTS)) of
        ok ->
            Merged = maps:merge(?GEN_DEFAULTS, Opts),
            maps:fold(fun(K, V, {ok, Acc}) ->
                              case norm_opt(K, V) of
                                  {ok, V2} -> {ok, Acc#{K => V2}};
                                  Err -> Err
                              end;
                         (_, _, Err) -> Err
                      end, {ok, #{}}, Merged);
        Err -> Err
    end;
normalize_generate_opts(Opts) ->
    invalid("generate options must be a map, got ~p", [Opts]).

norm_opt(max_new_tokens, N) when is_integer(N), N >= 0 -> {ok, N};
norm_opt(max_new_tokens, N) -> invalid("max_new_tokens must be an integer >= 0, got ~p", [N]);
norm_opt(temperature, T) when is_number(T), T >= 0 -> {ok, float(T)};
norm_opt(temperature, T) -> invalid("temperature must be a number >= 0, got ~p", [T]);
norm_opt(top_k, infinity) -> {ok, 0};
norm_opt(top_k, K) when is_integer(K), K >= 0 -> {ok, K};
norm_opt(top_k, K) -> invalid("top_k must be an integer >= 0 (0 = no limit) or infinity, got ~p", [K]);
norm_opt(top_p, P) when is_number(P), P > 0, P =< 1 -> {ok, float(P)};
norm_opt(top_p, P) -> invalid("top_p must be in (0, 1], got ~p", [P]);
norm_opt(min_p, P) when is_number(P), P >= 0, P =< 1 -> {ok, float(P)};
norm_opt(min_p, P) -> invalid("min_p must be in [0, 1], got ~p", [P]);
norm_opt(repetition_penalty, R) when is_number(R), R > 0 -> {ok, float(R)};
norm_opt(repetition_penalty, R) -> invalid("repetition_penalty must be > 0, got ~p", [R]);
norm_opt(K, P) when (K =:= presence_penalty orelse K =:= frequency_penalty), is_number(P), P >= -2, P =< 2 ->
    {ok, float(P)};
norm_opt(K, P) when K =:= presence_penalty; K =:= frequency_penalty ->
    invalid("~p must be in [-2, 2], got ~p", [K, P]);
norm_opt(seed, S) when is_integer(S) -> {ok, S band ?U64};
norm_opt(seed, S) -> invalid("seed must be an integer, got ~p", [S]);
norm_opt(stop_on_eos, B) when is_boolean(B) -> {ok, B};
norm_opt(stop_on_eos, B) -> invalid("stop_on_eos must be a boolean, got ~p", [B]);
norm_opt(stop, L) when is_list(L) ->
    Texts = [to_text(S, <<"stop sequence">>) || S <- L],
    case [E || {error, _} = E <- Texts] of
        [E | _] -> E;
        [] ->
            Bins = [B || {ok, B} <- Texts],
            case lists:member(<<>>, Bins) of
                true -> invalid("stop sequences must not be empty", []);
                false -> {ok, Bins}
            end
    end;
norm_opt(stop, L) -> invalid("stop must be a list of strings, got ~p", [L]);
norm_opt(prompt_ids, undefined) -> {ok, undefined};
norm_opt(prompt_ids, Ids) ->
    case valid_ids(Ids) of
        true -> {ok, Ids};
        false -> invalid("prompt_ids must be a list of non-negative integers, got ~p", [Ids])
    end.

check_keys(Opts, Allowed) ->
    case [K || K <- maps:keys(Opts), not lists:member(K, Allowed)] of
        [] -> ok;
        [K | _] -> invalid("unknown option ~p (allowed: ~p)", [K, Allowed])
    end.

%%% ---------------------------------------------------------------- helpers

valid_ids(Ids) when is_list(Ids) -> lists:all(fun(I) -> is_integer(I) andalso I >= 0 end, Ids);
valid_ids(_) -> false.

to_text(T, What) when is_binary(T); is_list(T) ->
    try unicode:characters_to_binary(T) of
        B when is_binary(B) -> {ok, B};
        _ -> invalid("~s is not valid UTF-8 text", [What])
    catch
        _:_ -> invalid("~s must be a string, got ~p", [What, T])
    end;
to_text(T, What) -> invalid("~s must be a string, got ~p", [What, T]).

invalid(Fmt, Args) -> error_msg(invalid_option, Fmt, Args).

error_msg(Kind, Fmt, Args) ->
    {error, {Kind, iolist_to_binary(io_lib:format(Fmt, Args))}}.

%% Runs `Steps' left to right, threading each `{ok, V}' into the next; stops at the first error.
maybe_ok([], Acc) -> {ok, Acc};
maybe_ok([Step], Acc) -> Step(Acc);
maybe_ok([Step | Rest], Acc) ->
    case Step(Acc) of
        {ok, V} -> maybe_ok(Rest, V);
        Err -> Err
    end.
