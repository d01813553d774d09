"""The torch-free pre-scan of ``.pt`` checkpoints, under its ``tinyopt.compress`` name.

The code lives in ``tinyopt._pickle_scan`` because importing anything from ``tinyopt.compress`` imports
torch (seconds), and ``tinyopt validate`` must refuse a bad checkpoint without it.
"""

from tinyopt._pickle_scan import ALLOWED_GLOBALS, MAX_OPS, prescan_checkpoint, scan_pickle, walk_pickle

__all__ = ["ALLOWED_GLOBALS", "MAX_OPS", "prescan_checkpoint", "scan_pickle", "walk_pickle"]
