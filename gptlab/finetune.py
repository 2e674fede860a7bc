"""Fine-tuning (lesson 11): train part of a model, or small LoRA adapters beside it.

    from gptlab.finetune import freeze, apply_lora, merge_lora, save_lora, parameter_summary
    freeze(model, layers=4)              # blocks 0-3 and the embeddings stop learning
    apply_lora(model, rank=8, alpha=16)  # or: low-rank adapters on attention, the rest frozen
    print(parameter_summary(model))      # trainable 110,592 of 10,881,408 parameters (1.02%)
    train(model, my_ids, None, cfg)      # gptlab.train trains what requires_grad
    save_lora(model, "adapters/mine")    # the adapters alone: a few hundred KB
    merge_lora(model); model.save("ft")  # or one plain model with the adapters folded in

Freezing sets ``requires_grad=False``: no gradient is computed for those parameters and the
optimizer never sees them (``gptlab.schedule.configure_optimizer``), so they stay bit for bit.

LoRA (Hu et al. 2021) keeps a pretrained weight W (out x in) frozen and learns a low-rank
change: y = W x + b + (alpha / rank) * B (A x), with A (rank x in) and B (out x rank).
B starts at zero, so at first the model is exactly the pretrained one; A and B hold
rank * (in + out) numbers instead of in * out. After training, W + (alpha / rank) * B A is
a plain weight again (``merge_lora``): no cost at inference.

Weight tying: GPT's lm_head shares its matrix with the token embedding wte. Freezing one
freezes the other (they are one tensor), and LoRA is never put on a tied lm_head.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gptlab.model import write_atomically

__all__ = ["LoRALinear", "ParameterSummary", "apply_lora", "freeze", "load_lora",
           "lora_modules", "lora_state_dict", "merge_lora", "parameter_summary", "remove_lora",
           "save_lora", "trainable_parameters", "unfreeze"]

LORA_FORMAT = "gptlab-lora"
LORA_VERSION = 1
ADAPTER_FILE, ADAPTER_CONFIG = "adapter.safetensors", "adapter_config.json"
_MAY_DIFFER = {"dropout", "attn_impl"}  # base-model settings an adapter does not depend on


# ---------------------------------------------------------------------------- freezing


def _aliases(model: nn.Module) -> list[tuple[str, list[str], nn.Parameter]]:
    """(name, every name, parameter) once per parameter; a tied weight has two names."""
    names: dict[int, list[str]] = {}
    params: dict[int, nn.Parameter] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        params[id(p)] = p
    return [(ns[0], ns, params[i]) for i, ns in names.items()]


def _as_patterns(patterns: str | Iterable[str] | None, arg: str) -> list[str]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    elif isinstance(patterns, Iterable):
        patterns = list(patterns)
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError(f"{arg} must be a glob pattern or a list of them, e.g. 'h.0.*' or "
                         f"['wte.*', '*.ln_*'], got {patterns!r}.")
    return patterns


def _match(patterns: list[str], model: nn.Module, arg: str) -> set[int]:
    """ids of the parameters any of whose names matches a pattern; ValueError for a pattern
    that matches nothing."""
    entries = _aliases(model)
    hit: set[int] = set()
    for pat in patterns:
        found = {id(p) for _, names, p in entries
                 if any(fnmatch.fnmatchcase(n, pat) for n in names)}
        if not found:
            raise ValueError(f"{arg} pattern {pat!r} matches no parameter. Patterns are globs "
                             f"over names such as {_name_examples(model)}.")
        hit |= found
    return hit


def _name_examples(model: nn.Module, limit: int = 12) -> str:
    names = list(dict.fromkeys(re.sub(r"\.\d+\.", ".*.", n)
                               for n, _ in model.named_parameters()))
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "") + " (* = any block)"


def _layer_ids(model: nn.Module, layers: int | Iterable[int]) -> set[int]:
    blocks = getattr(model, "h", None)
    if not isinstance(blocks, nn.ModuleList) or not len(blocks):
        raise ValueError("freeze(layers=...) needs a GPT (blocks in model.h); use names=... "
                         "for other models.")
    L = len(blocks)
    if isinstance(layers, bool) or not isinstance(layers, (int, Iterable)):
        raise TypeError(f"layers must be an int or a list of block indices, got {layers!r}.")
    if isinstance(layers, int):
        if not 0 <= layers <= L:
            raise ValueError(f"layers={layers}: the model has {L} blocks, so freeze between 0 "
                             f"and {L} of them.")
        chosen = list(range(layers))
        embeddings = [m for m in (getattr(model, "wte", None), getattr(model, "wpe", None))
                      if m is not None]
    else:
        chosen, embeddings = [], []
        for i in layers:
            if isinstance(i, bool) or not isinstance(i, int) or not -L <= i < L:
                raise ValueError(f"layer index {i!r} is out of range: the model has {L} blocks "
                                 f"(0 to {L - 1}, or -{L} to -1 from the top).")
            chosen.append(i % L)
    return {id(p) for m in [blocks[i] for i in chosen] + embeddings for p in m.parameters()}


def freeze(model: nn.Module, layers: int | Iterable[int] | None = None,
           names: str | Iterable[str] | None = None,
           except_names: str | Iterable[str] | None = None) -> list[str]:
    """Stop parameters from learning (``requires_grad=False``); returns their names.

    - ``layers=k`` (an int): the bottom of the network, blocks 0 .. k-1 AND the embeddings
      (wte, wpe), the usual recipe: low layers hold general features, top ones the task.
      ``layers=[0, 5]`` (a list): exactly those blocks (negative indices count from the top).
    - ``names``: glob patterns over parameter names, e.g. ``"h.0.*"``, ``"*.ln_*"``, ``"wte.*"``.
    - neither: every parameter.
    - ``except_names``: patterns kept trainable whatever the above selects, e.g.
      ``freeze(model, except_names=["ln_f.*", "h.5.*"])`` trains only the top block and norm.

    Tied weights are one tensor: freezing wte also freezes lm_head (and the reverse).
    """
    name_pats = _as_patterns(names, "names")
    keep_pats = _as_patterns(except_names, "except_names")
    chosen: set[int] | None = None
    if layers is not None:
        chosen = _layer_ids(model, layers)
    if name_pats:
        chosen = (chosen or set()) | _match(name_pats, model, "names")
    keep = _match(keep_pats, model, "except_names") if keep_pats else set()
    frozen = []
    for name, _, p in _aliases(model):
        if (chosen is None or id(p) in chosen) and id(p) not in keep:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def unfreeze(model: nn.Module, names: str | Iterable[str] | None = None) -> list[str]:
    """Let parameters learn again (all of them, or those matching the glob ``names``);
    returns their names. After ``apply_lora`` this also unfreezes the base weights."""
    pats = _as_patterns(names, "names")
    chosen = _match(pats, model, "names") if pats else None
    thawed = []
    for name, _, p in _aliases(model):
        if chosen is None or id(p) in chosen:
            p.requires_grad_(True)
            thawed.append(name)
    return thawed


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that will learn (requires_grad), tied weights counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class ParameterSummary:
    """Trainable vs all parameters, also per part of the model (``groups``: name ->
    (trainable, total), parts being wte, wpe, h.0, h.1, ..., ln_f, ...)."""

    trainable: int
    total: int
    groups: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        head = (f"trainable {self.trainable:,} of {self.total:,} parameters "
                f"({100 * self.fraction:.2f}%)")
        lines = [head]
        for g, (t, n) in self.groups.items():
            state = "trainable" if t == n else "frozen" if t == 0 else f"{t:,} trainable"
            lines.append(f"  {g:<10} {n:>12,}  {state}")
        return "\n".join(lines)


def parameter_summary(model: nn.Module) -> ParameterSummary:
    """How much of ``model`` will learn: see :class:`ParameterSummary`."""
    groups: dict[str, list[int]] = {}
    for name, _, p in _aliases(model):
        parts = name.split(".")
        g = ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]
        counts = groups.setdefault(g, [0, 0])
        counts[0] += p.numel() if p.requires_grad else 0
        counts[1] += p.numel()
    return ParameterSummary(trainable=trainable_parameters(model),
                            total=sum(p.numel() for p in model.parameters()),
                            groups={g: (t, n) for g, (t, n) in groups.items()})


# ---------------------------------------------------------------------------- LoRA


def _check_lora_args(rank: Any, alpha: Any, dropout: Any) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive integer (4 to 64 is usual), got rank={rank!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (
            math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive number (often 2 * rank), got alpha={alpha!r}.")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0 <= dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), got dropout={dropout!r}.")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update:
    y = x W^T + b + (alpha / rank) * dropout(x) A^T B^T.

    It takes over the base layer's ``weight`` and ``bias`` under the same names (a state dict
    keeps ``...c_attn.weight``) and adds ``lora_A`` (rank, in) and ``lora_B`` (out, rank).
    A starts like a Linear's weight (Kaiming uniform), B at zero: at first y is the base's y.
    """

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        _check_lora_args(rank, alpha, dropout)
        n_in, n_out = base.in_features, base.out_features
        if rank > min(n_in, n_out):
            raise ValueError(f"rank={rank} is too large for a Linear layer of {n_in} inputs and "
                             f"{n_out} outputs: a rank above min(in, out) = {min(n_in, n_out)} "
                             "adds parameters but no expressive power. Fix: a smaller rank.")
        self.in_features, self.out_features = n_in, n_out
        self.rank, self.alpha, self.dropout_p = rank, float(alpha), float(dropout)
        self.scale = self.alpha / rank
        self.weight = base.weight
        self.bias = base.bias  # a Parameter or None: registered either way
        self.base_requires_grad = (base.weight.requires_grad,
                                   base.bias.requires_grad if base.bias is not None else False)
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(rank, n_in, **kw))
        self.lora_B = nn.Parameter(torch.zeros(n_out, rank, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.train(base.training)  # in eval mode when put into a model in eval mode

    def forward(self, x: Tensor) -> Tensor:
        update = F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B)  # (..., out)
        return F.linear(x, self.weight, self.bias) + self.scale * update

    def delta_weight(self) -> Tensor:
        """(alpha / rank) * B A: what merging adds to the base weight, (out, in)."""
        return self.scale * (self.lora_B @ self.lora_A)

    def merge(self) -> nn.Linear:
        """Fold the update into the base weight, in place (W += (alpha / rank) B A; B is then
        zeroed, so this layer still computes the same), and return a plain nn.Linear over
        those tensors, with the base's requires_grad flags back."""
        with torch.no_grad():
            self.weight.add_(self.delta_weight().to(self.weight.dtype))
            self.lora_B.zero_()
        return self.unwrap()

    def unwrap(self) -> nn.Linear:
        """A plain nn.Linear over the base tensors (adapters dropped), requires_grad as it
        was before LoRA froze them."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device="meta")
        linear.weight, linear.bias = self.weight, self.bias
        linear.weight.requires_grad_(self.base_requires_grad[0])
        if linear.bias is not None:
            linear.bias.requires_grad_(self.base_requires_grad[1])
        return linear

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, rank={self.rank}, alpha={self.alpha:g}"
                + (f", dropout={self.dropout_p:g}" if self.dropout_p else ""))


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    """The LoRA layers of ``model`` by module name, in model order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _linear_names(model: nn.Module) -> str:
    names = dict.fromkeys(re.sub(r"\.\d+\.", ".*.", n) for n, m in model.named_modules()
                          if isinstance(m, nn.Linear))
    return ", ".join(names) or "(none)"


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16,
               targets: str | Sequence[str] = ("attn.c_attn", "attn.c_proj"),
               dropout: float = 0.0, freeze_base: bool = True) -> list[str]:
    """Put a :class:`LoRALinear` in place of every nn.Linear whose name ends with a target
    (``"attn.c_attn"`` matches ``h.0.attn.c_attn``, ``h.1.attn.c_attn``, ...); returns the
    names of the wrapped layers. ``freeze_base=True`` (the LoRA recipe) freezes every other
    parameter too, so only the adapters learn; merge_lora / remove_lora undo that freezing.
    The wrapped layers' own weights are always frozen. Every layer is checked before
    anything changes: a bad argument leaves the model as it was.

    Targets can also be ``"mlp.c_fc"``, ``"mlp.c_proj"`` or ``"c_proj"`` (attention's and the
    MLP's). A tied lm_head is refused: its matrix is the token embedding's too.
    """
    _check_lora_args(rank, alpha, dropout)
    if existing := list(lora_modules(model)):
        raise ValueError(f"LoRA is already applied to this model ({len(existing)} layers, e.g. "
                         f"{existing[0]}). Fix: merge_lora(model) (or remove_lora(model)) "
                         "before applying new adapters, or train the ones it has.")
    targets = [targets] if isinstance(targets, str) else list(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be one or more module names (suffixes such as "
                         f"'attn.c_attn'), got {targets!r}.")
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    chosen: list[str] = []
    for t in targets:
        found = [n for n in linears if n == t or n.endswith("." + t)]
        if not found:
            raise ValueError(f"LoRA target {t!r} matches no nn.Linear module. The model's "
                             f"Linear modules are: {_linear_names(model)} (* = any block).")
        chosen += [n for n in found if n not in chosen]
    chosen = [n for n in linears if n in chosen]  # model order
    shared = {}
    for name, names, _ in _aliases(model):
        for n in names:
            shared[n] = names
    for n in chosen:
        tied = shared[f"{n}.weight"]
        if len(tied) > 1:
            others = [x for x in tied if x != f"{n}.weight"]
            raise ValueError(f"{n}.weight is tied to {others[0]} (one tensor): LoRA on {n} "
                             "would change that too when merged. Leave it out of targets, or "
                             "build the model with tie_weights=False.")
        lin = linears[n]
        if rank > min(lin.in_features, lin.out_features):
            raise ValueError(f"rank={rank} is too large for {n} ({lin.in_features} inputs, "
                             f"{lin.out_features} outputs): the rank can be at most "
                             f"min(in, out) = {min(lin.in_features, lin.out_features)}.")
    wrappers = {n: LoRALinear(linears[n], rank, alpha, dropout) for n in chosen}
    if freeze_base:  # remembered, so that merge_lora / remove_lora can undo it
        frozen = [p for p in model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        model._lora_frozen = frozen
    for n, w in wrappers.items():
        _replace(model, n, w)
    return chosen


def _thaw(model: nn.Module) -> None:
    """Let learn again what apply_lora(freeze_base=True) froze."""
    for p in model.__dict__.pop("_lora_frozen", []):
        p.requires_grad_(True)


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every adapter into its base weight (W += alpha / rank * B A) and put plain
    nn.Linear layers back; returns their names. The outputs stay the same (up to rounding);
    the model is then an ordinary GPT: ``model.save(path)`` saves it. What apply_lora froze
    learns again (requires_grad as before apply_lora)."""
    mods = lora_modules(model)
    if not mods:
        raise ValueError("the model has no LoRA adapters to merge (apply_lora(model) adds them).")
    for name, m in mods.items():
        _replace(model, name, m.merge())
    _thaw(model)
    return list(mods)


def remove_lora(model: nn.Module) -> list[str]:
    """Drop every adapter without merging: the base model as it was before apply_lora
    (weights and requires_grad); returns the names."""
    mods = lora_modules(model)
    for name, m in mods.items():
        _replace(model, name, m.unwrap())
    _thaw(model)
    return list(mods)


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapters alone: {"h.0.attn.c_attn.lora_A": tensor, ...} (CPU copies)."""
    out = {}
    for name, m in lora_modules(model).items():
        out[f"{name}.lora_A"] = m.lora_A.detach().cpu().contiguous()
        out[f"{name}.lora_B"] = m.lora_B.detach().cpu().contiguous()
    return out


def _lora_settings(model: nn.Module) -> dict[str, Any]:
    mods = lora_modules(model)
    if not mods:
        raise ValueError("the model has no LoRA adapters to save (apply_lora(model) adds them).")
    settings = {(m.rank, m.alpha, m.dropout_p) for m in mods.values()}
    if len(settings) > 1:
        raise ValueError(f"the adapters have different rank/alpha/dropout {sorted(settings)}; "
                         "save_lora stores one setting for all (use apply_lora).")
    rank, alpha, dropout = settings.pop()
    return {"rank": rank, "alpha": alpha, "dropout": dropout, "targets": list(mods)}


def save_lora(model: nn.Module, path: str | os.PathLike) -> None:
    """Write the adapters to folder ``path``: adapter.safetensors (lora_A, lora_B of each
    layer) and adapter_config.json (rank, alpha, dropout, the wrapped layers, the base
    model's config), atomically. ``load_lora(base_model, path)`` puts them back."""
    meta = {"format": LORA_FORMAT, "format_version": LORA_VERSION, **_lora_settings(model)}
    cfg = getattr(model, "config", None)
    if hasattr(cfg, "to_dict"):
        meta["base_config"] = cfg.to_dict()
    tensors = lora_state_dict(model)
    write_atomically(Path(path), {
        ADAPTER_FILE: lambda f: save_file(tensors, f, metadata={"format": "pt"}),
        ADAPTER_CONFIG: lambda f: Path(f).write_text(json.dumps(meta, indent=2) + "\n")})


def load_lora(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load adapters saved by :func:`save_lora` into ``model`` (the same base model). A model
    without LoRA gets it applied first (as saved; the rest of the model is frozen); a model
    with LoRA must have it on the same layers with the same rank. Returns the layer names."""
    path = Path(path)
    for f in (path / ADAPTER_CONFIG, path / ADAPTER_FILE):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: load_lora expects a folder written by "
                                    f"save_lora(model, path), holding {ADAPTER_CONFIG} and "
                                    f"{ADAPTER_FILE}.")
    meta = json.loads((path / ADAPTER_CONFIG).read_text())
    if not isinstance(meta, dict) or meta.get("format") != LORA_FORMAT \
            or meta.get("format_version") != LORA_VERSION:
        raise ValueError(f"{path / ADAPTER_CONFIG} is not a gptlab LoRA adapter config "
                         f"(format {LORA_FORMAT!r}, version {LORA_VERSION}).")
    cfg = getattr(model, "config", None)
    if "base_config" in meta and hasattr(cfg, "to_dict"):
        mine = cfg.to_dict()
        diff = {k: (v, mine.get(k)) for k, v in meta["base_config"].items()
                if k not in _MAY_DIFFER and mine.get(k) != v}
        if diff:
            lines = ", ".join(f"{k}: adapters {a!r} vs model {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"the adapters in {path} were trained on another base model "
                             f"({lines}). Load them into the model they were trained on.")
    targets = list(meta["targets"])
    mods = lora_modules(model)
    if not mods:
        apply_lora(model, meta["rank"], meta["alpha"], targets, meta.get("dropout", 0.0))
        mods = lora_modules(model)
    elif list(mods) != targets or {m.rank for m in mods.values()} != {meta["rank"]}:
        raise ValueError(f"the model's LoRA layers (rank {sorted({m.rank for m in mods.values()})}"
                         f", {list(mods)}) differ from the saved ones (rank {meta['rank']}, "
                         f"{targets}). Fix: remove_lora(model) first, then load_lora.")
    tensors = load_file(path / ADAPTER_FILE)
    expected = {f"{n}.lora_{x}": getattr(m, f"lora_{x}") for n, m in mods.items() for x in "AB"}
    missing, unexpected = sorted(expected.keys() - tensors), sorted(tensors.keys() - expected)
    if missing or unexpected:
        raise ValueError(f"{path / ADAPTER_FILE} does not fit the config beside it: missing "
                         f"{missing}, unexpected {unexpected}.")
    with torch.no_grad():
        for k, p in expected.items():
            if tensors[k].shape != p.shape:
                raise ValueError(f"tensor {k!r} in {path / ADAPTER_FILE} has shape "
                                 f"{tuple(tensors[k].shape)}, the model's is {tuple(p.shape)}.")
        for k, p in expected.items():
            p.copy_(tensors[k])
    for m in mods.values():
        m.alpha, m.scale = float(meta["alpha"]), float(meta["alpha"]) / m.rank
    return list(mods)
