"""One table formatter: column widths computed from the cells, for every report that prints a table.

Text columns are left-aligned and number columns right-aligned (a column is numeric when
every cell of it is an int or a float).  Floats are written with ``digits`` significant digits
in ``g`` form, or in the ``e`` form of ``sci`` columns, so the widths follow what is printed.
"""
from __future__ import annotations

from collections.abc import Sequence


def cell_text(value: object, digits: int = 7, sci: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{max(digits - 1, 0)}e}" if sci else f"{value:.{digits}g}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "",
                 digits: int = 7, sci_columns: Sequence[int] = (), gap: int = 2) -> list[str]:
    """The header line and one line per row, each column as wide as its widest cell."""
    texts = [[cell_text(v, 3 if i in sci_columns else digits, i in sci_columns) for i, v in enumerate(row)]
             for row in rows]
    numeric = [bool(rows) and all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
               for i in range(len(headers))]
    widths = [max([len(h)] + [len(t[i]) for t in texts]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)]
        return (indent + (" " * gap).join(parts)).rstrip()

    return [line(list(headers))] + [line(t) for t in texts]
