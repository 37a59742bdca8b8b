"""The split planner's page (issue 23): ``plan.json`` in, one self-contained HTML page out. Pure.

Per model: the Pareto plot (latency vs PSNR-Y) with the exact front, all-fp32, all-int8, the
relaxed baseline's plan and the chosen exact plan — predicted (hollow) and measured (filled),
joined by a line, so an optimistic prediction shows as a long segment; the second plot, latency
vs PIQE (no reference, lower is better) of the executed plans, in the same style (PIQE has no
additive proxy: hollow is the predicted latency at the measured PIQE; the step line is the
executed plans' measured front); the layer map of every executed plan; the table of predicted vs
measured latency and quality with the errors and the 10% check, and why each plan that misses it
does; and the measured inputs (per-unit cost per precision, switch costs, sensitivities) with
their spread.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from perflab.report.pareto import pareto_front
from perflab.report.plots import drawing

_COLOURS = {"fp32": "#2563eb", "int8": "#f59e0b", "gpu": "#2563eb", "npu": "#f59e0b"}
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111827;max-width:72rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #e5e7eb;padding:.2rem .5rem;
text-align:right}th{background:#f9fafb}td.l,th.l{text-align:left}.unit{text-align:center;font-family:monospace}
.warn{color:#b45309}.muted{color:#6b7280}.chosen{font-weight:600}.ok{color:#047857}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _num(v: object, fmt: str = ".2f", suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return '<span class="muted">—</span>'
    return f"{float(v):{fmt}}{suffix}"  # type: ignore[arg-type]


_STYLES = {"all-fp32": ("#2563eb", "s"), "all-int8": ("#f59e0b", "s"), "relaxed baseline": ("#dc2626", "^"),
           "exact (chosen)": ("#059669", "o"), "exact front": ("#6b7280", ".")}


def _role(p: Mapping[str, Any]) -> str:
    return next((r for r in _STYLES if r in p["roles"] and r != "exact front"), "exact front")


def _png(fig: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _executed_points(ax: Any, model: Mapping[str, Any], quality: str) -> None:
    """Every executed plan: hollow at the latency predicted when chosen, filled at the measured,
    joined. ``quality`` "psnr_y_db": the proxy's PSNR-Y → the measured; "piqe": the measured PIQE
    at both ends (PIQE has no proxy); a plan without a PIQE is left out of that plot."""
    seen: set[str] = set()
    for p in model["plans"]:
        my = p["measured"].get(quality)
        if my is None:
            continue
        role = _role(p)
        colour, marker = _STYLES[role]
        # hollow: the prediction the plan was chosen on (the front's numbers); the table has both
        px = p["predicted"].get("first_pass_latency_ms") or p["predicted"]["latency_ms"]
        py = p["predicted"]["psnr_y_db"] if quality == "psnr_y_db" else my
        mx = p["measured"]["latency_ms"]
        ax.plot([px, mx], [py, my], color=colour, lw=0.8, alpha=0.6)
        ax.scatter([px], [py], marker=marker, facecolors="none", edgecolors=colour, s=40)
        ax.scatter([mx], [my], marker=marker, color=colour, s=40,
                   label=None if role in seen else f"{role} (measured; hollow: predicted when chosen)")
        seen.add(role)
        ax.annotate(p["label"], (mx, my), fontsize=7, xytext=(3, 3), textcoords="offset points")


def _finish_plan_plot(fig: Any, ax: Any, model: Mapping[str, Any], quality: str, *, ylabel: str, versus: str,
                      ref: float | None, ref_colour: str, ref_label: str) -> bytes:
    """The split-plan plots' one style (PSNR-Y and PIQE alike), drawn after each plot's own front:
    the executed plans (:func:`_executed_points`), a dotted reference line where the model has one
    (``ref_label`` a format for its value), latency per frame on x, and the PNG."""
    _executed_points(ax, model, quality)
    if ref is not None:
        ax.axhline(ref, color=ref_colour, ls=":", lw=1, label=ref_label.format(ref))
    ax.set_xlabel("latency per frame (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{model['model']}: latency vs {versus} of split plans")
    ax.legend(loc="best")
    return _png(fig)


def pareto_png(model: Mapping[str, Any]) -> bytes:
    """Latency (x) vs PSNR-Y (y): the front as a step line, executed plans predicted (when chosen)
    → measured."""
    import matplotlib.pyplot as plt

    with drawing():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        front = sorted(model["front"], key=lambda f: f["latency_ms"])
        if front:
            ax.step([f["latency_ms"] for f in front], [f["psnr_y_db"] for f in front], where="post",
                    color="#9ca3af", lw=1, label="exact Pareto front (predicted)")
            ax.scatter([f["latency_ms"] for f in front], [f["psnr_y_db"] for f in front], s=12, color="#9ca3af")
        return _finish_plan_plot(fig, ax, model, "psnr_y_db", ylabel="PSNR-Y (dB)", versus="quality",
                                 ref=model.get("quality_floor_db"), ref_colour="#059669",
                                 ref_label="quality floor {:.2f} dB")


def piqe_front(plans: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The executed plans no other executed plan beats on both measured latency and measured PIQE
    (lower is better on both: the front of (latency, −PIQE) by perflab.report.pareto), by latency."""
    pts = [p for p in plans if p["measured"].get("piqe") is not None
           and math.isfinite(float(p["measured"]["piqe"])) and math.isfinite(float(p["measured"]["latency_ms"]))]
    return [pts[i] for i in pareto_front([(float(p["measured"]["latency_ms"]), -float(p["measured"]["piqe"]))
                                          for p in pts])]


def piqe_png(model: Mapping[str, Any]) -> bytes:
    """Latency (x) vs PIQE (y, lower is better) of the executed plans, in the PSNR-Y plot's style:
    PIQE is measured only (no proxy), so the step line is the executed plans' measured front."""
    import matplotlib.pyplot as plt

    with drawing():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        front = piqe_front(model["plans"])
        if front:
            ax.step([p["measured"]["latency_ms"] for p in front], [p["measured"]["piqe"] for p in front],
                    where="post", color="#9ca3af", lw=1, label="front of the executed plans (measured)")
        return _finish_plan_plot(fig, ax, model, "piqe", ylabel="PIQE (no reference; lower is better)",
                                 versus="PIQE", ref=model.get("hr_piqe"), ref_colour="#6b7280",
                                 ref_label="the HR frames' own PIQE {:.1f}")


def _layer_map(model: Mapping[str, Any]) -> str:
    units: Sequence[str] = model["units"]
    head = "".join(f'<th class="unit">{_e(u)}</th>' for u in units)
    rows = []
    for p in model["plans"]:
        cells = "".join(f'<td class="unit" style="background:{_COLOURS.get(proc, "#e5e7eb")}33">{_e(proc)}</td>'
                        for proc in p["processors"])
        cls = ' class="chosen"' if p["label"] == model["chosen"] else ""
        rows.append(f'<tr{cls}><td class="l">{_e(p["label"])}</td><td class="l">{_e(", ".join(p["roles"]))}</td>'
                    f"{cells}</tr>")
    return (f'<table><tr><th class="l">plan</th><th class="l">role</th>{head}</tr>{"".join(rows)}</table>')


def _plans_table(model: Mapping[str, Any]) -> str:
    rows = []
    for p in model["plans"]:
        pr, me, er = p["predicted"], p["measured"], p["error"]
        se = pr.get("latency_se_ms")
        err = er.get("latency_pct")
        warn = ' class="warn"' if err is not None and abs(err) > 10 else ""
        lc = p.get("latency_check") or {}
        within = lc.get("within_10pct")
        verdict = ('<span class="muted">—</span>' if within is None else
                   '<span class="ok">yes</span>' if within else '<span class="warn">no</span>')
        rows.append(
            f'<tr><td class="l">{_e(p["label"])}</td><td class="l">{_e(", ".join(p["roles"]))}</td>'
            f"<td>{_num(pr.get('first_pass_latency_ms'), '.2f')}</td>"
            f"<td>{_num(pr['latency_ms'], '.2f')}{'' if se is None else ' ± ' + _num(se, '.2f')}</td>"
            f"<td>{_num(me['latency_ms'], '.2f')} (MAD {_num(me.get('latency_mad_ms'), '.2f')})</td>"
            f"<td{warn}>{_num(err, '+.1f', ' %') if err is not None or not er.get('why_missing') else _e(er['why_missing'])}</td>"
            f"<td>{verdict}</td>"
            f"<td>{_num(pr['psnr_y_db'], '.2f')}</td><td>{_num(me['psnr_y_db'], '.2f')}</td>"
            f"<td>{_num(er.get('psnr_y_db'), '+.2f')}</td><td>{_num(me.get('ssim_y'), '.4f')}</td>"
            f"<td{_piqe_title(me)}>{_num(me.get('piqe'), '.1f')}</td></tr>")
    return ('<table class="plans"><tr><th class="l">plan</th><th class="l">role</th><th>predicted ms (when chosen)</th>'
            "<th>predicted ms (inputs timed in the same rounds)</th><th>measured ms</th>"
            "<th>latency error</th><th>within 10%</th><th>proxy PSNR-Y dB</th><th>measured PSNR-Y dB</th>"
            "<th>PSNR error dB</th>"
            f"<th>SSIM-Y</th><th>PIQE (lower is better)</th></tr>{''.join(rows)}</table>")


def _piqe_title(measured: Mapping[str, Any]) -> str:
    why = measured.get("piqe_missing")
    return f' title="PIQE not measured: {_e(why)}"' if why else ""


def _reasons(model: Mapping[str, Any]) -> str:
    """Why each executed plan that is not within 10% of its prediction is not (plan_check)."""
    items = []
    for p in model["plans"]:
        lc = p.get("latency_check") or {}
        if lc.get("within_10pct") is True or not lc.get("reason"):
            continue
        items.append(f'<li data-plan="{_e(p["label"])}"><b>{_e(p["label"])}</b> '
                     f"({_num(lc.get('error_pct'), '+.1f', ' %')}): {_e(lc['reason'])}</li>")
    return f'<ul class="latency-reasons">{"".join(items)}</ul>' if items else ""


def _inputs_table(model: Mapping[str, Any]) -> str:
    inp = model["inputs"]
    procs: Sequence[str] = model["processors"]
    sens = {r["unit"]: r for r in inp.get("sensitivity", [])}
    rows = []
    for i, u in enumerate(model["units"]):
        piqe = f"<td>{_num(sens.get(u, {}).get('piqe_change'), '+.2f')}</td>"
        cost = "".join(f"<td>{_num(inp['cost_ms'][i][p], '.3f')} ± {_num(inp['cost_se_ms'][i][p], '.3f')}</td>"
                       for p in range(len(procs)))
        loss = "".join(f"<td>{_num(inp['loss_db'][i][p], '.3f')}</td>" for p in range(len(procs)))
        if i == 0:
            sw = '<td colspan="2" class="muted">(first unit)</td>'
        else:
            sm, ss = inp["switch_ms"][i - 1], inp["switch_se_ms"][i - 1]
            sw = (f"<td>{_num(sm[0][1], '.3f')} ± {_num(ss[0][1], '.3f')}</td>"
                  f"<td>{_num(sm[1][0], '.3f')} ± {_num(ss[1][0], '.3f')}</td>") if len(procs) == 2 else \
                '<td colspan="2">see plan.json</td>'
        rows.append(f'<tr><td class="l">{_e(u)}</td>{cost}{sw}{loss}{piqe}</tr>')
    ph = "".join(f"<th>cost {_e(p)} ms</th>" for p in procs)
    lh = "".join(f"<th>PSNR-Y loss {_e(p)} dB</th>" for p in procs)
    sw_head = (f"<th>switch before, {_e(procs[0])}→{_e(procs[1])} ms</th>"
               f"<th>switch before, {_e(procs[1])}→{_e(procs[0])} ms</th>") if len(procs) == 2 else \
        '<th colspan="2">switch</th>'
    method = inp.get("method", {})
    notes = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in method.items())
    piqe_head = ('<th title="the change in PIQE (no reference, lower is better) when only this unit runs in the '
                 'second precision; measured, not a solver input">PIQE change, this unit alone in '
                 f'{_e(procs[-1])}</th>')
    return (f'<table><tr><th class="l">unit</th>{ph}{sw_head}{lh}{piqe_head}</tr>{"".join(rows)}</table>'
            f'<ul class="muted">{notes}</ul>')


def _check_note(model: Mapping[str, Any]) -> str:
    """The 10% check in one line: how many executed plans hold it (their reasons follow the table)."""
    summ = model.get("latency_check")
    if summ is None:  # a plan.json from before the per-plan check: the errors alone
        worse = [p for p in model["plans"] if p["error"].get("latency_pct") is not None
                 and abs(p["error"]["latency_pct"]) > 10]
        return (f'<p class="warn">{len(worse)} of {len(model["plans"])} plans measured more than 10% away from '
                "their prediction.</p>") if worse else ""
    cls = "warn" if summ["not_within"] or summ["not_judged"] else "ok"
    txt = (f'{summ["within"]} of {summ["plans"]} executed plans measured within {summ["threshold_pct"]:g}% of their '
           "prediction (from the input variants timed in the same rounds)")
    if summ["not_within"]:
        txt += (f'; {summ["not_within"]} not ({summ["unexplained"]} unexplained by the figures measured): why, '
                "plan by plan, below the table")
    if summ["not_judged"]:
        txt += f'; {summ["not_judged"]} not judged (no prediction above 0 ms)'
    return f'<p class="{cls} latency-check">{_e(txt)}.</p>'


def _piqe_part(model: Mapping[str, Any]) -> str:
    """The latency vs PIQE plot and the reference PIQEs, or why there is no PIQE."""
    has = [p for p in model["plans"] if p["measured"].get("piqe") is not None]
    if not has:
        why = next((p["measured"].get("piqe_missing") for p in model["plans"] if p["measured"].get("piqe_missing")),
                   None) or "this plan.json has no PIQE"
        return f'<p class="muted">No latency vs PIQE plot: PIQE not measured ({_e(why)}).</p>'
    png = base64.b64encode(piqe_png(model)).decode()
    return (f'<img alt="Latency vs PIQE of {_e(model["model"])}" src="data:image/png;base64,{png}">'
            f'<p class="muted">PIQE: no-reference, lower is better, on the whole output rounded to 8 bits (as a '
            f"run's cells); mean over the frames. All-fp32 {_num(model.get('reference_piqe'), '.1f')}, the HR frames "
            f"themselves {_num(model.get('hr_piqe'), '.1f')}. It has no additive proxy and is not a solver input: "
            "each plan is placed at its measured PIQE, hollow at the latency predicted when chosen.</p>")


def model_section(model: Mapping[str, Any], emulated: bool) -> str:
    png = base64.b64encode(pareto_png(model)).decode()
    tag = " (emulated)" if emulated else ""
    base = model["baseline"]
    noise = model.get("noise_floor_pct") or {}
    floor_txt = "; ".join(f"{_e(k)} {_num(v, '+.1f', ' %')}" for k, v in noise.items())
    note = _check_note(model)
    if noise:
        note += (f"<p>Noise floor — the whole model timed twice in the same rounds (two interpreters of one "
                 f"file) differs by: {floor_txt}. Errors of that size are the machine's, not the model's.</p>")
    return (
        f"<h2>{_e(model['model'])}{tag}</h2>"
        f"<p>{len(model['units'])} units on {_e(', '.join(model['processors']))}; timed at "
        f"{model['geometry']['lr_width']}×{model['geometry']['lr_height']}; quality on "
        f"{len(model['frames'])} frame(s). All-fp32 PSNR-Y {_num(model['reference_psnr_y_db'])} dB; quality floor "
        f"{_num(model['quality_floor_db'])} dB (loss budget {_num(model['loss_budget_db'], '.3f')} dB). "
        f"Chosen exact plan: <b>{_e(model['chosen'])}</b>; FYE-SR relaxed baseline: <b>{_e(base['label'])}</b>"
        f"{'' if base['meets_floor'] else ' (misses the floor)'}. Exact front: {len(model['front'])} plan(s).</p>"
        f'<img alt="Pareto plot of {_e(model["model"])}" src="data:image/png;base64,{png}">'
        f"{_piqe_part(model)}"
        f"<h3>Layer map</h3>{_layer_map(model)}"
        f"<h3>Predicted vs measured</h3>{note}{_plans_table(model)}{_reasons(model)}"
        f"<h3>Measured inputs</h3>{_inputs_table(model)}"
    )


def plan_page_html(doc: Mapping[str, Any]) -> str:
    emulated = bool(doc.get("emulated"))
    where = doc["device"] if not doc.get("device_model") else f"{doc['device']} ({doc['device_model']})"
    title = f"perflab plan: {doc['scenario']} on {where}{' (emulated)' if emulated else ''}"
    skipped = "".join(f"<li>{_e(s['model'])}: {_e(s['reason'])}</li>" for s in doc.get("skipped", []))
    body = "".join(model_section(m, emulated) for m in doc["models"])
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{_e(title)}</title><style>{_CSS}</style>"
            f"</head><body><h1>{_e(title)}</h1><p class=\"muted\">{_e(doc.get('started', ''))} · schema "
            f"{_e(doc['schema'])} · plans as JSON: plan.json</p>"
            + (f"<h2>Not planned</h2><ul>{skipped}</ul>" if skipped else "")
            + body + "</body></html>\n")
