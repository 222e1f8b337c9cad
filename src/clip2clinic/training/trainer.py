"""The training loop: Accelerate, AdamW with two learning rates, cosine schedule with warm-up,
checkpoints with exact resume, and a hard stop on a non-finite loss.

The run directory (``config.out``) is laid out by :class:`clip2clinic.run_dir.RunDir`: the
resolved config with its provenance, logs (``metrics.csv`` with the columns of
:func:`log_columns`, and the trackers of ``train.log_with``), step checkpoints with their
training state, and the final checkpoint.

Data parallelism: ``data.batch_size`` is the global batch. Each process takes an equal
contiguous share (see :class:`clip2clinic.training.data.EpochBatchSampler`) and the loss
all-gathers the embeddings with their gradients, so soft labels and logits are global and the
run sees the same batches and loss on any number of processes.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from clip2clinic.configs import named_config
from clip2clinic.data.graph_cache import GraphCache
from clip2clinic.data.images import ImageLoadError, load_image
from clip2clinic.data.manifest import split_sizes
from clip2clinic.data.transforms import Normalization
from clip2clinic.io import InputError
from clip2clinic.model import ClinicCLIP
from clip2clinic.provenance import device_name, provenance
from clip2clinic.run_dir import RunDir
from clip2clinic.training import checkpoint as ckpt
from clip2clinic.training.config import (
    RESUMABLE_CHANGES,
    TrainConfig,
    changed_keys,
    flat_config,
    load_config,
)
from clip2clinic.training.data import (
    Collate,
    EpochBatchSampler,
    ManifestDataset,
    TextCache,
    TrainBatch,
    epoch_seed,
    load_graphs,
    open_text_cache,
)
from clip2clinic.training.objective import Objective
from clip2clinic.training.run_log import VAL_LOSS, RunLog
from clip2clinic.training.shard_loader import ShardLoader, ShardStream, is_sharded

log = logging.getLogger(__name__)

#: Default share of a split's rows that may be dropped in an epoch for unreadable cached
#: images before training stops with an error.
MAX_UNREADABLE = 0.01


class TrainingDiverged(RuntimeError):
    """The loss (or the gradient) became NaN or infinite; the message says where."""


@dataclass
class TrainResult:
    """How a :func:`train` call ended: the global ``step`` reached, the newest checkpoint, and
    whether training ``finished`` (False when stopped by ``train.stop_after_steps``)."""

    step: int
    checkpoint: Path
    finished: bool


def log_columns(config: TrainConfig) -> list[str]:
    """The metrics.csv columns of ``config``'s run after step and epoch: the objective's loss
    columns (:attr:`Objective.columns`), ``lr`` (towers), ``lr_heads``, ``images_per_s`` and
    ``val_loss`` (at epoch ends)."""
    return [*Objective(config.loss).columns, "lr", "lr_heads", "images_per_s", VAL_LOSS]


# --- set-up ------------------------------------------------------------------------------------


def build_model(config: TrainConfig, node_dim: int | None) -> ClinicCLIP:
    """A fresh model (pretrained towers from their sources) for ``config``."""
    model_config = copy.deepcopy(config.model)
    if model_config.graph is not None and model_config.graph.node_dim is None:
        model_config.graph.node_dim = node_dim
    if config.data.image_size is not None:  # the checkpoint records what it was trained on
        model_config.image.image_size = config.data.image_size
    return ClinicCLIP(model_config, pretrained=True)


def check_text_model(config: TrainConfig, text_cache: TextCache) -> None:
    """Refuse a text cache made with another text model than the configured tower's."""
    source = config.model.text.source
    made_with = text_cache.metadata.get("text_model")
    if source is not None and made_with is not None and made_with != source:
        raise InputError(
            f"{text_cache.path}: made with text model {made_with!r}, but the text tower is "
            f"{source!r}; run prepare with --text-model {source}"
        )


def check_caches(model: ClinicCLIP, text_cache: TextCache,
                 node_table: torch.Tensor | None) -> None:
    """Refuse caches whose shapes do not fit the built model, naming the cache."""
    problem = model.text.check_cache(text_cache.shape)
    if problem is not None:
        raise InputError(f"{text_cache.path}: {problem}")
    if node_table is not None and node_table.shape[1] != model.graph.node_dim:
        raise InputError(f"graph node features have width {node_table.shape[1]}, the graph "
                         f"encoder takes {model.graph.node_dim}")


def parameter_groups(model: ClinicCLIP, config: TrainConfig) -> list[dict]:
    """AdamW groups: backbones and heads at their learning rates, each split into
    weight-decayed matrices and undecayed biases/norms/vectors."""
    optim, groups = config.optim, []
    for name, params in model.parameter_groups().items():
        lr = optim.lr_backbones if name == "backbones" else optim.lr_heads
        decayed = [p for p in params if p.ndim >= 2]
        plain = [p for p in params if p.ndim < 2]
        groups.append({"name": name, "params": decayed, "lr": lr,
                       "weight_decay": optim.weight_decay})  # fmt: skip
        groups.append({"name": f"{name}_no_decay", "params": plain, "lr": lr, "weight_decay": 0.0})
    return [group for group in groups if group["params"]]


def _multi_cpu() -> bool:
    """Several processes and no GPU: Accelerate needs ``cpu=True`` to run them as gloo
    data parallelism (it would otherwise treat each as a lone process)."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def _image_size(model: ClinicCLIP, config: TrainConfig) -> int:
    return config.data.image_size or model.config.image.image_size


def warn_image_size(dataset: ManifestDataset, size: int) -> None:
    """One line when the cached images (their first one: prepare made them all alike) have
    another shorter side than the ``size`` trained at: a warning when smaller (every image is
    upsampled), an info line when larger (resized at each step, as a 256 px cache cropped to
    224 px is meant to be)."""
    try:
        cached = min(load_image(dataset.corpus.image_path(dataset.image_paths[0])).shape)
    except ImageLoadError:
        return  # the loader warns about unreadable images itself
    if cached == size:
        return
    upsampled = cached < size
    log.log(logging.WARNING if upsampled else logging.INFO,
            "the cached images have a shorter side of %d px and the image size trained at "
            "(data.image_size, else the image tower's) is %d px: every image is %s at each "
            "step (prepare --image-size %d caches them at that size)",
            cached, size, "upsampled" if upsampled else "resized", size)


# --- the run directory -------------------------------------------------------------------------


def resolve_run(config: TrainConfig) -> Path | None:
    """The checkpoint to resume ``config``'s run from, or None for a fresh run.

    A run dir with a resumable checkpoint continues when ``config`` matches its saved
    ``config.yaml`` (only :data:`RESUMABLE_CHANGES` may differ); a finished run is refused.
    """
    if not config.out:
        raise InputError("out: no run directory given (--out RUN or out: in the config)")
    run = RunDir(config.out)
    if run.finished:
        raise InputError(f"{run.path}: this run already finished ({run.final}); "
                         "choose a new --out")
    resume_from = ckpt.latest_resumable(run)
    if resume_from is None:
        return None
    _refuse_changed_config(run, config)
    return resume_from


def plan(config: TrainConfig) -> str:
    """What :func:`train` would do with ``config``, in one line (``train --dry-run``): the
    rows, batches and steps, and a fresh run or the checkpoint it resumes; InputError when it
    would refuse (no manifest, a finished run, a changed config)."""
    resume_from = resolve_run(config)
    sizes = split_sizes(config.data.manifest)
    rows = sizes[config.data.split]
    batches = rows // config.data.batch_size
    if batches == 0:
        raise InputError(f"{config.data.manifest}: split {config.data.split!r} has {rows} rows, "
                         f"fewer than one batch of {config.data.batch_size}")
    start = (f"resumes from {resume_from}" if resume_from is not None
             else f"starts a fresh run in {config.out}")
    return (f"{rows} {config.data.split} rows, {sizes['validate']} validate rows; "
            f"{batches} batches of {config.data.batch_size} per epoch x {config.train.epochs} "
            f"epochs = {batches * config.train.epochs} steps; {start}")


def _refuse_changed_config(run: RunDir, config: TrainConfig) -> None:
    """Raise InputError when ``run``'s saved config differs from ``config`` in more than
    :data:`RESUMABLE_CHANGES`, naming the keys."""
    saved = load_run_config(run)
    changed = [key for key in changed_keys(saved.to_dict(), config.to_dict())
               if key not in RESUMABLE_CHANGES]
    if changed:
        raise InputError(f"{run.path}: holds a run with a different config ({', '.join(changed)} "
                         "differ); resume it unchanged or choose a new --out")


def load_run_config(run: str | Path | RunDir) -> TrainConfig:
    """The resolved config saved in run directory ``run``."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    config = TrainConfig.from_dict(run.read_config())
    config.out = str(run.path)
    return config


# --- the trainer -------------------------------------------------------------------------------


class Trainer:
    """One training run of ``config`` into ``config.out``; :meth:`fit` trains.

    ``on_step(step)`` is called after every optimizer step (tests use it to interrupt a run).
    A row whose cached image cannot be read is dropped from its batch (never replaced by
    another row's image); each epoch with drops ends with a summary line, and more than
    ``max_unreadable`` (a share of the split) in one epoch stops training with an error.
    """

    def __init__(self, config: TrainConfig, on_step: Callable[[int], None] | None = None,
                 max_unreadable: float = MAX_UNREADABLE):
        resume_from = resolve_run(config)
        self.config, self.on_step = config, on_step
        self.objective = Objective(config.loss)
        self.max_unreadable = max_unreadable
        self.run = RunDir(config.out)
        self.accelerator = Accelerator(mixed_precision=config.train.mixed_precision,
                                       cpu=_multi_cpu())
        set_seed(config.train.seed, device_specific=True)
        self._build(resume_from)

    # set-up

    def _build(self, resume_from: Path | None) -> None:
        config, accelerator = self.config, self.accelerator
        text_cache = open_text_cache(config.data.manifest, config.model.text.mode)
        check_text_model(config, text_cache)
        graphs = load_graphs(config.data.manifest) if config.loss.graph else None
        node_dim = None if graphs is None else int(graphs.node_table.shape[1])
        if resume_from is None:
            model = build_model(config, node_dim)
        else:
            model = ClinicCLIP.from_pretrained(resume_from)
        check_caches(model, text_cache, None if graphs is None else graphs.node_table)
        if config.train.gradient_checkpointing:
            log.info("gradient checkpointing in %s", model.gradient_checkpointing_enable())

        self.dataset = ManifestDataset(
            config.data.manifest, text_cache, _image_size(model, config),
            Normalization(model.config.image.mean, model.config.image.std),
            augment=config.data.augment, split=config.data.split, seed=config.train.seed,
            hard_negatives=config.loss.hard_negatives, graphs=config.loss.graph,
            uncertain=config.data.uncertain, clinical_encoding=config.loss.clinical_encoding,
        )
        if accelerator.is_main_process:
            warn_image_size(self.dataset, _image_size(model, config))
        if is_sharded(self.dataset):  # prepare --shards: read shard by shard
            stream = ShardStream(self.dataset, config.train.seed, accelerator.process_index,
                                 accelerator.num_processes)  # fmt: skip
            self.loader = ShardLoader(stream, config.data.batch_size, Collate(graphs),
                                      config.data.num_workers,
                                      torch.Generator().manual_seed(config.train.seed))
            self.sampler = self.loader  # the same batches_per_epoch / set_epoch interface
        else:
            self.sampler = EpochBatchSampler(len(self.dataset), config.data.batch_size,
                                             config.train.seed, accelerator.process_index,
                                             accelerator.num_processes)  # fmt: skip
            self.loader = self._loader(self.dataset, self.sampler, graphs)
        self.validation = self._validation_loader(model, text_cache, graphs)
        self.total_steps = config.train.epochs * self.sampler.batches_per_epoch
        optimizer = torch.optim.AdamW(parameter_groups(model, config),
                                      betas=tuple(config.optim.betas), eps=config.optim.eps)
        self.scheduler = get_cosine_schedule_with_warmup(
            optimizer, round(config.optim.warmup_ratio * self.total_steps), self.total_steps
        )
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        if resume_from is not None:
            self._restore(resume_from)
        self.last_checkpoint = resume_from

    def _loader(self, dataset: ManifestDataset, sampler: EpochBatchSampler,
                graphs: GraphCache | None) -> DataLoader:
        return DataLoader(
            dataset, batch_sampler=sampler, collate_fn=Collate(graphs),
            num_workers=self.config.data.num_workers,
            pin_memory=self.accelerator.device.type == "cuda",
            # worker seeds come from this generator, never from the global one, so building
            # a loader iterator leaves the training RNG (dropout) untouched: exact resume
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )

    def _validation_loader(self, model: ClinicCLIP, text_cache: TextCache,
                           graphs: GraphCache | None,
                           ) -> DataLoader | None:
        """Batches of the validation split (fixed order, no augmentation, the training batch
        size or the whole split when smaller; the incomplete tail left out), or None when
        ``train.validation_loss`` is off or the manifest has no validation rows."""
        config, world = self.config, self.accelerator.num_processes
        rows = split_sizes(config.data.manifest)["validate"]
        if not config.train.validation_loss or rows < max(world, 2):
            if config.train.validation_loss:
                log.info("%s: no validation rows; no validation loss is logged",
                         config.data.manifest)
            return None
        dataset = ManifestDataset(
            config.data.manifest, text_cache, _image_size(model, config),
            Normalization(model.config.image.mean, model.config.image.std), augment=None,
            split="validate", seed=config.train.seed, hard_negatives=config.loss.hard_negatives,
            graphs=config.loss.graph, uncertain=config.data.uncertain,
            clinical_encoding=config.loss.clinical_encoding,
        )
        size = min(config.data.batch_size, rows - rows % world)
        sampler = EpochBatchSampler(rows, size, config.train.seed, self.accelerator.process_index,
                                    world)
        return self._loader(dataset, sampler, graphs)

    def _restore(self, folder: Path) -> None:
        state_dir = folder / ckpt.STATE_DIR
        state, optimizer_state = ckpt.load_training_state(state_dir, self.optimizer.state_dict())
        if state["batches_per_epoch"] != self.sampler.batches_per_epoch:
            raise InputError(f"{folder}: the run had {state['batches_per_epoch']} batches per "
                             f"epoch, the data now gives {self.sampler.batches_per_epoch}")
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(state["scheduler"])
        if self.accelerator.scaler is not None and state.get("scaler"):
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        if not ckpt.load_rng(state_dir, self.accelerator.process_index):
            log.warning("%s: no RNG state for process %d; the resumed run is not bit-exact",
                        folder, self.accelerator.process_index)
        log.info("resuming from %s (step %d, epoch %d, batch %d)", folder, self.step,
                 self.epoch, self.batch_in_epoch)

    # the loop

    @property
    def unwrapped(self) -> ClinicCLIP:
        return self.accelerator.unwrap_model(self.model)

    def fit(self) -> TrainResult:
        """Train to the end (or to ``train.stop_after_steps``); returns how it ended."""
        config, accelerator = self.config, self.accelerator
        main = accelerator.is_main_process
        if main:
            self.run.path.mkdir(parents=True, exist_ok=True)
            config.save(self.run.config_file, self.provenance())
        run_log = RunLog(self.run.logs, log_columns(config), self.step,
                         config.train.log_with, self.run.path.name,
                         flat_config(config.to_dict())) if main else None  # fmt: skip
        # disable=None: a bar only on a terminal, no carriage returns in a batch job's log
        progress = tqdm(total=self.total_steps, initial=self.step, unit="step",
                        disable=None if main and config.train.progress else True,
                        dynamic_ncols=True)
        try:
            stopped = self._epochs(run_log, progress)
        finally:
            progress.close()
            if run_log is not None:
                run_log.close()
        if stopped:
            return TrainResult(self.step, self.last_checkpoint, finished=False)
        final = self._save(self.run.final, with_state=False)
        return TrainResult(self.step, final, finished=True)

    def provenance(self) -> dict:
        """Where this run comes from: versions, git commit, the manifest's hash, seed, device."""
        return provenance({"train": self.config.data.manifest}, seed=self.config.train.seed,
                          device=device_name(self.accelerator.device),
                          processes=self.accelerator.num_processes)

    def _epochs(self, run_log: RunLog | None, progress) -> bool:
        """Run the remaining epochs; True when stopped early by ``stop_after_steps``."""
        config, accelerator = self.config, self.accelerator
        stop_after = config.train.stop_after_steps
        self.model.train()
        images, started = 0, time.perf_counter()
        while self.epoch < config.train.epochs:
            self.sampler.set_epoch(self.epoch, self.batch_in_epoch)
            self.dataset.set_epoch(self.epoch)
            dropped = 0
            for batch in self.loader:
                dropped = self._count_dropped(dropped, batch.dropped)
                lrs = {group["name"]: group["lr"] for group in self.optimizer.param_groups}
                logged = ((self.step + 1) % config.train.log_every == 0
                          or self.batch_in_epoch + 1 == self.sampler.batches_per_epoch)
                loss, terms = self._train_step(batch.to(accelerator.device, non_blocking=True),
                                               with_terms=logged)
                images += batch.size * accelerator.num_processes
                epoch_of_step = self.epoch
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch == self.sampler.batches_per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    if dropped:
                        log.warning("epoch %d: %d of %d row(s) dropped for unreadable cached "
                                    "images (see the warnings above)", epoch_of_step + 1,
                                    dropped, len(self.dataset))
                rate = images / max(time.perf_counter() - started, 1e-9)
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.1f}")
                if logged:
                    values = {"loss": loss, **terms, "lr": lrs.get("backbones", math.nan),
                              "lr_heads": lrs.get("heads", math.nan), "images_per_s": rate}
                    if self.batch_in_epoch == 0 and self.validation is not None:
                        values[VAL_LOSS] = self.validation_loss()
                    if run_log is not None:
                        run_log.write(self.step, epoch_of_step, values)
                    images, started = 0, time.perf_counter()
                stop = stop_after is not None and self.step >= stop_after
                every = config.train.checkpoint_every
                if stop or self.batch_in_epoch == 0 or (every and self.step % every == 0):
                    self._save(self.run.step(self.step), with_state=True)
                    images, started = 0, time.perf_counter()
                if self.on_step is not None:
                    self.on_step(self.step)
                if stop:
                    return True
        return False

    def _count_dropped(self, dropped: int, more: int) -> int:
        """``dropped + more``; raises InputError when that exceeds ``max_unreadable``."""
        dropped += more
        if dropped > self.max_unreadable * len(self.dataset):
            raise InputError(
                f"epoch {self.epoch + 1}: {dropped} of {len(self.dataset)} rows have unreadable "
                f"cached images, more than {self.max_unreadable:.1%}; re-run `clip2clinic "
                "prepare` to rebuild the image cache"
            )
        return dropped

    def validation_loss(self) -> float:
        """The mean loss over the validation batches (evaluation mode, no gradients)."""
        accelerator = self.accelerator
        self.model.eval()
        total, batches = 0.0, 0
        with torch.no_grad():
            for batch in self.validation:
                batch = batch.to(accelerator.device, non_blocking=True)
                with accelerator.autocast():
                    embeddings = self.model(pixels=batch.pixels, text=batch.text,
                                            attention_mask=batch.text_mask, graphs=batch.graphs)
                    loss = self.objective(embeddings, batch, self.unwrapped.temperature)
                total, batches = total + loss.item(), batches + 1
        self.model.train()
        return total / max(batches, 1)

    def _train_step(self, batch: TrainBatch, with_terms: bool = False,
                    ) -> tuple[float, dict[str, float]]:
        """Forward, loss, backward, clip, AdamW and schedule step; returns the loss and, when
        ``with_terms``, its terms (:meth:`Objective.terms`)."""
        config, accelerator = self.config, self.accelerator
        temperature = self.unwrapped.temperature
        with accelerator.autocast():
            embeddings = self.model(pixels=batch.pixels, text=batch.text,
                                    attention_mask=batch.text_mask, graphs=batch.graphs)
            loss = self.objective(embeddings, batch, temperature)
        value = loss.item()
        if not math.isfinite(value):
            detail = self.objective.describe_non_finite(embeddings, batch, temperature)
            self._diverged(f"the {config.loss.kind} loss is {value} ({detail})")
        terms = self.objective.terms(embeddings, batch, temperature) if with_terms else {}
        accelerator.backward(loss)
        if config.optim.max_grad_norm is not None:
            norm = accelerator.clip_grad_norm_(self.model.parameters(), config.optim.max_grad_norm)
            if accelerator.scaler is None and not math.isfinite(float(norm)):
                self._diverged(f"the gradient norm is {float(norm)} (loss {value})")
        self.optimizer.step()
        self.unwrapped.clamp_temperature()
        self.optimizer.zero_grad(set_to_none=True)
        if not accelerator.optimizer_step_was_skipped:
            self.scheduler.step()
        return value, terms

    def _diverged(self, what: str) -> None:
        kept = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                else "no checkpoint was written yet")
        raise TrainingDiverged(
            f"step {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch_in_epoch + 1}): "
            f"{what}. Training stopped before the optimizer step; {kept}. Try a lower "
            "learning rate, train.mixed_precision: bf16 instead of fp16, or optim.max_grad_norm."
        )

    # checkpoints

    def _save(self, target: Path, with_state: bool) -> Path:
        """Write a checkpoint folder atomically (all processes call this)."""
        accelerator, model = self.accelerator, self.unwrapped
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            self._diverged("the weights are not finite")
        tmp = target.with_name(f".tmp-{target.name}")
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            ckpt.fresh_folder(tmp)
            if with_state:
                (tmp / ckpt.STATE_DIR).mkdir()
        accelerator.wait_for_everyone()
        if with_state:
            ckpt.save_rng(tmp / ckpt.STATE_DIR, accelerator.process_index)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            model.save_pretrained(tmp, model_card_kwargs=ckpt.model_card_kwargs(self.config))
            if with_state:
                ckpt.save_training_state(tmp / ckpt.STATE_DIR, self._state(),
                                         self.optimizer.state_dict())
            ckpt.swap_into_place(tmp, target)
            if with_state:
                self.run.prune(self.config.train.keep_last)
        accelerator.wait_for_everyone()
        self.last_checkpoint = target
        return target

    def _state(self) -> dict:
        scaler = self.accelerator.scaler
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "batches_per_epoch": self.sampler.batches_per_epoch,
            "seed": self.config.train.seed,
            "permutation_seed": epoch_seed(self.config.train.seed, self.epoch),
            "world_size": self.accelerator.num_processes,
            "scheduler": self.scheduler.state_dict(),
            "scaler": None if scaler is None else scaler.state_dict(),
        }


def train(config: TrainConfig, on_step: Callable[[int], None] | None = None,
          max_unreadable: float = MAX_UNREADABLE) -> TrainResult:
    """Train ``config`` into ``config.out``, resuming from its newest checkpoint if any;
    ``max_unreadable``: see :class:`Trainer`."""
    return Trainer(config, on_step, max_unreadable).fit()


def train_variant(manifest: str | os.PathLike, run_dir: str | os.PathLike, variant: str,
                  seed: int = 0, overrides: Sequence[str] = (), progress: bool = True,
                  preset: str = "embedded") -> Path:
    """Train ``variant`` with ``preset`` into ``run_dir`` (resuming an interrupted run,
    skipping a finished one of the same config; a finished run of another config is refused);
    returns the final checkpoint folder."""
    config = load_config(
        [named_config("preset", preset), named_config("variant", variant)],
        [f"data.manifest={manifest}", f"out={run_dir}", f"train.seed={seed}",
         f"train.progress={str(progress).lower()}", *overrides],
    )
    run = RunDir(run_dir)
    if run.finished:
        _refuse_changed_config(run, config)
        return run.final
    result = train(config)
    if not result.finished:
        raise InputError(f"{run_dir}: training stopped at step {result.step} before the end")
    return result.checkpoint
