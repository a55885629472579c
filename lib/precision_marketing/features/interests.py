"""Interest tags: LDA topics over each customer's category/brand activity, named by top terms.

The vocabulary is categories plus brands (tens of terms), so topic descriptions are tiny and are
brought to the driver to name the topics; the per-customer work stays in Spark.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.ml.clustering import LDA
from pyspark.ml.feature import CountVectorizerModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from precision_marketing.config import LdaConfig

log = logging.getLogger(__name__)

TAGS_SCHEMA = StructType(
    [
        StructField("customer_id", StringType(), True),
        StructField("interest_tags", ArrayType(StringType(), True), True),
    ]
)


@dataclass(frozen=True)
class Topics:
    names: list[str]
    tags: DataFrame | None  # customer_id, interest_tags; None: skipped (tags stay null)
    documents: int = 0
    skipped: str | None = None  # why no topics were fitted


def topic_names(described: list[list[str]]) -> list[str]:
    """'term+term' per topic; a repeated name gets its topic number so every name is unique."""
    names = ["+".join(terms) for terms in described]
    return [f"{n}#{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def documents(terms: DataFrame) -> DataFrame:
    """One bag of terms per customer (customer_id, terms): what LDA reads on every iteration.

    `terms` holds arrays of terms, any number of rows per customer; customers with none are left
    out (a document of no words says nothing to LDA).
    """
    bags = terms.groupBy("customer_id").agg(
        F.sort_array(F.flatten(F.collect_list("terms"))).alias("terms")
    )
    return bags.where(F.size("terms") > 0)


def vocabulary(docs: DataFrame) -> list[str]:
    """Every term of `docs`, most frequent first, ties by term.

    CountVectorizer orders tied terms as the partitions arrive, and a term's index decides
    which topic LDA's random start leans it to. Categories plus brands: tens of terms, collected.
    """
    # One row per distinct term: the vocabulary is tens of terms.
    counts = docs.select(F.explode("terms").alias("term")).groupBy("term").count()
    return [row["term"] for row in counts.orderBy(F.desc("count"), "term").collect()]


def interest_tags(docs: DataFrame, params: LdaConfig) -> Topics:
    """Fits LDA (fixed seed) on customer x term counts; tags = the heaviest topics per customer.

    LDA iterates over `docs`: pass a persisted frame. Too few documents or distinct terms for
    params.topics to mean anything (one catalog item made six topics all named after it):
    skipped with one warning.
    """
    n_docs = docs.count()
    if n_docs < max(params.min_documents, 1):
        return _skipped(f"{n_docs} customers with terms (lda.min_documents {params.min_documents})",
                        n_docs)  # fmt: skip
    vocab = vocabulary(docs)
    if len(vocab) < params.vocabulary_needed():
        return _skipped(
            f"{len(vocab)} distinct terms for {params.topics} topics "
            f"(lda.min_vocabulary {params.vocabulary_needed()})",
            n_docs,
        )
    vectorizer = CountVectorizerModel.from_vocabulary(vocab, inputCol="terms", outputCol="counts")
    counted = vectorizer.transform(docs).select("customer_id", "counts")
    # Online LDA samples its mini-batches and seeds each document's start per partition, in the
    # partition's row order: fitted on the cluster's own partitioning, the topics (and every
    # tag) changed with spark.sql.shuffle.partitions. A fixed partitioning by customer keeps them.
    fixed = counted.repartition(params.partitions, "customer_id").sortWithinPartitions(
        "customer_id"
    )
    lda = LDA(
        k=params.topics,
        maxIter=params.max_iter,
        seed=params.seed,
        featuresCol="counts",
        optimizer="online",
    ).fit(fixed)
    # k rows of a few term indices: bounded by config, safe to collect.
    described = lda.describeTopics(params.terms_per_topic).orderBy("topic").collect()
    names = topic_names([[vocab[i] for i in row["termIndices"]] for row in described])
    tags = lda.transform(counted).select(
        "customer_id",
        ranked_tags(
            vector_to_array(F.col("topicDistribution")),
            names,
            params.min_topic_weight,
            params.tags_per_customer,
        ).alias("interest_tags"),
    )
    return Topics(names, tags, n_docs)


def ranked_tags(weights: Column, names: list[str], min_weight: float, count: int) -> Column:
    """The names of the `count` heaviest topics of `weights` (one per topic, in `names`'
    order) that weigh at least `min_weight`; equal weights rank by name, so a tie cannot
    depend on how the rows were partitioned."""
    weighted = F.transform(
        weights,
        lambda w, i: F.struct(
            (-w).alias("key"), F.element_at(F.array(*map(F.lit, names)), i + 1).alias("tag")
        ),
    )
    heavy = F.filter(weighted, lambda s: -s["key"] >= min_weight)
    return F.transform(F.slice(F.sort_array(heavy), 1, count), lambda s: s["tag"])


def _skipped(why: str, n_docs: int) -> Topics:
    log.warning("interest tags skipped: %s; interest_tags stays null", why)
    return Topics([], None, n_docs, why)
