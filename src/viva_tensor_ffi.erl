%% Adapters between the Gleam API (src/viva_tensor.gleam) and the Erlang core
%% (viva_tensor_core): Gleam records and constructors in, core maps and atoms
%% out, and back. Only the Gleam module calls these.
%%
%% Gleam shapes used here (see the compiled viva_tensor.erl for the types):
%%   GenerateOpts   {generate_opts, MaxNew, Temperature, TopK, TopP, Seed, StopOnEos}
%%   TopK           {top_k, N} | top_k_infinity
%%   GenerateOption {stop_sequences, [binary()]} | {prompt_ids, [integer()]}
%%   GenerateResult {generate_result, Text, Tokens, PromptTokens, FinishReason,
%%                   Backend, PrefillUs, DecodeUs}
%%   VivaError      {viva_error, Kind, Message}
%%   Backend        auto | cpu | cuda | beam;  WeightFormat default_weights | f32 | bf16 | fp8
-module(viva_tensor_ffi).

-export([load_model/3, model_backend/1, model_tokenizer/1,
         generate/4, stream/5,
         load_tokenizer/1, tokenize/3, detokenize/2,
         opts_map/2, error_kind/1]).

-type gleam_result(T) :: {ok, T} | {error, {viva_error, atom(), binary()}}.

%% --- models -------------------------------------------------------------------

-spec load_model(binary(), atom(), atom()) -> gleam_result(term()).
load_model(Path, Backend, Weights) ->
    Opts0 = case Backend of
                auto -> #{};
                _ -> #{backend => Backend}
            end,
    Opts = case Weights of
               default_weights -> Opts0;
               _ -> Opts0#{weights => Weights}
           end,
    wrap(viva_tensor_core:load_model(Path, Opts)).

-spec model_backend(term()) -> atom().
model_backend({viva_tensor_model, Backend, _Handle}) ->
    Backend.

%% The core tokenizes with a model or a tokenizer alike, so the model itself
%% serves as the Gleam `Tokenizer` value.
-spec model_tokenizer(term()) -> term().
model_tokenizer({viva_tensor_model, _, _} = Model) ->
    Model.

%% --- generation ---------------------------------------------------------------

-spec generate(term(), binary(), tuple(), list()) -> gleam_result(tuple()).
generate(Model, Prompt, Opts, Extra) ->
    case viva_tensor_core:generate(Model, Prompt, opts_map(Opts, Extra)) of
        {ok, Result} -> {ok, to_generate_result(Result)};
        {error, Reason} -> {error, to_viva_error(Reason)}
    end.

%% Runs a streaming job and calls OnPiece(Piece) for every non-empty piece, in
%% this process and in order; at the end, the text the core held back (a
%% possible stop-sequence prefix) so that the pieces concatenate to the text.
-spec stream(term(), binary(), tuple(), list(), fun((binary()) -> term())) ->
          gleam_result(tuple()).
stream(Model, Prompt, Opts, Extra, OnPiece) ->
    case viva_tensor_core:stream_start(Model, Prompt, opts_map(Opts, Extra)) of
        {ok, {viva_tensor_job, Ref, _} = Job} ->
            try
                stream_loop(Ref, OnPiece, [])
            catch
                Class:Error:Stack ->
                    ok = viva_tensor_core:cancel(Job),
                    flush(Ref),
                    erlang:raise(Class, Error, Stack)
            end;
        {error, Reason} ->
            {error, to_viva_error(Reason)}
    end.

stream_loop(Ref, OnPiece, Emitted) ->
    receive
        {viva_tensor, Ref, {token, _Id, <<>>}} ->
            stream_loop(Ref, OnPiece, Emitted);
        {viva_tensor, Ref, {token, _Id, Piece}} ->
            OnPiece(Piece),
            stream_loop(Ref, OnPiece, [Emitted | Piece]);
        {viva_tensor, Ref, {done, Stats}} ->
            Sent = iolist_to_binary(Emitted),
            Text = maps:get(text, Stats, Sent),
            case Text of
                <<Sent:(byte_size(Sent))/binary, Tail/binary>> when Tail =/= <<>> ->
                    OnPiece(Tail);
                _ ->
                    ok
            end,
            {ok, to_generate_result(Stats#{text => Text})};
        {viva_tensor, Ref, {error, Reason}} ->
            {error, to_viva_error(Reason)}
    end.

flush(Ref) ->
    receive
        {viva_tensor, Ref, _} -> flush(Ref)
    after 0 ->
        ok
    end.

%% GenerateOpts + [GenerateOption] -> the core's option map. Values are passed
%% as they are: range checks are the core's (`invalid_option`).
-spec opts_map(tuple(), list()) -> map().
opts_map({generate_opts, MaxNew, Temperature, TopK, TopP, Seed, StopOnEos}, Extra) ->
    Base = #{max_new_tokens => MaxNew,
             temperature => Temperature,
             top_k => case TopK of
                          top_k_infinity -> 0;
                          {top_k, K} -> K
                      end,
             top_p => TopP,
             seed => Seed,
             stop_on_eos => StopOnEos},
    lists:foldl(fun({stop_sequences, Stops}, Acc) ->
                        Acc#{stop => maps:get(stop, Acc, []) ++ Stops};
                   ({K, V}, Acc) when K =:= prompt_ids; K =:= min_p; K =:= repetition_penalty;
                                      K =:= presence_penalty; K =:= frequency_penalty ->
                        Acc#{K => V}
                end, Base, Extra).

to_generate_result(#{text := Text, tokens := Tokens, prompt_tokens := PromptTokens,
                     finish_reason := Finish, backend := Backend,
                     prefill_us := PrefillUs, decode_us := DecodeUs}) ->
    {generate_result, Text, Tokens, PromptTokens, Finish, Backend, PrefillUs, DecodeUs}.

%% --- tokenizers ---------------------------------------------------------------

-spec load_tokenizer(binary()) -> gleam_result(term()).
load_tokenizer(Path) ->
    wrap(viva_tensor_core:load_tokenizer(Path)).

-spec tokenize(term(), binary(), boolean()) -> gleam_result([integer()]).
tokenize(Tokenizer, Text, AddSpecial) ->
    wrap(viva_tensor_core:tokenize(Tokenizer, Text, AddSpecial)).

-spec detokenize(term(), [integer()]) -> gleam_result(binary()).
detokenize(Tokenizer, Ids) ->
    wrap(viva_tensor_core:detokenize(Tokenizer, Ids)).

%% --- errors -------------------------------------------------------------------

wrap({ok, Value}) -> {ok, Value};
wrap({error, Reason}) -> {error, to_viva_error(Reason)}.

to_viva_error({Kind, Message}) when is_atom(Kind), is_binary(Message) ->
    {viva_error, error_kind(Kind), Message};
to_viva_error(Other) ->
    %% Outside the core's contract (architecture.md, "Errors"): a bug to fix there.
    erlang:error({viva_tensor_unexpected_error, Other}).

%% Core error atoms -> Gleam ErrorKind constructors (the same atoms, except
%% `cancelled`, which is `CancelledError` in Gleam since FinishReason has `Cancelled`).
-spec error_kind(atom()) -> atom().
error_kind(cancelled) -> cancelled_error;
error_kind(Kind) ->
    case lists:member(Kind, [not_found, no_weights, invalid_safetensors, missing_tensor,
                             shape_mismatch, unsupported_dtype, invalid_config,
                             invalid_tokenizer, invalid_option, prompt_too_long,
                             token_out_of_range, cuda_unavailable, cuda_error, io_error,
                             nif_unavailable]) of
        true -> Kind;
        false -> erlang:error({viva_tensor_unexpected_error_kind, Kind})
    end.
