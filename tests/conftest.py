"""Shared fixtures: paths to ../shared, skipping with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

# One BLAS/OpenMP thread per test process: pytest-xdist already runs one process per core, and small
# convolutions run many times slower when two processes each spin two threads on two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models" / "mlperf-tiny"
DATASETS = SHARED / "datasets"
KWS_INT8 = MODELS / "kws_ref_model.tflite"
KWS_FLOAT = MODELS / "kws_ref_model_float32.tflite"
RESNET_INT8 = MODELS / "pretrainedResnet_quant.tflite"
RESNET_FLOAT = MODELS / "pretrainedResnet.tflite"
MNIST = DATASETS / "mnist-t10k"
FSDD = DATASETS / "fsdd" / "recordings"


def need(path: Path) -> Path:
    """Skip the calling test when a ../shared file is missing (CI has it, so there it runs)."""
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (models/datasets) is not beside the repo")
    return path


@pytest.fixture
def one_torch_thread():
    """Two intra-op threads on the shared 2-core machine make small convs 10-100x slower: modules that
    run torch models use this for every test (``pytestmark = pytest.mark.usefixtures(...)``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples"
