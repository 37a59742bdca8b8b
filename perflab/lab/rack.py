"""The rack file: which hosts, which phones on them, which scenarios, and the limits of a night.

A rack file (YAML, validated like scenarios: every problem is one line naming file:line: field,
exit 2) describes a lab::

    name: lab-a
    hosts:
      bench1: {adb: 127.0.0.1:5037}          # this machine's own adb server
      bench2: {adb: 127.0.0.1:5038}          # ssh -N -L 5038:localhost:5037 bench2
    devices:
      - serial: R5CT10ABCDE                  # one phone by serial
        host: bench1
        limits: {max_consecutive_failures: 2}
      - select: {model: Pixel 7}             # every phone on bench2 whose model is "Pixel 7"
        host: bench2
    tags: {R5CT10ABCDE: [flagship]}          # the lab's labels, for select: {tag: …}
    scenarios: [../scenarios/540p30.yaml]     # relative to the rack file
    limits: {job_timeout_s: 3600, reconnect_wait_s: 60, max_consecutive_failures: 3}
    quarantine: {after_failed_health_checks: 2}

A host's ``adb`` is the adb server *as this machine reaches it*. Another host's server is
reached through an SSH tunnel to its loopback port (docs/rack.md), never through an adb port
open to a network: :func:`rack_warnings` says so for a non-loopback address.

Resolving selectors needs the hosts' adb servers (:func:`resolve_devices`); loading and
checking the file does not. Pure schema and loading here; no device I/O except in
``resolve_devices``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perflab.core.yamlsrc import LocatedDocument, PathKey, load_yaml, validate_document
from perflab.errors import DeviceError, PerflabError, SourceLocation, UserInputError
from perflab.scenario.loader import LoadedScenario, load_scenario

RACK_SCHEMA = "perflab.rack/1"
DAY_S = 86_400.0

HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")]
Serial = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-\[\]]{0,127}$")]
Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_ADB_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Limits(_Strict):
    """Per-device limits. Given at the top level (every phone) and per device entry (overrides)."""

    job_timeout_s: Float | None = Field(default=None, gt=0, le=DAY_S,
                                        description="one phone × one scenario: stop it after this long")
    reconnect_wait_s: Float | None = Field(default=None, ge=0, le=3600,
                                           description="how long a dropped phone is waited for mid-run")
    health_check_timeout_s: Float | None = Field(default=None, gt=0, le=600,
                                                 description="deadline of the health check before each turn")
    max_consecutive_failures: Int | None = Field(default=None, ge=1, le=10_000,
                                                 description="failed cells in a row that quarantine a phone")
    attempts: Int | None = Field(default=None, ge=1, le=20,
                                 description="tries of one phone × scenario on transport errors (device gone, "
                                             "timed out), with exponential backoff")
    retry_backoff_s: Float | None = Field(default=None, ge=0, le=3600,
                                          description="first wait before a retry; doubled each time")


DEFAULT_LIMITS = Limits(job_timeout_s=4 * 3600.0, reconnect_wait_s=60.0, health_check_timeout_s=20.0,
                        max_consecutive_failures=3, attempts=3, retry_backoff_s=5.0)


@dataclass(frozen=True)
class EffectiveLimits:
    """Limits with every value set (the device's over the rack's over the defaults)."""

    job_timeout_s: float
    reconnect_wait_s: float
    health_check_timeout_s: float
    max_consecutive_failures: int
    attempts: int
    retry_backoff_s: float

    @classmethod
    def merge(cls, *layers: Limits | None) -> EffectiveLimits:
        """Later layers win; unset fields fall through to DEFAULT_LIMITS."""
        values: dict[str, Any] = DEFAULT_LIMITS.model_dump()
        for layer in layers:
            if layer is not None:
                values.update({k: v for k, v in layer.model_dump().items() if v is not None})
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Quarantine(_Strict):
    """When a phone is taken out of the night: its remaining work is recorded ``quarantined``."""

    enabled: bool = Field(default=True, strict=True)
    after_failed_health_checks: Int = Field(default=2, ge=1, le=100,
                                            description="health checks failed in a row (each with its retries)")


def check_adb_address(text: str, what: str) -> str:
    """``HOST:PORT`` of an adb server, or a one-line UserInputError naming ``what``."""
    m = _ADB_ADDRESS.fullmatch(text)
    if m is None or not 0 < int(m["port"]) < 65536:
        raise UserInputError(f"{what} {text!r}: must be HOST:PORT with a port 1-65535, e.g. 127.0.0.1:5037")
    return text


class Host(_Strict):
    adb: str = Field(default="127.0.0.1:5037", description="the host's adb server as HOST:PORT, as this machine "
                                                           "reaches it (an SSH tunnel's local end)")
    description: str = Field(default="", max_length=1000)

    @field_validator("adb")
    @classmethod
    def _address(cls, v: str) -> str:
        m = _ADB_ADDRESS.fullmatch(v)
        if m is None or not 0 < int(m["port"]) < 65536:
            raise ValueError("must be HOST:PORT with a port 1-65535, e.g. 127.0.0.1:5037")
        return v

    @property
    def adb_host(self) -> str:
        return self.adb.rsplit(":", 1)[0].strip("[]")

    @property
    def adb_port(self) -> int:
        return int(self.adb.rsplit(":", 1)[1])


class Selector(_Strict):
    """Phones on the entry's host whose properties match every given field (case-insensitive)."""

    model: str | None = Field(default=None, min_length=1, max_length=200, description="ro.product.model")
    soc: str | None = Field(default=None, min_length=1, max_length=200, description="ro.soc.model or "
                                                                                      "ro.board.platform")
    tag: Tag | None = Field(default=None, description="a tag given to the serial under tags:")

    @model_validator(mode="after")
    def _some(self) -> Selector:
        if self.model is None and self.soc is None and self.tag is None:
            raise ValueError("give at least one of model, soc, tag")
        return self


class DeviceEntry(_Strict):
    serial: Serial | None = None
    select: Selector | None = None
    host: HostName | None = Field(default=None, description="the host the phone is attached to (may be left out "
                                                            "when the rack has one host)")
    limits: Limits | None = None

    @model_validator(mode="after")
    def _one(self) -> DeviceEntry:
        if (self.serial is None) == (self.select is None):
            raise ValueError("give either serial or select")
        return self


class Rack(_Strict):
    schema_: str = Field(default=RACK_SCHEMA, alias="schema")
    name: HostName
    description: str = Field(default="", max_length=10_000)
    hosts: dict[HostName, Host] = Field(min_length=1, max_length=1000)
    devices: list[DeviceEntry] = Field(min_length=1, max_length=10_000)
    tags: dict[Serial, list[Tag]] = Field(default_factory=dict)
    scenarios: list[str] = Field(min_length=1, max_length=1000)
    limits: Limits = Limits()
    quarantine: Quarantine = Quarantine()

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: str) -> str:
        if v != RACK_SCHEMA:
            raise ValueError(f"unknown rack schema (this perflab reads {RACK_SCHEMA})")
        return v

    @field_validator("scenarios")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p or len(p) > 4096 or "\0" in p:
                raise ValueError("a scenario path must be 1-4096 characters")
        return v


@dataclass(frozen=True)
class LoadedRack:
    rack: Rack
    file: Path
    source_text: str
    document: LocatedDocument
    scenarios: tuple[LoadedScenario, ...]

    def location(self, path: PathKey) -> SourceLocation:
        return self.document.location(path)

    def limits_for(self, entry: DeviceEntry) -> EffectiveLimits:
        return EffectiveLimits.merge(self.rack.limits, entry.limits)


def load_rack(path: Path) -> LoadedRack:
    """Read and validate a rack file and every scenario it names; problems are one-line
    UserInputErrors naming file:line: field (the scenario's own file for a bad scenario)."""
    doc = load_yaml(path)
    rack: Rack = validate_document(doc, Rack)
    _check_references(rack, doc)
    base = path.resolve().parent
    loaded: list[LoadedScenario] = []
    names: dict[str, int] = {}
    for i, rel in enumerate(rack.scenarios):
        p = Path(rel) if Path(rel).is_absolute() else base / rel
        if not p.is_file():
            raise UserInputError(f"scenario file not found: {p}", doc.location(("scenarios", i)))
        sc = load_scenario(p)
        if sc.scenario.name in names:
            raise UserInputError(f"two scenarios are named {sc.scenario.name!r} (also scenarios[{names[sc.scenario.name]}]); "
                                 "their run folders would mix", doc.location(("scenarios", i)))
        names[sc.scenario.name] = i
        loaded.append(sc)
    return LoadedRack(rack=rack, file=path, source_text=doc.text, document=doc, scenarios=tuple(loaded))


def _check_references(rack: Rack, doc: LocatedDocument) -> None:
    single = next(iter(rack.hosts)) if len(rack.hosts) == 1 else None
    serials: dict[str, int] = {}
    adbs: dict[str, str] = {}
    for name, host in rack.hosts.items():
        other = adbs.get(host.adb)
        if other is not None:
            raise UserInputError(f"hosts {other!r} and {name!r} name the same adb server {host.adb}; one adb server "
                                 "is one host", doc.location(("hosts", name, "adb")))
        adbs[host.adb] = name
    known_tags = {t for tags in rack.tags.values() for t in tags}
    for i, d in enumerate(rack.devices):
        if d.host is None and single is None:
            raise UserInputError(f"which host is it on? give host: (one of {', '.join(sorted(rack.hosts))})",
                                 doc.location(("devices", i)))
        if d.host is not None and d.host not in rack.hosts:
            raise UserInputError(f"unknown host {d.host!r} (hosts: {', '.join(sorted(rack.hosts))})",
                                 doc.location(("devices", i, "host")))
        if d.serial is not None:
            if d.serial in serials:
                raise UserInputError(f"serial {d.serial!r} is listed twice (also devices[{serials[d.serial]}]); two "
                                     "entries would drive one phone twice", doc.location(("devices", i, "serial")))
            serials[d.serial] = i
        if d.select is not None and d.select.tag is not None and d.select.tag not in known_tags:
            raise UserInputError(f"no serial has the tag {d.select.tag!r} under tags:",
                                 doc.location(("devices", i, "select", "tag")))


def host_of(rack: Rack, entry: DeviceEntry) -> str:
    return entry.host if entry.host is not None else next(iter(rack.hosts))


def rack_warnings(loaded: LoadedRack) -> list[str]:
    """Advice that does not stop a night: an adb server reached over a network."""
    out = []
    for name, host in loaded.rack.hosts.items():
        if not _is_loopback(host.adb_host):
            where = loaded.location(("hosts", name, "adb"))
            out.append(f"{where}: {host.adb} is not a loopback address: an adb server open to a network lets anyone "
                       f"there drive the phones. Reach {name} through an SSH tunnel instead "
                       f"(ssh -N -L {host.adb_port}:localhost:5037 {name}; adb: 127.0.0.1:{host.adb_port})")
    return out


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def queue_name(host: str) -> str:
    """The task queue of one rack host: its worker takes jobs from this queue only."""
    return f"perflab.host.{host}"


# ---------------------------------------------------------------------------------------------
# resolving the devices (I/O: each host's adb server)


@dataclass(frozen=True)
class RackDevice:
    """One phone of the night: where it is, its limits, and how it was chosen."""

    serial: str
    host: str
    adb: str
    limits: EffectiveLimits
    entry: int  # index in devices:
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostProblem:
    """A host that could not be asked for its phones (its adb server is down or unreachable),
    or an entry that matched nothing. The night goes on without it, and says so."""

    host: str
    entry: int | None
    serial: str | None
    reason: str


@dataclass
class Resolution:
    devices: list[RackDevice] = field(default_factory=list)
    problems: list[HostProblem] = field(default_factory=list)


def resolve_devices(loaded: LoadedRack, *, timeout_s: float = 10.0, only_host: str | None = None,
                    adb: str | None = None) -> Resolution:
    """The phones of the night. Serial entries are taken as given (a phone that is not there fails
    its health check and is recorded); selectors are matched against each host's adb server.
    A host whose adb server does not answer is a HostProblem, not an error: the other hosts go on.
    ``only_host``: that host's phones only (a worker on it), its adb server at ``adb`` when given."""
    rack = loaded.rack
    hosts = dict(rack.hosts)
    if only_host is not None:
        h = rack.hosts[only_host]
        hosts = {only_host: h if adb is None else h.model_copy(update={"adb": check_adb_address(adb, "--adb")})}
    out = Resolution()
    listed = _list_hosts(hosts, timeout_s)
    out.problems.extend(p for p in listed.values() if isinstance(p, HostProblem))
    # serials first: a selector never takes a phone listed by serial
    taken: set[str] = {d.serial for d in rack.devices if d.serial is not None}
    for i, d in enumerate(rack.devices):
        hname = host_of(rack, d)
        if hname not in hosts:
            continue
        host = hosts[hname]
        limits = EffectiveLimits.merge(rack.limits, d.limits)
        entries = listed[hname]
        if d.serial is not None and isinstance(entries, HostProblem):
            out.problems.append(HostProblem(hname, i, d.serial, f"not run: {entries.reason}"))
            continue
        if d.serial is not None:
            out.devices.append(RackDevice(d.serial, hname, host.adb, limits, i, tuple(rack.tags.get(d.serial, ()))))
            continue
        if isinstance(entries, HostProblem):
            out.problems.append(HostProblem(hname, i, None, f"devices[{i}] select: not resolved: {entries.reason}"))
            continue
        matched = 0
        for e in entries:
            if e.serial in taken:
                continue
            try:
                ok = _matches(d.select, e.serial, host, rack.tags.get(e.serial, []), timeout_s)
            except PerflabError as exc:
                out.problems.append(HostProblem(hname, i, e.serial, f"could not read its properties: {exc}"))
                continue
            if ok:
                taken.add(e.serial)
                matched += 1
                out.devices.append(RackDevice(e.serial, hname, host.adb, limits, i, tuple(rack.tags.get(e.serial, ()))))
        if matched == 0:
            out.problems.append(HostProblem(hname, i, None, f"devices[{i}] select: no phone on {hname} matches"))
    return out


def _list_hosts(hosts: dict[str, Host], timeout_s: float) -> dict[str, list[Any] | HostProblem]:
    """Each host's ready phones, or why its adb server could not be asked."""
    from perflab.devices.adb import Adb

    listed: dict[str, list[Any] | HostProblem] = {}
    for name, host in hosts.items():
        try:
            adb = Adb(host=host.adb_host, port=host.adb_port, timeout_s=timeout_s, retries=1, backoff_s=0.2)
            listed[name] = [e for e in adb.devices() if e.state == "device"]
        except (DeviceError, OSError) as exc:
            listed[name] = HostProblem(name, None, None, f"adb server {host.adb} of host {name} is not answering: "
                                                         f"{exc}")
    return listed


def _matches(sel: Selector | None, serial: str, host: Host, tags: list[str], timeout_s: float) -> bool:
    if sel is None:
        return False
    if sel.tag is not None and sel.tag not in tags:
        return False
    if sel.model is None and sel.soc is None:
        return True
    from perflab.devices.adb import Adb
    from perflab.devices.android import parse_getprop

    adb = Adb(host=host.adb_host, port=host.adb_port, timeout_s=timeout_s, retries=1, backoff_s=0.2)
    props = parse_getprop(adb.device(serial).shell(["getprop"], timeout_s=timeout_s).stdout)
    model = props.get("ro.product.model", "")
    soc = {props.get("ro.soc.model", "").lower(), props.get("ro.board.platform", "").lower()} - {""}
    if sel.model is not None and sel.model.lower() != model.lower():
        return False
    return sel.soc is None or sel.soc.lower() in soc
