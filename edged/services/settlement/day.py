"""The business day (营业日): which day a moment belongs to, given the shop's cut-over.

A sale paid at 01:30 belongs to the day before when the cut-over is 04:00, because the shop
is still in yesterday's shift. Pure functions, so the backend (and the simulated cloud) can
apply exactly the same rule to the figures it received.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class DayError(ValueError):
    """A cut-over or time zone that cannot be used; the message names it."""


def shop_zone(name: str | None) -> tzinfo:
    """The IANA zone `name`, or the board's local zone when None."""
    if name is None:
        local = datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DayError(f"unknown time zone {name!r}") from None


def parse_cutover(text: str) -> time:
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise DayError(f"cut-over must be HH:MM, got {text!r}") from None


def business_day(moment: datetime, zone: tzinfo, cutover: time) -> date:
    """The business day of an aware moment."""
    local = moment.astimezone(zone)
    shift = timedelta(hours=cutover.hour, minutes=cutover.minute)
    return (local.replace(tzinfo=None) - shift).date()


def day_bounds(day: date, zone: tzinfo, cutover: time) -> tuple[datetime, datetime]:
    """[start, end) of a business day as aware moments in the shop's zone."""
    start = datetime.combine(day, cutover).replace(tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), cutover).replace(tzinfo=zone)
    return start, end


def next_cutover(now: datetime, zone: tzinfo, cutover: time) -> datetime:
    """The first cut-over strictly after `now`."""
    _, end = day_bounds(business_day(now, zone, cutover), zone, cutover)
    return end
