"""``c.MlboxDefaults`` reaches what the panel starts: from jupyter_mlbox_config.json on the
Jupyter config path (the same file the CLI and the magics read) and from the server's config."""
from __future__ import annotations

import json

import pytest

CPU_FALLBACK = "no GPU support on this Docker daemon: running on CPU"


class TestConfigFile:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, jp_config_dir):
        """pytest-jupyter points JUPYTER_CONFIG_DIR at jp_config_dir before the server starts."""
        (jp_config_dir / "jupyter_mlbox_config.json").write_text(
            json.dumps({"MlboxDefaults": {"gpus": "auto"}}))
        return jp_server_config

    @pytest.mark.docker
    async def test_configured_gpus_auto_reaches_runs_from_the_panel(
            self, engine, notebooks, api, no_leftover_containers):
        code, job = await api.post("runs", body={"path": "work/hello.ipynb"})  # no options
        assert code == 202, job
        job = await api.wait_job(job["id"])
        assert job["status"] == "done", job
        assert CPU_FALLBACK in job["log"], job["log"]
        assert job["result"]["gpu"] is False

    @pytest.mark.docker
    async def test_status_shows_the_configured_defaults(self, engine, api):
        code, status = await api.get("status")
        assert code == 200
        assert status["defaults"] == {"gpus": "auto"}

    @pytest.mark.docker
    async def test_a_request_option_overrides_the_default(self, engine, notebooks, api,
                                                          no_leftover_containers):
        code, job = await api.post("runs", body={"path": "work/hello.ipynb",
                                                 "options": {"gpus": "none"}})
        assert code == 202, job
        job = await api.wait_job(job["id"])
        assert job["status"] == "done", job
        assert CPU_FALLBACK not in job["log"]


class TestServerConfig:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config,
                "MlboxDefaults": {"base_image": "example/from-defaults:1",
                                  "pip": ["six"]}}

    async def test_server_config_reaches_the_dockerfile(self, notebooks, api):
        code, body = await api.get("dockerfile", path="work/hello.ipynb")
        assert code == 200, body
        assert "FROM example/from-defaults:1" in body["dockerfile"]
        assert "six" in body["dockerfile"]


class TestAppBaseImageWins:
    @pytest.fixture
    def jp_server_config(self, jp_server_config):
        return {**jp_server_config,
                "MlboxDefaults": {"base_image": "example/from-defaults:1"},
                "MlboxApp": {"base_image": "example/from-app:1"}}

    async def test_mlbox_app_base_image_overrides_the_defaults(self, notebooks, api):
        code, body = await api.get("dockerfile", path="work/hello.ipynb")
        assert code == 200, body
        assert "FROM example/from-app:1" in body["dockerfile"]


class TestBadConfiguredValue:
    @pytest.fixture
    def jp_server_config(self, jp_server_config, jp_config_dir):
        (jp_config_dir / "jupyter_mlbox_config.json").write_text(
            json.dumps({"MlboxDefaults": {"memory": "12 parsecs"}}))
        return jp_server_config

    async def test_the_server_starts_and_jobs_say_what_is_wrong(self, notebooks, api):
        code, body = await api.post("builds", body={"path": "work/hello.ipynb"})
        assert code == 500, body
        assert "MlboxDefaults.memory" in body["message"] and "12 parsecs" in body["message"]
