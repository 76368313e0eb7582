"""Creating TF2 SavedModels: ``hub_adapter.save`` (the TF2 create cells).

``tf.saved_model.save`` works in both modes. In TF2 it reads variable values
eagerly. While a graph is being built (TF1 compat mode) it reads them
through a session: the default session when there is one (``with
tf.compat.v1.Session() as sess:`` makes it the default), which holds the
values a TF1 training loop produced. Without any session the variables have
no values yet; :func:`save` then initializes them in a temporary session and
saves their initial values.
"""
from __future__ import annotations

from typing import Any

from hub_adapter import runtime
from hub_adapter import support
from hub_adapter.support import Format, Operation


def save(obj: Any, export_dir: str, signatures: Any = None,
         options: Any = None, *, session: Any = None) -> None:
  """Saves ``obj`` as a TF2 SavedModel that ``hub_adapter.load`` (and
  ``hub.load``) can load, in TF2 or in TF1 compat mode.

  Args:
    obj: A trackable object (``tf.Module``, Keras model, ...) whose
      ``@tf.function`` methods and variables are to be saved; a
      ``@tf.function __call__`` with an ``input_signature`` makes it a
      reusable model. A model that ``hub_adapter.load`` returned in TF2 is
      saved as the object it loaded (a TF1 Hub module: its signatures and
      variables), so the copy loads like the original.
    export_dir: The folder to write.
    signatures: As for ``tf.saved_model.save``; for a loaded model, None
      means its own signatures (which ``tf.saved_model.save`` would drop).
    options: ``tf.saved_model.SaveOptions`` or None.
    session: TF1 compat mode only: the session holding the variable values
      (default: the default session, else a temporary one that initializes
      the variables).

  Raises:
    UnsupportedOperationError: the support table refuses creation here.
    InputError: ``obj`` is a TF1 Hub module loaded in TF1 compat mode.
  """
  tf = runtime.tf()
  mode = runtime.current_mode()
  support.require(Format.TF2_SAVED_MODEL, Operation.CREATE, mode,
                  handle=str(export_dir))
  from hub_adapter.model import Model  # pylint: disable=g-import-not-at-top
  if isinstance(obj, Model):
    obj, signatures = _loaded_model(obj, signatures, export_dir)
  kwargs = {"signatures": signatures}
  if options is not None:
    kwargs["options"] = options
  if mode is support.Mode.TF2:
    tf.saved_model.save(obj, export_dir, **kwargs)
    return
  session = session or tf.compat.v1.get_default_session()
  if session is not None:
    with session.as_default(), session.graph.as_default():
      tf.saved_model.save(obj, export_dir, **kwargs)
    return
  graph = tf.compat.v1.get_default_graph()
  with tf.compat.v1.Session(graph=graph) as temporary:
    _initialize_all(tf, temporary, graph)
    tf.saved_model.save(obj, export_dir, **kwargs)


def _loaded_model(model: Any, signatures: Any, export_dir: Any):
  """What to save for a model ``hub_adapter.load`` returned.

  Raises:
    InputError: the model is not trackable (a TF1 Hub module instantiated
      in a graph by TF1 compat mode: its state lives in the graph).
  """
  from hub_adapter import errors  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import trackable  # pylint: disable=g-import-not-at-top
  if not isinstance(model, trackable.TrackableModel):
    raise errors.InputError(errors.compose(
        f"hub_adapter.save cannot save the {model.format.title} model "
        f"{model.handle!r} loaded in {model.mode.title}.",
        "In TF1 compat mode a TF1 Hub module lives in the graph as "
        "variables and ops, not as an object that tf.saved_model.save can "
        "write.",
        "Load it in TF2 (hub_adapter.load in an eager program) and save "
        "that, or write it as a TF1 Hub module with Module.export(path, "
        "session), or convert it with hub_adapter.convert(handle, path).",
        {"path": str(export_dir)}), handle=model.handle)
  if signatures is None:
    signatures = trackable.save_signatures(model)
  return model, signatures


def _initialize_all(tf: Any, session: Any, graph: Any) -> None:
  """Runs the initializers of the graph's variables and tables."""
  with graph.as_default():
    variables = (tf.compat.v1.global_variables()
                 + tf.compat.v1.local_variables())
    initializers = [v.initializer for v in variables]
    initializers.append(tf.compat.v1.tables_initializer())
    session.run(initializers)
