"""Images to explain: bundled samples and a single loader for paths, arrays and PIL images.

Every function here returns the same thing, an ``(H, W, 3)`` ``uint8`` RGB
array, so the rest of the package never has to guess a layout. The samples
ship with scikit-image and matplotlib, so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_NAMES", "sample_image", "sample_images", "load_image", "to_uint8"]

#: Bundled photographs, each with one clear object (or person).
SAMPLE_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "grace_hopper")


def sample_image(name: str) -> np.ndarray:
    """A bundled photograph by name (see ``SAMPLE_NAMES``), as ``(H, W, 3)`` uint8 RGB."""
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            from PIL import Image

            return load_image(Image.open(f))
    if name not in SAMPLE_NAMES:
        raise ValueError(f"Unknown sample image {name!r}. Choose one of {', '.join(SAMPLE_NAMES)}.")
    import skimage.data

    return load_image(getattr(skimage.data, name)())


def sample_images(names: Iterable[str] = SAMPLE_NAMES) -> dict[str, np.ndarray]:
    """Several bundled photographs, ``{name: (H, W, 3) uint8}``."""
    return {name: sample_image(name) for name in names}


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] to uint8 0..255 (clipped, rounded); uint8 passes through. The one
    conversion every picture goes through (loading, PNG previews, GrabCut)."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.size == 0:
        raise ValueError(
            f"The image has no pixels (shape {array.shape}); pass a picture of at least 1x1 pixels."
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        hint = ""
        if array.ndim == 3 and array.shape[0] in (1, 3, 4):
            hint = " It looks channels-first: pass array.transpose(1, 2, 0)."
        elif array.ndim == 4:
            hint = " It looks like a batch: pass one image, e.g. array[0]."
        raise ValueError(
            f"Expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}.{hint}"
        )
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype == np.uint8:
        rgb = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(
                "The image holds NaN or infinite values: check how it was made, or replace "
                "them (np.nan_to_num(image)) before loading it."
            )
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"A float image must hold values in [0, 1]; this one spans [{lo:.3g}, {hi:.3g}]. "
                "Divide by 255 (for 0..255 data) or convert to uint8."
            )
        rgb = to_uint8(array)
    elif array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ValueError(
                f"An integer image must hold values in 0..255, got {array.min()}..{array.max()}."
            )
        rgb = array.astype(np.uint8) * (255 if array.dtype == np.bool_ else 1)
    else:
        raise ValueError(f"Unsupported image dtype {array.dtype}: use uint8 or float in [0, 1].")
    if rgb.shape[2] == 4:  # composite over white so transparent areas do not turn black
        alpha = rgb[:, :, 3:4].astype(np.float32) / 255.0
        rgb = np.round(rgb[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def load_image(source) -> np.ndarray:
    """Load an image from a path, a PIL image or a NumPy array, as ``(H, W, 3)`` uint8 RGB.

    Greyscale is repeated over three channels; RGBA is composited over white;
    float arrays must lie in ``[0, 1]``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No image file at {path.resolve()}.")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (0 bytes): it holds no image. Copy the picture again.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return load_image(img)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(
                f"{path} is not an image that can be read (PIL: {err.__class__.__name__}); it may "
                "be another kind of file with an image name, or cut short. Open it in an image "
                "viewer, or save it again as PNG or JPEG."
            ) from None
    try:
        from PIL import Image

        if isinstance(source, Image.Image):
            if source.mode not in ("RGB", "RGBA", "L"):
                source = source.convert("RGBA" if "A" in source.mode else "RGB")
            return _from_array(np.asarray(source))
    except ImportError:  # pragma: no cover - PIL comes with matplotlib
        pass
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if type(source).__module__.startswith("torch"):
        raise TypeError(
            "load_image takes a path, PIL image or NumPy array, not a tensor. "
            "For a model input use clf.deprocess(tensor) to get an image back."
        )
    raise TypeError(
        f"Cannot load an image from {type(source).__name__}: pass a file path, "
        "a PIL image or an (H, W, 3) NumPy array."
    )
