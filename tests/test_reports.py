"""The one report page: escaping, number formats, wrapping columns, files written once each."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from pyspark.sql import SparkSession

from precision_marketing import reports


def _page() -> reports.Page:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    table = reports.Table(
        ["name", "customers", "rate", "description"],
        [["<b>Loyal</b>", 12345, 0.123456, "Buys often & spends a lot"], ["Lapsed", 7, None, ""]],
        text_columns=frozenset({"description"}),
        decimals=3,
    )
    return reports.Page(
        "Segments <as of> 2026-12-01",
        {"run id": "r1", "features left out": "sessions (all null)"},
        [
            reports.Section(
                "Segments",
                paragraphs=["Medians per segment."],
                tables=[table],
                figures=[reports.Figure("chart.png", "A chart", reports.png(fig))],
            ),
            reports.Section(
                "Examples", examples=[reports.Example("C1", "recently: tea", ["1. cup", "2. pot"])]
            ),
        ],
    )


def test_the_page_escapes_text_and_formats_numbers() -> None:
    html = reports.render(_page())
    assert "<title>Segments &lt;as of&gt; 2026-12-01</title>" in html
    assert "<td>&lt;b&gt;Loyal&lt;/b&gt;</td>" in html
    assert '<td class="num">12,345</td><td class="num">0.123</td>' in html
    # The description wraps; every other cell stays on one line.
    assert '<td class="text">Buys often &amp; spends a lot</td>' in html
    assert '<th class="text">description</th>' in html
    # None is an empty cell, never the text "None".
    assert '<td class="num">7</td><td></td>' in html
    assert "None" not in html
    assert '<img src="chart.png" alt="A chart">' in html
    assert "<li>1. cup</li><li>2. pot</li>" in html
    assert "<tr><th>features left out</th><td>sessions (all null)</td></tr>" in html


def test_cells_read_like_numbers() -> None:
    assert reports.cell(1234567) == "1,234,567"
    assert reports.cell(0.5, 2) == "0.50"
    assert reports.cell(True) == "True"
    assert reports.cell(None) == ""
    assert reports.cell("x") == "x"


def test_write_puts_the_page_and_each_figure_in_the_folder(
    spark: SparkSession, tmp_path: Path
) -> None:
    page = _page()
    uri = reports.write(spark, str(tmp_path / "report"), page)
    assert uri == f"{tmp_path}/report/index.html"
    written = sorted(p.name for p in (tmp_path / "report").iterdir() if not p.name.startswith("."))
    assert written == ["chart.png", "index.html"]
    assert (tmp_path / "report" / "chart.png").read_bytes() == page.figures[0].png
    assert (tmp_path / "report" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report" / "index.html").read_text() == reports.render(page)
