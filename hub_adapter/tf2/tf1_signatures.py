"""TF1 Hub modules in TF2 mode, for inference (``tf1_hub`` x ``tf2`` x load).

``tf.saved_model.load(path, tags)`` turns each signature of one graph
variant into a frozen TF2 function (what ``hub.load`` gives for the TF1 Hub
format). :class:`TF1SignaturesModel` applies the picked signature: inputs as
a dict or, for a one-input signature, bare; the ``default`` output (or the
only one, ``output_key``'s, or the dict with ``as_dict=True``).

``training=True`` applies the same signature of the ``{"train"}`` graph
variant when the module has one (loaded on first use: its own copy of the
variables, read-only like the first). Neither variant's ``UPDATE_OPS`` or
``REGULARIZATION_LOSSES`` exist in TF2, so the model has no trainable
variables and no regularization losses; fine-tuning needs TF1 compat mode
(``support.require`` refuses ``trainable=True`` here before this module is
reached).
"""
from __future__ import annotations

import dataclasses
from typing import Any, List, Optional

from hub_adapter.model import LoadRequest
from hub_adapter.support import Mode, Operation
from hub_adapter.tf2 import common
from hub_adapter.tf2 import trackable


class TF1SignaturesModel(common.SavedModelModel):
  """A TF1 Hub module's signatures, loaded in TF2 mode.

  ``signatures`` and ``variables`` are those of ``tf.saved_model.load``'s
  object (as on ``hub.load``'s result); ``trainable_variables``,
  ``regularization_losses`` and ``update_ops`` are empty.
  """

  def __init__(self, request: LoadRequest, raw: Any):
    super().__init__(request, raw)
    self._train_raw: Optional[Any] = None

  @property
  def trainable_variables(self) -> List[Any]:
    return []

  def keras_training_limit(self, trainable_from_start: bool) -> Optional[str]:
    """A layer set trainable after it was made frozen cannot start training
    a TF1 Hub module (see :meth:`hub_adapter.Model.keras_training_limit`);
    in TF2 the fine-tune cell refuses first anyway."""
    return None if trainable_from_start else "keras_tf1_trainable_later"

  def saveable_state(self) -> Any:
    """A ``tf.Module`` holding the module's live state
    (:func:`hub_adapter.tf2.trackable.tf1_module_holder`)."""
    return trackable.tf1_module_holder(self)

  def layer_trainable_variables(self) -> List[Any]:
    """None: a TF1 Hub module's signatures in TF2 never train.

    Returns:
      An empty list.
    """
    return []

  @property
  def regularization_losses(self) -> List[Any]:
    return []

  def _uses_train_variant(self, training: Any) -> bool:
    train_tags = self._request.train_tags
    if not training or train_tags is None or train_tags == self.tags:
      return False
    return self.signature in self.info.signatures_for(train_tags)

  def train_variant(self) -> Any:
    """The ``{"train"}`` graph variant's loaded object (loaded once)."""
    if self._train_raw is None:
      request = dataclasses.replace(self._request,
                                    tags=self._request.train_tags)
      self._train_raw = common.load_saved_model(request)
    return self._train_raw

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    if self._uses_train_variant(common.python_bool(training) is True):
      tags = self._request.train_tags
      return self._call_signature(
          self.train_variant().signatures[self.signature],
          self.signature_info(tags=tags), inputs, kwargs)
    return self._call_signature(self._raw.signatures[self.signature],
                                self.signature_info(), inputs, kwargs)


def load(request: LoadRequest) -> TF1SignaturesModel:
  """Loads a TF1 Hub module's signatures in TF2 mode.

  Args:
    request: The validated request; its signature is never None for this
      format.

  Returns:
    A :class:`TF1SignaturesModel`.

  Raises:
    HubAdapterError: called outside TF2 mode or for fine-tuning (``load()``
      never does: the support table routes those elsewhere or refuses them).
    ModelFormatError: TensorFlow cannot load the folder.
  """
  common.require_cell(request, "hub_adapter.tf2.tf1_signatures:load",
                      "the TF1 Hub load/infer cell in TF2", Mode.TF2,
                      operations=(Operation.LOAD,))
  raw = common.load_saved_model(request)
  return TF1SignaturesModel(request, raw)
