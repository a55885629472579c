"""The segment report: an HTML page with PNG charts (sizes, profile heatmap, PCA, silhouette by k).

Charts are drawn from bounded inputs only: k profiles, the silhouette scores and a capped,
seeded sample of customers projected to 2-D by Spark MLlib PCA.
"""

from __future__ import annotations

import html
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on a cluster node or in CI

import matplotlib.pyplot as plt
import numpy as np
from pyspark.ml.feature import PCA
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from precision_marketing.segments.model import VECTOR
from precision_marketing.segments.naming import Profile


@dataclass(frozen=True)
class Segment:
    id: int
    name: str
    description: str
    profile: Profile
    top: list[tuple[str, float]]


@dataclass(frozen=True)
class Projection:
    x: np.ndarray
    y: np.ndarray
    segment_ids: np.ndarray
    explained: list[float]


def pca_sample(assigned: DataFrame, cap: int, seed: int) -> Projection:
    """2-D PCA of at most `cap` customers (seeded sample, then sorted before the cap)."""
    total = assigned.count()
    fraction = min(1.0, 1.2 * cap / total) if total else 1.0
    sample = (
        assigned.sample(fraction=fraction, seed=seed)
        .select("customer_id", "segment_id", VECTOR)
        .orderBy("customer_id")
        .limit(cap)
        .cache()
    )
    try:
        pca = PCA(k=2, inputCol=VECTOR, outputCol="pca").fit(sample)
        # At most `cap` rows: safe to bring to the driver.
        rows = (
            pca.transform(sample)
            .select("segment_id", vector_to_array(F.col("pca")).alias("xy"))
            .collect()
        )
        explained = [float(v) for v in pca.explainedVariance.toArray()]
    finally:
        sample.unpersist()
    return Projection(
        np.array([r["xy"][0] for r in rows]),
        np.array([r["xy"][1] for r in rows]),
        np.array([r["segment_id"] for r in rows]),
        explained,
    )


def _sizes_chart(segments: Sequence[Segment], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(segments) + 1.5))
    labels = [f"{s.id}: {s.name}" for s in segments]
    ax.barh(labels, [s.profile.size for s in segments], color="#4C72B0")
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    ax.set_title("Segment sizes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _heatmap(segments: Sequence[Segment], features: Sequence[str], path: Path) -> None:
    z = np.array([[s.profile.z.get(f, 0.0) for f in features] for s in segments])
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(features), 1.5 + 0.5 * len(segments)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(segments)), [f"{s.id}: {s.name}" for s in segments], fontsize=8)
    for (i, j), value in np.ndenumerate(z):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="segment mean vs population (sd)")
    ax.set_title("Feature profile")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pca_chart(projection: Projection, segments: Sequence[Segment], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for i, s in enumerate(segments):
        mask = projection.segment_ids == s.id
        ax.scatter(
            projection.x[mask], projection.y[mask], s=6, alpha=0.6, color=cmap(i % 10),
            label=f"{s.id}: {s.name}",
        )  # fmt: skip
    ev = projection.explained
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)" if ev else "PC1")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%} of variance)" if len(ev) > 1 else "PC2")
    ax.set_title(f"Customers on two principal components (sample of {len(projection.x):,})")
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _silhouette_chart(scores: dict[int, float], chosen: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    if scores:
        ks = sorted(scores)
        ax.plot(ks, [scores[k] for k in ks], marker="o")
        ax.axvline(chosen, color="grey", linestyle="--", label=f"chosen k = {chosen}")
        ax.legend()
    else:
        ax.text(0.5, 0.5, f"k fixed in config: {chosen}", ha="center", va="center")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    ax.set_title("Silhouette by k")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render(
    out: Path,
    title: str,
    segments: Sequence[Segment],
    features: Sequence[str],
    profile_features: Sequence[str],
    projection: Projection,
    scores: dict[int, float],
    chosen_k: int,
    facts: dict[str, str],
) -> list[Path]:
    """Writes index.html and its PNGs into the local folder `out`; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    charts = {
        "sizes.png": "Segment sizes",
        "profile_heatmap.png": "Feature profile",
        "pca.png": "PCA projection",
        "silhouette.png": "Silhouette by k",
    }
    _sizes_chart(segments, out / "sizes.png")
    _heatmap(segments, features, out / "profile_heatmap.png")
    _pca_chart(projection, segments, out / "pca.png")
    _silhouette_chart(scores, chosen_k, out / "silhouette.png")
    e = html.escape
    # A profile column without a value in any segment (a source the shop does not have) says
    # nothing: "features left out" already names what the data lacks.
    profile_features = [
        f for f in profile_features if any(s.profile.medians.get(f) is not None for s in segments)
    ]
    head = "".join(f"<th>{e(f)}</th>" for f in profile_features)
    body = "".join(
        f"<tr><td>{s.id}</td><td>{e(s.name)}</td><td>{s.profile.size:,}</td>"
        f"<td>{s.profile.share:.1%}</td>"
        + "".join(f"<td>{_cell(s.profile.medians.get(f))}</td>" for f in profile_features)
        + f'<td class="text">{e(s.description)}</td></tr>'
        for s in segments
    )
    fact_rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts.items())
    images = "".join(
        f'<figure><img src="{name}" alt="{e(alt)}"><figcaption>{e(alt)}</figcaption></figure>'
        for name, alt in charts.items()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left;white-space:nowrap}}
td.text{{white-space:normal;min-width:28em}}.scroll{{overflow-x:auto}}img{{max-width:100%}}
figure{{display:inline-block;margin:1em;vertical-align:top}}</style></head>
<body><h1>{e(title)}</h1>
<table>{fact_rows}</table>
<h2>Segments (medians)</h2>
<div class="scroll"><table>
<tr><th>id</th><th>name</th><th>size</th><th>share</th>{head}<th>description</th></tr>
{body}</table></div>
{images}
</body></html>
"""
    (out / "index.html").write_text(page)
    return [out / "index.html", *(out / name for name in charts)]


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def publish(spark: SparkSession, files: Sequence[Path], target: str) -> None:
    """Copies local report files to `target` through Hadoop's FileSystem (local, HDFS, S3)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    folder = jvm.org.apache.hadoop.fs.Path(target)
    fs = folder.getFileSystem(conf)
    fs.mkdirs(folder)
    for file in files:
        destination = jvm.org.apache.hadoop.fs.Path(f"{target}/{file.name}")
        fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(str(file)), destination)


def write_report(spark: SparkSession, target: str, **content: object) -> str:
    """Renders in a temporary local folder, then publishes to `target` (reports_path)."""
    with tempfile.TemporaryDirectory(prefix="segment-report-") as tmp:
        written = render(Path(tmp), **content)  # type: ignore[arg-type]
        publish(spark, written, target)
    return f"{target}/index.html"
