"""The web app's parts below the layout (`app.py` keeps only the Gradio Blocks and the launch):

- `session`: the per-photo cache (decode + detect once, TTL, sweeper), work files, downloads, and
  the per-browser-session ordering that keeps a stale result from overwriting a newer one;
- `views`: what is drawn or written for the user (numbered faces, the intensity strip, the check
  table, the banner for a rejected edit, plain-words status lines);
- `handlers`: the event handlers; they call the library's `edit()` / `detect()` and read its
  `EditResult` / `FaceEdit` objects, and return their updates keyed by component name.
"""
