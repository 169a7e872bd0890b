"""Alert delivery: every alert on the alerts topic to every configured receiver, fast.

One module per receiver (``alertmanager``, ``webhook``, ``slack``, ``stdout``), each a pure
payload function plus a small notifier that sends it; ``runner`` reads the topic once per
receiver (its own consumer group) and commits after the receiver acknowledged; ``audit``
records each delivery in ClickHouse without delaying it.
"""

from slowleak.streams.delivery.alertmanager import AlertmanagerNotifier, alertmanager_payload
from slowleak.streams.delivery.audit import DeliveryAudit, DeliveryRecord
from slowleak.streams.delivery.base import (
    Backoff,
    DeliveryError,
    Notifier,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from slowleak.streams.delivery.runner import (
    DeliveryRunner,
    ReceiverLoop,
    build_notifier,
    consumer_group,
    deliver,
    make_test_alert,
    run_delivery,
    send_test_alert,
)
from slowleak.streams.delivery.slack import SlackNotifier, slack_payload
from slowleak.streams.delivery.stdout import StdoutNotifier, alert_line
from slowleak.streams.delivery.webhook import (
    WebhookNotifier,
    sign,
    verify_signature,
    webhook_payload,
)

__all__ = [
    "AlertmanagerNotifier",
    "Backoff",
    "DeliveryAudit",
    "DeliveryError",
    "DeliveryRecord",
    "DeliveryRunner",
    "Notifier",
    "PermanentDeliveryError",
    "ReceiverLoop",
    "RetryableDeliveryError",
    "SlackNotifier",
    "StdoutNotifier",
    "WebhookNotifier",
    "alert_line",
    "alertmanager_payload",
    "build_notifier",
    "consumer_group",
    "deliver",
    "make_test_alert",
    "run_delivery",
    "send_test_alert",
    "sign",
    "slack_payload",
    "verify_signature",
    "webhook_payload",
]
