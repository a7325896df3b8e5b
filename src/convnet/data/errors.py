"""The one error type of the data layer: which file, and what is wrong with it."""


class DataError(ValueError):
    """Bad input data: a corrupt, truncated or mismatched file, an unusable image, a label out of
    range. `path` names the file (or folder), `problem` says what was expected and what was found."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")
