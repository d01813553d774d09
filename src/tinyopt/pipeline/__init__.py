"""tinyopt.pipeline: a project YAML run end to end (data → features → training → optimisation →
conversion → verification → deployment → report), every stage cached by the hash of its inputs."""

from tinyopt.pipeline.cache import StageCache, stage_key
from tinyopt.pipeline.config import load_project, validate
from tinyopt.pipeline.runner import RunResult, run_project

__all__ = ["RunResult", "StageCache", "load_project", "run_project", "stage_key", "validate"]
