"""The images jupyter_mlbox made, as a user wants to see them."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .dockerfile import KIND_LABEL, MANAGED_LABEL, NOTEBOOK_LABEL, REQUIREMENTS_LABEL
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


def list_mlbox_images(engine: Engine) -> list[MlboxImage]:
    """Every tagged image carrying jupyter_mlbox's label, newest first."""
    images = []
    for attrs in engine.list_images(f"{MANAGED_LABEL}=true"):
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        for tag in attrs.get("RepoTags") or []:
            images.append(MlboxImage(
                tag=tag, id=attrs["Id"], size=attrs.get("Size", 0),
                created=attrs.get("Created", ""), notebook=labels.get(NOTEBOOK_LABEL, ""),
                kind=labels.get(KIND_LABEL, "environment"),
                requirements=tuple(r for r in labels.get(REQUIREMENTS_LABEL, "").split(",")
                                   if r)))
    return sorted(images, key=lambda image: image.created, reverse=True)
