"""Refresh the README's console screenshots (docs/ui/*.png) from a running server with the shipped adapters.

    make serve  # or: PHISHLENS_ADAPTERS=default,specialist-email,specialist-sms .venv/bin/phishlens serve
    .venv/bin/python docs/ui/capture.py http://127.0.0.1:8000

Drives Debian's chromium through the same helpers as tests/e2e/test_ui.py: classifies a phishing e-mail
with every loaded adapter, marks it as phishing, explains the default adapter's verdict, probes its layers,
then saves the page at 1280 px and at 390 px (a phone).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.test_ui import CHROME_FLAGS, by_id, classify_in_page, screenshot, set_viewport, wait

OUT = Path(__file__).resolve().parent
MESSAGE = (
    "Subject: Your mailbox is full\n\nDear user, verify your account within 24 hours at "
    "http://mail-quota.example.com/verify or incoming e-mail will be rejected. IT Service Desk"
)
EXPLAIN_EVALS = 120  # a coarse partition of the words; the API's default (300) refines it


def main(url: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.keys import Keys

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='phishlens-capture-')}")
    d = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        d.get(f"{url}/ui/")
        wait(d, lambda d: d.find_elements("css selector", '#adapters input[name="adapter"]'), "the adapters")
        for box in d.find_elements("css selector", '#adapters input[name="adapter"]'):
            if not box.is_selected():
                box.send_keys(Keys.SPACE)
        classify_in_page(d, MESSAGE)
        by_id(d, "fb-phishing").click()
        wait(d, lambda d: "Recorded" in by_id(d, "feedback-status").text, "the feedback receipt")
        evals = by_id(d, "max-evals")
        evals.clear()
        evals.send_keys(str(EXPLAIN_EVALS))
        by_id(d, "explain").click()
        wait(d, lambda d: by_id(d, "explanation").is_displayed(), "the explanation", timeout=600)
        by_id(d, "probe").click()
        wait(d, lambda d: by_id(d, "probe-out").is_displayed(), "the probe chart", timeout=300)
        by_id(d, "health-refresh").click()
        time.sleep(2)
        set_viewport(d, 1280)
        screenshot(d, OUT / "console-1280.png")
        set_viewport(d, 390, 844)
        screenshot(d, OUT / "console-phone-390.png")
    finally:
        d.quit()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
