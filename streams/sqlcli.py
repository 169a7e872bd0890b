"""``slowleak sql``: run a query and format the result for a terminal, JSON lines or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from slowleak.models import Settings
from slowleak.streams.clickhouse import connect

__all__ = ["format_table", "run_sql"]

MAX_CELL = 60


def _cell(value: Any, max_cell: int = MAX_CELL) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= max_cell else text[: max_cell - 1] + "…"


def format_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, max_cell: int = MAX_CELL
) -> str:
    """Rows as an aligned text table with a row count; cells longer than ``max_cell`` are cut."""
    cells = [[_cell(v, max_cell) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def _json_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return "".join(
        orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode() + "\n"
        for row in rows
    )


def _csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    return buf.getvalue()


def run_sql(
    settings: Settings,
    query: str,
    *,
    fmt: str = "table",
    client: Any = None,
    max_cell: int = MAX_CELL,
) -> str:
    """Run ``query`` in slowleak's database and return the formatted result."""
    own = client is None
    client = client or connect(settings, database=settings.clickhouse_database)
    try:
        result = client.query(query)
        columns, rows = list(result.column_names), result.result_rows
    finally:
        if own:
            client.close()
    if fmt == "json":
        return _json_lines(columns, rows)
    if fmt == "csv":
        return _csv(columns, rows)
    return format_table(columns, rows, max_cell=max_cell)
