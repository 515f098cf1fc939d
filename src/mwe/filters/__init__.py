"""Stages that reject items: cheap rules, the rubric judge, and near-duplicate removal."""

from .dedup import dedup
from .judge import judge
from .rules import RULES, apply_rules, looks_like_refusal, rule

__all__ = ["RULES", "apply_rules", "dedup", "judge", "looks_like_refusal", "rule"]
