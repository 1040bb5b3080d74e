"""The arithmetic of the data checks (DESIGN §6), without Dagster: the stages compute verdicts, the asset
checks report them."""
