"""The model artifact and its contract: how a OneStep SavedModel is built, loaded and called.

`bot/` and the command line use the model only through this package.
"""

from model.artifact import DEFAULT_MODEL_DIR, CharModel, ModelError, check_model_dir, check_sampling, load

__all__ = ["DEFAULT_MODEL_DIR", "CharModel", "ModelError", "check_model_dir", "check_sampling", "load"]
