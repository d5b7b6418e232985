"""Charter's Python SDK: sync and async clients of API v1, and guards for agent tools.

```python
from charter import Charter

with Charter("http://127.0.0.1:8080", key) as client:
    with client.start_run("support-bot", tenant_id="acme") as run:
        decision = run.tool_call("gmail.send_email", {"to": "bob@gmail.com"})
```

Framework guards are optional extras, imported only when used: ``charter.langchain``
(``charter-sdk[langchain]``) and ``charter.openai_agents`` (``charter-sdk[openai-agents]``).
"""

from ._actions import Action, Money, data_access, model_call, output, tool_call
from ._async import AsyncCharter, AsyncRun, AsyncViolationStream, StartingRun
from ._base import current_run
from ._errors import Blocked, CharterError, Halted, Refused, Unavailable, refusal_message
from ._guard import guard
from ._models import Decision, Outcome, Page, RunAction, RunInfo, RunStatus, Violation, ViolationEvent
from ._sse import SSEComment, SSEDecoder, SSEEvent
from ._sync import Charter, Run, ViolationStream

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AsyncCharter",
    "AsyncRun",
    "AsyncViolationStream",
    "Blocked",
    "Charter",
    "CharterError",
    "Decision",
    "Halted",
    "Money",
    "Outcome",
    "Page",
    "Refused",
    "Run",
    "RunAction",
    "RunInfo",
    "RunStatus",
    "SSEComment",
    "SSEDecoder",
    "SSEEvent",
    "StartingRun",
    "Unavailable",
    "Violation",
    "ViolationEvent",
    "ViolationStream",
    "__version__",
    "current_run",
    "data_access",
    "guard",
    "model_call",
    "output",
    "refusal_message",
    "tool_call",
]
