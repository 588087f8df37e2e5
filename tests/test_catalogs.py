"""The gettext catalogues: both languages alike, no empty text, the same placeholders, every key the code names.

The portal's catalogue is gateway/portal/locale, the reports' reports/locale (msgid = the key), the notifications'
crm_bridge/notify/locale (msgid = `<section>.<key>`). The keys in use are found with Babel's extractors (the portal's
mapping is gateway/portal/babel.cfg, the reports' REPORTS_MAPPING below), plus the keys the code builds at run time
(alert and advice keys, stored words shown through label()), read from the code that builds them; the notifications'
from their `text(section, key, lang)` calls and the events they are about. The checker itself is tested on a
deliberately incomplete catalogue.
"""

from __future__ import annotations

import ast
import io
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from crm_bridge.alerts.engine import SEVERITIES
from crm_bridge.alerts.own_rules import LIMITS
from crm_bridge.desk.workflow import KINDS, NEXT
from crm_bridge.notify.events import EventKind
from crm_bridge.tariffs import BasicChargeMode
from crm_bridge.tariffs.bill import STATUSES
from gateway.auth.roles import Role
from gateway.usecases.desk import NEXT_ON_DESK

ROOT = Path(__file__).resolve().parents[1]
LANGS = {"zh": "zh_CN", "en": "en"}
DOMAINS = {"portal": ROOT / "gateway" / "portal" / "locale", "reports": ROOT / "reports" / "locale",
           "notify": ROOT / "crm_bridge" / "notify" / "locale"}
SIZES = {"portal": 100, "reports": 100, "notify": 30}  # at least this many keys: the catalogue was read
PORTAL_MAPPING = ROOT / "gateway" / "portal" / "babel.cfg"
REPORTS_MAPPING = """
[python: reports/**.py]
keywords = t text
[python: gateway/report_jobs.py]
keywords = t
[jinja2: reports/templates/**.j2]
extensions = jinja2.ext.i18n
keywords = t
"""
# f-strings that build an alert's text key or type: every value they take (a new f-string fails the scan).
EXPANSIONS = {"alert_threshold_{column}": ("kw", "kwh"), "threshold_{column}": ("kw", "kwh"),
              "demand_{int(level * 100)}": ("90", "100"), "consumption_{kind}": ("drop", "growth")}
ALERT_STATUSES = ("open", "acknowledged", "resolved")  # crm_bridge/alerts/engine.py sets these three
CATEGORIES = ("billing", "power_quality", "capacity", "metering", "other")  # the request form's (requests.html.j2)
PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)[^{}]*\}")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def read(domain: Path) -> dict[str, Catalog]:
    """One domain's catalogue in each language, as Babel reads it."""
    out = {}
    for lang, folder in LANGS.items():
        with (domain / folder / "LC_MESSAGES" / "messages.po").open("rb") as f:
            out[lang] = read_po(f, locale=folder)
    return out


def problems(catalogs: Mapping[str, Catalog], used: Iterable[str]) -> list[str]:
    """What is wrong with one domain's catalogues, one line each (empty when nothing is).

    A key in one language only, an empty or fuzzy text, placeholders that differ between the languages, text that
    str.format cannot fill, and a key the code uses that a language lacks.
    """
    found: list[str] = []
    texts = {lang: {m.id: m for m in c if m.id} for lang, c in catalogs.items()}
    every = set().union(*texts.values())
    for key in sorted(every):
        for lang, entries in texts.items():
            m = entries.get(key)
            if m is None:
                found.append(f"{key}: not in the {lang} catalogue")
            elif not m.string:
                found.append(f"{key}: empty in {lang}")
            elif m.fuzzy:
                found.append(f"{key}: fuzzy in {lang}")
        present = {lang: str(e[key].string) for lang, e in texts.items() if key in e and e[key].string}
        try:
            fields = {lang: _fields(s) for lang, s in present.items()}
        except ValueError as exc:
            found.append(f"{key}: not a str.format text ({exc})")
            continue
        if len({frozenset(f) for f in fields.values()}) > 1:
            found.append(f"{key}: placeholders differ: {fields}")
    for key in sorted(set(used)):
        for lang, entries in texts.items():
            if key not in entries:
                found.append(f"{key}: used by the code, not in the {lang} catalogue")
    return found


def flag_problems(po_text: str) -> list[str]:
    """Entries whose text has `{name}` placeholders but no python-brace-format flag (Babel keys its flags on the
    msgid, which here is a key without placeholders, so the flags are checked in the file itself)."""
    out = []
    for block in po_text.split("\n\n"):
        key = re.search(r'^msgid "(.+)"$', block, re.MULTILINE)
        text = re.search(r'^msgstr ((?:".*"(?:\n|$))+)', block, re.MULTILINE)  # continuation lines too
        if key and text and PLACEHOLDER.search(text.group(1)) and "python-brace-format" not in block:
            out.append(key.group(1))
    return out


def extracted(mapping: str) -> set[str]:
    """The keys Babel's extractors find under the repository with an extraction mapping (babel.cfg syntax)."""
    method_map, options_map = parse_mapping_cfg(io.StringIO(mapping))
    keys = set()
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map):
        keys |= {message} if isinstance(message, str) else {m for m in message if m}
    return keys


def _literal_values(node: ast.expr) -> set[str]:
    """The strings an expression can be: constants, both sides of `a if c else b`, f-strings by EXPANSIONS."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literal_values(node.body) | _literal_values(node.orelse)
    if isinstance(node, ast.JoinedStr):
        source = ast.unparse(node)[2:-1]
        fixed, _, rest = source.partition("{")
        pattern = "{" + rest.split("}")[0] + "}"
        if fixed + pattern not in EXPANSIONS:
            raise AssertionError(f"an alert key or type is built as {source!r}: add its values to EXPANSIONS")
        return {source.replace(pattern, v) for v in EXPANSIONS[fixed + pattern]}
    return set()


def _keyword_values(folder: Path, name: str) -> set[str]:
    """Every value a call's keyword argument `name` takes in the modules of `folder`."""
    out: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                out |= {v for kw in node.keywords if kw.arg == name for v in _literal_values(kw.value)}
    return out


def _advice_keys() -> set[str]:
    """advice_<kind> for each `_item("<kind>", ...)` in crm_bridge/services/advice.py, or its explicit key."""
    tree = ast.parse((ROOT / "crm_bridge" / "services" / "advice.py").read_text("utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_item":
            out |= {f"advice_{v}" for v in _literal_values(node.args[0])}
            out |= {v for kw in node.keywords if kw.arg == "key" for v in _literal_values(kw.value)}
            out |= _literal_values(node.args[6]) if len(node.args) > 6 else set()  # _item(..., extra, key)
    return out


def _strings(node: ast.expr) -> set[str]:
    """The string constants of a literal: itself, a tuple's or list's items, a dict's values."""
    if isinstance(node, ast.Constant):
        return {node.value} if isinstance(node.value, str) else set()
    if isinstance(node, ast.Tuple | ast.List):
        return {s for e in node.elts for s in _strings(e)}
    if isinstance(node, ast.Dict):
        return {s for v in node.values for s in _strings(v)}
    return set()


def _assigned_strings(path: Path, names: set[str], keys: set[str] = frozenset()) -> set[str]:
    """Strings assigned to a name in `names` (`error = "login_failed"`, a dict's values), or under a dict key in
    `keys` (`{"key": "no_contract"}`)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assigned = {t.id for t in targets if isinstance(t, ast.Name)}
            assigned |= {e.id for t in targets if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)}
            if assigned & names and node.value is not None:
                out |= _strings(node.value)
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value in keys:
                    out |= _literal_values(v)
    return out


def _called_in_fstrings(path: Path, names: set[str]) -> set[str]:
    """Literal first arguments of calls to `names` inside f-strings, which Babel's extractor cannot see on Python
    3.11 (an f-string is one token there): `f"...{text('error_title', lang)}..."` in gateway/api/errors.py."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.JoinedStr):
            for call in ast.walk(node):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in names
                        and call.args):
                    out |= _literal_values(call.args[0])
    return out


def _bands() -> set[str]:
    bands = set()
    for path in (ROOT / "crm_bridge" / "data" / "tariffs").glob("*.toml"):
        for version in tomllib.loads(path.read_text("utf-8")).get("versions", []):
            bands |= {b["band"] for b in version.get("bands", [])}
    return bands


def portal_keys() -> set[str]:
    """Every key the portal names: extracted, and built at run time."""
    alerts = ROOT / "crm_bridge" / "alerts"
    words = {"ticket_status": NEXT, "alert_status": ALERT_STATUSES, "kind": KINDS, "severity": SEVERITIES,
             "band": _bands() | {"total"}, "category": CATEGORIES, "role": [r.value for r in Role],
             "mode": [m.value for m in BasicChargeMode], "move": NEXT_ON_DESK.values(), "status": STATUSES,
             "limit": LIMITS, "alert_type": _keyword_values(alerts, "type")}
    built = {f"{prefix}_{w}" for prefix, values in words.items() for w in values}
    built |= _keyword_values(alerts, "text_key") | _advice_keys()
    built |= {"error_other", "error_csrf", "category_alert"}  # gateway/api/errors.py, gateway/portal/__init__.py
    for path in (ROOT / "gateway" / "portal").glob("*.py"):  # error = "login_failed", {"key": "no_contract"}
        built |= _assigned_strings(path, {"error"}, {"key"}) | _called_in_fstrings(path, {"text", "t"})
    built |= _called_in_fstrings(ROOT / "gateway" / "api" / "errors.py", {"text"})
    return extracted(PORTAL_MAPPING.read_text("utf-8")) | built


def report_keys() -> set[str]:
    """Every key the reports name: extracted, and the mail subjects and titles gateway/report_jobs.py picks."""
    built = _assigned_strings(ROOT / "gateway" / "report_jobs.py", {"SUBJECTS"})
    built |= {f"band_{b}" for b in _bands()} | {f"ticket_{s}" for s in NEXT}
    built |= {f"mode_{m.value}" for m in BasicChargeMode} | set(STATUSES)
    return extracted(REPORTS_MAPPING) | built


def _text_calls(folder: Path) -> set[str]:
    """`section.key` of every `text("section", "key", ...)` call with two literal arguments in `folder`'s modules."""
    out: set[str] = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "text"
                    and len(node.args) >= 2):
                sections, keys = _literal_values(node.args[0]), _literal_values(node.args[1])
                out |= {f"{a}.{b}" for a in sections for b in keys}
    return out


def notify_keys() -> set[str]:
    """Every key the notifications name: their literal `text()` calls, each event's subject and body (texts.render
    picks them by the event's kind), and the words texts.values looks up (severity, ticket kind and status)."""
    events = [kind for kind in EventKind if kind is not EventKind.DIGEST]
    built = {f"{kind.value}.{part}" for kind in events for part in ("subject", "body")}
    built |= {f"severity.{s}" for s in SEVERITIES} | {f"ticket_kind.{k}" for k in KINDS}
    built |= {f"status.{s}" for s in NEXT}
    return _text_calls(ROOT / "crm_bridge" / "notify") | built


@pytest.mark.parametrize(("domain", "used"), [("portal", portal_keys), ("reports", report_keys),
                                              ("notify", notify_keys)])
def test_every_key_in_both_languages_with_the_same_placeholders_and_every_used_key_present(domain, used):
    catalogs = read(DOMAINS[domain])
    assert len(catalogs["zh"]) > SIZES[domain], "the catalogue was read"
    keys = used()
    assert not problems(catalogs, keys), "\n".join(problems(catalogs, keys))


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_placeholders_are_flagged_python_brace_format(domain):
    for folder in LANGS.values():
        po = (DOMAINS[domain] / folder / "LC_MESSAGES" / "messages.po").read_text("utf-8")
        assert "python-brace-format" in po
        assert not flag_problems(po), (folder, flag_problems(po))


def test_the_scan_finds_keys_of_every_kind():
    portal = portal_keys()
    assert {"login", "limit_bad", "error_title", "alert_demand", "alert_threshold_kwh", "advice_power_factor_any",
            "alert_type_demand_100", "ticket_status_in_progress", "login_failed", "no_contract"} <= portal
    reports = report_keys()
    assert {"monthly_title", "mail_monthly_subject", "evidence_text", "band_valley"} <= reports
    assert len(portal) > 150
    assert len(reports) > 80
    notify = notify_keys()
    assert {"misc.none", "digest.item", "report.amount", "alert.opened.body", "severity.critical",
            "status.in_progress"} <= notify


def test_the_toml_catalogues_are_gone():
    """Texts live in the .po files only: a messages.toml that reappears is to be merged into them and removed."""
    assert not (ROOT / "gateway" / "portal" / "messages.toml").exists()
    assert not (ROOT / "reports" / "messages.toml").exists()
    assert not (ROOT / "crm_bridge" / "notify" / "messages.toml").exists()


def _catalog(locale: str, entries: dict[str, str]) -> Catalog:
    c = Catalog(locale=locale)
    for key, text in entries.items():
        c.add(key, text)
    return c


def test_the_checker_names_each_thing_an_incomplete_catalogue_lacks():
    zh = _catalog("zh_CN", {"title": "标题", "due_in": "剩余 {d}", "only_zh": "只有中文", "blank": ""})
    en = _catalog("en", {"title": "Title", "due_in": "due in {days}", "blank": "Blank"})
    found = problems({"zh": zh, "en": en}, ["title", "used_nowhere_defined"])
    assert "only_zh: not in the en catalogue" in found
    assert "blank: empty in zh" in found
    assert any(p.startswith("due_in: placeholders differ") for p in found)
    assert "used_nowhere_defined: used by the code, not in the zh catalogue" in found
    assert "used_nowhere_defined: used by the code, not in the en catalogue" in found
    assert not any(p.startswith("title") for p in found)
    assert not problems({"zh": _catalog("zh_CN", {"a": "甲 {x}"}), "en": _catalog("en", {"a": "A {x}"})}, ["a"])


def test_the_flag_check_names_an_unflagged_placeholder():
    po = '#, python-brace-format\nmsgid "due_in"\nmsgstr "due in {d}"\n\nmsgid "overdue_by"\nmsgstr "by {d}"\n'
    assert flag_problems(po) == ["overdue_by"]
    wrapped = 'msgid "body"\nmsgstr ""\n"Line one\\n"\n"due in {d}"\n'  # a text on continuation lines
    assert flag_problems(wrapped) == ["body"]
