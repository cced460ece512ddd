"""The training loop: a recipe in, a trained run (weights, config, history) in the store out.

Determinism, so a resumed run ends with the weights of one never interrupted: the model is
initialised from the recipe's seed; every epoch draws its shuffling, augmentation and dropout
from generators seeded by (seed, epoch) alone; learning rates are a pure function of (epoch, step)
plus the schedule's saved state; the checkpoint written after each epoch holds weights, buffers
and optimizer state. Resuming from epoch k therefore replays epochs k+1.. exactly (on the CPU;
CUDA kernels may differ in the last bits).

Under torchrun (core/distributed.py) the same loop runs as DistributedDataParallel: every rank draws the same epoch
order, takes an equal contiguous share of each global batch (the recipe's batch size is the global one, so the
learning rate and the schedule mean what they mean in one process) and augments it with its share of the batch's
random numbers; gradients are averaged across ranks by DDP. Rank 0 alone writes checkpoints, the history and the
run record; every rank resumes from the last checkpoint. BatchNorm: SyncBatchNorm on CUDA; on the CPU (gloo has no
SyncBatchNorm) each rank normalises its share and DDP broadcasts rank 0's running statistics.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from core import distributed
from core.batching import BatchSize, halving_on_oom, in_chunks
from core.data.base import Dataset, Split
from core.data.loader import iter_batches
from core.errors import Stopped, UserError
from core.metrics import compute_metrics
from core.models.trained import is_complete
from core.models.wrapper import LoadedModel, logits_of, split_outputs
from core.precision import autocast, guard_strided_one_pixel, resolve_precision
from core.progress import Progress
from core.settings import resolve_device
from core.store import Store
from core.train import runs
from core.train.augment import Augmenter
from core.train.checkpoint import load_checkpoint, save_checkpoint
from core.train.groups import layer_groups
from core.train.recipe import Recipe
from core.train.schedules import ScheduleConfig, make_schedule, set_lr

VAL_BATCH = 256


class Diverged(UserError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    run_id: str
    model_id: str
    history: list[dict]
    meta: dict
    cached: bool


def train(recipe: Recipe, *, store: Store | None = None, device: str | None = None, num_workers: int | None = None,
          progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train `recipe` to the end, resuming from its last checkpoint when one exists; a finished
    run is returned from the store without training again."""
    store = store or Store()
    run_id = recipe.run_id
    if (done := store.get(run_id)) is not None and is_complete(runs.run_folder(store, run_id)):
        return TrainResult(run_id, run_id, done.meta["history"], done.meta, cached=True)
    dev = distributed.setup(resolve_device(device))  # a plain process: the device; under torchrun: this rank's
    w = distributed.world()
    if w.size != recipe.world_size:
        raise UserError(f"the recipe asks for {recipe.world_size} process(es) and {w.size} are running: start it "
                        f"with torchrun --nproc-per-node {recipe.world_size} (or train --processes N)")
    ds, model = runs.build_for_recipe(recipe)
    trainer = _Trainer(recipe, ds, model, dev, store, num_workers, progress, should_stop)
    return trainer.run()


class _Trainer:
    def __init__(self, recipe: Recipe, ds: Dataset, model: LoadedModel, dev: str, store: Store,
                 num_workers: int | None, progress: Callable[[Progress], None] | None,
                 should_stop: Callable[[], bool] | None):
        self.r, self.ds, self.m, self.dev, self.store = recipe, ds, model, dev, store
        self.workers, self.progress, self.should_stop = num_workers, progress, should_stop
        self.folder = runs.run_folder(store, recipe.run_id)
        # in-memory images are resized to the model's geometry once, not in every epoch's batches
        self.train_split = in_geometry(ds.split("train").limited(recipe.limit), model.preprocess)
        val_name = next((s for s in ("val", "test") if s in ds.splits), "train")
        self.val_name = val_name
        self.val_split = in_geometry(ds.split(val_name).limited(recipe.val_limit), model.preprocess)
        self.steps = max(1, math.ceil(len(self.train_split) / recipe.batch_size))
        # a step budget decides the length: as many epochs as it takes, the last one cut short
        self.epochs = math.ceil(recipe.max_steps / self.steps) if recipe.max_steps else recipe.epochs
        self.total_steps = recipe.max_steps or self.epochs * self.steps
        self.world = distributed.world()
        self.module = model.module.to(dev)
        self.ddp = None
        self.backend = None  # the process group's backend under torchrun: nccl or gloo
        self.sent = {"bytes": 0}  # gradient bytes this rank handed to all-reduce (docs/scaling.md)
        if distributed.joined():  # under torchrun, one process included (a group of one: core/distributed.py)
            if dev.startswith("cuda"):
                self.module = nn.SyncBatchNorm.convert_sync_batchnorm(self.module)
                model.module = self.module
            self.ddp = nn.parallel.DistributedDataParallel(self.module, device_ids=[dev] if dev.startswith("cuda")
                                                           else None)
            self.ddp.register_comm_hook(self.sent, _counting_allreduce)
            self.backend = torch.distributed.get_backend()
            if not self.world.main:
                self.progress = None  # rank 0 reports for all
        self.sync_batchnorms = sum(isinstance(m, nn.SyncBatchNorm) for m in self.module.modules())
        self.groups = layer_groups(self.module)
        params = [p for p in self.module.parameters()]
        # transfer modes start with only the new head trainable (with_new_head froze the rest)
        self.head = {id(p) for p in params if p.requires_grad} if recipe.transfer in ("frozen", "layerwise") else set()
        self.optimizer = _optimizer(recipe, params)
        self.schedule = make_schedule(ScheduleConfig(
            name=recipe.schedule, lr=recipe.lr, epochs=self.epochs, steps_per_epoch=self.steps,
            warmup_epochs=recipe.warmup_epochs, warmup_fraction=recipe.warmup_fraction, max_steps=recipe.max_steps, step_size=recipe.step_size, gamma=recipe.gamma,
            min_lr=recipe.min_lr, plateau_factor=recipe.plateau_factor, plateau_patience=recipe.plateau_patience))
        self.augment = Augmenter(recipe.augment, ds.num_classes)
        # bf16 autocast where the hardware runs it fast (CUDA; CPUs with AMX or AVX-512 BF16), as inference does
        self.precision = resolve_precision("auto" if recipe.amp else "fp32", dev)
        if self.precision == "fp16":  # older GPUs: fp16 training would need loss scaling; train in fp32
            self.precision = "fp32"
        if self.precision == "bf16" and dev == "cpu":  # a oneDNN bf16 weight-gradient bug: core/precision.py
            guard_strided_one_pixel(self.module)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.micro = BatchSize(recipe.batch_size)  # the largest batch the device holds: halved on out-of-memory
        self.val_fit = BatchSize(VAL_BATCH)  # validation's batch size, halved on out-of-memory

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if len(self.train_split) == 0:
            raise UserError(f"{self.ds.id} has no training images")
        ckpt = self.folder / "checkpoint.safetensors"
        if ckpt.exists():
            meta = load_checkpoint(ckpt, self.module, self.optimizer)
            self.history = meta["history"]
            self.schedule.load_state_dict(meta["schedule"])
            self.start_epoch = meta["epoch"] + 1
            # a resumed run starts at the size that fitted
            self.micro = BatchSize(meta.get("micro_batch", self.micro.size), meta.get("oom_halvings", 0))
        main = self.world.main
        if main:
            runs.write_config(self.folder, self.r, self.ds, self.m)
        t_start = time.perf_counter()
        for epoch in range(self.start_epoch, self.epochs):
            row = self._epoch(epoch, t_start)
            self.history.append(row)
            if main:
                save_checkpoint(ckpt, self.module, self.optimizer,
                                {"epoch": epoch, "history": self.history, "schedule": self.schedule.state_dict(),
                                 "run_id": self.r.run_id, "micro_batch": self.micro.size,
                                 "oom_halvings": self.micro.halvings, "world_size": self.world.size})
            distributed.barrier()  # no rank runs ahead of the checkpoint it would resume from
            self._report(epoch=epoch + 1, step=self.steps, row=row, t_start=t_start)
        meta = runs.finish(self.store, self.folder, self.r, self.ds, self.m, self.history, self.dev,
                           val_split=self.val_name, precision=self.precision,
                           val_images=len(self.val_split)) if main else None
        meta = distributed.broadcast(meta)
        return TrainResult(self.r.run_id, self.r.run_id, self.history, meta, cached=False)

    def _epoch(self, epoch: int, t_start: float) -> dict:
        r = self.r
        self._set_trainable(epoch)
        gen = epoch_generator(r.seed, epoch)
        torch.manual_seed(r.seed * 1_000_003 + epoch)  # dropout and anything else drawing from the global generator
        order = torch.randperm(len(self.train_split), generator=gen).numpy()
        w = self.world
        per = r.batch_size // w.size  # this rank's share of each global batch
        data = self.train_split.take(order if w.size == 1 else distributed.step_shard(order, r.batch_size, w.rank,
                                                                                         w.size))
        pre = self.m.preprocess
        mean = torch.tensor(pre.mean, device=self.dev).view(1, -1, 1, 1)
        std = torch.tensor(pre.std, device=self.dev).view(1, -1, 1, 1)
        self.module.train()
        t0 = time.perf_counter()
        loss_sum = correct = seen = 0.0
        norms = {name: 0.0 for name, _ in self.groups}
        sent_before = self.sent["bytes"]
        first_lr = lr = self.schedule.lr(epoch, 0)
        step = -1
        last_step = min(self.steps, self.total_steps - epoch * self.steps)  # the step budget cuts the last epoch
        for step, (batch, _pos, _bad) in enumerate(iter_batches(data, pre, per, self.dev, self.workers)):
            if step >= last_step:
                break
            if self.should_stop is not None and self.should_stop():
                raise Stopped(f"stopped during epoch {epoch + 1}")
            if len(batch) == 0:
                continue
            y = torch.from_numpy(data.labels[_pos]).to(self.dev)
            lr = self.schedule.lr(epoch, step)
            set_lr(self.optimizer, lr)
            x = batch.to(self.dev, non_blocking=True).float() / 255.0
            x, target = self.augment(x, y, gen, share=(w.rank, w.size))
            x = (x - mean) / std
            logits, loss = self._forward_backward(x, target, f"epoch {epoch + 1}, step {step + 1} "
                                                             f"(learning rate {lr:.3g})")
            for (name, ps), v in zip(self.groups, _group_norms(self.groups)):
                norms[name] += v
            if r.clip_norm is not None:
                nn.utils.clip_grad_norm_(self.module.parameters(), r.clip_norm)
            self.optimizer.step()
            n = len(y)
            loss_sum += float(loss.detach()) * n
            correct += float((logits.argmax(1) == y).sum())
            seen += n
            if step % 10 == 0:
                self._report(epoch=epoch, step=step + 1, row=None, t_start=t_start)
        steps_done = max(1, min(step + 1, last_step))  # a step budget breaks at the first step it does not take
        if self.ddp is not None:  # the epoch's figures over every rank's share
            # (gradient norms need no sum: after DDP's all-reduce every rank holds the same gradients)
            loss_sum, correct, seen = distributed.all_sum([loss_sum, correct, seen])
            # the global order the steps covered (one process: the same images when no file was skipped)
            covered = self.train_split.index[order[:min(len(order), steps_done * r.batch_size)]]
        else:
            covered = data.index[:int(seen)]
        seconds = time.perf_counter() - t0
        # which images, in which order: equal digests mean equal training data (the arena compares them)
        digest = hashlib.sha256(np.ascontiguousarray(covered, dtype=np.int64).tobytes()).hexdigest()
        val = self._validate()
        self.schedule.end_epoch(epoch, val["val_loss"])
        return {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1),
                **val, "lr": first_lr, "lr_last": lr, "seconds": seconds, "images_per_second": seen / seconds if seconds > 0 else None,
                "grad_norm": {k: v / steps_done for k, v in norms.items()},
                # the batch size the device held (micro-batches, gradients accumulated) after out-of-memory
                "micro_batch": min(self.micro.size, r.batch_size), "oom_halvings": self.micro.halvings,
                "val_batch": self.val_fit.size, "val_oom_halvings": self.val_fit.halvings, "steps": steps_done,
                "images": int(seen), "data_digest": digest[:16], "precision": self.precision,
                "world_size": w.size, "backend": self.backend,
                "sync_batchnorm": self.sync_batchnorms,
                "allreduce_bytes_per_step": (self.sent["bytes"] - sent_before) / steps_done,
                "trainable": sum(p.numel() for p in self.module.parameters() if p.requires_grad)}

    def _forward_backward(self, x: torch.Tensor, target: torch.Tensor, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one step: (logits, loss), gradients in the parameters.

        The whole batch at once, until the device runs out of memory: then the step is retried in
        micro-batches of half the size (halved again as needed, down to 1), each micro-batch's loss
        weighted by its share of the batch, so the gradients and the optimizer step are the batch's
        (up to float rounding; BatchNorm sees the smaller batches). The micro-batch size stays for the
        rest of the run and every history row records it (`micro_batch`, `oom_halvings`)."""
        buffers = [b.detach().clone() for b in self.module.buffers()]  # small: BatchNorm statistics
        net = self.ddp or self.module

        def attempt(micro: int) -> tuple[torch.Tensor, torch.Tensor]:
            self.optimizer.zero_grad(set_to_none=True)
            if micro >= len(x):
                with autocast(self.precision, self.dev):
                    logits, loss = self._loss(net(x), target)
                self._check_finite(loss, where)
                loss.backward()
                return logits, loss
            parts, total = [], 0.0
            for s in range(0, len(x), micro):
                xs, ts = x[s:s + micro], target[s:s + micro]
                last = s + micro >= len(x)  # DDP averages the gradients once, after the last micro-batch
                with self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext():
                    with autocast(self.precision, self.dev):
                        logits, loss = self._loss(net(xs), ts)
                    self._check_finite(loss, where)
                    (loss * (len(xs) / len(x))).backward()
                parts.append(logits.detach())
                total += float(loss.detach()) * len(xs)
            return torch.cat(parts), torch.tensor(total / len(x))

        def reset() -> None:
            with torch.no_grad():  # BatchNorm statistics as before the failed attempt
                for b, saved in zip(self.module.buffers(), buffers):
                    b.copy_(saved)
            self.optimizer.zero_grad(set_to_none=True)

        return halving_on_oom(self.micro, len(x), attempt, reset=reset,
                              too_big=f"out of memory on {self.dev} even with a batch of 1 image at {where}; "
                                      "free the device or train on the CPU")

    @staticmethod
    def _check_finite(loss: torch.Tensor, where: str) -> None:
        if not torch.isfinite(loss):
            raise Diverged(f"the loss became {float(loss.detach())} at {where}; "
                           "lower the learning rate or clip gradients")

    def _loss(self, out, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy on the logits, plus `aux_weight` x each auxiliary head's (GoogLeNet in training mode)."""
        logits, aux = split_outputs(out)
        ce = lambda z: F.cross_entropy(z.float(), target, label_smoothing=self.r.label_smoothing)
        loss = ce(logits)
        for a in aux:
            loss = loss + self.r.aux_weight * ce(a)
        return logits, loss

    def _validate(self) -> dict:
        """Validation in fp32 on the val split; under torchrun each rank scores its whole batches (no image twice),
        with rank 0's BatchNorm statistics, and the figures are computed from every rank's predictions."""
        self.module.eval()
        pre = self.m.preprocess
        loss_sum, tops, ys = 0.0, [], []
        k = min(5, self.ds.num_classes)
        w = self.world
        split = self.val_split
        if self.ddp is not None:
            distributed.broadcast_buffers(self.module)
            split = split.take(distributed.batch_shard(len(split), VAL_BATCH, w.rank, w.size))
        with torch.inference_mode():
            for batch, pos, _bad in iter_batches(split, pre, VAL_BATCH, self.dev, self.workers):
                if len(batch) == 0:
                    continue
                y = torch.from_numpy(split.labels[pos]).to(self.dev)
                # validation in fp32 whatever the training precision: the number `evaluate --precision fp32` gives
                logits, = in_chunks(lambda xb: (logits_of(self.module(xb)).float(),),
                                    pre.normalize(batch.to(self.dev)), self.val_fit, self.dev)
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                tops.append(logits.topk(k, dim=1).indices.cpu().numpy())
                ys.append(y.cpu().numpy())
        if self.ddp is not None:  # every rank's predictions (order does not change the figures)
            parts = distributed.all_gather((loss_sum, tops, ys))
            loss_sum = sum(p[0] for p in parts)
            tops, ys = [t for p in parts for t in p[1]], [y for p in parts for y in p[2]]
        if not ys:
            return {"val_loss": None, "val_top1": None, "val_top5": None, "val_f1_macro": None,
                    "val_cohen_kappa": None}
        y = np.concatenate(ys)
        m = compute_metrics(y, np.concatenate(tops), self.ds.num_classes)
        return {"val_loss": loss_sum / len(y), "val_top1": m.top1, "val_top5": m.top5, "val_f1_macro": m.f1_macro,
                "val_cohen_kappa": m.cohen_kappa}

    def _set_trainable(self, epoch: int) -> None:
        """Transfer modes: `frozen` trains the new head only; `layerwise` also unfreezes backbone layer
        groups from the top, one more every `unfreeze_every` epochs (a function of the epoch alone, so a
        resumed run unfreezes the same groups)."""
        if self.r.transfer != "layerwise":
            return
        backbone = [ps for _, ps in self.groups if not all(id(p) in self.head for p in ps)]
        opened = min(len(backbone), epoch // max(1, self.r.unfreeze_every))
        for i, ps in enumerate(backbone):
            for p in ps:
                if id(p) not in self.head:
                    p.requires_grad_(i >= len(backbone) - opened)

    def _report(self, *, epoch: int, step: int, row: dict | None, t_start: float) -> None:
        if self.progress is None:
            return
        done = (epoch - self.start_epoch) * self.steps + (step if row is None else 0)
        total = self.total_steps - self.start_epoch * self.steps
        elapsed = time.perf_counter() - t_start
        eta = elapsed / done * (total - done) if done else None
        self.progress(Progress(epoch=epoch, epochs=self.epochs, step=step, steps=self.steps, eta_seconds=eta,
                               row=row))


def _counting_allreduce(sent, bucket):
    """DDP's own all-reduce (default_hooks.allreduce_hook, the same numbers), counting the bytes of each gradient
    bucket it reduces. (No annotations: DDP checks them, and this module's are strings.)"""
    sent["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
    return default_hooks.allreduce_hook(None, bucket)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's shuffling and augmentation: a function of (seed, epoch) alone, so every
    model trained with the same seed sees the same images in the same order, and a resumed run replays it."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def in_geometry(split: Split, pre) -> Split:
    """An in-memory split with its images already in the model's geometry (uint8 (N, H, W, C), so the
    loader passes them through); files and images already in shape are returned as they are."""
    if split.images is None or len(split) == 0:
        return split
    shape = split.images.shape
    if pre.passthrough(shape[1], shape[2], shape[3] if len(shape) == 4 else 1):
        return split
    images = pre.geometry_batch(split.images).permute(0, 2, 3, 1).contiguous().numpy()
    return Split(labels=split.labels, images=images, index=split.index)


def _group_norms(groups: list[tuple[str, list[nn.Parameter]]]) -> list[float]:
    """L2 norm of the gradient of each layer group (0 for a frozen group)."""
    out = []
    for _, ps in groups:
        grads = [p.grad for p in ps if p.grad is not None]
        if not grads:
            out.append(0.0)
            continue
        # one vector_norm per tensor, summed in fp64 (squares of huge but finite gradients would overflow fp32).
        # Not torch._foreach_norm: on an AVX-512 BF16 CPU (torch 2.14) it returned 1e27-1e32 now and then for
        # ResNet-18's 1x1 downsample gradients after a bf16-autocast backward whose own norms were below 3.
        norm = float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(g, dtype=torch.float64) for g in grads])))
        out.append(norm)
    return out


def _optimizer(r: Recipe, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if r.optimizer == "sgd":
        return torch.optim.SGD(params, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov and r.momentum > 0,
                               weight_decay=r.weight_decay)
    if r.optimizer == "adam":
        return torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay)
    return torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
