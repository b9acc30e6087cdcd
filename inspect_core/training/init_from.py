"""Starting a run from trained weights (``--init-from``): which network they belong to
(:func:`open_init_source`; the run then trains that network unless told otherwise) and loading
them (:func:`load_init`), saying loudly what did not load and why.

What may differ from the source without an error: the head, when the classes differ (it starts
from scratch), and the number of image channels (the first layer's filters are spread over, or
summed from, the colour channels, so a gray model sees a colour image as its gray version).
Anything else that does not fit means the network is not the source's: an :class:`InitError`,
unless ``partial`` (``--init-partial``) starts those tensors from scratch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from inspect_core.errors import InspectError
from inspect_core.plugin_api.resolve import resolve_model
from inspect_core.runtime.onnx_model import META_KEY
from inspect_core.training.unet import ModelConfig, zero_dead_weights

ARCH_FIELDS = ("width", "depth", "stem_stride", "arch")  # what a run takes from its source
STEM, HEAD = "stem.0.weight", "head."


class InitError(InspectError):
    """The weights to start from do not fit the network (one problem a line)."""

    multiline = True


@dataclass(frozen=True)
class InitSource:
    """Trained weights to start from, and what is known of the network they belong to."""

    spec: str  # as given: a .pt or .onnx path, or PLUGIN:RECIPE
    weights: Path  # the checkpoint read
    state: dict[str, torch.Tensor] = field(repr=False)
    config: ModelConfig | None  # None: the weights are not those of inspect's U-Net
    config_from: str  # where ``config`` was read
    classes: list[str] | None  # its class names, where its card or ONNX file records them
    card: dict = field(default_factory=dict, repr=False)  # its model card ({} without one)

    @property
    def name(self) -> str:
        return self.spec if self.spec == str(self.weights) else f"{self.spec} ({self.weights})"


@dataclass
class InitReport:
    """What :func:`load_init` did (the card's ``init_from``)."""

    source: str
    weights: str
    architecture_from: str
    tensors: int  # in the new network (parameters and buffers)
    loaded: int  # as they were in the source
    adapted: dict[str, str] = field(default_factory=dict)  # loaded after a change, and why
    reinitialised: dict[str, str] = field(default_factory=dict)  # from scratch, and why
    unused: list[str] = field(default_factory=list)  # source tensors with no place (partial)
    dead_weights_zeroed: int = 0
    differences: list[str] = field(default_factory=list)  # settings given that differ from it

    def to_dict(self) -> dict:
        return asdict(self)


def open_init_source(spec: str) -> InitSource:
    """The checkpoint ``spec`` names (a ``.pt``, the ``.pt`` beside an ``.onnx``, or that of an
    installed recipe, ``PLUGIN:RECIPE``) and the network it was trained as: from the checkpoint's
    saved config, else its card (``.json`` beside), else the shapes of its weights."""
    path = Path(spec)
    if ":" in spec and not path.exists():
        path = Path(resolve_model(spec))
    pt = path.with_suffix(".pt") if path.suffix == ".onnx" else path
    if not pt.is_file():
        raise InspectError(
            f"--init-from {spec}: no weights to start from: {pt} not found (training needs the "
            ".pt checkpoint beside the .onnx; `inspect train` writes model.pt)"
        )
    try:
        ck = torch.load(pt, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many kinds for a file that is not a checkpoint
        raise InspectError(f"--init-from {spec}: {pt} is not a torch checkpoint ({e})") from None
    state = ck.get("model", ck) if isinstance(ck, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InspectError(f"--init-from {spec}: {pt} holds no model weights")
    # a run folder's best.pt / last.pt: the run's card is model.json beside them
    card = _read_json(pt.with_suffix(".json"))
    if not card and pt.name in ("best.pt", "last.pt"):
        card = _read_json(pt.parent / "model.json")
    meta = _onnx_meta(pt.with_suffix(".onnx"))
    if isinstance(ck.get("config"), dict):
        config, source = ModelConfig.from_dict(ck["config"]), "its checkpoint"
    elif isinstance(card.get("architecture"), dict):
        config, source = (
            ModelConfig.from_dict(card["architecture"]),
            f"its card {pt.with_suffix('.json')}",
        )
    else:
        config, source = _config_from_shapes(state, meta.get("stride"))
    classes = card.get("classes") or meta.get("classes")
    return InitSource(
        spec, pt, state, config, source, classes if isinstance(classes, list) else None, card
    )


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _onnx_meta(path: Path) -> dict:
    """The inspect metadata embedded in the ONNX file ``path`` ({} when there is none)."""
    if not path.is_file():
        return {}
    import onnx  # lazy: 0.7 s to load, only when starting from an .onnx file

    try:
        props = onnx.load(str(path), load_external_data=False).metadata_props
    except Exception:  # a damaged file only costs the hints it would give
        return {}
    for p in props:
        if p.key == META_KEY:
            try:
                d = json.loads(p.value)
            except ValueError:
                return {}
            return d if isinstance(d, dict) else {}
    return {}


def _config_from_shapes(
    state: dict[str, torch.Tensor], stride: object
) -> tuple[ModelConfig | None, str]:
    """The U-Net the weights fit, from their names and shapes (a checkpoint without a saved
    config, e.g. ``last.pt``); the stem stride from the ONNX file's stride, else assumed 1."""
    stem, head = state.get(STEM), state.get(HEAD + "weight")
    enc = [
        int(k.split(".")[1]) for k in state if k.startswith("enc.") and k.split(".")[1].isdigit()
    ]
    if stem is None or head is None or stem.ndim != 4 or not enc:
        return None, "nowhere: these are not the weights of inspect's U-Net"
    depth, width = max(enc), int(stem.shape[0])
    enhanced = any(k.startswith("gates.") for k in state)
    last = state.get(f"enc.{depth}.body.1.1.weight" if enhanced else f"enc.{depth}.3.weight")
    deepest = int(last.shape[0]) if last is not None else width * 2**depth
    max_width = deepest if deepest < width * 2**depth else max(256, deepest)
    how = "the shapes of its weights"
    if isinstance(stride, int) and stride in (2**depth, 2 ** (depth + 1)):
        stem_stride, how = stride // 2**depth, how + " and the stride in its .onnx"
    else:
        stem_stride, how = 1, how + " (stem stride not recorded: 1 assumed)"
    cfg = ModelConfig(
        in_channels=int(stem.shape[1]),
        num_classes=int(head.shape[0]),
        width=width,
        depth=depth,
        stem_stride=stem_stride,
        arch="enhanced" if enhanced else "plain",
        max_width=max_width,
    )
    return cfg, how


def load_init(
    model: torch.nn.Module,
    source: InitSource,
    classes: list[str],
    log: Callable[[str], None],
    partial: bool = False,
    differences: list[str] | None = None,
) -> InitReport:
    """Load ``source`` into ``model`` (whose data has ``classes``), log a block saying what
    loaded, what was adapted and what starts from scratch, and why; returns it. Tensors that
    fit nowhere are an :class:`InitError` naming them (``differences``: the settings in which
    the network differs from the source's, for the message) unless ``partial``."""
    own = model.state_dict()
    load, adapted, fresh, misfits = _sort_tensors(own, source, classes)
    if misfits and not partial:
        raise InitError(_misfit_message(source, misfits, len(own), differences or []))
    fresh.update({k: f"{why} (--init-partial)" for k, why in misfits.items() if k in own})
    unused = sorted(k for k in misfits if k not in own)
    own.update(load)
    model.load_state_dict(own)
    report = InitReport(
        source.spec,
        str(source.weights),
        source.config_from,
        len(own),
        len(load) - len(adapted),
        adapted,
        fresh,
        unused,
        zero_dead_weights(model),
        list(differences or []),
    )
    for line in describe(report):
        log(line)
    return report


def _sort_tensors(
    own: dict[str, torch.Tensor], source: InitSource, classes: list[str]
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, str], dict[str, str]]:
    """The new network's tensors sorted: (what to load, adapted and why, fresh and why, do not
    fit and why; the last includes source tensors the network has no place for)."""
    load: dict[str, torch.Tensor] = {}
    adapted, fresh, misfits = {}, {}, {}
    head_why = _head_change(own, source, classes)
    for k, t in own.items():
        s = source.state.get(k)
        if k.startswith(HEAD) and head_why:
            fresh[k] = head_why
        elif s is None:
            misfits[k] = "not in the source"
        elif s.shape == t.shape:
            load[k] = s
        elif k == STEM and s.shape[0] == t.shape[0] and s.shape[2:] == t.shape[2:]:
            load[k], adapted[k] = _adapt_channels(s, int(t.shape[1]))
        else:
            misfits[k] = f"{tuple(s.shape)} in the source, {tuple(t.shape)} here"
    for k in source.state:
        if k not in own:
            misfits[k] = "in the source only: the new network has no such tensor"
    return load, adapted, fresh, misfits


def _head_change(own: dict[str, torch.Tensor], source: InitSource, classes: list[str]) -> str:
    """Why the head starts from scratch ('' when it loads): other classes, or as many under
    other names."""
    src = source.state.get(HEAD + "weight")
    n = int(src.shape[0]) if src is not None else None
    if source.classes is not None and list(source.classes) != list(classes):
        theirs = f"{len(source.classes)} ({', '.join(source.classes)})"
    elif n is not None and n != len(classes):
        theirs = str(n)
    else:
        return ""
    return (
        f"classes differ: the data has {len(classes)} ({', '.join(classes)}), the source {theirs}"
    )


def _adapt_channels(w: torch.Tensor, channels: int) -> tuple[torch.Tensor, str]:
    """The first layer's filters for ``channels`` image channels: a gray model's spread over
    the colour channels (each / 3), a colour model's summed for gray; the layer's response to
    an image is then its response to the image's gray (mean) version."""
    have = int(w.shape[1])
    if have == 1:
        out = w.repeat(1, channels, 1, 1) / channels
        how = "its gray filters spread over the colour channels (weights / 3)"
    elif channels == 1:
        out = w.sum(dim=1, keepdim=True)
        how = "its colour filters summed for one channel"
    else:
        out = (
            w[:, :channels].clone()
            if channels < have
            else w.repeat(1, -(-channels // have), 1, 1)[:, :channels]
        )
        how = "its filters cut or repeated to the new channel count"
    kinds = {1: "gray", 3: "colour"}
    why = (
        f"image channels differ: the data has {channels} ({kinds.get(channels, '?')}), the "
        f"source {have} ({kinds.get(have, '?')}): {how}"
    )
    return out.contiguous(), why


def _misfit_message(
    source: InitSource, misfits: dict[str, str], total: int, differences: list[str]
) -> str:
    shown = [f"  {k}: {why}" for k, why in list(misfits.items())[:6]]
    if len(misfits) > 6:
        shown.append(f"  ... and {len(misfits) - 6} more")
    because = (
        ["the network differs from the source's: " + "; ".join(differences)]
        if differences
        else ["the source is not a network of this architecture"]
    )
    return "\n".join(
        [
            f"--init-from {source.name}: {len(misfits)} tensors do not fit "
            f"({total} in the new network):"
        ]
        + shown
        + because
        + [
            "Leave out the settings that differ (width, depth, stem stride and arch are then "
            "taken from the source), or pass --init-partial to start the tensors that do not "
            "fit from scratch."
        ]
    )


def describe(report: InitReport) -> list[str]:
    """The log block of a load: counts, then one line per tensor not loaded as it was."""
    lines = [
        f"--init-from {report.source}: {report.weights}, network from {report.architecture_from}",
        f"  loaded {report.loaded} of {report.tensors} tensors as they were; "
        f"{len(report.adapted)} adapted, {len(report.reinitialised)} from scratch",
    ]
    lines += [f"  adapted {k}: {why}" for k, why in report.adapted.items()]
    lines += [f"  from scratch {k}: {why}" for k, why in report.reinitialised.items()]
    if report.differences:
        lines.append("  network differs from the source's: " + "; ".join(report.differences))
    if report.unused:
        lines.append(f"  not used ({len(report.unused)}): {', '.join(report.unused[:6])}")
    if report.dead_weights_zeroed:
        lines.append(
            f"  set {report.dead_weights_zeroed:,} dead weights (|w| < 1e-30) to zero "
            "(they slow CPUs down)"
        )
    return lines
