"""Run in a child process: both aggregates of the hand-made worlds on a given Spark master, with the
caller's zone asked for everywhere (the Spark resource must pin UTC anyway); print rows and clocks."""

from __future__ import annotations

import json
import os
import sys
import time


def main(master: str, zone: str) -> None:
    from test_aggregate_rules import hourly_world, spark_hourly, spark_weekly, week_world

    from teem_assets.spark_session import build_spark_session

    spark = build_spark_session(
        "aggregate-child",
        master=master,
        extra_conf={
            "spark.sql.session.timeZone": zone,
            "spark.driver.extraJavaOptions": f"-Duser.timezone={zone}",
            "spark.executor.extraJavaOptions": f"-Duser.timezone={zone}",
            "spark.executorEnv.TZ": zone,
            "spark.executor.memory": "1g",
        },
    )
    hourly = sorted(spark_hourly(spark, hourly_world()), key=repr)
    weekly = sorted(spark_weekly(spark, week_world()), key=repr)

    def clocks(_: object) -> tuple[int, str]:
        return (time.timezone, time.tzname[0])

    worker = spark.sparkContext.parallelize([0], 1).map(clocks).collect()[0]
    executor_jvm = spark.range(1).selectExpr("reflect('java.util.TimeZone', 'getDefault') AS zone").first()[0]
    probe = {
        "jvm": spark._jvm.java.util.TimeZone.getDefault().getID(),
        "session": spark.conf.get("spark.sql.session.timeZone"),
        "driver": [os.environ.get("TZ"), time.timezone],
        "worker": list(worker),
        "executor_jvm": "UTC" if 'id="UTC"' in str(executor_jvm) else str(executor_jvm),
    }
    spark.stop()
    json.dump({"hourly": hourly, "weekly": weekly, "probe": probe}, sys.stdout, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:3])
