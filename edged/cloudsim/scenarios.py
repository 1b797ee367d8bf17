"""How the simulated backend answers: one scenario per trade, chosen by the payment code.

The last two digits of a payment code pick the scenario, so a person at a kiosk (or a test)
chooses the outcome by the code they show; any other ending uses the configured default.

| code ends | scenario             | what the shopper experiences                          |
| --------- | -------------------- | ----------------------------------------------------- |
| `01`      | `decline`            | declined (insufficient funds)                         |
| `02`      | `user_paying`        | confirm on the phone; paid after `user_paying_s`      |
| `03`      | `never_confirms`     | confirm on the phone, never does: the kiosk reverses  |
| `04`      | `no_answer`          | the backend stays silent until the kiosk reverses     |
| `05`      | `pay_during_reverse` | confirms on the phone just as the kiosk reverses      |
| `06`      | `unknown`            | the backend cannot tell: the kiosk reverses at once   |
| other     | the default          | `success` unless configured otherwise                 |

Native QR orders have no code: they follow `native_scenario` (`success` pays after
`native_pay_after_s`; `user_paying` after `user_paying_s`; anything else never pays).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scenario(StrEnum):
    SUCCESS = "success"
    DECLINE = "decline"
    USER_PAYING = "user_paying"
    NEVER_CONFIRMS = "never_confirms"
    NO_ANSWER = "no_answer"
    PAY_DURING_REVERSE = "pay_during_reverse"
    UNKNOWN = "unknown"


BY_SUFFIX: dict[str, Scenario] = {
    "01": Scenario.DECLINE,
    "02": Scenario.USER_PAYING,
    "03": Scenario.NEVER_CONFIRMS,
    "04": Scenario.NO_ANSWER,
    "05": Scenario.PAY_DURING_REVERSE,
    "06": Scenario.UNKNOWN,
}


class RefundScenario(StrEnum):
    """How the simulated channel answers a refund request (`Settings.refund_scenario`)."""

    SUCCESS = "success"
    """Refunded at once."""
    PROCESSING = "processing"
    """PROCESSING first; a query after `refund_processing_s` finds it SUCCESS."""
    ABNORMAL = "abnormal"
    """PROCESSING first; then ABNORMAL (the shopper's account could not take the money)."""
    CLOSED = "closed"
    """Refused outright."""
    SILENT = "silent"
    """Recorded, never answered until queried: the device's query schedule is exercised."""


@dataclass
class Settings:
    scenario: Scenario = Scenario.SUCCESS
    """The default for codes whose ending selects nothing."""
    user_paying_s: float = 3.0
    native_scenario: Scenario = Scenario.SUCCESS
    native_pay_after_s: float = 1.0
    refund_scenario: RefundScenario = RefundScenario.SUCCESS
    refund_processing_s: float = 1.0
    result_ttl_s: float = 120.0
    """How long a signed result stays valid (its `exp`)."""


def scenario_for_code(code: str, default: Scenario) -> Scenario:
    return BY_SUFFIX.get(code[-2:], default)
