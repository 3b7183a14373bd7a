"""The jupyter_server extension: a REST API over the core, under ``/mlbox/api/``."""
