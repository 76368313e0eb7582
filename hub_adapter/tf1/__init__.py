"""Our own engine for the TF1 Hub format in graph mode (TF1 compat mode)."""
