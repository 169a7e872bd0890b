"""Cost per call, per event-time window, against budgets and against its own history.

Pure: no faust, Kafka or ClickHouse client. :class:`PriceBook` prices calls;
:class:`CostWindows` counts them in 1-minute windows for ClickHouse ``cost_windows_1m`` and
tells :class:`CostSpike` about each closed minute; :class:`CostBudget` pages on budget burn rates.
"""

from slowleak.models.settings import Budget, PriceOverride
from slowleak.streams.core.cost.budget import CostBudget
from slowleak.streams.core.cost.prices import Price, PriceBook, Priced
from slowleak.streams.core.cost.spike import CostSpike
from slowleak.streams.core.cost.windows import (
    WINDOW_COLUMNS,
    WINDOW_TABLE,
    CostWindows,
    MinuteTotals,
    latency_quantile_ms,
)

__all__ = [
    "WINDOW_COLUMNS",
    "WINDOW_TABLE",
    "Budget",
    "CostBudget",
    "CostSpike",
    "CostWindows",
    "MinuteTotals",
    "Price",
    "PriceBook",
    "PriceOverride",
    "Priced",
    "latency_quantile_ms",
]
