"""Bad input gets a clear 4xx or a form error, never a 500 — on every URL, for every role.

Walks the same URL table as the permission matrix, but sends garbage: junk query parameters on
every GET, and on every POST junk values for every field name any console form uses (and an empty
body). Each request runs in a rolled-back savepoint.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse

from .test_permission_matrix import OTHER_METHODS, TABLE, objects  # noqa: F401  (fixture)

JUNK = {
    # Numbers, amounts, dates and ids that are not.
    "amount": "12,50€",
    "maximum": "-1e309",
    "limit": "NaN",
    "page": "0x10",
    "after": "-5",
    "cursor": "' OR 1=1 --",
    "since": "yesterday",
    "start": "2026-02-30",
    "end": "not a date",
    "compare_start": "31/31/2031",
    "compare_end": "",
    "window_minutes": "forever",
    "approval_timeout_minutes": "-3",
    "timeout_minutes": "1" * 40,
    "proposals": ["abc", "-1", "99999999999999999999"],
    "ids": ["x"],
    "user_id": "me",
    "member": "no-such-user",
    "definition": "no-such-definition",
    "action_type": "launch_rocket",
    "action": "launch_rocket",
    "status": "sideways",
    "effect": "maybe",
    "verdict": "meh",
    "kind": "??",
    "labels": ["999999", "abc"],
    "params": "{not json",
    "conditions": '[{"param": "amount", "op": "~=", "value": []}]',
    "field": "__class__",
    "reason": "x" * 20000,
    "note": "\x00",
    "text": "",
    "name": "",
    "key": "",
    "force": "perhaps",
    "next": "https://evil.example/",
}


@pytest.mark.parametrize("role", ["supervisor", "compliance", "admin"])
def test_garbage_never_reaches_a_500(client, objects, role):  # noqa: F811
    client.raise_request_exception = False
    user = get_user_model().objects.get(username=role)
    failures = []
    seen = []
    for name, row in [*TABLE.items(), *OTHER_METHODS]:
        url = reverse(name, kwargs=row.kwargs(objects))
        attempts = [("get", JUNK)] if row.method == "get" else [("post", JUNK), ("post", {})]
        for method, data in attempts:
            with transaction.atomic():
                client.force_login(user)  # a logout in the table must not log out the rest
                response = getattr(client, method)(url, data)
                if getattr(response, "streaming", False):
                    b"".join(response.streaming_content)
                transaction.set_rollback(True)
            seen.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url} ({name}) -> {response.status_code}")
            if response.status_code in (301, 302) and response.get("Location", "").startswith("https://evil"):
                failures.append(f"{method.upper()} {url} ({name}) redirects off-site")
    assert len(seen) > 100 and 200 in seen, "the walk must reach real pages, not only redirects"
    assert not failures, f"as {role}:\n" + "\n".join(failures)
