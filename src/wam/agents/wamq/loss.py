"""The objective of the Q-learning World Action Model, summed in one place (DESIGN.md §1):

``L = s_dyn·L_dyn + s_rew·L_rew + s_cont·L_cont + s_q·L_Q + L_π + L_α``

* world model, at every real transition t → t+1 of a window: ``L_dyn`` is the squared error between the predicted
  next latent ``f(g_t)`` and the stop-gradient encoding of o_{t+1}; ``L_rew`` two-hot reward; ``L_cont`` BCE;
* ``L_Q``: soft TD on the same real transitions, ``y = r + γ·c·(min(Q̄_i, Q̄_j)(h_{t+1}, a') − α·log π(a'|h_{t+1}))``
  with ``a' ~ π(h_{t+1})``, target heads by Polyak averaging and a random pair of the ensemble (SAC's target);
* ``L_π``: the policy gradient through Q, ``α·log π(a|h_t) − min(Q_i, Q_j)(h_t, a)`` with the reparameterised action
  and Q's parameters held fixed (SAC's actor loss; the tuned temperature makes its scale irrelevant);
* ``L_α``: SAC's temperature loss towards the target entropy.

One trunk pass serves every term: the world-model heads read the action tokens, Q and π the observation tokens. It
leaves out the window's last step, whose states have no next step to be trained on (the trunk is causal, so the
other states are the same with or without it); a second, gradient-free pass gives the TD target's next states.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wam.agents.wamq.model import WAMQNet
from wam.constants import ACTION, IS_TERMINAL, MASK, REWARD
from wam.losses import bce_with_logits, masked_mean, twohot_loss, twohot_mean
from wam.models.nn.tokenizers import prepare_obs


def target_entropy(net: WAMQNet) -> float:
    """The entropy the temperature aims for (config value, or the box / discrete default)."""
    if net.config.target_entropy is not None:
        return net.config.target_entropy
    A = net.spec.action_dim
    return 0.5 * math.log(A) if net.spec.discrete else -float(A)


def wamq_loss(net: WAMQNet, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """Every loss of ``net`` on a replay batch of windows (B, T, ...): returns (total, metrics)."""
    cfg, spec = net.config, net.spec
    spec.check_obs(batch, batch_dims=2)
    mask = batch[MASK].bool()
    if mask.shape[1] > cfg.seq_len:  # the passes below see T - 1 steps each: check the window itself
        raise ValueError(
            f"a window of {mask.shape[1]} steps is longer than the model's seq_len={cfg.seq_len}; "
            "sample windows of at most seq_len steps"
        )
    inputs = prepare_obs(batch, spec)
    z = net.encoder(inputs)  # (B, T, D)
    a = net.action_features(batch[ACTION])
    h, g = net.observe(z[:, :-1], a[:, :-1], mask[:, :-1])  # (B, T-1, D): the steps with a next step
    trans = mask[:, 1:]  # transition t -> t+1 exists when step t+1 is real (windows never cross episodes)
    reward = batch[REWARD][:, 1:].float()
    cont = 1.0 - batch[IS_TERMINAL][:, 1:].float()

    # ---- world model (action-token states g_t)
    with torch.no_grad():
        z_target = (z if net.target_encoder is None else net.target_encoder(inputs))[:, 1:]
    dyn = masked_mean((net.next_latent(g) - z_target).pow(2).mean(-1), trans)
    reward_logits = net.reward(g)
    rew = masked_mean(twohot_loss(reward_logits, reward, net.reward.bins), trans)
    cont_loss = masked_mean(bce_with_logits(net.cont(g).squeeze(-1), cont), trans)

    # ---- critic on real transitions. The trunk's state depends on its position in the window, so the target's
    # h_{t+1} comes from the window shifted by one step: it then sits where h_t sits, at a position the critic is
    # fitted at (reading h_{t+1} of the same window would bootstrap from a position Q never sees in its own loss).
    alpha = net.log_alpha.exp().detach()
    with torch.no_grad():
        h_next, _ = net.observe(z[:, 1:], a[:, 1:], mask[:, 1:], last_action=False)
        next_dist = net.policy(h_next)
        next_action, next_raw = next_dist.rsample()
        next_feat = next_raw if spec.discrete else next_action
        pair = torch.randperm(cfg.num_q, device=h.device)[:2]
        q_next = net.q.value(net.q_target(h_next, next_feat))[pair].min(0).values
        target = reward + cfg.gamma * cont * (q_next - alpha * next_dist.log_prob(next_raw))
    q_out = net.q(net.head_input(h), a[:, :-1])
    q_loss = masked_mean(net.q.td_loss(q_out, target).sum(0), trans)

    # ---- actor: policy gradient through Q at the steps (positions) the critic is fitted at
    valid = mask[:, :-1]
    dist = net.policy(net.actor_input(h))
    action, raw = dist.rsample()
    log_prob = dist.log_prob(raw)
    q_pi = net.q.frozen_value(h.detach(), raw if spec.discrete else action)[pair].min(0).values
    actor = masked_mean(alpha * log_prob - q_pi, valid)
    alpha_loss = -masked_mean(net.log_alpha * (log_prob.detach() + target_entropy(net)), valid)

    total = (
        cfg.dyn_scale * dyn
        + cfg.reward_scale * rew
        + cfg.cont_scale * cont_loss
        + cfg.q_scale * q_loss
        + actor
        + alpha_loss
    )
    with torch.no_grad():
        q_real = net.q.value(q_out).mean(0)
        metrics = {
            "loss/dyn": float(dyn),
            "loss/reward": float(rew),
            "loss/cont": float(cont_loss),
            "loss/q": float(q_loss),
            "loss/actor": float(actor),
            "loss/alpha": float(alpha_loss),
            "loss/total": float(total),
            "q/mean": float(masked_mean(q_real, trans)),
            "q/target": float(masked_mean(target, trans)),
            "actor/alpha": float(alpha),
            "actor/entropy": float(-masked_mean(log_prob, valid)),
            "wm/reward_pred": float(masked_mean(twohot_mean(reward_logits, net.reward.bins), trans)),
            "wm/z_std": float(z[mask].std(0).mean()),  # spread of the latent over the batch: near 0 = collapsed
        }
    return total, metrics
