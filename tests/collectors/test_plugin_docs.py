"""Every collector plugin's README names every key of its config, and its sample.toml passes the gateway's checks."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from collectors.base import Plugin
from collectors.registry import PLUGINS
from gateway.config import load_config

WRAPPER = """\
[gateway]
environment = "development"
data_dir = "var"

[[customers]]
id = "c1"
name = "Sample plant"

[[sites]]
id = "s1"
customer = "c1"
name = "Works"
"""
ROW_KEY = re.compile(r"^\|\s*`([a-z_]+)`\s*\|", re.MULTILINE)


def _folder(plugin: Plugin) -> Path:
    return Path(sys.modules[plugin.config.__module__].__file__ or "").parent


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of the model and of the models in its lists (`points`, `nodes`), by path."""
    out = set()
    for name, field in model.model_fields.items():
        out.add(prefix + name)
        for arg in get_args(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out |= _keys(arg, f"{prefix}{name}.")
    return out


@pytest.mark.parametrize("kind", list(PLUGINS))
def test_readme_names_every_key_and_no_other(kind):
    plugin = PLUGINS[kind]
    readme = (_folder(plugin) / "README.md").read_text(encoding="utf-8")
    keys = _keys(plugin.config)
    leaves = {k.rsplit(".", 1)[-1] for k in keys}
    missing = sorted(k for k in keys if f"`{k.rsplit('.', 1)[-1]}`" not in readme)
    assert not missing, f"{kind} README.md does not name {missing}"
    documented = set(ROW_KEY.findall(readme))
    assert documented, "the README has key tables"
    stale = sorted(documented - leaves)
    assert not stale, f"{kind} README.md documents keys the config does not have: {stale}"


@pytest.mark.parametrize("kind", list(PLUGINS))
def test_sample_config_passes_the_gateway_checks(kind, tmp_path):
    plugin = PLUGINS[kind]
    sample = (_folder(plugin) / "sample.toml").read_text(encoding="utf-8")
    devices = tomllib.loads(sample)["devices"]
    assert devices, "the sample has [[devices]]"
    assert {d["type"] for d in devices} == {kind}
    meters = "".join(f'\n[[meters]]\nid = "m{i}"\nsite = "s1"\ndevice = "{d["name"]}"\n'
                     for i, d in enumerate(devices))
    path = tmp_path / "gateway.toml"
    path.write_text(f"{WRAPPER}{meters}\n{sample}", encoding="utf-8")
    secrets = {d[k]: "sample-secret" for d in devices for k in d if k.endswith("_env")}
    cfg = load_config(path, environ=secrets)
    assert [d.name for d in cfg.devices] == [d["name"] for d in devices]
    assert all(isinstance(d, plugin.config) for d in cfg.devices)
    written = {k for d in devices for k in d} | {f"{k}.{p}" for d in devices for k, v in d.items()
                                                if isinstance(v, list) for item in v for p in item}
    top = {k for k in _keys(plugin.config) if "." not in k}
    assert top - written <= {"serial_port", "baudrate", "parity", "stopbits", "bytesize", "profile", "points",
                             "client_cert", "client_key", "server_cert", "user_certificate", "user_private_key"}, \
        "the sample shows every key but the alternatives it names in comments"


def test_the_doc_check_catches_a_missing_key(tmp_path):
    class Small(BaseModel):
        type: str
        speed_rpm: int = 0

    keys = _keys(Small)
    assert keys == {"type", "speed_rpm"}
    readme = "| `type` | | x |\n| `colour` | | y |\n"
    assert [k for k in sorted(keys) if f"`{k}`" not in readme] == ["speed_rpm"]
    assert set(ROW_KEY.findall(readme)) - keys == {"colour"}
