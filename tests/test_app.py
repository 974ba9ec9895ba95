"""End-to-end tests of the Gradio app: the real `python app.py` in a subprocess, driven by a real
headless browser (Playwright + Debian's /usr/bin/chromium) and by `gradio_client`, on real photos.

Screenshots go to each test's tmp_path and are copied to out/screenshots/ (git-ignored).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.imageio import load_image
from scripts.load_test import app_server
from tests.conftest import london

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "out" / "screenshots"
TIMEOUT_MS = 60_000


def _missing(what: str):
    """In CI everything must be there (`make test` installs it); locally, say what to run."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: `make test` installs it")
    pytest.skip(f"{what} is missing: run `make test` (it installs it)")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`python app.py` on a free loopback port (scripts.load_test.app_server); yields its URL once
    it says it is ready."""
    pytest.importorskip("gradio")
    with app_server(tmp_path_factory.mktemp("app")) as server:
        print(f"\napp start-up: {server.startup_s:.1f} s (process start to ready)")
        yield server.url
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("The playwright Python package")
    if not Path(CHROMIUM).exists():
        _missing(CHROMIUM + " (Debian package chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _page(browser, app_url, width=1280, height=900):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.wait_for_selector("#photo input[type=file]", state="attached")
    return page


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / name)
    return path


def _upload(page, path: Path) -> None:
    page.locator("#photo input[type=file]").set_input_files(str(path))


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[selector, text], timeout=TIMEOUT_MS)


def _fetch(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())).convert("RGB")).astype(np.int16)


def _src(page, selector: str) -> str:
    srcs = page.eval_on_selector_all(selector + " img", "els => els.map(e => e.src).filter(Boolean)")
    assert len(set(srcs)) == 1, (selector, srcs)
    return srcs[0]


def _shown(page) -> tuple[np.ndarray, np.ndarray]:
    """The photo before the edit and the result, as the browser loads them."""
    return _fetch(_src(page, "#before")), _fetch(_src(page, "#result"))


def _checked(page) -> None:
    """Wait until the result on screen is checked: status says so and Download is enabled."""
    _wait_text(page, "#status", "checked in")
    page.wait_for_function("() => { const b = document.querySelector('#download');"
                           " return b && !b.disabled && !document.querySelector('#main.mien-busy'); }", timeout=TIMEOUT_MS)


def _start(browser, app_url, src: Path, **kw):
    page = _page(browser, app_url, **kw)
    _upload(page, src)
    _checked(page)  # the photo is edited at once (default: happy)
    return page


def _type_intensity(page, value: int) -> None:
    """Type a value in the intensity box and press Enter."""
    num = page.locator("#intensity input[type=number]")
    num.fill(str(value))
    num.press("Enter")


def _pick(page, emotion: str, expect: str | None = None) -> None:
    """Click an emotion and wait for its checked result."""
    page.locator("#emotion label", has_text=emotion).click()
    _wait_text(page, "#verdict", expect or emotion)
    _checked(page)


def _download(page) -> tuple[str, np.ndarray]:
    with page.expect_download() as dl:
        page.click("#download")
    return dl.value.suggested_filename, np.asarray(Image.open(dl.value.path()).convert("RGB")).astype(np.int16)


def _no_traceback(page) -> None:
    text = page.inner_text("body")
    assert "Traceback" not in text and "File \"/" not in text, text[-2000:]


def _in_view(page, selector: str, min_visible: float = 0.8) -> float:
    """Share of the element's height inside the viewport."""
    box = page.locator(selector).bounding_box()
    vh = page.viewport_size["height"]
    seen = max(0.0, min(box["y"] + box["height"], vh) - max(box["y"], 0.0))
    share = seen / box["height"]
    assert share >= min_visible, (selector, box, vh)
    return share


# ------------------------------------------------------------------------------------- browser

def test_upload_pick_surprised_shows_result_and_verdict(browser, app_url, tmp_path):
    src = london("005")
    page = _start(browser, app_url, src)
    _pick(page, "surprised")
    verdict = page.inner_text("#verdict")
    assert any(w in verdict for w in ("accepted", "rejected", "not checked")), verdict
    assert "face 0" in page.inner_text("body").lower()
    assert "geometric engine" in page.inner_text("#status")  # which engine made it
    before, after = _shown(page)
    inp = load_image(src).rgb.astype(np.int16)
    assert before.shape == after.shape == inp.shape
    assert np.abs(before - inp).mean() < 3  # "before" is the photo as uploaded (JPEG for display)
    changed = np.abs(after - before).max(axis=2) > 25
    assert changed.mean() > 0.005, changed.mean()  # the face really changed ...
    ys, xs = np.nonzero(changed)
    assert ys.min() > 100 and ys.max() < 700  # ... and only around the face
    name, png = _download(page)  # the download is the full-resolution PNG
    assert name in ("005_neutral_mien.png", "005_neutral_mien_REJECTED.png"), name
    assert ("REJECTED" in name) == ("rejected" in page.inner_text("#verdict tbody"))
    assert png.shape == inp.shape and np.abs(png - after).mean() < 3
    # the intensity strip: the face at 0, 25, ..., 150 %, tiles large enough to see, each captioned
    page.get_by_text("Intensity strip:").click()
    page.get_by_role("button", name="Make the strip").click()
    page.wait_for_function("() => document.querySelectorAll('#strip img').length === 7", timeout=TIMEOUT_MS)
    boxes = [page.locator("#strip img").nth(k).bounding_box() for k in range(7)]
    assert min(b["width"] for b in boxes) >= 120, boxes
    captions = page.inner_text("#strip")
    assert all(f"surprised {p}%" in captions for p in (0, 25, 50, 75, 100, 125, 150)), captions
    tiles = [_fetch(page.locator("#strip img").nth(k).get_attribute("src")) for k in (0, 1, 6)]
    assert np.abs(tiles[0] - tiles[2]).mean() > 2 * np.abs(tiles[0] - tiles[1]).mean() > 0
    _shot(page, tmp_path, "app_surprised.png")
    _no_traceback(page)


def test_full_after_by_default_hold_shows_before_slider_is_an_option(browser, app_url):
    """Issue 13.1: the whole result is shown (not half of a before/after slider); holding the
    button shows the photo before the edit; the slider is an option."""
    page = _start(browser, app_url, london("025"))
    imgs = page.locator("#result img")
    # The checked result may still be decoding when the status says so (a loaded machine: CI at
    # 2b02727 saw it not yet visible); it must become visible, as below after the hold.
    page.wait_for_function("() => document.querySelector('#result img')?.checkVisibility()", timeout=TIMEOUT_MS)
    assert imgs.count() == 1 and imgs.first.is_visible()
    box, frame = imgs.first.bounding_box(), page.locator("#result").bounding_box()
    assert box["height"] >= 0.8 * (frame["height"] - 60), (box, frame)  # the whole picture, not a crop
    assert not page.locator("#before img").is_visible()
    page.locator("#hold").hover()
    page.mouse.down()
    page.wait_for_function("() => document.querySelector('#before img')?.checkVisibility()")
    assert not imgs.first.is_visible()
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#result img')?.checkVisibility()")
    assert not page.locator("#before img").is_visible()
    page.locator("#slider-mode input").check()
    page.wait_for_function("() => document.querySelector('#compare')?.checkVisibility()")
    assert page.locator("#compare img").count() == 2 and not imgs.first.is_visible()


def test_typed_value_and_arrow_keys_end_checked(browser, app_url):
    """Issue 13.3: a value typed + Enter, and the arrow keys on the slider, end with the check run,
    Download enabled and the check table showing the new value."""
    page = _start(browser, app_url, london("064"))
    _type_intensity(page, 150)
    _wait_text(page, "#verdict", "happy 150%")
    _checked(page)
    rng = page.locator("#intensity input[type=range]")
    rng.focus()
    for _ in range(2):
        rng.press("ArrowLeft")
    _wait_text(page, "#verdict", "happy 140%")
    _checked(page)
    assert page.input_value("#intensity input[type=number]") == "140"


def test_undo_all_then_happy_applies_again_and_undo_step(browser, app_url):
    """Issue 13.4 (and per-step undo, 13.9): after "Undo all edits" picking happy edits again;
    "Undo last step" goes back one checked edit."""
    page = _start(browser, app_url, london("001"))
    _wait_text(page, "#verdict", "happy 100%")
    undo_all = page.get_by_role("button", name="Undo all edits")
    undo_all.click()
    _wait_text(page, "#verdict", "No face is changed")
    _pick(page, "happy", "happy 100%")
    undo_all.click()
    _wait_text(page, "#verdict", "No face is changed")
    before, after = _shown(page)
    assert np.abs(after - before).max(axis=2).mean() < 3  # the photo as uploaded
    _pick(page, "happy", "happy 100%")
    _pick(page, "sad", "sad 100%")
    page.click("#undo")
    _wait_text(page, "#verdict", "happy 100%")
    _checked(page)
    assert page.locator("#emotion input[value=happy]").is_checked()


def test_rejected_edit_is_marked_and_can_be_left_unchanged(browser, app_url):
    """Issue 13.2: a faint smile the check rejects is marked over the result and in the file name,
    with the reason and advice in plain words; "leave rejected faces unchanged" keeps the photo."""
    src = london("005")
    page = _start(browser, app_url, src)
    _type_intensity(page, 20)
    _wait_text(page, "#banner", "REJECTED")
    _checked(page)
    banner = page.inner_text("#banner")
    assert "not clear enough at 20%" in banner and "Try" in banner, banner
    assert "IOD" not in banner and "<" not in banner  # plain words, no jargon
    assert "REJECTED" in page.inner_text("#result")  # the result's own label says so
    name, png = _download(page)
    assert name == "005_neutral_mien_REJECTED.png", name
    inp = load_image(src).rgb.astype(np.int16)
    assert np.abs(png - inp).max() > 0  # the (rejected) edit is in this file
    page.locator("#leave input").check()
    _wait_text(page, "#banner", "left unchanged")
    _checked(page)
    name, png = _download(page)
    assert name == "005_neutral_mien.png", name
    assert np.abs(png - inp).max() == 0  # the face is as it was
    page.locator("#leave input").uncheck()
    _checked(page)
    page.locator("#auto input").check()  # auto strength: the gate may raise it, and says so
    _wait_text(page, "#verdict", "(asked 20%)")
    _checked(page)
    assert "Auto strength changed 20% to" in page.inner_text("#banner")


def test_download_during_an_edit_gets_the_new_result(browser, app_url):
    """Issue 13.5: Download clicked while an edit runs waits for it (never the previous file); the
    result has no lossy download icon of its own."""
    page = _start(browser, app_url, london("021"))
    _, happy = _download(page)
    page.locator("#emotion label", has_text="surprised").click()
    name, png = _download(page)  # at once, while the edit is running
    assert np.abs(png - happy).max() > 25  # not the previous result ...
    _wait_text(page, "#verdict", "surprised")
    _checked(page)
    after = _shown(page)[1]
    assert np.abs(png - after).mean() < 3  # ... the one now on screen
    assert page.locator("#result a[download], #result button[aria-label*='ownload' i]").count() == 0


def test_dragging_intensity_previews_then_checks_on_release(browser, app_url):
    page = _start(browser, app_url, london("064"))
    before_drag = _shown(page)[1]
    rng = page.locator("#intensity input[type=range]")
    rng.scroll_into_view_if_needed()
    box = rng.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 100 / 150, y)
    page.mouse.down()
    statuses = []
    for k in range(1, 16):  # drag from 100 % down to about 25 %
        page.mouse.move(box["x"] + box["width"] * (100 - 5 * k) / 150, y)
        page.wait_for_timeout(80)
        statuses.append(page.inner_text("#status"))
    assert any("preview" in t for t in statuses), statuses  # live re-render while dragging
    page.mouse.up()
    _checked(page)  # checked again on release
    value = int(float(page.input_value("#intensity input[type=number]")))
    assert 15 <= value <= 40, value
    assert f"{value}%" in page.inner_text("#verdict")
    assert np.abs(_shown(page)[1] - before_drag).max() > 25  # a weaker expression is shown


def test_group_photo_face_picker(browser, app_url, t1_path, tmp_path):
    """Six faces: numbered preview, a picker; face 2 gets 'sad' while the others keep 'happy'."""
    page = _page(browser, app_url)
    _upload(page, t1_path)
    _wait_text(page, "#status", "6 faces found")
    _checked(page)
    assert page.locator("#faces img").count() == 1
    page.locator("#target label", has_text="Face 2").click()
    page.locator("#emotion label", has_text="sad").click()
    _wait_text(page, "#verdict", "sad")
    rows = page.locator("#verdict tbody tr").all_inner_texts()
    assert len(rows) == 6, rows
    by_face = {r.split()[0]: r for r in rows}
    assert "sad" in by_face["2"] and all("happy" in by_face[k] for k in "01345"), rows
    _shot(page, tmp_path, "app_group.png")


def test_phone_result_stays_in_view(browser, app_url, tmp_path):
    """Issue 13.6 at 390 px: after tapping an emotion and while moving an action-unit slider the
    result is on screen; no horizontal scroll."""
    page = _start(browser, app_url, london("021"), width=390, height=844)
    sad = page.locator("#emotion label", has_text="sad")
    sad.scroll_into_view_if_needed()
    box = sad.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390  # reachable, not cut off
    sad.click()
    _wait_text(page, "#verdict", "sad")
    _checked(page)
    _in_view(page, "#result")
    _in_view(page, "#emotion label:has-text('sad')", 0.9)  # the button just tapped, too
    page.get_by_text("Advanced: individual").click()
    au = page.locator("#au-AU43 input[type=range]")
    au.scroll_into_view_if_needed()
    _in_view(page, "#au-AU43", 1.0)
    _in_view(page, "#result")
    overflow = page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
    assert max(overflow[:2]) <= overflow[2], overflow
    _shot(page, tmp_path, "app_phone.png")
    _no_traceback(page)


EMOJI = re.compile("[\u2190-\u21ff\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff]")
SPLIT_WORDS = """() => {
  const split = [];
  for (const cell of document.querySelectorAll('#verdict td, #verdict th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
      for (const m of node.data.matchAll(/\\S+/g)) {
        const r = document.createRange();
        r.setStart(node, m.index); r.setEnd(node, m.index + m[0].length);
        const lines = new Set([...r.getClientRects()].map((q) => Math.round(q.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
}"""


def test_contempt_plain_words_no_emoji_no_split_words(browser, app_url):
    """Issue 13.7 at 390 px: contempt shows its geometric check (no classifier has contempt), the
    identity number is explained, no word in the check table is broken across lines, and no label
    depends on an emoji glyph."""
    page = _start(browser, app_url, london("021"), width=390, height=844)
    _pick(page, "contempt")
    assert "smirk" in page.inner_text("#verdict")
    after = page.inner_text("#scores-after")
    assert "contempt check" in after and "neutral" not in after.split("contempt check")[-1], after
    assert "Same person" in page.inner_text("#verdict") and "face-recognition" in page.inner_text("#verdict")
    assert page.evaluate(SPLIT_WORDS) == []
    text = page.inner_text("body")
    assert not EMOJI.findall(text), EMOJI.findall(text)


def test_text_file_upload_says_it_is_not_a_photo(browser, app_url, tmp_path):
    """Issue 13.8: a .txt file is not silently ignored."""
    txt = tmp_path / "notes.txt"
    txt.write_text("not a photo\n")
    page = _page(browser, app_url)
    _upload(page, txt)
    _wait_text(page, "#upload-msg", "is not a photo")
    assert "notes.txt" in page.inner_text("#upload-msg")


@pytest.mark.parametrize("kind", ["text", "tiny"])
def test_bad_upload_friendly_message(browser, app_url, tmp_path, kind):
    """A fake .jpg gives a one-line message and leaves no broken thumbnail (issue 13.8)."""
    bad = tmp_path / "photo.jpg"
    if kind == "text":
        bad.write_text("this is not a photo, just some text\n" * 20)
        expected = "not an image"
    else:
        Image.new("RGB", (1, 1), "red").save(bad, "JPEG")
        expected = "at least 32 px"
    page = _page(browser, app_url)
    _upload(page, bad)
    _wait_text(page, "#status", expected)
    assert page.get_by_text(expected).count() >= 1
    page.wait_for_timeout(500)
    broken = page.eval_on_selector_all("#photo img", "els => els.filter(e => !e.complete || !e.naturalWidth).length")
    assert broken == 0
    _wait_text(page, "#status", expected)  # the message stays after the input is cleared
    _shot(page, tmp_path, f"app_bad_{kind}.png")
    _no_traceback(page)


# ---------------------------------------------------------------------------------- API client

def _region_mask(shape, regions) -> np.ndarray:
    m = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in regions:
        m[y0:y1, x0:x1] = True
    return m


def test_client_edit_changes_only_the_face_region(client):
    from gradio_client import handle_file

    src = london("025")
    png, summary = client.predict(handle_file(str(src)), "surprised", 1.0, "all", "", api_name="/edit")
    out = load_image(png).rgb.astype(np.int16)
    inp = load_image(src).rgb.astype(np.int16)
    assert out.shape == inp.shape
    assert summary["faces_detected"] == 1 and len(summary["faces"]) == 1
    face = summary["faces"][0]
    assert face["emotion"] == "surprised" and face["verdict"] in ("accepted", "rejected", None)
    inside = _region_mask(inp.shape, [face["region"]])
    diff = np.abs(out - inp).max(axis=2)
    assert diff[~inside].max() == 0  # bit-identical outside the face region
    assert (diff[inside] > 20).sum() > 500  # and a visible change inside it
    assert Image.open(png).info.get("Description", "").startswith("expression edited with Mien")


def test_client_group_photo_face_2_only(client, t1_path):
    from gradio_client import handle_file

    png, summary = client.predict(handle_file(str(t1_path)), "happy", 1.0, "2", "", api_name="/edit")
    out = load_image(png).rgb.astype(np.int16)
    inp = load_image(t1_path).rgb.astype(np.int16)
    assert summary["faces_detected"] == 6
    assert [f["index"] for f in summary["faces"]] == [2]
    diff = np.abs(out - inp).max(axis=2)
    region = summary["faces"][0]["region"]
    assert (diff[_region_mask(inp.shape, [region])] > 10).sum() > 100  # face 2 changed (a small face)
    assert diff[~_region_mask(inp.shape, [region])].max() == 0  # nothing else did
    # every other face, measured by its own region from an edit of all faces, is untouched
    _, everyone = client.predict(handle_file(str(t1_path)), "happy", 1.0, "all", "", api_name="/edit")
    others = [f["region"] for f in everyone["faces"] if f["index"] != 2]
    assert len(others) == 5
    other_mask = _region_mask(inp.shape, others) & ~_region_mask(inp.shape, [region])
    assert diff[other_mask].max() == 0


def test_client_respects_exif_orientation(client, tmp_path):
    """A sideways-stored photo with EXIF orientation 6 is edited upright (pipeline.imageio)."""
    from gradio_client import handle_file

    upright = Image.open(london("001")).crop((0, 84, 768, 684))  # 768 wide, 600 high
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # pixels on their side: 600 wide, 768 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "sideways.jpg"
    stored.save(path, quality=95, exif=exif)
    png, summary = client.predict(handle_file(str(path)), "happy", 1.0, "all", "", api_name="/edit")
    assert summary["size"] == [768, 600] and summary["faces_detected"] == 1
    out = Image.open(png)
    assert out.size == (768, 600) and "exif" not in out.info


def test_client_action_units_alone(client):
    """No emotion strength, one extra action unit (close eyes): only that is applied."""
    from gradio_client import handle_file

    src = london("021")
    png, summary = client.predict(handle_file(str(src)), "neutral", 0.0, "all", "AU43=1.0", api_name="/edit")
    face = summary["faces"][0]
    assert face["aus_applied"].get("AU43", 0) > 0.5, face["aus_applied"]
    diff = np.abs(load_image(png).rgb.astype(np.int16) - load_image(src).rgb.astype(np.int16)).max(axis=2)
    assert (diff > 20).sum() > 200


def test_client_bad_request_is_one_line(client):
    from gradio_client import handle_file

    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(london("001"))), "grumpy", 1.0, "all", "", api_name="/edit")
    msg = str(e.value)
    assert "Unknown emotion 'grumpy'" in msg and "Traceback" not in msg


# ------------------------------------------------------------------------------- slider speed

def test_slider_path_is_fast_on_1024px(tmp_path):
    """The drag path (cached faces, no checks) on a 1024 px photo: the handler's server time."""
    from pipeline.ui import handlers, session

    photo = tmp_path / "big.jpg"
    Image.open(london("064")).resize((1024, 1024), Image.LANCZOS).save(photo, quality=92)
    state = {"path": str(photo), "key": "", "n": 1}
    session.photo_for(str(photo))  # upload: decode + detect (cached)
    times = []
    for pct in (60, 80, 100, 120, 140, 100, 90):
        t = time.perf_counter()
        out = handlers.on_drag(None, state, {}, [], "all", "surprised", pct, False, False, True,
                               *[0] * len(handlers.AU_KEYS))
        times.append((time.perf_counter() - t) * 1000)
        assert out["result"]["value"].shape == (1024, 1024, 3)
        assert "preview" in out["status"] and "download" in out
    med = sorted(times)[len(times) // 2]
    print(f"\nslider (edit only) server time on 1024 px: median {med:.0f} ms, all {[round(t) for t in times]}")
    assert med < 400, times


# ------------------------------------------------------------------------- views and ordering

def test_views_of_a_rejected_and_a_left_unchanged_edit():
    """The banner, result label, file name and table read the library's FaceEdit objects."""
    from pipeline import detect, edit
    from pipeline.ui import views

    rgb, faces = detect(london("005"))
    shown = edit(rgb, "happy", 0.2, detections=faces)
    kept = edit(rgb, "happy", 0.2, detections=faces, leave_rejected=True)
    f = shown.faces[0]
    assert f.verdict == "rejected" and f.advice  # a faint smile does not read as happy
    assert views.download_suffix(shown.faces) == "_REJECTED" and views.download_suffix(kept.faces) == ""
    assert "REJECTED" in views.result_label(shown.faces)
    assert f.reason in views.banner(shown.faces) and "left unchanged" in views.banner(kept.faces)
    table = views.check_table(kept.faces, 1, {0: ("happy", 0.2, ())})
    assert "rejected, left unchanged" in table and "happy 20%" in table and "Same person" in table
    assert np.array_equal(kept.image, rgb)


def test_a_result_older_than_the_last_checked_edit_is_stale():
    from pipeline.ui.session import Order

    order = Order()
    preview = order.start("s1", check=False)
    check = order.start("s1", check=True)
    other = order.start("s2", check=False)
    assert order.stale("s1", preview)  # a check started after it: drop the preview
    assert not order.stale("s1", check) and not order.stale("s2", other)
    later = order.start("s1", check=False)
    assert not order.stale("s1", later)  # a new preview after the check is current


# ------------------------------------------------------------------ "Open the mouth" checkbox

def _png(path) -> tuple[np.ndarray, str]:
    """The download's pixels and its provenance note."""
    im = Image.open(path)
    return np.asarray(im.convert("RGB")), im.info.get("Description", "")


def test_open_mouth_off_is_the_librarys_closed_lip_smile():
    """Unticked, every handler that edits passes teeth=False on: the checked download, the preview,
    the strip and undo give edit(teeth=False)'s pixels on the same detections; ticked (the default) gives
    the open smile, and only the closed one is noted in the PNG."""
    from pipeline import edit
    from pipeline.ui import handlers, session, views

    src = str(london("001"))
    photo = session.photo_for(src)
    rgb, faces = photo.loaded.rgb, photo.faces
    state = {"path": src, "key": photo.key, "n": len(faces)}
    zeros = [0] * len(handlers.AU_KEYS)
    closed = edit(rgb, "happy", 1.0, detections=faces, teeth=False).image
    opened = edit(rgb, "happy", 1.0, detections=faces).image

    out = handlers.on_control(None, state, {}, [], "all", "happy", 100, False, False, False, *zeros)
    png, note = _png(out["download"]["value"])
    assert np.array_equal(png, closed) and "teeth=off" in note, note
    assert np.array_equal(out["result"]["value"], views.display(closed))
    on = handlers.on_control(None, state, {}, [], "all", "happy", 100, False, False, True, *zeros)
    png_on, note_on = _png(on["download"]["value"])
    assert np.array_equal(png_on, opened) and "teeth" not in note_on, note_on
    moved = np.abs(png_on.astype(np.int16) - png).max(axis=2) > 25
    assert moved.sum() > 300, moved.sum()  # the lips part with the box ticked, not without
    ys, xs = np.nonzero(moved)
    x0, y0, x1, y1 = faces[0].box
    assert y0 + 0.5 * (y1 - y0) < ys.min() and ys.max() < y1 + 0.1 * (y1 - y0)  # ... at the mouth only

    preview = edit(rgb, "happy", 1.0, detections=faces, gate=False, teeth=False).image
    drag = handlers.on_drag(None, state, {}, [], "all", "happy", 100, False, False, False, *zeros)
    assert np.array_equal(drag["result"]["value"], views.display(preview))
    strip = handlers.on_strip(state, "all", "happy", False, *zeros)["strip"]["value"]
    tile, caption = strip[views.STRIP_STEPS.index(100)]
    assert caption == "happy 100%" and np.array_equal(tile, views.tile(preview, views.face_square(rgb.shape,
                                                                                                   faces[0].box)))
    history = [{0: ("happy", 1.0, ())}, {0: ("sad", 1.0, ())}]
    back = handlers.on_undo_step(None, state, history, "all", False, False, False)
    assert back["emotion"] == "happy" and np.array_equal(_png(back["download"]["value"])[0], closed)


def test_open_mouth_checkbox_is_in_the_page_and_wired():
    """Next to the other options, ticked by default, and an input of every handler that edits."""
    import gradio as gr

    import app

    box = app.C["teeth"]
    assert isinstance(box, gr.Checkbox) and box.value is True
    assert box.label == "Open the mouth (show teeth)" and "closed-lip smile" in box.info
    assert box.parent is app.C["leave"].parent is app.C["auto"].parent
    takes = {f.name for f in app.demo.fns.values() if box in f.inputs}
    assert {"on_photo", "on_control", "on_drag", "on_reset", "on_undo_step", "on_strip"} <= takes, takes
    assert any(f.name == "on_control" and (box._id, "input") in f.targets for f in app.demo.fns.values())
