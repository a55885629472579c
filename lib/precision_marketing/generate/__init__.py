"""Synthetic raw data with planted ground truth: the embedded default input of the suite.

One module per thing drawn (`items`, `customers`, `orders`, `events`, `crm`, `defects`, `truth`)
on the column helpers of `draws`; `generate.py` gathers the builders, `model.py` holds the world
as data, `job.py` writes landing files and ground-truth tables (docs/data-contract.md describes
both).
"""
