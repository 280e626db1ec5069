"""``from aiges.utils.log import log`` for upstream wrappers: plain ``logging`` loggers,
configured by aiges-load like every other log line (no handlers added here)."""
import logging

log = logging.getLogger("wrapper")


def getLogger(fmt=None, level=None, name="wrapper"):  # noqa: N802 (upstream name)
    logger = logging.getLogger(name)
    if level is not None:
        logger.setLevel(level)
    return logger


def getFileLogger(fmt=None, level=None, name="wrapper"):  # noqa: N802
    """Upstream wrote to /log/app; here the service's log destination ([log] file) is used."""
    return getLogger(fmt, level, name)
