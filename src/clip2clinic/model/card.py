"""The model card (``README.md``) written beside every saved ClinicCLIP.

Built with :class:`huggingface_hub.ModelCard`: Hub metadata (library, tags, pipeline, licence)
in the YAML header, then what a reader needs before using the weights: the variant, the
training data and settings, the preprocessing, an evaluation table when metrics are given,
how to load it, and its intended use and limitations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clip2clinic.model.config import ClinicCLIPConfig, package_version

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

TAGS = ["clip2clinic", "clip", "medical-imaging", "chest-x-ray", "radiology"]
PAPER = ("Ko & Park, *Bringing CLIP to the Clinic: Dynamic Soft Labels and Negation-Aware "
         "Learning for Medical Analysis*, CVPR 2025")  # fmt: skip
LIMITATIONS = """\
- **Research use only.** Not a medical device; not validated for diagnosis, triage or any
  clinical decision. Zero-shot scores are similarities, not calibrated probabilities of disease.
- **Data licence.** Weights trained on MIMIC-CXR (or any PhysioNet credentialed dataset) are
  derived from data under the PhysioNet Credentialed Health Data License 1.5.0 and its data use
  agreement: share them only with credentialed users who signed it (e.g. a private or gated
  repository), never publicly. The same holds for other datasets' own terms.
- **Scope.** Trained on adult chest radiographs and English reports; expect it to fail on other
  anatomy, paediatric films, other languages, and sites unlike its training data. Weights
  trained on the synthetic phantom corpus (the embedded demo) only test the software.
- **Bias.** Labels come from an automatic report labeler; its errors and the dataset's
  population, device and site mix carry into the model."""


def model_card(
    config: ClinicCLIPConfig,
    *,
    variant: str | None = None,
    training_data: str | None = None,
    settings: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    repo_id: str | None = None,
) -> ModelCard:
    """The card of a model with ``config``: ``variant`` (e.g. ``n_g_dtcg``), ``training_data``
    (what it was trained on), ``settings`` (name → value, e.g. epochs, learning rates, seed),
    ``metrics`` (name → value, an evaluation table) and ``repo_id`` (for the usage snippet)."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="clip2clinic", license="other", tags=list(TAGS),
                         pipeline_tag="zero-shot-image-classification")  # fmt: skip
    name = repo_id or "path/to/this/folder"
    sections = [
        f"# ClinicCLIP{f' ({variant})' if variant else ''}",
        f"A chest X-ray CLIP model trained with clip2clinic {package_version()}, which "
        f"implements {PAPER}.",
        "## Model\n\n" + _table(_architecture(config, variant)),
        "## Training data\n\n" + (training_data or "Not recorded."),
        "## Training settings\n\n" + (_table(settings) if settings else "Not recorded."),
        "## Preprocessing\n\n" + _table(config.preprocessing),
    ]
    if metrics:
        sections.append("## Evaluation\n\n" + _table(
            {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in metrics.items()},
            ("metric", "value")))  # fmt: skip
    sections += [
        "## How to use\n\n```python\nfrom clip2clinic import Clip2Clinic, "
        f"create_model_and_transforms\n\nclip = Clip2Clinic.from_pretrained({name!r})\n"
        "probabilities = clip.zero_shot(['film.png'], ['Pneumothorax', 'Edema'])\n\n"
        f"model, preprocess, tokenizer = create_model_and_transforms({name!r})\n```",
        "## Intended use and limitations\n\n" + LIMITATIONS,
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _architecture(config: ClinicCLIPConfig, variant: str | None) -> dict[str, Any]:
    image_type = (config.image.config or {}).get("model_type", "?")
    text_type = (config.text.config or {}).get("model_type", "?")
    return {
        "variant": variant or "not recorded",
        "image tower": f"{image_type} ({config.image.source or 'trained from scratch'})",
        "text tower": f"{text_type} ({config.text.source}), mode {config.text.mode!r}",
        "graph encoder": "yes" if config.graph is not None else "no",
        "embedding width": config.embed_dim,
        "temperature": "learned" if config.learn_temperature else config.temperature,
    }


def _table(values: Mapping[str, Any], header: tuple[str, str] = ("", "")) -> str:
    rows = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    rows += [f"| {key} | {value} |" for key, value in values.items()]
    return "\n".join(rows)
