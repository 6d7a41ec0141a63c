"""Errors and warnings: one base class the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class PathfinderError(ValueError):
    """A user-facing error: says where (file, key or column, row), what is wrong and the fix."""

    def __init__(
        self,
        what: str,
        *,
        file: str | None = None,
        where: str | None = None,
        row: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.what, self.file, self.where, self.row, self.fix = what, file, where, row, fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """`file: where, row N: what. Fix: ...` on a single line."""
        loc = ", ".join(
            p for p in (self.where, f"row {self.row}" if self.row is not None else None) if p
        )
        head = ": ".join(p for p in (self.file, loc) if p)
        text = f"{head}: {self.what}" if head else self.what
        if self.fix:
            text = f"{text}. Fix: {self.fix}"
        return " ".join(text.split())


class DesignError(PathfinderError):
    """The design file is malformed or inconsistent."""


class DataError(PathfinderError):
    """An outcome data file cannot be read or lacks what the design needs."""


class PanelError(PathfinderError):
    """Design and data together fail a named panel check."""


class PathfinderWarning(UserWarning):
    """Base class for the package's warnings."""


class FewClustersWarning(PathfinderWarning):
    """Too few treated or comparison clusters for the chosen inference to be reliable."""


class ExcludedRowsWarning(PathfinderWarning):
    """Rows were excluded from the analysis; the exclusions ledger counts them."""


class DataWarning(PathfinderWarning):
    """The data were read by a convention the caller should know of (units first treated
    after the data's last period are compared as not yet treated, as R's did does)."""


class EstimationError(PathfinderError):
    """This analysis cannot be estimated on these data (the report says why; the run goes on)."""


def cell(value: object) -> str:
    """A data cell as an error message shows it: numpy's numbers as plain numbers (6.5, not
    np.float64(6.5)), a missing value (None, NaN, pandas' NA) as 'empty', text quoted."""
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    if value is None or type(value).__name__ == "NAType" or value != value:
        return "empty"
    return repr(value)
