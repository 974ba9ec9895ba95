"""Mien web app: change the facial expression of the people in a photo (Gradio; runs on CPU).

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

Only the page layout and the launch live here; the handlers, the photo cache and the views are
in `pipeline.ui` (handlers, session, views), and every edit goes through the library's `edit()`.

API (gradio_client), endpoint "/edit":
    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    png_path, summary = client.predict(handle_file("photo.jpg"), "surprised", 1.0, "all", "",
                                       api_name="/edit")
inputs: image, emotion (one of EMOTIONS), intensity (0 to 1.5; 1 = clear and natural),
faces ("all" or indices numbered left to right from 0, e.g. "0,2"), aus (extra action units,
e.g. "AU12=0.5,AU6=0.3" or ""). outputs: the edited full-resolution PNG and
`EditResult.summary()` (per face: region, probabilities before/after, identity, verdict, advice).
"""
from __future__ import annotations

import time

_T_START = time.perf_counter()  # for the start-up time printed when the app is ready

import functools
import logging
from pathlib import Path

import gradio as gr

from pipeline import AU_NAMES, EMOTIONS, imageio
from pipeline.emotions import INTENSITY_MAX
from pipeline.ui import handlers as h
from pipeline.ui import session

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))
AU_MAX = round(INTENSITY_MAX * 100)


def PhotoInput(**kwargs) -> gr.Image:
    """gr.Image that passes the uploaded file's path on untouched, so `pipeline.imageio` decodes it
    (EXIF orientation, limits, one-line errors) instead of Pillow's defaults inside Gradio. (An
    instance override: a subclass would make Gradio write an app.pyi stub next to this file.)"""
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    default = component.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return default(payload)

    component.preprocess = preprocess
    return component


CSS = """
.gradio-container {max-width: 1280px !important; margin: 0 auto; overflow: visible !important;
                   overflow-x: clip !important;} /* clip, not hidden: "hidden" would stop the sticky result */
#emotion .wrap {gap: 6px;}
#emotion label {min-width: 0; padding: 6px 10px;}
/* A wide table scrolls on its own instead of widening the page; cells wrap between words only. */
#verdict {contain: inline-size; overflow-x: auto;}
#verdict table {font-size: 0.88em;}
#verdict td, #verdict th {word-break: normal !important; overflow-wrap: normal !important; hyphens: none;
                          white-space: normal !important; padding: 4px 6px !important;}
#banner {border-left: 6px solid #c62828; background: #fdecea; padding: 4px 10px; border-radius: 6px;}
#banner p {margin: 4px 0;}
/* The result column follows the page on wide screens and sits above the controls on phones. */
#result-col {position: sticky; top: 0; align-self: flex-start; z-index: 50;
             background: var(--background-fill-primary);}
#before, #compare {display: none !important;}
.mien-before #before {display: block !important;}
.mien-before #result {display: none !important;}
.mien-slider #compare {display: block !important;}
.mien-slider #result, .mien-slider #before, .mien-slider #hold {display: none !important;}
#hold {touch-action: none; user-select: none; -webkit-user-select: none; -webkit-touch-callout: none;}
.mien-busy #download {pointer-events: none; opacity: 0.5;}
#upload-msg:empty {display: none;}
#upload-msg {color: #b71c1c; font-weight: 600;}
@media (max-width: 760px) {
  .gradio-container {padding-left: 6px !important; padding-right: 6px !important;}
  #main {flex-direction: column;}
  #result-col {order: -1; width: 100%; padding-bottom: 4px; box-shadow: 0 4px 6px -6px #0006;}
  #result, #before, #compare {height: 32vh !important;}
  #result-col:not(:has(#result img)) {display: none;} /* nothing to show yet: the upload comes first */
  #slider-mode {display: none;}
  #auto, #leave, #teeth {flex: 1 1 40% !important; min-width: 40% !important;} /* two a line, not three squeezed */
  #result-actions {flex-wrap: nowrap;}
  #result-actions > * {min-width: 0 !important;}
  #status {font-size: 0.85em;}
}
"""

# Keyboard and typed input end checked: Gradio checks a slider on "release", which keys and a
# typed value + Enter never send; press-and-hold shows the photo before the edit; a file the
# photo box won't take says so; Download waits while an edit runs.
HEAD = """<script>
(() => {
  const KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End"]);
  const root = () => document.querySelector("#main") || document.body;  // Gradio scopes the page CSS inside .gradio-container
  document.addEventListener("keyup", (e) => {
    const t = e.target;
    if (!(t instanceof HTMLInputElement) || !t.closest(".mien-slider-input")) return;
    if (t.type === "number" && e.key === "Enter") { t.blur(); return; }
    if (t.type === "range" && KEYS.has(e.key)) {
      clearTimeout(t._mienCheck);
      t._mienCheck = setTimeout(() => t.dispatchEvent(new PointerEvent("pointerup", {bubbles: true})), 350);
    }
  }, true);
  const hold = (on) => root().classList.toggle("mien-before", on);
  document.addEventListener("pointerdown", (e) => { if (e.target.closest && e.target.closest("#hold")) hold(true); }, true);
  for (const ev of ["pointerup", "pointercancel"]) document.addEventListener(ev, () => hold(false), true);
  document.addEventListener("keydown", (e) => { if ((e.key === " " || e.key === "Enter") && e.target.closest && e.target.closest("#hold")) hold(true); }, true);
  document.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") hold(false); }, true);
  document.addEventListener("contextmenu", (e) => { if (e.target.closest && e.target.closest("#hold")) e.preventDefault(); }, true);
  const say = (files) => {
    const msg = document.querySelector("#upload-msg .prose, #upload-msg");
    const bad = [...(files || [])].find((f) => !(f.type || "").startsWith("image/"));
    if (msg) msg.textContent = bad ? `"${bad.name}" is not a photo: choose a JPEG, PNG or WebP image.` : "";
  };
  document.addEventListener("change", (e) => { if (e.target.closest && e.target.closest("#photo") && e.target.files) say(e.target.files); }, true);
  document.addEventListener("drop", (e) => { if (e.target.closest && e.target.closest("#photo")) say(e.dataTransfer && e.dataTransfer.files); }, true);
})();
</script>"""
BUSY = "(...a) => { document.querySelector('#main')?.classList.add('mien-busy'); return a; }"
IDLE = "() => { document.querySelector('#main')?.classList.remove('mien-busy'); }"
SLIDER_MODE = "(on) => { document.querySelector('#main')?.classList.toggle('mien-slider', on); return on; }"

INTRO = """# Mien: change a facial expression
**1.** Upload a photo (or pick an example). **2.** Pick an emotion and set the intensity.
**3.** Press and hold *Hold to show before* to compare, read the check, and download the full-resolution PNG.
Everything runs on this server's CPU; photos are deleted within an hour."""

C: dict[str, gr.components.Component] = {}  # component name -> component, for the handlers' updates


def named(name: str, component):
    C[name] = component
    return component


def bind(fn, n_outputs: int):
    """The handler with its name-keyed updates turned into component-keyed ones; no updates (a
    stale result) leave every output as it is."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return {C[k]: v for k, v in out.items()} if out else tuple(gr.skip() for _ in range(n_outputs))
    return wrapper


def wire(event, fn, inputs: list[str], busy: bool = True, **kwargs):
    """Connect `fn` to `event` with the outputs it declares; `busy`: Download waits until it ends."""
    kwargs.setdefault("api_visibility", "private")
    kwargs.setdefault("trigger_mode", "always_last")
    dep = event(bind(fn, len(fn.outputs)), [C[n] for n in inputs], [C[n] for n in fn.outputs],
                js=BUSY if busy else None, **kwargs)
    return dep.then(None, js=IDLE) if busy else dep


session.serve_images_atomically()  # a picture shown twice must not be rewritten while it is fetched

with gr.Blocks(title="Mien: change a facial expression",
               delete_cache=(session.sweep_s(), session.CACHE_TTL_S - session.sweep_s())) as demo:
    named("state", gr.State(None))  # {"path", "key", "n"} of the current photo
    named("plan", gr.State({}))  # face index -> (emotion, intensity 0..1.5, extra AUs)
    named("history", gr.State([]))  # the checked plans, for "Undo last step"
    named("last", gr.State(None))  # FaceEdit list of the last checked result
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False, elem_id="main"):
        with gr.Column(min_width=300, elem_id="controls-col"):
            named("photo", PhotoInput(label="Your photo", sources=["upload", "clipboard", "webcam"], height=260,
                                      elem_id="photo"))
            named("upload_msg", gr.HTML("", elem_id="upload-msg"))
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[C["photo"]],
                            label="Examples (Face Research Lab London Set, CC BY 4.0)", examples_per_page=8)
            named("faces_img", gr.Image(label="Faces found (numbered left to right)", interactive=False,
                                        visible=False, height=220, format="jpeg", buttons=[], elem_id="faces"))
            named("target", gr.Radio([("All faces", "all")], value="all", label="Edit which face?", visible=False,
                                      elem_id="target"))
            named("emotion", gr.Radio([(e, e) for e in EMOTIONS], value="happy", label="Emotion", elem_id="emotion"))
            named("intensity", gr.Slider(0, AU_MAX, value=100, step=5, label="Intensity (%)",
                                         info="100% = clear and natural; above that, exaggerated",
                                         elem_id="intensity", elem_classes=["mien-slider-input"], buttons=[]))
            with gr.Row():
                named("auto", gr.Checkbox(False, label="Auto strength (raise or lower it until the check passes)",
                                          elem_id="auto"))
                named("leave", gr.Checkbox(False, label="Leave rejected faces unchanged", elem_id="leave"))
                named("teeth", gr.Checkbox(True, label="Open the mouth (show teeth)", elem_id="teeth",
                                           info="Off: no emotion parts the lips (a closed-lip smile; surprised "
                                                "and fearful keep the mouth shut too)"))
            with gr.Row():
                named("undo", gr.Button("Undo last step", size="sm", elem_id="undo"))
                named("reset", gr.Button("Undo all edits", size="sm", elem_id="reset"))
            named("verdict", gr.Markdown("", elem_id="verdict"))
            with gr.Row():
                named("before_lbl", gr.Label(label="Scores before", num_top_classes=8, min_width=150,
                                             elem_id="scores-before"))
                named("after_lbl", gr.Label(label="Scores after", num_top_classes=8, min_width=150,
                                            elem_id="scores-after"))
            with gr.Accordion("Advanced: individual face movements (action units)", open=False, elem_id="aus"):
                gr.Markdown("Added on top of the emotion, in % (negative values push the other way).")
                for k, n in zip(h.AU_KEYS, h.AU_IDS):
                    named(n, gr.Slider(-AU_MAX, AU_MAX, value=0, step=5, label=f"{AU_NAMES[k]} ({k})", elem_id=n,
                                       elem_classes=["mien-slider-input"], buttons=[]))
            with gr.Accordion("Intensity strip: the face at 0, 25, ..., 150%", open=False, elem_id="strip-box"):
                named("strip_btn", gr.Button("Make the strip", size="sm"))
                named("strip", gr.Gallery(label="Intensity strip", columns=4, height="auto", object_fit="contain",
                                          format="jpeg", allow_preview=False, elem_id="strip"))
        with gr.Column(min_width=300, elem_id="result-col"):
            named("banner", gr.Markdown("", visible=False, elem_id="banner"))
            named("result", gr.Image(label="Result", type="numpy", format="jpeg", height=460, interactive=False,
                                     buttons=["fullscreen"], elem_id="result"))
            named("before", gr.Image(label="Before", type="filepath", height=460, interactive=False, buttons=[],
                                     elem_id="before"))
            named("compare", gr.ImageSlider(label="Before / after", type="numpy", format="jpeg", height=460,
                                            interactive=False, buttons=[], elem_id="compare"))
            with gr.Row(elem_id="result-actions"):
                named("hold", gr.Button("Hold to show before", elem_id="hold"))
                named("download", gr.DownloadButton("Download full-resolution PNG", interactive=False,
                                                    variant="primary", elem_id="download"))
            named("status", gr.Markdown(h.EMPTY, elem_id="status"))
            named("slider_mode", gr.Checkbox(False, label="Compare with a before/after slider instead",
                                             elem_id="slider-mode"))

    with gr.Row(visible=False):  # the named API endpoint (gradio_client), not shown in the page
        api_in = [PhotoInput(label="image"), gr.Textbox(value="happy", label="emotion"),
                  gr.Number(value=1.0, label="intensity"), gr.Textbox(value="all", label="faces"),
                  gr.Textbox(value="", label="aus")]
        api_out = [gr.Image(type="filepath", format="png", label="edited image"), gr.JSON(label="summary")]
        api_btn = gr.Button("edit")

    edit_in = ["state", "plan", "history", "target", *h.CONTROLS]
    wire(C["photo"].change, h.on_photo, ["photo", "state", *h.CONTROLS], show_progress="minimal")
    wire(C["emotion"].input, h.on_control, edit_in, show_progress="minimal")
    for name in ["intensity", *h.AU_IDS]:
        wire(C[name].input, h.on_drag, edit_in, busy=False, show_progress="hidden")
        wire(C[name].release, h.on_control, edit_in, show_progress="minimal")
    for name in h.OPTIONS:
        wire(C[name].input, h.on_control, edit_in, show_progress="minimal")
    wire(C["target"].input, h.on_target, ["state", "plan", "target", "last"], busy=False, show_progress="hidden",
         trigger_mode=None)
    wire(C["reset"].click, h.on_reset, ["state", "history", "target", *h.OPTIONS], trigger_mode=None)
    wire(C["undo"].click, h.on_undo_step, ["state", "history", "target", *h.OPTIONS], trigger_mode=None)
    wire(C["strip_btn"].click, h.on_strip, ["state", "target", "emotion", "teeth", *h.AU_IDS], busy=False,
         trigger_mode=None)
    C["slider_mode"].input(None, [C["slider_mode"]], None, js=SLIDER_MODE)
    api_btn.click(h.api_edit, api_in, api_out, api_name="edit")

demo.queue(default_concurrency_limit=2, max_size=32)


def launch(**kwargs):
    kwargs.setdefault("max_file_size", imageio.MAX_BYTES)
    session.start_sweeper()
    return demo.launch(css=CSS, head=HEAD, theme=gr.themes.Soft(), footer_links=["api"], **kwargs)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    t_import = time.perf_counter() - _T_START
    warm_s = h.warm(EXAMPLES[0] if EXAMPLES else None)
    launch(prevent_thread_lock=True)
    print(f"Mien ready in {time.perf_counter() - _T_START:.1f} s (imports {t_import:.1f} s, "
          f"models warmed {warm_s:.1f} s)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
