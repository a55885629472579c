"""How a user's exports map onto the data contract (conf/sources.yaml), and the column transforms
that turn their values into bronze's text form.

The file is data like the rest of the config: typed, and a wrong key, format or contract field
fails at load time with its dotted path. A source left out of the file has no files to read: it
flows through the pipeline as an empty batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DateType, TimestampNTZType, TimestampType

from precision_marketing.config import Config, ConfigError, from_dict
from precision_marketing.conform import HAS_OFFSET
from precision_marketing.contracts import SOURCES, Source

# Pattern letters that parse an offset or zone: such times carry their own, time_zone is not used.
_OFFSET_LETTERS = re.compile(r"[XxZOVz]")


# A CRM or catalog export without a change time: every row counts as known since then, so a
# customer exists from signup_date on (point-in-time features); a later export of the same
# customer replaces it (silver keeps the newest batch on equal times).
KNOWN_SINCE_EVER = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Fallback:
    """What fills a contract field that the files do not have at all, and the warning said."""

    value: Callable[[Mapping[str, Column]], Column]  # from the row's other contract fields
    consequence: str


def _line_of_item(fields: Mapping[str, Column]) -> Column:
    """Numbers an order's line by its item, stably across files, so a later refund of the same
    item matches its sale (a positive int: 1 + hash mod 2^31 - 1)."""
    return (F.pmod(F.xxhash64(fields["item_id"]), F.lit(2**31 - 1)) + 1).cast("int")


FALLBACKS: dict[tuple[str, str], Fallback] = {
    ("transactions", "line_no"): Fallback(
        _line_of_item,
        "lines are numbered by item_id, so two lines of one item in an order count as one "
        "(the later one); map line_no if the export has a line number",
    ),
    ("crm", "updated_at"): Fallback(
        lambda _: F.lit(KNOWN_SINCE_EVER),
        f"every row counts as the customer's state since {KNOWN_SINCE_EVER} (signup_date "
        "still decides who existed when); map updated_at to keep CRM history point in time",
    ),
    ("catalog", "updated_at"): Fallback(
        lambda _: F.lit(KNOWN_SINCE_EVER),
        f"every row counts as the item's state since {KNOWN_SINCE_EVER}",
    ),
}


@dataclass(frozen=True)
class SourceMapping:
    """One source in the user's terms; unlisted contract fields keep their own names."""

    folder: str | None = None  # None: the contract's folder; relative to storage.landing
    format: Literal["csv", "jsonl", "parquet"] | None = None  # None: the contract's
    delimiter: str = ","
    columns: dict[str, str] = field(default_factory=dict)  # contract field -> your column
    constants: dict[str, Any] = field(default_factory=dict)  # contract field -> every row's value
    timestamp_format: str | None = None  # Spark datetime pattern; None: ISO-8601
    time_zone: str | None = None  # zone of times without an offset; None: they need one
    # Spark datetime pattern of the date fields (birth_date, signup_date); None: yyyy-MM-dd.
    date_format: str | None = None


@dataclass(frozen=True)
class SourcesFile:
    sources: dict[str, SourceMapping] = field(default_factory=dict)


@dataclass(frozen=True)
class MappedSource:
    """A contract source as the user's files hold it."""

    source: Source
    mapping: SourceMapping

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def fmt(self) -> str:
        return self.mapping.format or self.source.fmt

    @property
    def folder(self) -> str:
        return self.mapping.folder or self.source.folder

    def column_of(self, field_name: str) -> str | None:
        """The user's column holding a contract field, or None when a constant fills it."""
        if field_name in self.mapping.constants:
            return None
        return self.mapping.columns.get(field_name, field_name)

    def read_columns(self) -> dict[str, str]:
        """User column -> contract field, for every field read from the files."""
        return {
            column: f.name
            for f in self.source.schema.fields
            if (column := self.column_of(f.name)) is not None
        }

    def named_columns(self) -> list[str]:
        """Columns the mapping names explicitly (a warning when no file of a batch has one)."""
        return [c for f, c in self.mapping.columns.items() if f not in self.mapping.constants]


def as_contract(source: Source) -> MappedSource:
    """The synthetic world's own layout: contract names, default folder and format."""
    return MappedSource(source, SourceMapping())


def load_sources(config: Config) -> dict[str, MappedSource]:
    """The sources the user's file lists (absent ones have no files to read)."""
    return parse_sources(config.sources_path())


def parse_sources(path: Path) -> dict[str, MappedSource]:
    if not path.is_file():
        raise ConfigError(f"ingest.sources_file: no file at {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        parsed = from_dict(SourcesFile, data)
        return {name: _checked(name, m) for name, m in parsed.sources.items()}
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _checked(name: str, mapping: SourceMapping) -> MappedSource:
    where = f"sources.{name}"
    if name not in SOURCES:
        raise ConfigError(f"unknown source '{where}' (known: {', '.join(sorted(SOURCES))})")
    source = SOURCES[name]
    fields = source.schema.fieldNames()
    for section in ("columns", "constants"):
        for key in getattr(mapping, section):
            if key not in fields:
                raise ConfigError(
                    f"'{where}.{section}.{key}' is not a field of the {name} contract "
                    f"(fields: {', '.join(fields)})"
                )
    if len(mapping.delimiter) != 1:
        raise ConfigError(f"'{where}.delimiter': one character expected, got {mapping.delimiter!r}")
    if mapping.time_zone is not None:
        try:
            ZoneInfo(mapping.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"'{where}.time_zone': unknown time zone {mapping.time_zone!r}"
            ) from exc
    return MappedSource(source, mapping)


def bronze_time(value: Column, dtype: DataType, mapping: SourceMapping) -> Column:
    """A time field as ISO-8601 text with an offset, or the raw text when it does not parse
    (so validation quarantines it with the value on record).

    Without `time_zone`, a time whose text or pattern carries no offset stays as it came: it is
    quarantined (rule *_time_valid) rather than silently read as UTC.
    """
    fmt, zone = mapping.timestamp_format, mapping.time_zone
    if isinstance(dtype, TimestampType):  # an instant (Parquet): nothing to interpret
        return F.date_format(value, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
    if isinstance(dtype, TimestampNTZType):  # a wall-clock time (Parquet): needs the zone
        return _iso_in_zone(value, zone) if zone else value.cast("string")
    text = value.cast("string")
    if fmt is None and zone is None:
        return text
    if fmt is not None and zone is None and not _OFFSET_LETTERS.search(_unquoted(fmt)):
        return text
    if fmt is not None and (zone is None or _OFFSET_LETTERS.search(_unquoted(fmt))):
        instant = F.try_to_timestamp(text, F.lit(fmt))
        return F.coalesce(F.date_format(instant, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX"), text)
    assert zone is not None
    parsed = F.try_to_timestamp(text, F.lit(fmt)) if fmt else F.try_to_timestamp(text)
    # LTZ -> NTZ in the session zone gives back the text's wall-clock time.
    local = _iso_in_zone(parsed.cast("timestamp_ntz"), zone)
    if fmt is None:  # ISO input: a time that carries its own offset is kept as it is
        local = F.when(text.rlike(HAS_OFFSET), text).otherwise(local)
    return F.coalesce(local, text)


def bronze_date(value: Column, dtype: DataType, mapping: SourceMapping) -> Column:
    """A date field as yyyy-MM-dd text, or the raw text when it does not parse."""
    if isinstance(dtype, DateType | TimestampType | TimestampNTZType):
        return F.date_format(value, "yyyy-MM-dd")
    text = value.cast("string")
    if mapping.date_format is None:
        return text
    parsed = F.try_to_date(text, mapping.date_format)
    return F.coalesce(F.date_format(parsed, "yyyy-MM-dd"), text)


def _iso_in_zone(local: Column, zone: str) -> Column:
    """A wall-clock time (timestamp_ntz) in `zone` -> ISO-8601 text with the zone's offset then."""
    utc = F.convert_timezone(F.lit(zone), F.lit("UTC"), local)
    minutes = F.timestamp_diff("MINUTE", utc, local)
    offset = F.format_string(
        "%s%02d:%02d",
        F.when(minutes < 0, F.lit("-")).otherwise(F.lit("+")),
        (F.abs(minutes) / 60).cast("int"),
        (F.abs(minutes) % 60).cast("int"),
    )
    has_fraction = F.date_format(local, "SSSSSS") != "000000"
    wall = F.when(has_fraction, F.date_format(local, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")).otherwise(
        F.date_format(local, "yyyy-MM-dd'T'HH:mm:ss")
    )
    return F.when(local.isNotNull(), F.concat(wall, offset))


def _unquoted(pattern: str) -> str:
    """A datetime pattern without its quoted literals ('T' is text, not a pattern letter)."""
    return re.sub(r"'[^']*'", "", pattern)
