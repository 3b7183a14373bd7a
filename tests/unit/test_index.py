"""Guesses verified on a package index: a fake PEP 691 index served on loopback (no network).

The fake index serves JSON project pages and wheels built here with zipfile, honours HTTP
``Range`` (so the wheel is read lazily, by its central directory) and counts what it sent.
"""
from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jupyter_mlbox.core import index, inference
from jupyter_mlbox.core.inference import infer_requirements
from jupyter_mlbox.errors import RequirementError, UnverifiedGuessError


def make_wheel(name: str, version: str, modules: list[str], *, top_level: list[str] | None = None,
               pad: int = 0) -> bytes:
    """A wheel installing ``modules`` (paths such as ``cv2/__init__.py``), with an optional
    top_level.txt and ``pad`` bytes of incompressible data stored in it."""
    buffer = io.BytesIO()
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in modules:
            archive.writestr(path, "X = 1\n")
        if pad:
            archive.writestr(f"{modules[0].split('/')[0]}/_blob.bin", os.urandom(pad),
                             compress_type=zipfile.ZIP_STORED)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\n"
                                             f"Version: {version}\n")
        if top_level is not None:
            archive.writestr(f"{info}/top_level.txt", "".join(f"{t}\n" for t in top_level))
        archive.writestr(f"{info}/RECORD", "".join(f"{p},,\n" for p in modules))
    return buffer.getvalue()


class FakeIndex:
    """``/simple/<name>/`` (PEP 691 JSON, or PEP 503 HTML) and ``/files/<filename>``."""

    def __init__(self) -> None:
        self.pages: dict[str, dict] = {}
        self.html: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.sent: dict[str, int] = {}
        self.requests: list[tuple[str, dict]] = []
        self.ranges = True
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                if self.path.startswith("/simple/") and self.path in fake.pages:
                    page = fake.pages[self.path]
                    if self.path in fake.html:
                        body = "".join(f'<a href="{f["url"]}">{f["filename"]}</a>'
                                       for f in page["files"]).encode()
                        kind = "text/html"
                    else:
                        body, kind = json.dumps(page).encode(), \
                            "application/vnd.pypi.simple.v1+json"
                    return self._send(200, body, kind)
                if self.path.startswith("/files/") and self.path[7:] in fake.files:
                    data = fake.files[self.path[7:]]
                    header = self.headers.get("Range")
                    if header and fake.ranges:
                        spec = header.split("=", 1)[1]
                        first, _, last = spec.partition("-")
                        if first == "":
                            start, end = max(0, len(data) - int(last)), len(data) - 1
                        else:
                            start = int(first)
                            end = min(len(data) - 1, int(last)) if last else len(data) - 1
                        part = data[start:end + 1]
                        fake.sent[self.path[7:]] = fake.sent.get(self.path[7:], 0) + len(part)
                        return self._send(206, part, "application/octet-stream",
                                          {"Content-Range": f"bytes {start}-{end}/{len(data)}"})
                    fake.sent[self.path[7:]] = fake.sent.get(self.path[7:], 0) + len(data)
                    return self._send(200, data, "application/octet-stream")
                self._send(404, b"not found", "text/plain")

            def _send(self, code, body, kind, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def add(self, name: str, wheels: dict[str, bytes] | None = None, *, html: bool = False,
            yanked: tuple[str, ...] = ()) -> None:
        """Project ``name`` with ``wheels`` (filename → bytes); relative file URLs, as PyPI's
        mirrors often serve them."""
        files = []
        for filename, data in (wheels or {}).items():
            self.files[filename] = data
            files.append({"filename": filename, "url": f"../../files/{filename}",
                          "hashes": {}, "size": len(data), "yanked": filename in yanked})
        path = f"/simple/{name}/"
        self.pages[path] = {"meta": {"api-version": "1.1"}, "name": name, "files": files}
        if html:
            self.html.add(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_index(monkeypatch):
    fake = FakeIndex()
    monkeypatch.setenv("PIP_INDEX_URL", fake.url)
    index.clear_cache()
    yield fake
    fake.close()
    index.clear_cache()


def wheel_name(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{name.replace('-', '_')}-{version}-{tag}.whl"


# ---------------------------------------------------------------------------------------------
# the index check
# ---------------------------------------------------------------------------------------------

def test_a_large_wheel_is_read_by_ranges_not_downloaded(fake_index):
    big = make_wheel("bigpkg", "1.0", ["bigpkg/__init__.py", "bigpkg/core.py"], pad=3_000_000)
    fake_index.add("bigpkg", {wheel_name("bigpkg", "1.0"): big})
    check = index.check_module("bigpkg", "bigpkg")
    assert check.status == "verified" and check.verified and check.exists
    sent = fake_index.sent[wheel_name("bigpkg", "1.0")]
    assert 0 < sent < len(big) / 20  # the central directory, not the 3 MB of data
    assert any("Range" in headers for _, headers in fake_index.requests)
    assert index.check_module("bigpkg", "bigpkg.core").verified
    assert index.check_module("bigpkg", "otherpkg").status == "not-provided"


def test_without_range_support_the_wheel_is_read_whole_under_the_cap(fake_index, monkeypatch):
    wheel = make_wheel("plain", "2.0", ["plain.py"], pad=200_000)
    fake_index.add("plain", {wheel_name("plain", "2.0"): wheel})
    fake_index.ranges = False
    assert index.check_module("plain", "plain").verified
    assert fake_index.sent[wheel_name("plain", "2.0")] == len(wheel)
    index.clear_cache()
    monkeypatch.setattr(index, "MAX_DOWNLOAD_BYTES", 100_000)
    check = index.check_module("plain", "plain")
    assert check.status == "unreadable" and "larger than" in check.detail


def test_missing_and_not_provided_and_unreachable_are_results_not_exceptions(fake_index,
                                                                             monkeypatch):
    fake_index.add("protobuf", {wheel_name("protobuf", "5.0"):
                                make_wheel("protobuf", "5.0", ["google/protobuf/__init__.py"],
                                           top_level=["google"])})
    missing = index.check_module("no-such-dist", "no_such_dist")
    assert missing.status == "missing" and missing.exists is False
    assert "no distribution 'no-such-dist'" in missing.detail
    wrong = index.check_module("protobuf", "google.generativeai")
    assert wrong.status == "not-provided" and wrong.exists
    assert "does not install google.generativeai" in wrong.detail
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    down = index.check_module("protobuf", "google.protobuf")
    assert down.status == "unreachable" and down.exists is None and not down.verified


def test_top_level_txt_and_extension_modules_count(fake_index):
    fake_index.add("opencv-python", {wheel_name("opencv-python", "4.10.0", "cp37-abi3-manylinux_2_17_x86_64"):
                                     make_wheel("opencv-python", "4.10.0",
                                                ["cv2/cv2.abi3.so", "cv2/__init__.py"])})
    fake_index.add("ext", {wheel_name("ext", "1.0", "cp311-cp311-manylinux_2_17_x86_64"):
                           make_wheel("ext", "1.0", ["fastext.cpython-311-x86_64-linux-gnu.so"],
                                      top_level=["fastext", "alsothis"])})
    assert index.check_module("opencv-python", "cv2").verified
    assert index.check_module("ext", "fastext").verified
    assert index.check_module("ext", "alsothis").verified  # named by top_level.txt


def test_the_newest_final_releases_pure_wheel_is_chosen_and_yanked_ones_skipped(fake_index):
    fake_index.add("pick", {
        wheel_name("pick", "1.0"): make_wheel("pick", "1.0", ["old_name/__init__.py"]),
        wheel_name("pick", "2.0", "cp311-cp311-manylinux_2_17_x86_64"):
            make_wheel("pick", "2.0", ["pick/__init__.py"], pad=50_000),
        wheel_name("pick", "2.0"): make_wheel("pick", "2.0", ["pick/__init__.py"]),
        wheel_name("pick", "3.0rc1"): make_wheel("pick", "3.0rc1", ["renamed/__init__.py"]),
        wheel_name("pick", "2.1"): make_wheel("pick", "2.1", ["broken/__init__.py"]),
    }, yanked=(wheel_name("pick", "2.1"),))
    check = index.check_module("pick", "pick")
    assert check.verified and wheel_name("pick", "2.0") in check.detail
    assert set(fake_index.sent) == {wheel_name("pick", "2.0")}


def test_html_pages_credentials_and_the_cache(fake_index, monkeypatch):
    fake_index.add("htmlonly", {wheel_name("htmlonly", "1.0"):
                                make_wheel("htmlonly", "1.0", ["htmlonly/__init__.py"])},
                   html=True)
    monkeypatch.setenv("PIP_INDEX_URL", fake_index.url.replace("http://", "http://u:p%40ss@"))
    assert index.check_module("htmlonly", "htmlonly").verified
    page_headers = [h for path, h in fake_index.requests if path == "/simple/htmlonly/"]
    assert page_headers[0]["Authorization"] == "Basic dTpwQHNz"  # u:p@ss
    before = len(fake_index.requests)
    assert index.check_module("htmlonly", "htmlonly").verified
    assert len(fake_index.requests) == before  # answered from the cache


# ---------------------------------------------------------------------------------------------
# inference with the index
# ---------------------------------------------------------------------------------------------

def test_a_guess_the_index_lacks_stops_with_import_cell_and_fixes(fake_index):
    cells = ["import numpy", "x = 1", "import python_environment_check as pec"]
    with pytest.raises(UnverifiedGuessError) as caught:
        infer_requirements(cells)
    message = str(caught.value)
    assert isinstance(caught.value, RequirementError)
    assert "import python_environment_check (cell 3)" in message
    assert "no distribution 'python_environment_check'" in message
    assert "--pip NAME" in message and "beside the notebook" in message
    assert "--exclude python-environment-check" in message
    assert caught.value.problems[0][:2] == ("python_environment_check", 3)


def test_a_distribution_that_does_not_provide_the_module_is_refused(fake_index):
    fake_index.add("helpers", {wheel_name("helpers", "0.1"):
                               make_wheel("helpers", "0.1", ["something_else/__init__.py"],
                                          top_level=["something_else"])})
    with pytest.raises(UnverifiedGuessError, match=r"import helpers \(cell 1\).*does not install "
                                                   r"helpers"):
        infer_requirements(["import helpers"])


def test_a_verified_guess_is_added_and_marked(fake_index):
    fake_index.add("opencv-python", {wheel_name("opencv-python", "4.10.0"):
                                     make_wheel("opencv-python", "4.10.0", ["cv2/__init__.py"])})
    result = infer_requirements(["import cv2"])
    (req,) = result.requirements
    assert (req.requirement, req.origin, req.verified) == ("opencv-python", "guess", True)
    assert any("cv2" in w and "verified" in w and "not verified" not in w
               for w in result.warnings)


def test_namespace_imports_map_by_dotted_path_never_to_the_root(fake_index, tmp_path,
                                                                 monkeypatch):
    # the kernel has protobuf, which installs google/protobuf: it must not count for genai
    info = tmp_path / "protobuf-5.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: protobuf\nVersion: 5.0\n")
    (info / "RECORD").write_text("google/protobuf/__init__.py,,\n")
    (info / "top_level.txt").write_text("google\n")
    (tmp_path / "google" / "protobuf").mkdir(parents=True)
    (tmp_path / "google" / "protobuf" / "__init__.py").write_text("")
    # … and google-cloud-core, whose files sit in the google/cloud/ namespace folder
    core = tmp_path / "google_cloud_core-2.4.dist-info"
    core.mkdir()
    (core / "METADATA").write_text("Metadata-Version: 2.1\nName: google-cloud-core\n"
                                   "Version: 2.4\n")
    (core / "RECORD").write_text("google/cloud/client.py,,\n")
    (tmp_path / "google" / "cloud").mkdir()
    (tmp_path / "google" / "cloud" / "client.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    inference._packages_distributions.cache_clear()
    fake_index.add("google-generativeai", {wheel_name("google-generativeai", "0.8"):
                                           make_wheel("google-generativeai", "0.8",
                                                      ["google/generativeai/__init__.py"],
                                                      top_level=["google"])})
    fake_index.add("azure-storage-blob", {wheel_name("azure-storage-blob", "12.0"):
                                          make_wheel("azure-storage-blob", "12.0",
                                                     ["azure/storage/blob/__init__.py"])})
    fake_index.add("google-cloud-storage", {wheel_name("google-cloud-storage", "2.0"):
                                            make_wheel("google-cloud-storage", "2.0",
                                                       ["google/cloud/storage/__init__.py"])})
    try:
        result = infer_requirements(["import google.generativeai as genai",
                                     "from azure.storage.blob import BlobServiceClient",
                                     "from google.protobuf import message",
                                     "from google.cloud import storage"])
        for alone in ["import google", "import google.cloud"]:
            with pytest.raises(UnverifiedGuessError, match="namespace many distributions share"):
                infer_requirements([alone])
    finally:
        inference._packages_distributions.cache_clear()
    by_name = {r.name: r for r in result.requirements}
    assert set(by_name) == {"google-generativeai", "azure-storage-blob", "protobuf",
                            "google-cloud-storage"}  # not google-cloud-core, the kernel's
    assert by_name["google-generativeai"].verified is True
    assert by_name["azure-storage-blob"].verified is True  # a shortened prefix of the import
    assert by_name["protobuf"].requirement == "protobuf==5.0"  # google.protobuf: the kernel's
    assert "google" not in by_name


def test_modules_shipped_inside_another_distribution(fake_index, monkeypatch):
    monkeypatch.setattr(inference, "_packages_distributions", lambda: {})  # no matplotlib here
    fake_index.add("matplotlib", {wheel_name("matplotlib", "3.9.0"):
                                  make_wheel("matplotlib", "3.9.0",
                                             ["matplotlib/__init__.py", "pylab.py",
                                              "mpl_toolkits/mplot3d/__init__.py"])})
    result = infer_requirements(["import pylab", "from mpl_toolkits.mplot3d import Axes3D"])
    assert [(r.requirement, r.verified) for r in result.requirements] == [("matplotlib", True)]


def test_unreachable_index_adds_the_guess_unverified_with_a_warning():
    # the autouse fixture points PIP_INDEX_URL at a port nothing listens on
    result = infer_requirements(["import cv2", "import surely_not_a_module_xyz"])
    by_name = {r.name: r for r in result.requirements}
    assert by_name["opencv-python"].verified is False
    assert by_name["surely-not-a-module-xyz"].verified is False
    assert by_name["surely-not-a-module-xyz"].origin == "guess"
    assert any("surely_not_a_module_xyz" in w and "not verified: the index could not be reached"
               in w for w in result.warnings)
    with pytest.raises(UnverifiedGuessError, match="could not be reached"):
        infer_requirements(["import google.generativeai"])  # a namespace needs the index


def test_pip_exclude_and_pip_magic_settle_an_unverifiable_import(fake_index):
    fake_index.add("env-check-tools", {wheel_name("env-check-tools", "1.0"):
                                       make_wheel("env-check-tools", "1.0",
                                                  ["python_environment_check/__init__.py"])})
    source = ["import python_environment_check"]
    assert infer_requirements(source, exclude=["python-environment-check"]).requirements == []
    explicit = infer_requirements(source, extra=["env-check-tools==1.0"])
    assert [(r.requirement, r.origin) for r in explicit.requirements] == \
        [("env-check-tools==1.0", "explicit")]
    magic = infer_requirements(["%pip install env-check-tools", *source])
    assert [r.requirement for r in magic.requirements] == ["env-check-tools"]
    with pytest.raises(UnverifiedGuessError):
        infer_requirements(source, extra=["tqdm"])  # a --pip that does not provide it


def test_optional_imports_are_still_not_guessed(fake_index):
    result = infer_requirements(["try:\n    import nothing_like_this\nexcept ImportError:\n"
                                 "    pass"])
    assert result.requirements == []
    assert not [path for path, _ in fake_index.requests]  # nothing asked
