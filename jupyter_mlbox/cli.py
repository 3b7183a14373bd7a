"""``jupyter mlbox …``: the same jobs as the magics, for terminals and CI.

A thin adapter: the arguments come from the one options table (core/options.py), the defaults
from ``MlboxDefaults`` (config.py); each command calls one core job and renders its progress.
Exit status: 0 success, 1 a cell failed (its in-container traceback is printed), 2 bad usage
(a bad flag or configured value), 3 any other jupyter_mlbox error (daemon unreachable, build
failed …), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .core.options import BUILD_OPTIONS, RUN_OPTIONS, add_arguments, resolve_options
from .core.events import interrupted_during, terminal_safe
from .errors import BuildError, CellExecutionError, MlboxError, OptionError, RunTimeoutError

EXIT_OK, EXIT_CELL_FAILED, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    """Every command's arguments; option defaults are filled in later from MlboxDefaults."""
    common = argparse.ArgumentParser(add_help=False)
    add_arguments(common.add_argument_group("image options"), BUILD_OPTIONS)
    daemon = argparse.ArgumentParser(add_help=False)  # every command that talks to a daemon
    add_arguments(daemon.add_argument_group("daemon"), ("host",))
    common.add_argument("-q", "--quiet", action="store_true", help="print only results and "
                        "warnings")
    common.add_argument("-v", "--verbose", action="store_true", help="also print build logs "
                        "and container output")

    parser = argparse.ArgumentParser(
        prog="jupyter mlbox",
        description="Run a notebook in a container built from its own imports.")
    parser.add_argument("--version", action="version", version=f"jupyter_mlbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def notebook_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common, daemon], help=help_text,
                                 description=help_text)
        command.add_argument("notebook", type=Path, help="the .ipynb file")
        return command

    requirements = notebook_command("requirements", "print the inferred, pinned requirements "
                                    "(warnings on stderr)")
    requirements.add_argument("--explain", action="store_true", help="say after each line "
                              "where it comes from: index, local build (of an editable or "
                              "local install), vcs, explicit (--pip), file; first, as "
                              "comments, the declared file, Python and lock it uses")
    notebook_command("dockerfile", "print the Dockerfile that would be built")
    notebook_command("lock", "resolve the notebook's whole dependency closure, pinned to this "
                     "kernel's versions with hashes, into <notebook>.mlbox.lock (builds then "
                     "install exactly it); print its path")
    notebook_command("build", "build the image (or reuse it); print its tag last")
    run = notebook_command("run", "execute the notebook in a container and write the executed "
                           "notebook")
    run.add_argument("-o", "--output", type=Path,
                     help="where to write the executed notebook (default: <stem>.mlbox.ipynb)")
    add_arguments(run.add_argument_group("run options"),
                  [name for name in RUN_OPTIONS if name != "host"])
    export = notebook_command("export", "build a self-contained image that executes the "
                              "notebook (docker run -v $PWD/out:/out TAG)")
    export.add_argument("-t", "--tag", required=True, help="image name, e.g. "
                        "registry.example.com/team/analysis:1.0")
    export.add_argument("--push", action="store_true", help="push to the registry in the tag")
    export.add_argument("--force", action="store_true", help="move TAG even when it names an "
                        "image that is not an earlier export of this notebook (never a base "
                        "image or an mlbox/NAME:HASH tag)")
    sub.add_parser("doctor", parents=[daemon],
                   help="check the daemon, base image, GPU runtime and pip settings",
                   description="check the daemon (and which setting chose it), base image, GPU "
                   "runtime and pip settings")
    images = sub.add_parser("images", parents=[daemon],
                            help="list the images jupyter_mlbox made",
                            description="list the images jupyter_mlbox made")
    images.add_argument("--all", action="store_true", help="also the leftovers `prune` "
                        "removes: builder-stage images (the layer cache of the dependency "
                        "install) and untagged images")
    sub.add_parser("prune", parents=[daemon], help="remove jupyter_mlbox's builder-stage and untagged images "
                   "(never a tagged image, never another tool's)",
                   description="remove jupyter_mlbox's builder-stage and untagged images; the "
                   "next build of new requirements installs them without the layer cache")
    cache = sub.add_parser("cache", parents=[daemon], help="show or free the package cache "
                           "builds share (a volume on the daemon)",
                           description="`cache info` shows the package cache (uv's cache in a "
                           "named volume on the daemon, shared by every build); `cache prune` "
                           "removes it (the next build downloads again)")
    cache.add_argument("action", nargs="?", choices=["info", "prune"], default="info")
    sessions = sub.add_parser(
        "sessions", parents=[daemon], help="list the warm session containers of %%%%mlbox "
        "--session (every kernel's), or stop them",
        description="`sessions` lists every session container on the daemon (any kernel's); "
        "`sessions stop NAME|KEY|CONTAINER` removes it (a NAME stops that name in every "
        "notebook), `sessions stop --all` removes them all")
    sessions.add_argument("action", nargs="?", choices=["list", "stop"], default="list")
    sessions.add_argument("target", nargs="?", help="with stop: a session's name, key or "
                          "container id (as `sessions` lists them)")
    sessions.add_argument("--all", action="store_true", help="with stop: every session")
    return parser


def _warn(lines) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def _plan(args):
    from .core.build import plan_notebook

    plan = plan_notebook(args.notebook, args.build)[1]
    _warn(plan.warnings)
    return plan


def _done(progress, result) -> int:
    """The one-line summary on stderr, the result's handle (tag, path) last on stdout."""
    progress.close()
    print(result.summary(), file=sys.stderr)
    return EXIT_OK


def cmd_requirements(args, progress) -> int:
    plan = _plan(args)
    inference = plan.inference
    if not getattr(args, "explain", False):
        sys.stdout.write(inference.requirements_txt())
        return EXIT_OK
    from .core.provenance import requirement_from

    for line in plan.report().lines():  # the declared environment, Python and lock it used
        if line.key in {"environment", "python", "lock"}:
            print(f"# {line.label}: {line.text}")

    for req in inference.requirements:  # still a requirements file: the reason is a comment
        print(f"{req.requirement}  # {requirement_from(req.origin, req.where, req.imports)}")
    return EXIT_OK


def cmd_dockerfile(args, progress) -> int:
    sys.stdout.write(_plan(args).context.dockerfile)
    return EXIT_OK


def cmd_lock(args, progress) -> int:
    from dataclasses import replace

    from .core.lock import Lock, lock_path

    args.build = replace(args.build, relock=True)
    lock = Lock(lock_path(args.notebook), _plan(args).spec.lock_text or "")
    print(f"locked {len(lock.names())} distributions for {args.notebook.name}", file=sys.stderr)
    print(lock.path)
    return EXIT_OK


def cmd_build(args, progress) -> int:
    from .core.build import build_notebook
    from .core.engine import connect

    result = build_notebook(connect(args.run.host), args.notebook, args.build,
                            on_event=progress)
    _done(progress, result)
    print(result.tag)
    return EXIT_OK


def cmd_run(args, progress) -> int:
    from .core.engine import connect
    from .core.run import run_notebook_file

    try:
        result = run_notebook_file(connect(args.run.host), args.notebook, output=args.output,
                                   build_options=args.build, options=args.run,
                                   on_event=progress)
    except (CellExecutionError, RunTimeoutError) as err:
        progress.close()
        print(terminal_safe(f"error: {err}"), file=sys.stderr)  # text made in the container
        if err.output_path is not None:
            print(f"the executed notebook, up to the failing cell, is in {err.output_path}",
                  file=sys.stderr)
        return EXIT_CELL_FAILED if isinstance(err, CellExecutionError) else EXIT_ERROR
    progress.close()
    print(f"wrote {result.output_path} ({result.summary()})", file=sys.stderr)
    print(result.output_path)
    return EXIT_OK


def cmd_export(args, progress) -> int:
    from .core.engine import connect
    from .core.export import export_image

    result = export_image(connect(args.run.host), args.notebook, args.tag,
                          build_options=args.build,
                          push=args.push, on_event=progress, force=args.force)
    _done(progress, result)
    print(result.tag)
    return EXIT_OK


def cmd_doctor(args, progress) -> int:
    from .core.doctor import diagnose, healthy

    checks = diagnose(args.build.base_image, host=args.run.host)
    for check in checks:
        print(check.line())
    return EXIT_OK if healthy(checks) else EXIT_ERROR


def cmd_images(args, progress) -> int:
    from .core.engine import connect
    from .core.images import list_leftover_images, list_mlbox_images

    engine = connect(args.run.host)
    for image in list_mlbox_images(engine):
        print(f"{image.tag}\t{image.size / 1e6:.0f} MB\t{image.created}\t{image.notebook}")
    if getattr(args, "all", False):
        for image in list_leftover_images(engine):
            print(f"{image.tag}\t{image.size / 1e6:.0f} MB\t{image.created}\t{image.kind}")
    return EXIT_OK


def cmd_prune(args, progress) -> int:
    from .core.engine import connect
    from .core.images import prune_leftover_images

    removed, kept = prune_leftover_images(connect(args.run.host))
    for image in removed:
        print(f"removed {image.id[7:19]} ({image.kind}, {image.size / 1e6:.0f} MB)")
    for image, why in kept:
        print(f"kept {image.id[7:19]}: {why}", file=sys.stderr)
    print(f"removed {len(removed)} images, {sum(i.size for i in removed) / 1e6:.0f} MB",
          file=sys.stderr)
    return EXIT_OK


def cmd_cache(args, progress) -> int:
    from .core.engine import connect
    from .core.package_cache import cache_info, prune_cache

    engine = connect(args.run.host)
    print(cache_info(engine).text() if args.action == "info" else prune_cache(engine))
    return EXIT_OK


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def cmd_sessions(args, progress) -> int:
    from .core.engine import connect
    from .core.session import list_sessions, stop_sessions

    engine = connect(args.run.host)
    if args.action == "list":
        if args.target or args.all:
            raise OptionError("`sessions` lists them all; to stop one: sessions stop NAME")
        found = [info.describe() for info in list_sessions(engine, memory=True)]
        if not found:
            print(f"no sessions on {engine.host} (start one with %%mlbox --session)",
                  file=sys.stderr)
            return EXIT_OK
        print("NAME\tNOTEBOOK\tIMAGE\tAGE\tIDLE\tGPU\tMEMORY\tOWNER PID\tHOST\tCONTAINER\tKEY")
        for info in found:
            memory = info["memory_bytes"]
            print(terminal_safe("\t".join([
                info["name"], info["notebook"], info["image"], _duration(info["age_s"]),
                _duration(info["idle_s"]), info["gpus"],
                "-" if memory is None else f"{memory / 1e6:.0f} MB", info["owner_pid"],
                info["owner_host"], info["container"], info["key"]])))
        return EXIT_OK
    if bool(args.target) == bool(args.all):
        raise OptionError("sessions stop: name one session (NAME, KEY or CONTAINER, as "
                          "`jupyter mlbox sessions` lists them) or give --all")
    stopped = stop_sessions(engine, None if args.all else args.target)
    if not stopped and not args.all:
        raise MlboxError(f"no session {args.target!r} on {engine.host} "
                         f"(`jupyter mlbox sessions` lists them)")
    for info in stopped:
        print(terminal_safe(f"stopped session {info.name!r} of {info.notebook} "
                            f"(container {info.container.short_id} removed)"))
    if args.all:
        print(f"stopped {len(stopped)} sessions", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"requirements": cmd_requirements, "dockerfile": cmd_dockerfile, "lock": cmd_lock,
            "build": cmd_build,
            "run": cmd_run, "export": cmd_export, "doctor": cmd_doctor, "images": cmd_images,
            "prune": cmd_prune, "sessions": cmd_sessions, "cache": cmd_cache}


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``kill``, ``timeout``, a closed terminal): raised where the main
    thread is, so it takes Ctrl-C's way out: the build stopped, the container and temp files
    removed, exit 130."""


def _terminate(signum, frame) -> None:
    import signal

    raise Terminated(signal.Signals(signum).name)


def _handle_termination() -> None:
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _terminate)  # nohup's SIG_IGN stays: the user asked for it


def _start_reaper(host: str | None):
    """Remove containers of earlier runs whose process is gone (SIGKILL, a crash, a daemon
    restart) on the daemon this command talks to, beside the command (a daemon that does not
    answer only skips it)."""
    import threading

    from .core.engine import connect
    from .core.orphans import reap_quietly

    reaper = threading.Thread(target=reap_quietly, args=(lambda: connect(host),),
                              name="mlbox-reaper", daemon=True)
    reaper.start()
    return reaper


def _error(err: MlboxError) -> str:
    """What the terminal shows for an error: its sentence, and the fields worth reading."""
    text = f"error: {err}"
    if isinstance(err, BuildError):
        if err.step:
            text += f"\nfailing step: {err.step}"
        if err.log:
            text += f"\n--- build log (tail) ---\n{err.log_tail()}"
    return terminal_safe(text)  # a build log and a container's output are not ours


def _skip_unused_imports() -> None:
    """nbformat imports jsonschema, whose format checker builds rfc3987-syntax's IRI grammar at
    import when that package is installed (jupyter-events pulls it in): a second of CPU before
    any command starts, for a check no notebook validation here uses. The CLI is its own
    process, so it imports as though rfc3987-syntax were absent (jsonschema then skips it)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    _skip_unused_imports()
    from .config import load_defaults
    from .progress import TerminalProgress

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.build, args.run = resolve_options(vars(args), load_defaults())
    except OptionError as err:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {err}\n")
    progress = TerminalProgress(quiet=getattr(args, "quiet", False),
                                verbose=getattr(args, "verbose", False))
    reaper = _start_reaper(args.run.host)
    try:
        _handle_termination()
        try:
            return COMMANDS[args.command](args, progress)
        finally:
            reaper.join(timeout=30)
    except KeyboardInterrupt:
        progress.close()
        print(f"interrupted: {interrupted_during(progress.state.phase)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OptionError as err:
        progress.close()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except MlboxError as err:
        progress.close()
        print(_error(err), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
