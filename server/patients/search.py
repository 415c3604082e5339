"""Patient search keys: names found in any order and case, identifiers by prefix.

A patient's name is stored in DICOM PN form (`Family^Given^Middle^Prefix^Suffix`,
groups separated by `=`). Next to it the patients table keeps two keys computed
here, in Python, so that every backend compares the same text (SQLite's
`lower()` folds ASCII only):

- `name_key`: the folded components joined by `^`, which no search token
  contains, so that a token never matches across two components. A name written
  in CJK characters also carries its family and given name written together in
  both orders (`王^小明` is found as `王小明`), since such names are typed
  without spaces.
- `identifier_key`: the folded identifier, matched by prefix.

Folding is Unicode compatibility decomposition (full-width letters and digits
become ASCII), accents of Latin, Greek and Cyrillic letters removed (`Müller` is
`muller`), then case folding (`Straße` is `strasse`).
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

NAME_KEY_LENGTH = 1024
IDENTIFIER_KEY_LENGTH = 128
_SEPARATORS = re.compile(r"[\s,^=;]+")
# Combining Diacritical Marks: the accents of Latin, Greek and Cyrillic letters. Marks of
# other scripts (kana voicing marks, Indic vowel signs) change the letter and are kept.
_ACCENTS = re.compile("[\u0300-\u036f]")
# Scripts whose names are written without spaces between family and given name.
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)


def fold(text: str) -> str:
    """The form in which names and identifiers are compared: no accents, case folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", _ACCENTS.sub("", decomposed).casefold())


def tokens(query: str) -> list[str]:
    """The folded words of a search (split on spaces, commas, ^ and =), each once."""
    return list(dict.fromkeys(t for t in _SEPARATORS.split(fold(query)) if t))


def name_key(name: str) -> str:
    """The searchable form of a DICOM PN (see the module's docstring)."""
    parts: list[str] = []
    for group in name.split("="):
        components = [c for c in (fold(c).strip() for c in group.split("^")) if c]
        parts += components
        if len(components) >= 2 and any(_CJK.search(c) for c in components[:2]):
            family, given = (re.sub(r"\s+", "", c) for c in components[:2])
            parts += [family + given, given + family]
    return "^".join(dict.fromkeys(parts))[:NAME_KEY_LENGTH]


def identifier_key(identifier: str) -> str:
    """The searchable form of a patient identifier."""
    return fold(identifier.strip())[:IDENTIFIER_KEY_LENGTH]


def matches(
    query: str, name: InstrumentedAttribute[str], identifier: InstrumentedAttribute[str]
) -> ColumnElement[bool] | None:
    """SQL condition on the keys: every word of the query in the name, or the identifier
    starting with the query; None for an empty query. LIKE wildcards are literal.
    """
    words, prefix = tokens(query), identifier_key(query)
    by_identifier = identifier.startswith(prefix, autoescape=True)
    if not words:
        return by_identifier if prefix else None
    return or_(and_(*(name.contains(word, autoescape=True) for word in words)), by_identifier)
