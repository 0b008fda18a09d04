"""The responder SavedModels' signatures and the checks of what is fed to them, without TensorFlow.

Both runtimes serve the same signatures (:data:`SIGNATURE_INPUTS`, :data:`SIGNATURE_OUTPUTS`):
the TF1 graph of :mod:`compat.responder.decoding` and the TF2 module of
:mod:`compat.tf2.responder`. Their loaders validate numpy inputs here, before anything runs, so
a bad call fails with the same ``ValueError`` on either; this module imports no TensorFlow, so
the TF2 side can use it without switching its process to ``tf.compat.v1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compat.responder.spec import ALWAYS_BANNED, N_SPECIAL, PAD, UNK, DecodeResult

INT32_MAX = 2**31 - 1  # the graph takes n_samples as int32
# sample_rerank draws this many rows per context at once, each as long as max_length: a bound
# keeps one request from allocating gigabytes (the default is 10)
MAX_SAMPLES = 1_000
# The widest beam a Responder's options take: a beam search keeps width x vocabulary scores a
# step and ranks them, so its cost grows faster than the width (a width near the vocabulary's
# size, which was accepted, kept one reply decoding for minutes).
MAX_BEAM_WIDTH = 256
# The most reply tokens (END included) a decode may be asked for. The decode loops keep the
# replies so far in one int32 ``[n, max_length + 1]`` buffer (plus ``[max_length, n, 2]`` write
# positions), allocated up front and copied at every step, so the cost of a decode grows with
# ``max_length`` even when the replies end early (10**7 took 11 s for a 6-token reply; 2**31 - 1
# overflowed the graph's int32 width after allocating 9 GB). The shipped model's replies are at
# most 30 tokens; 1,000 leaves any trained model room and keeps a decode's buffers small.
MAX_DECODE_LENGTH = 1_000
# Beam search divides scores by ``length ** length_penalty`` in float32, which must stay finite
# for the longest reply (1,000 tokens: 1e30 at 10). Past float32's range (a penalty of 30 at 20
# tokens, of 128 at 2) the divisor is inf, every candidate that long scores -0, and the beam
# filled its places with copies of one finished reply.
MAX_LENGTH_PENALTY = 10.0

CONTEXT = "context_ids"
CONDITION = "condition_ids"
REPLY = "reply_ids"
MAX_LENGTH = "max_length"
BANNED = "banned_ids"
UNPENALIZED = "unpenalized_ids"
REPETITION_PENALTY = "repetition_penalty"
BEAM_WIDTH = "beam_width"
LENGTH_PENALTY = "length_penalty"
TEMPERATURE = "temperature"
SEED = "seed"
N_SAMPLES = "n_samples"
CONDITION_STRENGTH = "condition_strength"

IDS = "ids"
LOG_PROBS = "log_probs"
LENGTHS = "lengths"
TOKEN_LOG_PROBS = "token_log_probs"

_PENALTY_INPUTS = (CONTEXT, CONDITION, MAX_LENGTH, BANNED, UNPENALIZED, REPETITION_PENALTY)
SIGNATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "greedy": _PENALTY_INPUTS,
    "beam": _PENALTY_INPUTS + (BEAM_WIDTH, LENGTH_PENALTY),
    "sample": _PENALTY_INPUTS + (TEMPERATURE, SEED, N_SAMPLES),
    "score": (CONTEXT, CONDITION, REPLY),
}
SIGNATURE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "greedy": (IDS, LOG_PROBS, LENGTHS),
    "beam": (IDS, LOG_PROBS, LENGTHS),
    "sample": (IDS, LOG_PROBS, LENGTHS),
    "score": (TOKEN_LOG_PROBS,),
}
MODES = ("greedy", "beam", "sample")
# Condition guidance (``condition_strength`` > 0): each decoding mode has a guided twin. A
# SavedModel exported before guidance existed lacks them; it still loads and decodes unguided.
GUIDED = "_guided"
GUIDED_SIGNATURE_INPUTS: dict[str, tuple[str, ...]] = {
    mode + GUIDED: SIGNATURE_INPUTS[mode] + (CONDITION_STRENGTH,) for mode in MODES
}
GUIDED_SIGNATURE_OUTPUTS: dict[str, tuple[str, ...]] = {mode + GUIDED: SIGNATURE_OUTPUTS[mode] for mode in MODES}

# Far beyond any useful guidance: replies stop being language well before 10.
MAX_CONDITION_STRENGTH = 10.0
# Sampling divides the scores, banned ids' -1e9 included, by the temperature: far above 100 the
# ban no longer holds (1e10 drew START mid-reply), far below 1e-6 float32 overflows (1e-39 drew
# an id past the vocabulary). Inside these bounds neither can happen, and no useful setting is lost:
# 1e-6 samples as greedy decoding does, 100 nearly uniformly.
MIN_TEMPERATURE = 1e-6
MAX_TEMPERATURE = 100.0
# The repetition penalty is a float32 in the graph, whose logarithm is taken: outside float32's
# positive finite range it becomes 0 (log: -inf) or inf (log: inf, and NaN at exempt ids). These
# bounds are float32's smallest positive (subnormal) and largest finite values.
# The smallest normal float32 (about 1.2e-38): below it TensorFlow's log of the penalty is off by
# up to 12 (log(1e-40) and log(1e-39) both came out as -103.97, for -92.1 and -89.8), and the
# message printed "from 1.4e-45" of a bound of 1.401e-45 that refused 1.4e-45.
MIN_REPETITION_PENALTY = float(np.finfo(np.float32).tiny)
MAX_REPETITION_PENALTY = float(np.finfo(np.float32).max)  # about 3.4e38

# A score no real candidate reaches, finite so that sums and normalising never make NaN.
NEG = -1e9


def check_context(
    context_ids: np.ndarray, condition_ids: np.ndarray, vocab_size: int, n_conditions: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """int32 ``context_ids`` ``[batch, turns, turn_len]`` and ``condition_ids`` ``[batch]``, in range.

    A context of no turns or no token columns is returned as one all-PAD turn of one column,
    which the network reads the same way (no token: the zero context vector); its encoder
    needs a column to mask. Raises ``ValueError`` (starting with ``what``) otherwise.
    """
    context = np.asarray(context_ids)
    conditions = np.asarray(condition_ids)
    if context.ndim != 3:
        raise ValueError(f"{what}: context_ids must be [batch, turns, turn_len], got shape {context.shape}")
    if conditions.shape != (context.shape[0],):
        raise ValueError(f"{what}: condition_ids must be [batch] = [{context.shape[0]}], got shape {conditions.shape}")
    for name, values, limit in (("context_ids", context, vocab_size), ("condition_ids", conditions, n_conditions)):
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{what}: {name} must be integers, got {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise ValueError(
                f"{what}: {name} must lie in [0, {limit}), got values from {values.min()} to {values.max()}"
            )
    if context.shape[1] == 0 or context.shape[2] == 0:
        context = np.full((context.shape[0], 1, 1), PAD)
    return context.astype(np.int32), conditions.astype(np.int32)


def holding_a_token(context: np.ndarray, conditions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(context, conditions, added)``: checked inputs (:func:`check_context`) as they are, or,
    when no row's context holds a token at all, with one row more whose context is one UNK
    (``added``: the caller drops that row's answers).

    The TF1 graph cannot run such a batch (nor train on it): its encoder drops the columns that
    are PAD in every turn, all of them here, and its utterance GRU then counts its steps over no
    columns as INT32_MIN (``InvalidArgumentError: Size should be >= 0``). Every SavedModel ever
    exported holds that graph, so the batch is fixed where it is fed. Beside a row with a token
    each all-PAD row gets the zero context vector the network documents (the TF2 copy gives it
    without help). Rows do not see each other, and a sampled row's draw depends on its own row
    number only, so the rows before the extra one are answered as they would be alone.
    """
    if context.size == 0 or context.any():
        return context, conditions, False
    extra = np.zeros((1,) + context.shape[1:], np.int32)
    extra[0, -1, 0] = UNK
    return np.concatenate([context, extra]), np.concatenate([conditions, np.zeros(1, np.int32)]), True


def check_reply(reply_ids: np.ndarray, batch: int, vocab_size: int, what: str) -> np.ndarray:
    """int32 ``reply_ids`` ``[batch, reply_len]`` in range; else ``ValueError``."""
    reply = np.asarray(reply_ids)
    if reply.ndim != 2 or reply.shape[0] != batch:
        raise ValueError(f"{what}: reply_ids must be [batch, reply_len] with batch {batch}, got shape {reply.shape}")
    if reply.size and not np.issubdtype(reply.dtype, np.integer):
        raise ValueError(f"{what}: reply_ids must be integers, got {reply.dtype}")
    if reply.size and (reply.min() < 0 or reply.max() >= vocab_size):
        raise ValueError(
            f"{what}: reply_ids must lie in [0, {vocab_size}), got values from {reply.min()} to {reply.max()}"
        )
    return reply.astype(np.int32)


@dataclass(frozen=True)
class DecodeCall:
    """A checked decode: the signature to run (``mode``), the value of each of its inputs, how
    many contexts it answers and how many candidates it returns for each."""

    mode: str
    values: dict[str, object]
    batch: int
    candidates: int
    max_length: int

    def empty_result(self) -> DecodeResult:
        """What a decode of no contexts returns (the graphs are not run for an empty batch)."""
        return DecodeResult(
            ids=np.zeros((0, self.candidates, self.max_length), np.int32),
            log_probs=np.zeros((0, self.candidates), np.float32),
            lengths=np.zeros((0, self.candidates), np.int32),
        )


def decode_call(
    context_ids: np.ndarray,
    condition_ids: np.ndarray,
    vocab_size: int,
    n_conditions: int,
    *,
    mode: str,
    max_length: int,
    beam_width: int = 5,
    temperature: float = 1.0,
    seed: int = 0,
    repetition_penalty: float = 1.0,
    banned_ids: np.ndarray | None = None,
    n_samples: int = 1,
    length_penalty: float = 1.0,
    unpenalized_ids: np.ndarray | None = None,
    condition_strength: float = 0.0,
) -> DecodeCall:
    """Check a decode's arguments (those of :meth:`compat.responder.decoding.DecodeRunner.decode`)
    against a model of ``vocab_size`` tokens and ``n_conditions`` conditions; ``ValueError`` on
    the first that is wrong. Only the inputs of ``mode``'s signature are kept; a
    ``condition_strength`` above 0 calls the mode's guided signature (``<mode>_guided``).

    ``max_length`` is from 1 to :data:`MAX_DECODE_LENGTH`; ``length_penalty`` from 0 to
    :data:`MAX_LENGTH_PENALTY`; ``repetition_penalty`` must stay
    positive and finite as a float32 (:func:`is_repetition_penalty`); ``banned_ids`` must leave a
    token allowed (``beam_width`` of them for beam search; :func:`allowed_tokens`)."""
    context, conditions = check_context(context_ids, condition_ids, vocab_size, n_conditions, "decode")
    if mode not in MODES:
        raise ValueError(f"decode: mode must be one of {', '.join(MODES)}, got {mode!r}")
    _require(
        _whole_in(max_length, 1, MAX_DECODE_LENGTH),
        f"max_length must be an integer in [1, {MAX_DECODE_LENGTH}]",
        max_length,
    )
    _require(is_repetition_penalty(repetition_penalty), REPETITION_PENALTY_RANGE, repetition_penalty)
    banned = _check_ids(banned_ids, vocab_size, "banned_ids")
    values: dict[str, object] = {
        CONTEXT: context,
        CONDITION: conditions,
        MAX_LENGTH: int(max_length),
        BANNED: banned,
        UNPENALIZED: _check_ids(unpenalized_ids, vocab_size, "unpenalized_ids"),
        REPETITION_PENALTY: float(repetition_penalty),
    }
    candidates = 1
    if mode == "beam":
        limit = vocab_size - N_SPECIAL
        _require(
            _whole_in(beam_width, 1, limit),
            f"beam_width must be an integer in [1, {limit}]",
            beam_width,
        )
        _require(_float_in(length_penalty, -np.inf, np.inf), "length_penalty must be a number", length_penalty)
        _require(length_penalty >= 0, "length_penalty must be >= 0", length_penalty)
        _require(
            length_penalty <= MAX_LENGTH_PENALTY,
            f"length_penalty must be at most {MAX_LENGTH_PENALTY:g}",
            length_penalty,
        )
        values.update({BEAM_WIDTH: int(beam_width), LENGTH_PENALTY: float(length_penalty)})
        candidates = int(beam_width)
    elif mode == "sample":
        _require(
            _whole_in(n_samples, 1, MAX_SAMPLES),
            f"n_samples must be an integer in [1, {MAX_SAMPLES}]",
            n_samples,
        )
        _require(
            _float_in(temperature, MIN_TEMPERATURE, MAX_TEMPERATURE),
            f"temperature must be from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}",
            temperature,
        )
        _require(_whole_in(seed, -(2**63), 2**63 - 1), "seed must be a 64-bit integer", seed)
        values.update({TEMPERATURE: float(temperature), SEED: int(seed), N_SAMPLES: int(n_samples)})
        candidates = int(n_samples)
    _check_allowed(banned, vocab_size, int(beam_width) if mode == "beam" else 1, mode)
    _require(
        isinstance(condition_strength, (int, float, np.number))
        and not isinstance(condition_strength, bool)
        and 0 <= condition_strength <= MAX_CONDITION_STRENGTH,
        f"condition_strength must be a number in [0, {MAX_CONDITION_STRENGTH:g}]",
        condition_strength,
    )
    if condition_strength > 0:
        mode += GUIDED
        values[CONDITION_STRENGTH] = float(condition_strength)
    return DecodeCall(mode, values, int(context.shape[0]), candidates, int(max_length))


def _whole_in(value: object, low: int, high: int) -> bool:
    """Whether ``value`` is an integer (numpy's count; a bool, which Python counts, does not)
    from ``low`` to ``high``, as the Python API's options and ``check_seed`` take them."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(low <= value <= high)


def _float_in(value: object, low: float, high: float) -> bool:
    """Whether ``value`` is a real number (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return False
    try:
        return bool(low <= float(value) <= high)
    except (OverflowError, ValueError):
        return False


# What :func:`is_repetition_penalty` asks for; the Python API's DecodingOptions says the same.
REPETITION_PENALTY_RANGE = (
    f"repetition_penalty must be from {MIN_REPETITION_PENALTY:.2g} to {MAX_REPETITION_PENALTY:.2g} "
    "(a normal, finite float32)"
)


def is_repetition_penalty(value: object) -> bool:
    """Whether ``value`` is a real number (not a bool) that stays positive and finite as the
    graph's float32: from :data:`MIN_REPETITION_PENALTY` to :data:`MAX_REPETITION_PENALTY`
    (1e-46 rounds to 0, 1e39 to inf; below about 1.2e-38 the log is inexact)."""
    return _float_in(value, MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY)


def allowed_tokens(banned_ids: np.ndarray, vocab_size: int) -> int:
    """How many of ``vocab_size`` ids a decode may produce with ``banned_ids`` (checked ids)
    banned: PAD, UNK and START are always banned, END is allowed unless ``banned_ids`` holds it."""
    return vocab_size - int(np.union1d(np.asarray(ALWAYS_BANNED, np.int32), banned_ids).size)


def _check_allowed(banned_ids: np.ndarray, vocab_size: int, needed: int, mode: str) -> None:
    """``ValueError`` unless ``banned_ids`` leave ``needed`` tokens a decode may produce: one for
    greedy and sampling, ``beam_width`` for beam search (each beam entry needs a token of its
    own; the graph would fill the others with banned tokens, and rank them by their plain
    log-probabilities)."""
    allowed = allowed_tokens(banned_ids, vocab_size)
    if allowed < needed:
        need = f"at least beam_width ({needed}) tokens" if mode == "beam" else "at least one token"
        raise ValueError(
            f"decode: banned_ids must leave {need} allowed (END counts; PAD, UNK and START are always "
            f"banned), but leave {allowed} of {vocab_size}"
        )


def _check_ids(ids: np.ndarray | None, vocab_size: int, name: str) -> np.ndarray:
    if ids is None:
        return np.zeros([0], np.int32)
    values = np.asarray(ids)
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise ValueError(f"decode: {name} must be a 1-D integer array, got shape {values.shape} of {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(f"decode: {name} must lie in [0, {vocab_size})")
    return values.astype(np.int32)


def _require(condition: bool, message: str, value: object) -> None:
    if not condition:
        raise ValueError(f"decode: {message}, got {value!r}")
