"""The responder as a TF1 SavedModel: :func:`export_responder` writes it, :class:`LoadedResponder` serves it.

The SavedModel (tags ``("serve",)``) holds the inference graph only (no dropout, no optimizer
state) with seven signatures:

* ``greedy``, ``beam``, ``sample``: inputs as in :data:`compat.responder.decoding.SIGNATURE_INPUTS`,
  outputs ``ids`` int32 ``[batch, candidates, max_length]``, ``log_probs`` float32 and
  ``lengths`` int32 ``[batch, candidates]``;
* ``greedy_guided``, ``beam_guided``, ``sample_guided``: the same with ``condition_strength``
  (condition guidance, :mod:`compat.responder.decoding`). A SavedModel written before they
  existed lacks them; :class:`LoadedResponder` loads it all the same (``guided`` is ``False``);
* ``score``: ``context_ids``, ``condition_ids``, ``reply_ids`` -> ``token_log_probs`` float32
  ``[batch, reply_len]``.

The spec it was built from is kept in the graph as the string constant ``responder/spec_json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from compat.graph_session import GraphSession, session_config
from compat.interface import SavedModelError, first_line, tensorflow_path
from compat.responder.decoding import (
    GUIDED_SIGNATURE_INPUTS,
    GUIDED_SIGNATURE_OUTPUTS,
    SIGNATURE_INPUTS,
    SIGNATURE_OUTPUTS,
    DecodeOps,
    DecodeRunner,
    build_decoding,
)
from compat.responder.network import SCOPE, ResponderNetwork
from compat.responder.spec import DecodeResult, ResponderSpec
from compat.responder.trainer import load_weights
from compat.runtime import tf

SERVING_TAGS = ("serve",)  # tf.saved_model.tag_constants.SERVING
SPEC_TENSOR = f"{SCOPE}/spec_json"

__all__ = ["export_responder", "LoadedResponder", "DecodeResult", "SavedModelError", "SERVING_TAGS"]


def export_responder(weights: Mapping[str, np.ndarray], spec: ResponderSpec, export_dir: str) -> None:
    """Write a SavedModel of the inference graph holding ``weights`` to ``export_dir`` (which must not exist)."""
    if os.path.exists(export_dir):
        raise FileExistsError(f"SavedModel directory already exists: {export_dir}")
    with GraphSession() as gs:
        with gs.bound():
            network = ResponderNetwork(spec, seed=0)
            ops = build_decoding(network)
            tf.constant(json.dumps(spec.to_dict(), sort_keys=True), name=SPEC_TENSOR)
            variables = {v.name.split(":")[0]: v for v in network.variables()}
            init = tf.global_variables_initializer()
            gs.run(init)
            load_weights(gs, variables, weights)
            signatures = {
                name: tf.saved_model.signature_def_utils.predict_signature_def(
                    inputs={key: ops.inputs[key] for key in inputs[name]},
                    outputs={key: ops.outputs[name][key] for key in outputs[name]},
                )
                for inputs, outputs in (
                    (SIGNATURE_INPUTS, SIGNATURE_OUTPUTS),
                    (GUIDED_SIGNATURE_INPUTS, GUIDED_SIGNATURE_OUTPUTS),
                )
                for name in inputs
            }
            builder = tf.saved_model.builder.SavedModelBuilder(tensorflow_path(export_dir))
            builder.add_meta_graph_and_variables(
                gs.session, list(SERVING_TAGS), signature_def_map=signatures, strip_default_attrs=True
            )
            builder.save()
    _reserialize_loop_contexts(export_dir)


def _reserialize_loop_contexts(export_dir: str) -> None:
    """Rewrite ``export_dir``'s saved_model.pb with its control-flow contexts serialized in a fixed
    order: the same graph and weights give the same bytes in every process. Loading reads the
    contexts as before (the same protos)."""
    # Imported here, not at the top, where the import order would put it before compat.runtime.
    from tensorflow.core.protobuf import control_flow_pb2, saved_model_pb2

    # The graph keeps its while loops' contexts as serialized protos in a collection, written with
    # their maps in an order that differs from one process to the next, so two exports of the same
    # weights had different saved_model.pb files (and checksums).
    contexts = {"while_context": control_flow_pb2.WhileContextDef, "cond_context": control_flow_pb2.CondContextDef}
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    for meta_graph in saved_model.meta_graphs:
        for key, message_type in contexts.items():
            if key not in meta_graph.collection_def:
                continue
            values = meta_graph.collection_def[key].bytes_list.value
            for index, raw in enumerate(values):
                context = message_type()
                context.ParseFromString(raw)
                values[index] = context.SerializeToString(deterministic=True)
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString(deterministic=True))


class LoadedResponder:
    """An exported responder in its own finalized graph and session.

    :meth:`decode` and :meth:`score` may be called from many threads at once: each is one run of
    the graph (a compiled call, see :class:`compat.graph_session.FixedRun`) and keeps no Python
    state between calls but the compiled calls themselves.

    Attributes:
        spec: the :class:`ResponderSpec` stored in the SavedModel.
        vocab_size, n_conditions: valid id ranges of the inputs.
    """

    def __init__(self, export_dir: str, intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        export_dir = os.fspath(export_dir)
        if not os.path.isdir(export_dir):
            raise SavedModelError(f"no SavedModel directory at {export_dir}")
        self._gs = GraphSession(session_config(intra_op_threads, inter_op_threads))
        try:
            self._load(export_dir)
        except SavedModelError:
            self._gs.close()
            raise
        except Exception as exc:  # OpError, OSError, protobuf DecodeError from a damaged saved_model.pb, ...
            self._gs.close()
            raise SavedModelError(
                f"cannot load the responder SavedModel from {export_dir}: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        # Loading is done: a request thread that tries to build an op now fails at once.
        self._gs.finalize()

    def _load(self, export_dir: str) -> None:
        with self._gs.bound():
            meta_graph = tf.saved_model.loader.load(self._gs.session, list(SERVING_TAGS), tensorflow_path(export_dir))
        uninitialized = self._gs.uninitialized_variables()
        if uninitialized:
            names = ", ".join(uninitialized)
            raise SavedModelError(f"{export_dir}: variables left uninitialised after restore: {names}")
        inputs: dict[str, tf.Tensor] = {}
        outputs: dict[str, dict[str, tf.Tensor]] = {}
        # The guided signatures are optional: a SavedModel exported before them decodes unguided.
        expected = {**SIGNATURE_INPUTS, **GUIDED_SIGNATURE_INPUTS}
        expected_outputs = {**SIGNATURE_OUTPUTS, **GUIDED_SIGNATURE_OUTPUTS}
        for name in expected:
            signature = meta_graph.signature_def.get(name)
            if signature is None:
                if name in GUIDED_SIGNATURE_INPUTS:
                    continue
                raise SavedModelError(f"{export_dir} has no {name!r} signature: not a responder SavedModel")
            lacking = sorted(set(expected[name]) - set(signature.inputs)) + sorted(
                set(expected_outputs[name]) - set(signature.outputs)
            )
            if lacking:
                raise SavedModelError(f"{export_dir}: signature {name!r} lacks {', '.join(lacking)}")
            for key in expected[name]:
                inputs[key] = self._gs.tensor(signature.inputs[key].name)
            outputs[name] = {key: self._gs.tensor(signature.outputs[key].name) for key in expected_outputs[name]}
        try:
            spec_json = self._gs.run(self._gs.tensor(SPEC_TENSOR + ":0"))
        except KeyError as exc:
            raise SavedModelError(f"{export_dir}: the graph holds no {SPEC_TENSOR}") from exc
        try:
            self.spec = ResponderSpec.from_dict(json.loads(spec_json.decode("utf-8")))
        except ValueError as exc:
            raise SavedModelError(f"{export_dir}: {SPEC_TENSOR} is not a valid spec: {exc}") from exc
        self.vocab_size = self.spec.vocab_size
        self.n_conditions = self.spec.n_conditions
        self.guided = set(GUIDED_SIGNATURE_INPUTS) <= set(outputs)
        ops = DecodeOps(inputs=inputs, outputs=outputs, vocab_size=self.vocab_size, n_conditions=self.n_conditions)
        self._runner = DecodeRunner(self._gs, ops)

    @property
    def graph_session(self) -> GraphSession:
        return self._gs

    def decode(self, context_ids: np.ndarray, condition_ids: np.ndarray, **options: Any) -> DecodeResult:
        """Replies for ``context_ids`` int ``[batch, turns, turn_len]`` and ``condition_ids`` ``[batch]``.

        One run of the graph a call. ``options`` (``mode``, ``max_length``, ...) are described at
        :meth:`compat.interface.ResponderModel.decode` and checked by
        :func:`compat.responder.inputs.decode_call`: bad inputs raise ``ValueError`` before
        anything runs.
        """
        return self._runner.decode(context_ids, condition_ids, **options)

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]``: log p of each token of ``reply_ids`` (0 at PAD)."""
        return self._runner.score(context_ids, condition_ids, reply_ids)

    def close(self) -> None:
        self._gs.close()

    def __enter__(self) -> LoadedResponder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
