"""Gettext catalogues read by Babel: the one loader of the notifications', the reports' and the portal's texts.

`<root>/<locale>/LC_MESSAGES/messages.po` per language, msgid = the text's key, compiled in memory on first use, so
there is no .mo to build or to go stale. It lives in crm_bridge, which the reports and the gateway may import and
which imports neither (ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations


class Catalogue:
    """One gettext domain: `<root>/<locale>/LC_MESSAGES/messages.po` for each language, read and compiled by Babel.

    A key is in a language when its msgstr there is not empty (and not fuzzy): what gettext would translate.
    """

    def __init__(self, root: Traversable, locales: Mapping[Any, str]) -> None:
        self.translations: dict[str, Translations] = {}
        self.keys: dict[str, frozenset[str]] = {}
        for lang, locale in locales.items():
            with root.joinpath(locale, "LC_MESSAGES", "messages.po").open("rb") as f:
                catalog = read_po(f, locale=locale, domain="messages")
            mo = BytesIO()
            write_mo(mo, catalog)
            mo.seek(0)
            self.translations[lang] = Translations(mo, domain="messages")
            self.keys[lang] = frozenset(m.id for m in catalog if isinstance(m.id, str) and m.id and m.string
                                        and not m.fuzzy)

    def has(self, key: str, lang: str) -> bool:
        return key in self.keys.get(lang, ())

    def gettext(self, key: str, lang: str) -> str:
        """The text of `key` in `lang` (the key itself when the catalogue lacks it, as gettext does)."""
        return self.translations[lang].gettext(key)

    def entries(self) -> dict[str, dict[str, str]]:
        """Every key in any language, with its text in each language that has it."""
        keys = sorted(set().union(*self.keys.values()))
        return {k: {lang: self.gettext(k, lang) for lang in self.keys if self.has(k, lang)} for k in keys}
