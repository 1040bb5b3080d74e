"""Checks on the data (DESIGN §6): batch volume, companies gone missing, freshness of the newest batch."""
