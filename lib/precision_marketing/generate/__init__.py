"""Synthetic raw data with planted ground truth: the embedded default input of the suite.

`generate.py` builds the sources as pure DataFrame functions, `model.py` holds the world as data,
`job.py` writes landing files and ground-truth tables (docs/data-contract.md describes both).
"""
