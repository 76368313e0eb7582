"""Saved Keras models with a ``KerasLayer`` reload after ``import hub_adapter``.

Keras finds the class of a saved layer by its registered name
(``"hub_adapter>KerasLayer"``) in its table of custom objects, and only
there: it imports no module of a third-party package. The concrete layer
class is built (and registered) when the first layer is made, which needs
TensorFlow, so a new process that only did ``import hub_adapter`` and then
``keras.models.load_model("model.keras")`` would not find it.

``install()``, run by ``import hub_adapter``, closes that gap without
importing TensorFlow or Keras: for each Keras that is already imported, and
for each one as soon as its import completes, it enters a small *reference*
class under the registered name. Its ``from_config`` builds the real class
for that Keras (which registers itself in the reference's place) and
rebuilds the layer with it. Only the Keras packages' own top-level import is
watched (``keras``: Keras 3, or Keras 2 on TF 2.15; ``tf_keras``); their
modules are loaded by their own loaders, which the watcher only wraps to run
one dictionary insertion afterwards.

Everything here uses the standard library alone.
"""
from __future__ import annotations

import importlib.abc
import sys
import threading
from typing import Any, Dict, Optional

PACKAGE = "hub_adapter"
NAME = "KerasLayer"
REGISTERED_NAME = f"{PACKAGE}>{NAME}"
# Keras package -> the flavour (see hub_adapter.runtime) whose class it needs;
# None: decided from the package's version when it is imported.
WATCHED: Dict[str, Optional[str]] = {"keras": None, "tf_keras": "tf_keras"}

_LOCK = threading.RLock()


def _flavour_of(package: str, module: Any) -> str:
  flavour = WATCHED[package]
  if flavour is not None:
    return flavour
  version = str(getattr(module, "__version__", "3"))
  return "keras3" if not version.startswith("2.") else "tf_keras"


def custom_objects(keras: Any) -> Optional[Dict[str, Any]]:
  """The dict behind ``keras.saving.get_custom_objects()`` (or
  ``keras.utils``'s), or None if this Keras has neither."""
  for holder in ("saving", "utils"):
    getter = getattr(getattr(keras, holder, None), "get_custom_objects", None)
    if getter is not None:
      return getter()
  return None


def reference_class(flavour: str) -> type:
  """Returns the reference class entered for a flavour (one per flavour)."""
  with _LOCK:
    cls = _REFERENCES.get(flavour)
    if cls is None:
      cls = type(NAME, (_Reference,), {"_hub_flavour": flavour,
                                       "__module__": __name__,
                                       "__qualname__": NAME})
      _REFERENCES[flavour] = cls
    return cls


class _Reference:
  """Stands for ``hub_adapter.KerasLayer`` in Keras' registry until the real
  class of that Keras is built."""

  _hub_flavour = "keras3"
  _hub_adapter_reference = True

  @classmethod
  def from_config(cls, config, custom_objects=None):  # pylint: disable=redefined-outer-name
    """Builds the real class for this Keras and makes the layer with it.

    Args:
      config: The layer's config (``KerasLayer.get_config``).
      custom_objects: Passed by some Keras versions; not needed.

    Returns:
      A ``hub_adapter.KerasLayer`` of this Keras.
    """
    del custom_objects
    from hub_adapter.keras_layers import flavours  # pylint: disable=g-import-not-at-top
    return flavours.layer_class(cls._hub_flavour).from_config(config)

  def get_config(self):  # Never instantiated; Keras checks for the method.
    raise NotImplementedError


_REFERENCES: Dict[str, type] = {}


def enter(package: str, module: Any) -> None:
  """Enters the reference class in an imported Keras's registry, unless a
  class is registered under the name already."""
  objects = custom_objects(module)
  if objects is None:
    return
  with _LOCK:
    if REGISTERED_NAME not in objects:
      objects[REGISTERED_NAME] = reference_class(_flavour_of(package, module))


def forget(keras: Any) -> None:
  """Removes the reference class (before the real class registers, which
  tf_keras refuses while another object holds the name)."""
  objects = custom_objects(keras)
  if objects is None:
    return
  with _LOCK:
    if getattr(objects.get(REGISTERED_NAME), "_hub_adapter_reference", False):
      del objects[REGISTERED_NAME]


class _EnteringLoader(importlib.abc.Loader):
  """Runs a Keras package's own loader, then :func:`enter`."""

  def __init__(self, loader: Any, package: str):
    self._loader = loader
    self._package = package

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    self._loader.exec_module(module)
    try:
      enter(self._package, module)
    except Exception:  # pylint: disable=broad-except
      pass  # Never break the user's import; the layer registers on use.

  def __getattr__(self, name):
    return getattr(self._loader, name)


class _Watcher(importlib.abc.MetaPathFinder):
  """Finds the watched packages with the other finders and wraps their
  loader in :class:`_EnteringLoader`."""

  def __init__(self):
    self._busy = threading.local()

  def find_spec(self, fullname, path=None, target=None):
    if fullname not in WATCHED or getattr(self._busy, "on", False):
      return None
    self._busy.on = True
    try:
      for finder in sys.meta_path:
        if finder is self or not hasattr(finder, "find_spec"):
          continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
          break
      else:
        return None
    finally:
      self._busy.on = False
    if spec.loader is None or not hasattr(spec.loader, "exec_module"):
      return spec
    spec.loader = _EnteringLoader(spec.loader, fullname)
    return spec


def install() -> None:
  """Enters the reference in every Keras imported so far and watches for
  the others (idempotent)."""
  with _LOCK:
    for package in WATCHED:
      module = sys.modules.get(package)
      if module is not None:
        try:
          enter(package, module)
        except Exception:  # pylint: disable=broad-except
          pass  # A partly imported Keras: its import will not be re-run.
    if not any(isinstance(f, _Watcher) for f in sys.meta_path):
      sys.meta_path.insert(0, _Watcher())


__all__ = ["install", "enter", "forget", "custom_objects", "reference_class",
           "REGISTERED_NAME"]
