"""The reference training workload: an MLP classifier trained with minibatch SGD with momentum.

``framework="numpy"`` is a hand-written MLP (forward, backward and the optimizer step written
out), because torch is optional and scikit-learn's MLP does not expose per-phase timing;
``framework="torch"`` is the same architecture in ``torch.nn`` (on CUDA when available);
``auto`` picks torch when it is importable.

Each epoch sees every training sample ``augment_copies`` times, each time randomly shifted by
up to one pixel (image datasets) and jittered with Gaussian noise: ordinary data augmentation,
done in the ``data_load`` phase, which gives the epoch a realistic amount of input work and the
model a realistic amount of compute (digits with [128, 64]: tens of milliseconds an epoch here).

Phases, through the profiler's phase API: ``data_load`` (shuffle, batch assembly, augmentation),
``forward``, ``backward`` (together ``compute``), ``optimizer``.

FLOPs and bytes per sample are derived from the architecture (``flops_source="derived"``):
see :func:`model_costs`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from aiinfra_pipelines.spec import TrainingSpec, WorkloadSpec
from aiinfra_pipelines.workloads.datasets import IMAGE_SHAPES, Split, train_test_split

if TYPE_CHECKING:  # the profiler is passed in; importing it here would be circular
    from aiinfra_pipelines.profiling.phases import Profiler

AUGMENT_COPIES = 8
NOISE_STD = 0.1
MOMENTUM = 0.9
PHASES = ("data_load", "forward", "backward", "optimizer")


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit the BLAS thread pool to ``n`` threads for the block (None: leave it alone).

    The reference MLP's matrices are small: one BLAS thread is fastest, and a multi-threaded
    pool on a shared machine spins while waiting for a busy core (measured here: 10x slower).
    """
    if n is None:
        yield
        return
    torch = sys.modules.get("torch")  # torch keeps its own intra-op pool; only touch it when in use
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # performance setting only
            yield
            return
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def resolve_framework(framework: str) -> str:
    if framework == "auto":
        return "torch" if torch_available() else "numpy"
    if framework == "torch" and not torch_available():
        raise RuntimeError("model.framework: 'torch' was asked for but torch is not installed; use 'numpy' or 'auto'")
    if framework not in ("numpy", "torch"):
        raise ValueError(f"model.framework: unknown framework {framework!r}")
    return framework


# --- costs derived from the architecture ----------------------------------------------------
@dataclass(frozen=True)
class ModelCosts:
    """Per-sample costs of the MLP, derived from layer widths (float32, at a given batch size)."""

    layer_sizes: tuple[int, ...]
    batch_size: int
    parameters: int
    forward_flops_per_sample: float
    train_flops_per_sample: float  # forward + backward + optimizer share
    forward_bytes_per_sample: float
    train_bytes_per_sample: float
    input_bytes_per_sample: float  # what the input pipeline must read per sample
    flops_source: str = "derived"

    @property
    def train_arithmetic_intensity(self) -> float:
        return self.train_flops_per_sample / self.train_bytes_per_sample

    @property
    def forward_arithmetic_intensity(self) -> float:
        return self.forward_flops_per_sample / self.forward_bytes_per_sample


def model_costs(layer_sizes: list[int] | tuple[int, ...], batch_size: int = 64) -> ModelCosts:
    """FLOPs and memory traffic per sample of an MLP with ReLU hidden layers and a softmax head.

    Forward: 2*in*out per dense layer, +out for the bias, +out per hidden ReLU, ~5 per class
    for softmax/cross-entropy. Backward: 2*in*out for each weight gradient, 2*in*out for each
    input gradient except the first layer's, +out for bias gradients and ReLU masks. Optimizer:
    4 FLOPs per parameter per step (momentum update and weight update), shared by the batch.
    Bytes: inputs read, activations written then read, activation gradients written and read,
    weights read (and for training: gradients written, weights and momentum read and written)
    once per batch, so amortised over the batch size.
    """
    d = [int(x) for x in layer_sizes]
    if len(d) < 2 or any(x <= 0 for x in d):
        raise ValueError(f"layer_sizes: need at least input and output widths, got {d}")
    B = max(1, int(batch_size))
    pairs = list(zip(d[:-1], d[1:]))
    params = sum(i * o + o for i, o in pairs)
    hidden = d[1:-1]
    fwd = sum(2 * i * o + o for i, o in pairs) + sum(hidden) + 5 * d[-1]
    bwd = sum(2 * i * o + o for i, o in pairs) + sum(2 * i * o for i, o in pairs[1:]) + sum(hidden)
    opt = 4 * params / B
    acts = sum(d[1:])
    fwd_bytes = 4 * (d[0] + 2 * acts) + 4 * params / B
    train_bytes = fwd_bytes + 8 + 4 * (3 * acts) + 4 * params * (1 + 1 + 5) / B
    return ModelCosts(
        layer_sizes=tuple(d),
        batch_size=B,
        parameters=params,
        forward_flops_per_sample=float(fwd),
        train_flops_per_sample=float(fwd + bwd + opt),
        forward_bytes_per_sample=float(fwd_bytes),
        train_bytes_per_sample=float(train_bytes),
        input_bytes_per_sample=float(4 * d[0] + 8),
    )


# --- the numpy MLP --------------------------------------------------------------------------
class NumpyMLP:
    framework = "numpy"

    def __init__(self, layer_sizes: list[int], seed: int = 0):
        rng = np.random.default_rng(seed)
        self.layer_sizes = [int(x) for x in layer_sizes]
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        for i, o in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.W.append((rng.standard_normal((i, o)) * math.sqrt(2.0 / i)).astype(np.float32))
            self.b.append(np.zeros(o, dtype=np.float32))

    @property
    def n_features(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_classes(self) -> int:
        return self.layer_sizes[-1]

    def params(self) -> list[np.ndarray]:
        return [p for pair in zip(self.W, self.b) for p in pair]

    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        h = X
        last = len(self.W) - 1
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W
            h += b
            if k < last:
                np.maximum(h, 0, out=h)
        return h

    def forward(self, X: np.ndarray, y: np.ndarray):
        """Activations (kept for backward), softmax probabilities, mean cross-entropy loss."""
        acts = [X]
        h = X
        last = len(self.W) - 1
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W
            h += b
            if k < last:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        n = X.shape[0]
        loss = float(-np.log(z[np.arange(n), y] + 1e-12).mean())
        return acts, z, loss

    def backward(self, acts: list[np.ndarray], probs: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        n = probs.shape[0]
        g = probs
        g[np.arange(n), y] -= 1.0
        g /= n
        grads: list[np.ndarray] = [None] * (2 * len(self.W))  # type: ignore[list-item]
        for k in range(len(self.W) - 1, -1, -1):
            grads[2 * k] = acts[k].T @ g
            grads[2 * k + 1] = g.sum(axis=0)
            if k > 0:
                g = g @ self.W[k].T
                g *= acts[k] > 0
        return grads

    def save(self, path: Path, meta: dict) -> Path:
        arrays = {f"W{k}": W for k, W in enumerate(self.W)} | {f"b{k}": b for k, b in enumerate(self.b)}
        np.savez(path, meta=np.array(json.dumps(meta | {"layer_sizes": self.layer_sizes})), **arrays)
        return path


class MomentumSGD:
    """v <- mu*v + g; w <- w - lr*v, in place."""

    def __init__(self, params: list[np.ndarray], lr: float, momentum: float = MOMENTUM):
        self.params = params
        self.lr = np.float32(lr)
        self.mu = np.float32(momentum)
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        for p, v, g in zip(self.params, self.v, grads):
            v *= self.mu
            v += g
            p -= self.lr * v


# --- the torch MLP --------------------------------------------------------------------------
class TorchMLP:
    framework = "torch"

    def __init__(self, layer_sizes: list[int], seed: int = 0, device: str | None = None):
        import torch

        torch.manual_seed(seed)
        self.torch = torch
        self.layer_sizes = [int(x) for x in layer_sizes]
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        layers: list = []
        for k, (i, o) in enumerate(zip(self.layer_sizes[:-1], self.layer_sizes[1:])):
            layers.append(torch.nn.Linear(i, o))
            if k < len(self.layer_sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers).to(self.device)

    @property
    def n_features(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_classes(self) -> int:
        return self.layer_sizes[-1]

    def sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            out = self.net(self.torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(self.device))
        return out.cpu().numpy()

    def save(self, path: Path, meta: dict) -> Path:
        self.torch.save({"state_dict": self.net.state_dict(), "meta": meta | {"layer_sizes": self.layer_sizes}}, path)
        return path


# --- loading a saved model ------------------------------------------------------------------
def load_model(path: str | Path, framework: str | None = None):
    """A saved model (.npz: numpy, .pt: torch) ready for ``predict_logits``; ``.meta`` holds its description."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            sizes = meta["layer_sizes"]
            m = NumpyMLP(sizes)
            m.W = [z[f"W{k}"].astype(np.float32) for k in range(len(sizes) - 1)]
            m.b = [z[f"b{k}"].astype(np.float32) for k in range(len(sizes) - 1)]
        m.meta = meta
        return m
    if path.suffix == ".pt":
        import torch

        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = blob["meta"]
        m = TorchMLP(meta["layer_sizes"])
        m.net.load_state_dict(blob["state_dict"])
        m.net.eval()
        m.meta = meta
        return m
    raise ValueError(f"model file {path}: unknown format {path.suffix!r}; expected .npz or .pt")


# --- the training loop ----------------------------------------------------------------------
@dataclass
class EpochStats:
    epoch: int
    seconds: float
    samples: int
    loss: float
    accuracy: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class TrainResult:
    framework: str
    epochs: list[EpochStats]
    test_accuracy: float
    costs: ModelCosts
    dataset: str
    dataset_bytes: int
    batch_size: int
    model: object = field(repr=False)
    meta: dict = field(default_factory=dict)
    model_path: Path | None = None

    @property
    def parameters(self) -> int:
        return self.costs.parameters

    @property
    def flops_per_sample(self) -> float:
        return self.costs.train_flops_per_sample

    @property
    def bytes_per_sample(self) -> float:
        return self.costs.train_bytes_per_sample

    @property
    def flops_source(self) -> str:
        return self.costs.flops_source

    @property
    def total_seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    @property
    def total_samples(self) -> int:
        return sum(e.samples for e in self.epochs)

    @property
    def samples_per_s(self) -> float:
        return self.total_samples / self.total_seconds if self.total_seconds > 0 else 0.0

    def save_model(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        want = ".pt" if self.framework == "torch" else ".npz"
        if path.suffix != want:
            raise ValueError(f"model path {path}: a {self.framework} model is saved as {want}")
        self.model.save(path, self.meta)
        self.model_path = path
        return path


class _Augmenter:
    """Random one-pixel shifts (image datasets) and Gaussian jitter, vectorised over a batch."""

    def __init__(self, dataset: str, n_features: int, rng: np.random.Generator):
        self.rng = rng
        self.shape = IMAGE_SHAPES.get(dataset)
        if self.shape is not None:
            h, w = self.shape
            self._rows = np.arange(h)
            self._cols = np.arange(w)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        B = X.shape[0]
        if self.shape is not None:
            h, w = self.shape
            img = np.pad(X.reshape(B, h, w), ((0, 0), (1, 1), (1, 1)), mode="edge")
            oy = self.rng.integers(0, 3, size=B)
            ox = self.rng.integers(0, 3, size=B)
            rows = (oy[:, None] + self._rows)[:, :, None]
            cols = (ox[:, None] + self._cols)[:, None, :]
            X = img[np.arange(B)[:, None, None], rows, cols].reshape(B, h * w)
        noise = self.rng.standard_normal(X.shape, dtype=np.float32)
        noise *= NOISE_STD
        noise += X
        return noise


def _training_params(spec: WorkloadSpec) -> TrainingSpec:
    return spec.training or TrainingSpec()


def train(
    spec: WorkloadSpec,
    *,
    epochs: int | None = None,
    profiler: "Profiler | None" = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    seed: int = 0,
    augment_copies: int = AUGMENT_COPIES,
    split: Split | None = None,
    threads: int | None = 1,
) -> TrainResult:
    """Train the reference MLP of ``spec`` for real; epochs default to ``spec.training.epochs``.

    ``threads`` limits the BLAS pool (and torch's intra-op pool on CPU) while training.
    """
    with blas_threads(threads):
        return _train(spec, n_epochs=epochs, profiler=profiler, on_epoch=on_epoch, seed=seed,
                      augment_copies=augment_copies, split=split, threads=threads)


def _train(spec, *, n_epochs, profiler, on_epoch, seed, augment_copies, split, threads) -> TrainResult:
    tp = _training_params(spec)
    n_epochs = int(n_epochs if n_epochs is not None else tp.epochs)
    if n_epochs < 1:
        raise ValueError(f"epochs: must be at least 1, got {n_epochs}")
    if augment_copies < 1:
        raise ValueError(f"augment_copies: must be at least 1, got {augment_copies}")
    framework = resolve_framework(spec.model.framework)
    split = split or train_test_split(spec.dataset.name, seed=0)
    sizes = [split.n_features, *spec.model.hidden_units, split.n_classes]
    costs = model_costs(sizes, tp.batch_size)
    meta = {
        "model": spec.model.name,
        "dataset": spec.dataset.name,
        "framework": framework,
        "batch_size": tp.batch_size,
        "forward_flops_per_row": costs.forward_flops_per_sample,
    }
    rng = np.random.default_rng(seed)
    augment = _Augmenter(spec.dataset.name, split.n_features, rng)
    if framework == "numpy":
        model = NumpyMLP(sizes, seed=seed)
        loop = _numpy_epoch(model, MomentumSGD(model.params(), tp.learning_rate))
        evaluate = model.predict_logits
    else:
        model = TorchMLP(sizes, seed=seed)
        if threads is not None and model.device.type == "cpu":
            model.torch.set_num_threads(threads)
        loop = _torch_epoch(model, tp.learning_rate, profiler is not None)
        evaluate = model.predict_logits
    stats: list[EpochStats] = []
    X, y = split.X_train, split.y_train
    n = X.shape[0]
    B = tp.batch_size
    for ep in range(1, n_epochs + 1):
        t0 = time.perf_counter()
        order = np.concatenate([rng.permutation(n) for _ in range(augment_copies)])
        loss_sum, correct, seen = loop(X, y, order, B, augment, profiler)
        secs = time.perf_counter() - t0
        st = EpochStats(epoch=ep, seconds=secs, samples=seen, loss=loss_sum / seen, accuracy=correct / seen)
        stats.append(st)
        if profiler is not None:
            lab = f"epoch={ep}"
            profiler.record("training", "epoch_seconds", secs, lab)
            profiler.record("training", "samples_per_s", st.samples_per_s, lab)
            profiler.record("training", "loss", st.loss, lab)
            profiler.record_phases(lab)
        if on_epoch is not None:
            on_epoch(st)
    test_acc = float((evaluate(split.X_test).argmax(axis=1) == split.y_test).mean())
    meta["test_accuracy"] = test_acc
    return TrainResult(
        framework=framework,
        epochs=stats,
        test_accuracy=test_acc,
        costs=costs,
        dataset=spec.dataset.name,
        dataset_bytes=split.raw_bytes,
        batch_size=B,
        model=model,
        meta=meta,
    )


def _numpy_epoch(model: NumpyMLP, opt: MomentumSGD):
    def run(X, y, order, B, augment, prof):
        loss_sum = 0.0
        correct = 0
        seen = 0
        if prof is not None:
            prof.reset_lap()
        for start in range(0, order.shape[0], B):
            idx = order[start : start + B]
            xb = augment(X[idx])
            yb = y[idx]
            if prof is not None:
                prof.lap("data_load")
            acts, probs, loss = model.forward(xb, yb)
            correct += int((probs.argmax(axis=1) == yb).sum())
            if prof is not None:
                prof.lap("forward")
            grads = model.backward(acts, probs, yb)
            if prof is not None:
                prof.lap("backward")
            opt.step(grads)
            if prof is not None:
                prof.lap("optimizer")
            m = idx.shape[0]
            loss_sum += loss * m
            seen += m
        return loss_sum, correct, seen

    return run


def _torch_epoch(model: TorchMLP, lr: float, sync_phases: bool):
    torch = model.torch
    opt = torch.optim.SGD(model.net.parameters(), lr=lr, momentum=MOMENTUM)
    lossf = torch.nn.CrossEntropyLoss()
    dev = model.device
    sync = model.sync if (sync_phases and dev.type == "cuda") else (lambda: None)

    def run(X, y, order, B, augment, prof):
        model.net.train()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        if prof is not None:
            prof.reset_lap()
        for start in range(0, order.shape[0], B):
            idx = order[start : start + B]
            xb = torch.from_numpy(augment(X[idx])).to(dev, non_blocking=True)
            yb = torch.from_numpy(y[idx]).to(dev, non_blocking=True)
            if prof is not None:
                sync()
                prof.lap("data_load")
            out = model.net(xb)
            loss = lossf(out, yb)
            if prof is not None:
                sync()
                prof.lap("forward")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if prof is not None:
                sync()
                prof.lap("backward")
            opt.step()
            if prof is not None:
                sync()
                prof.lap("optimizer")
            m = idx.shape[0]
            loss_sum += loss.detach() * m
            correct += (out.detach().argmax(dim=1) == yb).sum()
            seen += m
        return float(loss_sum), int(correct), seen

    return run
