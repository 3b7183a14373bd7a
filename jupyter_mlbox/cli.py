"""``jupyter mlbox …``: the same jobs as the magics, for terminals and CI.

A thin adapter: parse arguments, call the core, render its progress events, map errors to exit
codes. Exit status: 0 success, 1 a cell failed (its in-container traceback is printed), 2 bad
usage, 3 any other jupyter_mlbox error (daemon unreachable, build failed …), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .errors import CellExecutionError, MlboxError
from .options import GPUS_HELP, gpus, key_value, positive_number

EXIT_OK, EXIT_CELL_FAILED, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser(defaults=None) -> argparse.ArgumentParser:
    """The parser; ``defaults`` (an MlboxDefaults) supplies what flags leave unsaid."""
    from .config import MlboxDefaults

    defaults = defaults or MlboxDefaults()
    common = argparse.ArgumentParser(add_help=False)
    image = common.add_argument_group("image options")
    image.add_argument("--base", metavar="IMAGE", default=defaults.base_image,
                       help="base image (default: python:<this kernel's major.minor>-slim)")
    image.add_argument("--pip", metavar="PKG", action="append", default=[],
                       help="extra requirement, e.g. --pip 'xgboost>=2' (repeatable)")
    image.add_argument("-r", "--requirements", metavar="FILE", type=Path,
                       help="use this requirements file instead of inferring from imports")
    image.add_argument("--exclude", metavar="NAME", action="append", default=[],
                       help="drop this distribution from the requirements (repeatable)")
    image.add_argument("--rebuild", action="store_true", help="build again from scratch, ignoring the layer "
                       "cache (unpinned requirements are resolved anew)")
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
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.add_argument("notebook", type=Path, help="the .ipynb file")
        return command

    notebook_command("requirements", "print the inferred, pinned requirements (warnings on "
                     "stderr)")
    notebook_command("dockerfile", "print the Dockerfile that would be built")
    notebook_command("build", "build the image (or reuse it); print its tag last")
    run = notebook_command("run", "execute the notebook in a container and write the executed "
                           "notebook")
    run.add_argument("-o", "--output", type=Path,
                     help="where to write the executed notebook (default: <stem>.mlbox.ipynb)")
    run.add_argument("--gpus", type=gpus, default=defaults.gpus, help=GPUS_HELP)
    run.add_argument("--timeout", type=positive_number, metavar="S", default=defaults.timeout,
                     help="seconds, for the whole run and for each cell")
    run.add_argument("--memory", metavar="SIZE", default=defaults.memory,
                     help="memory limit, e.g. 4g")
    run.add_argument("--cpus", type=positive_number, default=defaults.cpus, help="CPU limit, e.g. 2")
    run.add_argument("-e", "--env", type=key_value, action="append", default=[],
                     metavar="K=V", help="environment variable in the container (repeatable)")
    run.add_argument("-p", "--parameter", type=key_value, action="append", default=[],
                     metavar="NAME=VALUE", help="papermill-style parameter, injected after the "
                     "cell tagged 'parameters' (repeatable)")
    export = notebook_command("export", "build a self-contained image that executes the "
                              "notebook (docker run -v $PWD/out:/out TAG)")
    export.add_argument("-t", "--tag", required=True, help="image name, e.g. "
                        "registry.example.com/team/analysis:1.0")
    export.add_argument("--push", action="store_true", help="push to the registry in the tag")
    sub.add_parser("doctor", help="check the daemon, base image, GPU runtime and pip settings",
                   description="check the daemon, base image, GPU runtime and pip settings")
    sub.add_parser("images", help="list the images jupyter_mlbox made",
                   description="list the images jupyter_mlbox made")
    return parser


def _build_options(args):
    from .core.build import BuildOptions

    return BuildOptions(base_image=args.base, pip=tuple(args.defaults.pip) + tuple(args.pip),
                        requirements_file=args.requirements,
                        exclude=tuple(args.defaults.exclude) + tuple(args.exclude),
                        rebuild=args.rebuild)


def _plan(args):
    from .core.build import plan_notebook

    return plan_notebook(args.notebook, _build_options(args))[1]


def _warn(lines) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def cmd_requirements(args, progress) -> int:
    plan = _plan(args)
    _warn(plan.warnings)
    sys.stdout.write(plan.inference.requirements_txt())
    return EXIT_OK


def cmd_dockerfile(args, progress) -> int:
    plan = _plan(args)
    _warn(plan.warnings)
    sys.stdout.write(plan.context.dockerfile)
    return EXIT_OK


def cmd_build(args, progress) -> int:
    from .core.build import build_image
    from .core.engine import DockerEngine

    plan = _plan(args)
    _warn(plan.warnings)
    result = build_image(DockerEngine.connect(), plan, rebuild=args.rebuild, on_event=progress)
    progress.close()
    print(f"{'built' if result.built else 'reused'} {result.tag} "
          f"({result.size / 1e6:.0f} MB, {result.seconds:.1f} s)", file=sys.stderr)
    print(result.tag)
    return EXIT_OK


def cmd_run(args, progress) -> int:
    from .core.container_runner import parse_parameter_value
    from .core.engine import DockerEngine
    from .core.notebook import default_output_path
    from .core.run import RunOptions, run_notebook_file

    options = RunOptions(gpus=args.gpus, timeout=args.timeout, memory=args.memory,
                         cpus=args.cpus, env=dict(args.env),
                         parameters={k: parse_parameter_value(v) for k, v in args.parameter})
    output = args.output or default_output_path(args.notebook)
    try:
        result = run_notebook_file(DockerEngine.connect(), args.notebook, output=output,
                                   build_options=_build_options(args), options=options,
                                   on_event=progress)
    except CellExecutionError as err:
        progress.close()
        print(f"error: {err}", file=sys.stderr)
        if err.notebook is not None:
            print(f"the executed notebook, up to the failing cell, is in {output}",
                  file=sys.stderr)
        return EXIT_CELL_FAILED
    progress.close()
    print(f"wrote {result.output_path} ({'built' if result.build.built else 'reused'} "
          f"{result.build.tag}; ran in {result.seconds:.1f} s on "
          f"{'GPU' if result.gpu else 'CPU'})", file=sys.stderr)
    print(result.output_path)
    return EXIT_OK


def cmd_export(args, progress) -> int:
    from .core.engine import DockerEngine
    from .core.export import export_image

    result = export_image(DockerEngine.connect(), args.notebook, args.tag,
                          build_options=_build_options(args), push=args.push, on_event=progress)
    progress.close()
    print(f"exported {result.tag}" + (" and pushed it" if result.pushed else "")
          + f"; run it with: docker run --rm -v \"$PWD/out:/out\" {result.tag}", file=sys.stderr)
    print(result.tag)
    return EXIT_OK


def cmd_doctor(args, progress) -> int:
    from .core.doctor import diagnose

    checks = diagnose(args.defaults.base_image)
    for check in checks:
        print(f"{'ok ' if check.ok else 'NO '} {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok or not c.required for c in checks) else EXIT_ERROR


def cmd_images(args, progress) -> int:
    from .core.engine import DockerEngine
    from .core.images import list_mlbox_images

    for image in list_mlbox_images(DockerEngine.connect()):
        print(f"{image.tag}\t{image.size / 1e6:.0f} MB\t{image.created}\t{image.notebook}")
    return EXIT_OK


COMMANDS = {"requirements": cmd_requirements, "dockerfile": cmd_dockerfile, "build": cmd_build,
            "run": cmd_run, "export": cmd_export, "doctor": cmd_doctor, "images": cmd_images}


def main(argv: Sequence[str] | None = None) -> int:
    from .progress import TerminalProgress

    from .config import load_defaults

    defaults = load_defaults()
    args = build_parser(defaults).parse_args(argv)
    args.defaults = defaults
    progress = TerminalProgress(quiet=getattr(args, "quiet", False),
                                verbose=getattr(args, "verbose", False))
    try:
        return COMMANDS[args.command](args, progress)
    except KeyboardInterrupt:
        progress.close()
        print("interrupted: the build was stopped and the container removed; nothing was "
              "written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MlboxError as err:
        progress.close()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
