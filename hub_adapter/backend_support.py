"""What ``KerasLayer`` can run on each Keras 3 backend: data, beside the
support table.

The support table (:mod:`hub_adapter.support`) says which (format,
operation, mode) cells work. Under Keras 3 the layer also depends on the
Keras *backend*: with ``KERAS_BACKEND=tensorflow`` every supported cell
works; with ``KERAS_BACKEND=jax`` the model runs through
``jax.experimental.jax2tf.call_tf`` (see
:mod:`hub_adapter.keras_layers.jax_backend`), which limits what can run.
:data:`LIMITS` holds each limit's reason and remedy;
:func:`refuse` raises it as :class:`~hub_adapter.errors.UnsupportedBackendError`.
Nothing else words these refusals.
"""
from __future__ import annotations

import enum
import types
from typing import Any, Mapping, NoReturn, Optional, Tuple

from hub_adapter import errors
from hub_adapter.support import Unsupported

TENSORFLOW = "tensorflow"
JAX = "jax"

SUPPORTED_BACKENDS = (TENSORFLOW, JAX)
"""Keras 3 backends ``KerasLayer`` runs on."""


class Limit(str, enum.Enum):
  """Why a model cannot run (or cannot be compiled) on a Keras backend."""
  BACKEND = "backend"
  JAX_MISSING = "jax_missing"
  TF1_HUB = "tf1_hub"
  STRING_IO = "string_io"
  NOT_LIFTABLE = "not_liftable"
  NOT_COMPILABLE = "not_compilable"


_TF_BACKEND_REMEDY = (
    "or run this model with Keras' TensorFlow backend (KERAS_BACKEND="
    "tensorflow), where every model the support table accepts works.")

_LIMITS = {
    (None, Limit.BACKEND): Unsupported(
        "KerasLayer runs a TensorFlow model: it needs Keras' TensorFlow "
        "backend, or the JAX backend (through jax2tf.call_tf); hub_adapter "
        "has no bridge that calls a TensorFlow graph, with its gradients, "
        "from Keras' other backends (PyTorch, OpenVINO, NumPy).",
        "Set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before importing "
        "keras."),
    (JAX, Limit.JAX_MISSING): Unsupported(
        "Keras' JAX backend runs the model through "
        "jax.experimental.jax2tf.call_tf, which needs jax installed next to "
        "TensorFlow.",
        "pip install 'jax[cpu]>=0.10' (or the jax build for your "
        "accelerator), " + _TF_BACKEND_REMEDY),
    (JAX, Limit.TF1_HUB): Unsupported(
        "A TF1 Hub module loaded in TF2 is a set of frozen signature "
        "functions whose variables, train graph and update ops are not "
        "exposed, so they cannot become the layer's JAX weights.",
        "Convert it to a TF2 SavedModel first: `hub-adapter convert HANDLE "
        "DIR` (hub_adapter.convert(handle, dir)), then "
        "KerasLayer(DIR, trainable=...) runs, fine-tunes and updates its "
        "batch-norm statistics on the JAX backend; " + _TF_BACKEND_REMEDY),
    (JAX, Limit.STRING_IO): Unsupported(
        "JAX arrays cannot hold strings, so a model with string inputs or "
        "outputs (text preprocessing, vocabulary lookups) cannot be a layer "
        "of a JAX-backend Keras model, jitted or not: Keras refuses string "
        "inputs before the layer sees them.",
        "Run the string part in TensorFlow before the model: map the "
        "preprocessing model (e.g. a BERT preprocessor) over a tf.data "
        "pipeline (dataset.map(hub_adapter.load(preprocessor))) and feed "
        "the encoder's numeric inputs (token ids, masks) to "
        "KerasLayer(encoder) in the JAX model; " + _TF_BACKEND_REMEDY),
    (JAX, Limit.NOT_LIFTABLE): Unsupported(
        "On the JAX backend the layer's weights are JAX arrays, so "
        "hub_adapter rewrites the model's functions to take its variables' "
        "values as inputs and return their new values; this model uses a "
        "variable in a way that rewrite does not cover.",
        "Re-export the model with its variables read and assigned outside "
        "tf.cond/tf.while_loop; " + _TF_BACKEND_REMEDY),
    (JAX, Limit.NOT_COMPILABLE): Unsupported(
        "jax.jit compiles the model with XLA, which has no kernels for "
        "string ops, lookup tables or custom-op libraries (such as "
        "tensorflow_text). Without jit, JAX runs the model eagerly in "
        "TensorFlow, which works.",
        "Run it without jit: Keras already does (the layer sets "
        "supports_jit=False, so model.compile() falls back to "
        "jit_compile=False), and call it outside jax.jit in your own "
        "training steps; or move those ops into a tf.data pipeline that "
        "feeds the model their numeric results; " + _TF_BACKEND_REMEDY),
}

LIMITS: Mapping[Tuple[Optional[str], Limit], Unsupported] = (
    types.MappingProxyType(_LIMITS))
"""(backend, limit) -> reason and remedy; backend None: any other backend."""

EAGER_ONLY_NOTE = (
    "KerasLayer({handle!r}) runs on the JAX backend without jit only: XLA "
    "cannot compile {blockers}. Keras' model.compile() falls back to "
    "jit_compile=False for models with this layer; jax.jit around it raises "
    "UnsupportedBackendError.")
"""The warning a layer gives at construction for :attr:`Limit.NOT_COMPILABLE`."""


def lookup(backend: Optional[str], limit: Limit) -> Unsupported:
  """Returns the reason and remedy of a limit.

  Args:
    backend: The Keras backend; None for the backends KerasLayer does not
      support at all.
    limit: The limit.

  Returns:
    The :class:`~hub_adapter.support.Unsupported` entry.

  Raises:
    KeyError: no such entry.
  """
  return LIMITS[(backend, Limit(limit))]


def refuse(backend: str, limit: Limit, what: str, *,
           handle: Optional[str] = None, **context: Any) -> NoReturn:
  """Raises the error of a limit.

  Args:
    backend: The running Keras backend (quoted in the message; a backend
      outside :data:`SUPPORTED_BACKENDS` reads the entry keyed None).
    limit: The limit hit.
    what: The first line: what was asked and failed.
    handle: The model's handle.
    **context: Facts for the error's attributes (string ones are also
      quoted in the message).

  Raises:
    UnsupportedBackendError: always.
  """
  entry = lookup(backend if backend in SUPPORTED_BACKENDS else None, limit)
  facts = {"keras backend": backend, "handle": handle}
  facts.update({k: v for k, v in context.items() if isinstance(v, str)})
  raise errors.UnsupportedBackendError(
      errors.compose(what, entry.reason, entry.remedy, facts),
      backend=backend, limit=Limit(limit), reason=entry.reason,
      remedy=entry.remedy, handle=handle, **context)
