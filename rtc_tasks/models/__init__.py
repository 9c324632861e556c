"""lm-eval model backends of the rtc plugin; importing this package registers them.

lm-eval has no plugin discovery and builds the model before it imports task code, so ``rtc eval``
(or a script) must import this package before ``--model rtc-chat-completions`` can resolve.
"""

from rtc_tasks.models import chat_completions

__all__ = ["chat_completions"]
