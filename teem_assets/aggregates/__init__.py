"""The aggregates agg_hourly_space and week_people_count (spec/AGGREGATES.md), in Spark and in SQL."""
