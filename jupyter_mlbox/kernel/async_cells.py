"""``%%mlbox`` as an async cell in ipykernel.

An input transformer turns ``%%mlbox ARGS\\nBODY`` into ``await run_mlbox_cell(ARGS, BODY)``
(and a cell that is only ``%mlbox build …`` / ``%mlbox run …`` into ``await run_mlbox_line``),
so the kernel keeps serving widget messages (the Stop button) while the cell runs, and an
interrupt (■) reaches the job as a cancellation. Elsewhere (terminal IPython, a shell without
autoawait) the magics run blocking.
"""
from __future__ import annotations

#: What the generated code imports; the entry points below live there.
MODULE = "jupyter_mlbox.kernel.async_cells"


def async_mlbox_cell(lines: list[str]) -> list[str]:
    """The input transformer (see the module docstring)."""
    if not lines:
        return lines
    first = lines[0]
    line_command = first.strip().split()[:2] in (["%mlbox", "build"], ["%mlbox", "run"]) \
        and not "".join(lines[1:]).strip() and not first.rstrip().endswith("?")
    if not line_command and not (first.startswith("%%mlbox ")
                                 or first.rstrip("\r\n") == "%%mlbox"):
        return lines
    body = "".join(lines[1:])
    if not line_command and not body.strip():
        return lines
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell" \
            or not getattr(shell, "autoawait", False):
        return lines
    module = f"__import__({MODULE!r}, fromlist=['run_mlbox_cell'])"
    if line_command:
        return [f"await {module}.run_mlbox_line({first.strip()[len('%mlbox'):].strip()!r})\n"]
    arguments = first[len("%%mlbox"):].strip()
    return [f"await {module}.run_mlbox_cell({arguments!r}, {body!r})\n"]


def install_async_transformer(shell) -> None:
    transformers = getattr(shell, "input_transformers_cleanup", None)
    if transformers is not None and type(shell).__name__ == "ZMQInteractiveShell" \
            and async_mlbox_cell not in transformers:
        transformers.append(async_mlbox_cell)


def _magics():
    from IPython import get_ipython

    return get_ipython().magics_manager.registry["MlboxMagics"]


async def run_mlbox_cell(line: str, cell: str):
    """Entry point of the async ``%%mlbox`` cell."""
    return await _magics().mlbox_cell_async(line, cell)


async def run_mlbox_line(line: str):
    """Entry point of an async ``%mlbox build|run`` cell."""
    return await _magics().mlbox_line_async(line)
