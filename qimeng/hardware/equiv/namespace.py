"""Putting two designs into one simulator namespace by prefixing every module name they define.

Module names come from Yosys; the rename touches only module declarations (``module NAME``,
``endmodule : NAME``) and instantiations (``NAME #(`` or ``NAME instance (``).
"""

from __future__ import annotations

import re


def rename_modules(source: str, modules: tuple[str, ...], prefix: str) -> str:
    """``source`` with each module in ``modules`` renamed to ``prefix + name``."""
    for name in sorted(modules, key=len, reverse=True):
        n = re.escape(name)
        declaration = rf"(\b(?:module|macromodule)\s+){n}\b"
        end_label = rf"(\bendmodule\s*:\s*){n}\b"
        instance = rf"(^|[^\w$.`'\\])({n})(?=\s*#\s*\(|\s+[A-Za-z_][\w$]*\s*(?:\[[^\]]*\]\s*)?\()"
        source = re.sub(declaration, rf"\g<1>{prefix}{name}", source)
        source = re.sub(end_label, rf"\g<1>{prefix}{name}", source)
        source = re.sub(instance, rf"\g<1>{prefix}{name}", source, flags=re.MULTILINE)
    return source
