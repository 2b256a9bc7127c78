%% @doc PCG32 random number generator for the pure-BEAM backend.
%%
%% Bit-for-bit the generator of Rust's `rand_pcg::Pcg32::new(Seed, Stream)'
%% (PCG "XSH RR 64/32", a 64-bit LCG with a 32-bit xorshift-high /
%% random-rotate output), with the fixed stream `16#a02bdbf7bb3c0a7' that
%% the sampler contract (docs/architecture.md) prescribes, so the Rust
%% engine and this module draw the same numbers for the same seed:
%%
%% <ul>
%%  <li>increment = (stream bsl 1) bor 1;</li>
%%  <li>construction: state = (seed + increment) mod 2^64, then one LCG step;</li>
%%  <li>LCG step: state = (state * 6364136223846793005 + increment) mod 2^64;</li>
%%  <li>`next_u32': the output is computed from the state BEFORE the step:
%%      `xorshifted = ((old bsr 18) bxor old) bsr 27' (low 32 bits),
%%      `rot = old bsr 59', result = xorshifted rotated right by rot.</li>
%% </ul>
%%
%% Seeds are any integer, taken modulo 2^64 (so -1 is 2^64 - 1).
%% Known outputs (first three `next_u32'): seed 0 gives 3894649422,
%% 2055130073, 2315086854; seed 42 gives 3270867926, 1795671209, 1924641435.
%%
%% The state is an immutable term; every call returns the next state.
-module(viva_tensor_beam_pcg32).

-export([new/1, next_u32/1, uniform/1]).
-export_type([state/0]).

-define(MASK64, 16#FFFFFFFFFFFFFFFF).
-define(MASK32, 16#FFFFFFFF).
-define(MULTIPLIER, 6364136223846793005).
-define(STREAM, 16#a02bdbf7bb3c0a7).

-opaque state() :: {pcg32, State :: non_neg_integer(), Increment :: non_neg_integer()}.

%% @doc A generator seeded with `Seed mod 2^64' on the contract's stream.
-spec new(integer()) -> state().
new(Seed) when is_integer(Seed) ->
    Inc = ((?STREAM bsl 1) bor 1) band ?MASK64,
    S0 = ((Seed band ?MASK64) + Inc) band ?MASK64,
    {pcg32, step(S0, Inc), Inc}.

%% @doc The next 32-bit output and the advanced generator.
-spec next_u32(state()) -> {0..4294967295, state()}.
next_u32({pcg32, Old, Inc}) ->
    Rot = Old bsr 59,
    Xsh = (((Old bsr 18) bxor Old) bsr 27) band ?MASK32,
    Out = ((Xsh bsr Rot) bor (Xsh bsl ((32 - Rot) band 31))) band ?MASK32,
    {Out, {pcg32, step(Old, Inc), Inc}}.

%% @doc A float in [0, 1): `(next_u32() bsr 8) / 2^24' (24 random bits, exact
%% in both f32 and f64), one draw.
-spec uniform(state()) -> {float(), state()}.
uniform(State0) ->
    {U32, State} = next_u32(State0),
    {(U32 bsr 8) / 16777216, State}.

%%--------------------------------------------------------------------

step(S, Inc) ->
    (S * ?MULTIPLIER + Inc) band ?MASK64.
