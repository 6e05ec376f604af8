"""Reading configuration files: one YAML reader whose errors name the file, line and column.

``read_yaml(path)`` loads a YAML mapping with libyaml's safe loader (when PyYAML was built with it, as the
wheels are: a 1,000-service catalog loads in a tenth of the pure-Python parser's time). A syntax error, a
duplicate key or a top level that is not a mapping raises :class:`ConfigError` naming ``file:line:column``.

For the configuration-key test, :func:`track_reads` makes every file read inside it return mappings that
record which keys were read; :func:`unread_keys` then lists the shipped keys nobody read. Outside the test
the reader returns plain ``dict``/``list`` values.

:func:`load` is how the packages read their file: ``parse(mapping)`` once per process and file version (a
file changed on disk is read again), so each file is read once however many packages parse it.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from include.headroom.exceptions import ConfigError

CONFIG_DIR = Path(__file__).parent / "config"


def config_directory(config_dir: str | Path | None = None) -> Path:
    """The configuration folder in use: ``config_dir``, else ``$HEADROOM_CONFIG_DIR``, else the shipped one."""
    return Path(config_dir or os.environ.get("HEADROOM_CONFIG_DIR") or CONFIG_DIR)


def require(condition: bool, message: str) -> None:
    """:raises ConfigError: with ``message`` (which names the file and key) when ``condition`` is false."""
    if not condition:
        raise ConfigError(message)


def build(kind: Callable[..., Any], raw: Mapping[str, Any], where: str) -> Any:
    """``kind(**raw)``; an unknown or missing field becomes a :class:`ConfigError` naming ``where``."""
    try:
        return kind(**raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def require_cron(expression: Any, where: str) -> str:
    """``expression`` when it is a valid five-field cron expression.

    :param where: the file and key, e.g. ``"cache.yaml warming.schedule"``.
    :raises ConfigError: naming ``where`` and the expression.
    """
    from croniter import croniter

    text = str(expression).strip() if expression is not None else ""
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ConfigError(f"{where}={expression!r} is not a cron expression (five fields: minute hour day month weekday)")
    return text


def require_zone(zone: str, where: str) -> None:
    """Refuse ``zone`` unless it is an IANA time zone name, naming ``where`` it was set."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}={zone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None


def _loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
                    seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return Loader


_LOADER: type | None = None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in the YAML file ``path``.

    :raises ConfigError: when the file is missing, is not valid YAML (``<file>:<line>:<column>: <problem>``),
        repeats a key, or does not hold a mapping at top level.
    """
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _loader()
    path = Path(path)
    try:
        with path.open() as fh:
            data = yaml.load(fh, Loader=_LOADER) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} is missing") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: must hold a mapping at top level, found {type(data).__name__}")
    tracked = _tracked_files
    if tracked is None:
        return data
    root = _track(data)
    with _lock:
        tracked.append((path, root))
    return root


# -- each file read once per process -----------------------------------------------------------------

_raw: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_parsed: dict[tuple[Any, ...], tuple[tuple[int, int, int], Any]] = {}
_cache_lock = threading.RLock()


def _version(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file {path} is missing") from exc
    return st.st_mtime_ns, st.st_size, st.st_ino


def _read_cached(path: Path) -> tuple[tuple[int, int, int], dict[str, Any]]:
    version = _version(path)
    key = str(path.resolve())
    with _cache_lock:
        hit = _raw.get(key)
        if hit is None or hit[0] != version:
            hit = _raw[key] = (version, read_yaml(path))
        return hit


def read_once(path: str | Path) -> dict[str, Any]:
    """The mapping in ``path`` (a copy the caller may change), read from disk once per process and file version.

    While :func:`track_reads` is on, the file is read afresh so that the reads are recorded.
    """
    path = Path(path)
    if _tracked_files is not None:
        return read_yaml(path)
    return copy.deepcopy(_read_cached(path)[1])


def load(path: str | Path, parse: Callable[..., Any], *args: Any) -> Any:
    """``parse(mapping of path, *args)``, computed once per process and file version (``args`` must be hashable).

    ``parse`` builds frozen settings, so every caller shares the one result. While :func:`track_reads` is on,
    nothing is cached.
    """
    path = Path(path)
    if _tracked_files is not None:
        return parse(read_yaml(path), *args)
    key = (str(path.resolve()), parse, *args)
    with _cache_lock:
        version, raw = _read_cached(path)
        hit = _parsed.get(key)
        if hit is None or hit[0] != version:
            hit = _parsed[key] = (version, parse(copy.deepcopy(raw), *args))
        return hit[1]


# -- which keys were read (the configuration-key test) ------------------------------------------------

_tracked_files: list[tuple[Path, Any]] | None = None
_lock = threading.Lock()


class TrackedDict(dict):
    """A ``dict`` that records which of its keys were read (looked up, iterated over, unpacked)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[Any] = set()
        self.walked = False  # iterated as data (items(), values(), a for loop): its keys are names chosen by the user

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __iter__(self) -> Iterator[Any]:
        self.read.update(super().keys())
        self.walked = True
        return super().__iter__()

    def keys(self) -> Any:  # dict(x), {**x} and kind(**x) come through here: every key is read, as a field name
        self.read.update(super().keys())
        return super().keys()

    def items(self) -> Any:
        self.read.update(super().keys())
        self.walked = True
        return super().items()

    def values(self) -> Any:
        self.read.update(super().keys())
        self.walked = True
        return super().values()

    def pop(self, key: Any, *default: Any) -> Any:
        self.read.add(key)
        return super().pop(key, *default)

    def copy(self) -> TrackedDict:
        self.read.update(super().keys())
        twin = TrackedDict(dict(super().items()))
        twin.read, twin.walked = self.read, self.walked  # reads through the copy count for the original
        return twin

    def __reduce__(self) -> Any:  # pickles (and deep-copies) as a plain dict
        return (dict, (dict(super().items()),))


def _track(value: Any) -> Any:
    if isinstance(value, dict):
        return TrackedDict({k: _track(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_track(v) for v in value]
    return value


@contextmanager
def track_reads() -> Generator[list[tuple[Path, Any]], None, None]:
    """Inside: every file :func:`read_yaml` reads is recorded as ``(path, tracked mapping)`` in the yielded list."""
    global _tracked_files
    previous, files = _tracked_files, []
    _tracked_files = files
    try:
        yield files
    finally:
        _tracked_files = previous


def leaf_keys(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of a loaded file; mappings inside lists appear as ``key[].field``."""
    if isinstance(value, dict):
        for k, v in dict.items(value):  # dict's own items(): walking the file is not reading it
            path = f"{prefix}.{k}" if prefix else str(k)
            nested = v if isinstance(v, dict) else [x for x in v if isinstance(x, dict)] if isinstance(v, list) else None
            if nested:
                yield from leaf_keys(v, path)
            else:
                yield path
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from leaf_keys(item, f"{prefix}[]")


def read_keys(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the keys read in a tracked mapping (a key counts when read in any list item)."""
    out: set[str] = set()
    if isinstance(value, TrackedDict):
        for k in value.read:
            if dict.__contains__(value, k):
                path = f"{prefix}.{k}" if prefix else str(k)
                out.add(path)
                out |= read_keys(dict.__getitem__(value, k), path)
    elif isinstance(value, list):
        for item in value:
            out |= read_keys(item, f"{prefix}[]")
    return out


def walked_keys(value: Any, prefix: str = "") -> set[str]:
    """Dotted paths of the tracked mappings that code iterated as data (``""`` for the top level)."""
    out: set[str] = set()
    if isinstance(value, TrackedDict):
        if value.walked:
            out.add(prefix)
        for k, v in dict.items(value):
            out |= walked_keys(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        for item in value:
            out |= walked_keys(item, f"{prefix}[]")
    return out


def unread_keys(tracked: Any) -> list[str]:
    """The leaves of a tracked file that nobody read, in file order."""
    read = read_keys(tracked)
    return [leaf for leaf in dict.fromkeys(leaf_keys(tracked)) if leaf not in read]
