"""Turn Linux key codes into text.

A keyboard-wedge scanner types a code by pressing key *positions*; which character a position
means depends on the keyboard layout the scanner was set up for (a German scanner presses the
key at the US "Y" position to type "z"). The kernel does not translate, and the daemon has no
X/console keymap to lean on, so we carry our own tables for the layouts shops use.

Codes are the numbers of linux/input-event-codes.h, so this module needs no evdev import and
can be tested anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["us", "de", "fr"]

# linux/input-event-codes.h
KEY_ENTER = 28
KEY_KPENTER = 96
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_LEFTCTRL = 29
KEY_RIGHTCTRL = 97
KEY_LEFTALT = 56
KEY_RIGHTALT = 100
KEY_CAPSLOCK = 58
KEY_NUMLOCK = 69
KEY_TAB = 15

SHIFT_KEYS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
CTRL_KEYS = frozenset({KEY_LEFTCTRL, KEY_RIGHTCTRL})
ENTER_KEYS = frozenset({KEY_ENTER, KEY_KPENTER})

# Position -> (plain, shifted) on a US keyboard.
_US: dict[int, tuple[str, str]] = {
    2: ("1", "!"),
    3: ("2", "@"),
    4: ("3", "#"),
    5: ("4", "$"),
    6: ("5", "%"),
    7: ("6", "^"),
    8: ("7", "&"),
    9: ("8", "*"),
    10: ("9", "("),
    11: ("0", ")"),
    12: ("-", "_"),
    13: ("=", "+"),
    16: ("q", "Q"),
    17: ("w", "W"),
    18: ("e", "E"),
    19: ("r", "R"),
    20: ("t", "T"),
    21: ("y", "Y"),
    22: ("u", "U"),
    23: ("i", "I"),
    24: ("o", "O"),
    25: ("p", "P"),
    26: ("[", "{"),
    27: ("]", "}"),
    30: ("a", "A"),
    31: ("s", "S"),
    32: ("d", "D"),
    33: ("f", "F"),
    34: ("g", "G"),
    35: ("h", "H"),
    36: ("j", "J"),
    37: ("k", "K"),
    38: ("l", "L"),
    39: (";", ":"),
    40: ("'", '"'),
    41: ("`", "~"),
    43: ("\\", "|"),
    44: ("z", "Z"),
    45: ("x", "X"),
    46: ("c", "C"),
    47: ("v", "V"),
    48: ("b", "B"),
    49: ("n", "N"),
    50: ("m", "M"),
    51: (",", "<"),
    52: (".", ">"),
    53: ("/", "?"),
    57: (" ", " "),
    86: ("\\", "|"),
}

_DE_CHANGES: dict[int, tuple[str, str]] = {
    3: ("2", '"'),
    4: ("3", "§"),
    7: ("6", "&"),
    8: ("7", "/"),
    9: ("8", "("),
    10: ("9", ")"),
    11: ("0", "="),
    12: ("ß", "?"),
    13: ("\u00b4", "`"),  # acute accent (a dead key on a real keyboard)
    21: ("z", "Z"),
    26: ("ü", "Ü"),
    27: ("+", "*"),
    39: ("ö", "Ö"),
    40: ("ä", "Ä"),
    41: ("^", "°"),
    43: ("#", "'"),
    44: ("y", "Y"),
    51: (",", ";"),
    52: (".", ":"),
    53: ("-", "_"),
    86: ("<", ">"),
}
_DE_ALTGR: dict[int, str] = {
    3: "²",
    4: "³",
    8: "{",
    9: "[",
    10: "]",
    11: "}",
    12: "\\",
    16: "@",
    18: "€",
    27: "~",
    86: "|",
}

# AZERTY: digits are the *shifted* number row.
_FR_CHANGES: dict[int, tuple[str, str]] = {
    2: ("&", "1"),
    3: ("é", "2"),
    4: ('"', "3"),
    5: ("'", "4"),
    6: ("(", "5"),
    7: ("-", "6"),
    8: ("è", "7"),
    9: ("_", "8"),
    10: ("ç", "9"),
    11: ("à", "0"),
    12: (")", "°"),
    13: ("=", "+"),
    16: ("a", "A"),
    17: ("z", "Z"),
    26: ("^", "¨"),
    27: ("$", "£"),
    30: ("q", "Q"),
    39: ("m", "M"),
    40: ("ù", "%"),
    41: ("²", "²"),
    43: ("*", "µ"),
    44: ("w", "W"),
    50: (",", "?"),
    51: (";", "."),
    52: (":", "/"),
    53: ("!", "§"),
    86: ("<", ">"),
}
_FR_ALTGR: dict[int, str] = {
    3: "~",
    4: "#",
    5: "{",
    6: "[",
    7: "|",
    8: "`",
    9: "\\",
    10: "^",
    11: "@",
    12: "]",
    13: "}",
    18: "€",
}

# Keypad keys type the same on every layout (num lock on, as scanners assume).
_KEYPAD: dict[int, str] = {
    71: "7",
    72: "8",
    73: "9",
    74: "-",
    75: "4",
    76: "5",
    77: "6",
    78: "+",
    79: "1",
    80: "2",
    81: "3",
    82: "0",
    83: ".",
    55: "*",
    98: "/",
}

LAYOUTS: dict[str, tuple[dict[int, tuple[str, str]], dict[int, str]]] = {
    "us": (_US, {}),
    "de": ({**_US, **_DE_CHANGES}, _DE_ALTGR),
    "fr": ({**_US, **_FR_CHANGES}, _FR_ALTGR),
}


@dataclass
class KeyMap:
    """Keyboard state plus a layout: feed it key events, it returns the characters typed."""

    layout: str = "us"
    shift: set[int] = field(default_factory=set)
    ctrl: set[int] = field(default_factory=set)
    altgr: bool = False
    caps_lock: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            known = ", ".join(sorted(LAYOUTS))
            raise ValueError(f"unknown keyboard layout {self.layout!r} (known: {known})")
        self._plain, self._altgr = LAYOUTS[self.layout]

    def reset(self, held: set[int] | None = None) -> None:
        """Forget modifier state, then take the keys the device says are down now."""
        held = held or set()
        self.shift = held & SHIFT_KEYS
        self.ctrl = held & CTRL_KEYS
        self.altgr = KEY_RIGHTALT in held

    def key(self, code: int, value: int) -> str | None:
        """One EV_KEY event (value 1 down, 0 up, 2 autorepeat) -> the character it typed.

        Enter is returned as "\\n" so callers can end a scan on it; Tab as "\\t". Keys that
        type nothing (modifiers, releases, function keys, repeats) return None.
        """
        if code in SHIFT_KEYS:
            (self.shift.add if value else self.shift.discard)(code)
            return None
        if code in CTRL_KEYS:
            (self.ctrl.add if value else self.ctrl.discard)(code)
            return None
        if code == KEY_RIGHTALT:
            self.altgr = bool(value)
            return None
        if value != 1:
            return None
        if code == KEY_CAPSLOCK:
            self.caps_lock = not self.caps_lock
            return None
        if code in ENTER_KEYS:
            return "\n"
        if code == KEY_TAB:
            return "\t"
        if code in _KEYPAD:
            return _KEYPAD[code]
        if self.altgr:
            return self._altgr.get(code)
        pair = self._plain.get(code)
        if pair is None:
            return None
        plain, shifted = pair
        if self.ctrl:
            return _control_char(plain)
        upper = bool(self.shift)
        if self.caps_lock and plain.isalpha():
            upper = not upper
        return shifted if upper else plain


def _control_char(plain: str) -> str | None:
    """Ctrl+key as ASCII control codes: scanners send GS (Ctrl+]) between GS1 fields."""
    ch = plain.upper()
    if "@" <= ch <= "_":
        return chr(ord(ch) - 64)
    return None
