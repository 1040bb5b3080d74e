"""The check of an unload against its table's rules in the catalogue (`teem_assets.unload.rules`): a rule that
blocks stops the batch at Parquet, any other warns."""

from __future__ import annotations

CATALOGUE_RULES = "catalogue_rules"
