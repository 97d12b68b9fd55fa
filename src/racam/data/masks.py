"""Reading a mask file: which pixels are defect, how that was decided, and whether it is doubtful.

One reading (:func:`read_mask_reading`, :func:`read_mask`) serves training, evaluation, the
folder audit and ``racam data info``. The file is decoded by :func:`racam.data.images.open_image`
(EXIF orientation applied, size limit) and read by its mode:

- one channel (``1``, ``L``, 16-bit, ``I``, ``F``): a pixel is defect when its value is nonzero;
- a palette (``P``) is read by its colours (as shown), like a colour mask below;
- colour channels (``RGB``; ``CMYK`` / ``YCbCr`` converted to RGB): when every pixel has equal
  channels (a grey mask saved as RGB, a grey palette) it is read as one channel; otherwise a
  pixel is defect when any channel is nonzero ("colour mask", doubtful: a colour may mean
  another class);
- with an alpha channel (``LA``, ``RGBA``, ...): an alpha that is the same everywhere (an opaque
  mask) is ignored and the colour channels are read as above; an alpha that varies is the mask:
  a pixel is defect when it is not fully transparent (``alpha > 0``; doubtful: colours ignored).

Doubts (:attr:`MaskReading.doubts`, warnings of the audit): more than two different values (the
values counted, a colour counting once), a colour mask, a transparency mask, and a "defect"
covering more than :data:`MOSTLY_DEFECT` of the mask (an inverted mask with a white background).
A clean mask (one channel, values 0 and one other value, a small defect) has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from racam.data.images import PathLike, open_image

#: Share of defect pixels above which a mask is doubted (inverted, white background?).
MOSTLY_DEFECT = 0.5
_ALPHA_MODES = {"LA": "L", "La": "L", "RGBA": "RGB", "RGBa": "RGB", "PA": "RGB"}


@dataclass(frozen=True)
class MaskDoubt:
    """Why a mask's meaning is doubtful: ``kind`` a short tag, ``message`` the detail."""

    kind: str
    message: str


@dataclass(frozen=True)
class MaskReading:
    """A mask as read: ``defect`` bool ``(H, W)`` at the file's displayed size, ``rule`` how it
    was read (which channel, which value is defect), ``values`` how many different values the
    channels read hold, ``doubts`` why its meaning may be wrong (empty for a clean mask)."""

    defect: np.ndarray
    rule: str
    values: int
    doubts: tuple[MaskDoubt, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.defect.shape[1]), int(self.defect.shape[0])


def _distinct(arr: np.ndarray) -> int:
    """How many different values (a pixel of a multi-channel array counts as one value)."""
    if arr.ndim == 3:
        flat = np.ascontiguousarray(arr.reshape(-1, arr.shape[-1]))
        return len(np.unique(flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1])))))
    if arr.dtype == np.uint8 or arr.dtype == bool:
        return int(np.count_nonzero(np.bincount(arr.reshape(-1).astype(np.uint8), minlength=2)))
    return len(np.unique(arr))


def _colour(arr: np.ndarray, mode: str,
            doubts: list[MaskDoubt]) -> tuple[np.ndarray, str, np.ndarray]:
    """Read colour channels ``(H, W, C)``: grey when the channels agree, else any nonzero.
    Returns (defect, rule, the values read)."""
    if arr.shape[-1] == 1 or (arr == arr[..., :1]).all():
        grey = arr[..., 0]
        return grey != 0, f"{mode}, grey colours: nonzero = defect", grey
    doubts.append(MaskDoubt("colour mask", f"{mode} mask with colours: a pixel is defect when "
                            "any channel is nonzero (every colour counts as defect); save "
                            "masks as one-channel PNG, 0 = background, 255 = defect"))
    return np.asarray(arr.any(axis=-1)), f"{mode} colours: any nonzero channel = defect", arr


def _not_binary(read: np.ndarray, values: int) -> str:
    """The ``mask not binary`` message: the values (one channel) and how many pixels lie
    between the smallest and the largest."""
    text = f"{values} different values"
    if read.ndim == 2:
        lo, hi = read.min(), read.max()
        between = int(np.count_nonzero((read != lo) & (read != hi)))
        shown = ", ".join(f"{v:g}" for v in np.unique(read)[:6]) + (", ..." if values > 6 else "")
        text += f" ({shown}; {between} pixel(s) neither {lo:g} nor {hi:g})"
    return text + "; nonzero is taken as defect"


def interpret_mask(img: Image.Image) -> MaskReading:
    """Read a decoded mask image by its mode (module docstring)."""
    doubts: list[MaskDoubt] = []
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.ndim == 2:
        defect, rule, read = arr > 0, f"{mode}, one channel: nonzero = defect", arr
    elif img.mode in _ALPHA_MODES:
        alpha = arr[..., -1]
        if alpha.min() != alpha.max():
            defect, read = alpha > 0, alpha
            rule = f"{mode} transparency: not fully transparent (alpha > 0) = defect"
            doubts.append(MaskDoubt("mask transparency", f"{mode} mask whose alpha varies: "
                                    "read as opaque = defect, colours ignored; save masks as "
                                    "one-channel PNG, 0 = background, 255 = defect"))
        else:
            defect, rule, read = _colour(arr[..., :-1], mode, doubts)
            rule += f" (alpha {int(alpha.flat[0]) if alpha.size else 0} everywhere, ignored)"
    else:
        defect, rule, read = _colour(arr, mode, doubts)
    values = _distinct(read)
    if values > 2:
        doubts.append(MaskDoubt("mask not binary", _not_binary(read, values)))
    share = float(defect.mean()) if defect.size else 0.0
    if share > MOSTLY_DEFECT:
        doubts.append(MaskDoubt("mask mostly defect", f"defect covers {100 * share:.0f}% of "
                                "the mask; is it inverted (white background)? nonzero is "
                                "taken as defect"))
    return MaskReading(np.ascontiguousarray(defect, dtype=bool), rule, values, tuple(doubts))


def read_mask_reading(path: PathLike, expected_size: tuple[int, int] | None = None, *,
                      image_path: PathLike | None = None) -> MaskReading:
    """Read a mask file (:func:`interpret_mask`). ``expected_size = (width, height)``, when
    given, must equal the mask's displayed size; otherwise a :class:`DataError` names the mask
    (and ``image_path`` when given) and both sizes."""
    from racam.data.images import ImageReadError

    img = open_image(path, "mask")
    if expected_size is not None and tuple(img.size) != tuple(expected_size):
        of = f" but its image {image_path} is" if image_path is not None else ", expected"
        raise ImageReadError(path, f"mask is {img.size[0]}x{img.size[1]} (width x height){of} "
                             f"{expected_size[0]}x{expected_size[1]}")
    return interpret_mask(img)


def read_mask(path: PathLike, expected_size: tuple[int, int] | None = None, *,
              image_path: PathLike | None = None) -> np.ndarray:
    """A mask file as a bool array ``(H, W)`` at its displayed size, True = defect
    (:func:`read_mask_reading`'s ``defect``)."""
    return read_mask_reading(path, expected_size, image_path=image_path).defect


@dataclass
class MaskSurvey:
    """How a dataset's mask files read (``racam data info``): rule -> number of masks, and
    one line per doubtful mask."""

    rules: dict[str, int]
    warnings: list[str]

    def details(self) -> list[str]:
        """One line per reading rule, most used first: ``masks: N read as RULE``."""
        order = sorted(self.rules.items(), key=lambda kv: -kv[1])
        return [f"masks: {n} read as {rule}" for rule, n in order]


def survey_masks(paths: list[PathLike]) -> MaskSurvey:
    """Read every mask of ``paths`` (:func:`read_mask_reading`); unreadable ones are warnings."""
    from racam.data.images import ImageReadError

    rules: dict[str, int] = {}
    warnings: list[str] = []
    for path in paths:
        try:
            reading = read_mask_reading(path)
        except ImageReadError as exc:
            warnings.append(f"{exc.path}: unreadable mask: {exc.reason}")
            continue
        rules[reading.rule] = rules.get(reading.rule, 0) + 1
        warnings.extend(f"{path}: {d.kind}: {d.message}" for d in reading.doubts)
    return MaskSurvey(rules, warnings)
