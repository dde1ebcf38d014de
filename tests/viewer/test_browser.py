"""The HTML report in a real browser: Debian's chromium, driven headless by selenium.

Skipped when chromium, chromedriver or selenium is missing, unless
AGENTGYM_REQUIRE_BROWSER=1 (set by `make test`) or CI is set: then it fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agentgym.trajectory import read_jsonl
from agentgym.viewer import write_report

pytestmark = pytest.mark.xdist_group("browser")


def _need(what: str) -> None:
    if os.environ.get("AGENTGYM_REQUIRE_BROWSER") == "1" or os.environ.get("CI"):
        pytest.fail(
            f"{what} is missing; install it with scripts/setup_system.sh (apt-get "
            "install chromium chromium-driver) and pip install 'agentgym[dev]'"
        )
    pytest.skip(f"{what} is missing (AGENTGYM_REQUIRE_BROWSER=1 makes this a failure)")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _need("selenium")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if binary is None or driver is None:
        _need("chromium" if binary is None else "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(driver), options=options)
    d.set_page_load_timeout(60)
    d.implicitly_wait(0)
    try:
        yield d
    finally:
        d.quit()


def _rows(d):
    return d.find_elements("css selector", "#list tbody tr")


def _cells(d, col):
    return [r.find_elements("tag name", "td")[col].text for r in _rows(d)]


def test_filters_views_and_screenshot(browser, trajs_file, tmp_path):
    from selenium.webdriver.support.ui import Select

    d = browser
    trajs = read_jsonl(trajs_file)
    page = write_report(trajs_file, tmp_path / "r.html")
    d.get(page.as_uri())
    n = len(trajs)
    assert d.find_element("id", "count").text == f"{n} of {n} trajectories shown"
    assert len(_rows(d)) == n
    assert d.execute_script("return performance.getEntriesByType('resource').length") == 0

    # A filter changes the list: only 'done' rows remain, as many as the data has.
    Select(d.find_element("id", "f-status")).select_by_value("done")
    done = sum(t.status == "done" for t in trajs)
    assert 0 < done < n
    assert d.find_element("id", "count").text == f"{done} of {n} trajectories shown"
    assert set(_cells(d, 5)) == {"done"}
    Select(d.find_element("id", "f-success")).select_by_value("no")
    assert _rows(d) == [] and d.find_element("id", "count").text.startswith("0 of")
    d.find_element("id", "f-reset").click()
    d.find_element("id", "f-min").send_keys("0.5")
    high = [i for i, t in enumerate(trajs) if t.total_reward >= 0.5]
    assert [int(x) for x in _cells(d, 0)] == high
    assert 0 < len(high) < n
    d.find_element("id", "f-reset").click()

    # The conversation: per-turn rewards and components; hostile text stays text.
    hostile = next(i for i, t in enumerate(trajs) if "</script>" in t.turns[-1].action)
    _rows(d)[hostile].click()
    assert d.title != "pwned"
    rewards = d.find_elements("css selector", "#view .reward")
    assert len(rewards) == len(trajs[hostile].turns)
    assert "format -0.100" in rewards[0].text
    assert trajs[hostile].turns[-1].action in d.find_element("id", "view").text

    # The token view: one span per token, coloured by the loss mask, logprob on hover.
    _rows(d)[0].click()
    d.find_element("id", "tab-tokens").click()
    ledger = trajs[0].ledger
    assert len(d.find_elements("css selector", "#view .tokens .tok")) == len(ledger.input_ids)
    sampled = d.find_elements("css selector", "#view .tokens .tok.m1")
    assert len(sampled) == sum(ledger.loss_mask)
    assert "logprob" in sampled[0].get_attribute("title")
    d.save_screenshot(str(tmp_path / "tokens.png"))

    # The group view: G samples side by side with their advantages.
    d.find_element("id", "tab-group").click()
    group = [t for t in trajs if t.group_id == trajs[0].group_id]
    cards = d.find_elements("css selector", "#view .sample")
    assert len(cards) == len(group) > 1
    rewards_g = [t.total_reward for t in group]
    mean = sum(rewards_g) / len(rewards_g)
    std = (sum((r - mean) ** 2 for r in rewards_g) / len(rewards_g)) ** 0.5
    for card, t in zip(cards, sorted(group, key=lambda t: t.sample_index), strict=True):
        assert f"GRPO adv {(t.total_reward - mean) / (std + 1e-6):+.3f}" in card.text
    shot = tmp_path / "group.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_run_report_charts(browser, run_dir, tmp_path):
    d = browser
    page = write_report(run_dir, tmp_path / "run.html")
    d.get(page.as_uri())
    charts = {c.get_attribute("data-key"): c for c in d.find_elements("css selector", ".chart")}
    assert {"reward/total_mean", "reward/success_rate", "eval/success_rate"} <= set(charts)
    assert len(charts["reward/success_rate"].find_elements("css selector", "circle")) == 3
    assert len(charts["eval/success_rate"].find_elements("css selector", "circle")) == 2
    from selenium.webdriver.support.ui import Select

    Select(d.find_element("id", "f-step")).select_by_value("2")
    assert set(_cells(d, 4)) == {"2"}
    d.find_element("id", "f-reset").click()
    d.save_screenshot(str(tmp_path / "run.png"))
