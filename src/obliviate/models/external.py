"""Models obliviate did not define: torchvision and timm architectures, and any ``nn.Module``.

:class:`WrappedClassifier` gives an arbitrary classifier the interface every method relies on
(``features(x)`` and a final ``classifier`` ``nn.Linear``) without copying or re-implementing
it: the head is moved to ``classifier`` and an ``nn.Identity`` takes its place inside the
module, so ``features`` is the module's own forward pass up to the head. State-dict keys become
``backbone.<original key>`` and ``classifier.weight``/``classifier.bias``.

Architecture names in a model file:

``torchvision:NAME``  built by ``torchvision.models.get_model(NAME, num_classes=...)``
``timm:NAME``         built by ``timm.create_model(NAME, num_classes=...)`` (``obliviate[timm]``)
``module:CLASS``      a module only its author can build: :func:`obliviate.load` takes it back
                      through ``module=`` (the file is never unpickled)
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models.base import Classifier

SOURCES = ("torchvision", "timm")
CUSTOM_PREFIX = "module:"


class WrappedClassifier(Classifier):
    """Any classifier ``nn.Module`` whose last step is an ``nn.Linear`` head, seen as a
    :class:`~obliviate.models.Classifier`.

    Args:
        module: the classifier; it is changed in place (its head becomes ``nn.Identity``).
        head: dotted name of the head inside ``module`` (default: the last ``nn.Linear``).
        input_shape: shape of one input (without the batch dimension).
        num_classes: classes the head must output; a head of another size is replaced by a
            freshly initialised ``nn.Linear`` (``head_replaced`` is then True).
    """

    #: The penultimate features of a wrapped model are its own; nothing is known about them.
    default_lambdas = (1e-6, 0.5)  # the v1 supplement's ImageNet/ResNet-18 setting

    def __init__(self, module: nn.Module, *, head: str | None = None,
                 input_shape: tuple[int, ...], num_classes: int) -> None:  # fmt: skip
        super().__init__()
        head = head or find_head(module)
        linear = _get(module, head)
        if not isinstance(linear, nn.Linear):
            what = (f"the head {head!r} of {type(module).__name__} is a "
                    f"{type(linear).__name__}, not an nn.Linear; give the dotted name of the "
                    "final nn.Linear layer")  # fmt: skip
            raise ObliviateError(f"{what} (head=...)", cli=f"{what} (--head NAME)")
        self.head_replaced = linear.out_features != num_classes
        if self.head_replaced:
            linear = nn.Linear(linear.in_features, num_classes, bias=linear.bias is not None,
                               device=linear.weight.device)  # fmt: skip
        _set(module, head, nn.Identity())
        self.backbone = module
        self.classifier = linear
        self.head = head
        self.input_shape = tuple(input_shape)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x.reshape(x.shape[0], *self.input_shape))
        if out.dim() != 2 or out.shape[1] != self.classifier.in_features:
            raise ObliviateError(
                f"{type(self.backbone).__name__} without its head {self.head!r} returns shape "
                f"{tuple(out.shape)}, not [batch, {self.classifier.in_features}] features; the "
                "head must be the module's last step"
            )
        return out

    def feature_layer(self):
        """For a torchvision ResNet: the last convolution of the last block, whose batch norm
        (a per-channel scale in eval mode), residual sum, ReLU and global average pool lead to
        the features; ``None`` for any other architecture (its path is not known)."""
        from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

        from obliviate.deep_layer import residual_layer

        net = self.backbone
        if type(net) is not ResNet or not isinstance(net.fc, nn.Identity):
            return None
        index = len(net.layer4) - 1
        block = net.layer4[index]
        name, bn = {BasicBlock: ("conv2", "bn2"), Bottleneck: ("conv3", "bn3")}.get(
            type(block), (None, None))  # fmt: skip
        if name is None:
            return None
        # a block with a downsample has a shortcut layer of its own: the branch alone is edited
        return residual_layer(f"backbone.layer4.{index}.{name}", block, getattr(block, bn))


def find_head(module: nn.Module) -> str:
    """Dotted name of the last ``nn.Linear`` registered in ``module`` (torchvision's ``fc``,
    ``classifier.6``, ``heads.head``; timm's ``fc``, ``head.fc``)."""
    linears = [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ObliviateError(f"{type(module).__name__} has no nn.Linear layer to use as the "
                             "classifier head; obliviate needs a linear head")  # fmt: skip
    return linears[-1]


def _get(module: nn.Module, dotted: str) -> nn.Module:
    try:
        return module.get_submodule(dotted)
    except AttributeError:
        raise ObliviateError(f"{type(module).__name__} has no submodule {dotted!r}") from None


def _set(module: nn.Module, dotted: str, value: nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(_get(module, parent) if parent else module, name, value)


# -- architectures by name -------------------------------------------------------------------


def split_name(name: str) -> tuple[str, str]:
    """``("torchvision", "resnet18")`` from ``torchvision:resnet18``; a bare name is looked up
    in torchvision, then timm."""
    source, sep, arch = name.partition(":")
    if sep:
        if source not in SOURCES:
            raise ObliviateError(f"unknown architecture source {source!r} in {name!r}; use "
                                 "torchvision:NAME or timm:NAME")  # fmt: skip
        return source, arch
    if name in torchvision_names():
        return "torchvision", name
    if _has_timm() and name in timm_names():
        return "timm", name
    _unknown(name)
    raise AssertionError  # pragma: no cover


def is_external(name: str) -> bool:
    """True for ``torchvision:``/``timm:`` names (built here) and ``module:`` names."""
    return name.startswith(CUSTOM_PREFIX) or name.partition(":")[0] in SOURCES


def torchvision_names() -> list[str]:
    """torchvision's classification architectures."""
    import torchvision.models

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _has_timm() -> bool:
    return importlib.util.find_spec("timm") is not None


def timm_names() -> list[str]:
    """timm's architectures (empty without the ``obliviate[timm]`` extra)."""
    if not _has_timm():
        return []
    import timm

    return sorted(timm.list_models())


def _unknown(name: str, source: str | None = None) -> None:
    pool = {"torchvision": torchvision_names, "timm": timm_names}
    names = [n for s, f in pool.items() if source in (None, s) for n in f()]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    extra = "" if _has_timm() or source == "torchvision" else (
        " (timm's architectures need: pip install 'obliviate[timm]')")
    raise ObliviateError(f"unknown architecture {name!r}{hint}; list the names with "
                         f"'obliviate list architectures'{extra}")  # fmt: skip


def build_architecture(name: str, *, num_classes: int, pretrained: bool = False) -> nn.Module:
    """The plain ``nn.Module`` of a torchvision/timm architecture, random or pretrained.

    Pretrained weights come from torchvision's ``weights="DEFAULT"`` or timm's
    ``pretrained=True``: their caches, or a download where the network allows.
    """
    source, arch = split_name(name)
    if source == "torchvision":
        import torchvision.models

        if arch not in torchvision_names():
            _unknown(arch, "torchvision")
        try:
            if pretrained:
                module = torchvision.models.get_model(arch, weights="DEFAULT")
                return module
            return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError
            raise ObliviateError(_download_hint(name, exc)) from None
    if not _has_timm():
        raise ObliviateError(f"{name} needs timm: pip install 'obliviate[timm]'")
    import timm

    if arch not in timm_names():
        _unknown(arch, "timm")
    try:
        return timm.create_model(arch, pretrained=pretrained,
                                 **({} if pretrained else {"num_classes": num_classes}))  # fmt: skip
    except (OSError, RuntimeError) as exc:
        raise ObliviateError(_download_hint(name, exc)) from None


def _download_hint(name: str, exc: BaseException) -> str:
    return (f"could not get pretrained weights of {name} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); without network access, "
            "download them elsewhere and pass the file with --weights FILE")  # fmt: skip


def create_external(name: str, *, input_shape: tuple[int, ...], num_classes: int,
                    head: str | None = None, **kwargs: Any) -> WrappedClassifier:  # fmt: skip
    """A :class:`WrappedClassifier` of the torchvision/timm architecture ``name`` with random
    weights (what :func:`obliviate.load` fills in)."""
    if name.startswith(CUSTOM_PREFIX):
        what = f"architecture {name!r} is a module obliviate cannot build"
        raise ObliviateError(
            f"{what}: load the file with obliviate.load(path, module=YourModule(...))",
            cli=f"{what}, so the command line cannot load this file; load it in Python with "
                "your module (see obliviate.load's module argument)",
        )
    if kwargs:
        raise ObliviateError(f"unknown settings for {name}: {', '.join(sorted(kwargs))}")
    module = build_architecture(name, num_classes=num_classes)
    return WrappedClassifier(module, head=head, input_shape=input_shape, num_classes=num_classes)


# -- weights files -----------------------------------------------------------------------------


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or from ``.pt``/``.pth`` loaded with
    ``weights_only=True`` (never unpickling code). Common wrappers (``state_dict``, ``model``)
    and DistributedDataParallel's ``module.`` prefix are taken off."""
    path = Path(path)
    if not path.is_file():
        raise ObliviateError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ObliviateError(f"{path} is not a readable safetensors file ({exc})") from None
    elif path.suffix in (".pt", ".pth", ".bin"):
        import pickle

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise ObliviateError(
                f"{path} holds more than weights (it needs unpickling, which can run code); "
                "refused. Save only the state dict (torch.save(model.state_dict(), ...)) or "
                "convert it to .safetensors"
            ) from None
        except (OSError, RuntimeError, EOFError, ValueError) as exc:
            raise ObliviateError(f"{path} is not a readable PyTorch file ({exc})") from None
    else:
        raise ObliviateError(f"{path}: weights must be .safetensors, .pt or .pth")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ObliviateError(f"{path} is not a state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_module_weights(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` strictly, with one line naming the first mismatch."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if missing or unexpected or wrong:
        if wrong:
            first = f"{wrong[0]} has shape {found[wrong[0]]}, the model wants {expected[wrong[0]]}"
        elif missing:
            first = f"{len(missing)} weights missing, first {missing[0]}"
        else:
            first = f"{len(unexpected)} unexpected weights, first {unexpected[0]}"
        raise ObliviateError(f"the weights in {source} do not fit {type(module).__name__}: "
                             f"{first}; give the architecture they were saved from")  # fmt: skip
    module.load_state_dict(dict(state), strict=True)


def head_classes(state: Mapping[str, torch.Tensor], head: str) -> int | None:
    """How many classes the head weights in ``state`` have (``None`` when absent)."""
    weight = state.get(f"{head}.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else None
