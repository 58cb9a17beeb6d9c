"""The channel a subscription names, built from its options and the environment.

Credentials never live in a subscription file: SMTP settings come from
`REPORTRUNNER_SMTP_*`, a webhook's URL from the variable the subscription names.
"""

from __future__ import annotations

import os

from reports.delivery._envelope import Channel
from reports.delivery._subscription import Subscription
from reports.errors import SpecError


def make_channel(subscription: Subscription) -> Channel:
    spec = subscription.channel
    if spec.kind == "email":
        from reports.delivery._email import EmailChannel, SmtpSettings

        return EmailChannel(SmtpSettings(), attach=spec.attach)
    if spec.kind == "webhook":
        from reports.delivery._webhook import WebhookChannel

        url = os.environ.get(spec.url_env or "", "")
        if not url:
            raise SpecError(
                f"{subscription.name}: the webhook's URL variable {spec.url_env} is not set"
            )
        return WebhookChannel(url)
    from reports.delivery._archive import ArchiveChannel

    return ArchiveChannel(spec.url)
