"""Whether Spark can run here, and a Spark session for one run.

pyspark is an optional extra (``pip install 'xlseg[spark]'``) and needs a Java
runtime of version 17 or newer; both are checked before a session is asked
for, so a missing piece is one plain line and exit code 2, not a Py4J stack
trace thirty seconds later.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from xlseg.errors import XlsegError

__all__ = ["INSTALL_HINT", "MIN_JAVA", "check_spark", "java_version", "parse_conf", "spark_session"]

INSTALL_HINT = "pip install 'xlseg[spark]'"
MIN_JAVA = 17
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_version() -> int | None:
    """The major version of the ``java`` Spark will start (JAVA_HOME's, else PATH's), or None."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_spark() -> None:
    """Raise `XlsegError` unless pyspark imports and Java >= 17 is there."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise XlsegError(
            f"--engine spark needs pyspark, which is not installed; install it with "
            f"{INSTALL_HINT} (or pip install pyspark), or run without --engine spark"
        ) from None
    version = java_version()
    if version is None:
        raise XlsegError(
            f"--engine spark needs Java {MIN_JAVA} or newer, and no java was found (looked in "
            "JAVA_HOME, then PATH); install a JDK such as openjdk-17-jre-headless"
        )
    if version < MIN_JAVA:
        raise XlsegError(
            f"--engine spark needs Java {MIN_JAVA} or newer; the java found is version "
            f"{version}. Install Java {MIN_JAVA}+ and point JAVA_HOME at it"
        )


def parse_conf(pairs: Sequence[str]) -> dict[str, str]:
    """``["spark.executor.memory=4g", ...]`` as a dict; a pair without ``=`` is refused."""
    conf: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise XlsegError(f"--spark-conf takes key=value, not '{pair}'")
        conf[key.strip()] = value.strip()
    return conf


def local_driver_memory() -> str:
    """Heap of a local-mode Spark, where the driver JVM does all the work.

    Spark's default of 1 GB runs out in ``pyspark.ml``'s PCA of 1,000,000
    customers x 2,000 offers (its covariance aggregates are dense); a quarter
    of the machine's memory, between 1 and 16 GB, leaves the rest to Python.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, AttributeError):  # no sysconf (Windows): Spark's default
        return "1g"
    return f"{min(16, max(1, total // 4 // 2**30))}g"


@contextmanager
def spark_session(master: str = "local[*]", conf: Sequence[str] = ()) -> Iterator[object]:
    """A SparkSession for one run, stopped afterwards.

    ``master`` is passed through (``local[*]``, ``spark://host:7077``,
    ``yarn``, ``k8s://...``). For local masters the UI is off, shuffles use
    few partitions (a laptop has few cores) and the driver gets
    :func:`local_driver_memory`; ``--spark-conf`` wins over all three.
    Inside a running Spark application its active session is used as it is
    (master and configuration are then the application's) and left running.
    """
    check_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # embedded in a Spark application (or a test): use it, keep it
        yield active
        return
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if master.startswith("local"):
        settings.update(
            {
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "8",
                "spark.driver.memory": local_driver_memory(),
            }
        )
    settings.update(parse_conf(conf))
    builder = SparkSession.builder.master(master).appName("xlseg")
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
