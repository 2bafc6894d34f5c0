"""Names, timeouts and retry policies shared by the workflows.

They live here, once, so that workflows, activities, the worker and the API
agree on them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

ACTIVITY_PLACE_CALL = "place_call"
ACTIVITY_FINISH_ATTEMPT = "finish_attempt"
ACTIVITY_LIST_MEMBERS = "list_members"
ACTIVITY_COUNT_UNFINISHED = "count_unfinished"
ACTIVITY_FINAL_AMONG = "final_among"
ACTIVITY_SET_CAMPAIGN_STATUS = "set_campaign_status"
ACTIVITY_WAKE_MEMBERS = "wake_members"
ACTIVITY_NOTIFY_CAMPAIGN = "notify_campaign"

SIGNAL_CONTACT_IDLE = "contact_idle"
SIGNAL_CONTACT_FINISHED = "contact_finished"

CAMPAIGN_ID = SearchAttributeKey.for_keyword("OutboundCampaignId")
MEMBER_STATE = SearchAttributeKey.for_keyword("OutboundMemberState")
LAST_OUTCOME = SearchAttributeKey.for_keyword("OutboundLastOutcome")
SEARCH_ATTRIBUTES = (CAMPAIGN_ID, MEMBER_STATE, LAST_OUTCOME)

# Placing a call includes waiting for a free line, so it heartbeats.
PLACE_CALL_TIMEOUT = timedelta(minutes=2)
PLACE_CALL_HEARTBEAT = timedelta(seconds=30)
SHORT_ACTIVITY_TIMEOUT = timedelta(seconds=60)

# A 429 from the provider is retried here without using up an attempt.
PLACE_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=["InvalidCampaign"],
)
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
# A contact's notice to its campaign gives up after a minute: the campaign
# checks the database every few minutes, so a lost notice only delays it.
NOTIFY_TIMEOUT = timedelta(seconds=10)
NOTIFY_GIVE_UP = timedelta(minutes=1)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)
)

# A contact whose next step is further away than this tells the campaign it is
# idle, so the campaign can start another contact in its place.
IDLE_AFTER = timedelta(seconds=60)


def campaign_workflow_id(campaign_id: int, prefix: str = "") -> str:
    """Return the campaign's workflow id, such as ``campaign-42``.

    The prefix lets several deployments share one Temporal namespace.
    """
    return f"{prefix}campaign-{campaign_id}"


def contact_workflow_id(campaign_workflow_id: str, contact_id: int) -> str:
    """Return a contact's workflow id, such as ``campaign-42/contact-7``."""
    return f"{campaign_workflow_id}/contact-{contact_id}"


def initial_search_attributes(campaign_id: int, state: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(CAMPAIGN_ID, str(campaign_id)),
            SearchAttributePair(MEMBER_STATE, state),
        ]
    )


def campaign_search_attributes(campaign_id: int) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(CAMPAIGN_ID, str(campaign_id))])
