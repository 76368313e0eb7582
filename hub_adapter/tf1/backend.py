"""The TF1 compat mode backend for TF1 Hub modules behind ``hub_adapter.load``.

``load(handle)`` in graph mode, for a folder in the TF1 Hub format, ends
here with a validated :class:`~hub_adapter.model.LoadRequest`. The backend
builds one :class:`~hub_adapter.tf1.module.Module` in the current graph and
wraps it in :class:`TF1HubModel`, whose ``model(inputs, training=...)``
applies the picked signature:

- ``training=True`` applies the training graph variant (``request.train_tags``,
  usually ``{"train"}``: batch norm in training mode, dropout on) when the
  module has one, else the inference variant (``request.tags``);
- both variants run on ONE set of variables, created once at load time;
  load refuses modules whose variants declare different variables;
- with ``trainable=True`` the variables are in TRAINABLE_VARIABLES, the
  regularization losses in REGULARIZATION_LOSSES and each training call's
  update ops in UPDATE_OPS, as ``hub.Module(..., trainable=True)`` does.
"""
from __future__ import annotations

import types
from typing import Any, Dict, List, Mapping, Optional

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import signatures as signatures_lib
from hub_adapter.model import LoadRequest, Model
from hub_adapter.tf1 import spec as spec_lib
from hub_adapter.tf1 import state as state_lib
from hub_adapter.tf1.module import Module


class TF1HubModel(Model):
  """A TF1 Hub module loaded in graph mode.

  Calling it adds the signature's ops to the current graph and returns
  tensors to run in a ``tf.compat.v1.Session`` (after
  ``global_variables_initializer()`` and ``tables_initializer()``).

  Attributes:
    raw: The :class:`~hub_adapter.tf1.module.Module`.
    signatures: Signature name -> a function applying it (inference variant,
      outputs as a dict).
    variables, trainable_variables: The module's variables (trainable ones
      only when loaded with ``trainable=True``).
    regularization_losses: The module's regularization loss tensors (when
      trainable).
    update_ops: Update ops that training calls added (when trainable).
  """

  def __init__(self, request: LoadRequest, module: Module):
    super().__init__(request, module)
    self._update_ops: List[Any] = []

  @property
  def module(self) -> Module:
    return self._raw

  def keras_training_limit(self, trainable_from_start: bool) -> Optional[str]:
    """The module's graph was built frozen or for training when it was
    loaded: a layer set trainable later cannot switch it (see
    :meth:`hub_adapter.Model.keras_training_limit`)."""
    return None if trainable_from_start else "keras_tf1_trainable_later"

  def _tags_for(self, training: Optional[bool]):
    train = self._request.train_tags
    if training and train is not None:
      return frozenset(train)
    return frozenset(self._request.tags or ())

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    """Applies the picked signature.

    Args:
      inputs: A dict keyed by input name, or a bare value for a signature
        with one input; keyword inputs are accepted as well.
      training: True applies the training graph variant where the module
        has one.
      **kwargs: Inputs by name.

    Returns:
      The output picked by the request (``output_key``, ``as_dict``, else the
      ``default`` output, else the only one, else the dict).

    Raises:
      InputError: inputs do not fit the signature (InputTypeError, also a
        TypeError, for wrong names, dtypes or shapes).
    """
    if kwargs:
      if inputs is not None and not isinstance(inputs, Mapping):
        raise errors.InputTypeError(errors.compose(
            "A bare input and keyword inputs were both given.",
            fix="Pass a dict keyed by input name, or keywords only.",
            context={"handle": self.handle}))
      merged = dict(inputs or {})
      twice = sorted(set(merged) & set(kwargs))
      if twice:
        raise errors.InputTypeError(errors.compose(
            f"The inputs {errors.choices(twice)} were given twice.",
            fix="Pass each input once.", context={"handle": self.handle}))
      merged.update(kwargs)
      inputs = merged
    tf = runtime.tf()
    graph = tf.compat.v1.get_default_graph()
    before = len(graph.get_collection(state_lib.UPDATE_OPS))
    outputs = self._raw.apply_signature(
        inputs, signature=self.signature, tags=self._tags_for(training))
    added = graph.get_collection(state_lib.UPDATE_OPS)[before:]
    self._update_ops.extend(added)
    return signatures_lib.select_output(
        outputs, self._request.output_key, self._request.as_dict)

  @property
  def signatures(self) -> Mapping[str, Any]:
    def make(name):
      def apply(inputs=None, **kwargs):
        if kwargs:
          inputs = dict(inputs or {}, **kwargs)
        return self._raw.apply_signature(inputs, signature=name)
      apply.__name__ = f"signature_{name}"
      return apply
    return types.MappingProxyType(
        {name: make(name) for name in self._raw.get_signature_names()})

  @property
  def variables(self) -> List[Any]:
    return self._raw.variables

  @property
  def trainable_variables(self) -> List[Any]:
    return self._raw.trainable_variables

  @property
  def regularization_losses(self) -> List[Any]:
    return self._raw.regularization_losses

  @property
  def update_ops(self) -> List[Any]:
    return list(self._update_ops)

  @property
  def variable_map(self) -> Dict[str, Any]:
    return self._raw.variable_map


def load(request: LoadRequest) -> TF1HubModel:
  """Builds the Module for a request in the current graph.

  The instance's state comes from the training variant when fine-tuning
  (its regularization losses are the ones collected), else from the
  inference variant; the other variant must declare the same variables.

  Args:
    request: A validated request for a TF1 Hub module in TF1 compat mode.

  Returns:
    A :class:`TF1HubModel`.

  Raises:
    ModelFormatError: the module cannot be read, or its variants declare
      different variables.
    TagSetError: the request names a missing tag set.
  """
  spec = spec_lib.read_module_spec(request.path)
  tags = frozenset(request.tags or ())
  train = (frozenset(request.train_tags)
           if request.train_tags is not None else None)
  if train is not None and train != tags:
    state_lib.check_variants_agree(spec, tags, train)
  state_tags = train if (request.trainable and train is not None) else tags
  module = Module(spec, trainable=request.trainable, tags=state_tags)
  return TF1HubModel(request, module)
