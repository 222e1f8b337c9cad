"""Checkpoints and the training state for exact resume, without pickles.

A checkpoint folder holds ``model.safetensors`` + ``config.json`` (loadable alone by
:meth:`clip2clinic.model.ClinicCLIP.from_pretrained`) and, for step checkpoints, a
``training_state/`` folder:

- ``trainer_state.json``: step, epoch, batches consumed in the epoch, the epoch's permutation
  seed, the scheduler and grad-scaler state dicts, the optimizer's param groups;
- ``optimizer.safetensors``: the optimizer's per-parameter tensors, keyed
  ``"<param index>.<name>"`` (e.g. ``"12.exp_avg"``);
- ``rng-rank<r>.safetensors`` (torch CPU and CUDA generator states) and ``rng-rank<r>.json``
  (Python's ``random`` and NumPy's global bit generator), one pair per process.

Folders are written under a temporary name and renamed into place, so a crash mid-write never
leaves a half checkpoint under a real name.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from clip2clinic.io import InputError, follow_umask, sync_tree, write_text_atomic
from clip2clinic.model.clip_model import WEIGHTS_NAME
from clip2clinic.run_dir import RunDir

if TYPE_CHECKING:
    from clip2clinic.training.config import TrainConfig

log = logging.getLogger(__name__)

STATE_DIR = "training_state"
STATE_JSON = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


def latest_resumable(run: RunDir) -> Path | None:
    """The newest step checkpoint of ``run`` with a training state whose files load and whose
    weights are finite, or None; each newer one passed over is named in a warning saying why."""
    for _, path in reversed(run.step_checkpoints()):
        if not (path / STATE_DIR / STATE_JSON).is_file():
            continue
        try:
            check_weights(path)
            json.loads((path / STATE_DIR / STATE_JSON).read_text(encoding="utf-8"))
            with safe_open(str(path / STATE_DIR / OPTIMIZER_FILE), framework="pt"):
                pass
        except (InputError, OSError, SafetensorError) as exc:
            log.warning("skipping checkpoint %s: %s", path, exc)
            continue
        return path
    return None


def check_weights(folder: Path) -> None:
    """Raise InputError unless ``folder/model.safetensors`` reads and every floating-point
    tensor in it is finite; the message names the first bad tensor."""
    path = folder / WEIGHTS_NAME
    try:
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open has no __iter__
                tensor = weights.get_tensor(name)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise InputError(f"{path}: tensor {name!r} has {bad} non-finite value(s) "
                                     "(NaN or infinity); refusing to load it")
    except (OSError, SafetensorError) as exc:
        raise InputError(f"{path}: unreadable weights ({exc})") from None


def model_card_kwargs(config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint's model card says about its training (see
    :func:`clip2clinic.model.card.model_card`): the variant, the manifest, the settings."""
    loss, optim, train, data = config.loss, config.optim, config.train, config.data
    streams = "+".join(loss.streams) or "none"
    settings = {
        "preset": config.preset or "custom",
        "loss": f"{loss.kind}; soft-label streams {streams}; hard negatives "
                f"{'yes' if loss.hard_negatives else 'no'}; graph {'yes' if loss.graph else 'no'}",
        "epochs": train.epochs,
        "batch size": data.batch_size,
        "learning rates (backbones / heads)": f"{optim.lr_backbones} / {optim.lr_heads}",
        "seed": train.seed,
        "mixed precision": train.mixed_precision,
    }
    return {"variant": config.variant, "settings": settings,
            "training_data": f"The manifest `{Path(data.manifest).name}` (prepared by "
                             f"`clip2clinic prepare`, in `{Path(data.manifest).parent.name}/`)."}


def fresh_folder(path: Path) -> Path:
    """An empty folder at ``path`` (a leftover from an interrupted write is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the complete folder ``tmp`` to ``target`` (its files given the user's umask and
    fsynced first), replacing an existing one."""
    follow_umask(tmp)
    sync_tree(tmp)
    old = target.with_name(f".old-{target.name}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


# --- optimizer -------------------------------------------------------------------------------


def flatten_optimizer_state(
    state_dict: Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state dict as (tensors keyed ``"<param>.<name>"``, JSON-able rest)."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": _jsonable(state_dict["param_groups"]), "scalars": scalars}


def unflatten_optimizer_state(
    tensors: Mapping[str, torch.Tensor], rest: Mapping[str, Any], like: Mapping[str, Any]
) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer_state`; ``like`` is the live optimizer's state dict
    (its param groups give the types, e.g. tuples, that JSON turned into lists)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *rest["scalars"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = []
    if len(rest["param_groups"]) != len(like["param_groups"]):
        raise InputError("the saved optimizer has a different number of parameter groups")
    for saved, live in zip(rest["param_groups"], like["param_groups"], strict=True):
        groups.append({k: tuple(v) if isinstance(live.get(k), tuple) else v
                       for k, v in saved.items()})  # fmt: skip
    return {"state": state, "param_groups": groups}


# --- random number generators ------------------------------------------------------------------


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's generator states: torch (CPU, CUDA) as tensors, Python/NumPy as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for device, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{device}"] = state
    version, internal, gauss = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return tensors, {"python": [version, list(internal), gauss], "numpy": numpy_state}


def restore_rng(tensors: Mapping[str, torch.Tensor], values: Mapping[str, Any]) -> None:
    """Set this process's generators to a state from :func:`capture_rng`."""
    torch.set_rng_state(tensors["torch"])
    cuda = sorted(k for k in tensors if k.startswith("cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    version, internal, gauss = values["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(values["numpy"])
    numpy_state["state"] = {**numpy_state["state"],
                            "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32)}
    np.random.set_state(numpy_state)


def save_rng(folder: Path, rank: int) -> None:
    """Write this process's generator states into ``folder``."""
    tensors, values = capture_rng()
    save_file(tensors, str(folder / f"rng-rank{rank}.safetensors"))
    (folder / f"rng-rank{rank}.json").write_text(json.dumps(values), encoding="utf-8")


def load_rng(folder: Path, rank: int) -> bool:
    """Restore this process's generators from ``folder``; False when it holds none for
    ``rank`` (a resume on more processes than the run had)."""
    path = folder / f"rng-rank{rank}.safetensors"
    if not path.is_file():
        return False
    values = json.loads((folder / f"rng-rank{rank}.json").read_text(encoding="utf-8"))
    restore_rng(load_file(str(path)), values)
    return True


# --- the whole training state ------------------------------------------------------------------


def save_training_state(folder: Path, state: Mapping[str, Any],
                        optimizer_state: Mapping[str, Any]) -> None:
    """Write ``trainer_state.json`` (``state`` plus the optimizer's JSON part) and
    ``optimizer.safetensors`` into ``folder`` (RNG files are written by each rank)."""
    tensors, rest = flatten_optimizer_state(optimizer_state)
    save_file(tensors, str(folder / OPTIMIZER_FILE))
    write_text_atomic(json.dumps({**_jsonable(state), "optimizer": rest}, indent=1),
                      folder / STATE_JSON)


def load_training_state(folder: Path, like_optimizer_state: Mapping[str, Any]
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a training state: (the JSON state, the optimizer state dict to load)."""
    try:
        state = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / OPTIMIZER_FILE))
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: unreadable training state ({exc})") from None
    optimizer = unflatten_optimizer_state(tensors, state.pop("optimizer"), like_optimizer_state)
    return state, optimizer


def _jsonable(value: Any) -> Any:
    """Tuples as lists, tensors as numbers, so ``json.dumps`` takes it; fails loudly on the
    rest."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in the JSON training state")
