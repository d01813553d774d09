"""Train net.py on scikit-learn's digits and save net.pt: the "trained PyTorch model" the walkthrough
starts from (yours comes from your own training script: torch.save(model.state_dict(), "net.pt")).

    python examples/walkthrough/train.py [OUT.pt]
"""
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).parent))
from net import make  # noqa: E402

torch.manual_seed(0)
digits = load_digits()
x = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)  # (N, 1, 8, 8)
y = torch.from_numpy(digits.target)
net = make()
opt = torch.optim.Adam(net.parameters(), lr=0.01)
rng = np.random.default_rng(0)
for _epoch in range(8):
    net.train()
    order = rng.permutation(len(x))
    for i in range(0, len(order), 64):
        j = torch.from_numpy(order[i:i + 64])
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[j]), y[j])
        loss.backward()
        opt.step()
net.eval()
with torch.no_grad():
    print(f"accuracy on the training data: {(net(x).argmax(1) == y).float().mean():.3f}")
out = sys.argv[1] if len(sys.argv) > 1 else "net.pt"
torch.save(net.state_dict(), out)
print(f"wrote {out}")
