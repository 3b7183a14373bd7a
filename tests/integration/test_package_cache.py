"""The package cache (issue 11 item 1) on the real daemon: uv's cache in a named volume,
shared by builds, kept out of images, shown and freed by ``jupyter mlbox cache``."""
from __future__ import annotations

import re
import subprocess
import threading

import pytest

from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.dockerfile import BUILD_STEP_LABEL
from jupyter_mlbox.core.package_cache import CACHE_VOLUME
from jupyter_mlbox.core.venv_recipe import VENV_STEP, venv_recipe
from jupyter_mlbox.core.pip_settings import host_pip_settings

from .helpers import cli

pytestmark = pytest.mark.docker


def plan(cells, name):
    return plan_image(cells, notebook_name=name, search_dir=None, pip=host_pip_settings())


def venv_tag(each) -> str:
    return venv_recipe(each.spec, each.context).tag


def forget(engine, *plans):
    """No image of these plans, nor their venv images: their builds install for real."""
    for each in plans:
        for tag in (each.tag, venv_tag(each)):
            if engine.image_exists(tag):
                engine.remove_image(tag, force=True)


def prepared(log: list[str]) -> int:
    """How many packages uv had to download or build (uv: "Prepared N packages in …"); the
    ones it found in its cache are not counted there."""
    found = [int(m.group(1)) for line in log
             for m in [re.search(r"Prepared (\d+) packages?", line)] if m]
    return sum(found)


def build_logged(engine, each) -> list[str]:
    log: list[str] = []
    build_image(engine, each, on_event=lambda e: log.append(e.message) if e.kind == "log"
                else None)
    return log


def run_in(tag: str, code: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", tag, "python", "-c",
                           code], capture_output=True, text=True, check=True).stdout


def no_venv_images(engine):
    """Untag every venv image, so a build cannot grow from one (it starts from the stage)."""
    for attrs in engine.list_images(f"{BUILD_STEP_LABEL}={VENV_STEP}"):
        for tag in attrs.get("RepoTags") or []:
            if tag.startswith("mlbox/venv:"):
                engine.remove_image(tag, force=True)


def test_a_second_notebook_installs_what_the_first_downloaded_from_the_cache(
        engine, no_leftover_containers):
    first = plan(["import six"], "cache-first.ipynb")
    second = plan(["import six, idna"], "cache-second.ipynb")
    forget(engine, first, second)
    no_venv_images(engine)
    engine.remove_volume(CACHE_VOLUME)  # cold: nothing downloaded yet

    cold = prepared(build_logged(engine, first))
    assert cold >= len(first.spec.requirements) - 1, cold  # everything came from the index

    no_venv_images(engine)  # the second starts from scratch too: only the volume can help
    warm = prepared(build_logged(engine, second))
    assert warm == 1, warm  # idna only: the rest of its 40-odd pins came from the volume
    assert run_in(second.tag, "import six, idna; print('ok')").strip() == "ok"
    info = cli("cache", "info")
    assert info.returncode == 0, info.stderr
    assert re.search(rf"package cache: \d+ MB in volume {CACHE_VOLUME}", info.stdout), info.stdout


def test_a_venv_grows_from_the_nearest_one_by_one_layer(engine, no_leftover_containers):
    """The second notebook's venv image starts from the first's (all but one of its
    requirements are there): it shares every layer of it and adds one, and holds exactly its
    own closure (a package only the first had is gone)."""
    first = plan(["import six, certifi"], "grow-first.ipynb")
    second = plan(["import six, idna"], "grow-second.ipynb")
    forget(engine, first, second)
    no_venv_images(engine)
    build_image(engine, first)
    build_image(engine, second)
    base = engine.image_attrs(venv_tag(first))["RootFS"]["Layers"]
    grown = engine.image_attrs(venv_tag(second))["RootFS"]["Layers"]
    assert grown[:len(base)] == base and len(grown) == len(base) + 1
    out = run_in(second.tag, "import importlib.util as u; print(bool(u.find_spec('idna')), "
                             "bool(u.find_spec('certifi')))")
    assert out.split() == ["True", "False"], out


def test_the_cache_and_the_builder_stay_out_of_the_image(engine):
    built = plan(["import six"], "cache-first.ipynb")
    forget(engine, built)
    build_image(engine, built)
    # the volumes were mounts of the install container, not VOLUMEs of any image
    assert not engine.image_attrs(built.tag)["Config"].get("Volumes")
    out = run_in(built.tag, "import os; print(sorted(os.listdir('/')), sorted(os.listdir("
                            "'/opt')))")
    assert "mlbox-cache" not in out and "mlbox-build" not in out and "'uv'" not in out, out
    # the venv image is a build step's (listed and pruned as one), not a notebook's image
    venv = engine.image_attrs(venv_tag(built))
    assert venv["Config"]["Labels"][BUILD_STEP_LABEL] == VENV_STEP
    listed = cli("images", "--all")
    assert venv_tag(built) in listed.stdout, listed.stdout
    assert venv_tag(built) not in cli("images").stdout


def test_two_concurrent_builds_share_one_cold_cache(engine, no_leftover_containers):
    """uv locks its cache: two installs into it at once both end with working images."""
    one = plan(["import six, certifi"], "cache-concurrent-one.ipynb")
    two = plan(["import six, idna, certifi"], "cache-concurrent-two.ipynb")
    forget(engine, one, two)
    engine.remove_volume(CACHE_VOLUME)
    errors: list[BaseException] = []

    def build(each):
        try:
            build_image(engine, each)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=build, args=(each,)) for each in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert run_in(one.tag, "import six, certifi; print('ok')").strip() == "ok"
    assert run_in(two.tag, "import six, idna, certifi; print('ok')").strip() == "ok"


def test_cache_prune_frees_the_volume(engine):
    build_image(engine, plan(["import six"], "cache-first.ipynb"))
    if engine.volume_size(CACHE_VOLUME) is None:  # the image was there: make the volume
        forget(engine, plan(["import six"], "cache-first.ipynb"))
        build_image(engine, plan(["import six"], "cache-first.ipynb"))
    pruned = cli("cache", "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "removed the package cache" in pruned.stdout, pruned.stdout
    assert engine.volume_size(CACHE_VOLUME) is None
    assert "none yet" in cli("cache", "info").stdout


def test_cancelling_the_install_leaves_no_container_volume_or_venv(engine,
                                                                   no_leftover_containers):
    from jupyter_mlbox.core.events import CancelToken
    from jupyter_mlbox.errors import UserCancelledError

    cancelled = plan(["import six, idna, certifi"], "cache-cancelled.ipynb")
    forget(engine, cancelled)
    cancel = CancelToken()

    def on_event(event):
        if event.kind == "log" and "resolving and installing" in event.message:
            cancel.cancel()  # the install container is running

    with pytest.raises(UserCancelledError):
        build_image(engine, cancelled, rebuild=True, on_event=on_event, cancel=cancel)
    assert not engine.list_containers(BUILD_STEP_LABEL)
    assert not engine.image_exists(venv_tag(cancelled))
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [name for name in volumes if name.startswith("mlbox-build-")], volumes


def test_the_image_carries_no_owner_of_the_install_container(engine):
    """A commit keeps the container's labels: a container someone starts from the image must
    not look like an orphan of the build's process (the reaper would remove it)."""
    from jupyter_mlbox.core.orphans import OWNER_HOST_LABEL, OWNER_PID_LABEL, owner_gone

    built = plan(["import six"], "cache-first.ipynb")
    build_image(engine, built)
    labels = engine.image_attrs(built.tag)["Config"]["Labels"]
    assert not labels.get(OWNER_PID_LABEL) and not labels.get(OWNER_HOST_LABEL), labels
    assert not owner_gone(labels)


def test_a_venv_with_the_test_suites_never_grows_from_one_without(engine):
    """--keep-tests after a pruned build of the same requirements: growing from the pruned
    venv would keep its packages as they are, test suites gone (uv sees them installed)."""
    from dataclasses import replace

    from jupyter_mlbox.core.options import BuildOptions

    pruned = plan(["import six"], "cache-first.ipynb")
    kept = plan_image(["import six"], notebook_name="cache-first.ipynb", search_dir=None,
                      pip=host_pip_settings(), options=replace(BuildOptions(), keep_tests=True))
    forget(engine, kept)
    build_image(engine, pruned)
    build_image(engine, kept)
    probe = ("import os, traitlets; "
             "print(os.path.isdir(os.path.dirname(traitlets.__file__) + '/tests'))")
    assert run_in(pruned.tag, probe).strip() == "False"
    assert run_in(kept.tag, probe).strip() == "True"


def test_a_requirement_with_quotes_reaches_the_venv_image_label(engine):
    """The venv image's labels name its requirements; a marker's quotes
    (``six; python_version >= "3"``) once broke the commit's LABEL change."""
    container = engine.create_container("python:3.11-slim", ["true"], environment={},
                                        labels={})
    try:
        value = 'six==1.17.0; python_version >= "3" \\ end'
        image = engine.commit(container, "mlbox-test/quoted-label:1",
                                 {"io.jupyter-mlbox.venv-requirements": value})
        try:
            labels = engine.image_attrs(image)["Config"]["Labels"]
            assert labels["io.jupyter-mlbox.venv-requirements"] == value
        finally:
            engine.remove_image("mlbox-test/quoted-label:1", force=True)
    finally:
        engine.remove_container(container)
