"""The training objective of the World Action Model (DESIGN.md §1), summed in exactly one place:

``L = s_dyn·L_dyn + s_rec·L_rec + s_rew·L_rew + s_cont·L_cont + s_actor·L_actor + s_critic·(L_critic + L_slow)
+ s_repval·L_repval`` (the last, a critic loss on the real sequence, only when its scale is > 0)

World-model terms use the real sequence; actor and critic terms use rollouts imagined from every valid real
step (up to ``imag_starts`` of them), with the trunk's KV cache of the real sequence as each rollout's prefix.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call

from wam.constants import ACTION, IS_LAST, IS_TERMINAL, MASK, REWARD
from torch import nn

from wam.losses import bce_with_logits, lambda_returns, masked_mean, twohot_mean
from wam.models.nn.tokenizers import prepare_obs


def wam_loss(model, batch: dict[str, Tensor], actor_critic: bool = True) -> tuple[Tensor, dict[str, float]]:
    """Compute every loss of ``model`` on ``batch`` (B, T, ...); see the module docstring.

    ``actor_critic=False`` computes the world-model terms only (no imagination), e.g. during an actor warm-up.
    """
    cfg, spec = model.config, model.spec
    spec.check_obs(batch, batch_dims=2)
    mask = batch[MASK].bool()
    B, T = mask.shape
    inputs = prepare_obs(batch, spec)
    z = model.encoder(inputs)  # (B, T, D)
    a = model.action_features(batch[ACTION])  # (B, T, A)
    h, g, cache = model.observe(z, a, mask)

    losses: dict[str, Tensor] = {}
    metrics: dict[str, float] = {}
    # ---- world model: transition t -> t+1 is valid when step t+1 is real (windows never cross episodes).
    trans = mask[:, 1:]
    z_pred = model.next_latent(g[:, :-1], z[:, :-1])
    target = (model.target_encoder(inputs) if model.target_encoder is not None else z).detach()[:, 1:]
    losses["dyn"] = masked_mean((z_pred.float() - target.float()).pow(2).mean(-1), trans)
    next_reward = batch[REWARD][:, 1:].float()
    losses["reward"] = masked_mean(model.reward.loss(g[:, :-1], next_reward), trans)
    if cfg.reward_on_latent:
        # Same head on the real next latent: a direct reward gradient into the encoder (see WAMConfig).
        on_latent = masked_mean(model.reward.loss(z[:, 1:], next_reward), trans)
        metrics["wm/reward_loss_on_latent"] = float(on_latent.detach())
        losses["reward"] = losses["reward"] + on_latent
    cont_target = 1.0 - batch[IS_TERMINAL][:, 1:].float()
    losses["cont"] = masked_mean(bce_with_logits(model.cont(g[:, :-1]).squeeze(-1), cont_target), trans)
    if cfg.model_horizon > 1:
        multi = _open_loop_losses(model, batch, z, target, cache, h)
        for name, value in multi.items():
            metrics[f"wm/open_loop_{name}"] = float(value.detach())
            losses[name] = losses[name] + value
    rec = model.decoder.loss(z, inputs)
    for key, value in rec.items():
        metrics[f"rec/{key}"] = float(masked_mean(value.detach(), mask))
    losses["rec"] = masked_mean(sum(rec.values()), mask) if rec else z.new_zeros(())

    if actor_critic:
        losses.update(_actor_critic_losses(model, batch, z, h, cache, metrics))
        if cfg.loss_scales.get("repval", 0.0) > 0:
            losses["repval"] = _replay_critic_loss(model, batch, h, metrics)
    total = sum(cfg.loss_scales.get(name, 0.0) * value for name, value in losses.items())
    metrics.update({f"loss/{name}": float(value.detach()) for name, value in losses.items()})
    metrics["loss/total"] = float(total.detach())
    metrics["wm/reward_pred"] = float(model.reward.mean(g[:, :-1]).detach().mean())
    return total, metrics


def _branch_points(ok: Tensor, limit: int, cache) -> tuple[Tensor, Tensor, object]:
    """Pick up to ``limit`` real steps where ``ok`` (B, W) holds (W ≤ T; a random subset when there are more) and
    fan the real window's KV cache out to them. Returns batch rows b, steps t and the per-start cache, in which
    each rollout sees only its own real prefix: tokens up to and including z_t (position 2t)."""
    idx = ok.flatten().nonzero().squeeze(1)
    if len(idx) > limit:
        idx = idx[torch.randperm(len(idx), device=idx.device)[:limit]]
    b, t = idx // ok.shape[1], idx % ok.shape[1]
    start_cache = cache.select(b)
    positions = torch.arange(start_cache.valid.shape[1], device=idx.device)
    start_cache.valid = start_cache.valid & (positions.unsqueeze(0) <= 2 * t.unsqueeze(1))
    return b, t, start_cache


def _open_loop_losses(
    model, batch: dict[str, Tensor], z: Tensor, target: Tensor, cache, h: Tensor
) -> dict[str, Tensor]:
    """Multi-step model losses (TD-MPC2-style latent rollouts, here through the trunk and its KV cache).

    From up to ``model_starts`` real steps t, the trunk runs ``model_horizon`` steps on its *own* predicted
    latents with the *real* actions a_t..a_{t+K-1}, and every predicted latent, reward and continuation is
    scored against the real ones (weight ``model_rho**k``). Gradients flow through the whole rollout, so the
    model is trained on the kind of inputs imagination feeds it, not only on teacher-forced real latents.
    """
    cfg = model.config
    mask = batch[MASK].bool()
    K = min(cfg.model_horizon, mask.shape[1] - 1)
    b, t, start_cache = _branch_points(mask[:, : mask.shape[1] - K], cfg.model_starts, cache)
    steps = t.unsqueeze(1) + torch.arange(K, device=z.device).unsqueeze(0)  # (N, K): t .. t+K-1
    roll = model.rollout(
        start_cache, h[b, t], z[b, t], 2 * t, K, actions=batch[ACTION][b.unsqueeze(1), steps], detach_inputs=False
    )
    rows, nxt = b.unsqueeze(1), steps + 1
    valid = mask[rows, nxt].float() * cfg.model_rho ** torch.arange(K, device=z.device).float()
    total = valid.sum().clamp(min=1e-8)
    # target is (B, T-1, D) for steps 1..T-1, so step t+1's target sits at index t.
    dyn = (roll["z"].float() - target[rows, steps].float()).pow(2).mean(-1)
    reward_target = batch[REWARD][rows, nxt].float()
    reward = model.reward.loss(roll["g"], reward_target)
    if cfg.reward_on_latent:
        reward = reward + model.reward.loss(roll["z"], reward_target)
    cont = bce_with_logits(model.cont(roll["g"]).squeeze(-1), 1.0 - batch[IS_TERMINAL][rows, nxt].float())
    return {name: (value * valid).sum() / total for name, value in (("dyn", dyn), ("reward", reward), ("cont", cont))}


def _actor_critic_losses(
    model, batch: dict[str, Tensor], z: Tensor, h: Tensor, cache, metrics: dict[str, float]
) -> dict[str, Tensor]:
    """Actor, critic and slow-critic losses on rollouts imagined from the batch's real steps (adds metrics)."""
    cfg, spec = model.config, model.spec
    losses: dict[str, Tensor] = {}
    b_idx, t_idx, start_cache = _branch_points(batch[MASK].bool() & ~batch[IS_TERMINAL].bool(), cfg.imag_starts, cache)
    pos0 = 2 * t_idx
    h0, z0 = h[b_idx, t_idx], z[b_idx, t_idx]
    pathwise = cfg.actor_grad == "pathwise"
    decoupled = cfg.coupling == "decoupled"
    if pathwise:
        # Returns carry gradient to the actions, never back into the real sequence's pass: the rollout's world-model
        # side starts from a cut copy of the start in every coupling (else the encoder and trunk would learn to raise
        # the frozen heads' predicted return). What the policy reads at the start stays live, so in coupled mode the
        # actor reaches the trunk through the policy's input, as with REINFORCE.
        roll = _rollout_with_frozen_world_model(
            model, start_cache.detach(), h0.detach(), z0.detach(), pos0, cfg.horizon, policy_h0=h0
        )
    else:
        roll = model.rollout(start_cache, h0, z0, pos0, cfg.horizon, detach_inputs=True)
    hs = roll["h"]  # (N, H+1, D)
    h_in = model._policy_input(hs)
    values = model.value.mean(h_in)  # (N, H+1)
    reward, cont = roll["reward"], roll["cont"]
    if pathwise:
        # Returns carry gradient to the actions, never into the critic's parameters. Decoupled heads read a
        # stop-gradient h; the bootstrap reads the rollout's own h (cut from the trunk above) so it still does.
        boot = twohot_mean(
            functional_call(model.value, _detached(model.value), (hs if decoupled else h_in,)), model.value.bins
        )
    else:
        reward, cont, boot = reward.detach(), cont.detach(), values.detach()
    returns = lambda_returns(reward, boot, cont, cfg.gamma, cfg.lam)  # (N, H)
    weight = torch.cumprod(torch.cat([torch.ones_like(cont[:, :1]), cont[:, :-1]], 1), 1).detach()  # (N, H)
    model.return_norm.update(returns)
    scale = model.return_norm.scale()
    dist = model.policy(h_in[:, :-1])
    entropy = dist.entropy(roll["raw"]) if not spec.discrete else dist.entropy()
    if pathwise:
        objective = returns / scale
    else:
        advantage = ((returns - values[:, :-1]) / scale).detach()
        objective = dist.log_prob(roll["raw"].detach()) * advantage
    losses["actor"] = -(weight * (objective + cfg.entropy * entropy)).mean()
    value_in = h_in[:, :-1]
    if pathwise:  # imagined states depend on the sampled actions: the critic must not train the policy through them
        value_in = torch.cat([value_in[:, :1], value_in[:, 1:].detach()], 1)
    slow_target = model.slow_value.mean(value_in.detach()).detach()
    losses["critic"] = (weight * model.value.loss(value_in, returns.detach())).mean()
    losses["slow_critic"] = (weight * model.value.loss(value_in, slow_target)).mean()
    metrics.update(
        {
            "imag/return": float(returns.detach().mean()),
            "imag/reward": float(reward.detach().mean()),
            "imag/return_scale": float(scale),
            "actor/entropy": float(entropy.detach().mean()),
        }
    )
    return losses


def _replay_critic_loss(model, batch: dict[str, Tensor], h: Tensor, metrics: dict[str, float]) -> Tensor:
    """Critic loss on the *real* sequence (DreamerV3 2025's replay value loss): λ-returns of the replayed rewards,
    bootstrapped with the critic's own (detached) values, so values are anchored in real returns, not only in
    imagined ones. At an episode's last step the return is its value (fed as a reward with no continuation)."""
    cfg = model.config
    mask = batch[MASK].bool()
    # A step whose next step is padding (the window ran past the replay's write head) ends there like a last step.
    last = batch[IS_LAST].bool()[:, :-1] | ~mask[:, 1:]
    h_in = model._policy_input(h)
    with torch.no_grad():
        values = model.value.mean(h_in)  # (B, T)
        reward = torch.where(last, values[:, :-1], batch[REWARD][:, 1:].float())
        cont = torch.where(last, torch.zeros_like(reward), 1.0 - batch[IS_TERMINAL][:, 1:].float())
        returns = lambda_returns(reward, values, cont, cfg.gamma, cfg.lam)  # (B, T-1)
    valid = mask[:, :-1] & ~last
    metrics["critic/replay_return"] = float(masked_mean(returns, valid))
    return masked_mean(model.value.loss(h_in[:, :-1], returns), valid)


class _Rollout(nn.Module):
    """Adapter so :func:`torch.func.functional_call` (which calls ``forward``) can run ``model.rollout``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, cache, h0, z0, pos0, horizon, policy_h0=None):
        """Apply the module (see the class docstring for shapes)."""
        return self.model.rollout(cache, h0, z0, pos0, horizon, detach_inputs=False, policy_h0=policy_h0)


def _detached(module: nn.Module, keep: str = "") -> dict[str, Tensor]:
    """Parameters of ``module`` detached from the graph, except those whose name starts with ``keep``."""
    return {n: (p if keep and n.startswith(keep) else p.detach()) for n, p in module.named_parameters()}


def _rollout_with_frozen_world_model(model, cache, h0, z0, pos0, horizon, policy_h0=None) -> dict[str, Tensor]:
    """Pathwise rollout: gradients flow through actions into predictions, but only the policy's parameters
    learn from it (everything else sees detached parameters, so the actor cannot "hallucinate" reward).
    ``policy_h0``: what the policy reads at the first step, if not ``h0`` (see :meth:`WorldActionModel.rollout`)."""
    params = {f"model.{n}": p for n, p in _detached(model, keep="policy.").items()}
    return functional_call(_Rollout(model), params, (cache, h0, z0, pos0, horizon, policy_h0), strict=False)
