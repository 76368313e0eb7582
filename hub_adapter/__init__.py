"""hub_adapter: every TensorFlow Hub model, in every TensorFlow mode that can run it.

``import hub_adapter as hub`` is meant to feel like ``import tensorflow_hub as
hub``. Importing this package imports neither TensorFlow nor Keras; each
public name is imported from its module on first use.
"""
import importlib

from hub_adapter.errors import (ArchiveError, ArgumentError,
                                BackendUnavailableError, CacheError, HandleError, HubAdapterError,
                                InputError, ModelFormatError, SignatureError,
                                UnsafeModelError, UnsupportedOperationError)
from hub_adapter.support import Format, Mode, Operation

__version__ = "0.1.0"

_LAZY = {
    "load": "hub_adapter.loading:load",
    "Model": "hub_adapter.model:Model",
    "save": "hub_adapter.tf2.creation:save",
    "resolve": "hub_adapter.handles:resolve",
    "inspect": "hub_adapter.inspection:inspect",
    "convert": "hub_adapter.conversion:convert",
    "ModelInfo": "hub_adapter.model_info:ModelInfo",
    "KerasLayer": "hub_adapter.keras_layer:KerasLayer",
    # TF1 Hub format API, compatible with tensorflow_hub 0.15.
    "Module": "hub_adapter.tf1.module:Module",
    "ModuleSpec": "hub_adapter.tf1.spec:ModuleSpec",
    "load_module_spec": "hub_adapter.tf1.spec:load_module_spec",
    "create_module_spec": "hub_adapter.tf1.creation:create_module_spec",
    "add_signature": "hub_adapter.tf1.creation:add_signature",
    "attach_message": "hub_adapter.tf1.creation:attach_message",
    "get_expected_image_size": "hub_adapter.tf1.image_util:get_expected_image_size",
    "get_num_image_channels": "hub_adapter.tf1.image_util:get_num_image_channels",
}

__all__ = sorted([
    "ArchiveError", "ArgumentError", "BackendUnavailableError", "CacheError", "HandleError",
    "HubAdapterError", "InputError", "ModelFormatError", "SignatureError",
    "UnsafeModelError", "UnsupportedOperationError", "Format", "Mode",
    "Operation", *_LAZY])


# Saved Keras models holding a KerasLayer reload after `import hub_adapter`
# alone; this imports neither TensorFlow nor Keras (see the module).
from hub_adapter.keras_layers import registration as _keras_registration  # pylint: disable=g-import-not-at-top,wrong-import-position

_keras_registration.install()


def __getattr__(name):
  target = _LAZY.get(name)
  if target is None:
    raise AttributeError(f"module 'hub_adapter' has no attribute {name!r}")
  module_name, _, attribute = target.partition(":")
  value = getattr(importlib.import_module(module_name), attribute)
  globals()[name] = value
  return value


def __dir__():
  return __all__
