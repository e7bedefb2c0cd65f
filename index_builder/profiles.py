"""Profiles: which encoders an index carries and the settings that shape answers, as data.

A profile is `index_builder/profiles/<name>.json` over the encoder catalogue in `encoders.json`. The
builder copies the profile's encoders and retrieval settings into the manifest of every version it
writes, and the answering core reads them from there: no tuned number is a constant in the code, and
the settings always travel with the index they were tuned for. `scripts/tune_profile.py` chooses the
retrieval settings by cross-validation on the dev split and writes them into the profile file.

QABOT_PROFILE (or `qabot index build --profile NAME`) picks one; the default is `default`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.errors import BuildError
from index_builder.models import ModelConfig

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    models: tuple[ModelConfig, ...]
    retrieval: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "encoders": [m.id for m in self.models],
            "retrieval": self.retrieval,
        }


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json") if p.stem != "encoders")


def load_profile(name: str | None = None) -> Profile:
    name = name or DEFAULT_PROFILE
    path = PROFILES_DIR / f"{name}.json"
    if name == "encoders" or not path.is_file():
        raise BuildError(f"Unknown profile {name!r}; choose one of: {', '.join(available_profiles())} (QABOT_PROFILE).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        catalogue = json.loads((PROFILES_DIR / "encoders.json").read_text(encoding="utf-8"))
        models = []
        for item in data["encoders"]:
            model_id = item["id"] if isinstance(item, dict) else item
            options = item if isinstance(item, dict) else {}
            model = ModelConfig(
                id=model_id,
                **catalogue[model_id],
                token_vectors=bool(options.get("token_vectors")),
                tokens_in_context=bool(options.get("tokens_in_context")),
                sentences_in_context=bool(options.get("sentences_in_context")),
            )
            if (model.tokens_in_context or model.sentences_in_context) and model.runtime != "onnx":
                raise ValueError(f"{model_id}: tokens/sentences_in_context need an onnx encoder, not {model.runtime}")
            models.append(model)
        return Profile(name, str(data.get("description", "")), tuple(models), dict(data.get("retrieval", {})))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BuildError(f"The profile {name!r} ({path}) is malformed: {err}.") from err
