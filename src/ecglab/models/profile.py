"""Count a model's parameters and multiply-accumulates (MACs) for one input shape.

`macs` counts every matrix product torch's `FlopCounterMode` knows (convolutions, linear layers,
attention products, SDPA) as FLOPs / 2. `macs_layers` counts only the products that use a module's
weight, the way thop counts convolution and linear layers (no bias, norms or attention matrices),
so it can be compared with figures in papers.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

aten = torch.ops.aten

_PRODUCTS = {aten.convolution, aten._convolution, aten.mm, aten.addmm, aten.bmm, aten.baddbmm}
_RNN_LAYERS = {aten.mkldnn_rnn_layer} if hasattr(aten, "mkldnn_rnn_layer") else set()


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of softmax(Q K^T) V: two batched products; the CPU kernel has no formula in torch."""
    *batch, q_len, qk_dim = query_shape
    k_len, v_dim = key_shape[-2], value_shape[-1]
    return 2 * math.prod(batch) * q_len * k_len * (qk_dim + v_dim)


def _rnn_layer_flops(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one fused RNN layer (the CPU LSTM kernel): both gate matrices at every step."""
    return 2 * math.prod(input_shape[:-1]) * (math.prod(w_ih_shape) + math.prod(w_hh_shape))


def _extra_formulas() -> dict:
    names = (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_fused_attention_overrideable",
    )
    formulas = {getattr(aten, n): _sdpa_flops for n in names if hasattr(aten, n)}
    if hasattr(aten, "mkldnn_rnn_layer"):
        formulas[aten.mkldnn_rnn_layer] = _rnn_layer_flops
    return formulas


def _product_macs(func, args, out) -> int:
    """MACs of one convolution or matrix product, bias excluded."""
    if func in _RNN_LAYERS:
        return _rnn_layer_flops(args[0].shape, args[1].shape, args[2].shape) // 2
    if func in (aten.convolution, aten._convolution):
        x, w, transposed = args[0], args[1], args[6]
        if transposed:  # every input element meets (out_channels / groups) * kernel weights
            return x.numel() * math.prod(w.shape[1:])
        return out.numel() * math.prod(w.shape[1:])
    a, b = (args[0], args[1]) if func in (aten.mm, aten.bmm) else (args[1], args[2])
    return out.numel() * a.shape[-1] if a.shape[-1] == b.shape[-2] else 0


class _LayerMacMode(TorchDispatchMode):
    """Attribute every product that has a module weight as an operand to that weight's module.

    A weight stays recognised through views, copies and casts (ops with the weight as their only
    tensor input and an output of the same size), e.g. a Conv1d weight reshaped for a Conv2d.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.owner = {
            p.untyped_storage().data_ptr(): n.rpartition(".")[0] for n, p in model.named_parameters()
        }
        self.derived = WeakIdKeyDictionary()
        self.macs: dict[str, int] = {}

    def _weight_module(self, t) -> str | None:
        if not isinstance(t, torch.Tensor):
            return None
        if t in self.derived:
            return self.derived[t]
        if t.device.type != "meta" and t.untyped_storage().data_ptr() in self.owner:
            return self.owner[t.untyped_storage().data_ptr()]
        return None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        packet = func.overloadpacket
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        owners = [m for m in map(self._weight_module, tensors) if m is not None]
        if not owners:
            return out
        if packet in _PRODUCTS or packet in _RNN_LAYERS:
            self.macs[owners[0]] = self.macs.get(owners[0], 0) + _product_macs(packet, args, out)
        elif len(tensors) == 1 and isinstance(out, torch.Tensor) and out.numel() == tensors[0].numel():
            self.derived[out] = owners[0]
        return out


def _measure(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[FlopCounterMode, dict[str, int]]:
    p = next(model.parameters(), None)
    # A fixed input: a model whose work depends on the signal (beats found in it) counts the same each time.
    x = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    if p is not None:
        x = x.to(dtype=p.dtype, device=p.device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, custom_mapping=_extra_formulas())
    layers = _LayerMacMode(model)
    # Autograd stays on: under no_grad nn.MultiheadAttention takes a fused path no formula covers.
    # oneDNN is off: its per-shape kernel setup costs more than the single pass it would speed up.
    mkldnn, torch.backends.mkldnn.enabled = torch.backends.mkldnn.enabled, False
    try:
        with counter, layers:
            model(x)
    finally:
        model.train(was_training)
        torch.backends.mkldnn.enabled = mkldnn
    return counter, layers.macs


def count_macs(model: nn.Module, input_shape: tuple[int, ...] = (1, 12, 1000)) -> dict[str, int]:
    """Parameters and MACs of one forward pass over an input of `input_shape` (the whole batch)."""
    counter, layer_macs = _measure(model, input_shape)
    return {
        "macs": counter.get_total_flops() // 2,
        "macs_layers": sum(layer_macs.values()),
        "params": sum(p.numel() for p in model.parameters()),
    }


def count_macs_by_module(
    model: nn.Module, input_shape: tuple[int, ...] = (1, 12, 1000), depth: int = 1
) -> dict[str, dict[str, int]]:
    """`count_macs` for each submodule `depth` levels down, keyed by dotted name.

    MACs spent outside those submodules (in the model's own `forward`) go under "(other)".
    """
    counter, layer_macs = _measure(model, input_shape)
    flops = counter.get_flop_counts()
    root = type(model).__name__
    names = [n for n, _ in model.named_modules() if n and n.count(".") == depth - 1]
    table = {}
    for name in names:
        module = model.get_submodule(name)
        macs_layers = sum(v for k, v in layer_macs.items() if k == name or k.startswith(name + "."))
        table[name] = {
            "macs": sum(flops.get(f"{root}.{name}", {}).values()) // 2,
            "macs_layers": macs_layers,
            "params": sum(p.numel() for p in module.parameters()),
        }
    total = {"macs": counter.get_total_flops() // 2, "macs_layers": sum(layer_macs.values())}
    total["params"] = sum(p.numel() for p in model.parameters())
    other = {k: total[k] - sum(row[k] for row in table.values()) for k in total}
    if any(other.values()):
        table["(other)"] = other
    return table


def measure_latency(model: nn.Module, input_shape=(1, 12, 1000), warmup: int = 3, iters: int = 10) -> float:
    """Median eval-mode forward time in milliseconds."""
    import time

    x = torch.randn(input_shape)
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    return 1000 * sorted(times)[len(times) // 2]


def _training_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, amp_dtype: torch.dtype | None = None
) -> None:
    """One step as training runs it: forward (under autocast to `amp_dtype`, if given), multi-label
    loss against fixed targets, backward, AdamW."""
    import contextlib

    import torch.nn.functional as F

    amp = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with amp:
        logits = model(x)
        every_other = torch.arange(0, logits.shape[-1], 2, device=logits.device)
        target = torch.ones_like(logits).index_fill_(-1, every_other, 0.0)
        loss = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall clock times it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_training(
    model: nn.Module,
    batch: int = 64,
    input_shape=(12, 1000),
    warmup: int = 2,
    steps: int = 5,
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> float:
    """Training throughput in samples/s on `device`: forward, multi-label loss, backward and an AdamW step."""
    import time

    device = torch.device(device)
    model.to(device).train()
    x = torch.randn(batch, *input_shape, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(warmup + steps):
        if i == warmup:
            _synchronize(device)
            start = time.perf_counter()
        _training_step(model, optimizer, x, amp_dtype)
    _synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def matmul_peak_gflops(
    sizes: tuple[int, ...] | None = None,
    repeats: int = 10,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> float:
    """Best matrix-multiply rate of `device` in `dtype`, in GFLOP/s (2 n^3 per product).

    The best over a few sizes after a warm-up: one size alone, measured cold, can read a third
    low (thread pool start-up, frequency ramp), which would inflate every model's share of it.
    A GPU needs larger products than a CPU to reach its peak; a CPU without native bf16/fp16
    instructions multiplies in them at a fraction of a GFLOP/s, so there the products are small.
    """
    import time

    device = torch.device(device)
    if sizes is None and device.type == "cuda":
        sizes = (4096, 8192)
    elif sizes is None:
        sizes = (1024, 2048, 3072) if dtype == torch.float32 else (256, 512)
    warm = torch.randn(512, 512, device=device, dtype=dtype)
    warm @ warm  # start the thread pool / the CUDA context and its libraries
    best_rate = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            a @ b
            _synchronize(device)
            best_rate = max(best_rate, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best_rate


def memory_bandwidth_gbs(megabytes: int = 256, repeats: int = 5) -> float:
    """Best copy rate between two large float32 tensors, in GB/s (bytes read plus bytes written)."""
    import time

    n = megabytes * 2**20 // 4
    source, target = torch.randn(n), torch.empty(n)
    target.copy_(source)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - start)
    return 2 * 4 * n / best / 1e9


def _sdpa_backward_flops(
    grad_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """The CPU attention backward: scores recomputed, then four products, about twice the forward."""
    return 2 * _sdpa_flops(query_shape, key_shape, value_shape)


def _conv_backward_flops(grad, x, weight, *args, out_val=None, **kwargs) -> int:
    """Input and weight gradients, each as costly as the forward; torch's formula ignores groups."""
    transposed, output_mask = args[4], args[7]
    forward = 2 * (x.numel() if transposed else grad.numel()) * math.prod(weight.shape[1:])
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _rnn_backward_flops(x, w_ih, w_hh, *args, out_val=None, **kwargs) -> int:
    """A fused RNN layer's backward: input and weight gradients, twice its forward."""
    return 2 * _rnn_layer_flops(x.shape, w_ih.shape, w_hh.shape)


class _TrafficMode(TorchDispatchMode):
    """Per executed op: FLOPs (torch's formulas) and bytes its tensors occupy (inputs read, outputs written)."""

    def __init__(self):
        super().__init__()
        extra = _extra_formulas()
        if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
            extra[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _sdpa_backward_flops
        self.formulas = FlopCounterMode(display=False, custom_mapping=extra).flop_registry
        self.formulas[aten.convolution_backward] = _conv_backward_flops
        if hasattr(aten, "mkldnn_rnn_layer_backward"):
            self.formulas[aten.mkldnn_rnn_layer_backward] = _rnn_backward_flops
        self.ops: list[tuple[str, int, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.is_view or func.overloadpacket.__name__.startswith(("empty", "detach", "_local_scalar")):
            return out
        packet = func.overloadpacket
        flops = self.formulas[packet](*args, **kwargs, out_val=out) if packet in self.formulas else 0
        leaves = torch.utils._pytree.tree_leaves((args, kwargs)) + torch.utils._pytree.tree_leaves(out)
        nbytes = sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
        self.ops.append((packet.__name__, int(flops), int(nbytes)))
        return out


_PRODUCT_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear"}
_PRODUCT_PREFIXES = (
    "conv",
    "_conv",
    "mkldnn_conv",
    "scaled_dot",
    "_scaled_dot",
    "mkldnn_rnn",
    "lstm",
    "_lstm",
)


def is_product_op(name: str) -> bool:
    """Whether an aten op is a matrix product (convolution, linear, attention, RNN), so could run near the peak."""
    name = name.removeprefix("aten::").split(".")[0]
    return name in _PRODUCT_OPS or name.startswith(_PRODUCT_PREFIXES)


def _step_ops(model: nn.Module, optimizer, x: torch.Tensor) -> list[tuple[str, int, int]]:
    """(op name, FLOPs, bytes touched) of every aten op of one training step."""
    mode = _TrafficMode()
    with mode:
        _training_step(model, optimizer, x)
    return mode.ops


def _product_flops(ops: list[tuple[str, int, int]]) -> int:
    return sum(flops for name, flops, _ in ops if is_product_op(name))


def training_roofline(
    model: nn.Module,
    batch: int,
    input_shape=(12, 1000),
    peak_gflops: float = 1.0,
    bandwidth_gbs: float = 1.0,
    macs: int | None = None,
) -> dict:
    """The fastest a training step could run if every op ran at the roofline, one op after another.

    Each op of one step (forward, loss, backward, AdamW) takes at least max(FLOPs / peak, bytes /
    bandwidth), with every tensor it touches streamed from memory once (no fusion across ops, no
    cache reuse between them). `attainable_share` is the nominal 6 x MACs per sample at that speed,
    as a share of the peak: what the same measure of `benchmarks/speed.py` could reach at best.
    `by_op` sums the bound time per op name, to show where it goes. `macs`: the model's forward
    MACs per sample when already counted.
    """
    model.train()
    x = torch.randn(batch, *input_shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    # a first step outside the mode, so the optimizer state and lazy buffers exist
    _training_step(model, optimizer, x)
    ops = _step_ops(model, optimizer, x)
    optimizer.zero_grad(set_to_none=True)
    by_op: dict[str, float] = {}
    for name, flops, nbytes in ops:
        seconds = max(flops / (peak_gflops * 1e9), nbytes / (bandwidth_gbs * 1e9))
        by_op[name] = by_op.get(name, 0.0) + seconds
    bound = sum(by_op.values())
    nominal = 6 * (macs or count_macs(model, (1, *input_shape))["macs"]) * batch
    return {
        "flops": sum(op[1] for op in ops),
        "product_flops": _product_flops(ops),
        "bytes": sum(op[2] for op in ops),
        "bound_seconds": bound,
        "attainable_share": nominal / bound / (peak_gflops * 1e9),
        "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
    }


def training_time_split(
    model: nn.Module,
    batch: int,
    input_shape=(12, 1000),
    peak_gflops: float = 1.0,
    steps: int = 2,
    product_flops: int | None = None,
) -> dict:
    """Where a training step's time goes: the matrix-product kernels, and everything else.

    Times are the profiler's self CPU time per aten op over `steps` steps (after one warm-up), out
    of the wall time of those steps under the profiler; FLOPs are those the roofline counts.
    `product_time_share` is the part of the step spent in convolution, linear, attention and RNN
    kernels; `product_kernel_share` the GFLOP/s those kernels achieve, as a share of the peak.
    `product_flops`: those kernels' FLOPs per step when `training_roofline` has counted them. A
    model's share of the peak is at most their product: a low kernel share points at the kernels'
    shapes, a low time share at norms, activations, copies and the optimizer.
    """
    import time

    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(batch, *input_shape)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    _training_step(model, optimizer, x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            _training_step(model, optimizer, x)
    total = (time.perf_counter() - start) / steps
    aten = {
        e.key: e.self_cpu_time_total / 1e6 / steps for e in prof.key_averages() if e.key.startswith("aten::")
    }
    product_seconds = sum(v for k, v in aten.items() if is_product_op(k))
    if product_flops is None:
        product_flops = _product_flops(_step_ops(model, optimizer, x))
    return {
        "step_seconds": total,
        "product_time_share": product_seconds / total,
        "product_kernel_share": product_flops / product_seconds / (peak_gflops * 1e9),
        "top_other_ops": sorted(
            ((k, v / total) for k, v in aten.items() if not is_product_op(k)), key=lambda kv: -kv[1]
        )[:4],
    }
