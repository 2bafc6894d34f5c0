"""State calling rules that are stricter than the federal ones, as data.

Each rule carries the citation it was taken from. The statutes mostly cover
telephone solicitation (sales calls). The engine applies them to every call it
places, because it cannot tell a sales call from a reminder. The 24-hour call
limits count calls "on the same subject", but the engine counts every call to the
number, from any campaign, which is stricter.

These are engineering choices, not legal advice. To add or change a state,
edit STATE_RULES below and the table in docs/calling-rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from functools import lru_cache
from types import MappingProxyType

import holidays


@dataclass(frozen=True)
class StateRule:
    """Calling restrictions of one US state, in the called party's local time.

    Attributes:
        code: USPS two-letter code.
        name: The state's name, used in reasons.
        start: First allowed local time of day, inclusive.
        end: Local time of day at which calls must stop, exclusive.
        source: Citation of the statute or regulation the rule comes from.
        sunday_start: Start on Sundays when it differs from other days.
        sunday_end: End on Sundays when it differs from other days.
        no_sundays: No calls at all on Sundays.
        no_state_holidays: No calls on the state's holidays, as listed by the
            ``holidays`` package for that subdivision.
        max_calls_per_24h: Maximum calls to one number in any 24 hours.
        hours_zone: A fixed zone the statute states its hours in. The hours
            are then checked in this zone as well as in the contact's zones.
    """

    code: str
    name: str
    start: time
    end: time
    source: str
    sunday_start: time | None = None
    sunday_end: time | None = None
    no_sundays: bool = False
    no_state_holidays: bool = False
    max_calls_per_24h: int | None = None
    hours_zone: str | None = None

    def hours_on(self, isoweekday: int) -> tuple[time, time]:
        """Return the (start, end) local hours that apply on an ISO weekday."""
        if isoweekday == 7 and self.sunday_start is not None:
            return self.sunday_start, self.sunday_end or self.end
        return self.start, self.end


_RULES = (
    StateRule(
        code="AL",
        name="Alabama",
        start=time(8),
        end=time(20),
        no_sundays=True,
        no_state_holidays=True,
        source="Ala. Admin. Code r. 770-X-5-.17(1)(b)",
    ),
    StateRule(
        code="FL",
        name="Florida",
        start=time(8),
        end=time(20),
        max_calls_per_24h=3,
        source="Fla. Stat. § 501.616(6)(a)-(b) (as amended in 2021 by SB 1120)",
    ),
    # TODO(rules): La. Rev. Stat. § 45:844.31 also bans solicitation while a
    # declared state of emergency lasts. The engine cannot know when one is in
    # force, so it would call during one.
    StateRule(
        code="LA",
        name="Louisiana",
        start=time(8),
        end=time(20),
        no_sundays=True,
        no_state_holidays=True,
        source="La. Rev. Stat. § 45:811(2)-(3)",
    ),
    StateRule(
        code="MD",
        name="Maryland",
        start=time(8),
        end=time(20),
        max_calls_per_24h=3,
        source=(
            "Md. Code Ann., Com. Law § 14-4501 et seq. "
            "(Stop the Spam Calls Act of 2023)"
        ),
    ),
    StateRule(
        code="MS",
        name="Mississippi",
        start=time(8),
        end=time(20),
        no_sundays=True,
        # The statute states its hours in Central Standard Time. Checking
        # them in fixed UTC-6 as well as local time honours both readings.
        hours_zone="Etc/GMT+6",
        source="Miss. Code Ann. § 77-3-723(1)",
    ),
    StateRule(
        code="OK",
        name="Oklahoma",
        start=time(8),
        end=time(20),
        max_calls_per_24h=3,
        source=(
            "Okla. Stat. tit. 15, § 775C.1 et seq. (Telephone Solicitation Act of 2022)"
        ),
    ),
    StateRule(
        code="TX",
        name="Texas",
        start=time(9),
        end=time(21),
        sunday_start=time(12),
        sunday_end=time(21),
        source="Tex. Bus. & Com. Code § 301.051",
    ),
    StateRule(
        code="WA",
        name="Washington",
        start=time(8),
        end=time(20),
        source="Wash. Rev. Code § 19.158.040(2)",
    ),
)

STATE_RULES: MappingProxyType[str, StateRule] = MappingProxyType(
    {rule.code: rule for rule in _RULES}
)


def state_holiday(code: str, day: date) -> str | None:
    """Return the name of the state holiday on ``day``, or None.

    Observed days (a Monday after a Sunday holiday, for example) count too.
    """
    return _holidays(code, day.year).get(day)


@lru_cache(maxsize=256)
def _holidays(code: str, year: int) -> holidays.HolidayBase:
    # TODO(rules): holidays that a governor declares at short notice, as
    # Louisiana's did for 2023-07-03, are not in the holidays package, so the
    # engine would call on them.
    return holidays.country_holidays("US", subdiv=code, years=year)
