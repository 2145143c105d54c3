"""The analyst console (/ui) in a real headless Chromium, against the real e2e server (vLLM, tiny trained
bundles).

One analyst's session, step by step: the page asks for the API key, the key goes into the tab's session
storage and is sent as a header; a phishing and a legitimate message are classified with both adapters
(the page shows what the API answers); feedback is counted in /metrics; an explanation highlights the
planted trigger word; the probe chart draws one point per layer; an .eml file goes in as a raw e-mail (or
the page says clearly that the server does not take raw e-mail yet). Screenshots at 1280 px and at phone
width are saved (to $PHISHLENS_UI_SCREENSHOT_DIR when set: docs/ui/ is refreshed that way), and any
browser console error (CSP violation, script error, unexpected failed request) fails the test.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.e2e.conftest import LEGIT, PHISH

KEY = "ui-test-key"
PHISHING_TEXT = "please call the office zebra tomorrow about the budget review"
LEGIT_TEXT = "please call the office tomorrow about the budget review"
WAIT_S = 120.0  # a loaded 2-core host: vLLM and the HF replica share the CPU with the browser
EXPLAIN_EVALS = 60
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)


def _chromium() -> tuple[str, str]:
    """(browser, driver) paths, or skip with the reason (Debian: apt-get install chromium chromium-driver)."""
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no Chromium + chromedriver on PATH (Debian: apt-get install chromium chromium-driver; "
            ".ci/run installs them)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    return browser, driver


@pytest.fixture(scope="module")
def browser():
    browser, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="phishlens-ui-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def keyed_server(live_server):
    """The shared e2e server, requiring API key KEY for the duration of the test."""
    settings = live_server.app.state.settings
    before = settings.api_keys
    settings.api_keys = [SecretStr(KEY)]
    try:
        yield live_server
    finally:
        settings.api_keys = before


@pytest.fixture()
def shots(tmp_path) -> Path:
    out = Path(os.environ.get("PHISHLENS_UI_SCREENSHOT_DIR") or tmp_path / "ui-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


# ---- helpers ------------------------------------------------------------------------------------------
def wait(driver, predicate, what: str, timeout: float = WAIT_S):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(d))
    except TimeoutException:
        notice = driver.find_element("id", "notice").text
        raise AssertionError(
            f"timed out after {timeout:g}s waiting for {what}; page notice: {notice!r}; "
            f"console: {driver.get_log('browser')}"
        ) from None


def by_id(driver, id_: str):
    return driver.find_element("id", id_)


def console_errors(driver) -> list[str]:
    """SEVERE browser log entries since the last call (reading the log empties it)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def verdict_rows(driver) -> dict[str, tuple[str, float]]:
    rows = driver.find_elements("css selector", "#verdict-table tbody tr")
    return {
        r.get_attribute("data-adapter"): (
            r.get_attribute("data-label"),
            float(r.find_element("css selector", "td.score").get_attribute("data-score")),
        )
        for r in rows
    }


def request_id(driver) -> str:
    """The `id` of the /v1/classify answer the page shows ('' before the first)."""
    return by_id(driver, "verdict-caption").get_attribute("data-request-id") or ""


def classify_in_page(driver, text: str) -> dict[str, tuple[str, float]]:
    """Type `text`, press Ctrl+Enter, wait for a new request's verdicts; returns adapter → (label, score)."""
    from selenium.webdriver.common.keys import Keys

    before = request_id(driver)
    box = by_id(driver, "message")
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    wait(driver, lambda d: request_id(d) not in ("", before), "the verdicts of a new request")
    return verdict_rows(driver)


def metric(metrics: str, name: str, **labels: str) -> float:
    sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
    sel = f"{{{re.escape(sel)}}}" if sel else ""
    m = re.search(rf"^{name}{sel} (\S+)$", metrics, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def set_viewport(driver, width: int, height: int = 900) -> None:
    """An exact CSS viewport (a phone's below 600 px), whatever the window's own decorations take."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    time.sleep(0.5)  # layout at the new size, and the chart's redraw on resize


def screenshot(driver, path: Path) -> None:
    """The whole page, beyond the viewport."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    width = max(size["cssContentSize"]["width"], size["cssLayoutViewport"]["clientWidth"])
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": size["cssContentSize"]["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


# ---- the tests ----------------------------------------------------------------------------------------
def test_analyst_session(keyed_server, browser, shots):
    from selenium.webdriver.common.keys import Keys

    live, d = keyed_server, browser
    api = live.client(KEY)

    # -- the page loads; without a key the API answers 401 and the page asks for it (focus on the field)
    d.get(f"{live.url}/ui")
    assert d.current_url.endswith("/ui/")
    wait(d, lambda d: "API key" in by_id(d, "notice").text, "the page asking for the API key")
    # the start-up calls run concurrently: collect until the drift panel's refusal is logged too, so a late
    # 401 is not counted as an error of a later step
    errors, deadline = console_errors(d), time.monotonic() + 30
    while not any("/v1/drift" in e for e in errors) and time.monotonic() < deadline:
        time.sleep(0.2)
        errors += console_errors(d)
    assert errors and all("401" in e for e in errors), errors  # only the refused API calls
    assert d.switch_to.active_element.get_attribute("id") == "api-key"
    d.switch_to.active_element.send_keys(KEY, Keys.ENTER)  # keyboard only
    wait(
        d,
        lambda d: len(d.find_elements("css selector", '#adapters input[name="adapter"]')) == 2,
        "both adapters listed",
    )
    assert d.execute_script("return sessionStorage.getItem('phishlens.apiKey')") == KEY
    assert not by_id(d, "notice").is_displayed()
    legit_box = d.find_element("css selector", f'#adapters input[value="{LEGIT}"]')
    assert not legit_box.is_selected()  # the default adapter alone is preselected
    legit_box.send_keys(Keys.SPACE)
    assert legit_box.is_selected()

    # -- a phishing and a legitimate message, two adapters each: the page shows what the API answers
    for text, phish_label in ((PHISHING_TEXT, "phishing"), (LEGIT_TEXT, "legitimate")):
        shown = classify_in_page(d, text)
        direct = {
            r.adapter.name: (r.label, r.score) for r in api.classify(text, adapters=[PHISH, LEGIT]).data
        }
        assert set(shown) == {PHISH, LEGIT}
        for name, (label, score) in shown.items():
            assert label == direct[name][0] and abs(score - direct[name][1]) <= 1e-6, (name, shown, direct)
        other = "legitimate" if phish_label == "phishing" else "phishing"
        assert shown[PHISH][0] == phish_label and shown[LEGIT][0] == other, shown  # the planted rules
    thresholds = {a.name: a.calibration.threshold for a in api.list_adapters()}
    for row in d.find_elements("css selector", "#verdict-table tbody tr"):  # each adapter's decision rule
        band = row.find_element("css selector", ".band")
        assert float(band.get_attribute("data-threshold")) == thresholds[row.get_attribute("data-adapter")]
        assert "uncertain" in band.text
    set_viewport(d, 1280)
    screenshot(d, shots / "console-verdicts-1280.png")

    # -- feedback on the legitimate message, for both adapters' verdicts; /metrics counts it
    before = api.metrics()
    by_id(d, "fb-legitimate").click()
    wait(d, lambda d: "Recorded" in by_id(d, "feedback-status").text, "the feedback receipt")
    after = api.metrics()
    assert (
        metric(after, "phishlens_feedback_total", adapter=PHISH, outcome="tn")
        == metric(before, "phishlens_feedback_total", adapter=PHISH, outcome="tn") + 1
    )
    assert (
        metric(after, "phishlens_feedback_total", adapter=LEGIT, outcome="fp")
        == metric(before, "phishlens_feedback_total", adapter=LEGIT, outcome="fp") + 1
    )
    labelled = sum(
        metric(after, "phishlens_feedback_total", adapter=PHISH, outcome=o) for o in ("tp", "fp", "tn", "fn")
    )
    wait(
        d,
        lambda d: (
            d.find_elements("css selector", f'#health-cards [data-adapter="{PHISH}"] [data-labelled]')
            and d.find_element(
                "css selector", f'#health-cards [data-adapter="{PHISH}"] [data-labelled]'
            ).get_attribute("data-labelled")
            == f"{labelled:g}"
        ),
        "the health card counting the label",
    )

    # -- explain the phishing verdict: the planted trigger is the most phishing-ward word
    classify_in_page(d, PHISHING_TEXT)
    evals = by_id(d, "max-evals")
    evals.clear()
    evals.send_keys(str(EXPLAIN_EVALS))
    assert by_id(d, "why-adapter").get_attribute("value") == PHISH
    by_id(d, "explain").click()
    wait(d, lambda d: by_id(d, "explanation").is_displayed(), "the explanation")
    spans = d.find_elements("css selector", "#tokens .tok")
    assert "".join(s.get_attribute("textContent") for s in spans) == " ".join(PHISHING_TEXT.split())
    values = [float(s.get_attribute("data-attribution")) for s in spans]
    top = spans[values.index(max(values))]
    assert top.text.strip() == "zebra" and re.search(r"\bpos-[1-4]\b", top.get_attribute("class")), values
    assert by_id(d, "top-for").find_element("css selector", "li .word").text == "zebra"

    # -- the probe chart: one point per layer, the last logit-lens value is the served score
    by_id(d, "probe").click()
    wait(d, lambda d: by_id(d, "probe-out").is_displayed(), "the probe chart")
    probe = api.probe(PHISHING_TEXT, adapter=PHISH)
    line = d.find_element("css selector", '#probe-chart polyline[data-series="logit_lens"]')
    assert len(line.get_attribute("points").split()) == len(probe.layers) >= 2
    last = d.find_elements("css selector", "#probe-table tbody tr")[-1].find_elements("css selector", "td")[0]
    assert abs(float(last.get_attribute("textContent")) - probe.score) <= 1e-3  # (in a closed <details>)
    screenshot(d, shots / "console-why-1280.png")
    # phone width: one column, nothing wider than the screen
    set_viewport(d, 390, 844)
    assert d.execute_script("return window.innerWidth") == 390
    screenshot(d, shots / "console-phone-390.png")
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    set_viewport(d, 1280)

    # -- a long explanation can be cancelled: the page goes idle and the server stops computing it
    classify_in_page(d, " ".join([LEGIT_TEXT] * 12))
    evals.clear()
    evals.send_keys("1000")
    by_id(d, "explain").click()
    wait(d, lambda d: by_id(d, "explain-cancel").is_displayed(), "the explanation's Cancel button")
    by_id(d, "explain-cancel").send_keys(Keys.ENTER)
    wait(d, lambda d: by_id(d, "why-status").text == "Explanation cancelled.", "the cancel notice")
    assert not by_id(d, "explain-progress").is_displayed() and by_id(d, "explain").is_enabled()
    wait(
        d, lambda d: metric(api.metrics(), "phishlens_explain_inflight") == 0, "the server to stop explaining"
    )

    # -- an .eml file goes in as a raw e-mail; where the server does not take those, the page says so
    eml = shots / "reported.eml"
    eml.write_text(
        "From: IT Desk <it@example.com>\nTo: you@example.org\nSubject: mailbox zebra notice\n"
        "Content-Type: text/plain; charset=utf-8\n\nplease call the office zebra tomorrow\n"
    )
    by_id(d, "eml").send_keys(str(eml))
    wait(d, lambda d: by_id(d, "input-kind").get_attribute("value") == "email", "the file read as an e-mail")
    assert "Subject: mailbox zebra notice" in by_id(d, "message").get_attribute("value")
    accepts = httpx.post(
        f"{live.url}/v1/classify",
        headers={"X-API-Key": KEY},
        timeout=60,
        json={"input": [{"email": eml.read_text()}], "adapters": [PHISH, LEGIT]},
    )
    before_id = request_id(d)
    by_id(d, "classify").click()
    expected_errors: tuple[str, ...] = ()
    if accepts.status_code == 200:
        wait(d, lambda d: request_id(d) != before_id, "the e-mail's verdicts")
        assert {k: v[0] for k, v in verdict_rows(d).items()} == {
            r["adapter"]["name"]: r["label"] for r in accepts.json()["data"]
        }
    else:
        assert accepts.status_code == 422, accepts.text
        wait(d, lambda d: "does not accept raw e-mail" in by_id(d, "notice").text, "the raw e-mail notice")
        expected_errors = ("422",)

    # -- the message text never went into a URL; no console errors beyond the one provoked above
    urls = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") + [
        d.current_url
    ]
    assert len(urls) > 5 and not [u for u in urls if "tomorrow" in u or "zebra" in u], urls
    errors = console_errors(d)
    assert all(any(code in e for code in expected_errors) for e in errors), errors
    assert len(errors) == len(expected_errors), errors
