"""Argument types shared by the CLI and the magics, so both speak one vocabulary.

Each raises ``argparse.ArgumentTypeError`` with a one-line reason; argparse (and IPython's
MagicArgumentParser, which turns it into a UsageError) shows it as is.
"""
from __future__ import annotations

import argparse

GPUS_HELP = ("all | none | auto | N | device=ID (default: none); auto uses GPUs when the "
             "Docker daemon has NVIDIA support and the CPU otherwise")


def gpus(text: str) -> str:
    """``--gpus``: all, none, auto, a count or device=ID[,ID], as ``docker run --gpus``."""
    if text in {"all", "none", "auto"} or text.isdigit() or text.startswith("device="):
        return text
    raise argparse.ArgumentTypeError("expected all, none, auto, a number or device=ID[,ID]")


def positive_number(text: str) -> float:
    """``--timeout``, ``--cpus``: a number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def key_value(text: str) -> tuple[str, str]:
    """``-e K=V``, ``-p NAME=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value
