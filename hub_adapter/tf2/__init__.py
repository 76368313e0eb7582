"""SavedModel backends: TF2 SavedModels in both modes, and TF1 Hub modules'
signatures in TF2."""
