"""Errors and warnings of the config reader: every one names the file, line, section and key it
is about, and says what was expected and what was found."""

from typing import Optional


class ConfigError(ValueError):
    """A layer-definition or layer-parameter file that cannot be used as written."""

    def __init__(self, message: str, *, file: Optional[str] = None, line: Optional[int] = None,
                 section: Optional[str] = None, key: Optional[str] = None,
                 expected: Optional[str] = None, found: Optional[str] = None):
        self.message, self.file, self.line = message, file, line
        self.section, self.key, self.expected, self.found = section, key, expected, found
        super().__init__(self._text())

    def _text(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        if self.section is not None:
            where += f"[{self.section}] "
        if self.key is not None:
            where += f"{self.key}: "
        text = where + self.message
        told = ([f"expected {self.expected}"] if self.expected is not None else []) + \
            ([f"found {self.found!r}"] if self.found is not None else [])
        if told:
            text += f" ({', '.join(told)})"
        return text


class ConfigWarning(UserWarning):
    """Something upstream cuda-convnet accepted silently (an unknown key, say); an error under
    strict parsing."""
