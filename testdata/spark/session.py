"""One local Spark session for every generator, set up for tests: UTC, quiet,
loopback only, and the extra jars (Delta, Iceberg) that scripts/testenv fetched with Maven
and lists in LOCKSTEP_SPARK_JARS."""
import contextlib
import os
import tempfile
import time

# Python's local zone must be UTC too: PySpark turns timestamps into naive local datetimes.
os.environ["TZ"] = "UTC"
time.tzset()

from pyspark.sql import SparkSession  # noqa: E402

# Root at WARN (Spark's shell default, so it prints no banner), Hadoop's noise off.
LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def sql_conf():
    """The session settings that Delta's SQL commands (update, delete) and Iceberg's (DELETE,
    UPDATE, ALTER TABLE ... PARTITION FIELD, CALL) need, for those of delta-spark and
    iceberg-spark-runtime that LOCKSTEP_SPARK_JARS holds."""
    jars = os.environ.get("LOCKSTEP_SPARK_JARS", "")
    conf, ext = {}, []
    if "delta-spark" in jars:
        ext.append("io.delta.sql.DeltaSparkSessionExtension")
        conf["spark.sql.catalog.spark_catalog"] = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    if "iceberg-spark-runtime" in jars:
        ext.append("org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
    if ext:
        conf["spark.sql.extensions"] = ",".join(ext)
    return conf


@contextlib.contextmanager
def session(extra_conf=None):
    with tempfile.NamedTemporaryFile("w", suffix=".properties") as log4j2:
        log4j2.write(LOG4J2)
        log4j2.flush()
        b = (SparkSession.builder.master("local[2]").appName("lockstep-testdata")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.extraJavaOptions",
                     f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{log4j2.name}")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1"))
        jars = os.environ.get("LOCKSTEP_SPARK_JARS", "")
        if jars:
            b = b.config("spark.jars", jars)
        for k, v in (extra_conf or {}).items():
            b = b.config(k, v)
        spark = b.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        try:
            yield spark
        finally:
            spark.stop()
