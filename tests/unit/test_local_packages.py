"""Issue 16: the kernel's local packages (editable, local folder, local wheel, git) are known by
their PEP 610 provenance and never asked of an index by name; a local one is built on the host
into a wheel that travels in the build context.

Real parts: the distributions are installed into a fresh venv by real uv (offline: the
fixture project's backend is in its tree, tests/local_packages.py), wheels are built by
``uv build``, and the lock with a shipped wheel is installed by real uv in hash-checking mode.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from jupyter_mlbox.core import distributions
from jupyter_mlbox.core.dockerfile import ImageSpec, render_build_context
from jupyter_mlbox.core.inference import infer_requirements, validate_requirement
from jupyter_mlbox.core.local_wheels import (IMAGE_URL, LocalPackageError, cache_dir,
                                             local_wheel, with_wheel_hashes)
from jupyter_mlbox.core.provenance import (ARCHIVE, DIRECTORY, EDITABLE, INDEX, VCS,
                                           parse_direct_url, provenance_of_dist,
                                           requirement_from, vcs_requirement)
from jupyter_mlbox.errors import RequirementError

from ..local_packages import install, make_kernel_venv, uv, write_project


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One venv holding the fixture project four ways: editable, from a folder, from a wheel
    file, from a git repository (a local one: offline)."""
    root = tmp_path_factory.mktemp("local")
    editable = write_project(root / "edit", "mlbox-edit-demo", "0.3.0", "mlbox_edit_demo",
                             "MARKER = 'edit'\n")
    folder = write_project(root / "folder", "mlbox-dir-demo", "1.0", "mlbox_dir_demo", "")
    wheel_src = write_project(root / "wheelsrc", "mlbox-whl-demo", "2.0", "mlbox_whl_demo", "")
    repo = write_project(root / "repo", "mlbox-git-demo", "0.1", "mlbox_git_demo", "")
    uv("build", "--wheel", "--out-dir", str(root / "dist"), str(wheel_src))
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.strip()
    venv = root / "venv"
    site = make_kernel_venv(venv, with_host_packages=False)
    install(venv, "-e", str(editable), str(folder),
            str(next((root / "dist").glob("*.whl"))), f"git+file://{repo}")
    return {"root": root, "site": site, "commit": commit, "editable": editable,
            "folder": folder, "repo": repo}


def _provenance(site, name):
    dist = next(d for d in metadata.distributions(path=[str(site)])
                if d.metadata["Name"] == name)
    return provenance_of_dist(dist)


def test_real_direct_url_files_tell_each_kind_and_its_path(installed):
    site = installed["site"]
    edit = _provenance(site, "mlbox-edit-demo")
    assert (edit.kind, edit.path) == (EDITABLE, installed["editable"])
    folder = _provenance(site, "mlbox-dir-demo")
    assert (folder.kind, folder.path) == (DIRECTORY, installed["folder"])
    wheel = _provenance(site, "mlbox-whl-demo")
    assert wheel.kind == ARCHIVE and wheel.path.name == "mlbox_whl_demo-2.0-py3-none-any.whl"
    git = _provenance(site, "mlbox-git-demo")
    assert (git.kind, git.vcs, git.commit) == (VCS, "git", installed["commit"])
    assert vcs_requirement("mlbox_git_demo", git) == \
        f"mlbox-git-demo @ git+file://{installed['repo']}@{installed['commit']}"
    # an index install writes no direct_url.json
    assert parse_direct_url(None).kind == INDEX


def test_a_subdirectory_and_a_remote_archive_are_kept():
    git = parse_direct_url('{"url": "https://example.com/r.git", "subdirectory": "pkg", '
                           '"vcs_info": {"vcs": "git", "commit_id": "abc123"}}')
    assert vcs_requirement("x", git) == "x @ git+https://example.com/r.git@abc123" \
                                        "#subdirectory=pkg"
    assert str(validate_requirement(vcs_requirement("x", git), direct_url=True)) == \
        "x @ git+https://example.com/r.git@abc123#subdirectory=pkg"
    with pytest.raises(RequirementError):  # a host path the image has not
        validate_requirement("x @ file:///home/me/x.whl", direct_url=True)
    remote = parse_direct_url('{"url": "https://example.com/x-1.0.tar.gz", "archive_info": {}}')
    assert remote.kind == "url" and not remote.is_local
    with pytest.raises(ValueError):
        parse_direct_url('{"dir_info": {}}')


@pytest.fixture
def kernel(installed, monkeypatch, tmp_path):
    """The test process as a kernel that has the venv's distributions; a fresh wheel cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(installed["site"]))
    distributions._packages_distributions.cache_clear()
    yield installed
    distributions._packages_distributions.cache_clear()


def _render(inference):
    spec = ImageSpec(requirements=tuple(r.requirement for r in inference.requirements),
                     local_wheels=inference.local_wheels)
    return render_build_context(spec)


def test_an_editable_src_layout_import_is_a_shipped_wheel_never_a_name(kernel):
    result = infer_requirements(["import mlbox_edit_demo, mlbox_dir_demo, mlbox_whl_demo\n"
                                 "import mlbox_git_demo"])
    lines = {r.name: r for r in result.requirements}
    edit = lines["mlbox-edit-demo"]
    assert edit.origin == "local" and edit.requirement.startswith(
        f"mlbox-edit-demo @ {IMAGE_URL}mlbox-edit-demo-")
    assert edit.requirement.endswith("/mlbox_edit_demo-0.3.0-py3-none-any.whl")
    assert requirement_from(edit.origin, edit.where, edit.imports) == \
        f"local build of editable {kernel['editable']} (mlbox_edit_demo)"
    assert lines["mlbox-dir-demo"].origin == lines["mlbox-whl-demo"].origin == "local"
    # a git install from a repository on this host: the image cannot reach it, so the
    # installed commit is checked out and built here like a folder
    git = lines["mlbox-git-demo"]
    assert git.origin == "local" and git.requirement.endswith("mlbox_git_demo-0.1-py3-none-any.whl")
    assert git.where == f"local build of git file://{kernel['repo']}@{kernel['commit'][:12]}"
    assert not any("==" in r.requirement for r in result.requirements)  # none by name
    context = _render(result)
    shipped = sorted(name for name in context.files if name.startswith("mlbox-build/wheels/"))
    assert [name.rsplit("/", 1)[1] for name in shipped] == [
        "mlbox_dir_demo-1.0-py3-none-any.whl", "mlbox_edit_demo-0.3.0-py3-none-any.whl",
        "mlbox_git_demo-0.1-py3-none-any.whl", "mlbox_whl_demo-2.0-py3-none-any.whl"]
    assert f"{IMAGE_URL}{shipped[1].split('/', 2)[2]}" in context.files[
        "requirements.txt"].decode()


def test_unchanged_source_same_tag_edited_source_new_tag(kernel, tmp_path):
    first = _render(infer_requirements(["import mlbox_edit_demo"]))
    [cached] = cache_dir().rglob("*.whl")
    built_at = cached.stat().st_mtime_ns
    again = _render(infer_requirements(["import mlbox_edit_demo"]))
    assert again.tag == first.tag
    assert cached.stat().st_mtime_ns == built_at  # reused, not built again
    init = kernel["editable"] / "src" / "mlbox_edit_demo" / "__init__.py"
    before = init.read_text()
    try:
        init.write_text("MARKER = 'edited'\n")
        edited = _render(infer_requirements(["import mlbox_edit_demo"]))
    finally:
        init.write_text(before)
    assert edited.tag != first.tag
    assert _render(infer_requirements(["import mlbox_edit_demo"])).tag == first.tag


def test_a_change_beside_the_package_keeps_the_tag(kernel):
    """The project folder holds notebooks and their locks too: writing one changes the tree
    (the wheel is built again) but not the wheel's content, so not the tag. Failed when the
    tree's digest named the shipped wheel (the integration test found it)."""
    first = _render(infer_requirements(["import mlbox_edit_demo"]))
    beside = kernel["editable"] / "notebooks" / "analysis.mlbox.lock"
    beside.parent.mkdir(exist_ok=True)
    beside.write_text("six==1.0\n")
    try:
        again = _render(infer_requirements(["import mlbox_edit_demo"]))
    finally:
        beside.unlink()
    assert again.tag == first.tag
    assert len(list((cache_dir() / "trees").iterdir())) == 2  # two trees, one wheel shipped


def test_a_failing_build_names_the_package_the_path_and_the_log(kernel):
    (kernel["folder"] / "FAIL_BUILD").write_text("")
    try:
        with pytest.raises(LocalPackageError) as caught:
            infer_requirements(["import mlbox_dir_demo"])
    finally:
        (kernel["folder"] / "FAIL_BUILD").unlink()
    message = str(caught.value)
    assert "mlbox-dir-demo" in message and str(kernel["folder"]) in message
    assert "fixture build failed on purpose" in message  # the log's tail
    assert "--exclude mlbox-dir-demo" in message
    assert isinstance(caught.value, RequirementError)


def test_a_source_folder_that_is_gone_names_it_and_the_fix(kernel, tmp_path):
    gone = _provenance(kernel["site"], "mlbox-dir-demo")
    moved = type(gone)(gone.kind, gone.url, tmp_path / "moved-away")
    with pytest.raises(LocalPackageError) as caught:
        local_wheel("mlbox-dir-demo", moved)
    message = str(caught.value)
    assert f"{tmp_path / 'moved-away'} (directory), which no longer exists" in message
    assert "pip install -e NEW_PATH" in message and "--exclude mlbox-dir-demo" in message


def test_an_editable_whose_folder_moved_is_said_not_guessed(kernel):
    """Its .pth names a folder that is gone, so nothing says which modules it had: the import
    still maps to it by name and the error names the folder (it was a guess from the index)."""
    source = kernel["editable"]
    moved = source.with_name("edit-moved")
    source.rename(moved)
    try:
        distributions._packages_distributions.cache_clear()
        with pytest.raises(LocalPackageError) as caught:
            infer_requirements(["import mlbox_edit_demo"])
    finally:
        moved.rename(source)
    assert f"from {source} (editable), which no longer exists" in str(caught.value)


def test_excluded_local_package_is_not_built(kernel):
    (kernel["folder"] / "FAIL_BUILD").write_text("")
    try:
        result = infer_requirements(["import mlbox_dir_demo"], exclude=["mlbox-dir-demo"])
    finally:
        (kernel["folder"] / "FAIL_BUILD").unlink()
    assert result.requirements == [] and result.local_wheels == {}


def test_a_user_written_url_is_still_refused(kernel):
    with pytest.raises(RequirementError, match="direct URL requirements are not supported"):
        infer_requirements([""], extra=[f"x @ {IMAGE_URL}k/x-1-py3-none-any.whl"])


def test_the_lock_with_a_shipped_wheel_installs_in_hash_checking_mode(kernel, tmp_path):
    """uv refuses a file URL without a hash under --require-hashes; the rendered lock gives the
    shipped bytes' hash, replacing the stale entry of an earlier build."""
    wheel = local_wheel("mlbox-edit-demo", _provenance(kernel["site"], "mlbox-edit-demo"))
    stale = (f"# lock\nmlbox-edit-demo @ {IMAGE_URL}mlbox-edit-demo-0000/old.whl \\\n"
             f"    --hash=sha256:{'0' * 64}\n")
    text = with_wheel_hashes(stale, {wheel.relative: wheel.data})
    assert "old.whl" not in text and wheel.sha256 in text
    # install it for real, the image's /mlbox-build/wheels standing at a folder of ours
    shipped = tmp_path / "wheels" / wheel.relative
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(wheel.data)
    (tmp_path / "lock.txt").write_text(text.replace(IMAGE_URL, (tmp_path / "wheels").as_uri()
                                                    + "/"))
    target = tmp_path / "target"
    make_kernel_venv(target, with_host_packages=False)
    install(target, "--require-hashes", "--no-deps", "-r", str(tmp_path / "lock.txt"))
    # and without the hash uv refuses it: the hash is what makes it installable
    (tmp_path / "bare.txt").write_text(f"mlbox-edit-demo @ {shipped.as_uri()}\n")
    bare = tmp_path / "bare"
    make_kernel_venv(bare, with_host_packages=False)
    with pytest.raises(AssertionError, match="must have a hash"):
        install(bare, "--require-hashes", "--no-deps", "-r", str(tmp_path / "bare.txt"))


def test_explain_names_each_kind_of_origin():
    assert requirement_from("installed", imports=("pandas",)) == "index (import pandas)"
    assert requirement_from("traced", imports=("scipy",)) == "index (traced scipy)"
    assert requirement_from("explicit") == "explicit (--pip)"
    assert requirement_from("file") == "file (requirements file)"
    assert requirement_from("vcs", "git https://example.com/r.git@abc123", ("r",)) == \
        "vcs git https://example.com/r.git@abc123 (r)"
    assert requirement_from("url", "url https://example.com/x-1.0.tar.gz") == \
        "url https://example.com/x-1.0.tar.gz"


def test_the_plan_report_lists_local_builds_on_their_own_line(kernel):
    from jupyter_mlbox.core.build import ImagePlan

    inference = infer_requirements(["import mlbox_edit_demo"])
    spec = ImageSpec(requirements=tuple(r.requirement for r in inference.requirements))
    report = ImagePlan(inference, spec, render_build_context(spec)).report()
    [line] = [line for line in report.lines() if line.key == "requirements-local"]
    assert line.text == f"mlbox-edit-demo (editable {kernel['editable']})"
    assert report.as_dict()["requirements"][0]["where"] == \
        f"local build of editable {kernel['editable']}"


def test_a_git_install_from_a_server_is_built_here_at_its_installed_commit(tmp_path,
                                                                          monkeypatch):
    """Installed from a real git server (git daemon on loopback, git://): the image gets a
    wheel built on this host at the installed commit (it needs neither git nor a way to the
    server); once built, the commit comes from the cache with the server gone; a commit this
    host cannot fetch is one clear error naming the package, the URL and the fix."""
    import signal
    import socket
    import time

    from jupyter_mlbox.core.local_wheels import direct_pin

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    served = tmp_path / "served"
    repo = write_project(served / "demo", "mlbox-served-demo", "0.2", "mlbox_served_demo",
                         "MARKER = 'served'\n")
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                               f"--base-path={served}", f"--port={port}",
                               "--listen=127.0.0.1", str(served)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"git://127.0.0.1:{port}/demo"
    try:
        for _ in range(50):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        venv = tmp_path / "venv"
        site = make_kernel_venv(venv, with_host_packages=False)
        # uv knows no git:// URLs; pip does (and records the same PEP 610 vcs_info)
        subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                        "install", "--quiet", "--no-deps", "--no-index", f"git+{url}"],
                       check=True, capture_output=True)
        monkeypatch.syspath_prepend(str(site))
        distributions._packages_distributions.cache_clear()
        dist = next(d for d in metadata.distributions(path=[str(site)])
                    if d.metadata["Name"] == "mlbox-served-demo")
        commit = provenance_of_dist(dist).commit
        monkeypatch.setattr("jupyter_mlbox.core.provenance.provenance_of",
                            lambda name: provenance_of_dist(dist))
        pin = direct_pin("mlbox-served-demo")
        assert pin.origin == "local" and pin.wheel is not None
        assert pin.requirement.endswith("mlbox_served_demo-0.2-py3-none-any.whl")
        assert url in pin.where and commit[:12] in pin.where
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=10)
    # the server is gone: the built commit still plans, from the cache
    assert direct_pin("mlbox-served-demo").requirement == pin.requirement
    # a commit this host cannot fetch
    gone = replace(provenance_of_dist(dist), commit="0" * 40)
    monkeypatch.setattr("jupyter_mlbox.core.provenance.provenance_of", lambda name: gone)
    with pytest.raises(LocalPackageError) as raised:
        direct_pin("mlbox-served-demo")
    message = str(raised.value)
    assert "mlbox-served-demo" in message and url in message
    assert "--exclude mlbox-served-demo" in message


def _wheel_requiring(*requires: str) -> bytes:
    """A wheel's bytes whose METADATA requires ``requires`` (what an edit to pyproject adds)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("acme_tools-0.3.0.dist-info/METADATA",
                       "Metadata-Version: 2.1\nName: acme-tools\nVersion: 0.3.0\n"
                       + "".join(f"Requires-Dist: {r}\n" for r in requires))
        wheel.writestr("acme_tools/__init__.py", "")
    return buffer.getvalue()


def test_a_lock_is_stale_when_a_local_package_now_requires_what_it_lacks(tmp_path):
    """The lock pins the closure; an edit that adds a dependency to a local package would
    install its new wheel without that dependency (--require-hashes installs exactly the lock):
    said before the build, naming the package, the dependency and the fix."""
    from jupyter_mlbox.core.lock import LockError, locked
    from jupyter_mlbox.core.pip_settings import PipSettings

    notebook = tmp_path / "uses.ipynb"
    notebook.write_text("{}")
    (tmp_path / "uses.mlbox.lock").write_text(
        f"# lock\nacme-tools @ {IMAGE_URL}acme-tools-0000/old.whl \\\n"
        f"    --hash=sha256:{'0' * 64}\nsix==1.16.0 \\\n    --hash=sha256:{'1' * 64}\n")
    requirement = f"acme-tools @ {IMAGE_URL}acme-tools-1111/acme_tools-0.3.0-py3-none-any.whl"
    wheels = {"acme-tools-1111/acme_tools-0.3.0-py3-none-any.whl": _wheel_requiring(
        "six>=1.15", "colorama; sys_platform == 'win32'", "pytest; extra == 'test'",
        "tomli; python_version < '3.11'")}
    lock = locked(notebook, [requirement], python_version="3.11", pip=PipSettings(),
                  local_wheels=wheels)
    assert lock is not None and "six==1.16.0" in lock.text  # nothing new: the lock is used

    wheels = {"acme-tools-2222/acme_tools-0.3.0-py3-none-any.whl": _wheel_requiring(
        "six>=1.15", "rich>=13")}
    with pytest.raises(LockError, match=r"uses\.mlbox\.lock is stale: the local package "
                                        r"acme-tools now requires rich, which it lacks; "
                                        r"refresh it with --relock"):
        locked(notebook, [requirement], python_version="3.11", pip=PipSettings(),
               local_wheels=wheels)
