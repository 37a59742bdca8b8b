"""The device catalog behind matrix coverage: which phones our users have, and their shares.

Three input shapes, recognised from the file itself (pure parsing, ``load_catalog`` reads):

* **perflab catalog CSV** — ``manufacturer,model,name,model_code,soc,gpu,share_pct``
  (``name``/``model_code``/``gpu`` optional), with a ``# source: …`` line saying where the shares
  come from (required) and ``# example: yes`` for made-up data (shown as EXAMPLE everywhere).
* **Play Console device-catalog export** (CSV; recognised by its ``Model Name`` and
  ``System on Chip`` columns). Columns relied on: ``Manufacturer``, ``Model Name``,
  ``System on Chip``; used when present: ``Model Code``, ``GPU``, and one share column —
  a percentage (``Share %``, ``Share``, ``Installs share``, ``User share``) or a count
  (``Installs``, ``Installed audience``, ``Active devices``, ``Devices``) turned into shares.
  The export itself lists devices, not users: without a share column it is refused (exit 2).
  Other columns (``RAM (TotalMem)``, ``Form Factor``, ``ABIs``, ``Android SDK Versions``…)
  are ignored.
* **plain list** — one device a line: ``12.5% Pixel 7 (GS201)`` or ``Pixel 7 (GS201): 12.5%``
  (the SoC in brackets is optional; without it the device can only be covered by measuring it).

Shares that do not sum to ≈100% are normalised with a warning that says so; a duplicate device,
a share that is not a number ≥ 0, or no share column are one-line UserInputErrors (exit 2).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from perflab.errors import SourceLocation, UserInputError

SHARE_SUM_TOLERANCE_PCT = 0.5
MAX_CATALOG_BYTES = 64 << 20

# A small table of SoC names seen in props, catalogs and marketing → one key. Names not in it are
# compared as written (case, spaces, dashes and vendor words ignored). Sources: vendors' spec pages.
_SOC_ALIASES: dict[str, str] = {
    "kalama": "SM8550", "snapdragon8gen2": "SM8550", "sm8550ab": "SM8550", "sm8550ac": "SM8550",
    "taro": "SM8450", "snapdragon8gen1": "SM8450",
    "pineapple": "SM8650", "snapdragon8gen3": "SM8650",
    "lahaina": "SM8350", "snapdragon888": "SM8350",
    "gs101": "GS101", "tensor": "GS101", "tensorg1": "GS101",
    "gs201": "GS201", "tensorg2": "GS201",
    "mt6877vttza": "MT6877V", "mt6877vza": "MT6877V", "dimensity1080": "MT6877V",
}
_VENDOR_WORDS = ("qualcomm", "qti", "mediatek", "google", "samsung", "hisilicon", "unisoc")
_UNKNOWN = {"", "unknown", "-", "—", "n/a", "na", "none", "?"}


def soc_key(text: str | None) -> str | None:
    """A SoC name → the key two names must share to be the same chip; None when unknown."""
    if text is None:
        return None
    t = text.strip().casefold()
    if t in _UNKNOWN:
        return None
    for w in _VENDOR_WORDS:
        t = re.sub(rf"\b{w}\b", " ", t)
    compact = re.sub(r"[\s\-_/().,®™]+", "", t)
    if not compact:
        return None
    return _SOC_ALIASES.get(compact, compact.upper())


def gpu_key(text: str | None) -> str | None:
    if text is None or text.strip().casefold() in _UNKNOWN:
        return None
    return re.sub(r"[\s\-_]+", "", text.strip().casefold()) or None


def device_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CatalogRow:
    line: int
    manufacturer: str
    model: str  # matched against the phone's ro.product.model
    name: str  # display name (marketing name where known)
    model_code: str | None
    soc: str | None
    gpu: str | None
    share_pct: float  # after normalisation

    @property
    def soc_key(self) -> str | None:
        return soc_key(self.soc)

    @property
    def gpu_key(self) -> str | None:
        return gpu_key(self.gpu)

    def matches(self, device_model: str | None) -> bool:
        if not device_model:
            return False
        k = device_key(device_model)
        return any(k == device_key(x) for x in (self.model, self.name, self.model_code or "") if x)


@dataclass(frozen=True)
class Catalog:
    file: str
    fmt: str  # "perflab catalog" / "Play Console export" / "plain list"
    source: str  # where the shares come from, as the file says
    example: bool  # made-up data: labelled EXAMPLE wherever it shows
    rows: tuple[CatalogRow, ...]
    share_sum_raw_pct: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def row_for(self, device_model: str | None) -> CatalogRow | None:
        """The catalog row a phone with this ro.product.model is (by model, name or model code)."""
        if not device_model:
            return None
        index = self.__dict__.get("_index")
        if index is None:
            index = {}
            for r in reversed(self.rows):  # the first row wins
                for x in (r.model, r.name, r.model_code or ""):
                    if x:
                        index[device_key(x)] = r
            object.__setattr__(self, "_index", index)
        row: CatalogRow | None = index.get(device_key(device_model))
        return row

    def to_csv(self) -> str:
        """The catalog in perflab's own format (what ``--catalog`` imported, normalised)."""
        buf = io.StringIO()
        buf.write(f"# source: {self.source}\n")
        if self.example:
            buf.write("# example: yes — EXAMPLE data, not market data\n")
        buf.write(f"# imported from {self.file} ({self.fmt})\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["manufacturer", "model", "name", "model_code", "soc", "gpu", "share_pct"])
        for r in self.rows:
            w.writerow([r.manufacturer, r.model, r.name, r.model_code or "", r.soc or "", r.gpu or "",
                        f"{r.share_pct:.6g}"])
        return buf.getvalue()


@dataclass
class _Raw:
    line: int
    manufacturer: str
    model: str
    name: str
    model_code: str | None
    soc: str | None
    gpu: str | None
    share: float


_PERCENT_COLS = ("share_pct", "share %", "share", "share (%)", "installs share", "user share", "% of users")
_COUNT_COLS = ("installs", "installed audience", "active devices", "devices", "users")


def _number(text: str, loc: SourceLocation) -> float:
    t = text.strip().replace(",", "").removesuffix("%").strip()
    try:
        v = float(t)
    except ValueError:
        raise UserInputError(f"{text.strip()[:40]!r} is not a number", loc) from None
    if not (v >= 0.0) or v == float("inf"):
        raise UserInputError(f"{text.strip()[:40]!r} must be a finite number ≥ 0", loc)
    return v


def _comments(text: str) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """Non-comment lines (with their 1-based numbers) and ``# key: value`` comment fields."""
    body: list[tuple[int, str]] = []
    meta: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#\s*([A-Za-z_ ]+?)\s*:\s*(.*)$", s)
            if m:
                meta.setdefault(m.group(1).strip().casefold(), m.group(2).strip())
            continue
        if s:
            body.append((i, line))
    return body, meta


def _csv_rows(file: str, body: list[tuple[int, str]]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        parsed = [(n, next(csv.reader([line]))) for n, line in body]
    except csv.Error as exc:
        raise UserInputError(f"not CSV: {exc}", SourceLocation(file, None, None)) from None
    header = [h.strip() for h in parsed[0][1]]
    return header, parsed[1:]


def _col(header: list[str], *names: str) -> int | None:
    low = [h.casefold() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def _from_table(file: str, header: list[str], rows: list[tuple[int, list[str]]], play: bool,
                header_line: int) -> tuple[list[_Raw], str]:
    if play:
        c_man, c_model = _col(header, "manufacturer"), _col(header, "model name")
        c_name, c_code = c_model, _col(header, "model code")
        c_soc, c_gpu = _col(header, "system on chip", "soc"), _col(header, "gpu")
    else:
        c_man, c_model = _col(header, "manufacturer"), _col(header, "model", "device model")
        c_name, c_code = _col(header, "name", "marketing name"), _col(header, "model_code", "model code")
        c_soc, c_gpu = _col(header, "soc", "system on chip"), _col(header, "gpu")
    c_pct, c_count = _col(header, *_PERCENT_COLS), _col(header, *_COUNT_COLS)
    hloc = SourceLocation(file, header_line, None)
    if c_model is None:
        raise UserInputError("no device model column (expected 'model' or 'Model Name')", hloc)
    if c_pct is None and c_count is None:
        what = ("a Play Console device-catalog export lists devices, not users: add a share column "
                "('Share %' or 'Installs', e.g. from Statistics → installs by device)" if play else
                "add a 'share_pct' column")
        raise UserInputError(f"no share column: {what}", hloc)
    share_col = c_pct if c_pct is not None else c_count
    assert share_col is not None
    out: list[_Raw] = []
    for n, r in rows:
        def get(i: int | None, row: list[str] = r) -> str:
            return row[i].strip() if i is not None and i < len(row) else ""
        model = get(c_model)
        if not model:
            raise UserInputError("empty device model", SourceLocation(file, n, header[c_model]))
        share = _number(get(share_col), SourceLocation(file, n, header[share_col]))
        out.append(_Raw(n, get(c_man), model, get(c_name) or model, get(c_code) or None,
                        get(c_soc) or None, get(c_gpu) or None, share))
    if c_pct is None:  # counts → percentages
        total = sum(x.share for x in out)
        for x in out:
            x.share = 100.0 * x.share / total if total > 0 else 0.0
    return out, header[share_col]


_PLAIN = re.compile(r"^\s*(?:(?P<pre>[\d.,]+)\s*%\s+(?P<a>.+?)|(?P<b>.+?)\s*[:=\t,]?\s+(?P<post>[\d.,]+)\s*%)\s*$")


def _from_plain(file: str, body: list[tuple[int, str]]) -> list[_Raw]:
    out: list[_Raw] = []
    for n, line in body:
        m = _PLAIN.match(line)
        loc = SourceLocation(file, n, "share")
        if not m:
            raise UserInputError("expected '12.5% Model name (SoC)' or 'Model name (SoC): 12.5%'", loc)
        share = _number(m.group("pre") or m.group("post"), loc)
        dev = (m.group("a") or m.group("b") or "").strip().rstrip(":=,").strip()
        soc = None
        sm = re.match(r"^(.*?)\s*\(([^()]*)\)\s*$", dev)
        if sm:
            dev, soc = sm.group(1).strip(), sm.group(2).strip() or None
        out.append(_Raw(n, "", dev, dev, None, soc, None, share))
    return out


def parse_catalog(text: str, file: str) -> Catalog:
    """Catalog text → Catalog (pure). Raises UserInputError (file:line: field) where unusable."""
    body, meta = _comments(text)
    if not body:
        raise UserInputError("no devices in the catalog", SourceLocation(file, None, None))
    first = body[0][1].casefold()
    warnings: list[str] = []
    if "model name" in first and ("system on chip" in first or "manufacturer" in first):
        header, rows = _csv_rows(file, body)
        raws, share_col = _from_table(file, header, rows, play=True, header_line=body[0][0])
        fmt = "Play Console export"
        default_source = f"Play Console device-catalog export {Path(file).name}, shares from column '{share_col}'"
    elif "," in first and re.search(r"\bmodel\b", first):
        header, rows = _csv_rows(file, body)
        raws, share_col = _from_table(file, header, rows, play=False, header_line=body[0][0])
        fmt = "perflab catalog"
        default_source = ""
        if not meta.get("source"):
            raise UserInputError("say where the shares come from: add a line '# source: …' "
                                 "(e.g. '# source: Play Console installs by device, 2026-10')",
                                 SourceLocation(file, 1, "source"))
    else:
        raws = _from_plain(file, body)
        fmt = "plain list"
        default_source = f"plain list {Path(file).name}"
    source = meta.get("source") or default_source
    if not meta.get("source"):
        warnings.append(f"{file}: no '# source:' line; shares taken as: {source}")
    example = meta.get("example", "").casefold().startswith(("yes", "true", "1")) or source.upper().startswith("EXAMPLE")
    # duplicates
    seen: dict[tuple[str, str], int] = {}
    for r in raws:
        k = (device_key(r.manufacturer), device_key(r.model))
        if k in seen:
            raise UserInputError(f"duplicate device {r.manufacturer + ' ' if r.manufacturer else ''}{r.model} "
                                 f"(first on line {seen[k]}); merge the rows", SourceLocation(file, r.line, "model"))
        seen[k] = r.line
    total = sum(r.share for r in raws)
    if total <= 0:
        raise UserInputError("the shares sum to 0%; nothing to weigh coverage by", SourceLocation(file, None, "share"))
    if abs(total - 100.0) > SHARE_SUM_TOLERANCE_PCT:
        warnings.append(f"{file}: shares sum to {total:.4g}%, not 100%: normalised to 100% (each share × "
                        f"{100.0 / total:.4g}); coverage is of the listed devices only")
    unknown = [r for r in raws if soc_key(r.soc) is None]
    if unknown:
        pct = sum(r.share for r in unknown) * 100.0 / total
        names = ", ".join(f"{r.model} (line {r.line})" for r in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        warnings.append(f"{file}: {len(unknown)} device(s) with unknown SoC ({pct:.3g}% of the catalog): {names}; "
                        "they count only when measured themselves (nothing can be inferred for them)")
    rows_out = tuple(CatalogRow(r.line, r.manufacturer, r.model, r.name, r.model_code, r.soc, r.gpu,
                                r.share * 100.0 / total) for r in raws)
    return Catalog(file=file, fmt=fmt, source=source, example=example, rows=rows_out, share_sum_raw_pct=total,
                   warnings=tuple(warnings))


def load_catalog(path: Path) -> Catalog:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CATALOG_BYTES + 1)
    except OSError as exc:
        raise UserInputError(f"{path}: --catalog: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CATALOG_BYTES:
        raise UserInputError(f"{path}: --catalog: larger than {MAX_CATALOG_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        try:
            text = data.decode("utf-16")  # Play Console exports are sometimes UTF-16
        except UnicodeDecodeError:
            line = data.count(b"\n", 0, e.start) + 1
            raise UserInputError("not UTF-8 text", SourceLocation(str(path), line, None)) from None
    return parse_catalog(text, str(path))


def example_catalog_path() -> Path:
    """The shipped EXAMPLE catalog (made-up shares, labelled as such)."""
    return Path(__file__).resolve().parent.parent / "data" / "catalogs" / "example.csv"
