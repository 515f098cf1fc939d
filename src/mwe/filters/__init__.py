"""Stages that reject items: cheap rules, the rubric judge, the label judge, near-duplicate removal."""

from .dedup import dedup
from .judge import judge
from .label import label_check
from .rules import RULES, apply_rules, looks_like_refusal, rule

__all__ = ["RULES", "apply_rules", "dedup", "judge", "label_check", "looks_like_refusal", "rule"]
