"""The notebook's own kernel, asked what it loaded and read.

A server that builds or runs a notebook usually knows a kernel that ran it: the session the
notebook has open. That kernel's ``sys.modules`` (beyond a fresh kernel's) and the files it
read say what static inference cannot see (core/trace.py). It is asked with a silent execute
request whose only work is one ``user_expressions`` entry, evaluated by the kernel's own
jupyter_mlbox; nothing runs when the kernel is busy (it would wait behind the user's cell), is
not a Python kernel with jupyter_mlbox, or does not answer in time: then only the notebook's
imports count, and the job says why.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from ..core.trace import Trace

#: Seconds the kernel gets to answer: its first answer computes the fresh-kernel baseline.
ANSWER_TIMEOUT = 60

_EXPRESSION = "__import__('jupyter_mlbox.core.trace', fromlist=['_']).live_report({root!r})"


async def _kernel_of(serverapp, api_path: str):
    """The running kernel of the session that has ``api_path`` open, or None."""
    sessions = await serverapp.session_manager.list_sessions()
    for session in sessions:
        if session.get("path") == api_path and session.get("kernel"):
            kernel_id = session["kernel"]["id"]
            if kernel_id in serverapp.kernel_manager:
                return serverapp.kernel_manager.get_kernel(kernel_id)
    return None


async def live_trace(serverapp, api_path: str, root: Path) -> tuple[Trace | None, str]:
    """``(trace, note)``: what the notebook's kernel loaded and read under ``root``, or None
    and one sentence saying why not (empty when the notebook has no kernel)."""
    kernel = await _kernel_of(serverapp, api_path)
    if kernel is None:
        return None, ""
    if getattr(kernel, "execution_state", "idle") == "busy":
        return None, ("the notebook's kernel is busy, so what it loaded was not asked; only the "
                      "notebook's imports count (run again when it is idle)")
    client = kernel.client()
    client.start_channels()
    try:
        msg_id = client.execute("", silent=True, store_history=False,
                                user_expressions={"mlbox": _EXPRESSION.format(root=str(root))})
        while True:
            reply = await client.get_shell_msg(timeout=ANSWER_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    except Exception:  # noqa: BLE001 - queue.Empty or a dead channel: say it, go on
        return None, (f"the notebook's kernel did not answer within {ANSWER_TIMEOUT} s; only "
                      f"the notebook's imports count")
    finally:
        client.stop_channels()
    answer = reply["content"].get("user_expressions", {}).get("mlbox", {})
    if answer.get("status") != "ok":
        return None, (f"the notebook's kernel could not say what it loaded "
                      f"({answer.get('ename', 'no answer')}: it needs jupyter_mlbox installed "
                      f"in the kernel's environment); only the notebook's imports count")
    report = json.loads(ast.literal_eval(answer["data"]["text/plain"]))
    return Trace(frozenset(report["modules"]), tuple(Path(f) for f in report["files"])), ""
