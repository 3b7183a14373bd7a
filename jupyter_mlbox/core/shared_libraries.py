"""Shared libraries the wheels' binaries need, and the Debian packages that provide them.

A wheel's ``.so`` files may need a system library the slim base image lacks (OpenMP's
``libgomp.so.1`` for lightgbm/xgboost, ``libGL.so.1`` for opencv-python …); without it the
failure shows only at import, deep in a run. Two uses of one reader of ``DT_NEEDED``:

* on the host, when planning: the kernel's own installed distributions (the same wheels, at the
  pinned versions) are scanned, and each needed library in :data:`DEBIAN_PACKAGES` that the wheel
  does not bundle adds its package to the final stage's apt step (cached, labelled, shown in the
  plan, ``--exclude-apt`` drops it);
* inside the image, as the build's last check (this file is copied into the build context and run
  with the venv's Python after the venv is copied): every shared object of the venv must find its
  libraries among the base image's and the apt packages'. A missing one with a known package is
  installed there (apt-get, from the same mirror as the apt step); an unknown one stops the build
  with one sentence that names the library, the file that needs it and the fix.

Libraries a wheel bundles (auditwheel's ``*.libs`` folders, reached through ``RPATH $ORIGIN``)
are found and fine. Stdlib only: this module runs as a script inside the image.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

#: The line the in-image check prints before it stops the build; build.py turns the rest of that
#: line into the BuildError's message.
MARKER = "MLBOX-MISSING-LIBRARY: "

#: soname → Debian bookworm package, for libraries wheels link and ``python:3.x-slim`` lacks.
#: Checked against bookworm's package index; documented in the README.
DEBIAN_PACKAGES = {
    # compilers' run-time libraries (OpenMP: lightgbm, xgboost, torch's CPU builds …)
    "libgomp.so.1": "libgomp1",
    "libomp.so.5": "libomp5-14",
    "libgfortran.so.5": "libgfortran5",
    "libquadmath.so.0": "libquadmath0",
    "libatomic.so.1": "libatomic1",
    "libtbb.so.12": "libtbb12",
    # OpenGL and GLib (opencv-python, PyQt, vtk, open3d …)
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLU.so.1": "libglu1-mesa",
    "libglapi.so.0": "libglapi-mesa",
    "libgbm.so.1": "libgbm1",
    "libdrm.so.2": "libdrm2",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
    # X11 and friends (GUI toolkits' wheels)
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXi.so.6": "libxi6",
    "libXrandr.so.2": "libxrandr2",
    "libXfixes.so.3": "libxfixes3",
    "libXcursor.so.1": "libxcursor1",
    "libXinerama.so.1": "libxinerama1",
    "libXcomposite.so.1": "libxcomposite1",
    "libXdamage.so.1": "libxdamage1",
    "libXtst.so.6": "libxtst6",
    "libXss.so.1": "libxss1",
    "libXt.so.6": "libxt6",
    "libXxf86vm.so.1": "libxxf86vm1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libgtk-3.so.0": "libgtk-3-0",
    "libgdk-3.so.0": "libgtk-3-0",
    "libgdk_pixbuf-2.0.so.0": "libgdk-pixbuf-2.0-0",
    "libatk-1.0.so.0": "libatk1.0-0",
    "libcairo.so.2": "libcairo2",
    "libpango-1.0.so.0": "libpango-1.0-0",
    "libpangocairo-1.0.so.0": "libpangocairo-1.0-0",
    "libnss3.so": "libnss3",
    "libnssutil3.so": "libnss3",
    "libsmime3.so": "libnss3",
    # sound (soundfile, librosa, sounddevice, pyaudio …)
    "libsndfile.so.1": "libsndfile1",
    "libasound.so.2": "libasound2",
    "libportaudio.so.2": "libportaudio2",
    "libFLAC.so.12": "libflac12",
    "libogg.so.0": "libogg0",
    "libvorbis.so.0": "libvorbis0a",
    "libopus.so.0": "libopus0",
    "libmpg123.so.0": "libmpg123-0",
    # numerics, data, I/O
    "libopenblas.so.0": "libopenblas0",
    "libblas.so.3": "libblas3",
    "liblapack.so.3": "liblapack3",
    "libfftw3.so.3": "libfftw3-double3",
    "libgsl.so.27": "libgsl27",
    "libmpfr.so.6": "libmpfr6",
    "libhdf5_serial.so.103": "libhdf5-103-1",
    "libnetcdf.so.19": "libnetcdf19",
    "libgeos_c.so.1": "libgeos-c1v5",
    "libproj.so.25": "libproj25",
    "libgdal.so.32": "libgdal32",
    "libsnappy.so.1": "libsnappy1v5",
    "libnuma.so.1": "libnuma1",
    "libaio.so.1": "libaio1",
    "libOpenCL.so.1": "ocl-icd-libopencl1",
    "libusb-1.0.so.0": "libusb-1.0-0",
    "libpq.so.5": "libpq5",
    "libmariadb.so.3": "libmariadb3",
    "libodbc.so.2": "libodbc2",
    "libxml2.so.2": "libxml2",
    "libxslt.so.1": "libxslt1.1",
    "libcurl.so.4": "libcurl4",
    "libssh2.so.1": "libssh2-1",
    "libjpeg.so.62": "libjpeg62-turbo",
    "libpng16.so.16": "libpng16-16",
    "libtiff.so.6": "libtiff6",
    "libwebp.so.7": "libwebp7",
    "libavcodec.so.59": "libavcodec59",
}

#: Libraries no package of the image provides: the NVIDIA container runtime mounts them from the
#: host's driver when a container runs with GPUs (a CUDA wheel links them; they are fine).
DRIVER_LIBRARIES = frozenset({
    "libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1", "libnvcuvid.so.1",
    "libnvidia-encode.so.1", "libnvidia-opticalflow.so.1", "libnvoptix.so.1",
})

#: Where the dynamic loader looks besides ld.so.conf and LD_LIBRARY_PATH (its trusted dirs).
DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib")

_DT_NEEDED, _DT_STRTAB, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 1, 5, 14, 15, 29
_PT_LOAD, _PT_DYNAMIC = 1, 2


@dataclass(frozen=True)
class DynamicSection:
    """What the loader reads from one ELF file: the libraries it needs and where it looks."""

    needed: tuple[str, ...]
    search_path: tuple[str, ...]  # RUNPATH, else RPATH; ``$ORIGIN`` not yet expanded
    soname: str | None = None


def read_dynamic_section(path: str | os.PathLike) -> DynamicSection | None:
    """``DT_NEEDED``/``RPATH``/``RUNPATH`` of an ELF shared object; None when ``path`` is not
    ELF or has no dynamic section (a static binary, a macOS or Windows file named ``.so``).

    Reads only the headers and the dynamic segment (a 500 MB ``libtorch`` costs a few reads)."""
    try:
        with open(path, "rb") as file:
            ident = file.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) \
                    or ident[5] not in (1, 2):
                return None
            wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
            if wide:
                phoff, = struct.unpack_from(order + "Q", ident, 32)
                phentsize, phnum = struct.unpack_from(order + "HH", ident, 54)
                header, entry = order + "IIQQQQQQ", order + "qQ"
            else:
                phoff, = struct.unpack_from(order + "I", ident, 28)
                phentsize, phnum = struct.unpack_from(order + "HH", ident, 42)
                header, entry = order + "IIIIIIII", order + "iI"
            file.seek(phoff)
            table = file.read(phentsize * phnum)
            loads, dynamic = [], None
            for index in range(phnum):
                fields = struct.unpack_from(header, table, index * phentsize)
                if wide:  # type, flags, offset, vaddr, paddr, filesz, memsz, align
                    kind, offset, vaddr, filesz = fields[0], fields[2], fields[3], fields[5]
                else:  # type, offset, vaddr, paddr, filesz, memsz, flags, align
                    kind, offset, vaddr, filesz = fields[0], fields[1], fields[2], fields[4]
                if kind == _PT_LOAD:
                    loads.append((vaddr, offset, filesz))
                elif kind == _PT_DYNAMIC:
                    dynamic = (offset, filesz)
            if dynamic is None:
                return None
            file.seek(dynamic[0])
            raw = file.read(dynamic[1])
            size = struct.calcsize(entry)
            tags: list[tuple[int, int]] = []
            for start in range(0, len(raw) - size + 1, size):
                tag, value = struct.unpack_from(entry, raw, start)
                if tag == 0:
                    break
                tags.append((tag, value))
            strtab = next((value for tag, value in tags if tag == _DT_STRTAB), None)
            base = next((offset + strtab - vaddr for vaddr, offset, filesz in loads
                         if strtab is not None and vaddr <= strtab < vaddr + filesz), None)
            if base is None:
                return None

            def string(at: int) -> str:
                file.seek(base + at)
                data = b""
                while b"\0" not in data:
                    chunk = file.read(256)
                    if not chunk:
                        break
                    data += chunk
                return data.split(b"\0", 1)[0].decode("utf-8", "replace")

            needed = tuple(string(value) for tag, value in tags if tag == _DT_NEEDED)
            runpath = [string(value) for tag, value in tags if tag == _DT_RUNPATH]
            rpath = [string(value) for tag, value in tags if tag == _DT_RPATH]
            soname = next((string(value) for tag, value in tags if tag == _DT_SONAME), None)
    except (OSError, struct.error):
        return None
    search = [d for entry_ in (runpath or rpath) for d in entry_.split(":") if d]
    return DynamicSection(needed, tuple(search), soname)


def is_shared_object_name(name: str) -> bool:
    """``foo.so``, ``foo.cpython-311-x86_64-linux-gnu.so``, ``libfoo.so.1.2``."""
    return name.endswith(".so") or ".so." in name


def expand_origin(directory: str, origin: str) -> str:
    """An RPATH entry with ``$ORIGIN``/``${ORIGIN}`` made the folder of the file that has it."""
    return os.path.normpath(directory.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))


def _ld_so_conf_dirs(path: str, seen: set[str], root: str = "/") -> list[str]:
    """The folders ``path`` (an ld.so.conf below ``root``) names, its includes followed."""
    import glob

    if path in seen:
        return []
    seen.add(path)
    dirs: list[str] = []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return dirs
    for line in lines:
        line = line.partition("#")[0].strip()
        if line.startswith("include"):
            for pattern in line.split()[1:]:
                pattern = os.path.join(root, pattern.lstrip("/")) if pattern.startswith("/") \
                    else os.path.join(os.path.dirname(path), pattern)
                for included in sorted(glob.glob(pattern)):
                    dirs += _ld_so_conf_dirs(included, seen, root)
        elif line:
            dirs.append(line)
    return dirs


def system_library_names(environ: dict | None = None, root: str = "/") -> set[str]:
    """File names the dynamic loader finds without a path: LD_LIBRARY_PATH, ld.so.conf's
    folders and the default ones (a superset of ``ldconfig -p``'s names, and no program to run)."""
    environ = os.environ if environ is None else environ
    dirs = [d for d in environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += _ld_so_conf_dirs(os.path.join(root, "etc/ld.so.conf"), set(), root)
    dirs += list(DEFAULT_DIRS)
    names: set[str] = set()
    for directory in dirs:
        directory = os.path.join(root, directory.lstrip("/"))
        try:
            names.update(os.listdir(directory))
        except OSError:
            continue
        for sub in ("x86_64-linux-gnu", "aarch64-linux-gnu"):  # multiarch, when not in conf
            try:
                names.update(os.listdir(os.path.join(directory, sub)))
            except OSError:
                pass
    return names


@dataclass(frozen=True)
class MissingLibrary:
    """``soname``, needed by ``needed_by`` (files), that nothing in the image provides."""

    soname: str
    needed_by: tuple[str, ...]

    @property
    def package(self) -> str | None:
        return DEBIAN_PACKAGES.get(self.soname)


def shared_objects(root: str | os.PathLike) -> Iterator[str]:
    """Paths of the files below ``root`` whose names say they are shared objects."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if is_shared_object_name(name):
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    yield path


def missing_libraries(files: Iterable[str], available: set[str],
                      bundled: set[str] | None = None) -> list[MissingLibrary]:
    """The libraries ``files`` need that neither their RPATH/RUNPATH, nor ``available`` (the
    system's names), nor ``bundled`` (names of files shipped beside them: a lib another lib
    loads first) provides. Driver libraries are never missing."""
    files = list(files)
    bundled = {os.path.basename(f) for f in files} if bundled is None else bundled
    wanted: dict[str, list[str]] = {}
    for path in files:
        section = read_dynamic_section(path)
        if section is None:
            continue
        origin = os.path.dirname(os.path.abspath(path))
        dirs = [expand_origin(d, origin) for d in section.search_path]
        for soname in section.needed:
            if soname in available or soname in bundled or soname in DRIVER_LIBRARIES \
                    or "/" in soname:
                continue
            if any(os.path.exists(os.path.join(d, soname)) for d in dirs):
                continue
            wanted.setdefault(soname, []).append(path)
    return [MissingLibrary(soname, tuple(sorted(paths)))
            for soname, paths in sorted(wanted.items())]


def stop_sentence(log: str) -> str | None:
    """The sentence the in-image check stopped a build with, found in the build's log."""
    found = [line.split(MARKER, 1)[1].strip() for line in log.splitlines() if MARKER in line]
    return found[-1] if found else None


# --- on the host: the packages a plan adds ------------------------------------------------------

#: (name, version, where) → what :func:`_linked_packages` found: a kernel plans many times.
_SCANNED: dict[tuple[str, str, str], list[tuple[str, str]]] = {}


def _linked_packages(name: str) -> list[tuple[str, str]]:
    """``(package, soname)`` for the installed distribution ``name`` (cached by version)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return []
    key = (name, distribution.version, str(distribution.locate_file("")))
    if key not in _SCANNED:
        files = [str(distribution.locate_file(f)) for f in distribution.files or ()
                 if is_shared_object_name(f.name)]
        # ``available`` is empty on purpose: the host's libraries say nothing about the image's.
        # The table holds only libraries the slim base lacks; on a fuller base apt-get is a no-op.
        _SCANNED[key] = [(m.package, m.soname) for m in missing_libraries(files, available=set())
                         if m.package]
    return _SCANNED[key]


def packages_for_distributions(names: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(package, soname, distribution)`` for each library in :data:`DEBIAN_PACKAGES` that an
    installed distribution of ``names`` needs and does not bundle; the same wheels the image gets,
    so the apt step can install them before the venv is copied. A distribution this kernel lacks
    adds nothing here: the in-image check covers it."""
    return [(package, soname, name) for name in names
            for package, soname in _linked_packages(name)]


# --- inside the image: the build's last check ---------------------------------------------------

def _distribution_of(path: str, venv: str) -> str | None:
    """The distribution whose RECORD lists ``path`` (read only when a file is at fault)."""
    for record in Path(venv).glob("lib/python*/site-packages/*.dist-info/RECORD"):
        site = record.parent.parent
        try:
            relative = os.path.relpath(path, site)
            lines = record.read_text(errors="replace").splitlines()
        except (OSError, ValueError):
            continue
        if any(line.split(",", 1)[0] == relative for line in lines):
            return record.parent.name.split("-", 1)[0]
    return None


def _describe(missing: MissingLibrary, venv: str) -> str:
    """``libfoo.so.1 (needed by sklearn/_x.so of scikit_learn, and 2 more)``."""
    first = missing.needed_by[0]
    site = next((p for p in Path(first).parents if p.name == "site-packages"), None)
    shown = os.path.relpath(first, site) if site else first
    distribution = _distribution_of(first, venv)
    text = f"{missing.soname} (needed by {shown}" + (f" of {distribution}" if distribution else "")
    more = len(missing.needed_by) - 1
    return text + (f", and {more} more file{'s' * (more > 1)})" if more else ")")


def unknown_library_sentence(missing: list[MissingLibrary], venv: str) -> str:
    """The one sentence that stops a build whose binaries need libraries of no known package."""
    parts = [_describe(m, venv) for m in missing]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    verb = "is" if len(parts) == 1 else "are"
    return (f"{listed} {verb} not in the image and jupyter_mlbox does not know which Debian "
            f"package provides {'it' if len(parts) == 1 else 'them'}: add that package with "
            f"--apt NAME or a line in apt.txt (`apt-file search {missing[0].soname}` or "
            f"packages.debian.org names it).")


def check_image(venv: str, excluded: Iterable[str] = (), install=None) -> int:
    """The in-image check: install known missing packages (not the ``excluded`` ones), then
    stop with :data:`MARKER` and one sentence if a library is still missing. Exit status."""
    files = list(shared_objects(venv))
    bundled = {os.path.basename(f) for f in files}
    missing = missing_libraries(files, system_library_names(), bundled)
    excluded = set(excluded)
    for item in missing:
        if item.package in excluded:
            print(f"warning: {_describe(item, venv)} is not in the image; --exclude-apt "
                  f"{item.package} left it out, so importing that module will fail", flush=True)
    packages = sorted({m.package for m in missing if m.package and m.package not in excluded})
    if packages:
        them = "it" if len(packages) == 1 else "them"
        print(f"installing {' '.join(packages)} for "
              f"{', '.join(_describe(m, venv) for m in missing if m.package in packages)}; "
              f"--apt {' --apt '.join(packages)} would plan {them} ahead", flush=True)
        status = (install or _apt_get_install)(packages)
        if status != 0:
            print(f"{MARKER}installing {' '.join(packages)} (which "
                  f"{', '.join(m.soname for m in missing if m.package in packages)} come"
                  f"{'s' * (len(packages) == 1)} from) failed with apt-get exit status {status}: "
                  f"check that the build reaches the Debian mirror, or use a base image that "
                  f"has {'it' if len(packages) == 1 else 'them'}.", flush=True)
            return 3
        missing = missing_libraries(files, system_library_names(), bundled)
    stubborn = [m for m in missing if m.package in packages]  # installed, still not found
    if stubborn:
        print(f"{MARKER}{_describe(stubborn[0], venv)} is still not found after installing "
              f"{stubborn[0].package}: the base image's loader does not look where Debian puts "
              f"it; use a Debian-based base image, or add the folder to LD_LIBRARY_PATH.",
              flush=True)
        return 3
    unknown = [m for m in missing if m.package is None]
    if unknown:
        print(MARKER + unknown_library_sentence(unknown, venv), flush=True)
        return 3
    print(f"shared libraries: {len(files)} shared objects, every needed library found", flush=True)
    return 0


def _apt_get_install(packages: list[str]) -> int:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends "
               + " ".join(packages) + " && rm -rf /var/lib/apt/lists/*")
    return subprocess.call(["sh", "-c", command], env=environment)


def main(argv: list[str] | None = None) -> int:
    """``python shared_libraries.py VENV [--exclude PACKAGE]…``"""
    args = list(sys.argv[1:] if argv is None else argv)
    excluded = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--exclude"]
    positional = [a for i, a in enumerate(args) if a != "--exclude"
                  and (i == 0 or args[i - 1] != "--exclude")]
    return check_image(positional[0] if positional else "/opt/venv", excluded)


if __name__ == "__main__":
    sys.exit(main())
