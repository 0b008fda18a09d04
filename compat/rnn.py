"""A Keras-free GRU: variables from ``tf.get_variable``, recurrences in ``tf.while_loop``.

The cell is the "reset after" GRU (Keras ``reset_after=True``, cuDNN's form), for input ``x``
and state ``h`` of width ``H``::

    [xz, xr, xh] = x @ kernel + bias                 # input part, [batch, 3H]
    [hz, hr, hh] = h @ recurrent_kernel + recurrent_bias
    z  = sigmoid(xz + hz)                            # update gate
    r  = sigmoid(xr + hr)                            # reset gate
    h~ = tanh(xh + r * hh)                           # candidate
    h' = h~ + z * (h - h~)                           # = z * h + (1 - z) * h~

Resetting after the recurrent product lets one ``[H, 3H]`` matmul per step serve all three
parts; the input part does not depend on the state, so :meth:`GRU.project` computes it for
every time step at once, outside the loop. :func:`compat.responder.reference.gru_step` is the
same cell in numpy.

Masked steps leave the state unchanged, so a row padded anywhere (PAD tokens at the end, at
the start, or an empty turn in the middle of a history) ends in the state its unpadded
sequence gives.
"""

from __future__ import annotations

from compat.runtime import tf


class GRU:
    """One GRU cell's variables and its step.

    Variables under ``<name>/``: ``kernel`` ``[input_size, 3 * units]``, ``recurrent_kernel``
    ``[units, 3 * units]``, ``bias`` and ``recurrent_bias`` ``[3 * units]``; the three column
    blocks are the update gate, the reset gate and the candidate, in that order.
    """

    def __init__(self, input_size: int, units: int, name: str, seed: int) -> None:
        if input_size < 1 or units < 1:
            raise ValueError(f"GRU {name!r}: input_size and units must be positive, got {input_size}, {units}")
        self.input_size = int(input_size)
        self.units = int(units)
        with tf.variable_scope(name):
            self.kernel = tf.get_variable(
                "kernel", [input_size, 3 * units], tf.float32, tf.glorot_uniform_initializer(seed=seed)
            )
            self.recurrent_kernel = tf.get_variable(
                "recurrent_kernel", [units, 3 * units], tf.float32, tf.orthogonal_initializer(seed=seed + 1)
            )
            self.bias = tf.get_variable("bias", [3 * units], tf.float32, tf.zeros_initializer())
            self.recurrent_bias = tf.get_variable("recurrent_bias", [3 * units], tf.float32, tf.zeros_initializer())

    def project(self, inputs: tf.Tensor, kernel: tf.Tensor | None = None) -> tf.Tensor:
        """The input part of all three gates: float32 ``[..., input_size]`` -> ``[..., 3 * units]``.

        ``kernel`` replaces ``self.kernel`` (a block of its rows, when the input is given in
        parts); the bias is not added then.
        """
        weights = self.kernel if kernel is None else kernel
        width = int(weights.shape[0])
        flat = tf.reshape(inputs, [-1, width])
        projected = tf.matmul(flat, weights)
        if kernel is None:
            projected = tf.nn.bias_add(projected, self.bias)
        shape = tf.concat([tf.shape(inputs)[:-1], [3 * self.units]], axis=0)
        return tf.reshape(projected, shape)

    def step(self, projected: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """One step: input part ``[batch, 3H]`` (from :meth:`project`) and state ``[batch, H]`` -> ``[batch, H]``."""
        recurrent = tf.nn.bias_add(tf.matmul(state, self.recurrent_kernel), self.recurrent_bias)
        return gates(projected, recurrent, state, self.units)

    def zero_state(self, batch: tf.Tensor) -> tf.Tensor:
        """float32 ``[batch, units]`` zeros."""
        return tf.zeros(tf.stack([batch, self.units]), tf.float32)


def gates(projected: tf.Tensor, recurrent: tf.Tensor, state: tf.Tensor, units: int) -> tf.Tensor:
    """The cell's update from its two products (see the module docstring); any leading axes.

    ``projected`` and ``recurrent`` are ``[..., 3H]`` (biases added), ``state`` is ``[..., H]``;
    returns the new state ``[..., H]``.
    """
    x_gates, x_candidate = tf.split(projected, [2 * units, units], axis=-1)
    h_gates, h_candidate = tf.split(recurrent, [2 * units, units], axis=-1)
    update, reset = tf.split(tf.sigmoid(x_gates + h_gates), 2, axis=-1)
    candidate = tf.tanh(x_candidate + reset * h_candidate)
    return candidate + update * (state - candidate)


def steps_needed(mask: tf.Tensor) -> tf.Tensor:
    """Steps that hold any unmasked position: 1 + the last True column of bool ``[batch, time]`` (0 if none).

    Columns from there on are masked in every row; a caller may drop them before projecting.
    """
    positions = tf.range(1, tf.shape(mask)[1] + 1)
    return tf.reduce_max(tf.where(mask, tf.broadcast_to(positions, tf.shape(mask)), tf.zeros_like(mask, tf.int32)))


def _mask_from(projected: tf.Tensor, mask: tf.Tensor | None, lengths: tf.Tensor | None) -> tf.Tensor | None:
    if mask is not None and lengths is not None:
        raise ValueError("give a mask or lengths, not both")
    if lengths is not None:
        return tf.sequence_mask(lengths, tf.shape(projected)[1])
    return mask


def unroll(
    cell: GRU,
    projected: tf.Tensor,
    mask: tf.Tensor | None = None,
    lengths: tf.Tensor | None = None,
    initial_state: tf.Tensor | None = None,
    return_sequences: bool = False,
    back_prop: bool = True,
) -> tuple[tf.Tensor | None, tf.Tensor]:
    """Run ``cell`` over time with ``tf.while_loop``.

    Args:
        projected: float32 ``[batch, time, 3H]``, the input part of the gates (:meth:`GRU.project`).
        mask: bool ``[batch, time]``: False steps keep the state unchanged (and output zeros).
        lengths: int32 ``[batch]``, instead of ``mask``: steps at or past a row's length are masked.
        initial_state: float32 ``[batch, H]``; zeros when ``None``.
        return_sequences: also return every step's state.
        back_prop: ``False`` for inference-only graphs (no gradient bookkeeping in the loop).

    Returns:
        ``(outputs, final_state)``: outputs float32 ``[batch, time, H]`` (zeros at masked
        steps) or ``None`` without ``return_sequences``; final state float32 ``[batch, H]``.
        With a mask, the loop stops after the last step any row uses.
    """
    mask = _mask_from(projected, mask, lengths)
    state = cell.zero_state(tf.shape(projected)[0]) if initial_state is None else initial_state
    time = tf.shape(projected)[1]
    steps = time if mask is None else steps_needed(mask)
    inputs = tf.TensorArray(tf.float32, size=time, clear_after_read=False).unstack(tf.transpose(projected, [1, 0, 2]))
    masks = None if mask is None else tf.TensorArray(tf.bool, size=time).unstack(tf.transpose(mask))
    outputs = tf.TensorArray(tf.float32, size=time) if return_sequences else None

    def body(i, h, out):
        new = cell.step(inputs.read(i), h)
        emitted = new
        if masks is not None:
            keep = masks.read(i)
            new = tf.where(keep, new, h)
            emitted = tf.where(keep, new, tf.zeros_like(new))
        if out is not None:
            out = out.write(i, emitted)
        return (i + 1, new) + ((out,) if out is not None else ())

    loop_vars = (tf.constant(0), state) + ((outputs,) if outputs is not None else ())
    results = tf.while_loop(
        lambda i, *_: i < steps,
        lambda i, h, *rest: body(i, h, rest[0] if rest else None),
        loop_vars,
        back_prop=back_prop,
        name="gru_unroll",
    )
    final = results[1]
    if not return_sequences:
        return None, final
    sequences = _stack_padded(results[2], time, steps)
    return tf.transpose(sequences, [1, 0, 2]), final


def _stack_padded(array: tf.TensorArray, time: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    """``[time, batch, H]`` from a TensorArray written at steps ``[0, steps)``; later steps are zeros."""
    written = array.gather(tf.range(steps))
    return tf.pad(written, tf.stack([tf.stack([0, time - steps]), [0, 0], [0, 0]]))


def bidirectional(
    forward: GRU,
    backward: GRU,
    projected_forward: tf.Tensor,
    projected_backward: tf.Tensor,
    mask: tf.Tensor | None = None,
    lengths: tf.Tensor | None = None,
    back_prop: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Final states of a forward and a backward GRU of the same width over the same sequences.

    Args:
        projected_forward, projected_backward: float32 ``[batch, time, 3H]`` input parts of the
            two cells (their own kernels).
        mask / lengths: as in :func:`unroll`; the backward cell starts at each row's last
            unmasked step.

    Returns:
        ``(forward_final, backward_final)``, float32 ``[batch, H]`` each.

    The two directions advance together as one ``[2, batch, H]`` state: one set of gate ops
    per step serves both, which halves the ops the loop runs. The recurrent products are two
    plain matmuls, not one batched ``[2, batch, H] x [2, H, 3H]``: at these sizes the batched
    kernel took about 40 us a step in a traced decode (three sequences of a reply's context, 64 units), and the
    shipped responder, exported both ways, decoded 4-8% faster with the two matmuls, with
    the same replies and log-probabilities to the bit. The result is what :func:`unroll`
    gives for each cell.
    """
    if forward.units != backward.units:
        raise ValueError(f"bidirectional GRUs must have one width, got {forward.units} and {backward.units}")
    units = forward.units
    mask = _mask_from(projected_forward, mask, lengths)
    batch = tf.shape(projected_forward)[0]
    time = tf.shape(projected_forward)[1]
    steps = time if mask is None else steps_needed(mask)
    # Step i reads the forward input at time i and the backward input at time steps - 1 - i.
    forward_inputs = tf.transpose(projected_forward[:, :steps], [1, 0, 2])  # [steps, batch, 3H]
    backward_inputs = tf.reverse(tf.transpose(projected_backward[:, :steps], [1, 0, 2]), axis=[0])
    inputs = tf.TensorArray(tf.float32, size=steps).unstack(tf.stack([forward_inputs, backward_inputs], axis=1))
    masks = None
    if mask is not None:
        forward_mask = tf.transpose(mask[:, :steps])  # [steps, batch]
        both = tf.stack([forward_mask, tf.reverse(forward_mask, axis=[0])], axis=1)  # [steps, 2, batch]
        masks = tf.TensorArray(tf.bool, size=steps).unstack(tf.expand_dims(both, -1))
    biases = tf.stack([forward.recurrent_bias, backward.recurrent_bias])[:, None, :]  # [2, 1, 3H]

    def body(i, h):
        recurrent = tf.stack([tf.matmul(h[0], forward.recurrent_kernel), tf.matmul(h[1], backward.recurrent_kernel)])
        new = gates(inputs.read(i), recurrent + biases, h, units)
        if masks is not None:
            new = tf.where_v2(masks.read(i), new, h)
        return i + 1, new

    _, final = tf.while_loop(
        lambda i, _: i < steps,
        body,
        (tf.constant(0), tf.zeros(tf.stack([2, batch, units]), tf.float32)),
        back_prop=back_prop,
        name="bidirectional_gru",
    )
    return final[0], final[1]
