"""One intra-op thread: these tensors are tiny, and on a shared 2-core machine thread hand-offs cost more
than the arithmetic (and results stay identical run to run)."""

import torch

torch.set_num_threads(1)
