"""World Action Model: shapes, learning, KV-cache imagination, coupling, checkpoints, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import SPECS, make_batch
from wam.envs.spec import EnvSpec
from wam.io.pretrained import CheckpointError
from wam.models.config import WAMConfig
from wam.models.nn.tokenizers import ObservationEncoder, prepare_obs
from wam.models.world_action_model import WorldActionModel


def tiny(spec: EnvSpec, **kw) -> WorldActionModel:
    torch.manual_seed(0)
    return WorldActionModel(WAMConfig.preset("tiny", spec=spec, context=6, horizon=3, imag_starts=8, **kw))


def test_forward_and_act_shapes_for_every_modality_subset(spec):
    model = tiny(spec)
    batch = make_batch(spec)
    loss, metrics = model(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    for name in ("dyn", "rec", "reward", "cont", "actor", "critic"):
        assert np.isfinite(metrics[f"loss/{name}"])
    obs = {k: v[:, 0].numpy() for k, v in batch.items() if k in spec.obs_shapes}
    action = model.act(obs)
    assert action.shape == ((2,) if spec.discrete else (2, spec.action_dim))
    if not spec.discrete:
        assert np.all(np.abs(action) <= 1.0)


def test_imagine_returns_every_modality_decoded():
    spec = SPECS["proprio_rgb_depth"]
    model = tiny(spec)
    out = model.imagine(make_batch(spec, B=3, T=4), horizon=5)
    assert out["latent"].shape == (3, 5, 32) and out["reward"].shape == (3, 5) and out["value"].shape == (3, 6)
    assert out["decoded"]["rgb"].shape == (3, 5, 3, 16, 16) and out["decoded"]["depth"].shape == (3, 5, 1, 16, 16)


def test_loss_falls_when_overfitting_one_batch():
    spec = SPECS["proprio_rgb_depth"]
    model = tiny(spec)
    batch = make_batch(spec, B=4, T=6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(60):
        loss, metrics = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(metrics["loss/dyn"] + metrics["loss/rec"] + metrics["loss/reward"])
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])


def _recompute_without_cache(model: WorldActionModel, z: torch.Tensor, a_ctx: torch.Tensor, actions: torch.Tensor):
    """Reference imagination: rerun the trunk over the whole growing sequence at every step."""
    B, T, _ = z.shape
    tokens = []
    for t in range(T - 1):
        tokens += [
            model._z_token(z[:, t], torch.full((B,), 2 * t)),
            model._a_token(a_ctx[:, t], torch.full((B,), 2 * t + 1)),
        ]
    tokens.append(model._z_token(z[:, -1], torch.full((B,), 2 * T - 2)))
    latents, z_now = [], z[:, -1]
    for k in range(actions.shape[1]):
        pos = 2 * T - 2 + 2 * k
        tokens.append(model._a_token(model.action_features(actions[:, k]), torch.full((B,), pos + 1)))
        seq = torch.stack(tokens, 1)
        out, _ = model.trunk.forward_cached(seq, torch.ones(B, seq.shape[1], dtype=torch.bool), None)
        z_next, _, _ = model.predict(out[:, -1], z_now)
        latents.append(z_next)
        z_now = z_next
        tokens.append(model._z_token(z_next, torch.full((B,), pos + 2)))
    return torch.stack(latents, 1)


@pytest.mark.parametrize("name", ["state", "rgb_task_discrete"])
def test_kv_cache_imagination_equals_full_recomputation(name):
    spec = SPECS[name]
    model = tiny(spec).eval()
    batch = make_batch(spec, B=2, T=4)
    g = torch.Generator().manual_seed(1)
    actions = (
        torch.randint(0, spec.action_dim, (2, 3), generator=g)
        if spec.discrete
        else torch.rand(2, 3, spec.action_dim, generator=g) * 2 - 1
    )
    with torch.no_grad():
        cached = model.imagine(batch, actions=actions, horizon=3, decode=False)["latent"]
        z = model.encode({k: batch[k] for k in spec.obs_shapes})
        reference = _recompute_without_cache(model, z, model.action_features(batch["action"]), actions)
    assert torch.allclose(cached, reference, atol=1e-5), (cached - reference).abs().max()


def _trunk_grad_from_actor(coupling: str, actor_grad: str = "reinforce") -> float:
    spec = SPECS["state"]
    model = tiny(spec, coupling=coupling, actor_grad=actor_grad)
    _, _ = model(make_batch(spec))  # warm the return normaliser
    batch = make_batch(spec, seed=1)
    # Only the actor loss: zero every other scale.
    model.config.loss_scales = {k: (1.0 if k == "actor" else 0.0) for k in model.config.loss_scales}
    loss, _ = model(batch)
    model.zero_grad()
    loss.backward()
    return sum(float(p.grad.abs().sum()) for p in model.trunk.parameters() if p.grad is not None)


@pytest.mark.parametrize("actor_grad", ["reinforce", "pathwise"])
def test_actor_gradient_reaches_trunk_only_when_coupled(actor_grad):
    assert _trunk_grad_from_actor("coupled", actor_grad) > 0
    assert _trunk_grad_from_actor("decoupled", actor_grad) == 0


def _grads(model: WorldActionModel, losses: tuple[str, ...], modules) -> float:
    """Total |gradient| in ``modules`` of the sum of ``losses`` on one batch."""
    model.config.loss_scales = {k: (1.0 if k in losses else 0.0) for k in model.config.loss_scales}
    model.zero_grad()
    loss, _ = model(make_batch(model.spec))
    loss.backward()
    return sum(float(p.grad.abs().sum()) for m in modules for p in m.parameters() if p.grad is not None)


def test_coupled_pathwise_critic_does_not_train_the_policy():
    # Imagined states depend on the sampled actions; the critic's loss on them must not reach the policy.
    model = tiny(SPECS["state"], actor_grad="pathwise")
    torch.nn.init.normal_(model.value.net[-1].weight, std=0.1)
    assert _grads(model, ("critic", "slow_critic"), [model.value]) > 0
    assert _grads(model, ("critic", "slow_critic"), [model.policy]) == 0


def test_coupled_pathwise_returns_reach_the_trunk_only_through_the_policy_input():
    # With a policy that ignores its input, the only path from the actor loss into encoder and trunk is cut, so
    # none may remain: the representation must not learn to raise the frozen heads' predicted return.
    model = tiny(SPECS["state"], actor_grad="pathwise", entropy=0.0)
    torch.nn.init.normal_(model.value.net[-1].weight, std=0.1)
    torch.nn.init.normal_(model.reward.net[-1].weight, std=0.1)
    assert _grads(model, ("actor",), [model.encoder, model.trunk]) > 0
    torch.nn.init.zeros_(model.policy.net[0].weight)
    assert _grads(model, ("actor",), [model.policy]) > 0
    assert _grads(model, ("actor",), [model.encoder, model.trunk]) == 0


def test_pathwise_estimator_trains_policy_but_not_reward_head():
    spec = SPECS["state"]
    model = tiny(spec, actor_grad="pathwise")
    model.config.loss_scales = {k: (1.0 if k == "actor" else 0.0) for k in model.config.loss_scales}
    loss, _ = model(make_batch(spec))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.reward.parameters())


@pytest.mark.parametrize("actor_grad", ["reinforce", "pathwise"])
def test_bounded_normal_policy_trains_and_acts_within_bounds(actor_grad):
    spec = SPECS["state"]
    model = tiny(spec, actor_grad=actor_grad, policy_dist="bounded_normal")
    model.config.loss_scales = {k: (1.0 if k == "actor" else 0.0) for k in model.config.loss_scales}
    loss, metrics = model(make_batch(spec))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters())
    # The Normal's entropy: 0.5·log(2πe·σ²) per dim, summed; with σ ≤ max_std = 1 it is at most 1.42 per dim.
    assert metrics["actor/entropy"] <= spec.action_dim * (0.5 + 0.5 * np.log(2 * np.pi)) + 1e-5


def test_open_loop_model_loss_scores_rollouts_on_predicted_latents():
    spec = SPECS["state"]
    batch = make_batch(spec, B=3, T=6)
    batch["mask"][0, 3:] = False  # a short episode: its rollout steps past the end must not count
    one_step = tiny(spec, model_horizon=1)
    _, metrics = one_step(batch)
    assert not any(k.startswith("wm/open_loop") for k in metrics)
    model = tiny(spec, model_horizon=3, model_starts=64)
    loss, metrics = model(batch)
    assert torch.isfinite(loss) and metrics["wm/open_loop_dyn"] > 0
    # The open-loop loss feeds predicted latents back in, so its gradient reaches the latent-input projection
    # through the fed latents, not only through real tokens: zeroing the multi-step weight changes that gradient.
    grads = []
    for rho in (1.0, 1e-6):
        model.zero_grad()
        model.config.model_rho = rho
        model.config.loss_scales = {k: (1.0 if k == "dyn" else 0.0) for k in model.config.loss_scales}
        model(batch)[0].backward()
        grads.append(model.z_in.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_residual_dynamics_starts_from_the_current_latent():
    spec = SPECS["state"]
    model = tiny(spec, residual_dynamics=True)
    torch.nn.init.zeros_(model.dynamics[-1].weight)
    torch.nn.init.zeros_(model.dynamics[-1].bias)
    z = model.encode({k: v[:, 0] for k, v in make_batch(spec).items() if k in spec.obs_shapes})
    assert torch.allclose(model.next_latent(torch.randn_like(z), z), z, atol=1e-4)


def test_save_load_reproduces_actions_bit_exactly(tmp_path, spec):
    model = tiny(spec)
    obs = {k: v[:, 0].numpy() for k, v in make_batch(spec).items() if k in spec.obs_shapes}
    model.save_pretrained(tmp_path / "m")
    loaded = WorldActionModel.from_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["agent"] == "wam"
    model.reset(), loaded.reset()
    for _ in range(3):
        assert np.array_equal(model.act(obs), loaded.act(obs))


def test_corrupt_checkpoint_raises_clear_error(tmp_path):
    model = tiny(SPECS["state"])
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        WorldActionModel.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="config.json"):
        WorldActionModel.from_pretrained(tmp_path / "missing")


@pytest.mark.parametrize(
    "bad",
    [
        dict(coupling="loose"),
        dict(actor_grad="magic"),
        dict(dim=30, heads=4),
        dict(gamma=1.5),
        dict(min_std=2.0),
        dict(model_horizon=0),
        dict(model_rho=0.0),
        dict(policy_dist="beta"),
    ],
)
def test_bad_config_values_raise(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        WAMConfig(spec=SPECS["state"], **bad)


def test_image_size_must_suit_the_conv_stem():
    with pytest.raises(ValueError, match="divisible by 16"):
        WAMConfig(spec=EnvSpec({"rgb": [20, 20, 3]}, 2, False))


def test_missing_or_misshaped_observation_raises():
    model = tiny(SPECS["proprio_rgb_depth"])
    good = {
        k: v[:, 0].numpy()
        for k, v in make_batch(SPECS["proprio_rgb_depth"]).items()
        if k in SPECS["proprio_rgb_depth"].obs_shapes
    }
    with pytest.raises(KeyError, match="depth"):
        model.act({k: v for k, v in good.items() if k != "depth"})
    with pytest.raises(ValueError, match="rgb"):
        model.act({**good, "rgb": good["rgb"][:, :8]})


def test_replay_critic_loss_fits_values_to_real_discounted_returns():
    from wam.models.nn.tokenizers import prepare_obs
    from wam.models.objective import _replay_critic_loss

    spec = SPECS["state"]
    model = tiny(spec, gamma=0.5, lam=1.0)
    batch = make_batch(spec, B=4, T=6)
    batch["reward"][:] = 1.0
    for flag in ("is_first", "is_last", "is_terminal"):
        batch[flag][:] = False
    batch["mask"][:] = True
    assert "loss/repval" not in model(batch)[1]  # off by default
    model.config.loss_scales["repval"] = 0.3
    assert "loss/repval" in model(batch)[1]
    with torch.no_grad():
        h, _, _ = model.observe(
            model.encoder(prepare_obs(batch, spec)), model.action_features(batch["action"]), batch["mask"]
        )
    opt = torch.optim.Adam(model.value.parameters(), lr=3e-3)
    for _ in range(150):
        loss = _replay_critic_loss(model, batch, h, {})
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Reward 1 forever at γ = 0.5: the bootstrapped fixed point is 1 / (1 − γ) = 2.
    assert abs(float(model.value.mean(h).mean().detach()) - 2.0) < 0.3
    # An episode's last step is a bootstrap, never a target: a window that is all "last" leaves nothing to fit.
    batch["is_last"][:] = True
    assert float(_replay_critic_loss(model, batch, h, {}).detach()) == 0.0


def test_decoupled_pathwise_bootstraps_through_values_but_not_into_the_trunk():
    spec = SPECS["state"]
    model = tiny(spec, actor_grad="pathwise", coupling="decoupled", entropy=0.0)
    # Constant rewards (zero-initialised head) and continuation: any policy gradient must come through the bootstrap.
    torch.nn.init.zeros_(model.cont[-1].weight)
    torch.nn.init.normal_(model.value.net[-1].weight, std=0.1)
    model.config.loss_scales = {k: (1.0 if k == "actor" else 0.0) for k in model.config.loss_scales}
    loss, _ = model(make_batch(spec))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters())
    assert all(
        p.grad is None or p.grad.abs().sum() == 0 for p in [*model.trunk.parameters(), *model.encoder.parameters()]
    )


def test_bounded_normal_entropy_ignores_the_mean_unlike_tanh_normal():
    from wam.models.nn.heads import BoundedNormal, TanhGaussian

    mean = torch.tensor([[0.0, 0.0], [3.0, -3.0]], requires_grad=True)
    std = torch.full((2, 2), 0.5, requires_grad=True)
    bounded = BoundedNormal(mean, std)
    torch.manual_seed(0)
    action, raw = bounded.rsample()
    assert action.abs().max() <= 1.0 and torch.equal(action, raw.clamp(-1, 1))
    ent = bounded.entropy(raw)
    assert torch.allclose(ent[0], ent[1])  # same σ, different means: same entropy
    ent.sum().backward()
    assert mean.grad is None or mean.grad.abs().sum() == 0
    expected = torch.distributions.Normal(torch.tanh(mean.detach()), std.detach()).log_prob(raw.detach()).sum(-1)
    assert torch.allclose(bounded.log_prob(raw.detach()).detach(), expected)
    # Clipping passes the gradient straight through (pathwise actors still learn at the bounds).
    mean.grad = None
    BoundedNormal(mean, std).rsample()[0].sum().backward()
    assert torch.all(mean.grad != 0)
    # The tanh-squashed Gaussian's entropy estimate falls as the mean saturates: a bonus on it pulls the mean to 0.
    u = torch.tensor([[0.0, 0.0], [3.0, -3.0]])
    tanh_ent = TanhGaussian(u, std.detach()).entropy(u)
    assert tanh_ent[1] < tanh_ent[0] - 1.0


def test_replay_critic_ignores_padding_past_the_replay_write_head():
    from wam.models.objective import _replay_critic_loss

    spec = SPECS["state"]
    losses = []
    for fill in (0.0, 50.0):
        batch = make_batch(spec, B=2, T=6)
        batch["mask"][0, 4:] = False  # the window ran past the last written step: padding, no is_last flag
        batch["state"][0, 4:] = fill
        batch["reward"][0, 4:] = fill
        torch.manual_seed(0)
        model = tiny(spec)
        with torch.no_grad():  # heads start near zero: move them so that values depend on the input
            for param in model.parameters():
                param.add_(0.3 * torch.randn_like(param))
        z = model.encode({k: batch[k] for k in spec.obs_shapes})
        h, _, _ = model.observe(z, model.action_features(batch["action"]), batch["mask"].bool())
        losses.append(float(_replay_critic_loss(model, batch, h, {}).detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.parametrize("fusion_layers", [0, 1])
def test_encoder_latent_depends_on_every_modality(spec, fusion_layers):
    torch.manual_seed(0)
    encoder = ObservationEncoder(spec, 16, 32, 4, fusion_layers, 2)
    batch = make_batch(spec, B=2, T=3)
    z = encoder(prepare_obs(batch, spec))
    assert z.shape == (2, 3, 16)
    for key in spec.obs_shapes:  # changing one modality changes the latent
        other = dict(batch, **{key: make_batch(spec, B=2, T=3, seed=7)[key]})
        assert not torch.allclose(encoder(prepare_obs(other, spec)), z), key


def test_encoder_rejects_negative_fusion_layers():
    with pytest.raises(ValueError, match="fusion_layers=-1"):
        ObservationEncoder(EnvSpec({"state": [3]}, 1, False), 16, 32, 4, -1, 2)


def test_polyak_step_moves_the_slow_copy_a_fraction_tau_towards_the_fast_one():
    from wam.models.nn.polyak import polyak_

    torch.manual_seed(0)
    slow, fast = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in slow.parameters()]
    polyak_(slow, fast, 0.25)
    for old, new, target in zip(before, slow.parameters(), fast.parameters()):
        torch.testing.assert_close(new, old + 0.25 * (target - old))
