"""The zoo's quality table (docs/zoo.md): every model × variant vs bicubic on the held-out images."""

from __future__ import annotations

from typing import Any

from perflab.zoo import evaluate
from perflab.zoo.registry import ModelInfo, get_artifact


def quality_rows(infos: list[ModelInfo], variants: tuple[str, ...]) -> list[dict[str, Any]]:
    """Mean PSNR-Y/SSIM-Y over coffee, chelsea and rocket, per model and shipped variant, with bicubic's."""
    from perflab.zoo.data import held_out_images

    images = held_out_images()
    bic: dict[int, evaluate.Quality] = {}
    rows: list[dict[str, Any]] = []
    for info in infos:
        if info.scale not in bic:
            bic[info.scale] = evaluate.mean_quality(
                evaluate.evaluate_tflite(get_artifact("bicubic", info.scale, "fp32").path, info.scale, images))
        sizes = info.variant_sizes()
        for v in variants:
            if not sizes.get(v):
                continue
            per_image = evaluate.evaluate_tflite(get_artifact(info.family, info.scale, v).path, info.scale, images)
            q = evaluate.mean_quality(per_image)
            b = bic[info.scale]
            rows.append({
                "name": info.name, "family": info.family, "scale": info.scale, "variant": v,
                "size_bytes": sizes[v], "params": info.params,
                "psnr_y_db": round(q.psnr_y_db, 3), "ssim_y": round(q.ssim_y, 4),
                "bicubic_psnr_y_db": round(b.psnr_y_db, 3), "bicubic_ssim_y": round(b.ssim_y, 4),
                "delta_psnr_y_db": round(q.psnr_y_db - b.psnr_y_db, 3),
                "per_image": {k: {"psnr_y_db": round(x.psnr_y_db, 3), "ssim_y": round(x.ssim_y, 4)}
                              for k, x in per_image.items()},
            })
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows of :func:`quality_rows` as a Markdown table (one line per model × variant)."""
    out = ["| model | variant | size | PSNR-Y dB | SSIM-Y | bicubic PSNR-Y | Δ PSNR-Y dB | bicubic SSIM-Y |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        size = r["size_bytes"]
        size_txt = f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"
        out.append(f"| {r['name']} | {r['variant']} | {size_txt} | {r['psnr_y_db']:.2f} | {r['ssim_y']:.4f} | "
                   f"{r['bicubic_psnr_y_db']:.2f} | {r['delta_psnr_y_db']:+.2f} | {r['bicubic_ssim_y']:.4f} |")
    return "\n".join(out) + "\n"
