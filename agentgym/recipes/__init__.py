"""End-to-end recipes built on the library: the learning check and the demo.

- :mod:`agentgym.recipes.learning`: a tiny model built locally learns FrozenLake with GRPO.
- :mod:`agentgym.recipes.demo`: what ``make demo`` / ``agentgym demo`` runs.
"""
