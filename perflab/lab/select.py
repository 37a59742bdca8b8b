"""Pick the devices a run uses: ``local``, a serial, ``all`` phones, or the default."""

from __future__ import annotations

import logging
from typing import Any

from perflab.devices.base import Device
from perflab.devices.local import LOCAL_SERIAL, LocalDevice
from perflab.errors import UserInputError
from perflab.scenario.schema import Tuning

log = logging.getLogger("perflab.select")


def _tuning_kw(tuning: Tuning | None) -> dict[str, Any]:
    if tuning is None:
        return {}
    from perflab.devices.android import TuningOptions

    return {"tuning": TuningOptions(stay_awake=tuning.stay_awake, suspend_charging=tuning.suspend_charging,
                                    pin_governor=tuning.pin_governor, screen_off=tuning.screen_off)}


def _phones(start_server: bool, tuning: Tuning | None) -> list[Device]:
    """Attached phones (android or emulated) that are online. Empty if no adb server runs and
    ``start_server`` is False: the default run must not start daemons behind the user's back."""
    from perflab.devices.android import discover_devices  # adbutils is a dependency: no fallback

    return list(discover_devices(start_server=start_server, **_tuning_kw(tuning)))


def select_devices(spec: str | None, tuning: Tuning | None = None) -> list[Device]:
    if spec == LOCAL_SERIAL:
        return [LocalDevice()]
    if spec is None:
        phones = _phones(start_server=False, tuning=tuning)
        if phones:
            log.info("phones attached: %s", ", ".join(p.serial for p in phones))
            return phones
        return [LocalDevice()]
    if spec == "all":
        phones = _phones(start_server=True, tuning=tuning)
        if not phones:
            raise UserInputError("--device all: no phone is attached and online (see `perflab devices`)")
        return phones
    from perflab.devices.android import open_device

    return [open_device(spec, **_tuning_kw(tuning))]
