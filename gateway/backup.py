"""Backup and restore of a gateway's own files: the embedded time-series store, the outbox and the SQLite registry.

A backup is taken while the gateway runs, with SQLite's online backup API: each file is copied as one consistent
snapshot while the gateway keeps writing (in WAL mode a reader blocks no writer). The outbox is copied before the
store, so that no reading accepted before the backup began is missing from both copies: a reading acknowledged out
of the outbox after its snapshot was written to the store first, so the store's later snapshot has it. Such a
reading may then be in both copies; after a restore the gateway delivers it once more, and the store keeps one row
per series and time. The OPC UA certificates (`data_dir/opcua`) come along, so pinned servers stay trusted.

A restore writes over the files of a stopped gateway only: every running gateway holds a shared lock on
`data_dir/gateway.lock` (`hold_data_dir`), and a restore takes it exclusively or refuses. It also refuses a backup
whose registry is at another Alembic revision than this gateway's code, naming both.

An InfluxDB store and a PostgreSQL registry are not files of the gateway: back them up with their own tools
(`influx backup`, `pg_dump`); the manifest says which parts a backup leaves out and why.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gateway.config import EmbeddedStoreConfig, GatewayConfig

FORMAT = 1  # of the backup folder (manifest.json and the files it lists)
MANIFEST = "manifest.json"
LOCK_FILE = "gateway.lock"

# What each file holds, counted the same way at backup and at restore, so the two can be compared.
_COUNTS = {
    "store": {"samples": "SELECT count(*) FROM samples", "series": "SELECT count(*) FROM series"},
    "outbox": {"readings": "SELECT coalesce(sum(n), 0) FROM outbox_batches",
               "dead_letters": "SELECT count(*) FROM dead_letter"},
    "registry": {},  # every table, below
}


class BackupError(Exception):
    """A backup or restore cannot be done; the message says which file or folder and why."""


@dataclass(frozen=True)
class Part:
    """One file of a gateway that a backup copies: its role, where it lives, and its name in the backup folder."""

    role: str  # store, outbox, registry
    path: Path
    name: str


def parts(cfg: GatewayConfig) -> tuple[list[Part], dict[str, str]]:
    """The files of `cfg` a backup copies, and the parts it leaves out with the reason."""
    found = [Part("outbox", cfg.data_path(cfg.outbox.path), "outbox.db")]  # first: see the module docstring
    skipped: dict[str, str] = {}
    if isinstance(cfg.store, EmbeddedStoreConfig):
        found.append(Part("store", cfg.data_path(cfg.store.path), "timeseries.db"))
    else:
        skipped["store"] = f"InfluxDB at {cfg.store.url}: back it up with InfluxDB's own tools (influx backup)"
    registry = _registry_file(cfg)
    if registry is not None:
        found.append(Part("registry", registry, "registry.db"))
    else:
        skipped["registry"] = "not a SQLite file: back the database up with its own tools (pg_dump)"
    return found, skipped


def _registry_file(cfg: GatewayConfig) -> Path | None:
    if cfg.database.url_env:
        return None  # a URL with a password in the environment: a database server, not a file of the gateway
    url = cfg.database.resolve(cfg.gateway.data_dir, {})
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def code_revision() -> str:
    """The Alembic head of this gateway's registry migrations: the schema version a registry backup must have."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import crm_bridge.registry

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(crm_bridge.registry.__file__).parent / "migrations"))
    return ",".join(sorted(ScriptDirectory.from_config(cfg).get_heads()))


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        return None
    return ",".join(sorted(r[0] for r in rows)) or None


def counts(role: str, path: Path) -> dict[str, int]:
    """Rows of the file at `path` as a backup of `role` counts them (every table of the registry)."""
    with contextlib.closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
        queries = dict(_COUNTS[role])
        if role == "registry":
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            queries = {t: f'SELECT count(*) FROM "{t}"' for t in tables}  # noqa: S608 - names from sqlite_master
        return {what: int(conn.execute(sql).fetchone()[0]) for what, sql in queries.items()}


def _copy(src: Path, dst: Path) -> None:
    """One consistent snapshot of the SQLite file `src` into the new file `dst` (the online backup API)."""
    with contextlib.closing(sqlite3.connect(src, timeout=30)) as source, \
            contextlib.closing(sqlite3.connect(dst)) as target:
        source.backup(target)
        problem = target.execute("PRAGMA quick_check").fetchone()[0]
        if problem != "ok":
            raise BackupError(f"the copy of {src} fails SQLite's check: {problem}")


def backup(cfg: GatewayConfig, out: Path) -> dict[str, Any]:
    """Copy the gateway's files into the new or empty folder `out`, with a manifest; returns the manifest.

    The manifest is written last: a folder without one is an unfinished backup, and `restore` refuses it.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty folder: back up into a new folder")
    found, skipped = parts(cfg)
    missing = [p for p in found if not p.path.exists()]
    if missing:
        raise BackupError(f"{missing[0].path} does not exist: has the gateway run with this config?")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    revision = None
    for part in found:
        started = time.monotonic()
        _copy(part.path, out / part.name)
        files[part.role] = {"file": part.name, "source": str(part.path), "rows": counts(part.role, out / part.name),
                            "bytes": (out / part.name).stat().st_size, "seconds": round(time.monotonic() - started, 3)}
        if part.role == "registry":
            with contextlib.closing(sqlite3.connect(out / part.name)) as conn:
                revision = _revision(conn)
    certificates = cfg.gateway.data_dir / "opcua"
    if certificates.is_dir():
        shutil.copytree(certificates, out / "opcua")
        files["opcua"] = {"folder": "opcua"}
    manifest = {"format": FORMAT, "gateway": cfg.gateway.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "version": _package_version(), "registry_revision": revision, "files": files, "skipped": skipped}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup folder `source`, checked against this gateway's formats and schema version."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} has no {MANIFEST}: not a backup, or one that did not finish") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is a backup of format {manifest.get('format')!r}; this gateway reads "
                          f"format {FORMAT}: restore it with the version that made it ({manifest.get('version')})")
    revision = manifest.get("registry_revision")
    if "registry" in manifest.get("files", {}) and revision != (ours := code_revision()):
        raise BackupError(
            f"{source} holds a registry at schema version {revision} (made by energy-gateway "
            f"{manifest.get('version')}); this gateway's schema version is {ours}: restore it with the version that "
            "made it, then upgrade that gateway (it migrates the registry when it starts)")
    return manifest


def restore(cfg: GatewayConfig, source: Path) -> dict[str, Any]:
    """Put the backup in `source` in place of the files of `cfg`; refused while a gateway runs on them.

    Returns what was restored: each file's rows, counted again in its new place.
    """
    manifest = read_manifest(source)
    found, _ = parts(cfg)
    wanted = {p.role: p for p in found}
    for role, entry in manifest["files"].items():
        if role != "opcua" and role not in wanted:
            raise BackupError(f"{source} has a {role} file, but this config keeps its {role} elsewhere "
                              "(not a SQLite file of the gateway): restore it into a config of the same kind")
        if role != "opcua" and not (source / entry["file"]).is_file():
            raise BackupError(f"{source / entry['file']} is missing: the backup is incomplete")
    cfg.gateway.data_dir.mkdir(parents=True, exist_ok=True)
    restored: dict[str, Any] = {}
    with exclusive_data_dir(cfg.gateway.data_dir):
        for role, entry in manifest["files"].items():
            if role == "opcua":
                shutil.copytree(source / "opcua", cfg.gateway.data_dir / "opcua", dirs_exist_ok=True)
                continue
            target = wanted[role].path
            target.parent.mkdir(parents=True, exist_ok=True)
            for stale in (target, target.with_name(target.name + "-wal"), target.with_name(target.name + "-shm")):
                stale.unlink(missing_ok=True)  # an old write-ahead log must not be replayed over the restored file
            _copy(source / entry["file"], target)
            restored[role] = {"path": str(target), "rows": counts(role, target)}
    return {"from": str(source), "created": manifest.get("created"), "restored": restored,
            "skipped": manifest.get("skipped", {})}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("energy-gateway")
    except PackageNotFoundError:
        return "unknown"


def _open_lock(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return open(data_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held for the process's run


class DataDirLock:
    """The shared lock a running gateway holds on its data folder, so that `restore` refuses to write under it."""

    def __init__(self, data_dir: Path) -> None:
        self._file: IO[str] | None = _open_lock(data_dir)
        try:
            fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise OSError(f"a restore into {data_dir} is in progress; start the gateway when it has finished") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file releases the lock
            self._file = None


def hold_data_dir(data_dir: Path) -> DataDirLock:
    """Take the running gateway's shared lock on `data_dir` (OSError while a restore writes into it)."""
    return DataDirLock(data_dir)


@contextlib.contextmanager
def exclusive_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold `data_dir` exclusively for a restore, or refuse (BackupError) while a gateway runs on it."""
    with _open_lock(data_dir) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "unknown"
            raise BackupError(f"a gateway is running on {data_dir} (pid {pid}, {data_dir / LOCK_FILE}): stop it "
                              "before restoring over its files") from None
        yield
