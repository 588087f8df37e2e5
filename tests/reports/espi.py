"""The NAESB ESPI 4.0 schema as a validator, and the check every Green Button export in the tests goes through."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from functools import cache
from pathlib import Path

import xmlschema

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
NS = {"a": ATOM, "e": ESPI}
REPO = Path(__file__).resolve().parents[2]
XSD = REPO.parent / "shared" / "data" / "espi" / "espi.xsd"


@cache
def espi_schema() -> xmlschema.XMLSchema:
    """espi.xsd as a validator, read from ../shared beside the repository (never copied into it)."""
    # Not skipped when absent: shared/ lies beside every clone (developers' and CI's), and an export that was never
    # validated must not pass.
    assert XSD.exists(), f"the NAESB ESPI schema is not at {XSD}"
    text = XSD.read_text(encoding="utf-8")
    # It imports atom.xsd, which is not shipped: the Atom envelope is checked by `validate` instead, and each ESPI
    # resource inside <content> is validated against espi.xsd alone (the README's way).
    text = re.sub(r'<xs:import\s+namespace="http://www.w3.org/2005/Atom"[^>]*/>', "", text)
    # The file binds no default namespace, so its unprefixed references (base="IdentifiedObject", type="UInt32")
    # point at no namespace and no validator can build it; bind them to the target namespace, which they mean.
    head = text[: text.index(">", text.index("<xs:schema"))]
    if 'xmlns="' not in head:
        text = text.replace("<xs:schema", f'<xs:schema xmlns="{ESPI}"', 1)
    return xmlschema.XMLSchema(text)


def validate(xml: bytes) -> ET.Element:
    """The Atom envelope by hand (atom.xsd is not here), and every ESPI resource in it against espi.xsd."""
    schema = espi_schema()
    root = ET.fromstring(xml)
    assert root.tag == f"{{{ATOM}}}feed"
    for tag in ("id", "title", "updated"):
        assert len(root.findall(f"a:{tag}", NS)) == 1, tag
    selves, ups, related = [], set(), []
    for entry in root.findall("a:entry", NS):
        for tag in ("id", "title", "published", "updated", "content"):
            assert len(entry.findall(f"a:{tag}", NS)) == 1, tag
        datetime.fromisoformat(entry.findtext("a:updated", namespaces=NS).replace("Z", "+00:00"))
        links = entry.findall("a:link", NS)
        rels = [link.get("rel") for link in links]
        assert rels.count("self") == 1
        assert rels.count("up") == 1
        selves += [link.get("href") for link in links if link.get("rel") == "self"]
        ups |= {link.get("href") for link in links if link.get("rel") == "up"}
        related += [link.get("href") for link in links if link.get("rel") == "related"]
        content = entry.find("a:content", NS)
        assert not (content.text or "").strip()
        (resource,) = list(content)
        assert resource.tag.startswith(f"{{{ESPI}}}")
        schema.validate(resource)  # raises, naming the element and the rule
    assert len(set(selves)) == len(selves)
    assert all(href in selves or href in ups for href in related), "a related link leads nowhere"
    return root


