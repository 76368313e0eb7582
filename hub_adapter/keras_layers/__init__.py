"""The pieces behind :class:`hub_adapter.KerasLayer`, one Keras flavour each.

- :mod:`~hub_adapter.keras_layers.flavours` builds (once per flavour) the
  concrete layer class that ``KerasLayer(...)`` returns, and registers it for
  deserialization;
- :mod:`~hub_adapter.keras_layers.keras3` holds what differs under Keras 3
  (its TensorFlow backend);
- :mod:`~hub_adapter.keras_layers.jax_backend` holds what differs under
  Keras 3's JAX backend (the model called through ``jax2tf.call_tf``), with
  :mod:`~hub_adapter.keras_layers.lifting`, which rewrites a model's function
  to take its variables as inputs; other Keras 3 backends get
  :mod:`~hub_adapter.keras_layers.other_backends`, which refuses them;
- :mod:`~hub_adapter.keras_layers.tf_keras` holds what differs under Keras 2
  (``tf_keras``, or TF 2.15's ``tf.keras``), in TF2 and in TF1 compat mode;
- :mod:`~hub_adapter.keras_layers.shapes` converts ``output_shape`` nests.

Importing this package imports nothing heavy; the flavour modules import
TensorFlow and their Keras when the layer class for that flavour is built.
"""
