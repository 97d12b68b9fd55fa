"""Help text that lists the heat-map methods of the registry, filled in when help is shown.

The names come from :func:`racam.cam.registry.method_names`, which imports torch; the list is
read only when a command's ``--help`` is printed, so ``racam`` itself still starts at once.
Write ``{methods}`` in an option's help and give the command ``cls=MethodsHelpCommand``.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand

PLACEHOLDER = "{methods}"


def methods_text() -> str:
    """``"ablationcam, fullgrad, ..., xgradcam+fgbp"``: every accepted method name."""
    from racam.cam.registry import method_names

    return ", ".join(method_names())


class MethodsHelpCommand(TyperCommand):
    """A typer command whose option help may contain ``{methods}`` (the method names)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:  # typer's own click types
        """Fill in the method names, then format the help as usual."""
        for param in self.params:
            text = getattr(param, "help", None)
            if text and PLACEHOLDER in text:
                text = text.replace(PLACEHOLDER, methods_text())
                setattr(param, "help", text)  # noqa: B010  # Parameter has no typed .help
        super().format_help(ctx, formatter)
