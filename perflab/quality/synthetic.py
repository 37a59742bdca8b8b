"""The synthetic e-commerce clip: a product page that scrolls, a ticker that crawls and a badge
that pulses, rendered natively at any size from the packaged photos (a moving test clip that
needs no file). Frames are float32 RGB in [0, 1], one at a time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from perflab.quality.frames import SKIMAGE_PHOTOS, Frame, InputError, load_skimage_photo, to_float_rgb

_PRODUCTS = (
    ("Espresso Cup Set", "coffee"),
    ("Tabby Cat Cushion", "chelsea"),
    ("Space Explorer Poster", "astronaut"),
    ("Rocket Launch Print", "rocket"),
    ("Deep Field Puzzle", "hubble_deep_field"),
    ("Stained Glass Tile", "immunohistochemistry"),
    ("Eye Chart Mug", "retina"),
)
SYNTHETIC_PHOTOS: tuple[str, ...] = tuple(dict.fromkeys(photo for _, photo in _PRODUCTS))
"""The packaged photographs (scikit-image names) the synthetic clip's product cards show."""
_WORDS = [
    "organic",
    "cotton",
    "handmade",
    "premium",
    "durable",
    "soft",
    "washable",
    "limited",
    "edition",
    "eco",
    "gift",
    "bundle",
    "classic",
    "modern",
    "compact",
    "wireless",
    "ceramic",
    "matte",
    "glossy",
    "vintage",
    "travel",
    "kitchen",
    "studio",
]


@lru_cache(maxsize=16)
def _font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size_px))


@lru_cache(maxsize=len(SKIMAGE_PHOTOS))
def _photo_u8(name: str) -> npt.NDArray[np.uint8]:
    return np.asarray(np.clip(np.rint(load_skimage_photo(name) * 255.0), 0, 255), dtype=np.uint8)


def _texture(kind: int, w: int, h: int, rng: np.random.Generator) -> Image.Image:
    """Fine textures that stress SR: gratings near Nyquist, a zone plate, 1-px checks, knit noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # zone plate (chirp): every frequency up to Nyquist
        r2 = (xx - w / 2) ** 2 + (yy - h / 2) ** 2
        g = 0.5 + 0.5 * np.cos(np.pi * r2 / (2.0 * max(w, h)))
        rgb = np.stack([g, g, g], axis=-1)
    elif kind == 1:  # diagonal fabric weave
        a = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) / 3.3)
        b = 0.5 + 0.5 * np.sin(2 * np.pi * (xx - yy) / 4.1)
        rgb = np.stack([0.35 + 0.5 * a * b, 0.25 + 0.4 * a, 0.55 + 0.4 * b], axis=-1)
    elif kind == 2:  # 1-px checks and 2-px stripes
        c = ((xx.astype(np.int32) + yy.astype(np.int32)) % 2).astype(np.float32)
        s = ((xx.astype(np.int32) // 2) % 2).astype(np.float32)
        m = np.where(yy < h / 2, c, s)
        rgb = np.stack([m, 0.2 + 0.6 * m, 1.0 - 0.7 * m], axis=-1)
    else:  # knit: smoothed seeded noise
        n = rng.random((h, w, 3), dtype=np.float32)
        n = (n + np.roll(n, 1, axis=0) + np.roll(n, 1, axis=1)) / 3.0
        rgb = 0.3 + 0.6 * n
    return Image.fromarray(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8), mode="RGB")


def _gradient(
    w: int, h: int, c0: tuple[int, int, int], c1: tuple[int, int, int], vertical: bool
) -> Image.Image:
    t = np.linspace(0.0, 1.0, h if vertical else w, dtype=np.float32)
    line = np.asarray(c0, np.float32) * (1 - t[:, None]) + np.asarray(c1, np.float32) * t[:, None]
    arr = (
        np.broadcast_to(line[:, None, :], (h, w, 3))
        if vertical
        else np.broadcast_to(line[None, :, :], (h, w, 3))
    )
    return Image.fromarray(np.rint(arr).astype(np.uint8), mode="RGB")


@dataclass(frozen=True)
class _Page:
    image: Image.Image
    ticker: str


@lru_cache(maxsize=2)
def _render_page(width: int, height: int, seed: int) -> _Page:
    """The tall shop page the clip scrolls over (rendered once per clip)."""
    rng = np.random.default_rng(seed)
    s = width / 1920.0

    def px(v: float) -> int:
        return max(1, round(v * s))

    cols = 4
    margin = px(40)
    card_w = (width - margin * (cols + 1)) // cols
    card_h = px(680)
    rows = 4
    header_h = px(140)
    banner_h = px(220)
    swatch_h = px(300)
    page_h = max(height * 2, header_h + banner_h + rows * (card_h + margin) + swatch_h + 3 * margin)

    page = _gradient(width, page_h, (246, 247, 250), (226, 230, 238), vertical=True)
    d = ImageDraw.Draw(page)

    # header: logo, search box, navigation
    d.rectangle((0, 0, width, header_h), fill=(24, 38, 74))
    d.text((margin, px(38)), "perflab shop", font=_font(px(54)), fill=(255, 204, 0))
    sx0, sx1 = px(520), width - px(560)
    d.rounded_rectangle((sx0, px(40), sx1, px(100)), radius=px(12), fill=(255, 255, 255))
    d.text((sx0 + px(20), px(56)), "Search 12,480 products…", font=_font(px(26)), fill=(140, 140, 150))
    for i, label in enumerate(("Deals", "New", "Gifts", "Cart (3)")):
        d.text((width - px(520) + i * px(125), px(54)), label, font=_font(px(28)), fill=(230, 235, 255))

    # banner: smooth gradients (banding) and large text
    y = header_h + margin
    page.paste(
        _gradient(width - 2 * margin, banner_h, (255, 94, 58), (124, 58, 237), vertical=False), (margin, y)
    )
    d.text((margin + px(40), y + px(40)), "SUMMER SALE  -40%", font=_font(px(90)), fill=(255, 255, 255))
    d.text(
        (margin + px(44), y + px(150)),
        "Free shipping on orders over $35 · Returns within 30 days · Code SR2X",
        font=_font(px(30)),
        fill=(255, 240, 220),
    )
    y += banner_h + margin

    # product grid
    photo_h = int(card_h * 0.5)
    for r in range(rows):
        for c in range(cols):
            x0 = margin + c * (card_w + margin)
            y0 = y + r * (card_h + margin)
            title, photo = _PRODUCTS[int(rng.integers(len(_PRODUCTS)))]
            d.rounded_rectangle(
                (x0 + px(4), y0 + px(6), x0 + card_w + px(4), y0 + card_h + px(6)),
                radius=px(16),
                fill=(205, 208, 215),
            )  # shadow
            d.rounded_rectangle(
                (x0, y0, x0 + card_w, y0 + card_h),
                radius=px(16),
                fill=(255, 255, 255),
                outline=(220, 222, 228),
                width=px(2),
            )
            img = Image.fromarray(_photo_u8(photo), mode="RGB")
            iw, ih = img.size
            crop_w = min(iw, int(ih * card_w / photo_h))
            cx = int(rng.integers(0, iw - crop_w + 1))
            img = img.crop((cx, 0, cx + crop_w, ih)).resize(
                (card_w - 2 * px(12), photo_h), Image.Resampling.LANCZOS
            )
            page.paste(img, (x0 + px(12), y0 + px(12)))
            ty = y0 + photo_h + px(26)
            d.text((x0 + px(16), ty), title, font=_font(px(32)), fill=(20, 20, 28))
            desc = " ".join(str(rng.choice(_WORDS)) for _ in range(5))
            d.text((x0 + px(16), ty + px(44)), desc, font=_font(px(17)), fill=(90, 92, 100))
            d.text(
                (x0 + px(16), ty + px(66)),
                f"SKU {int(rng.integers(10**7, 10**8))} · in stock",
                font=_font(px(13)),
                fill=(120, 122, 130),
            )
            # stars
            stars = int(rng.integers(3, 6))
            for k in range(5):
                cxs, cys, rr = x0 + px(28) + k * px(30), ty + px(108), px(11)
                pts = [
                    (
                        cxs + (rr if j % 2 == 0 else rr * 0.45) * math.sin(j * math.pi / 5),
                        cys - (rr if j % 2 == 0 else rr * 0.45) * math.cos(j * math.pi / 5),
                    )
                    for j in range(10)
                ]
                d.polygon(pts, fill=(255, 180, 0) if k < stars else (210, 210, 215))
            # price tag, old price struck through
            cents = int(rng.integers(199, 19999))
            price = f"${cents // 100}.{cents % 100:02d}"
            old = f"${int(cents * 1.4) // 100}.{int(cents * 1.4) % 100:02d}"
            py = ty + px(140)
            tag_w = px(40) + int(d.textlength(price, font=_font(px(38))))
            d.rounded_rectangle(
                (x0 + px(16), py, x0 + px(16) + tag_w, py + px(58)), radius=px(10), fill=(214, 32, 40)
            )
            d.text((x0 + px(36), py + px(8)), price, font=_font(px(38)), fill=(255, 255, 255))
            ox = x0 + px(32) + tag_w
            d.text((ox, py + px(16)), old, font=_font(px(24)), fill=(130, 130, 138))
            ow = int(d.textlength(old, font=_font(px(24))))
            d.line((ox, py + px(31), ox + ow, py + px(31)), fill=(130, 130, 138), width=px(2))
            # add-to-cart button with a gradient
            by = y0 + card_h - px(70)
            btn = _gradient(card_w - 2 * px(16), px(52), (255, 216, 20), (255, 164, 28), vertical=True)
            page.paste(btn, (x0 + px(16), by))
            d.text(
                (x0 + card_w // 2 - px(70), by + px(12)), "Add to cart", font=_font(px(26)), fill=(30, 30, 30)
            )
    y += rows * (card_h + margin)

    # fabric swatches: fine textures
    sw = (width - margin * 5) // 4
    for k in range(4):
        page.paste(_texture(k, sw, swatch_h - px(60), rng), (margin + k * (sw + margin), y + px(50)))
    d.text((margin, y), "Fabric swatches: weave, knit, micro-check", font=_font(px(30)), fill=(40, 40, 48))

    ticker = (
        "  ·  ".join(f"{t} now {int(rng.integers(10, 70))}% off" for t, _ in _PRODUCTS)
        + "  ·  Price match guarantee  ·  "
    )
    return _Page(image=page, ticker=ticker)


def synthetic_frame(
    index: int, *, fps: float = 30.0, width: int = 1920, height: int = 1080, seed: int = 0
) -> npt.NDArray[np.float32]:
    """Frame ``index`` of the synthetic clip, float32 RGB in [0, 1], ``height``×``width``×3.

    Motion, in page pixels per second (so the clip looks the same at any fps): the page scrolls
    at 180 px/s and back (ping-pong), a ticker crawls at 240 px/s, a sale badge pulses at 1 Hz.
    """
    page = _render_page(width, height, seed)
    s = width / 1920.0
    t = index / fps
    span = page.image.height - height
    travel = round(180.0 * s * t) % (2 * span) if span > 0 else 0
    top = travel if travel <= span else 2 * span - travel
    frame = page.image.crop((0, top, width, top + height))
    d = ImageDraw.Draw(frame)

    # ticker bar fixed at the bottom
    bar_h = max(8, round(56 * s))
    d.rectangle((0, height - bar_h, width, height), fill=(16, 16, 20))
    font = _font(max(6, round(30 * s)))
    text_w = max(1, int(d.textlength(page.ticker, font=font)))
    x = -round(240.0 * s * t) % text_w
    for k in (-1, 0, 1):
        d.text((x + k * text_w, height - bar_h + int(10 * s)), page.ticker, font=font, fill=(255, 230, 120))

    # pulsing badge, top right
    r = round((70 + 10 * math.sin(2 * math.pi * t)) * s)
    cx, cy = width - round(140 * s), round(220 * s)
    d.ellipse(
        (cx - r, cy - r, cx + r, cy + r),
        fill=(220, 20, 60),
        outline=(255, 255, 255),
        width=max(1, int(4 * s)),
    )
    bfont = _font(max(6, round(r * 0.55)))
    label = "-40%"
    lw = d.textlength(label, font=bfont)
    d.text((cx - lw / 2, cy - r * 0.33), label, font=bfont, fill=(255, 255, 255))
    return to_float_rgb(np.asarray(frame))


def iter_synthetic_frames(
    n_frames: int, *, fps: float = 30.0, width: int = 1920, height: int = 1080, seed: int = 0
) -> Iterator[Frame]:
    """The synthetic clip, rendered natively at ``width``×``height`` one frame at a time."""
    if n_frames < 1 or not fps > 0 or width < 64 or height < 64:
        raise InputError(f"bad synthetic clip: {n_frames} frames, {fps} fps, {width}×{height}")
    for i in range(n_frames):
        yield Frame(
            name=f"synthetic-s{seed}-{i:06d}",
            hr=synthetic_frame(i, fps=fps, width=width, height=height, seed=seed),
            sequence=f"synthetic-s{seed}",
        )
