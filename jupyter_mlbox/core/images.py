"""The images jupyter_mlbox made, as a user wants to see them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConflictError, EngineError, ImageNotFoundError
from .dockerfile import (BUILD_STEP_LABEL, KIND_LABEL, MANAGED_LABEL, NOTEBOOK_LABEL,
                         REQUIREMENTS_LABEL)
from .engine import Engine


@dataclass(frozen=True)
class MlboxImage:
    tag: str
    id: str
    size: int
    created: str
    notebook: str
    kind: str
    requirements: tuple[str, ...]

    def as_dict(self) -> dict:
        return {**asdict(self), "requirements": list(self.requirements)}


def label_requirements(labels: dict) -> tuple[str, ...]:
    """The requirements an image's label lists, joined by "," as dockerfile.py writes them;
    a comma inside extras (``dask[array,dataframe]==2024.1``) is not a separator."""
    import re

    text = labels.get(REQUIREMENTS_LABEL, "")
    return tuple(r for r in re.split(r",(?![^\[]*\])", text) if r)


def list_mlbox_images(engine: Engine) -> list[MlboxImage]:
    """Every tagged image carrying jupyter_mlbox's label, newest first."""
    images = []
    for attrs in engine.list_images(f"{MANAGED_LABEL}=true"):
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(BUILD_STEP_LABEL):  # a build step's (the package cache's venv images)
            continue
        for tag in attrs.get("RepoTags") or []:
            images.append(MlboxImage(
                tag=tag, id=attrs["Id"], size=attrs.get("Size", 0),
                created=attrs.get("Created", ""), notebook=labels.get(NOTEBOOK_LABEL, ""),
                kind=labels.get(KIND_LABEL, "environment"),
                requirements=label_requirements(labels)))
    return sorted(images, key=lambda image: image.created, reverse=True)


def _untagged(attrs: dict) -> bool:
    return not [tag for tag in attrs.get("RepoTags") or [] if tag != "<none>:<none>"]


def list_leftover_images(engine: Engine) -> list[MlboxImage]:
    """What builds leave besides the tagged images: each build's builder-stage image (its
    venv before the copy: the layer cache that lets the next notebook with the same
    requirements skip the install) and final images a ``--rebuild`` untagged. Only images
    with jupyter_mlbox's labels; newest first."""
    found: dict[str, MlboxImage] = {}
    for attrs in engine.list_images(BUILD_STEP_LABEL):
        # untagged builder stages, and the package cache's tools, stage and venv images
        # (mlbox/builder:HASH, mlbox/stage:HASH, mlbox/venv:HASH: made again when needed)
        if _untagged(attrs) or all(tag.startswith(STEP_REPOSITORIES)
                                   for tag in attrs.get("RepoTags") or []):
            labels = (attrs.get("Config") or {}).get("Labels") or {}
            found[attrs["Id"]] = _leftover(attrs, labels.get(BUILD_STEP_LABEL) or "untagged")
    for attrs in engine.list_images(f"{MANAGED_LABEL}=true"):
        if _untagged(attrs) and attrs["Id"] not in found:
            found[attrs["Id"]] = _leftover(attrs, "untagged")
    return sorted(found.values(), key=lambda image: image.created, reverse=True)


#: The repositories of the package cache's images (package_cache.py).
STEP_REPOSITORIES = ("mlbox/builder:", "mlbox/stage:", "mlbox/venv:")


def _leftover(attrs: dict, kind: str) -> MlboxImage:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    tags = [tag for tag in attrs.get("RepoTags") or [] if tag != "<none>:<none>"]
    return MlboxImage(tag=tags[0] if tags else "<none>", id=attrs["Id"], size=attrs.get("Size", 0),
                      created=str(attrs.get("Created", "")),
                      notebook=labels.get(NOTEBOOK_LABEL, ""), kind=kind,
                      requirements=label_requirements(labels))


def prune_leftover_images(engine: Engine) -> tuple[list[MlboxImage], list[tuple[MlboxImage, str]]]:
    """Remove :func:`list_leftover_images`; ``(removed, [(kept, why)])``: one a container or a
    build in progress still uses is kept. Never a tagged image, never one without our labels."""
    removed, kept = [], []
    for image in list_leftover_images(engine):
        try:
            engine.remove_image(image.id)
        except ImageNotFoundError:
            continue  # gone meanwhile (a parent of one removed before)
        except (ConflictError, EngineError) as err:
            kept.append((image, str(err).splitlines()[0]))
            continue
        removed.append(image)
    return removed, kept
