"""The Agent contract, parametrised over every registered agent: act, update, save/load, evaluation, spec errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import make_batch
from wam.agents.registry import AGENTS, get_agent, load_agent
from wam.envs.spec import EnvSpec
from wam.envs import EnvConfig, make_vector
from wam.evaluation.evaluate import evaluate
from wam.io.state import flatten_state, load_state, save_state

TINY = {
    "wam": dict(size="tiny", batch_size=2, seq_len=4, imag_starts=4, horizon=2),
    "dreamerv3": dict(batch_size=2, seq_len=4, deter=32, hidden=16, stoch=4, classes=4, blocks=2, units=16, warmup=0),
    "sac": dict(batch_size=4, seq_len=3, hidden=16),
    "wamq": dict(dim=16, heads=2, mlp_hidden=16, cnn_width=4, num_bins=21, batch_size=2, seq_len=4),
}


@pytest.fixture(params=sorted(AGENTS))
def agent_and_envs(request):
    torch.manual_seed(0)
    envs = make_vector(
        EnvConfig(name="toy/reach2d", obs=("state",), max_episode_steps=5), num_envs=2, asynchronous=False
    )
    spec = EnvSpec.from_spaces(envs.single_observation_space, envs.single_action_space)
    config_cls, agent_cls = get_agent(request.param)
    yield agent_cls(config_cls(**TINY[request.param]), spec), envs
    envs.close()


def test_act_update_and_evaluate(agent_and_envs):
    agent, envs = agent_and_envs
    obs, _ = envs.reset(seed=0)
    action, state = agent.act(obs, agent.init_state(2), np.ones(2, bool))
    assert action.shape == (2, 2) and np.all(np.abs(action) <= 1)
    metrics = agent.update(make_batch(EnvSpec({"state": [4]}, 2, False), B=2, T=4))
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    seen = []
    result = evaluate(agent, envs, episodes=3, seed=1, on_episode=lambda done, total: seen.append((done, total)))
    assert len(result.success) == 3 and all(length == 5 for length in result.lengths)
    assert seen[-1] == (3, 3) and [d for d, _ in seen] == sorted(d for d, _ in seen)  # progress reaches the total


def test_save_load_gives_identical_deterministic_actions(agent_and_envs, tmp_path):
    agent, envs = agent_and_envs
    obs, _ = envs.reset(seed=0)
    agent.save_pretrained(tmp_path / "agent")
    loaded = load_agent(tmp_path / "agent")
    first = np.ones(2, bool)
    a, _ = agent.act(obs, agent.init_state(2), first, deterministic=True)
    b, _ = loaded.act(obs, loaded.init_state(2), first, deterministic=True)
    assert np.array_equal(a, b)
    # Loading a folder of one agent with another agent's class says which agent it holds.
    other = get_agent(next(name for name in sorted(AGENTS) if name != agent.name))[1]
    with pytest.raises(ValueError, match=f"holds a '{agent.name}' agent"):
        other.from_pretrained(tmp_path / "agent")


def test_optimizer_state_round_trips_through_safetensors(agent_and_envs, tmp_path):
    agent, _ = agent_and_envs
    agent.update(make_batch(EnvSpec({"state": [4]}, 2, False), B=2, T=4))
    save_state(agent.optimizer_state(), tmp_path / "opt")
    agent.load_optimizer_state(load_state(tmp_path / "opt"))
    _, before = flatten_state(load_state(tmp_path / "opt"))
    _, after = flatten_state(agent.optimizer_state())
    assert before.keys() == after.keys() and len(before) > 0
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_spec_from_spaces_rejects_unsupported_spaces():
    obs = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (3,))})
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        EnvSpec.from_spaces(obs, gym.spaces.Box(-2, 2, (2,)))
    with pytest.raises(TypeError, match="Dict observation"):
        EnvSpec.from_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="unknown observation keys"):
        EnvSpec({"lidar": [3]}, 2, False)
    spec = EnvSpec.from_spaces(obs, gym.spaces.Discrete(4))
    assert spec.discrete and spec.action_dim == 4 and spec.vector_keys == ["state"]


def test_unknown_agent_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean 'dreamerv3'"):
        get_agent("dreamer")


def test_every_registered_agent_is_wired_into_the_training_config():
    # Adding an agent takes three edits (docs/extending.md); a registry entry without the rest fails here, not mid-run.
    from dataclasses import fields

    from wam.training.config import TrainConfig

    config_fields = {f.name for f in fields(TrainConfig)}
    for name in AGENTS:
        config_cls, agent_cls = get_agent(name)
        assert agent_cls.name == name, f"{agent_cls.__name__}.name is {agent_cls.name!r}, registered as {name!r}"
        assert name in config_fields, f"TrainConfig has no field {name!r} holding a {config_cls.__name__}"
        cfg = TrainConfig(env="toy/reach2d", obs=("state",), agent=name).agent_config()
        assert isinstance(cfg, config_cls), f"TrainConfig.{name} is a {type(cfg).__name__}, not {config_cls.__name__}"
        assert cfg.batch_size >= 1 and cfg.seq_len >= 1  # the loop samples replay batches of this shape
        assert name in TINY, f"add a tiny {config_cls.__name__} for {name!r} to TINY in this file"


def test_an_agent_without_save_and_load_is_refused_when_defined_not_after_training():
    from wam.agents.base import Agent

    class Incomplete(Agent):
        def init_state(self, batch_size):
            return None

        def act(self, obs, state, is_first, deterministic=False):
            return np.zeros((len(is_first), 1), np.float32), state

        def update(self, batch):
            return {}

        def optimizer_state(self):
            return {}

        def load_optimizer_state(self, state):
            pass

    with pytest.raises(TypeError, match="from_pretrained, save_pretrained"):
        Incomplete()


def test_wam_actor_warmup_trains_the_world_model_first():
    torch.manual_seed(0)
    spec = EnvSpec({"state": [4]}, 2, False)
    config_cls, agent_cls = get_agent("wam")
    agent = agent_cls(config_cls(**TINY["wam"], actor_warmup=2), spec)
    batch = make_batch(spec, B=2, T=4)
    policy_before = [p.clone() for p in agent.model.policy.parameters()]
    seen = [set(agent.update(batch)) for _ in range(2)]
    assert "loss/actor" not in seen[0] and "loss/actor" not in seen[1] and "loss/dyn" in seen[0]
    assert all(torch.equal(a, b) for a, b in zip(policy_before, agent.model.policy.parameters()))
    assert "loss/actor" in agent.update(batch) and int(agent.updates_done) == 3
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, agent.model.policy.parameters()))
    with pytest.raises(ValueError, match="actor_warmup"):
        config_cls(actor_warmup=-1)


def test_wam_bf16_autocast_update_keeps_float32_parameters():
    torch.manual_seed(0)
    spec = EnvSpec({"state": [4]}, 2, False)
    config_cls, agent_cls = get_agent("wam")
    agent = agent_cls(config_cls(**TINY["wam"], actor_warmup=0, autocast="bf16"), spec)
    dtypes = []
    for module in agent.model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    before = [p.clone() for p in agent.model.parameters()]
    metrics = agent.update(make_batch(spec, B=2, T=4))
    assert torch.bfloat16 in dtypes  # bf16 is forced on CPU too
    assert np.isfinite(metrics["loss/total"]) and np.isfinite(metrics["opt/grad_norm"])
    assert all(p.dtype == torch.float32 for p in agent.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.model.parameters()))
    # "auto" means float32 on CPU: same seed, same batch, same numbers as "off".
    runs = []
    for mode in ("auto", "off"):
        torch.manual_seed(1)
        cpu_agent = agent_cls(config_cls(**TINY["wam"], actor_warmup=0, autocast=mode), spec)
        torch.manual_seed(2)
        runs.append(cpu_agent.update(make_batch(spec, B=2, T=4, seed=3))["loss/total"])
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="autocast"):
        config_cls(autocast="fp8")
