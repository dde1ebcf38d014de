"""RL: advantage estimators, policy losses, the trainer and the training loop.

- :mod:`agentgym.rl.advantages`: estimators by name (``grpo``, ``dr_grpo``, ``rloo``, ``gigpo``,
  ``turn_grpo``, ``turn_grpo_immediate``).
- :mod:`agentgym.rl.losses`: policy losses by name (``ppo_clip``, ``reinforce``).
- :mod:`agentgym.rl.config`: :class:`TrainConfig` (holds the collection config).
- :mod:`agentgym.rl.trainer`: :class:`Trainer`, one policy-gradient update.
- :mod:`agentgym.rl.loop`: :func:`train`, collect -> advantages -> update, logged.

Importing this package does not import torch; the trainer does, when it is built.
"""

from agentgym.rl.advantages import ESTIMATORS, compute_advantages
from agentgym.rl.config import TrainConfig
from agentgym.rl.loop import TrainResult, train
from agentgym.rl.losses import LOSSES, register_loss
from agentgym.rl.trainer import Trainer

__all__ = [
    "ESTIMATORS",
    "LOSSES",
    "compute_advantages",
    "register_loss",
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "train",
]
