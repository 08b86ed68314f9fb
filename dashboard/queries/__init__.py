"""Every SQL query the dashboard runs, in one package, parameterised, over clickhouse-connect:
``wall`` (live figures of the wall screen), ``calls`` (102's answering and queue) and ``managers``
(CompStat, trends, response times, the incident list, integrity and audit over months of history).
Pages import this package."""

from dozor.dashboard.queries.calls import *  # noqa: F403
from dozor.dashboard.queries.calls import __all__ as _calls
from dozor.dashboard.queries.managers import *  # noqa: F403
from dozor.dashboard.queries.managers import __all__ as _managers
from dozor.dashboard.queries.wall import *  # noqa: F403
from dozor.dashboard.queries.wall import __all__ as _wall

__all__ = [*_wall, *_managers, *_calls]
