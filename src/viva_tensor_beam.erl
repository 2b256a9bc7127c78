%% @doc The pure-BEAM backend, as `viva_tensor_core' calls it.
%%
%% A handle bundles the model (viva_tensor_beam_model), its validated config
%% and the tokenizer read from `tokenizer.json' beside the weights. A
%% generation is a job: `start_job/5' spawns a worker process that runs the
%% generation loop of docs/architecture.md and streams to the caller
%%
%% ```
%% {viva_tensor, Ref, {token, Id, Piece}}      % one per generated token
%% {viva_tensor, Ref, {done, Stats}}           % or {viva_tensor, Ref, {error, Reason}}
%% '''
%%
%% The loop, in order (the same as native/viva_core's generate.rs): prefill all
%% prompt ids in one forward call; then per token: look at the mailbox
%% (`cancel/1' ends the job with `cancelled', a `done' is still sent; the
%% caller's death, it is monitored, ends it silently); sample
%% (viva_tensor_beam_sampler, PCG32 seeded with `seed'); an EOS id (when
%% `stop_on_eos') is kept in `tokens', gets a `{token, Id, <<>>}' message and
%% ends the job with `eos'; any other id goes through incremental
%% detokenization (prefix/read offsets over the generated ids, nothing emitted
%% while the text ends in U+FFFD, does not grow, or would be cut inside a
%% character) and stop-sequence handling (cut before the first occurrence and
%% finish `stop'; otherwise hold back the longest suffix that is a proper
%% prefix of a stop string), then its `{token, Id, Piece}' message is sent;
%% the job ends with `length' after `max_new_tokens' tokens or when the cache
%% holds `max_position_embeddings' positions (the token sampled from the last
%% position is kept, never fed; so a prompt that fills the context still
%% gets one token). `max_new_tokens => 0' runs no forward at all.
%%
%% `done' Stats: `#{text, tokens, prompt_tokens, finish_reason, backend => beam,
%% prefill_us, decode_us}'. `text' is the concatenation of the pieces sent plus
%% what was held back for stop sequences; after `length' and `eos' it also gets
%% the detokenizer's final flush (a trailing incomplete UTF-8 sequence decodes
%% to U+FFFD there, as a whole decode of the ids would) and is cut before a
%% stop string that the flush completed (finish `stop' then). `prefill_us'
%% times the prefill forward call, `decode_us' the rest.
%%
%% A crash inside the worker (a bug) is reported as
%% `{error, {internal, Message}}' rather than leaving the caller waiting.
-module(viva_tensor_beam).

-export([load_model/2, info/1, tokenizer/1, start_job/5, cancel/1, forward_logits/2]).
-export_type([handle/0]).

-opaque handle() :: {viva_tensor_beam, viva_tensor_beam_model:model(), term()}.

-type error() :: {error, {atom(), binary()}}.

%% Initial heap of a worker, in words (512 KiB). The matvecs box every weight
%% they read, so a small heap means a garbage collection every few rows.
%% Measured on stories260k greedy decode (noisy 2-vCPU VM, medians of 7 runs,
%% 64 tokens): default heap (233 words) 64-73 tok/s, 65536 words 73-92 tok/s;
%% 1M words was no better than 64k (a young heap that no longer fits in cache).
-define(WORKER_HEAP, 65536).

-define(CANCEL, '$viva_tensor_beam_cancel').
-define(REPLACEMENT_CHAR, <<239, 191, 189>>).

%%====================================================================
%% Loading

%% @doc Loads model, config and tokenizer. `Path' is a checkpoint folder, a
%% `.safetensors' file or an index.json; `tokenizer.json' must sit beside the
%% weights. `Opts' may hold `weights => auto | f32' (the BEAM backend keeps
%% weights as f32; `bf16' and `fp8' are `invalid_option'); other keys are
%% ignored.
-spec load_model(binary() | string(), map()) -> {ok, handle()} | error().
load_model(Path, Opts) when is_map(Opts) ->
    case maps:get(weights, Opts, auto) of
        W when W =:= auto; W =:= f32 ->
            case viva_tensor_beam_model:load(Path) of
                {ok, Model} ->
                    Dir = weights_dir(Path),
                    case viva_tensor_beam_tokenizer:load(filename:join(Dir, <<"tokenizer.json">>)) of
                        {ok, Tok} -> {ok, {viva_tensor_beam, Model, Tok}};
                        {error, _} = Error -> Error
                    end;
                Error ->
                    Error
            end;
        W ->
            {error, {invalid_option,
                     iolist_to_binary(io_lib:format(
                         "weights => ~p: the beam backend computes with f32 weights only "
                         "(use auto or f32)", [W]))}}
    end.

weights_dir(Path) ->
    case filelib:is_dir(Path) of
        true -> Path;
        false -> filename:dirname(Path)
    end.

%% @doc Model facts: `#{backend => beam, vocab_size, hidden_size, num_layers,
%% max_position_embeddings, bos_token_id, eos_token_ids, weights => f32}'.
%% `bos_token_id' comes from config.json, else from the tokenizer, else is
%% `undefined'.
-spec info(handle()) -> map().
info({viva_tensor_beam, Model, Tok}) ->
    Cfg = viva_tensor_beam_model:config(Model),
    Bos =
        case maps:get(bos_token_id, Cfg) of
            undefined -> tokenizer_bos(Tok);
            B -> B
        end,
    #{backend => beam,
      vocab_size => maps:get(vocab_size, Cfg),
      hidden_size => maps:get(hidden_size, Cfg),
      num_layers => maps:get(num_hidden_layers, Cfg),
      max_position_embeddings => maps:get(max_position_embeddings, Cfg),
      bos_token_id => Bos,
      eos_token_ids => maps:get(eos_token_ids, Cfg),
      weights => f32}.

tokenizer_bos(Tok) ->
    case viva_tensor_beam_tokenizer:bos_id(Tok) of
        B when is_integer(B) -> B;
        {ok, B} when is_integer(B) -> B;
        _ -> undefined
    end.

%% @doc The handle's tokenizer (a viva_tensor_beam_tokenizer term).
-spec tokenizer(handle()) -> term().
tokenizer({viva_tensor_beam, _Model, Tok}) -> Tok.

%% @doc Last-position logits of `Ids' run on a fresh cache, [vocab].
-spec forward_logits(handle(), [non_neg_integer()]) -> {ok, [float()]} | error().
forward_logits({viva_tensor_beam, Model, _Tok}, Ids) ->
    case viva_tensor_beam_model:forward(Model, viva_tensor_beam_model:new_cache(Model), Ids, 0) of
        {ok, Logits, _Cache} -> {ok, Logits};
        Error -> Error
    end.

%%====================================================================
%% Jobs

%% @doc Starts a generation worker. `Opts' (already validated by the core)
%% holds `max_new_tokens, temperature, top_k, top_p, min_p, repetition_penalty,
%% presence_penalty, frequency_penalty, seed, stop_on_eos, stop';
%% missing keys take the documented defaults. Messages go to `Caller', tagged
%% with `Ref'.
-spec start_job(handle(), [non_neg_integer()], map(), pid(), reference()) -> {ok, pid()}.
start_job({viva_tensor_beam, _, _} = Handle, PromptIds, Opts, Caller, Ref)
  when is_list(PromptIds), is_map(Opts), is_pid(Caller) ->
    Pid = spawn_opt(fun() -> job(Handle, PromptIds, Opts, Caller, Ref) end,
                    [{min_heap_size, ?WORKER_HEAP}]),
    {ok, Pid}.

%% @doc Asks a worker to stop: it looks at its mailbox before each draw (so
%% the forward call in progress finishes first), then sends `done' with
%% `finish_reason => cancelled' and the tokens so far. Harmless when the job
%% already ended.
-spec cancel(pid()) -> ok.
cancel(Pid) when is_pid(Pid) ->
    Pid ! ?CANCEL,
    ok.

-record(gen, {
    model, tok, caller, ref, mref,
    prompt :: [non_neg_integer()],
    max_new :: non_neg_integer(),
    max_pos :: pos_integer(),
    sampler :: map(),
    pen :: map() | off,                        % penalties, off when all are off
    seen = #{} :: map(),                       % id => true: prompt and generated (with penalties)
    counts = #{} :: map(),                     % id => times generated (with penalties)
    eos :: [non_neg_integer()],
    stops :: [binary()],
    max_stop :: non_neg_integer(),
    tokens = [] :: [non_neg_integer()],        % generated, newest first
    n = 0 :: non_neg_integer(),                % length(tokens)
    win = [] :: [non_neg_integer()],           % detokenizer window: ids[prefix..]
    win_read = 0 :: non_neg_integer(),         % read - prefix
    emitted = <<>> :: binary(),                % text sent so far
    pending = <<>> :: binary(),                % text held back (stop-string prefix)
    t0, t1
}).

job({viva_tensor_beam, Model, Tok}, PromptIds, Opts, Caller, Ref) ->
    MRef = erlang:monitor(process, Caller),
    Stops = [S || S <- maps:get(stop, Opts, []), is_binary(S), S =/= <<>>],
    Cfg = viva_tensor_beam_model:config(Model),
    StopOnEos = maps:get(stop_on_eos, Opts, true),
    Pen = penalties(Opts),
    G = #gen{model = Model, tok = Tok, caller = Caller, ref = Ref, mref = MRef,
             prompt = PromptIds,
             max_new = maps:get(max_new_tokens, Opts, 64),
             max_pos = maps:get(max_position_embeddings, Cfg),
             sampler = #{temperature => maps:get(temperature, Opts, 0.0),
                         top_k => maps:get(top_k, Opts, 0),
                         top_p => maps:get(top_p, Opts, 1.0),
                         min_p => maps:get(min_p, Opts, 0.0)},
             pen = Pen,
             seen = case Pen of
                        off -> #{};
                        _ -> maps:from_list([{I, true} || I <- PromptIds])
                    end,
             eos = case StopOnEos of
                       true -> maps:get(eos_token_ids, Cfg);
                       false -> []
                   end,
             stops = Stops,
             max_stop = lists:max([0 | [byte_size(S) || S <- Stops]]),
             t0 = now_us()},
    Result =
        try
            generate(G, viva_tensor_beam_pcg32:new(maps:get(seed, Opts, 42)))
        catch
            Class:Reason:Stack ->
                {error, {internal,
                         unicode:characters_to_binary(
                             io_lib:format("beam backend worker crashed: ~p:~p ~p",
                                           [Class, Reason, Stack]))}}
        end,
    case Result of
        caller_down -> ok;
        {error, _} = E -> Caller ! {viva_tensor, Ref, E};
        {done, Stats} -> Caller ! {viva_tensor, Ref, {done, Stats}}
    end.

penalties(Opts) ->
    Pen = #{repetition => maps:get(repetition_penalty, Opts, 1.0),
            presence => maps:get(presence_penalty, Opts, 0.0),
            frequency => maps:get(frequency_penalty, Opts, 0.0)},
    case Pen of
        #{repetition := R, presence := P, frequency := F} when R == 1, P == 0, F == 0 -> off;
        _ -> Pen
    end.

penalized(#gen{pen = off}, Logits) -> Logits;
penalized(#gen{pen = Pen, seen = Seen, counts = Counts}, Logits) ->
    viva_tensor_beam_sampler:penalize(Logits, Pen, Seen, Counts).

history(#gen{pen = off} = G, _Id) -> G;
history(#gen{seen = Seen, counts = Counts} = G, Id) ->
    G#gen{seen = Seen#{Id => true}, counts = Counts#{Id => maps:get(Id, Counts, 0) + 1}}.

generate(#gen{prompt = []}, _Rng) ->
    {error, {invalid_option, <<"prompt_ids is empty">>}};
generate(#gen{max_new = 0} = G, _Rng) ->
    finish(G#gen{t1 = now_us()}, length);
generate(#gen{model = Model, prompt = Prompt} = G, Rng) ->
    case viva_tensor_beam_model:forward(Model, viva_tensor_beam_model:new_cache(Model), Prompt, 0) of
        {ok, Logits, Cache} ->
            loop(G#gen{t1 = now_us()}, Logits, Cache, Rng);
        {error, _} = E ->
            E
    end.

%% One token: look at the mailbox (cancel, caller gone), sample, EOS, detokenize,
%% stop strings, send, then stop on length / context end or run the next forward.
loop(#gen{mref = MRef} = G0, Logits, Cache, Rng0) ->
    receive
        ?CANCEL -> finish(G0, cancelled);
        {'DOWN', MRef, process, _, _} -> caller_down
    after 0 ->
        {Id, Rng} = viva_tensor_beam_sampler:sample(penalized(G0, Logits), G0#gen.sampler, Rng0),
        G = history(G0#gen{tokens = [Id | G0#gen.tokens], n = G0#gen.n + 1}, Id),
        case lists:member(Id, G#gen.eos) of
            true ->
                send(G, {token, Id, <<>>}),
                finish(G, eos);
            false ->
                {Piece, G1} = detok(G, Id),
                case stop_check(G1, Piece) of
                    {stop, Send, Text} ->
                        send(G1, {token, Id, Send}),
                        done(G1, stop, Text);
                    {continue, Send, G2} ->
                        send(G2, {token, Id, Send}),
                        next(G2, Id, Cache, Rng)
                end
        end
    end.

%% The cache holds prompt + n - 1 positions; Id would go at position Pos. The
%% context ends when every position is used (Id, sampled from position
%% max_position_embeddings - 1, is kept but never fed).
next(#gen{n = N, max_new = MaxNew, prompt = Prompt, max_pos = MaxPos} = G, Id, Cache, Rng) ->
    Pos = length(Prompt) + N - 1,
    case N >= MaxNew orelse Pos >= MaxPos of
        true ->
            finish(G, length);
        false ->
            case viva_tensor_beam_model:forward(G#gen.model, Cache, [Id], Pos) of
                {ok, Logits, Cache1} -> loop(G, Logits, Cache1, Rng);
                {error, _} = E -> E
            end
    end.

%% Incremental detokenization over the generated ids (docs/architecture.md):
%% new = decode(ids[prefix..]), old = decode(ids[prefix..read]); emit the
%% growth of new unless it ends in U+FFFD; on emit prefix := read, read := len.
detok(#gen{win = Win0, win_read = WR} = G, Id) ->
    Win = Win0 ++ [Id],
    New = decode(G, Win),
    Old = decode(G, lists:sublist(Win, WR)),
    case byte_size(New) > byte_size(Old) andalso not ends_with_replacement(New)
         andalso is_char_boundary(New, byte_size(Old)) of
        false ->
            {<<>>, G#gen{win = Win}};
        true ->
            Piece = binary:part(New, byte_size(Old), byte_size(New) - byte_size(Old)),
            Win1 = lists:nthtail(WR, Win),
            {Piece, G#gen{win = Win1, win_read = length(Win1)}}
    end.

decode(_G, []) ->
    <<>>;
decode(#gen{tok = Tok}, Ids) ->
    {ok, Text} = viva_tensor_beam_tokenizer:decode(Tok, Ids, true),
    Text.

%% Pos is a UTF-8 character boundary of Bin (not a continuation byte 10xxxxxx)
is_char_boundary(Bin, Pos) when Pos >= byte_size(Bin) -> true;
is_char_boundary(Bin, Pos) -> binary:at(Bin, Pos) band 16#C0 =/= 16#80.

ends_with_replacement(Bin) when byte_size(Bin) >= 3 ->
    binary:part(Bin, byte_size(Bin) - 3, 3) =:= ?REPLACEMENT_CHAR;
ends_with_replacement(_) ->
    false.

%% Stop sequences over the text so far (emitted ++ pending ++ piece).
stop_check(#gen{stops = []} = G, Piece) ->
    {continue, Piece, G#gen{emitted = <<(G#gen.emitted)/binary, Piece/binary>>}};
stop_check(#gen{emitted = Emitted, pending = Pending} = G, Piece) ->
    Full = <<Emitted/binary, Pending/binary, Piece/binary>>,
    case find_stop(Full, byte_size(Emitted) + byte_size(Pending), G) of
        {Pos, _} ->
            Text = binary:part(Full, 0, Pos),
            {stop, tail_from(Text, byte_size(Emitted)), Text};
        nomatch ->
            Hold = hold_back(Full, G#gen.stops),
            EmitEnd = max(byte_size(Full) - Hold, byte_size(Emitted)),
            Send = binary:part(Full, byte_size(Emitted), EmitEnd - byte_size(Emitted)),
            {continue, Send,
             G#gen{emitted = binary:part(Full, 0, EmitEnd),
                   pending = binary:part(Full, EmitEnd, byte_size(Full) - EmitEnd)}}
    end.

%% The first occurrence of any stop string in Full. The text before Old (the
%% length of the text at the previous check) held none, so an occurrence ends
%% past Old and starts at most max_stop - 1 bytes before it.
find_stop(Full, Old, #gen{stops = Stops, max_stop = MaxStop}) ->
    Start = max(0, Old - MaxStop + 1),
    binary:match(Full, Stops, [{scope, {Start, byte_size(Full) - Start}}]).

%% Length of the longest suffix of Text that is a proper prefix of a stop string.
hold_back(Text, Stops) ->
    lists:max([0 | [suffix_prefix(Text, S, min(byte_size(S) - 1, byte_size(Text))) || S <- Stops]]).

suffix_prefix(_Text, _S, 0) ->
    0;
suffix_prefix(Text, S, L) ->
    case binary:part(Text, byte_size(Text) - L, L) =:= binary:part(S, 0, L) of
        true -> L;
        false -> suffix_prefix(Text, S, L - 1)
    end.

tail_from(Text, From) when byte_size(Text) > From ->
    binary:part(Text, From, byte_size(Text) - From);
tail_from(_Text, _From) ->
    <<>>.

%% End of a job that did not hit a stop string while streaming. After `length'
%% and `eos' the detokenizer is flushed (an incomplete UTF-8 tail decodes as
%% U+FFFD, as a whole decode would) and the stop strings are applied once more
%% to the final text; a cancelled job keeps the text it had.
finish(#gen{emitted = Emitted, pending = Pending} = G, cancelled) ->
    done(G, cancelled, <<Emitted/binary, Pending/binary>>);
finish(#gen{win = Win, win_read = WR, emitted = Emitted, pending = Pending} = G, Reason) ->
    New = decode(G, Win),
    Old = decode(G, lists:sublist(Win, WR)),
    Flush =
        case byte_size(New) > byte_size(Old) andalso is_char_boundary(New, byte_size(Old)) of
            true -> binary:part(New, byte_size(Old), byte_size(New) - byte_size(Old));
            false -> <<>>
        end,
    Text = <<Emitted/binary, Pending/binary, Flush/binary>>,
    case G#gen.stops =/= [] andalso find_stop(Text, byte_size(Emitted), G) of
        {Pos, _} -> done(G, stop, binary:part(Text, 0, Pos));
        _ -> done(G, Reason, Text)
    end.

done(#gen{t0 = T0, t1 = T1} = G, Reason, Text) ->
    T2 = now_us(),
    {done, #{text => Text,
             tokens => lists:reverse(G#gen.tokens),
             prompt_tokens => G#gen.prompt,
             finish_reason => Reason,
             backend => beam,
             prefill_us => T1 - T0,
             decode_us => T2 - T1}}.

send(#gen{caller = Caller, ref = Ref}, Msg) ->
    Caller ! {viva_tensor, Ref, Msg},
    ok.

now_us() ->
    erlang:monotonic_time(microsecond).
