"""DreamerV3 agent: shapes, one update per observation / action kind, learning signal, free bits, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_batch
from wam.agents.dreamerv3 import PRESETS, DreamerV3Agent, DreamerV3Config
from wam.agents.dreamerv3.networks import RSSM
from wam.envs.spec import EnvSpec
from wam.losses import symexp_bins, twohot_mean

SPECS = {
    "state": EnvSpec({"state": [5]}, action_dim=2),
    "rgbd_proprio": EnvSpec({"rgb": [32, 32, 3], "depth": [32, 32, 1], "proprio": [4]}, action_dim=3),
    "discrete_task": EnvSpec({"proprio": [4], "task": []}, action_dim=4, discrete=True, num_tasks=3),
}


def np_obs(spec: EnvSpec, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Observations as a gymnasium vector env gives them."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in spec.obs_shapes.items():
        if key == "rgb":
            out[key] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        elif key == "depth":
            out[key] = rng.uniform(0, 4, (n, *shape)).astype(np.float32)
        elif key == "task":
            out[key] = rng.integers(0, spec.num_tasks, n).astype(np.int64)
        else:
            out[key] = rng.standard_normal((n, *shape)).astype(np.float32)
    return out


def tiny(**overrides) -> DreamerV3Config:
    return DreamerV3Config.preset("debug", **overrides)


def test_rssm_shapes_and_imagination_step():
    torch.manual_seed(0)
    agent = DreamerV3Agent(tiny(), SPECS["state"])
    cfg, rssm = agent.config, agent.rssm
    batch = make_batch(SPECS["state"], B=3, T=5)
    tokens = agent.encoder({"state": batch["state"]})
    assert tokens.shape == (3, 5, agent.encoder.out_dim)
    deter, stoch, post = rssm.observe(tokens, batch["action"], batch["is_first"])
    assert deter.shape == (3, 5, cfg.deter)
    assert stoch.shape == post.shape == (3, 5, cfg.stoch, cfg.classes)
    assert torch.allclose(stoch.sum(-1), torch.ones(3, 5, cfg.stoch))  # one-hot samples
    assert torch.allclose(post.exp().sum(-1), torch.ones(3, 5, cfg.stoch), atol=1e-5)  # normalised log-probs
    assert post.exp().min() >= cfg.unimix / cfg.classes * 0.999  # 1% uniform mix
    d1, s1 = rssm.img_step(deter[:, -1], stoch[:, -1], torch.zeros(3, 2))
    assert d1.shape == (3, cfg.deter) and s1.shape == (3, cfg.stoch, cfg.classes)
    feats, actions = agent.imagine(deter[:, -1], stoch[:, -1], horizon=4)
    assert feats.shape == (3, 5, rssm.feat_dim) and actions.shape == (3, 4, 2)


@pytest.mark.parametrize("action_norm", [True, False])
def test_action_embedding_keeps_the_size_of_a_1d_action_only_without_the_norm(action_norm):
    torch.manual_seed(0)
    rssm = RSSM(tiny(action_norm=action_norm), token_dim=8, action_dim=1)
    half, full = rssm.embed_action(torch.tensor([[0.5], [1.0]]))  # zero bias at initialisation
    gap = (half - full).abs().max().item()
    # RMSNorm of a·w is sign(a)·w / rms(w) (up to its ε): a = 0.5 and a = 1 look the same to the GRU
    assert gap < 1e-3 if action_norm else gap > 0.05


def _actor_after_one_update(actor_grad: str, action_weight_zero: bool = False, loss_actor: float = 1.0):
    """(actor parameters before, whole state after) one update on a fixed batch, entropy bonus off."""
    torch.manual_seed(0)
    spec = SPECS["state"]
    agent = DreamerV3Agent(
        tiny(actor_grad=actor_grad, action_norm=False, actor_entropy=0.0, loss_actor=loss_actor), spec
    )
    with torch.no_grad():
        for head in (agent.reward_head, agent.critic):  # zero-initialised: no advantage at all in the first update
            head.out.weight.normal_(std=0.1)
        if action_weight_zero:  # the dynamics no longer depend on the action
            agent.rssm.in_action[0].weight.zero_()
    before = {k: v.clone() for k, v in agent.actor.state_dict().items()}
    agent.update(make_batch(spec, T=8, seed=2))
    return before, agent.state_dict()


@pytest.mark.parametrize("actor_grad", ["reinforce", "backprop"])
def test_backprop_actor_learns_only_through_the_dynamics(actor_grad):
    before, after = _actor_after_one_update(actor_grad, action_weight_zero=True)
    moved = any(not torch.equal(v, after[f"actor.{k}"]) for k, v in before.items())
    # REINFORCE scores sampled actions whatever the model; backprop gets its gradient only from how the imagined
    # return changes with the action, which is nothing when the dynamics ignore the action.
    assert moved == (actor_grad == "reinforce")
    before, after = _actor_after_one_update(actor_grad)
    assert any(not torch.equal(v, after[f"actor.{k}"]) for k, v in before.items())


def test_backprop_actor_loss_changes_nothing_but_the_actor():
    _, with_actor = _actor_after_one_update("backprop", loss_actor=1.0)
    _, without = _actor_after_one_update("backprop", loss_actor=0.0)
    changed = {k for k, v in with_actor.items() if not torch.equal(v, without[k])}
    assert changed and all(k.startswith("actor.") for k in changed), sorted(changed)


def test_backprop_actor_falls_back_to_reinforce_for_discrete_actions():
    agent = DreamerV3Agent(tiny(actor_grad="backprop"), SPECS["discrete_task"])
    assert not agent.backprop_actor
    assert all(math.isfinite(v) for v in agent.update(make_batch(SPECS["discrete_task"], T=8)).values())


def test_straight_through_gradient_reaches_logits():
    logits = torch.randn(4, 3, 5, requires_grad=True)
    sample = RSSM.sample(logits.log_softmax(-1))
    assert torch.equal(sample.detach(), sample.detach().round())
    (sample * torch.randn_like(sample)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(SPECS))
def test_update_returns_finite_metrics(name):
    torch.manual_seed(0)
    spec = SPECS[name]
    agent = DreamerV3Agent(tiny(), spec)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    metrics = agent.update(make_batch(spec, T=8, pad_from=5))
    for key in (
        "loss/dyn",
        "loss/rep",
        "loss/rec",
        "loss/reward",
        "loss/cont",
        "loss/actor",
        "loss/critic",
        "loss/repval",
        "loss/total",
        "actor/entropy",
        "wm/kl",
        "opt/grad_norm",
    ):
        assert key in metrics, sorted(metrics)
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    assert not bad, bad
    for key in spec.obs_shapes:
        assert f"rec/{key}" in metrics
    changed = [k for k, v in agent.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("rssm.") for k in changed) and any(k.startswith("actor.") for k in changed)
    assert any(k.startswith("slow_critic.") for k in changed)


@pytest.mark.parametrize("imag_last", [2, 5])
def test_update_imagining_from_the_last_steps_only(imag_last):
    agent = DreamerV3Agent(tiny(imag_last=imag_last), SPECS["state"])
    metrics = agent.update(make_batch(SPECS["state"], T=8, pad_from=6))
    assert all(math.isfinite(v) for v in metrics.values()), metrics


def test_zero_initialised_heads_predict_zero():
    agent = DreamerV3Agent(tiny(), SPECS["state"])
    feat = torch.randn(7, agent.rssm.feat_dim)
    # The centre bin of symexp_bins is 7e-8, not exactly 0, hence the tolerance.
    assert agent._value(agent.reward_head, feat).abs().max() < 1e-6
    assert agent._value(agent.critic, feat).abs().max() < 1e-6
    bins = symexp_bins(255)
    assert twohot_mean(torch.zeros(2, 255), bins).abs().max() < 1e-6


def test_world_model_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    spec = SPECS["state"]
    agent = DreamerV3Agent(tiny(lr=3e-3, warmup=0), spec)
    batch = make_batch(spec, B=2, T=8, seed=1)
    scales = agent.loss_scales()
    history = []
    for _ in range(40):  # world-model terms only: the actor-critic path is covered by the update tests
        losses, _, _ = agent.world_model_losses(batch)
        total = sum(scales[k] * v for k, v in losses.items())
        agent.optimizer.zero_grad()
        total.backward()
        agent.optimizer.step()
        history.append(float((losses["rec"] + losses["reward"] + losses["cont"]).detach()))
    assert np.mean(history[-3:]) < 0.5 * np.mean(history[:3]), history[::5]


def _dyn_grad(free_bits: float) -> float:
    torch.manual_seed(0)
    agent = DreamerV3Agent(tiny(free_bits=free_bits), SPECS["state"])
    losses, _, _ = agent.world_model_losses(make_batch(SPECS["state"], T=8))
    (losses["dyn"] + losses["rep"]).backward()
    grads = [p.grad for p in agent.rssm.parameters() if p.grad is not None]
    return float(sum(g.abs().sum() for g in grads)) if grads else 0.0


def test_kl_free_bits_give_zero_gradient_below_threshold():
    assert _dyn_grad(free_bits=1e4) == 0.0  # KL far below the free bits: clipped, no gradient
    assert _dyn_grad(free_bits=0.0) > 0.0


@pytest.mark.parametrize("name", ["rgbd_proprio", "discrete_task"])
def test_save_load_gives_identical_actions(name, tmp_path):
    torch.manual_seed(0)
    spec = SPECS[name]
    agent = DreamerV3Agent(tiny(), spec)
    agent.update(make_batch(spec, T=8))  # non-trivial weights, slow critic and return normaliser
    agent.save_pretrained(tmp_path / "a")
    loaded = DreamerV3Agent.from_pretrained(tmp_path / "a", device="cpu")
    assert loaded.config == agent.config and loaded.spec == agent.spec
    s1, s2 = agent.init_state(3), loaded.init_state(3)
    first = np.array([True, True, True])
    for step in range(3):
        obs = np_obs(spec, 3, seed=step)
        a1, s1 = agent.act(obs, s1, first, deterministic=True)
        a2, s2 = loaded.act(obs, s2, first, deterministic=True)
        assert np.array_equal(a1, a2)
        first = np.array([False, step == 1, False])
    assert a1.dtype == (np.int64 if spec.discrete else np.float32)
    assert a1.shape == ((3,) if spec.discrete else (3, spec.action_dim))
    if not spec.discrete:
        assert np.all(np.abs(a1) <= 1.0)


def test_stochastic_act_and_optimizer_state_round_trip():
    spec = SPECS["state"]
    agent = DreamerV3Agent(tiny(), spec)
    actions, state = agent.act(np_obs(spec, 2), agent.init_state(2), np.ones(2, bool))
    assert actions.shape == (2, 2) and state["deter"].shape == (2, agent.config.deter)
    agent.update(make_batch(spec, T=8))
    other = DreamerV3Agent(tiny(), spec)
    other.load_optimizer_state(agent.optimizer_state())
    assert other.optimizer.current_lr() == agent.optimizer.current_lr()


def test_act_rejects_missing_or_misshaped_observations():
    spec = SPECS["rgbd_proprio"]
    agent = DreamerV3Agent(tiny(), spec)
    obs = np_obs(spec, 2)
    with pytest.raises(KeyError, match="missing"):
        agent.act({k: v for k, v in obs.items() if k != "depth"}, None, np.ones(2, bool))
    with pytest.raises(ValueError, match="proprio"):
        agent.act({**obs, "proprio": np.zeros((2, 5), np.float32)}, None, np.ones(2, bool))


def test_config_validation_and_presets():
    assert {"debug", "size1m", "size12m", "size200m", "size400m"} <= set(PRESETS)
    assert DreamerV3Config.preset("size12m").deter == 2048
    assert DreamerV3Config().batch_size == 16 and DreamerV3Config().seq_len == 64
    with pytest.raises(ValueError, match="size3m"):
        DreamerV3Config.preset("size3m")
    with pytest.raises(ValueError, match="deter=100"):
        DreamerV3Config(deter=100)
    with pytest.raises(ValueError, match="imag_last=1"):
        DreamerV3Config(imag_last=1)
    with pytest.raises(ValueError, match="unimix=1.5"):
        DreamerV3Config(unimix=1.5)
    with pytest.raises(ValueError, match="actor_grad='pathwise'"):
        DreamerV3Config(actor_grad="pathwise")
    with pytest.raises(ValueError, match="30x30"):
        DreamerV3Agent(tiny(), EnvSpec({"rgb": [30, 30, 3]}, action_dim=2))


def test_replay_values_ignore_padding_past_the_replay_write_head():
    # A window that runs past the last written step ends in padding (mask False) without an is_last flag. The replay
    # value loss must not bootstrap from what the padding holds.
    spec = SPECS["state"]
    losses = []
    for fill in (0.0, 50.0):
        batch = make_batch(spec, B=2, T=6)
        batch["mask"][0, 4:] = False
        batch["state"][0, 4:] = fill
        batch["reward"][0, 4:] = fill
        torch.manual_seed(0)
        agent = DreamerV3Agent(tiny(), spec)
        with torch.no_grad():  # the heads start at zero: move them so that values and rewards depend on the input
            for param in agent.parameters():
                param.add_(0.3 * torch.randn_like(param))
        _, _, post = agent.world_model_losses(batch)
        torch.manual_seed(1)
        ac, _ = agent.actor_critic_losses(batch, post)
        losses.append(float(ac["repval"].detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
