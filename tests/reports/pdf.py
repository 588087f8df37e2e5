"""Reading a PDF back with poppler (Debian poppler-utils): its text, its fonts, its pages as images."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed: apt-get install poppler-utils (deploy/dev.sh installs it)"
    return path


def _run(*args: str, data: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "r.pdf"
        pdf.write_bytes(data)
        out = subprocess.run([*args, str(pdf), "-"], capture_output=True, check=True, timeout=120)
    return out.stdout.decode("utf-8")


def pdf_text(data: bytes) -> str:
    """The text of every page (pdftotext, layout kept so table rows stay on one line)."""
    return _run(_tool("pdftotext"), "-layout", "-enc", "UTF-8", data=data)


def pdf_fonts(data: bytes) -> list[dict[str, str]]:
    """pdffonts' table: name, type and whether each font is embedded."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "r.pdf"
        pdf.write_bytes(data)
        out = subprocess.run([_tool("pdffonts"), str(pdf)], capture_output=True, check=True,
                             timeout=120).stdout.decode()
    rows = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        # name, type words..., encoding, emb, sub, uni, object, id: the flags sit at fixed places from the end
        rows.append({"name": parts[0], "emb": parts[-5], "type": " ".join(parts[1:-6])})
    return rows


def pdf_pages(data: bytes, dpi: int = 40) -> list[Image.Image]:
    """Each page rendered to a greyscale image (pdftoppm)."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "r.pdf"
        pdf.write_bytes(data)
        subprocess.run([_tool("pdftoppm"), "-r", str(dpi), "-gray", "-png", str(pdf), str(Path(tmp) / "p")],
                       check=True, timeout=120)
        pages = sorted(Path(tmp).glob("p-*.png"))
        return [Image.open(p).copy() for p in pages]


def ink(page: Image.Image) -> float:
    """The share of pixels that are not white: 0 for a blank page."""
    hist = page.convert("L").histogram()
    return 1 - sum(hist[250:]) / sum(hist)


def pdf_page_count(data: bytes) -> int:
    """The page count pdfinfo reads from the document's page tree."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "r.pdf"
        pdf.write_bytes(data)
        out = subprocess.run([_tool("pdfinfo"), str(pdf)], capture_output=True, check=True,
                             timeout=120).stdout.decode()
    (pages,) = [line.split(":", 1)[1] for line in out.splitlines() if line.startswith("Pages:")]
    return int(pages)
