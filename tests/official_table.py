"""The official TF Hub support table, written out independently of
hub_adapter/support.py, so tests that compare with it can fail."""

OFFICIAL = {
    ("tf1_hub", "load", "tf1_compat"): True,
    ("tf1_hub", "load", "tf2"): True,
    ("tf1_hub", "fine_tune", "tf1_compat"): True,
    ("tf1_hub", "fine_tune", "tf2"): False,
    ("tf1_hub", "create", "tf1_compat"): True,
    ("tf1_hub", "create", "tf2"): False,
    ("tf2_saved_model", "load", "tf1_compat"): True,
    ("tf2_saved_model", "load", "tf2"): True,
    ("tf2_saved_model", "fine_tune", "tf1_compat"): True,
    ("tf2_saved_model", "fine_tune", "tf2"): True,
    ("tf2_saved_model", "create", "tf1_compat"): True,
    ("tf2_saved_model", "create", "tf2"): True,
}
