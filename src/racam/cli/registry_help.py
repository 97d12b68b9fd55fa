"""Help text that lists registered names, filled in when the help is shown.

Write ``{methods}``, ``{backbones}``, ``{networks}`` or ``{datasets}`` in an option's help and
give the command ``cls=RegistryHelpCommand``: the placeholder becomes the names of that
registry (:func:`racam.catalog.names`). The registries import torch, so they are read only when
a command's ``--help`` is printed and ``racam`` itself still starts at once.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

from racam.catalog import KINDS


def choices_text(kind: str) -> str:
    """``"ablationcam, fullgrad, ..., xgradcam+fgbp"``: every registered name of ``kind``."""
    from racam.catalog import names

    return ", ".join(names(kind))


def fill(text: str) -> str:
    """``text`` with every ``{kind}`` placeholder replaced by the names of that registry."""
    for kind in KINDS:
        if "{" + kind + "}" in text:
            text = text.replace("{" + kind + "}", choices_text(kind))
    return text


class RegistryHelpCommand(TyperCommand):
    """A typer command whose option help may name registries (``{methods}``, ...)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's own click types
        """Fill in the registered names, then format the help as usual."""
        for param in self.params:
            text = getattr(param, "help", None)
            if text and "{" in text:
                setattr(param, "help", fill(text))  # noqa: B010  # Parameter has no typed .help
        super().format_help(ctx, formatter)
