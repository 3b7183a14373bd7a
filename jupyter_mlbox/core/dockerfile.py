"""Rendering: requirements + options → Dockerfile and an in-memory build context.

Pure: no Docker, no network. The tag is a hash of everything that goes into the build, so an
unchanged environment maps to an existing image and nothing is built.
"""
from __future__ import annotations

import hashlib
import io
import re
import sys
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from typing import Mapping

from .._version import __version__
from .distributions import PYTORCH_CPU_INDEX, is_pytorch_cpu_pin
from .inference import validate_requirement
from .local_wheels import CONTEXT_DIR as WHEELS_CONTEXT_DIR, cached_wheel, wheel_relative, \
    with_wheel_hashes
from .pip_settings import PipSettings
from .system_packages import validate_package_name

LABEL_PREFIX = "io.jupyter-mlbox"
MANAGED_LABEL = f"{LABEL_PREFIX}.managed"
NOTEBOOK_LABEL = f"{LABEL_PREFIX}.notebook"
REQUIREMENTS_HASH_LABEL = f"{LABEL_PREFIX}.requirements-sha256"
REQUIREMENTS_LABEL = f"{LABEL_PREFIX}.requirements"
VERSION_LABEL = f"{LABEL_PREFIX}.version"
KIND_LABEL = f"{LABEL_PREFIX}.kind"
SOURCE_LABEL = f"{LABEL_PREFIX}.source-id"
#: The Debian packages installed in the final stage (only on images that have some).
APT_LABEL = f"{LABEL_PREFIX}.apt"
#: Set on the builder stage only (value ``builder``, the same for every notebook, so the layer
#: cache is shared): it marks the builder-stage images ``images --all`` lists and ``prune``
#: removes. Never used to find a build's containers: a concurrent build carries it too.
BUILD_STEP_LABEL = f"{LABEL_PREFIX}.build-step"
BUILDER_STAGE = "builder"

#: Where things live inside the image.
VENV = "/opt/venv"
RUNNER = "/opt/mlbox/runner.py"
#: The in-image check that the venv's shared objects find their libraries (shared_libraries.py).
LIBRARY_CHECK = "/opt/mlbox/shared_libraries.py"
WORKDIR = "/home/mlbox/work"
USER = "mlbox"
UID = 1000

#: What executing a notebook inside the image needs, besides the notebook's own requirements.
RUNTIME_PACKAGES = ("ipykernel", "nbclient", "nbformat", "cloudpickle")


def default_base_image() -> str:
    """``python:<this kernel's major.minor>-slim``: pickles and pins travel between the two."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides an image. Two equal specs build the same image."""

    requirements: tuple[str, ...]
    notebook_name: str = "notebook"
    base_image: str = field(default_factory=default_base_image)
    pip: PipSettings = field(default_factory=PipSettings)
    #: For exported images: files baked into the work directory, and the notebook to execute.
    embedded_files: Mapping[str, bytes] = field(default_factory=dict)
    entry_notebook: str | None = None
    #: For exported images: which notebook file made it (notebook.source_id), so that only the
    #: same notebook's export may move its tag; two ``analysis.ipynb`` are not the same.
    source_id: str = ""
    #: Debian packages installed in the final stage (apt.txt, --apt, inferred), sorted.
    apt: tuple[str, ...] = ()
    #: A lock (lock.py): when given, the builder installs exactly it, hashes required.
    lock_text: str | None = None
    #: ``--exclude-apt`` names: the library check neither installs them nor stops for them.
    apt_excluded: tuple[str, ...] = ()
    #: ``--keep-tests``: the packages' own test suites stay (venv_pruning.py leaves them out).
    keep_tests: bool = False
    #: Wheels of the kernel's local packages (local_wheels.py), ``<key>/<file>`` → bytes,
    #: shipped as ``mlbox-build/wheels/<key>/<file>``. A requirement naming one that is not
    #: given here is read from the host's wheel cache, where the plan put it.
    local_wheels: Mapping[str, bytes] = field(default_factory=dict)
    #: The runtime stack's tools the venv may leave out (venv_pruning.leave_out_candidates):
    #: those nothing installed requires are uninstalled after the install.
    leave_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildContext:
    """A rendered build: the Dockerfile, the other context files, labels and the content tag."""

    dockerfile: str
    files: Mapping[str, bytes]
    labels: Mapping[str, str]
    tag: str
    #: The label (name, value) of the builder stage (the same for every build).
    step_label: tuple[str, str] | None = None

    def tar_bytes(self) -> bytes:
        """The context as a tar with uid/gid/mtime cleared, so equal inputs give equal bytes."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in sorted({"Dockerfile": self.dockerfile.encode(),
                                      **self.files}.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def notebook_slug(name: str) -> str:
    """A docker repository name component from a notebook name: ``My Analysis.ipynb`` → ``my-analysis``."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem[:-len(".ipynb")] if stem.endswith(".ipynb") else stem
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return slug[:60] or "notebook"


def runner_source() -> bytes:
    return resources.files("jupyter_mlbox.core").joinpath("container_runner.py").read_bytes()


def _pip_config(pip: PipSettings) -> str:
    lines = ["[global]"]
    if pip.index_url:
        lines.append(f"index-url = {pip.index_url}")
    if pip.extra_index_urls:
        lines.append("extra-index-url = " + " ".join(pip.extra_index_urls))
    if pip.trusted_hosts:
        lines.append("trusted-host = " + " ".join(pip.trusted_hosts))
    if pip.cert_file:
        lines.append("cert = /mlbox-build/ca.pem")
    return "\n".join(lines) + "\n"


def builder_env(pip: PipSettings) -> str:
    """uv reads environment variables, not pip.conf: the same settings, for uv."""
    env = {"UV_NO_CACHE": "1", "UV_COMPILE_BYTECODE": "1", "UV_LINK_MODE": "copy",
           "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": "/mlbox-build/pip.conf",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if pip.index_url:
        env["UV_DEFAULT_INDEX"] = pip.index_url
    if pip.extra_index_urls:
        env["UV_INDEX"] = " ".join(pip.extra_index_urls)
    if pip.trusted_hosts:
        env["UV_INSECURE_HOST"] = " ".join(pip.trusted_hosts)
    if pip.cert_file:
        env["SSL_CERT_FILE"] = "/mlbox-build/ca.pem"
    return " \\\n    ".join(f'{key}="{value}"' for key, value in env.items())


def _uv_command(spec: ImageSpec) -> str:
    """The builder's install command; PyTorch's CPU index joins when a pin is a ``+cpu`` build."""
    command = f"/opt/uv/bin/uv pip install --python {VENV}/bin/python"
    if spec.lock_text is not None:
        command += " --require-hashes --no-deps"  # the lock is the whole closure
    if any(is_pytorch_cpu_pin(r) for r in spec.requirements):
        command += (f" \\\n    --extra-index-url {PYTORCH_CPU_INDEX} "
                    f"--index-strategy unsafe-best-match")
    return f"{command} \\\n    -r /mlbox-build/requirements.txt"


def _uv_install(spec: ImageSpec) -> str:
    """The builder stage's install step."""
    if not any(is_pytorch_cpu_pin(r) for r in spec.requirements):
        return f"RUN {_uv_command(spec)}"
    return f"""\
# The kernel's torch is a CPU-only (+cpu) build: torch, torchvision and torchaudio come from
# PyTorch's CPU index, not PyPI's multi-GB CUDA build. The build network must reach
# {PYTORCH_CPU_INDEX} (--pip torch==VERSION without +cpu uses PyPI instead).
RUN {_uv_command(spec)}"""


def _apt_names(spec: ImageSpec) -> list[str]:
    """``spec.apt`` validated (they reach a RUN line), sorted, without duplicates."""
    return sorted({validate_package_name(name) for name in spec.apt})


def _apt_install(spec: ImageSpec) -> str:
    """The final stage's apt-get line (as root, before the venv layer), or nothing."""
    if not spec.apt:
        return ""
    names = " ".join(_apt_names(spec))
    return f"""\
# System packages (apt.txt, --apt, inferred): from the base image's Debian mirrors.
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {names} \\
 && rm -rf /var/lib/apt/lists/*
"""


def library_check(spec: ImageSpec) -> str:
    """The final stage's check that the venv's binaries load (after the venv is copied, so it
    sees the base image's and the apt packages' libraries): a missing library of a known Debian
    package is installed, an unknown one stops the build with one sentence (build.py shows it)."""
    excluded = "".join(f" --exclude {validate_package_name(name)}"
                       for name in sorted(set(spec.apt_excluded)))
    return f"""COPY shared_libraries.py {LIBRARY_CHECK}
RUN {VENV}/bin/python -I {LIBRARY_CHECK} {VENV}{excluded}
"""


def pruning_commands(spec: ImageSpec, uv: str, script: str) -> list[str]:
    """Shell commands that leave out of the venv what no notebook loads (venv_pruning.py, at
    ``script``): the packages' own test suites, then the runtime stack's tools nothing needs,
    uninstalled by ``uv`` (``uv pip``)."""
    commands = [] if spec.keep_tests else [f"{VENV}/bin/python -I {script} {VENV}"]
    if spec.leave_out:
        names = " ".join(spec.leave_out)
        commands.append(
            f"unused=$({VENV}/bin/python -I {script} --unused {VENV} {names}); "
            f"if [ -n \"$unused\" ]; then {uv} uninstall --quiet --python {VENV}/bin/python "
            f"$unused || exit 1; echo \"mlbox: left out $unused (the kernel never loads them; "
            f"--pip NAME keeps one)\"; fi")
    return commands


def _pruning(spec: ImageSpec) -> str:
    """What no notebook loads, left out of the venv in the builder: the final stage copies the
    venv without it."""
    commands = pruning_commands(spec, "/opt/uv/bin/uv pip", "/mlbox-build/venv_pruning.py")
    if not commands:
        return ""
    return ("COPY venv_pruning.py /mlbox-build/venv_pruning.py\n"
            + "".join(f"RUN {command}\n" for command in commands))


def render_dockerfile(spec: ImageSpec, labels: Mapping[str, str], requirements_hash: str) -> str:
    """The Dockerfile: a builder stage makes the venv with uv, the final stage copies only it.

    Nothing of the notebook (its name) comes before the final stage's LABEL: notebooks with the
    same requirements share every layer. The builder's last LABEL (after the install) names its
    requirements, so its leftover image can be listed and pruned."""
    return (f"{tools_stage(spec)}COPY requirements.txt /mlbox-build/requirements.txt\n"
            f"{_uv_install(spec)}\n"
            f"{_pruning(spec)}LABEL {REQUIREMENTS_HASH_LABEL}=\"{requirements_hash}\"\n\n"
            f"{render_final_stage(spec, labels)}")


def tools_stage(spec: ImageSpec) -> str:
    """The builder stage up to the install: uv and an empty venv (the package cache's tools
    image is this alone)."""
    return f"""\
# syntax=docker/dockerfile:1
# Generated by jupyter_mlbox {__version__}. Builder stage: the only place index settings and the
# CA bundle exist; nothing from /mlbox-build reaches the final image.
FROM {spec.base_image} AS builder
LABEL {BUILD_STEP_LABEL}="{BUILDER_STAGE}"
COPY mlbox-build/ /mlbox-build/
ENV {builder_env(spec.pip)}
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet uv \\
 && python3 -m venv {VENV}
"""


def final_setup(spec: ImageSpec) -> str:
    """The final stage's first steps, before the venv: apt packages, the environment, the user
    and the work directory."""
    return f"""\
{_apt_install(spec)}ENV PATH="{VENV}/bin:$PATH" \\
    VIRTUAL_ENV="{VENV}" \\
    PYTHONUNBUFFERED=1 \\
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN (getent passwd {UID} >/dev/null || useradd --create-home --uid {UID} --shell /bin/sh {USER}) \\
 && mkdir -p {WORKDIR} && chown {UID}:{UID} {WORKDIR}
"""


def final_tail(spec: ImageSpec, labels: Mapping[str, str]) -> str:
    """The final stage's last steps: the labels, then the user, the work directory and what
    the image runs (an export: its notebook, copied in)."""
    label_lines = " \\\n      ".join(f'{key}="{escape_label(value)}"'
                                      for key, value in labels.items())
    text = f"LABEL {label_lines}\n"
    if spec.entry_notebook:
        text += f"""COPY --chown={UID}:{UID} notebook/ {WORKDIR}/
USER {UID}
WORKDIR {WORKDIR}
ENTRYPOINT ["python", "{RUNNER}", "{escape_label(spec.entry_notebook)}", "/out/{escape_label(spec.entry_notebook.rsplit("/", 1)[-1])}"]
"""
    else:
        text += f"""USER {UID}
WORKDIR {WORKDIR}
CMD ["python", "{RUNNER}", "--help"]
"""
    return text


def render_final_stage(spec: ImageSpec, labels: Mapping[str, str]) -> str:
    """The final stage: the base image, apt packages, the venv copied from ``builder``, the
    runner, the labels."""
    return (f"FROM {spec.base_image}\n{final_setup(spec)}COPY --from=builder {VENV} {VENV}\n"
            f"{library_check(spec)}COPY runner.py {RUNNER}\n{final_tail(spec, labels)}")


def escape_label(value: str) -> str:
    """A value inside a LABEL's double quotes (a Dockerfile's, or a commit's change)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_build_context(spec: ImageSpec) -> BuildContext:
    """The whole build as data: Dockerfile, context files, labels and its content-hash tag."""
    requirements = [str(validate_requirement(r, direct_url=True)) for r in spec.requirements]
    wheels = dict(spec.local_wheels)
    for requirement in requirements:
        relative = wheel_relative(requirement)
        if relative is not None and relative not in wheels:
            wheels[relative] = cached_wheel(relative)
    requirements_txt = spec.lock_text if spec.lock_text is not None \
        else "".join(f"{r}\n" for r in requirements)
    if spec.lock_text is not None and wheels:  # --require-hashes: a file URL needs one too
        requirements_txt = with_wheel_hashes(spec.lock_text, wheels)
    requirements_hash = hashlib.sha256(requirements_txt.encode()).hexdigest()
    labels = {
        MANAGED_LABEL: "true",
        KIND_LABEL: "export" if spec.entry_notebook else "environment",
        NOTEBOOK_LABEL: spec.notebook_name,
        REQUIREMENTS_HASH_LABEL: requirements_hash,
        REQUIREMENTS_LABEL: ",".join(requirements),
        VERSION_LABEL: __version__,
        "org.opencontainers.image.title": notebook_slug(spec.notebook_name),
        "org.opencontainers.image.description":
            f"{spec.notebook_name} and its dependencies, built by jupyter_mlbox",
        "org.opencontainers.image.base.name": spec.base_image,
    }
    if spec.apt:
        labels[APT_LABEL] = ",".join(_apt_names(spec))
    if spec.source_id:
        labels[SOURCE_LABEL] = spec.source_id
    files = {"requirements.txt": requirements_txt.encode(), "runner.py": runner_source(),
             "shared_libraries.py": resources.files("jupyter_mlbox.core").joinpath(
                 "shared_libraries.py").read_bytes(),
             "mlbox-build/pip.conf": _pip_config(spec.pip).encode()}
    if spec.pip.cert_file:
        files["mlbox-build/ca.pem"] = spec.pip.cert_file.read_bytes()
    if not spec.keep_tests or spec.leave_out:
        files["venv_pruning.py"] = resources.files("jupyter_mlbox.core").joinpath(
            "venv_pruning.py").read_bytes()
    for name, data in spec.embedded_files.items():
        files[f"notebook/{name}"] = data
    for relative, data in wheels.items():
        files[f"{WHEELS_CONTEXT_DIR}/{relative}"] = data
    dockerfile = render_dockerfile(spec, labels, requirements_hash)
    # The package cache builds the same image in other steps (venv_recipe.py): they name the
    # tag too, so a change to them never reuses an image the old steps made.
    from .venv_recipe import venv_recipe

    cached = venv_recipe(spec, BuildContext(dockerfile, files, labels, "")).final.dockerfile
    tag = f"mlbox/{notebook_slug(spec.notebook_name)}:{content_hash(dockerfile + cached, files)}"
    return BuildContext(dockerfile, files, labels, tag, (BUILD_STEP_LABEL, BUILDER_STAGE))


def content_hash(text: str, files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(text.encode())
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]
