"""The responder network in numpy, for the tests that check the TensorFlow graph against it.

It reads the weight dict :meth:`compat.responder.trainer.ResponderTrainer.get_weights` returns
(names as in :func:`compat.responder.network.variable_shapes`) and writes every step out
plainly: the decoder's input is the concatenation ``[embedding, context, condition]`` times the
whole kernel, where the graph splits the kernel in row blocks. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compat.responder.spec import PAD, START

SCOPE = "responder"
Weights = Mapping[str, np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gru_step(
    x: np.ndarray,
    h: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray,
    recurrent_bias: np.ndarray,
) -> np.ndarray:
    """The "reset after" GRU cell (see :mod:`compat.rnn`): ``x`` ``[n, in]``, ``h`` ``[n, H]`` -> ``[n, H]``."""
    units = h.shape[1]
    xs = x @ kernel + bias
    hs = h @ recurrent_kernel + recurrent_bias
    z = _sigmoid(xs[:, :units] + hs[:, :units])
    r = _sigmoid(xs[:, units : 2 * units] + hs[:, units : 2 * units])
    candidate = np.tanh(xs[:, 2 * units :] + r * hs[:, 2 * units :])
    return candidate + z * (h - candidate)


def gru(weights: Weights, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(kernel, recurrent_kernel, bias, recurrent_bias)`` of the GRU ``responder/<name>``:
    float32 ``[input_size, 3 * units]``, ``[units, 3 * units]``, ``[3 * units]`` and ``[3 * units]``
    (:func:`compat.responder.network.variable_shapes`)."""
    kernel, recurrent_kernel, bias, recurrent_bias = (
        weights[f"{SCOPE}/{name}/{part}"] for part in ("kernel", "recurrent_kernel", "bias", "recurrent_bias")
    )
    return kernel, recurrent_kernel, bias, recurrent_bias


def _run(x: np.ndarray, mask: np.ndarray, h: np.ndarray, cell: tuple, reverse: bool) -> np.ndarray:
    """Final state over ``x`` ``[n, time, in]``; False in ``mask`` ``[n, time]`` keeps the state."""
    order = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in order:
        new = gru_step(x[:, t], h, *cell)
        h = np.where(mask[:, t : t + 1], new, h)
    return h


def encode_context(weights: Weights, context_ids: np.ndarray) -> np.ndarray:
    """Context vectors: int ``[batch, turns, turn_len]`` -> float ``[batch, C]``."""
    batch, turns, turn_len = context_ids.shape
    flat = context_ids.reshape(batch * turns, turn_len)
    mask = flat != PAD
    embedded = weights[f"{SCOPE}/embedding"][flat]
    forward, backward = gru(weights, "utterance_forward"), gru(weights, "utterance_backward")
    units = forward[1].shape[0]
    zeros = np.zeros((batch * turns, units), np.float32)
    turn_vectors = np.concatenate(
        [_run(embedded, mask, zeros, forward, False), _run(embedded, mask, zeros, backward, True)], axis=1
    ).reshape(batch, turns, 2 * units)
    context = gru(weights, "context")
    state = np.zeros((batch, context[1].shape[0]), np.float32)
    return _run(turn_vectors, mask.reshape(batch, turns, turn_len).any(axis=2), state, context, False)


def initial_state(weights: Weights, context: np.ndarray) -> np.ndarray:
    """The decoder's first state from context vectors ``[batch, C]``: ``[batch, H]``."""
    kernel = weights.get(f"{SCOPE}/decoder_init/kernel")
    if kernel is None:
        return context
    return np.tanh(context @ kernel + weights[f"{SCOPE}/decoder_init/bias"])


def decoder_step(
    weights: Weights,
    previous: np.ndarray,
    state: np.ndarray,
    context: np.ndarray,
    condition_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One decoder step.

    Args:
        previous: int ``[n]`` previous tokens (START at the first step).
        state: float ``[n, H]``.
        context: float ``[n, C]`` context vectors.
        condition_ids: int ``[n]``.

    Returns:
        ``(log_probs [n, V], new_state [n, H])``: natural-log softmax over the vocabulary.
    """
    inputs = np.concatenate(
        [
            weights[f"{SCOPE}/embedding"][previous],
            context,
            weights[f"{SCOPE}/condition_embedding"][condition_ids],
        ],
        axis=1,
    )
    new_state = gru_step(inputs, state, *gru(weights, "decoder"))
    logits = new_state @ weights[f"{SCOPE}/output/kernel"] + weights[f"{SCOPE}/output/bias"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_probs, new_state


def reply_log_probs(
    weights: Weights, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray
) -> np.ndarray:
    """log p of each token of ``reply_ids`` ``[batch, reply_len]``, fed the true previous token.

    Returns ``[batch, reply_len]``, 0 at PAD.
    """
    context = encode_context(weights, context_ids)
    state = initial_state(weights, context)
    previous = np.full(len(reply_ids), START)
    out = np.zeros(reply_ids.shape, np.float64)
    for t in range(reply_ids.shape[1]):
        log_probs, state = decoder_step(weights, previous, state, context, condition_ids)
        out[:, t] = np.where(reply_ids[:, t] != PAD, log_probs[np.arange(len(reply_ids)), reply_ids[:, t]], 0.0)
        previous = reply_ids[:, t]
    return out
