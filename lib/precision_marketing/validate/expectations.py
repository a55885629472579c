"""Runs the suites with Great Expectations 1.x on Spark DataFrames and renders Data Docs.

One ephemeral GE context per validate run (no great_expectations.yml to keep in sync): each
table's suite is validated once, as a whole, on the cached batch, so GE bundles the aggregate
metrics of all its expectations into a few Spark jobs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.registry import get_expectation_impl
from pyspark.sql import DataFrame

from precision_marketing.validate.suites import Rule, Suite, resolve

log = logging.getLogger(__name__)

DOCS_SITE = "local_site"


@dataclass(frozen=True)
class Outcome:
    """What GE said about one rule on one batch."""

    rule: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: str | None
    sample: str | None
    error: str | None


class Validator:
    def __init__(self, docs_dir: str | None, sample_size: int) -> None:
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        if docs_dir:
            self.context.update_data_docs_site(
                DOCS_SITE,
                {  # type: ignore[typeddict-unknown-key]
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": docs_dir,
                    },
                },
            )
        # persist=False: the caller caches the batch and releases it; GE would pin it for good.
        self.source = self.context.data_sources.add_spark(name="bronze", persist=False)
        self.result_format = {"result_format": "BASIC", "partial_unexpected_count": sample_size}

    def validate(self, suite: Suite, df: DataFrame, params: dict[str, Any]) -> list[Outcome]:
        """Validates `df` against every expectation of `suite` in one GE run."""
        name = f"bronze.{suite.table}"
        asset = self.source.add_dataframe_asset(name=suite.table)
        batch = asset.add_batch_definition_whole_dataframe("batch")
        ge_suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for rule in suite.expectations:
            ge_suite.add_expectation(_expectation(rule, params))
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=ge_suite)
        )
        result = definition.run(
            batch_parameters={"dataframe": df}, result_format=self.result_format
        )
        # GE returns results grouped by column, not in suite order: match them by rule name.
        by_rule = {r.expectation_config.meta["rule"]: r for r in result.results}  # type: ignore[union-attr]
        return [_outcome(rule.rule, by_rule[rule.rule]) for rule in suite.expectations]

    def build_docs(self) -> str | None:
        if not self.docs_dir:
            return None
        return self.context.build_data_docs(site_names=[DOCS_SITE])[DOCS_SITE]


def _expectation(rule: Rule, params: dict[str, Any]) -> Any:
    kwargs = {k: resolve(v, params) for k, v in rule.kwargs.items()}
    condition = rule.effective_row_condition()
    if condition:
        kwargs |= {"row_condition": condition, "condition_parser": "spark"}
    meta = {"rule": rule.rule, "severity": rule.severity, "notes": rule.description}
    return get_expectation_impl(rule.expectation)(**kwargs, meta=meta)


def _outcome(rule: str, result: Any) -> Outcome:
    values = result.result or {}
    error = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        error = str(result.exception_info.get("exception_message"))
    observed = values.get("observed_value")
    sample = values.get("partial_unexpected_list")
    return Outcome(
        rule=rule,
        success=bool(result.success),
        element_count=values.get("element_count"),
        unexpected_count=values.get("unexpected_count"),
        unexpected_percent=values.get("unexpected_percent"),
        observed_value=None if observed is None else str(observed),
        sample=json.dumps(sample, default=str) if sample else None,
        error=error,
    )
