"""Weight sharing (Deep Compression, section 3): per-layer 1-D k-means, centroid fine-tuning, coding.

A layer's weights become ``codebook[labels]``. With pruning, zeros stay zeros: only non-zero weights are
clustered, and index 0 of the codebook is reserved for 0.0 (so a ``bits``-bit layer has
``2**bits - 1`` trainable centroids and the sparse coder can use index 0 for its fillers).
Fine-tuning updates each centroid with the *sum* of the gradients of the weights that share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from tinyopt._suggest import hint
from tinyopt.compress.coding.tensor import EncodedTensor, check_bits, encode_shared
from tinyopt.compress.configs import ClusterConfig, HuffmanConfig
from tinyopt.errors import ConfigError

INITS = ("linear", "density", "random")


class KMeansQuantizer:
    """1-D k-means on one tensor's weights (scikit-learn style).

    ``sparse``: True clusters only the non-zero weights and reserves ``codebook_[0] = 0.0`` for the
    zeros; False clusters every weight; "auto" is True when the tensor holds exact zeros.
    Learned: ``codebook_`` (float32), ``labels_`` (int64, the tensor's shape), ``sparse_``,
    ``inertia_`` (sum of squared errors), ``n_iter_``.
    """

    def __init__(self, n_clusters: int = 32, init: str = "linear", seed: int = 0, max_iter: int = 100,
                 tol: float = 1e-7, sparse: bool | str = "auto"):
        self.n_clusters = n_clusters
        self.init = init
        self.seed = seed
        self.max_iter = max_iter
        self.tol = tol
        self.sparse = sparse

    def fit(self, weights, *, layer: str | None = None) -> KMeansQuantizer:
        w = np.asarray(weights, dtype=np.float64)
        where = layer or None
        if self.init not in INITS:
            raise ConfigError(f"unknown init '{self.init}'{hint(self.init, INITS)}", where=where,
                              fix=f"use one of {', '.join(INITS)}")
        if not isinstance(self.n_clusters, (int, np.integer)) or self.n_clusters < 1:
            raise ConfigError(f"n_clusters = {self.n_clusters!r}", where=where, fix="use n_clusters >= 1")
        if not np.isfinite(w).all():
            raise ConfigError("weights contain NaN or inf", where=where, fix="train the layer again")
        self.sparse_ = bool((w == 0).any()) if self.sparse == "auto" else bool(self.sparse)
        x = w[w != 0] if self.sparse_ else w.ravel()
        distinct = np.unique(x)
        if self.n_clusters > len(distinct):
            raise ConfigError(f"{self.n_clusters} clusters requested but only {len(distinct)} distinct "
                              f"{'non-zero ' if self.sparse_ else ''}weights", where=where or "weights",
                              fix="use fewer clusters (fewer bits) for this layer")
        c = self._init_centroids(x, distinct)
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):  # noqa: B007 - the count is kept below
            c = np.sort(c)
            lab = np.searchsorted((c[1:] + c[:-1]) / 2, x)
            counts = np.bincount(lab, minlength=len(c))
            sums = np.bincount(lab, weights=x, minlength=len(c))
            new = np.where(counts > 0, sums / np.maximum(counts, 1), c)  # an empty cluster stays put
            shift = np.abs(new - c).max()
            c = new
            if shift <= self.tol * max(float(np.abs(x).max()), 1e-30):
                break
        self.n_iter_ = n_iter
        c = np.sort(c)
        lab = np.searchsorted((c[1:] + c[:-1]) / 2, x)
        self.inertia_ = float(((x - c[lab]) ** 2).sum())
        labels = np.zeros(w.shape, dtype=np.int64)
        if self.sparse_:
            labels[w != 0] = lab + 1
            self.codebook_ = np.concatenate([[0.0], c]).astype(np.float32)
        else:
            labels = lab.reshape(w.shape)
            self.codebook_ = c.astype(np.float32)
        self.labels_ = labels
        return self

    def _init_centroids(self, x: np.ndarray, distinct: np.ndarray) -> np.ndarray:
        k = self.n_clusters
        if self.init == "linear":  # evenly over [min, max]: keeps the rare large weights (the paper's pick)
            return np.linspace(x.min(), x.max(), k)
        if self.init == "density":     # evenly over the CDF: centroids crowd where weights are dense
            return np.quantile(x, np.linspace(0, 1, k))
        rng = np.random.default_rng(self.seed)  # Forgy: k distinct weights at random
        return rng.choice(distinct, size=k, replace=False)

    def quantized(self) -> np.ndarray:
        """The shared weights ``codebook_[labels_]``."""
        return self.codebook_[self.labels_]

    @property
    def index_bits(self) -> int:
        """Bits of one cluster index: ceil(log2(codebook size))."""
        return max(1, int(np.ceil(np.log2(len(self.codebook_)))))


def shareable_layers(model) -> dict[str, object]:
    """Conv and Linear modules by name: the layers whose weights weight sharing replaces."""
    from torch import nn

    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))}


def cluster_(model, config: ClusterConfig | None = None, *, seed: int = 0) -> dict[str, KMeansQuantizer]:
    """Cluster every Conv/Linear weight of ``model`` in place; returns the fitted quantizer per layer
    (``seed`` drives the ``random`` initialisation). A layer with fewer distinct weights than its codebook
    allows keeps each of them as a centroid."""
    import torch
    from torch import nn
    from torch.nn.utils import parametrize

    config = config or ClusterConfig()
    layers = shareable_layers(model)
    chosen = dict(config.layers or {})
    for name in chosen:
        if name not in layers:
            raise ConfigError(f"no Conv/Linear layer '{name}'{hint(name, layers)}", where="cluster.layers",
                              fix=f"layers are: {', '.join(layers)}")
    out = {}
    for name, m in layers.items():
        default = config.dense_bits if isinstance(m, nn.Linear) else config.conv_bits
        bits = chosen.get(name, default)
        if bits == 0 and name in chosen:
            continue
        check_bits(bits, "bits", name)
        if parametrize.is_parametrized(m, "weight"):
            raise ConfigError("weight is still parametrized (pruning mask or fake quantization)", where=name,
                              fix="call tinyopt.compress.prune.make_permanent_(model) before clustering")
        w = m.weight.detach().cpu().numpy()
        sparse = bool((w == 0).any())
        # a small layer may hold fewer distinct weights than the codebook has room for: they are all kept
        # (exactly); a fully pruned layer has nothing to share
        k = min((1 << bits) - int(sparse), len(np.unique(w[w != 0] if sparse else w)))
        if k < 1:
            continue
        q = KMeansQuantizer(n_clusters=k, init=config.init, seed=seed, sparse=sparse).fit(w, layer=name)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(q.quantized()).to(m.weight))
        out[name] = q
    return out


def finetune_centroids_(model, quantizers: dict[str, KMeansQuantizer], batches: Iterable, *, epochs: int = 1,
                        lr: float = 1e-3, optimizer: str = "adam", loss_fn: Callable | None = None,
                        train_other: bool = True,
                        on_epoch: Callable[[int, float], None] | None = None) -> dict[str, KMeansQuantizer]:
    """Train the centroids (and, with ``train_other``, the unshared parameters such as biases).

    Each step: backward through the shared weights, sum their gradients per cluster into the
    centroid's gradient (index_add), step the optimizer ("adam" or "sgd", plain SGD being the paper's
    ``C_k -= lr * sum of grads``), write ``codebook[labels]`` back. The reserved zero centroid of a sparse
    layer never moves, so pruned weights stay zero.
    """
    import torch
    import torch.nn.functional as F

    loss_fn = loss_fn or F.cross_entropy
    layers = shareable_layers(model)
    shared = {}
    for name, q in quantizers.items():
        m = layers[name]
        cb = torch.nn.Parameter(torch.from_numpy(q.codebook_.copy()).to(m.weight))
        shared[name] = (m, cb, torch.from_numpy(q.labels_).to(m.weight.device).flatten(), q.sparse_)
    shared_ids = {id(m.weight) for m, *_ in shared.values()}
    params = [cb for _, cb, _, _ in shared.values()]
    if train_other:
        params += [p for p in model.parameters() if id(p) not in shared_ids and p.requires_grad]
    if optimizer not in ("adam", "sgd"):
        raise ConfigError(f"unknown optimizer '{optimizer}'", where="cluster.finetune", fix="use adam or sgd")
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(params, lr=lr)
    model.train()
    for epoch in range(epochs):
        total, n = 0.0, 0
        for x, y in batches:
            opt.zero_grad()
            for m, *_ in shared.values():
                m.weight.grad = None
            loss = loss_fn(model(x), y)
            loss.backward()
            for m, cb, lab, sparse in shared.values():
                g = torch.zeros_like(cb)
                if m.weight.grad is not None:  # a layer the forward pass did not use gets no update
                    g.index_add_(0, lab, m.weight.grad.flatten())
                if sparse:
                    g[0] = 0
                cb.grad = g
                m.weight.grad = None
            opt.step()
            with torch.no_grad():
                for m, cb, lab, sparse in shared.values():
                    if sparse:
                        cb[0] = 0
                    m.weight.copy_(cb[lab].view_as(m.weight))
            total += float(loss.detach()) * len(x)
            n += len(x)
        if on_epoch:
            on_epoch(epoch, total / max(n, 1))
    for name, (_, cb, _, _) in shared.items():
        quantizers[name].codebook_ = cb.detach().cpu().numpy().astype(np.float32)
    return quantizers


def encode_model(model, quantizers: dict[str, KMeansQuantizer], *, huffman: bool = True,
                 gap_bits: dict[str, int] | int | None = None, conv_gap_bits: int = 8,
                 dense_gap_bits: int = 5,
                 codebook_dtype: str = "float32") -> dict[str, EncodedTensor | np.ndarray]:
    """Every tensor of ``model``'s state_dict as a container record (see ``encode_state_dict``)."""
    from torch import nn

    dense = {n for n, m in shareable_layers(model).items() if isinstance(m, nn.Linear)}
    return encode_state_dict(model.state_dict(), quantizers, dense, huffman=huffman, gap_bits=gap_bits,
                             conv_gap_bits=conv_gap_bits, dense_gap_bits=dense_gap_bits,
                             codebook_dtype=codebook_dtype)


def encode_state_dict(state_dict, quantizers: dict[str, KMeansQuantizer], dense_layers=(), *,
                      huffman: bool = True, gap_bits: dict[str, int] | int | None = None,
                      conv_gap_bits: int = 8, dense_gap_bits: int = 5,
                      codebook_dtype: str = "float32") -> dict[str, EncodedTensor | np.ndarray]:
    """Every tensor of a state_dict as a container record.

    Shared weights become coded records (sparse relative indices if the layer was pruned, with gap
    width conv 8 / dense 5 bits as the paper, or ``gap_bits``; ``dense_layers`` names the Linear ones);
    everything else (biases, BatchNorm) stays raw float32 (integer buffers int32). A shared weight that
    no longer equals its codebook entries (a later step changed it) is refused: its codes would describe
    another tensor. Pass the result to ``container.save_compressed``.
    """
    out: dict[str, EncodedTensor | np.ndarray] = {}
    for key, t in state_dict.items():
        mod, _, attr = key.rpartition(".")
        if attr == "weight" and mod in quantizers:
            q = quantizers[mod]
            if not np.array_equal(t.detach().cpu().numpy(), q.quantized()):
                raise ConfigError("the weight changed after weight sharing (a later step "
                                  "rounded or trained it)",
                                  where=mod, fix="put the cluster and huffman steps after every step that "
                                  "changes weights (prune, quantize, fold_bn, finetune)")
            gb = gap_bits.get(mod) if isinstance(gap_bits, dict) else gap_bits
            if gb is None:
                gb = dense_gap_bits if mod in dense_layers else conv_gap_bits
            out[key] = encode_shared(q.codebook_.astype(codebook_dtype), q.labels_, q.index_bits,
                                     gb if q.sparse_ else 0, huffman=huffman, layer=mod)
        elif t.is_floating_point():
            out[key] = t.detach().cpu().numpy().astype(np.float32)
        else:  # integer buffers such as BatchNorm's num_batches_tracked, so load_state_dict finds them
            a = t.detach().cpu().numpy()
            if a.size and (a.min() < -2**31 or a.max() >= 2**31):
                raise ConfigError(f"integer tensor with values beyond int32 ({a.dtype})", where=key,
                                  fix="drop the buffer from the model before encoding it")
            out[key] = a.astype(np.int32)
    return out


# ---- recipe steps: `cluster` (k-means + centroid fine-tuning) and `huffman` (exact coded size) ----

def _register_steps() -> None:
    from tinyopt.compress.recipe import register_step

    def step_cluster(model, cfg: ClusterConfig, ctx):
        from tinyopt.compress.prune import make_permanent_
        from tinyopt.compress.train import batches

        make_permanent_(model)  # pruning masks baked in: the zeros are what sharing keeps
        qs = cluster_(model, cfg, seed=ctx.seed)
        epochs = max(0, round(cfg.epochs)) if cfg.epochs >= 1 or cfg.epochs == 0 else 1

        class _Epochs:  # a fresh seeded shuffle each pass
            n = 0

            def __iter__(self):
                self.n += 1
                return batches(*ctx.train, ctx.batch_size, ctx.seed + self.n)

        finetune_centroids_(model, qs, _Epochs(), epochs=epochs, lr=cfg.lr)
        ctx.state.clusters = qs
        for name, q in qs.items():
            ctx.state.storage[name] = {"codebook": len(q.codebook_), "per_channel": False}
        return model

    def step_huffman(model, cfg: HuffmanConfig, ctx):
        qs = ctx.state.clusters
        if not qs:
            raise ConfigError("huffman needs shared weights", where="huffman",
                              fix="put a cluster step before the huffman step")
        from torch import nn

        from tinyopt.compress._steps import deployable_state_dict
        from tinyopt.compress.container import pack

        dense = {n for n, m in shareable_layers(model).items() if isinstance(m, nn.Linear)}
        coded = encode_state_dict(deployable_state_dict(model), qs, dense, conv_gap_bits=cfg.conv_gap_bits,
                                  dense_gap_bits=cfg.dense_gap_bits, codebook_dtype=cfg.codebook_dtype)
        data, sizes = pack(coded)
        for name in qs:  # exact bytes of the layer's record in the container
            ctx.state.storage[name] = {**ctx.state.storage.get(name, {}),
                                       "record_bytes": sizes[f"{name}.weight"]}
        ctx.state.container_bytes = len(data)
        if cfg.path:  # the file also carries the record convert/deploy read: its exact size is what counts
            from tinyopt.compress.artifact import save_output

            ctx.state.container_bytes = save_output(cfg.path, model, ctx.state, records=coded,
                                                    input_shape=tuple(ctx.example_input.shape[1:]))
        return model

    register_step("cluster", ClusterConfig, step_cluster)
    register_step("huffman", HuffmanConfig, step_huffman)


_register_steps()
