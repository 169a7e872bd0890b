"""The data contracts in the forms other systems read.

- ``json/<stem>.schema.json``: JSON Schema (draft 2020-12) of each Kafka message, generated from
  :mod:`slowleak.models` so that producers in other languages can validate what they publish.
  Regenerate them with ``python -m slowleak.schemas``; a test fails when they are stale.
- ``clickhouse/NNNN_verb_object.sql``: the ClickHouse migrations, applied in number order and
  never edited once applied.

Pure: no network, and nothing is read but this package's files (or a folder given to
:func:`migrations`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from slowleak.models import Alert, DeadLetter, FeedbackEvent, InteractionEvent

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "JSON_SCHEMA_MODELS",
    "MIGRATION_FILE_NAME",
    "Migration",
    "json_schema",
    "migrations",
    "render_json_schemas",
    "write_json_schemas",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_SCHEMA_ID = "https://slowleak.dev/schemas/{stem}.schema.json"

#: File stem -> model; each becomes ``json/<stem>.schema.json``.
JSON_SCHEMA_MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "interaction_event": InteractionEvent,
        "feedback_event": FeedbackEvent,
        "alert": Alert,
        "dead_letter": DeadLetter,
    }
)

MIGRATION_FILE_NAME = re.compile(r"^\d{4}_[a-z0-9]+(_[a-z0-9]+)*\.sql$")


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of one model of :data:`JSON_SCHEMA_MODELS`, with ``$schema`` and ``$id``."""
    stems = [stem for stem, known in JSON_SCHEMA_MODELS.items() if known is model]
    if not stems:
        known_names = ", ".join(m.__name__ for m in JSON_SCHEMA_MODELS.values())
        raise ValueError(
            f"{model.__name__} has no published JSON Schema; add it to JSON_SCHEMA_MODELS "
            f"(published: {known_names})"
        )
    schema = model.model_json_schema(mode="validation")
    head: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": JSON_SCHEMA_ID.format(stem=stems[0]),
        "title": schema.pop("title", model.__name__),
    }
    return head | schema


def render_json_schemas() -> dict[str, str]:
    """File name -> file text of every published JSON Schema, byte for byte as checked in."""
    return {
        f"{stem}.schema.json": json.dumps(json_schema(model), indent=2, sort_keys=False) + "\n"
        for stem, model in JSON_SCHEMA_MODELS.items()
    }


def write_json_schemas(directory: Path) -> list[Path]:
    """Write every published JSON Schema into ``directory``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_json_schemas().items():
        path = directory / name
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


@dataclass(frozen=True)
class Migration:
    """One ClickHouse migration file. ``name`` is the file name without ``.sql``."""

    number: int
    name: str
    sql: str
    checksum: str  # sha256 hex of ``sql`` (UTF-8); a change means an applied file was edited


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations in ``directory`` (default: this package's ``clickhouse/``), in order.

    Raises ``ValueError`` naming the file when a name is not ``NNNN_verb_object.sql`` or when
    the numbers do not run 1, 2, ... N without gaps or repeats.
    """
    folder: Traversable = (
        resources.files(__name__).joinpath("clickhouse") if directory is None else directory
    )
    by_number: dict[int, Migration] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if not MIGRATION_FILE_NAME.match(entry.name):
            raise ValueError(
                f"{entry}: migration files are named NNNN_verb_object.sql (four digits, then "
                "lower-case words joined by '_'), e.g. 0005_add_events_region.sql; rename it"
            )
        number = int(entry.name[:4])
        if number in by_number:
            raise ValueError(
                f"{entry}: number {number:04d} is already used by {by_number[number].name}.sql; "
                "give the newer file the next free number"
            )
        data = entry.read_bytes()
        try:
            sql = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{entry}: not UTF-8 ({error}); save it as UTF-8") from error
        if not sql.strip():
            raise ValueError(f"{entry}: the file is empty; a migration holds SQL statements")
        by_number[number] = Migration(
            number=number,
            name=entry.name.removesuffix(".sql"),
            sql=sql,
            checksum=hashlib.sha256(data).hexdigest(),
        )
    ordered = [by_number[n] for n in sorted(by_number)]
    for expected, migration in enumerate(ordered, start=1):
        if migration.number != expected:
            raise ValueError(
                f"{folder.joinpath(migration.name + '.sql')}: expected number {expected:04d} "
                "here; migrations are numbered 0001, 0002, ... without gaps"
            )
    return ordered
