"""Image module helpers: expected input size and channels.

Image modules on TF Hub take ``[batch, height, width, channels]`` inputs.
The size they expect comes from an ``ImageModuleInfo`` message attached
under ``"image_module_info"`` (its ``default_image_size``) when the
publisher attached one, else from the static shape of the signature's image
input (``images``, or the only input of a single-input signature such as
``default``). These functions read both, as ``tensorflow_hub`` 0.15's
``get_expected_image_size`` and ``get_num_image_channels`` do, and accept a
``Module`` or a ``ModuleSpec``.
"""
from __future__ import annotations

from typing import List, Optional

from hub_adapter import errors
from hub_adapter.tf1 import hub_protos

IMAGE_MODULE_INFO_KEY = hub_protos.IMAGE_MODULE_INFO_KEY
ImageModuleInfo = hub_protos.ImageModuleInfo  # pylint: disable=invalid-name
DEFAULT_INPUT_NAME = "images"


def get_image_module_info(module_or_spec, required: bool = False):
  """Returns the attached ``ImageModuleInfo``, or None when absent.

  Args:
    module_or_spec: A Module or ModuleSpec.
    required: Raise ``AttachmentNotFoundError`` (a KeyError) when absent.
  """
  return module_or_spec.get_attached_message(
      IMAGE_MODULE_INFO_KEY, ImageModuleInfo, required=required)


def _image_shape(module_or_spec, signature: Optional[str],
                 input_name: Optional[str]):
  """Returns (input name, static shape) of the signature's image input.

  Raises:
    SignatureError: the signature does not exist.
    InputError: it has no input of that name (a ValueError, as
      tensorflow_hub raised).
  """
  infos = module_or_spec.get_input_info_dict(signature)
  name = input_name or DEFAULT_INPUT_NAME
  if name not in infos and input_name is None and len(infos) == 1:
    # A signature built from one tensor names its input "default".
    name = next(iter(infos))
  if name not in infos:
    raise errors.InputError(errors.compose(
        f"Signature {signature or 'default'!r} has no image input "
        f"{name!r}.", f"Its inputs are {errors.choices(infos)}.",
        "Pass input_name= the image input."),
        signature=signature or "default", input_name=name,
        available=sorted(infos))
  return name, infos[name].get_shape()


def _dims(shape, name: str, signature: Optional[str], what: str
          ) -> List[Optional[int]]:
  if shape.rank != 4:
    raise errors.InputError(errors.compose(
        f"Input {name!r} of signature {signature or 'default'!r} has shape "
        f"{shape}; expected [batch_size, height, width, num_channels] with "
        f"known {what}.",
        "Only 4-D image inputs have a height, width and channels.",
        "Use a signature that takes images."),
        shape=str(shape), input_name=name)
  return shape.as_list()


def get_expected_image_size(module_or_spec, signature: Optional[str] = None,
                            input_name: Optional[str] = None) -> List[int]:
  """Returns the ``[height, width]`` an image module expects.

  The attached ``ImageModuleInfo`` wins when it sets both; otherwise the
  static shape of the image input must know them.

  Args:
    module_or_spec: A Module or ModuleSpec.
    signature: The signature; None means ``"default"``.
    input_name: The image input; None means ``"images"`` (or the only input).

  Returns:
    ``[height, width]``.

  Raises:
    InputError: no size is attached and the input shape does not know it
      (a ValueError, as in tensorflow_hub).
  """
  info = get_image_module_info(module_or_spec)
  if info is not None:
    size = hub_protos.image_size(info)
    if size is not None:
      return list(size)
  name, shape = _image_shape(module_or_spec, signature, input_name)
  _, height, width, _ = _dims(shape, name, signature, "height and width")
  if not height or not width:
    raise errors.InputError(errors.compose(
        f"Input {name!r} of signature {signature or 'default'!r} has shape "
        f"{shape}; its height and width are unknown and no "
        "image_module_info with a default_image_size is attached.",
        "The module accepts any size but does not say which it was trained "
        "for.", "Pick a size yourself (e.g. the one the module's "
        "documentation names)."), shape=str(shape), input_name=name)
  return [height, width]


def get_num_image_channels(module_or_spec, signature: Optional[str] = None,
                           input_name: Optional[str] = None) -> int:
  """Returns the number of channels of an image module's input.

  Args:
    module_or_spec: A Module or ModuleSpec.
    signature: The signature; None means ``"default"``.
    input_name: The image input; None means ``"images"`` (or the only input).

  Returns:
    The static channel count.

  Raises:
    InputError: the input shape does not know it (a ValueError).
  """
  name, shape = _image_shape(module_or_spec, signature, input_name)
  channels = _dims(shape, name, signature, "num_channels")[3]
  if channels is None:
    raise errors.InputError(errors.compose(
        f"Input {name!r} of signature {signature or 'default'!r} has shape "
        f"{shape}; its number of channels is unknown.",
        "The signature does not fix the last dimension.",
        "Use the channel count from the module's documentation (usually 3)."),
        shape=str(shape), input_name=name)
  return channels
