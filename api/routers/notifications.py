"""Alert notification subscriptions: by customer, site and severity, by e-mail or incoming webhook."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api import notification_failures, notifications
from api.deps import AlertReader, SessionDep, SettingsDep
from api.schemas import SubscriptionId, SubscriptionIn, SubscriptionOut
from fleet.settings import Settings
from fleet.tables import NotificationSubscription

router = APIRouter(prefix="/notifications/subscriptions", tags=["notifications"])


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(sess: SessionDep, who: AlertReader, settings: SettingsDep):
    """The caller's subscriptions (an admin sees everyone's), each suspended one with the reason, each whose
    newest notification is being retried or was given up with what went wrong."""
    subs = notifications.subscriptions_of(sess, who)
    suspended = notifications.suspended(sess, subs)
    failing = notification_failures.problems(sess, subs, max_attempts=settings.route_max_attempts)
    return [_out(sub, settings, suspended.get(sub.id), failing.get(sub.id)) for sub in subs]


@router.post(
    "",
    response_model=SubscriptionOut,
    status_code=201,
    responses={
        200: {"model": SubscriptionOut, "description": "The same subscription exists: it is answered"}
    },
)
def subscribe(
    body: SubscriptionIn, sess: SessionDep, who: AlertReader, settings: SettingsDep, response: Response
):
    """Subscribe the caller; a customer or site must be one the caller may see (a customer: its own).

    The caller's same subscription (channel, address, customer, site, severity) again answers the existing
    one with 200: a request repeated after a lost answer subscribes once. Accepted even when its channel
    cannot send yet (e-mail without SMTP); `warning` then says so."""
    sub, added = notifications.subscribe(sess, who, body, settings=settings)
    if not added:
        response.status_code = 200
    return _out(sub, settings)


@router.delete("/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: SubscriptionId, sess: SessionDep, who: AlertReader) -> None:
    """Delete one of the caller's subscriptions (an admin: anyone's); its pending notifications are cancelled
    unless another live subscription of their address covers them."""
    notifications.unsubscribe(sess, who, subscription_id)


def _out(
    sub: NotificationSubscription,
    settings: Settings,
    suspended: str | None = None,
    failing: str | None = None,
) -> SubscriptionOut:
    return SubscriptionOut.model_validate(sub).model_copy(
        update={
            "address": notifications.shown_address(sub),
            "warning": notifications.unsent(settings, sub.channel),
            "suspended_reason": suspended,
            "delivery_problem": failing,
        }
    )
