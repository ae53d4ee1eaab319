"""What a client id may be: the one rule of the CSV readers (drs/data/schema.py), the database source (drs/data/dbsource.py)
and the API's JSON records, in words the sender can act on. Standard library only: the database source checks
its rows without loading polars.

An id is the client's key: it names the client on the page, in links (/clients/<id>), in logs and in every file.
After the spaces around it are removed (as they always were), it must be
- not empty,
- at most `max_id_length` characters (config.json; default 200),
- plain text on one line: no control character (C0, which holds NUL, tab and the line breaks; DEL; C1), no line or
  paragraph separator (U+2028, U+2029), no bidirectional control (Unicode's Bidi_Control: U+061C, U+200E, U+200F,
  U+202A to U+202E, U+2066 to U+2069), which would show a name other than the one stored, and no invisible format
  character (soft hyphen U+00AD, zero-width U+200B to U+200D, U+2060 to U+2064, U+FEFF, the tags U+E0000 to
  U+E007F) nor a lone surrogate (U+D800 to U+DFFF), which would make two ids that look the same, or one that looks
  empty.

A file with an id that breaks the rule is rejected whole, like any other bad value (drs/data/schema.py).

More: docs/data.md.
"""

from __future__ import annotations

import re

DEFAULT_MAX_LENGTH = 200
# The most max_id_length may be: an id's links must fit gunicorn's limit_request_line (4094 bytes, gunicorn.conf.py),
# or the view answers 414. A character is at most 4 bytes in UTF-8, 12 percent-encoded in /clients/<id>; a stranger
# is sent on to /signin?next=<that link>, quoted again (%XX -> %25XX): 20 bytes a character. 'GET /signin?next=/clients/'
# and ' HTTP/1.1' take 35 bytes, so 35 + 20 * 200 = 4035 <= 4094 (203 characters would take 4095).
LONGEST = 200
REQUEST_LINE = 4094
SETTING = "max_id_length"
SHOWN = 40  # characters of a too-long id shown in a message
# (first, last) code points an id may not hold
FORBIDDEN = (
    (0x00, 0x1F),  # C0 controls: NUL, tab, line feed, carriage return, escape...
    (0x7F, 0x9F),  # DEL and the C1 controls
    (0x061C, 0x061C),  # Arabic letter mark
    (0x200E, 0x200F),  # left-to-right and right-to-left marks
    (0x2028, 0x2029),  # line and paragraph separators
    (0x202A, 0x202E),  # bidirectional embeddings and overrides
    (0x2066, 0x2069),  # bidirectional isolates
    (0x00AD, 0x00AD),  # soft hyphen: invisible
    (0x200B, 0x200D),  # zero-width space, non-joiner and joiner
    (0x2060, 0x2064),  # word joiner and the invisible operators
    (0xFEFF, 0xFEFF),  # zero-width no-break space (a byte-order mark inside a text)
    (0xE0000, 0xE007F),  # tag characters: invisible
    (SURROGATES := (0xD800, 0xDFFF)),  # lone surrogates: a JSON body can carry one (\\ud800); not text in UTF-8
)
CONTROL = re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in FORBIDDEN) + "]")
# the same class for polars (Rust's regex): its strings are valid UTF-8, which holds no surrogate (nor can its regex name one)
CONTROL_REGEX = "[" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in FORBIDDEN if (a, b) != SURROGATES) + "]"
# what str.strip() removes around an id (str.isspace()), for readers that strip elsewhere (polars' strip_chars)
SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
CONTROL_WORDS = "holds a control character"
EMPTY_WORDS = "is empty"
PLAIN_TEXT = "an id must be plain text on one line (no NUL, tab, line break or other control character)"


def has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def too_long_words(max_length: int) -> str:
    return f"is longer than {max_length} characters ({SETTING})"


def clipped(text: str) -> str:
    """An id as a message shows it: quoted, escapes for what cannot be seen, only its start when it is long."""
    return repr(text) if len(text) <= SHOWN else f"{len(text)} characters: {text[:SHOWN]!r}…"


def checked(raw: str, max_length: int) -> tuple[str, str | None]:
    """An id as given (a JSON record's), as kept and what is wrong with it (None when good): the spaces around it
    removed as the readers remove them (SPACES), then not empty and `problem`'s rule. Where is the caller's to say."""
    text = raw.strip(SPACES)
    return text, (problem(text, max_length) if text else EMPTY_WORDS)


def problem(text: str, max_length: int) -> str | None:
    """What is wrong with the (stripped, non-empty) id `text`, in the words of drs/data/schema.py's messages; None when it
    is a good id. Where it is (the line, row or record) is the caller's to say."""
    if has_control(text):
        return f"{CONTROL_WORDS}: {PLAIN_TEXT}"
    if len(text) > max_length:
        return too_long_words(max_length)
    return None
