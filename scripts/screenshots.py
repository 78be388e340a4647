"""Take the README's screenshots (docs/img/) from a running demo.

    make run                                   # in one terminal; let it settle for a few minutes
    .venv/bin/python scripts/screenshots.py    # in another

Logs in as the demo users (password ``DEMO_PASSWORD``, default ``demo``) with Playwright on the
system's Chromium (``CHROMIUM_PATH`` or ``chromium`` on PATH) and writes one PNG per entry of
``SHOTS``. ``--url`` points at another server, ``--out`` at another folder, ``--only`` takes
some of the shots by name. Look at the PNGs before committing them: the demo's live data is what
they show.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

# name, user, path, viewport (width, height), full page?
SHOTS = [
    ("live-board", "supervisor", "/board/", (1280, 760), False),
    ("live-board-phone", "supervisor", "/board/", (390, 844), False),
    ("desk", "supervisor", "/desk/", (1280, 760), False),
    ("approvals", "supervisor2", "/review/", (1280, 760), False),
]
# The board refreshes itself: wait for what it shows rather than for a quiet network.
READY = {"/board/": "table", "/desk/": "h1", "/review/": "#queue-rows"}


def chromium() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("Chromium is not installed: `apt-get install -y chromium` (or set CHROMIUM_PATH).")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "img"))
    parser.add_argument("--only", nargs="*", default=None, help="names of the shots to take")
    args = parser.parse_args()
    names = {name for name, *_ in SHOTS}
    unknown = set(args.only or []) - names
    if unknown:
        sys.exit(f"No such shot: {', '.join(sorted(unknown))} (known: {', '.join(sorted(names))}).")
    password = os.environ.get("DEMO_PASSWORD", "demo")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        for name, user, path, (width, height), full_page in SHOTS:
            if args.only and name not in args.only:
                continue
            context = browser.new_context(
                base_url=args.url, viewport={"width": width, "height": height}, timezone_id="Europe/London"
            )
            page = context.new_page()
            try:
                page.goto("/login/")
            except PlaywrightError as exc:
                sys.exit(f"Cannot reach the demo at {args.url} ({exc.message.splitlines()[0]}); is `make run` up?")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            if "/login/" in page.url:
                sys.exit(f"Could not log in as {user}: is DEMO_PASSWORD the demo's password?")
            page.goto(path)
            page.wait_for_selector(READY.get(path, "h1"))
            page.wait_for_timeout(500)  # let the first poll settle
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=full_page)
            print(f"{target} ({width}x{height}, {user} on {path})")
            context.close()
        browser.close()


if __name__ == "__main__":
    main()
