"""Where perflab's configuration lives: packaged defaults and the user's config folder.

Two places, one rule:

- **Packaged defaults** travel inside the package (``perflab/data/…``) and are found through
  :mod:`importlib.resources`, so an installed wheel finds them wherever it is installed and
  whatever the working directory is. They are read-only: nothing is ever written there.
- **The user config folder** holds the user's own files. It is, first match wins:
  ``--config-dir`` (the CLI's global option, which sets the environment variable below so
  that child processes see it too), ``$PERFLAB_CONFIG_DIR``, ``$XDG_CONFIG_HOME/perflab``,
  ``~/.config/perflab``. Inside it, each kind of config has its own subfolder
  (``device_configs/``, ``emulator_profiles/``), the same names as in ``perflab/data/``.

A user file overrides the packaged file of the same name (:func:`config_files`). The
folder is created only when something is written into it (``perflab devices probe``).

Imports nothing from perflab above it (only perflab.errors).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from importlib.resources import files
from pathlib import Path

from perflab.errors import PerflabError, UserInputError

ENV_CONFIG_DIR = "PERFLAB_CONFIG_DIR"
"""Environment variable naming the user config folder (``--config-dir`` sets it)."""
ENV_CACHE_DIR = "PERFLAB_CACHE_DIR"
"""Environment variable naming perflab's cache folder (generated model variants, unpacked clips)."""

_DATA_PACKAGE = "perflab"
_DATA_FOLDER = "data"
_YAML_SUFFIXES = (".yaml", ".yml")


class ConfigKind(StrEnum):
    """A kind of config file; its value is the subfolder name in both places."""

    DEVICE_CONFIGS = "device_configs"
    EMULATOR_PROFILES = "emulator_profiles"


def packaged_data_dir() -> Path:
    """``perflab/data`` of the installed package (read-only)."""
    root = files(_DATA_PACKAGE) / _DATA_FOLDER
    if not isinstance(root, Path):  # a zipped install: importlib gives a zip path, not files
        raise PerflabError(f"perflab's packaged data is not on the file system ({root}); "
                           "install perflab as files (pip install), not as a zip")
    return root


def packaged_dir(kind: ConfigKind) -> Path:
    """The folder of packaged defaults of one kind, e.g. ``perflab/data/device_configs``."""
    return packaged_data_dir() / kind.value


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user config folder: ``$PERFLAB_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/perflab``,
    else ``~/.config/perflab``. It need not exist. ``environ`` defaults to ``os.environ``.
    UserInputError when none of them can be had (no home folder)."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_CONFIG_DIR, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative $XDG_CONFIG_HOME is ignored
        return Path(xdg) / "perflab"
    try:
        return Path("~/.config/perflab").expanduser()
    except RuntimeError:  # no $HOME and no passwd entry (some containers)
        raise UserInputError(f"no home folder to keep user configs in: set {ENV_CONFIG_DIR} or "
                             "XDG_CONFIG_HOME, or pass --config-dir") from None


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """perflab's cache folder (things it can make again: model variants, clips unpacked at
    set-up): ``$PERFLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/perflab``, else ``~/.cache/perflab``.
    It need not exist."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_CACHE_DIR, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg:
        return Path(xdg) / "perflab"
    return Path.home() / ".cache" / "perflab"


def user_dir(kind: ConfigKind, environ: Mapping[str, str] | None = None) -> Path:
    """The user's folder for one kind, e.g. ``~/.config/perflab/device_configs`` (may not exist)."""
    return user_config_dir(environ) / kind.value


def user_dir_if_any(kind: ConfigKind, environ: Mapping[str, str] | None = None) -> Path | None:
    """:func:`user_dir`, or None where there is no user config folder at all (no home folder):
    reading then sees the packaged defaults alone; writing needs :func:`user_dir`."""
    try:
        return user_dir(kind, environ)
    except UserInputError:
        return None


def use_config_dir(path: Path) -> Path:
    """Make ``path`` the user config folder for this process and its children (``--config-dir``).

    Stored in ``$PERFLAB_CONFIG_DIR`` as an absolute path, so that a worker or an emulated
    phone started from here reads the same folder whatever its working directory."""
    absolute = path.expanduser().resolve()
    os.environ[ENV_CONFIG_DIR] = str(absolute)
    return absolute


def _yaml_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.iterdir())
            if p.suffix in _YAML_SUFFIXES and p.is_file() and not p.name.startswith(".")}


def config_files(kind: ConfigKind, environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Every config of one kind by name (the file's stem), sorted by name: the packaged
    defaults, with a user file replacing the packaged file of the same name."""
    merged = _yaml_files(packaged_dir(kind))
    mine = user_dir_if_any(kind, environ)
    if mine is not None:
        merged.update(_yaml_files(mine))
    return dict(sorted(merged.items()))


def config_file(kind: ConfigKind, name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file for ``name`` (user first, then packaged), or None if neither has it."""
    return config_files(kind, environ).get(name)


def search_description(kind: ConfigKind, environ: Mapping[str, str] | None = None) -> str:
    """Where configs of this kind are looked for, for messages: ``USER_DIR, then PACKAGED_DIR``."""
    mine = user_dir_if_any(kind, environ)
    return f"{mine}, then {packaged_dir(kind)}" if mine is not None else str(packaged_dir(kind))
