"""The heat-map methods by name, built from the classes: ``build_cam("layercam+fgbp", model)``.

Every subclass of :class:`racam.cam.base.BaseCAM` that sets its own ``name`` is registered when
its class statement runs (``BaseCAM.__init_subclass__`` calls :func:`register`, which adds it to
:data:`CLASSES`, a :class:`racam.registry.Registry` like every other registry of racam); the package
``racam.cam`` imports every method module, so importing anything from ``racam.cam`` fills the
registry. What the rest of racam needs to know about a method is read from the class
attributes (see :class:`MethodSpec`): the pipeline's layer and option choices, the
``racam cam`` help, report names, the benchmark's list. A gradient method without a delta of
its own (``uses_gradients and not uses_delta``) also gets a ``"<name>+fgbp"`` variant: the same
class with its backward pass under FGBP (``fgbp_delta``, paper Table IV).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from racam.errors import ConfigError
from racam.registry import NamesView, Registry

if TYPE_CHECKING:
    from torch import nn

    from racam.cam.base import BaseCAM
    from racam.cam.layers import LayerSpec

FGBP_SUFFIX = "+fgbp"
#: Default delta of a ``+fgbp`` variant when ``build_cam`` gets none.
FGBP_DELTA = 50.0

#: The heat-map classes by name, in registration order (the ``+fgbp`` variants are derived
#: from them). Names are looked up lower-case, without surrounding spaces.
CLASSES: Registry[type[BaseCAM]] = Registry("heat-map method",
                                            normalise=lambda n: n.strip().lower())
C = TypeVar("C", bound="type[BaseCAM]")


@dataclass(frozen=True)
class MethodSpec:
    """What racam knows about one accepted method name (a class, or its ``+fgbp`` variant).

    ``multi_layer``: several layers fused (the config's ``cam.layers`` and ``cam.fusion`` apply);
    ``default_layers``: stage names S1..S5 used when no layers are given (``()``: the method
    chooses its own, e.g. FullGrad); ``uses_delta``: takes ``delta`` (RA-CAM's, or the FGBP
    delta of a ``+fgbp`` variant); ``options``: further ``cam.<option>`` keys the class takes
    (RA-CAM: ``weighting``).
    """

    name: str
    cls: type[BaseCAM]
    display_name: str
    multi_layer: bool
    default_layers: tuple[str, ...]
    uses_gradients: bool
    uses_delta: bool
    fgbp_plugin: bool = False
    options: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        """Name of the class's own method (without ``+fgbp``)."""
        return self.cls.name

    @property
    def uses_fgbp(self) -> bool:
        """Back-propagates under FGBP (RA-CAM, every ``+fgbp`` variant): ``cam.fgbp_head``
        applies to it."""
        return self.uses_gradients and self.uses_delta


def register(cls: C) -> C:
    """Add a heat-map class to the registry under ``cls.name`` (also usable as a decorator).

    Called for every ``BaseCAM`` subclass that sets ``name``. A second class under a taken
    name is refused, except the same class defined again (a module reloaded).
    """
    name = cls.name
    if not name or name != name.strip().lower() or name.endswith(FGBP_SUFFIX):
        raise ConfigError(f"{cls.__qualname__}: method name {name!r} must be lower-case, "
                          f"without spaces around it or a {FGBP_SUFFIX!r} ending")
    CLASSES.add(name, cls)
    return cls


def _spec(cls: type[BaseCAM]) -> MethodSpec:
    return MethodSpec(name=cls.name, cls=cls, display_name=cls.display_name or cls.__name__,
                      multi_layer=cls.multi_layer, default_layers=tuple(cls.default_layers),
                      uses_gradients=cls.uses_gradients, uses_delta=cls.uses_delta,
                      options=tuple(getattr(cls, "options", ())))


def _variant(cls: type[BaseCAM]) -> MethodSpec | None:
    if not cls.uses_gradients or cls.uses_delta:
        return None
    s = _spec(cls)
    return MethodSpec(name=s.name + FGBP_SUFFIX, cls=cls, display_name=s.display_name + "+FGBP",
                      multi_layer=s.multi_layer, default_layers=s.default_layers,
                      uses_gradients=True, uses_delta=True, fgbp_plugin=True,
                      options=s.options)


def method_specs(variants: bool = True) -> list[MethodSpec]:
    """Every registered method (registration order), then the ``+fgbp`` variants."""
    classes = [c for _, c in CLASSES.items()]
    specs = [_spec(c) for c in classes]
    if variants:
        specs += [v for c in classes if (v := _variant(c)) is not None]
    return specs


def method_names(variants: bool = True) -> list[str]:
    """Every accepted ``cam.method`` string, the ``"+fgbp"`` variants included."""
    return [s.name for s in method_specs(variants)]


def get_method(name: str) -> MethodSpec:
    """The method called ``name`` (case and surrounding spaces ignored); else ``ConfigError``."""
    key = CLASSES.key(name)
    cls = CLASSES.find(key.removesuffix(FGBP_SUFFIX))
    spec = None if cls is None else _spec(cls) if key == cls.name else _variant(cls)
    if spec is None:
        raise CLASSES.unknown(name, method_names())
    return spec


def describe(spec: MethodSpec) -> str:
    """One line about a method for ``racam list methods``: its report name and what applies
    to it, e.g. ``RA-CAM: layers S1-S5 fused, gradients under FGBP (delta), options:
    weighting``."""
    layers = ("its own layers" if not spec.default_layers else
              f"layers {spec.default_layers[0]}-{spec.default_layers[-1]} fused"
              if spec.multi_layer else f"layer {', '.join(spec.default_layers)}")
    grads = ("gradients under FGBP (delta)" if spec.uses_fgbp else
             "gradients" if spec.uses_gradients else "no gradients")
    opts = f", options: {', '.join(spec.options)}" if spec.options else ""
    return f"{spec.display_name}: {layers}, {grads}{opts}"


def display_name(name: str) -> str:
    """Name of a method in reports and figures (``"RA-CAM"``); ``name`` itself if unknown."""
    try:
        return get_method(name).display_name
    except ConfigError:
        return name


def cam_options(name: str, *, delta: float | None = None, fusion: str | None = None,
                weighting: str | None = None, fgbp_head: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``build_cam`` that apply to ``name``: ``delta`` when the method
    uses one, ``fusion`` when it is multi-layer, ``weighting`` when the class lists it in its
    ``options`` (RA-CAM), ``fgbp_head`` when it back-propagates under FGBP (``None`` values are
    left out)."""
    s = get_method(name)
    kw: dict[str, Any] = {}
    if s.uses_delta and delta is not None:
        kw["delta"] = delta
    if s.multi_layer and fusion is not None:
        kw["fusion"] = fusion
    if "weighting" in s.options and weighting is not None:
        kw["weighting"] = weighting
    if s.uses_fgbp and fgbp_head is not None:
        kw["fgbp_head"] = fgbp_head
    return kw


def build_cam(name: str, model: nn.Module, target_layers: Sequence[LayerSpec] | LayerSpec | None
              = None, **kwargs: object) -> BaseCAM:
    """The method ``name`` (see :func:`method_names`) on ``model``.

    ``delta`` sets RA-CAM's delta, or the FGBP delta of a ``+fgbp`` method (default 50); other
    keyword arguments go to the class (``fusion``, ``batch_size``, ``channels_last``, ...).
    """
    s = get_method(name)
    kw = dict(kwargs)
    delta = kw.pop("delta", None)
    if s.fgbp_plugin:
        kw["fgbp_delta"] = FGBP_DELTA if delta is None else delta
    elif s.uses_delta and delta is not None:
        kw["delta"] = delta
    elif delta is not None:
        own = [m.name for m in method_specs(variants=False) if m.uses_delta]
        raise ConfigError(f"{name}: delta only applies to {', '.join(own)} and '+fgbp' methods")
    try:
        return s.cls(model, target_layers, **kw)  # type: ignore[arg-type]  # options vary by class
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}") from exc


#: Every accepted method name (a live view of :func:`method_names`).
METHODS: Sequence[str] = NamesView(method_names)


#: Defaults of the ``cam`` options that apply to some methods only (RA-CAM's Eq. 7 reading,
#: FGBP's scope in the fully connected head). A default value is left out of file names and
#: stage keys, so results computed before these options existed stay valid.
CAM_OPTION_DEFAULTS: dict[str, str] = {"weighting": "element", "fgbp_head": "sample"}
_OPTION_TAGS = {"weighting": "w", "fgbp_head": "h"}


def variant_key(options: dict[str, str]) -> str:
    """Name of an RA-CAM variant in ``reproduce.json``: ``"weighting=element,fgbp_head=sample"``."""
    return ",".join(f"{k}={options[k]}" for k in CAM_OPTION_DEFAULTS)


def method_options(method: str, weighting: str | None = None, fgbp_head: str | None = None
                   ) -> dict[str, str]:
    """The ``cam`` options that apply to ``method`` and differ from their default
    (``{"weighting": "channel"}`` for RA-CAM's channel reading)."""
    applied = cam_options(method, weighting=weighting, fgbp_head=fgbp_head)
    return {k: v for k, v in applied.items() if v != CAM_OPTION_DEFAULTS[k]}


def method_key(method: str, delta: float | None = None, *, weighting: str | None = None,
               fgbp_head: str | None = None) -> str:
    """File-name key of a heat-map method, e.g. ``racam-d50``, ``layercam_fgbp-d50``, or
    ``racam-wchannel-hunit-d50`` (options that apply and differ from their default)."""
    base = method.replace("+", "_")
    for k, v in method_options(method, weighting, fgbp_head).items():
        base += f"-{_OPTION_TAGS[k]}{v}"
    needs_delta = get_method(method).uses_delta
    return f"{base}-d{delta:g}" if needs_delta and delta is not None else base
