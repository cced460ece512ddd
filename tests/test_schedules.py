import json
import math

import pytest
import torch

from core.errors import UserError
from core.train.schedules import SCHEDULES, ScheduleConfig, make_schedule, set_lr


def curve(cfg: ScheduleConfig) -> list[float]:
    s = make_schedule(cfg)
    return [s.lr(e, i) for e in range(cfg.epochs) for i in range(cfg.steps_per_epoch)]


def test_constant_is_flat():
    assert curve(ScheduleConfig("constant", lr=0.3, epochs=3, steps_per_epoch=4)) == [0.3] * 12


def test_step_multiplies_by_gamma_every_step_size_epochs():
    s = make_schedule(ScheduleConfig("step", lr=0.1, epochs=7, steps_per_epoch=2, step_size=3, gamma=0.1))
    assert s.lr(0, 0) == pytest.approx(0.1) and s.lr(2, 1) == pytest.approx(0.1)
    assert s.lr(3, 0) == pytest.approx(0.01)  # epoch step_size: lr * gamma
    assert s.lr(6, 1) == pytest.approx(0.001)


def test_cosine_anneals_from_lr_to_min_lr_over_the_run():
    cfg = ScheduleConfig("cosine", lr=0.1, min_lr=0.02, epochs=4, steps_per_epoch=10)  # 40 steps
    s = make_schedule(cfg)
    assert s.lr(0, 0) == pytest.approx(0.1)
    assert s.lr(2, 0) == pytest.approx((0.1 + 0.02) / 2)  # step 20 of 40
    assert s.lr(1, 0) == pytest.approx(0.02 + 0.08 * (1 + math.cos(math.pi / 4)) / 2)  # step 10 of 40
    c = curve(cfg)
    assert all(a > b for a, b in zip(c, c[1:])) and c[-1] > 0.02


def test_cyclic_restarts_every_epoch_as_in_the_study():
    s = make_schedule(ScheduleConfig("cyclic", lr=0.1, epochs=5, steps_per_epoch=8))
    assert s.lr(3, 0) == pytest.approx(0.1)  # first step of every epoch: the input lr
    assert s.lr(3, 4) == pytest.approx(0.05)  # half an epoch: cos(pi/2) = 0 -> lr/2
    assert s.lr(3, 2) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert s.lr(3, 7) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))  # near 0
    assert s.lr(4, 0) == pytest.approx(0.1)


def test_cyclic_floor_is_min_lr():
    s = make_schedule(ScheduleConfig("cyclic", lr=0.1, min_lr=0.01, epochs=2, steps_per_epoch=4))
    assert s.lr(1, 2) == pytest.approx(0.055)


def test_warmup_rises_linearly_then_hands_over():
    cfg = ScheduleConfig("cosine", lr=0.2, epochs=10, steps_per_epoch=10, warmup_epochs=2)  # 20 warm-up steps
    s = make_schedule(cfg)
    assert s.lr(0, 0) == pytest.approx(0.2 / 20)  # ~0
    assert s.lr(0, 9) == pytest.approx(0.1)  # step 10 of 20: about lr/2
    assert s.lr(2, 0) == pytest.approx(0.2)  # cosine starts after the warm-up
    assert s.lr(6, 0) == pytest.approx(0.1)  # midpoint of the 80 cosine steps
    c = make_schedule(ScheduleConfig("constant", lr=0.2, epochs=2, steps_per_epoch=4, warmup_epochs=0.5))
    assert [c.lr(0, i) for i in range(4)] == pytest.approx([0.1, 0.2, 0.2, 0.2])


PLATEAU_LOSSES = [1.0, 0.9, 0.9, 0.95, 0.8999, 0.91, 0.92, 0.93, 0.94, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2,
                  1.3, 0.4, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5, 0.51]


def torch_plateau_lrs(losses, **kw) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", threshold_mode="rel", cooldown=0, **kw)
    out = []
    for loss in losses:
        sched.step(loss)
        out.append(opt.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("patience,factor,threshold,min_lr", [(5, 0.5, 1e-4, 0.0), (1, 0.1, 0.05, 0.0005)])
def test_plateau_matches_torch(patience, factor, threshold, min_lr):
    cfg = ScheduleConfig("plateau", lr=0.1, epochs=len(PLATEAU_LOSSES), plateau_factor=factor,
                         plateau_patience=patience, plateau_threshold=threshold, min_lr=min_lr)
    s = make_schedule(cfg)
    ours = []
    for epoch, loss in enumerate(PLATEAU_LOSSES):
        s.end_epoch(epoch, loss)
        ours.append(s.lr(epoch + 1, 0))
    expected = torch_plateau_lrs(PLATEAU_LOSSES, factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)
    assert ours == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) >= 3  # the sequence does reduce, twice or more


def test_plateau_state_round_trip_mid_run_gives_the_same_future():
    cfg = ScheduleConfig("plateau", lr=0.1, epochs=30, plateau_patience=2)
    a = make_schedule(cfg)
    for epoch, loss in enumerate(PLATEAU_LOSSES[:12]):
        a.end_epoch(epoch, loss)
    b = make_schedule(cfg)
    b.load_state_dict(json.loads(json.dumps(a.state_dict(), allow_nan=False)))
    future_a, future_b = [], []
    for epoch, loss in enumerate(PLATEAU_LOSSES[12:], start=12):
        for s, out in ((a, future_a), (b, future_b)):
            s.end_epoch(epoch, loss)
            out.append(s.lr(epoch + 1, 0))
    assert future_a == future_b and len(set(future_a)) >= 2


def test_fresh_plateau_state_is_json_safe():
    d = make_schedule(ScheduleConfig("plateau")).state_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_non_plateau_ignores_val_loss():
    s = make_schedule(ScheduleConfig("constant", lr=0.1))
    for e in range(20):
        s.end_epoch(e, 5.0)
    assert s.lr(9, 0) == 0.1


@pytest.mark.parametrize("kw,words", [({"name": "linear"}, "unknown schedule"), ({"lr": 0}, "learning rate"),
                                      ({"epochs": 0}, "epochs"), ({"name": "step", "step_size": 0}, "step_size")])
def test_bad_config_is_a_user_error(kw, words):
    with pytest.raises(UserError, match=words):
        make_schedule(ScheduleConfig(**kw))


def test_every_schedule_builds_and_stays_positive():
    for name in SCHEDULES:
        assert all(v > 0 for v in curve(ScheduleConfig(name, lr=0.1, epochs=3, steps_per_epoch=5, min_lr=1e-3)))


def test_set_lr_sets_every_param_group():
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]},
                           {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 1.0}], lr=0.1)
    set_lr(opt, 0.05)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05]
