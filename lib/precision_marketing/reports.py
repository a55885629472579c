"""The HTML reports of every stage: one Jinja2 page template, tables, PNG figures, one writer.

Stages hand over bounded content (facts, tables of a few hundred rows at most, PNG bytes drawn
with matplotlib); this module owns the markup, its escaping and the one way files reach the
warehouse (Hadoop's FileSystem, so local paths, HDFS and object stores alike).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # headless: no display on a cluster node or in CI
import matplotlib.pyplot as plt
from matplotlib.figure import Figure as MplFigure
from pyspark.sql import SparkSession

from precision_marketing.io import files


@dataclass(frozen=True)
class Table:
    """Rows under a header; `text_columns` wrap (descriptions), every other cell stays on a line."""

    head: Sequence[str]
    rows: Sequence[Sequence[Any]]
    text_columns: frozenset[str] = frozenset()
    decimals: int = 4


@dataclass(frozen=True)
class Figure:
    file: str
    caption: str
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class Example:
    """A titled list: e.g. one customer with what they did and what they are recommended."""

    title: str
    text: str
    items: Sequence[str]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    figures: Sequence[Figure] = ()
    examples: Sequence[Example] = ()


@dataclass(frozen=True)
class Page:
    title: str
    facts: Mapping[str, str]
    sections: Sequence[Section]

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def cell(value: Any, decimals: int = 4) -> str:
    """A number as people read it: thousands separators, fixed decimals for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{decimals}f}"
    return str(value)


_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_ENVIRONMENT.filters["cell"] = cell
# Read through importlib so the template is found in the zip spark-submit ships, too.
_PAGE = _ENVIRONMENT.from_string(
    resources.files("precision_marketing").joinpath("templates/report.html.j2").read_text()
)


def render(page: Page) -> str:
    return _PAGE.render(page=page)


def png(fig: MplFigure, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (charts are drawn once)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def write(spark: SparkSession, folder: str, page: Page) -> str:
    """Writes index.html and the page's PNGs into `folder`; returns the page's URI."""
    for figure in page.figures:
        files.write_bytes(spark, f"{folder}/{figure.file}", figure.png)
    files.write_text(spark, f"{folder}/index.html", render(page))
    return f"{folder}/index.html"
