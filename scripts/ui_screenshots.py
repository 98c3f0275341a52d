"""Open a flow run's page and its report artifact in headless Chromium (Debian's `chromium` and
`chromium-driver`, via selenium) and save screenshots: what an operator sees in the Prefect UI.

Used by the browser test (tests/test_ui_browser.py) and, against a running server, to refresh the
screenshots in docs/img:

    .venv/bin/python scripts/ui_screenshots.py --ui http://127.0.0.1:4200 --out docs/img

It takes the newest `retrain` flow run that has a `retrain-report` artifact.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PAGE_TIMEOUT_S = 90


@contextmanager
def headless_chromium(width: int = 1400, height: int = 1800) -> Iterator[WebDriver]:
    """A headless Chromium that makes no connection of its own (only the pages it is sent to)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@dataclass(frozen=True)
class ReportView:
    """What the report artifact's page showed."""

    tables: int
    images: int
    loaded_images: int
    text: str


def wait_for(driver: WebDriver, css: str, timeout: float = PAGE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not driver.find_elements(By.CSS_SELECTOR, css):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {css!r} on {driver.current_url} after {timeout:.0f} s")
        time.sleep(0.5)


def open_report(driver: WebDriver, ui: str, artifact_id: str, screenshot: Path | None = None) -> ReportView:
    """The artifact's page, once its markdown (tables and plots) has rendered and the images loaded."""
    driver.get(f"{ui}/artifacts/artifact/{artifact_id}")
    wait_for(driver, "table")
    wait_for(driver, "img")
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    script = "return Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
    while driver.execute_script(script) < len(driver.find_elements(By.TAG_NAME, "img")):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if screenshot is not None:
        driver.save_screenshot(str(screenshot))
        driver.execute_script("document.images[0].scrollIntoView()")
        time.sleep(0.5)
        driver.save_screenshot(str(screenshot.with_name(f"{screenshot.stem}-plots.png")))
    return ReportView(
        tables=len(driver.find_elements(By.TAG_NAME, "table")),
        images=len(driver.find_elements(By.TAG_NAME, "img")),
        loaded_images=driver.execute_script(script),
        text=driver.find_element(By.TAG_NAME, "body").text,
    )


def open_run(driver: WebDriver, ui: str, flow_run_id: str, screenshot: Path, expect: str) -> str:
    """The flow run's page (its logs first), screenshotted once `expect` shows in it; returns its text."""
    driver.get(f"{ui}/runs/flow-run/{flow_run_id}")
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while expect not in driver.find_element(By.TAG_NAME, "body").text and time.monotonic() < deadline:
        time.sleep(0.5)
    driver.save_screenshot(str(screenshot))
    return driver.find_element(By.TAG_NAME, "body").text


def newest_report(api: str) -> tuple[str, str]:
    """(flow run id, artifact id) of the newest `retrain-report` artifact."""
    body = {"artifacts": {"key": {"any_": ["retrain-report"]}}, "sort": "CREATED_DESC", "limit": 1}
    [artifact] = httpx.post(f"{api}/artifacts/filter", json=body, timeout=30).json()
    return artifact["flow_run_id"], artifact["id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ui", default="http://127.0.0.1:4200")
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    flow_run_id, artifact_id = newest_report(f"{args.ui}/api")
    with headless_chromium() as driver:
        open_run(driver, args.ui, flow_run_id, args.out / "flow-run.png", expect="dataset: ")
        view = open_report(driver, args.ui, artifact_id, args.out / "report-artifact.png")
    print(
        f"saved {args.out}/flow-run.png and report-artifact.png: {view.tables} tables, {view.loaded_images}/{view.images} images"
    )


if __name__ == "__main__":
    main()
