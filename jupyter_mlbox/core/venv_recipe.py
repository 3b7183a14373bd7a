"""The cached build's recipe: the standalone Dockerfile's steps, rearranged for the package
cache (package_cache.py). Pure: no Docker.

The standalone Dockerfile (``jupyter mlbox dockerfile``) installs in a builder stage and copies
the venv into the final stage. The cached build makes the same image in three parts:

- the **stage** image: the final stage up to the venv (base, apt packages, environment, user,
  the library check), built by Docker and shared by every notebook on that base;
- the **venv** image: a container of the stage image (or of a venv image that already holds
  most of the packages) runs ``install.sh`` with uv's cache and uv itself in volumes and the
  index settings in a third, per-build volume, so none of them is committed; the container is
  committed (only the packages it added or removed make its new layer);
- the **final** image: ``FROM`` the venv image, the runner and the notebook's labels.

The venv's content is the resolved closure whatever image it started from (``uv pip sync``
removes what the closure lacks), so its tag names only what decides it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from .distributions import PYTORCH_CPU_INDEX, is_pytorch_cpu_pin
from .dockerfile import (BUILD_STEP_LABEL, LIBRARY_CHECK, RUNNER, VENV, BuildContext, ImageSpec,
                         builder_env, content_hash, final_setup, final_tail, library_check,
                         pruning_commands, tools_stage)

#: Where the install container mounts uv's cache, uv itself, and the per-build files.
CACHE_DIR = "/mlbox-cache"
TOOLS_DIR = "/opt/uv"
BUILD_DIR = "/mlbox-build"
#: The build-step label's values on the stage and venv images (tools images: "builder").
STAGE_STEP = "stage"
VENV_STEP = "venv"
#: On venv images: what a venv may grow from (the stage image it grew from, and whether the test
#: suites were left out: a venv without them cannot grow into one with them), and the
#: requirements it was made for.
STAGE_LABEL = "io.jupyter-mlbox.stage"
VENV_REQUIREMENTS_LABEL = "io.jupyter-mlbox.venv-requirements"
#: A file in the build volume that asks uv to check the index again (``--rebuild``).
REFRESH_FILE = "refresh"

#: Context files of the standalone build that go to the per-build volume instead.
_BUILD_FILES = ("requirements.txt", "venv_pruning.py")


@dataclass(frozen=True)
class VenvRecipe:
    tools_dockerfile: str
    tools_files: Mapping[str, bytes]
    tools_tag: str
    stage_dockerfile: str
    stage_files: Mapping[str, bytes]
    stage_tag: str
    #: Venv images with the same lineage may grow into one another (STAGE_LABEL's value)
    lineage: str
    #: /mlbox-build's content for the install container (``install.sh`` among them)
    files: Mapping[str, bytes]
    requirements: tuple[str, ...]
    tag: str
    final: BuildContext


def _install_script(spec: ImageSpec) -> str:
    """``install.sh``: the index settings as exports (never the container's environment, which
    a commit would keep), then the exact closure synced into the venv, pruned and checked."""
    env = builder_env(spec.pip).replace(' \\\n    ', "\n")
    # uv's cache is on; its bytecode step is not: it compiles the whole venv again, while
    # compileall (below) compiles only what a venv image grown from another one lacks
    exports = "\n".join(f"export {line}" for line in env.splitlines()
                        if not line.startswith(("UV_NO_CACHE=", "UV_COMPILE_BYTECODE=")))
    uv = f"{TOOLS_DIR}/bin/uv pip"
    python = f"--python {VENV}/bin/python"
    index = (f" --extra-index-url {PYTORCH_CPU_INDEX} --index-strategy unsafe-best-match"
             if any(is_pytorch_cpu_pin(r) for r in spec.requirements) else "")
    # Each step first from the cache alone (--offline): asking the index to revalidate every
    # package costs seconds; the index is asked when the cache lacks something, or on --rebuild.
    if spec.lock_text is not None:  # the lock is the whole closure, hashed
        closure, resolve = "requirements.txt", ""
        sync = f"{uv} sync {python} --require-hashes{index}"
    else:
        closure = "closure.txt"
        compile_ = f"{uv} compile {python} --quiet{index} requirements.txt -o closure.txt"
        resolve = (f"if [ -z \"$REFRESH\" ] && {compile_} --offline 2>/dev/null; then :; else\n"
                   f"  echo \"mlbox: asking the package index\"; {compile_} $REFRESH; fi\n")
        sync = f"{uv} sync {python}{index}"
    install = (f"{resolve}if [ -z \"$REFRESH\" ] && {sync} --offline {closure} 2>offline.log; "
               f"then cat offline.log; else\n  {sync} $REFRESH {closure}; fi")
    prune = "".join(f"{command}\n" for command in pruning_commands(spec, uv, "venv_pruning.py"))
    check = library_check(spec).splitlines()[-1].removeprefix("RUN ")
    return f"""\
set -e
{exports}
export UV_CACHE_DIR={CACHE_DIR}
cd {BUILD_DIR}
REFRESH=""
[ -e {REFRESH_FILE} ] && REFRESH=--refresh
[ -x {VENV}/bin/python ] || python3 -m venv {VENV}
echo "mlbox: resolving and installing the requirements"
{install}
{prune}echo "mlbox: compiling the bytecode of what was installed"
{VENV}/bin/python -m compileall -q -j 0 {VENV}/lib >/dev/null || true
{check}
"""


def venv_recipe(spec: ImageSpec, context: BuildContext) -> VenvRecipe:
    """The three parts of ``context``'s image (see the module's docstring)."""
    files = context.files
    tools_dockerfile = tools_stage(spec)
    tools_files = {name: data for name, data in files.items()
                   if name in ("mlbox-build/pip.conf", "mlbox-build/ca.pem")}
    tools_tag = f"mlbox/builder:{content_hash(tools_dockerfile, tools_files)}"

    stage_dockerfile = (f"FROM {spec.base_image}\nLABEL {BUILD_STEP_LABEL}=\"{STAGE_STEP}\"\n"
                        f"{final_setup(spec)}COPY shared_libraries.py {LIBRARY_CHECK}\n")
    stage_files = {"shared_libraries.py": files["shared_libraries.py"]}
    stage_tag = f"mlbox/stage:{content_hash(stage_dockerfile, stage_files)}"

    script = _install_script(spec)
    build_files = {name.removeprefix("mlbox-build/"): data for name, data in files.items()
                   if name in _BUILD_FILES or name.startswith("mlbox-build/")}
    build_files["install.sh"] = script.encode()
    # the stage, uv (by the tools image) and the install's files decide the venv
    tag = f"mlbox/venv:{content_hash(stage_tag + tools_tag, build_files)}"

    final_files = {name: data for name, data in files.items()
                   if name == "runner.py" or name.startswith("notebook/")}
    # the volumes' mount points stay behind in a commit, empty: rmdir fails if one is not
    final_dockerfile = (f"FROM {tag}\nRUN rmdir {BUILD_DIR} {CACHE_DIR} {TOOLS_DIR}\n"
                        f"COPY runner.py {RUNNER}\n"
                        f"{final_tail(spec, {**context.labels, BUILD_STEP_LABEL: ''})}")
    final = BuildContext(final_dockerfile, final_files, context.labels, context.tag,
                         context.step_label)
    return VenvRecipe(tools_dockerfile, tools_files, tools_tag, stage_dockerfile, stage_files,
                      stage_tag, f"{stage_tag} tests={'kept' if spec.keep_tests else 'pruned'}",
                      build_files, tuple(spec.requirements), tag, final)
