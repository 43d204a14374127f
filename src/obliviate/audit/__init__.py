"""Audits of what an unlearning claim can prove: forging (Thudi et al. 2022)."""

from obliviate.audit.forge import ForgeResult, SGDLog, forge, forging_audit, train_logged

__all__ = ["ForgeResult", "SGDLog", "forge", "forging_audit", "train_logged"]
