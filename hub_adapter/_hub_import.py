"""Imports tensorflow_hub where its own import would fail.

tensorflow_hub 0.16.1 imports ``pkg_resources``, which setuptools >= 81 no
longer ships. Rather than asking users to downgrade setuptools, we put a
minimal stand-in module in place for the duration of the import and take it
away afterwards, so nothing else sees it.
"""
from __future__ import annotations

import functools
import sys
import types


def _pkg_resources_stand_in() -> types.ModuleType:
  from packaging import version  # pylint: disable=g-import-not-at-top
  module = types.ModuleType("pkg_resources")
  module.parse_version = version.parse
  module.__hub_adapter_stand_in__ = True
  return module


@functools.lru_cache(maxsize=None)
def import_tensorflow_hub() -> types.ModuleType:
  """Returns the ``tensorflow_hub`` module, imported once.

  Returns:
    The module.

  Raises:
    ImportError: tensorflow_hub is not installed or fails for another reason.
  """
  if "tensorflow_hub" in sys.modules:
    return sys.modules["tensorflow_hub"]
  try:
    import pkg_resources  # pylint: disable=g-import-not-at-top,unused-import
    needs_stand_in = False
  except ImportError:
    needs_stand_in = True
  if not needs_stand_in:
    import tensorflow_hub  # pylint: disable=g-import-not-at-top
    return tensorflow_hub
  sys.modules["pkg_resources"] = _pkg_resources_stand_in()
  try:
    import tensorflow_hub  # pylint: disable=g-import-not-at-top
  finally:
    if getattr(sys.modules.get("pkg_resources"), "__hub_adapter_stand_in__",
               False):
      del sys.modules["pkg_resources"]
  return tensorflow_hub
