"""rtc_metrics: measure reasoning-trace collapse.

Public API::

    from rtc_metrics import parse_trace, get_format, TraceFormat, summarize
    t = parse_trace("<think>2+2=4</think>4", "qwen3")
    t.status, t.reasoning, t.answer, t.anomalies
"""

from rtc_metrics.detection import (
    Detection,
    FormatDetectionError,
    delimiters_lost_in_decoding,
    detect_format,
    explain_detection,
)
from rtc_metrics.formats import TraceFormat, UnknownFormatError, get_format, list_formats, register_format
from rtc_metrics.masking import encode_example
from rtc_metrics.parsing import Anomaly, ParsedTrace, TraceStatus, is_blank, parse_trace, prompt_opens_trace
from rtc_metrics.stats import TraceSummary, macro_average, pooled, summarize, wilson_interval

__version__ = "0.1.0"

__all__ = [
    "Anomaly",
    "Detection",
    "FormatDetectionError",
    "ParsedTrace",
    "TraceFormat",
    "TraceStatus",
    "TraceSummary",
    "UnknownFormatError",
    "delimiters_lost_in_decoding",
    "detect_format",
    "encode_example",
    "explain_detection",
    "get_format",
    "is_blank",
    "list_formats",
    "macro_average",
    "parse_trace",
    "pooled",
    "prompt_opens_trace",
    "register_format",
    "summarize",
    "wilson_interval",
]
