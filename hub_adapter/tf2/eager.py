"""TF2 SavedModels in TF2 mode (the ``tf2_saved_model`` x ``tf2`` cells).

The model is ``tf.saved_model.load``'s object, wrapped in
:class:`EagerSavedModel`: calling it calls the root ``__call__`` (with
``training`` where the function takes it) or the picked signature; its
variables are the object's own ``tf.Variable`` s, so a ``tf.GradientTape``
over ``model.trainable_variables`` fine-tunes them (the list is empty with
``trainable=False``).
"""
from __future__ import annotations

from hub_adapter.model import LoadRequest
from hub_adapter.support import Mode
from hub_adapter.tf2 import common


class EagerSavedModel(common.SavedModelModel):
  """A TF2 SavedModel loaded in TF2 mode.

  ``regularization_losses`` are the model's zero-argument callables, as on
  ``hub.load``'s result; ``update_ops`` is empty (TF2 functions update their
  state when they run).
  """


def load(request: LoadRequest) -> EagerSavedModel:
  """Loads a TF2 SavedModel in TF2 mode.

  Args:
    request: The validated request (``load()`` builds it).

  Returns:
    An :class:`EagerSavedModel`.

  Raises:
    HubAdapterError: called outside TF2 mode (a programming error; ``load()``
      picks the graph backend there).
    ModelFormatError: TensorFlow cannot load the folder.
    SignatureError: ``output_key`` is not among ``__call__``'s outputs.
  """
  common.require_cell(request, "hub_adapter.tf2.eager:load",
                      "the TF2 cells of the support table", Mode.TF2)
  raw = common.load_saved_model(request)
  common.check_call_output_key(request, raw)
  return EagerSavedModel(request, raw)
