"""A participant in Debian's headless chromium (Selenium + chromium-driver): consent and a small study with
the keyboard only, resume after leaving, and the admin export holds exactly the votes that were pressed."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import threading
import time

import httpx
import pandas as pd
import pytest

from perceptiq.study.creation import create_study
from perceptiq.study.db import open_database
from perceptiq.study.service import StudySettings
from perceptiq.study.web import create_app
from study_helpers import make_images

ADMIN = "browser-test-admin-token-0123456789"


def _ensure_chromium() -> None:
    if shutil.which("chromedriver") and shutil.which("chromium"):
        return
    try:
        subprocess.run(
            ["apt-get", "install", "-y", "chromium", "chromium-driver"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(
            f"chromium and chromium-driver are not installed and apt-get could not install them ({err})"
        )
    if not shutil.which("chromedriver"):
        pytest.skip("chromium-driver is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    root = tmp_path_factory.mktemp("browser")
    pairs = make_images(root, inputs=1, size=(64, 48))
    db = open_database(root / "s.db")
    create_study(db, "demo", pairs, root / "img", StudySettings(repeats=1))
    port = _free_port()
    config = uvicorn.Config(
        create_app(db, admin_token=ADMIN), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)
    db.close()


@pytest.fixture(scope="module")
def browser():
    _ensure_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1200,800",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting in the browser")


@pytest.mark.slow
def test_keyboard_study_and_export(server, browser):
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server + "/s/demo")
    agree = browser.find_element(By.ID, "agree")
    agree.send_keys(Keys.SPACE)  # tick the consent box with the keyboard
    assert agree.is_selected()
    browser.find_element(By.ID, "start").send_keys(Keys.ENTER)

    def trial():
        """The trial shown now (the body's data-trial), None while a page loads."""
        try:
            value = browser.execute_script(
                "return document.body ? document.body.dataset.trial || null : null"
            )
        except WebDriverException:
            return None
        return int(value) if value else None

    def body_class():
        return browser.execute_script("return document.body.className")

    pressed: dict[int, str] = {}
    current = _wait(trial)
    # the images are shown 1:1 in device pixels
    assert (
        _wait(lambda: browser.execute_script("return document.getElementById('img-left').naturalWidth")) == 64
    )
    shown, ratio = browser.execute_script(
        "const r = document.getElementById('img-left').getBoundingClientRect();"
        "return [[r.width, r.height], window.devicePixelRatio];"
    )
    assert [v * ratio for v in shown] == pytest.approx([64, 48])
    transforms = browser.execute_script(
        "const v = document.getElementById('view-left');"
        "v.dispatchEvent(new WheelEvent('wheel', {deltaY: -100, clientX: 50, clientY: 50, bubbles: true}));"
        "return [document.getElementById('img-left').style.transform,"
        " document.getElementById('img-right').style.transform];"
    )
    assert "scale(1.25)" in transforms[0]
    assert transforms[0] == transforms[1]  # zoom is synchronised
    ActionChains(browser).send_keys("0").perform()
    assert "scale(1)" in browser.execute_script("return document.getElementById('img-right').style.transform")
    ActionChains(browser).send_keys("f").perform()  # flicker on and off
    assert "flicker" in body_class()
    ActionChains(browser).send_keys("f").perform()
    assert "flicker" not in body_class()
    keys = [Keys.ARROW_LEFT, Keys.ARROW_RIGHT]
    for step in range(2):  # two answers, then leave and come back
        ActionChains(browser).send_keys(keys[step % 2]).perform()
        pressed[current] = "left" if step % 2 == 0 else "right"
        current = _wait(lambda c=current: (t := trial()) is not None and t != c and t)
    browser.get("about:blank")
    browser.get(server + "/s/demo")
    browser.find_element(By.ID, "resume").send_keys(Keys.ENTER)
    assert _wait(trial) == current  # resumed at the next trial
    step = 2
    while "/done" not in browser.current_url:
        ActionChains(browser).send_keys(keys[step % 2]).perform()
        pressed[current] = "left" if step % 2 == 0 else "right"
        step += 1

        def moved(c=current):
            if "/done" in browser.current_url:
                return -1
            t = trial()
            return t if t is not None and t != c else None

        current = _wait(moved)
    assert len(pressed) == 3 + 1  # 3 pairs and 1 repeat
    export = httpx.get(server + "/api/studies/demo/export.csv", headers={"Authorization": f"Bearer {ADMIN}"})
    assert export.status_code == 200
    frame = pd.read_csv(io.StringIO(export.text))
    assert dict(zip(frame["trial"], frame["choice"], strict=True)) == pressed
    assert (frame["response_ms"] >= 0).all()
