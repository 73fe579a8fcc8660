"""The web page end to end: headless Chromium (Debian's, driven by Playwright) against `ecglab serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="ecglab serve needs fastapi, uvicorn and python-multipart")
playwright = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs `pip install playwright`"
)

from infer_helpers import CLASSES, make_checkpoint  # noqa: E402
from serve_helpers import CHROMIUM, TIMEOUT_MS, chromium, running_server  # noqa: E402

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}; apt-get install -y chromium"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-browser")
    with running_server(make_checkpoint(work / "ckpt"), work) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside = []
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith(server.url) or r.url.startswith("data:") else outside.append(r.url)
        ),
    )
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.wait_for_function(
        "() => document.getElementById('model').textContent.includes('classes')", timeout=TIMEOUT_MS
    )
    yield page
    context.close()
    assert outside == [], f"the page loaded from outside the server: {outside}"
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.mark.data
def test_page_shows_labels_and_figure(page, server, ptbxl_root, tmp_path):
    stem = ptbxl_root / "records100" / "00000" / "00001_lr"
    page.set_input_files("#files", [str(stem.with_suffix(".hea")), str(stem.with_suffix(".dat"))])
    page.wait_for_selector("#result:not([hidden])", timeout=TIMEOUT_MS)
    page.wait_for_function("() => document.getElementById('figure').naturalWidth > 0", timeout=TIMEOUT_MS)

    assert page.inner_text("#record") == "00001_lr.hea"
    rows = page.locator("#classes tbody tr")
    assert rows.count() == len(CLASSES)
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(len(CLASSES))] == CLASSES
    labels = page.locator("#labels .label").all_inner_texts()
    assert labels and all(any(t.startswith(c + " ") for c in CLASSES) and t.endswith("%") for t in labels)
    assert page.locator("#classes tr.positive").count() == len(labels)
    width = page.evaluate("document.getElementById('figure').naturalWidth")
    assert width > 800 and page.is_visible("#figure") and page.is_hidden("#error")
    page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)

    page.locator("#classes tbody tr:not(.explained) button").first.click()  # explain another class
    page.wait_for_function("() => document.querySelectorAll('#classes tr.explained').length === 1 && "
                           "!document.body.classList.contains('busy')", timeout=TIMEOUT_MS)  # fmt: skip
    assert page.is_hidden("#error") and server.leftovers() == []


def test_page_shows_the_error_of_a_bad_upload(page, server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an ECG")
    page.set_input_files("#files", [str(notes)])
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    message = page.inner_text("#error")
    assert message.startswith("notes.txt: unsupported file type '.txt'"), message
    assert page.is_hidden("#result")
    page.screenshot(path=str(tmp_path / "serve_error.png"), full_page=True)
    assert server.health()["status"] == "ok" and server.leftovers() == []


def test_dropping_a_file_uploads_it(page, server):
    drop = page.evaluate_handle(
        "() => { const dt = new DataTransfer();"
        " dt.items.add(new File(['1,2,3'], 'dropped.docx')); return dt; }"
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": drop})
    page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
    assert "dropped.docx" in page.inner_text("#error") and "unsupported file type" in page.inner_text(
        "#error"
    )


def test_page_asks_for_the_token_of_a_guarded_server(browser, tmp_path):
    import numpy as np

    from helpers import write_wfdb

    t = np.arange(1200) / 100
    hea = write_wfdb(tmp_path / "rec" / "r001", np.stack([np.sin(2 * np.pi * 1.2 * t)] * 12) * 0.5, 100)
    with running_server(
        make_checkpoint(tmp_path / "ckpt"), tmp_path, env={"ECGLAB_TOKEN": "page-token"}
    ) as server:
        context = browser.new_context()
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_selector("#token-field:not([hidden])", timeout=TIMEOUT_MS)
        page.set_input_files("#files", [str(hea), str(hea.with_suffix(".dat"))])
        page.wait_for_selector("#error:not([hidden])", timeout=TIMEOUT_MS)
        assert "access token" in page.inner_text("#error") and page.is_hidden("#result")
        page.fill("#token", "page-token")
        page.set_input_files("#files", [])  # a new choice of the same files
        page.set_input_files("#files", [str(hea), str(hea.with_suffix(".dat"))])
        page.wait_for_function("() => !document.body.classList.contains('busy')", timeout=TIMEOUT_MS)
        assert page.is_hidden("#error"), page.inner_text("#error")
        assert page.is_visible("#result") and page.inner_text("#record") == "r001.hea"
        context.close()
    assert errors == [], f"JavaScript errors: {errors}"
