"""Constants upstream wrappers import with ``from aiges.core.types import *``."""
STRING = 0
AUDIO = 1
IMAGE = 2
VIDEO = 3

DataText = 0
DataAudio = 1
DataImage = 2
DataVideo = 3
DataPer = 4
Types = {0: "text", 1: "audio", 2: "image", 3: "video"}

DataBegin = 0
DataContinue = 1
DataEnd = 2
DataOnce = 3
Once = DataOnce
Status = {0: "begin", 1: "continue", 2: "end", 3: "once"}

THREAD_MODE = "thread"
PROCESS_MODE = "process"

# Error codes a wrapper may return (upstream aiges.errors).
OK = 0
INIT_ERROR = 30001
USER_INIT_ERROR = 30002
USER_EXEC_ERROR = 30003
