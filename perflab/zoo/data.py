"""Training data for the zoo: images that ship inside installed packages, and generated ones.

Nothing is downloaded. The scikit-image photographs ``coffee``, ``chelsea`` (alias ``cat``)
and ``rocket`` are HELD OUT: scenarios and docs/zoo.md evaluate on them, so they are never
used for training or for the int8 representative dataset (``TRAINING_SOURCES`` never names
them, and :func:`training_images` refuses them).

LR inputs are made with the project's one degradation, ``perflab.quality.frames.hr_to_lr``,
applied to whole images; LR/HR training pairs are then aligned crops of the two (the
antialiased bicubic downscale is shift-invariant for crops aligned to the scale, so a crop
of the LR image is the LR of the HR crop away from image borders).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from perflab.errors import UserInputError
from perflab.quality.frames import crop_to_multiple, hr_to_lr, to_float_rgb

HELD_OUT: tuple[str, ...] = ("skimage:coffee", "skimage:chelsea", "skimage:cat", "skimage:rocket")

SKIMAGE_COLOUR = ("astronaut", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")
SKIMAGE_GRAY = ("camera", "brick", "grass", "gravel", "text", "page", "moon", "coins", "clock", "cell")
MATPLOTLIB_SAMPLES = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
N_GENERATED = 8


def _skimage_loader(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return to_float_rgb(np.asarray(getattr(skimage.data, name)()))

    return load


def _motorcycle() -> np.ndarray:
    import skimage.data

    left, _right, _disp = skimage.data.stereo_motorcycle()  # type: ignore[no-untyped-call]
    return to_float_rgb(np.asarray(left))


def _matplotlib_loader(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / fname
        with Image.open(path) as im:
            return to_float_rgb(np.asarray(im.convert("RGB")))

    return load


def _generated_loader(index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return generate_image(index)

    return load


def _sources() -> dict[str, Callable[[], np.ndarray]]:
    src: dict[str, Callable[[], np.ndarray]] = {}
    for n in SKIMAGE_COLOUR + SKIMAGE_GRAY:
        src[f"skimage:{n}"] = _skimage_loader(n)
    src["skimage:stereo_motorcycle_left"] = _motorcycle
    for f in MATPLOTLIB_SAMPLES:
        src[f"matplotlib:{f}"] = _matplotlib_loader(f)
    for i in range(N_GENERATED):
        src[f"generated:{i}"] = _generated_loader(i)
    return src


TRAINING_SOURCES: tuple[str, ...] = tuple(_sources())


def training_data_description() -> str:
    return (
        "scikit-image packaged images (" + ", ".join(SKIMAGE_COLOUR) + ", stereo_motorcycle left; grayscale "
        + ", ".join(SKIMAGE_GRAY) + " replicated to RGB), matplotlib sample_data ("
        + ", ".join(MATPLOTLIB_SAMPLES) + f"), {N_GENERATED} generated images (text, price tags, "
        "textures, gradients); held out: coffee, chelsea, rocket"
    )


def training_images(names: tuple[str, ...] = TRAINING_SOURCES) -> list[tuple[str, np.ndarray]]:
    src = _sources()
    out: list[tuple[str, np.ndarray]] = []
    for n in names:
        if n in HELD_OUT:
            raise UserInputError(f"{n} is a held-out evaluation image and must not be used for training")
        if n not in src:
            raise UserInputError(f"unknown training image {n!r}")
        out.append((n, src[n]()))
    return out


def held_out_images() -> list[tuple[str, np.ndarray]]:
    """The evaluation images (never trained on)."""
    from perflab.quality.frames import load_skimage_photo

    return [(n, load_skimage_photo(n)) for n in ("coffee", "chelsea", "rocket")]


# --------------------------------------------------------------------------- generated images

_WORDS = ("SALE", "Add to cart", "Free shipping", "Only today", "In stock", "New arrival", "Buy now",
          "Limited edition", "Best seller", "perflab", "1080p", "Super-resolution", "Price", "Details",
          "Qty 1", "Checkout", "4.5 stars", "Size M", "Colour: blue", "Ships in 24h")


def _rand_colour(rng: np.random.Generator, dark: bool | None = None) -> tuple[int, int, int]:
    lo, hi = (0, 256) if dark is None else ((0, 90) if dark else (170, 256))
    return (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))


def generate_image(index: int, size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """Deterministic synthetic HR image ``index``: e-commerce text + price tags over textures."""
    rng = np.random.default_rng(1000 + index)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # background: gradient + a texture (stripes, checker or filtered noise)
    c0 = np.array(_rand_colour(rng), dtype=np.float32) / 255
    c1 = np.array(_rand_colour(rng), dtype=np.float32) / 255
    t = (xx / w * rng.uniform(0.2, 1.0) + yy / h * rng.uniform(0.0, 0.8))[..., None]
    t = np.clip(t / t.max(), 0, 1)
    bg = c0 * (1 - t) + c1 * t
    kind = index % 3
    if kind == 0:
        period = rng.uniform(2.5, 9.0)
        angle = rng.uniform(0, np.pi)
        tex = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    elif kind == 1:
        cell = int(rng.integers(2, 8))
        tex = ((xx // cell + yy // cell) % 2).astype(np.float32)
    else:
        noise = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8))
        tex = np.asarray(noise.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))), np.float32) / 255
        tex = (tex - tex.min()) / max(float(tex.max() - tex.min()), 1e-6)
    amp = rng.uniform(0.1, 0.35)
    img = np.clip(bg + amp * (tex[..., None] - 0.5), 0, 1)
    canvas = Image.fromarray((img * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(10, 18))):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 30))
        font_px = int(rng.integers(9, 40))
        font = ImageFont.load_default(size=font_px)
        if rng.random() < 0.4:  # a price tag: filled rounded box with a price
            price = f"${rng.integers(1, 999)}.{rng.integers(0, 100):02d}"
            box_w, box_h = int(font.getlength(price)) + 16, font_px + 14
            draw.rounded_rectangle((x0, y0, x0 + box_w, y0 + box_h), radius=6,
                                   fill=_rand_colour(rng, dark=False), outline=_rand_colour(rng, dark=True),
                                   width=int(rng.integers(1, 4)))
            draw.text((x0 + 8, y0 + 5), price, fill=_rand_colour(rng, dark=True), font=font)
        else:
            draw.text((x0, y0), str(rng.choice(_WORDS)), fill=_rand_colour(rng), font=font)
    for _ in range(int(rng.integers(2, 6))):  # thin lines and rules, like page layout
        y = int(rng.integers(0, h))
        draw.line((int(rng.integers(0, w // 2)), y, int(rng.integers(w // 2, w)), y),
                  fill=_rand_colour(rng), width=int(rng.integers(1, 3)))
    return np.asarray(canvas, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------- patches


@dataclass(frozen=True)
class PairImage:
    name: str
    hr: np.ndarray  # cropped to a multiple of scale
    lr: np.ndarray
    soft: np.ndarray | None = None  # teacher output for lr (distillation), HR-sized


def make_pairs(scale: int, images: list[tuple[str, np.ndarray]] | None = None) -> list[PairImage]:
    imgs = training_images() if images is None else images
    return [PairImage(n, crop_to_multiple(hr, scale), hr_to_lr(hr, scale)) for n, hr in imgs]


def sample_patches(pairs: list[PairImage], scale: int, n: int, lr_size: int,
                   rng: np.random.Generator, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """n aligned (LR, HR) patches, LR lr_size², HR (lr_size·scale)², from random images/positions.

    Images are drawn in proportion to the square root of their area so big images do not dominate.
    """
    lr, hr, _soft = sample_patch_triples(pairs, scale, n, lr_size, rng, augment)
    return lr, hr


def sample_patch_triples(pairs: list[PairImage], scale: int, n: int, lr_size: int, rng: np.random.Generator,
                         augment: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """As :func:`sample_patches`, plus the aligned teacher-output patches when every pair has one."""
    with_soft = all(p.soft is not None for p in pairs)
    usable = [p for p in pairs if min(p.lr.shape[:2]) > lr_size + 2]
    weights = np.sqrt(np.array([p.lr.shape[0] * p.lr.shape[1] for p in usable], dtype=np.float64))
    weights /= weights.sum()
    lr_out = np.empty((n, lr_size, lr_size, 3), np.float32)
    hr_out = np.empty((n, lr_size * scale, lr_size * scale, 3), np.float32)
    soft_out = np.empty_like(hr_out) if with_soft else None
    for k in range(n):
        p = usable[int(rng.choice(len(usable), p=weights))]
        # keep one LR pixel away from the image border (the downscale renormalises there)
        y = int(rng.integers(1, p.lr.shape[0] - lr_size - 1))
        x = int(rng.integers(1, p.lr.shape[1] - lr_size - 1))
        lrp = p.lr[y:y + lr_size, x:x + lr_size]
        sl = (slice(y * scale, (y + lr_size) * scale), slice(x * scale, (x + lr_size) * scale))
        hrp = p.hr[sl]
        sp = p.soft[sl] if p.soft is not None else hrp
        if augment:
            r = int(rng.integers(0, 4))
            lrp, hrp, sp = np.rot90(lrp, r), np.rot90(hrp, r), np.rot90(sp, r)
            if rng.random() < 0.5:
                lrp, hrp, sp = lrp[:, ::-1], hrp[:, ::-1], sp[:, ::-1]
            if rng.random() < 0.3:  # colour channel permutation (gray images stay gray)
                perm = rng.permutation(3)
                lrp, hrp, sp = lrp[..., perm], hrp[..., perm], sp[..., perm]
        lr_out[k], hr_out[k] = lrp, hrp
        if soft_out is not None:
            soft_out[k] = sp
    return lr_out, hr_out, soft_out


def representative_lr(scale: int, n: int = 64, lr_size: int = 64, seed: int = 7) -> Callable[[], Iterator[list[np.ndarray]]]:
    """Representative dataset for full-integer quantisation: LR patches of real training photos."""

    def gen() -> Iterator[list[np.ndarray]]:
        photos = [s for s in TRAINING_SOURCES if not s.startswith("generated:")]
        pairs = make_pairs(scale, training_images(tuple(photos)))
        rng = np.random.default_rng(seed)
        lr, _ = sample_patches(pairs, scale, n, lr_size, rng, augment=False)
        for k in range(n):
            yield [lr[k:k + 1]]

    return gen
