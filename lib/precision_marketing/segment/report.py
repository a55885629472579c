"""The segment report: an HTML page with PNG charts (sizes, profile heatmap, PCA, silhouette by k).

Charts are drawn from bounded inputs only: k profiles, the silhouette scores and a capped,
seeded sample of customers projected to 2-D by Spark MLlib PCA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from pyspark.ml.feature import PCA
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from precision_marketing import reports
from precision_marketing.segment.model import VECTOR
from precision_marketing.segment.naming import Profile


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


def _sizes_chart(segments: Sequence[Segment]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(segments) + 1.5))
    labels = [f"{s.id}: {s.name}" for s in segments]
    ax.barh(labels, [s.profile.size for s in segments], color="#4C72B0")
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    ax.set_title("Segment sizes")
    return reports.png(fig, dpi=100)


def _heatmap(segments: Sequence[Segment], features: Sequence[str]) -> bytes:
    z = np.array([[s.profile.z.get(f, 0.0) for f in features] for s in segments])
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(features), 1.5 + 0.5 * len(segments)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(segments)), [f"{s.id}: {s.name}" for s in segments], fontsize=8)
    for (i, j), value in np.ndenumerate(z):
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="vs population (sd)")
    ax.set_title("Feature profile")
    return reports.png(fig, dpi=100)


def _pca_chart(projection: Projection, segments: Sequence[Segment]) -> bytes:
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
    return reports.png(fig, dpi=100)


def _silhouette_chart(scores: dict[int, float], chosen: int) -> bytes:
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
    return reports.png(fig, dpi=100)


def page(
    title: str,
    segments: Sequence[Segment],
    features: Sequence[str],
    profile_features: Sequence[str],
    projection: Projection,
    scores: dict[int, float],
    chosen_k: int,
    facts: Mapping[str, str],
) -> reports.Page:
    # A profile column without a value in any segment (a source the shop does not have) says
    # nothing: "features left out" already names what the data lacks.
    shown = [
        f for f in profile_features if any(s.profile.medians.get(f) is not None for s in segments)
    ]
    table = reports.Table(
        ["id", "name", "size", "share", *shown, "description"],
        [
            [s.id, s.name, s.profile.size, f"{s.profile.share:.1%}",
             *(s.profile.medians.get(f) for f in shown), s.description]
            for s in segments
        ],
        text_columns=frozenset({"description"}),
        decimals=2,
    )  # fmt: skip
    figures = [
        reports.Figure("sizes.png", "Segment sizes", _sizes_chart(segments)),
        reports.Figure("profile_heatmap.png", "Feature profile", _heatmap(segments, features)),
        reports.Figure("pca.png", "PCA projection", _pca_chart(projection, segments)),
        reports.Figure("silhouette.png", "Silhouette by k", _silhouette_chart(scores, chosen_k)),
    ]
    return reports.Page(
        title,
        facts,
        [reports.Section("Segments (medians)", tables=[table], figures=figures)],
    )
