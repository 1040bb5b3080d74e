"""Run in a child process whose clocks are set to another zone: read one unload, print what Spark returns."""

from __future__ import annotations

import json
import os
import sys
import time


def main(folder: str, table: str, zone: str, work: str) -> None:
    from teem_assets.catalogue import TABLES
    from teem_assets.spark_session import build_spark_session
    from teem_assets.unload.spark_reader import read_unload

    # The caller asks for its own zone everywhere; the Spark resource must pin UTC anyway.
    spark = build_spark_session(
        "tz-child",
        master="local[2]",
        extra_conf={
            "spark.sql.session.timeZone": zone,
            "spark.driver.extraJavaOptions": f"-Duser.timezone={zone}",
            "spark.executor.extraJavaOptions": f"-Duser.timezone={zone}",
            "spark.executorEnv.TZ": zone,
        },
    )
    columns = TABLES[table].typed_columns
    read = read_unload(spark, folder, columns, f"{work}/out", f"{work}/quarantine")
    rows = [[v.isoformat() if hasattr(v, "isoformat") else v for v in row] for row in read.dataframe.collect()]
    worker = spark.sparkContext.parallelize([0], 1).map(lambda _: (time.timezone, time.tzname[0])).collect()[0]
    probe = {
        "jvm": spark._jvm.java.util.TimeZone.getDefault().getID(),
        "session": spark.conf.get("spark.sql.session.timeZone"),
        "driver": [os.environ.get("TZ"), time.timezone],
        "worker": list(worker),
    }
    spark.stop()
    json.dump({"rows": rows, "probe": probe}, sys.stdout, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:5])
