"""Masking sensitive customer data: the one layer every page, partial and form goes through.

Two parts work together:

* **Fields.** Values under a sensitive key (``card``, ``address``, ``date_of_birth``…) are shown
  in their masked form by the ``mask`` template filter and by ``mask_data`` (audit payloads,
  exports).
* **Free text.** ``MaskingMiddleware`` rewrites every text response (pages, htmx partials, JSON)
  before it leaves: each known sensitive value of the customers whose journeys, audit records or
  core-bank rows the request loaded (card numbers and card tokens, the full address and its
  street line, date of birth, phone, e-mail, and the sensitive values in the journey's request
  and facts) is replaced by its masked form, and so is anything shaped like a card number (a
  Luhn-valid run of 13 to 19 digits). Customers are collected by a ``post_init`` hook on the models
  that carry a customer reference, so a new page cannot forget to register them.

A card has one masked form everywhere — ``•••• 2256``, the last four digits of the real card
number — whether the page shows its number, its token or its last four digits.

A person whose team holds a ``SensitiveDataGrant`` may reveal one value with a stated reason
("break glass", audited); the revealing response marks that value as revealed
(``reveal``) so the layer lets it through on that response only. Attachments (audit exports) are
left to the exporter, which masks the displayed fields itself and keeps the hashed record intact.
"""

from __future__ import annotations

import contextvars
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MASK = "••••"

# Key name → kind of sensitive value. Keys are matched at any depth of a JSON value.
SENSITIVE_KEYS = {
    "card": "card",
    "card_number": "card",
    "pan": "card",
    "date_of_birth": "dob",
    "dob": "dob",
    "birth_date": "dob",
    "address": "address",
    "new_address": "address",
    "old_address": "address",
    "full_address": "address",
    "phone": "phone",
    "email": "email",
}
# Keys that hold the last four digits of a card: not secret, but shown in the card's one masked
# form so a page never mixes "Card last4 2256" with "Card •••• 2256".
LAST4_KEYS = {"last4", "card_last4"}
SECTIONS = ("request", "facts")
# Known values shorter than this are not searched for in text (a stray "1" or "Flat 2").
MIN_VALUE_LENGTH = 6

# A run of 13 to 19 digits, optionally grouped by single spaces or hyphens, standing on its own:
# not inside a longer number nor inside a word such as a hash, which must be shown as it is.
CARD_SHAPED = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?!\w)")


def is_sensitive(key: Any) -> bool:
    return str(key) in SENSITIVE_KEYS


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def masked_card(last4: str) -> str:
    return f"{MASK} {last4}" if last4 else MASK


def masked_address(value: str) -> str:
    # An address keeps only its last part's first word (the town) so a person can still tell
    # two addresses apart without seeing where the customer lives.
    parts = [p.strip() for p in str(value).split(",") if p.strip()]
    return f"{MASK}, {parts[-1].split()[0]}" if len(parts) > 1 else MASK


def masked_phone(value: str) -> str:
    digits = re.sub(r"\D", "", str(value))
    return f"{MASK} {digits[-2:]}" if len(digits) > 4 else MASK


def masked_email(value: str) -> str:
    local, _, domain = str(value).partition("@")
    return f"{local[:1]}{MASK}@{domain}" if domain else MASK


def _card_last4(value: Any) -> str:
    """The real last four digits of a card given by number or token ("" when unknown)."""
    text = str(value)
    digits = re.sub(r"[ -]", "", text)
    if digits.isdigit() and len(digits) >= 12:
        return digits[-4:]
    masker = current()
    if masker is not None:
        return masker.card_last4(text)
    return resolve_card_last4([text]).get(text, "")


def mask_value(key: str, value: Any) -> Any:
    """The masked form of ``value`` under ``key``; other keys pass through unchanged."""
    key = str(key)
    if isinstance(value, str) and MASK in value:  # already masked (a masked payload shown again)
        return value
    if key in LAST4_KEYS and value not in (None, ""):
        return masked_card(str(value)[-4:])
    kind = SENSITIVE_KEYS.get(key)
    if kind is None or value in (None, ""):
        return value
    if kind == "card":
        return masked_card(_card_last4(value))
    if kind == "dob":
        return f"{MASK}-••-••"
    if kind == "phone":
        return masked_phone(value)
    if kind == "email":
        return masked_email(value)
    return masked_address(value)


def mask_data(value: Any, key: str = "") -> Any:
    """``value`` with every sensitive key masked, at any depth."""
    if isinstance(value, dict):
        return {k: mask_data(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_data(v, key) for v in value]
    if key and (is_sensitive(key) or key in LAST4_KEYS):
        return mask_value(key, value)
    return value


def field_path(section: str, key: str) -> str:
    return f"{section}.{key}"


def lookup_field(context: dict[str, Any], path: str) -> Any:
    """The raw value at ``section.key`` in a journey's context; ``KeyError`` for anything that
    is not a sensitive field of the request or the facts."""
    section, _, key = path.partition(".")
    if section not in SECTIONS or not is_sensitive(key):
        raise KeyError(path)
    values = context.get(section) or {}
    if key not in values:
        raise KeyError(path)
    return values[key]


# --- known values of customers ---------------------------------------------------------------


def resolve_card_last4(tokens: Iterable[str]) -> dict[str, str]:
    from journeys.corebank import get_core_bank

    return get_core_bank().card_last4(list(tokens))


def _context_values(context: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """(key, value) of every sensitive value in a journey's request and facts, at any depth."""

    def walk(value: Any, key: str = "") -> Iterable[tuple[str, Any]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                yield from walk(v, key)
        elif key and is_sensitive(key) and value not in (None, ""):
            yield key, value

    for section in SECTIONS:
        yield from walk((context or {}).get(section) or {})


def _flexible(text: str) -> str:
    """A pattern for ``text`` that tolerates other spacing and a comma left out."""
    words = [re.escape(w) for w in re.split(r"[\s,]+", text.strip()) if w]
    return r",?\s*".join(words)


def _digits_pattern(digits: str) -> str:
    return r"[ -]?".join(re.escape(d) for d in digits)


class Masker:
    """The sensitive values one response must not show, and how to mask text with them.

    Customers and journeys are registered as the request loads them; their values are fetched
    once, in two queries, the first time text is masked after a registration."""

    def __init__(self) -> None:
        self.customers: set[str] = set()
        self.journeys: set[int] = set()
        self.extra: list[tuple[str, Any]] = []
        self.revealed: set[str] = set()
        self._resolved: tuple[frozenset[str], frozenset[int], int] | None = None
        self._entries: list[_Entry] = []
        self._tokens: dict[str, str] = {}

    # registration
    def add_customer(self, ref: str | None) -> None:
        if ref:
            self.customers.add(ref)

    def add_journey(self, pk: int | None, customer_ref: str | None = None) -> None:
        if pk:
            self.journeys.add(pk)
        self.add_customer(customer_ref)

    def add_value(self, key: str, value: Any) -> None:
        """A sensitive value the page may show that no registered customer carries."""
        if value not in (None, ""):
            self.extra.append((key, value))

    def add_card(self, token: str | None, number: str | None) -> None:
        """A card row the page loaded: its number and its token, masked as its last four digits."""
        if number:
            self.add_value("card", number)
            if token:
                self._tokens[token] = str(number)[-4:]
                self.add_value("token", token)

    def reveal(self, value: Any) -> None:
        """Let ``value`` through on this response: a person broke glass for it (audited)."""
        if value not in (None, ""):
            self.revealed.add(str(value))

    # resolution
    def _resolve(self) -> None:
        state = (frozenset(self.customers), frozenset(self.journeys), len(self.extra))
        if self._resolved == state:
            return
        from journeys.corebank import get_core_bank
        from journeys.models import Journey

        values: list[tuple[str, Any]] = list(self.extra)
        customers = set(self.customers)
        if self.journeys:
            # One query: each journey's request and facts, and each of its proposals' parameters
            # (a new address or a card named in a proposal is as sensitive in a summary).
            seen: set[int] = set()
            rows = Journey.objects.filter(pk__in=self.journeys).values_list(
                "pk", "customer_ref", "context", "proposals__params", "proposals__maker_user_id"
            )
            edited = False
            for pk, ref, context, params, maker in rows:
                edited = edited or maker is not None
                customers.add(ref)
                if pk not in seen:
                    seen.add(pk)
                    values.extend(_context_values(context))
                if params:
                    values.extend(_context_values({"request": params}))
            if edited:
                # What an edit replaced is no longer on the proposal, but the edit's event still quotes
                # it. Only an edit that widens (any change to a sensitive value) makes its editor the
                # maker, so journeys without a maker have nothing to look up.
                from journeys.models import Event

                edits = Event.objects.filter(journey_id__in=self.journeys, kind=Event.Kind.ACTION_EDITED)
                for data in edits.values_list("data", flat=True):
                    values.extend(_context_values({"request": (data or {}).get("before") or {}}))
        known = get_core_bank().sensitive_values(sorted(customers)) if customers else {}
        for data in known.values():
            for card in data.get("cards", []):
                last4 = str(card.get("number", ""))[-4:]
                if card.get("token"):
                    self._tokens[card["token"]] = last4
                    values.append(("token", card["token"]))
                if card.get("number"):
                    values.append(("card", card["number"]))
            for key in ("address", "date_of_birth", "phone", "email"):
                if data.get(key):
                    values.append((key, data[key]))
        self._build(values)
        self._resolved = state

    def _build(self, values: list[tuple[str, Any]]) -> None:
        """One small pattern per way a value may be written, each with a literal ``needle`` that
        any match contains: a page is scanned only for the values whose needle it contains, each
        pattern on its own (a literal-prefixed pattern scans fast; one big alternation does not)."""
        entries: list[_Entry] = []

        def add(pattern: str, needle: str, masked: str) -> None:
            entries.append(_Entry(re.compile(pattern), needle, masked))

        def add_text(value: str, masked: str) -> None:
            """``value`` in any case and spacing, and in its HTML-escaped form when that differs."""
            lowered = value.lower()
            needle = max(re.split(r"[\s,]+", lowered), key=len)
            add(_flexible(lowered), needle, masked)
            escaped = html.escape(lowered)
            if escaped != lowered:
                add(_flexible(escaped), html.escape(needle), html.escape(masked))

        seen: set[tuple[str, str]] = set()
        for key, raw in values:
            text = str(raw).strip()
            kind = "token" if key == "token" else SENSITIVE_KEYS.get(key, key)
            # A value this short would mask ordinary text everywhere (and garble the page).
            if len(text) < MIN_VALUE_LENGTH or (kind, text) in seen:
                continue
            seen.add((kind, text))
            if kind == "token":
                add(re.escape(text.lower()), text.lower(), masked_card(self._tokens.get(text, "")))
            elif kind == "card":
                digits = re.sub(r"\D", "", text)
                if len(digits) >= 12:
                    add(_digits_pattern(digits), digits[-2:], masked_card(digits[-4:]))
                else:  # a token in the journey's facts
                    last4 = self._tokens.get(text) or self.card_last4(text)
                    add(re.escape(text.lower()), text.lower(), masked_card(last4))
            elif kind == "dob":
                add(re.escape(text), text, f"{MASK}-••-••")
                parts = text.split("-")
                if len(parts) == 3:  # also as written by people: 14/03/1975
                    written = f"{parts[2]}/{parts[1]}/{parts[0]}"
                    add(re.escape(written), written, f"••/••/{MASK}")
            elif kind == "phone":
                digits = re.sub(r"\D", "", text)
                if len(digits) >= 6:
                    add(_digits_pattern(digits), digits[-2:], masked_phone(text))
                    if digits.startswith("44"):  # the national form: 07700 900012
                        add(_digits_pattern("0" + digits[2:]), digits[-2:], masked_phone(text))
            elif kind == "email":
                add_text(text, masked_email(text))
            else:  # an address, and its first line alone (house number and street)
                add_text(text, masked_address(text))
                first = text.split(",")[0].strip()
                if "," in text and len(first) >= 6:
                    add_text(first, MASK)
        self._entries = entries

    def card_last4(self, token: str) -> str:
        if token not in self._tokens:
            self._tokens.update(resolve_card_last4([token]))
        return self._tokens.get(token, "")

    # masking
    def _card_shaped(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if match.group(0) in self.revealed or not luhn_valid(digits):
            return match.group(0)
        return masked_card(digits[-4:])

    def mask_text(self, text: str) -> str:
        self._resolve()
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters lengthen when lowered: match in place
            lowered = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
        found: list[tuple[int, int, str]] = []
        for entry in self._entries:
            if entry.needle in lowered:
                found.extend((m.start(), m.end(), entry.masked) for m in entry.pattern.finditer(lowered))
        if found:
            # Where two matches overlap, the one that starts first and is longest wins.
            found.sort(key=lambda f: (f[0], f[0] - f[1]))
            out: list[str] = []
            at = 0
            for start, end, masked in found:
                if start < at:
                    continue
                # A revealed value stays as it is, and so does every part of it.
                out += [text[at:start], text[start:end] if text[start:end] in self.revealed else masked]
                at = end
            text = "".join(out) + text[at:]
        return CARD_SHAPED.sub(self._card_shaped, text)

    def mask_markup(self, text: str) -> str:
        """``mask_text`` for HTML: escaped forms of values (O&#x27;Brien) are patterns too."""
        return self.mask_text(text)

    def mask_for_everyone(self, text: str) -> str:
        """``mask_markup`` with nothing revealed: for HTML that other people's answers reuse."""
        revealed, self.revealed = self.revealed, set()
        try:
            return self.mask_markup(text)
        finally:
            self.revealed = revealed


@dataclass(frozen=True)
class _Entry:
    pattern: re.Pattern[str]
    needle: str
    masked: str


_current: contextvars.ContextVar[Masker | None] = contextvars.ContextVar("handoff_masker", default=None)


def current() -> Masker | None:
    """The masker of the request being served, or None outside a request (tasks, shells)."""
    return _current.get()


def mask_text(text: str) -> str:
    """Mask free text with the current request's known values (and card-shaped numbers)."""
    masker = current() or Masker()
    return masker.mask_text(text)


def register_journey(pk: int | None, customer_ref: str | None) -> None:
    masker = current()
    if masker is not None:
        masker.add_journey(pk, customer_ref)


def register_card(token: str | None, number: str | None) -> None:
    masker = current()
    if masker is not None:
        masker.add_card(token, number)


def register_customer(ref: str | None) -> None:
    masker = current()
    if masker is not None:
        masker.add_customer(ref)


MASKED_CONTENT_TYPES = ("text/html", "text/plain", "application/json", "text/csv", "application/x-ndjson")


class MaskingMiddleware:
    """Masks every text response of the console before it leaves (see the module docstring)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        masker = Masker()
        request.masker = masker
        token = _current.set(masker)
        try:
            response = self.get_response(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            content_type = response.get("Content-Type", "")
            if (
                not getattr(response, "streaming", False)
                and response.content
                and content_type.startswith(MASKED_CONTENT_TYPES)
                and "attachment" not in response.get("Content-Disposition", "")
            ):
                charset = getattr(response, "charset", None) or "utf-8"
                text = response.content.decode(charset, errors="replace")
                masked = masker.mask_markup(text) if content_type.startswith("text/html") else masker.mask_text(text)
                if masked != text:
                    response.content = masked.encode(charset)
            return response
        finally:
            _current.reset(token)


# --- forms --------------------------------------------------------------------------------------


def masked_initial(values: dict[str, Any], revealed: Iterable[str] = ()) -> dict[str, Any]:
    """A form's initial data with every sensitive value masked, except the ``revealed`` keys (a
    person broke glass for them, with a reason, audited)."""
    shown = set(revealed)
    return {k: v if k in shown or not is_sensitive(k) else mask_value(k, v) for k, v in values.items()}


def keep_masked(submitted: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Submitted form data where a sensitive field still holds its masked form (the person did not
    touch it) carries the stored value instead: a masked form never overwrites what it masks."""
    kept = dict(submitted)
    for key, value in submitted.items():
        if is_sensitive(key) and key in stored and isinstance(value, str) and MASK in value:
            kept[key] = stored[key]
    return kept
