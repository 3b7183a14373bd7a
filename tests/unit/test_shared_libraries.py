"""Shared libraries: the ELF reader, the soname → Debian package table, what a plan adds and what
the in-image check does, on shared objects compiled here with gcc (real ELF files, no stubs)."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from jupyter_mlbox.core import shared_libraries as sl
from jupyter_mlbox.core.build import build_image, plan_image
from jupyter_mlbox.core.dockerfile import LIBRARY_CHECK, VENV, ImageSpec, render_build_context
from jupyter_mlbox.core.options import BuildOptions
from jupyter_mlbox.core.pip_settings import PipSettings
from jupyter_mlbox.core.system_packages import plan_system_packages, validate_package_name
from jupyter_mlbox.errors import BuildError, MissingLibraryError

from .memory_engine import MemoryEngine

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make ELF files")


def compile_shared_object(target: Path, source: str, *flags: str) -> Path:
    """``target``, compiled from C ``source`` with gcc (``flags`` e.g. ``-lgomp``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    c_file = target.with_name(target.name.split(".")[0] + ".c")
    c_file.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(target), str(c_file), *flags],
                   check=True, capture_output=True)
    c_file.unlink()
    return target


OPENMP_C = ("int omp_get_max_threads(void);\n"
            "int mlbox_threads(void) { return omp_get_max_threads(); }\n")


def unknown_library_pair(folder: Path, soname: str = "libmlboxnowhere.so.1") -> Path:
    """``folder/_needs.so`` linked against ``soname``, which is then deleted: a library no
    package provides."""
    helper = compile_shared_object(folder / "build" / soname,
                                   "int nowhere(void) { return 7; }\n", f"-Wl,-soname,{soname}")
    needs = compile_shared_object(
        folder / "_needs.so", "int nowhere(void);\nint twice(void) { return 2 * nowhere(); }\n",
        str(helper))
    shutil.rmtree(helper.parent)
    return needs


def fake_installed_distribution(site: Path, name: str, files: dict[str, Path]) -> None:
    """A distribution installed in ``site`` as pip would (dist-info with a RECORD): ``files``
    maps the paths inside site-packages to shared objects made with gcc."""
    module = name.replace("-", "_")
    for relative, made in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(made, site / relative)
    (site / module / "__init__.py").write_text("")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    record = [f"{relative},," for relative in [*files, f"{module}/__init__.py"]]
    (info / "RECORD").write_text("\n".join(record + [f"{info.name}/RECORD,,"]) + "\n")


# --- the table ------------------------------------------------------------------------------------

def test_the_table_maps_sonames_to_valid_debian_package_names():
    for soname, package in sl.DEBIAN_PACKAGES.items():
        assert re.fullmatch(r"lib[\w+.-]+\.so(\.\d+)*", soname), soname
        assert validate_package_name(package) == package
    assert sl.DEBIAN_PACKAGES["libgomp.so.1"] == "libgomp1"
    assert sl.DEBIAN_PACKAGES["libGL.so.1"] == "libgl1"
    assert sl.DEBIAN_PACKAGES["libglib-2.0.so.0"] == "libglib2.0-0"
    assert not set(sl.DEBIAN_PACKAGES) & sl.DRIVER_LIBRARIES


@pytest.mark.parametrize("name, shared", [
    ("x.so", True), ("_x.cpython-311-x86_64-linux-gnu.so", True), ("libz-abc.so.1.2.13", True),
    ("x.py", False), ("sonnet.txt", False), ("x.dylib", False)])
def test_shared_object_names(name, shared):
    assert sl.is_shared_object_name(name) is shared


def test_origin_is_the_folder_of_the_file():
    assert sl.expand_origin("$ORIGIN/../numpy.libs", "/v/site/numpy/core") \
        == "/v/site/numpy/numpy.libs"
    assert sl.expand_origin("${ORIGIN}", "/v/a") == "/v/a"


def test_ld_so_conf_includes_are_followed(tmp_path):
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    (tmp_path / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (tmp_path / "etc/ld.so.conf.d/x.conf").write_text("# comment\n/opt/extra\n")
    for folder, name in [("opt/extra", "libextra.so.2"), ("env", "libenv.so.1"),
                         ("usr/lib/x86_64-linux-gnu", "libc.so.6")]:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / name).write_text("")
    names = sl.system_library_names({"LD_LIBRARY_PATH": "/env"}, root=str(tmp_path))
    assert {"libextra.so.2", "libc.so.6", "libenv.so.1"} <= names


# --- the ELF reader ------------------------------------------------------------------------------

@needs_gcc
def test_needed_libraries_and_rpath_are_read_as_readelf_reads_them(tmp_path):
    made = compile_shared_object(tmp_path / "_threads.so", OPENMP_C, "-lgomp",
                                 "-Wl,-rpath,$ORIGIN/../pkg.libs", "-Wl,-soname,_threads.so")
    section = sl.read_dynamic_section(made)
    assert "libgomp.so.1" in section.needed
    assert section.search_path == ("$ORIGIN/../pkg.libs",)
    assert section.soname == "_threads.so"
    if shutil.which("readelf"):
        text = subprocess.run(["readelf", "-d", str(made)], capture_output=True, text=True).stdout
        assert section.needed == tuple(re.findall(r"\(NEEDED\).*\[(.*)\]", text))


def test_files_that_are_not_elf_have_no_dynamic_section(tmp_path):
    (tmp_path / "x.so").write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 100)  # a Mach-O file
    (tmp_path / "short.so").write_bytes(b"\x7fELF")
    assert sl.read_dynamic_section(tmp_path / "x.so") is None
    assert sl.read_dynamic_section(tmp_path / "short.so") is None
    assert sl.read_dynamic_section(tmp_path / "absent.so") is None


# --- what is missing -----------------------------------------------------------------------------

@needs_gcc
def test_a_library_the_wheel_bundles_through_rpath_origin_is_found(tmp_path):
    soname = "libbundled-1a2b3c.so.1"
    bundled = compile_shared_object(tmp_path / "build" / soname, "int b(void) { return 1; }\n",
                                    f"-Wl,-soname,{soname}")
    ext = compile_shared_object(tmp_path / "site/pkg/_ext.so",
                                "int b(void);\nint e(void) { return b(); }\n",
                                str(bundled), "-Wl,-rpath,$ORIGIN/../pkg.libs")
    (tmp_path / "site/pkg.libs").mkdir()
    shutil.move(bundled, tmp_path / "site/pkg.libs" / soname)
    system = sl.system_library_names()
    assert sl.missing_libraries([str(ext)], system, bundled=set()) == []
    (tmp_path / "site/pkg.libs" / soname).unlink()  # the same wheel without its .libs folder
    assert sl.missing_libraries([str(ext)], system, bundled=set()) == [
        sl.MissingLibrary(soname, (str(ext),))]


@needs_gcc
def test_system_and_driver_libraries_are_not_missing(tmp_path):
    ext = compile_shared_object(tmp_path / "_threads.so", OPENMP_C, "-lgomp")
    assert sl.missing_libraries([str(ext)], available={"libgomp.so.1", "libc.so.6"}) == []
    missing = sl.missing_libraries([str(ext)], available={"libc.so.6"})
    assert [(m.soname, m.package) for m in missing] == [("libgomp.so.1", "libgomp1")]
    # libcuda.so.1 comes from the host's driver at run time
    cuda = compile_shared_object(tmp_path / "lib" / "libcuda.so.1",
                                 "int cuInit(int f) { return f; }\n", "-Wl,-soname,libcuda.so.1")
    gpu = compile_shared_object(tmp_path / "_gpu.so",
                                "int cuInit(int);\nint g(void) { return cuInit(0); }\n", str(cuda))
    assert sl.missing_libraries([str(gpu)], available={"libc.so.6"}, bundled=set()) == []


# --- on the host: the plan -----------------------------------------------------------------------

@needs_gcc
def test_a_planned_requirement_whose_wheel_links_libgomp_adds_libgomp1(tmp_path, monkeypatch):
    made = compile_shared_object(tmp_path / "made" / "_threads.so", OPENMP_C, "-lgomp")
    site = tmp_path / "site"
    fake_installed_distribution(site, "mlbox-gomp-fixture",
                                {"mlbox_gomp_fixture/_threads.so": made})
    monkeypatch.syspath_prepend(str(site))
    assert sl.packages_for_distributions(["mlbox-gomp-fixture", "not-installed-here"]) == [
        ("libgomp1", "libgomp.so.1", "mlbox-gomp-fixture")]

    system = plan_system_packages(["print(1)"], search_dir=None,
                                  requirements=["mlbox-gomp-fixture==0.1", "nbformat"])
    assert system.names() == ("libgomp1",)
    assert system.warnings == ["system package libgomp1 added (inferred from libgomp.so.1, which "
                               "mlbox-gomp-fixture links); --exclude-apt libgomp1 drops it"]
    assert plan_system_packages(["print(1)"], search_dir=None, exclude=["libgomp1"],
                                requirements=["mlbox-gomp-fixture==0.1"]).names() == ()

    plan = plan_image(["print(1)"], notebook_name="t.ipynb", search_dir=None, pip=PipSettings(),
                      options=BuildOptions(pip=("mlbox-gomp-fixture==0.1",)))
    assert "apt-get install -y --no-install-recommends libgomp1" in plan.context.dockerfile


# --- the Dockerfile ------------------------------------------------------------------------------

def test_the_check_runs_after_the_venv_is_copied_in_the_final_stage():
    context = render_build_context(ImageSpec(requirements=("numpy",), apt=("libgl1",),
                                             apt_excluded=("libgomp1",)))
    lines = context.dockerfile.splitlines()
    check = lines.index(f"RUN {VENV}/bin/python -I {LIBRARY_CHECK} {VENV} --exclude libgomp1")
    final = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    apt = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    venv = lines.index(f"COPY --from=builder {VENV} {VENV}")
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert final < apt < venv < check < user  # as root, seeing the base image and the apt packages
    assert context.files["shared_libraries.py"] == Path(sl.__file__).read_bytes()
    assert "--exclude" not in render_build_context(ImageSpec(requirements=("numpy",))).dockerfile
    with pytest.raises(Exception, match="not a valid Debian package name"):
        render_build_context(ImageSpec(requirements=("numpy",), apt_excluded=("x; rm -rf /",)))


# --- inside the image: the check ------------------------------------------------------------------

def fake_venv(tmp_path: Path, name: str, files: dict[str, Path]) -> Path:
    venv = tmp_path / "venv"
    fake_installed_distribution(venv / "lib/python3.11/site-packages", name, files)
    return venv


def run_check(venv: Path, *args, install=None) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = sl.check_image(str(venv), *args, install=install) if install or args \
            else sl.main([str(venv)])
    return status, out.getvalue()


@needs_gcc
def test_an_unknown_library_stops_with_one_sentence_naming_it_the_file_and_the_fix(tmp_path):
    needs = unknown_library_pair(tmp_path / "made")
    venv = fake_venv(tmp_path, "mlbox-unknown-fixture", {"mlbox_unknown_fixture/_needs.so": needs})
    status, output = run_check(venv)
    assert status == 3
    sentence = sl.stop_sentence(output)
    assert sentence == (
        "libmlboxnowhere.so.1 (needed by mlbox_unknown_fixture/_needs.so of mlbox_unknown_fixture) "
        "is not in the image and jupyter_mlbox does not know which Debian package provides it: "
        "add that package with --apt NAME or a line in apt.txt (`apt-file search "
        "libmlboxnowhere.so.1` or packages.debian.org names it).")


@needs_gcc
def test_a_known_missing_library_is_installed_and_checked_again(tmp_path):
    made = compile_shared_object(tmp_path / "made" / "_threads.so", OPENMP_C, "-lgomp")
    venv = fake_venv(tmp_path, "mlbox-gomp-fixture", {"mlbox_gomp_fixture/_threads.so": made})
    missing = sl.missing_libraries([str(venv / "lib/python3.11/site-packages/mlbox_gomp_fixture/"
                                        "_threads.so")], available={"libc.so.6"})
    assert [m.package for m in missing] == ["libgomp1"]
    if "libgomp.so.1" not in sl.system_library_names():
        pytest.skip("this machine lacks libgomp.so.1: the integration test installs it for real")
    # Here libgomp.so.1 is present, so the check passes without installing anything …
    assert run_check(venv, install=lambda packages: pytest.fail(f"installed {packages}")) \
        == (0, "shared libraries: 1 shared objects, every needed library found\n")


@needs_gcc
def test_an_excluded_package_is_neither_installed_nor_fatal(tmp_path, monkeypatch):
    made = compile_shared_object(tmp_path / "made" / "_threads.so", OPENMP_C, "-lgomp")
    venv = fake_venv(tmp_path, "mlbox-gomp-fixture", {"mlbox_gomp_fixture/_threads.so": made})
    # an image without libgomp.so.1: the system's names less that one
    names = sl.system_library_names() - {"libgomp.so.1"}
    monkeypatch.setattr(sl, "system_library_names", lambda: names)
    installed = []
    status, output = run_check(venv, ["libgomp1"], install=installed.append)
    assert (status, installed) == (0, [])
    assert ("warning: libgomp.so.1 (needed by mlbox_gomp_fixture/_threads.so of "
            "mlbox_gomp_fixture) is not in the image; --exclude-apt libgomp1 left it out") in output
    # not excluded: apt-get is asked for it; when that fails, one sentence stops the build
    status, output = run_check(venv, install=lambda packages: installed.extend(packages) or 100)
    assert (status, installed) == (3, ["libgomp1"])
    assert sl.stop_sentence(output).startswith(
        "installing libgomp1 (which libgomp.so.1 comes from) failed with apt-get exit status 100")


# --- the error the user sees ----------------------------------------------------------------------

class CheckFailingEngine(MemoryEngine):
    """A MemoryEngine whose build fails as dockerd reports a RUN that exited 3, with the check's
    real output in the log."""

    def __init__(self, check_output: str):
        super().__init__(images=("python:3.11-slim",))
        self.check_output = check_output

    def build(self, context_tar, tag, **kwargs):
        raise BuildError(f"build of {tag} failed: The command '/bin/sh -c {VENV}/bin/python -I "
                         f"{LIBRARY_CHECK} {VENV}' returned a non-zero code: 3",
                         step="Step 14/18 : RUN ...",
                         log="Step 14/18 : RUN ...\n" + self.check_output)


@needs_gcc
def test_the_build_error_is_the_checks_sentence(tmp_path):
    needs = unknown_library_pair(tmp_path / "made")
    venv = fake_venv(tmp_path, "mlbox-unknown-fixture", {"mlbox_unknown_fixture/_needs.so": needs})
    _, output = run_check(venv)
    plan = plan_image(["print(1)"], notebook_name="t.ipynb", search_dir=None, pip=PipSettings())
    with pytest.raises(MissingLibraryError) as caught:
        build_image(CheckFailingEngine(output), plan)
    assert str(caught.value) == sl.stop_sentence(output)
    assert str(caught.value).startswith("libmlboxnowhere.so.1 (needed by ")
    assert isinstance(caught.value, BuildError) and output.strip() in caught.value.log
    # any other build failure is left as it was
    with pytest.raises(BuildError, match="returned a non-zero code: 3") as other:
        build_image(CheckFailingEngine("something else\n"), plan)
    assert not isinstance(other.value, MissingLibraryError)
