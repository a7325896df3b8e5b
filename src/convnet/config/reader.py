"""Reads cuda-convnet's INI files (Python 2 ConfigParser syntax) keeping the order of sections and
the line of every key, so that later errors can point at them.

Syntax kept from upstream: `[section]` headers, `key=value` or `key: value`, comment lines that
start with `#` or `;`, values continued on indented lines, and keys matched without regard to case
(ConfigParser lower-cased them). A comment after a value is removed when `#` or `;` follows
whitespace (`epsW=0.01  # was 0.001`), which leaves schedule syntax such as
`dexp[base=0.01;numSteps=4]` intact.
"""

import re
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import ConfigError, ConfigWarning

_SECTION = re.compile(r"^\[(?P<name>[^\]]*)\]\s*$")
_OPTION = re.compile(r"^(?P<key>[^:=\s][^:=]*?)\s*[:=]\s*(?P<value>.*)$")
_INLINE_COMMENT = re.compile(r"\s[#;].*$")


@dataclass
class Entry:
    key: str      # as written
    value: str
    line: int


@dataclass
class Section:
    name: str
    line: int
    file: str
    entries: Dict[str, Entry] = field(default_factory=dict)  # lower-cased key -> entry

    def get(self, key: str) -> Optional[Entry]:
        return self.entries.get(key.lower())

    def error(self, message, key=None, **kw) -> ConfigError:
        entry = self.get(key) if key else None
        return ConfigError(message, file=self.file, line=entry.line if entry else self.line,
                           section=self.name, key=entry.key if entry else key, **kw)


@dataclass
class ConfigFile:
    path: str
    text: str
    sections: List[Section]

    def section(self, name: str) -> Optional[Section]:
        for s in self.sections:
            if s.name == name:
                return s
        return None


def parse_text(text: str, path: str = "<string>") -> ConfigFile:
    sections: List[Section] = []
    by_name: Dict[str, Section] = {}
    current: Optional[Section] = None
    last: Optional[Entry] = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if raw[0] in " \t" and last is not None:  # continuation of the previous value
            last.value = (last.value + "\n" + _INLINE_COMMENT.sub("", stripped)).strip()
            continue
        m = _SECTION.match(stripped)
        if m:
            name = m.group("name").strip()
            if not name:
                raise ConfigError("empty section name", file=path, line=number)
            if name in by_name:
                raise ConfigError(f"section [{name}] is defined twice (first at line "
                                  f"{by_name[name].line})", file=path, line=number, section=name)
            current = by_name[name] = Section(name, number, path)
            sections.append(current)
            last = None
            continue
        m = _OPTION.match(stripped)
        if not m:
            raise ConfigError("cannot parse this line", file=path, line=number,
                              expected="'[section]' or 'key=value'", found=stripped)
        if current is None:
            raise ConfigError("key=value before any [section]", file=path, line=number,
                              found=stripped)
        key, value = m.group("key").strip(), _INLINE_COMMENT.sub("", m.group("value")).strip()
        previous = current.entries.get(key.lower())
        if previous is not None:
            warnings.warn(f"{path}:{number}: [{current.name}] {key} is set again (line "
                          f"{previous.line}); the last value wins", ConfigWarning, stacklevel=2)
        last = current.entries[key.lower()] = Entry(key, value, number)
    return ConfigFile(path, text, sections)


def read(path) -> ConfigFile:
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError("file not found", file=path) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not a text file ({e.reason} at byte {e.start})", file=path) from None
    except OSError as e:
        raise ConfigError(f"cannot read the file: {e.strerror}", file=path) from None
    return parse_text(text, path)
