"""Look at an `xformer compare` report.html in headless Chromium: desktop, phone and print.

    python benchmarks/check_report_html.py REPORT_DIR [--out DIR] [--pdf-png]

REPORT_DIR is a folder written by `xformer compare` (or the report.html itself). The script checks what a
person opening the page would notice, and writes what Chromium drew into --out (default: a new folder under
/tmp, printed at the end) so that you can look at it:

  self-contained  no http(s)://, protocol-relative (//host) or file reference in any src, href, srcset,
                  poster or style url(); no <script src>, <link rel=stylesheet> or @import
  images          every <img> is an inlined data:image/png;base64 that Pillow decodes, not empty
  desktop.png     1280 px wide screenshot (--window-size=1280,2400): not blank
  phone.png       420 px wide screenshot (a phone): not blank
  in the browser  after load, at 1280 and at 420 px: every <img> is complete with a natural width > 0, the
                  page itself is no wider than the window (wide tables scroll inside their own box), no
                  image is drawn wider than the page
  report.pdf      Chromium's --print-to-pdf --no-pdf-header-footer: a PDF with at least one page
  (--pdf-png)     the PDF's pages as pdf-N.png at 60 dpi, when poppler's pdftoppm is installed

One line per check ("ok ..." or "FAIL ..."); exit status 0 when all pass, 1 when one fails, 2 with one line
when Chromium is missing (`apt-get install chromium`) or REPORT_DIR has no report.html. Set CHROMIUM to the
binary's path to use another one (chromium, chromium-browser, google-chrome are looked up on PATH).
Chromium runs with networking off (--disable-background-networking, --disable-component-update, ...) and a
throw-away profile; each call takes about a second.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]
EXTERNAL = re.compile(r"^\s*(https?:|//|file:|ftp:)", re.I)
# the page in an iframe of the given width (headless Chromium lays a window out at 500 px at least) and, after
# load, what the browser laid out, written into the DOM for --dump-dom
PROBE = """<!doctype html><html><body style="margin:0"><iframe id="page" style="border:0;width:{width}px;
height:2400px" srcdoc="{page}"></iframe><script>window.addEventListener('load',function(){{
var d=document.getElementById('page').contentDocument,e=d.documentElement,imgs=[].slice.call(d.images),
w=e.clientWidth;var r={{width:w,scroll_width:e.scrollWidth,images:imgs.length,
broken:imgs.filter(function(i){{return!(i.complete&&i.naturalWidth>0)}}).length,
too_wide:imgs.filter(function(i){{return i.getBoundingClientRect().right>w+1}}).length}};
var p=document.createElement('pre');p.id='xformer-check';p.textContent=JSON.stringify(r);
document.body.appendChild(p)}});</script></body></html>"""


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.external, self.images, self.in_style, self.style = [], [], False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_style = tag == "style"
        for key in ("src", "href", "srcset", "poster", "data", "action"):
            if attrs.get(key) and EXTERNAL.match(attrs[key]):
                self.external.append(f"<{tag} {key}={attrs[key][:60]}>")
        if tag == "script" and attrs.get("src"):
            self.external.append(f"<script src={attrs['src'][:60]}>")
        if tag == "link" and "stylesheet" in (attrs.get("rel") or ""):
            self.external.append(f"<link rel=stylesheet href={attrs.get('href', '')[:60]}>")
        if attrs.get("style"):
            self.style.append(attrs["style"])
        if tag == "img":
            self.images.append(attrs.get("src") or "")

    def handle_endtag(self, tag):
        self.in_style = False if tag == "style" else self.in_style

    def handle_data(self, data):
        if self.in_style:
            self.style.append(data)


def find_chromium() -> str | None:
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else []
    for name in names + ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(binary: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def static_checks(page_text: str) -> list[tuple[bool, str]]:
    from PIL import Image
    page = _Page()
    page.feed(page_text)
    external = page.external + [f"url({u[:60]})" for s in page.style for u in re.findall(r"url\(\s*['\"]?([^)'\"]+)", s)
                                if EXTERNAL.match(u)]
    external += ["@import"] * sum("@import" in s for s in page.style)
    checks = [(not external, "self-contained: no external reference" if not external
               else f"external references: {', '.join(external[:5])}")]
    bad = []
    for k, src in enumerate(page.images):
        head, _, data = src.partition(",")
        try:
            if not head.startswith("data:image/") or ";base64" not in head:
                raise ValueError("not an inlined base64 image")
            with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as im:
                im.load()
                if min(im.size) < 1:
                    raise ValueError("empty")
        except Exception as err:  # any failure to decode is the finding
            bad.append(f"image {k + 1} ({err})")
    checks.append((bool(page.images) and not bad, f"images: {len(page.images)} inlined PNGs decode"
                   if page.images and not bad else f"images: {', '.join(bad) or 'none in the page'}"))
    return checks


def not_blank(png: Path) -> tuple[bool, str]:
    from PIL import Image
    with Image.open(png) as im:
        gray = im.convert("L")
        inked = sum(gray.histogram()[:200]) / (gray.width * gray.height)
        ok = inked > 0.01 and gray.getextrema()[0] < 100
        return ok, f"{png.name}: {im.width}x{im.height}, {inked:.1%} of pixels inked" + ("" if ok else " (blank?)")


def browser_checks(binary: str, html_path: Path, out: Path, pdf_png: bool) -> list[tuple[bool, str]]:
    checks, url = [], html_path.resolve().as_uri()
    for name, width in (("desktop", 1280), ("phone", 420)):
        png = out / f"{name}.png"
        _chromium(binary, [f"--screenshot={png}", f"--window-size={width},2400", url])
        checks.append(not_blank(png) if png.exists() else (False, f"{png.name}: Chromium wrote no screenshot"))
        probe = out / f"probe_{name}.html"
        page = html.escape(html_path.read_text(encoding="utf-8"), quote=True)
        probe.write_text(PROBE.format(width=width, page=page), encoding="utf-8")
        dom = _chromium(binary, ["--dump-dom", "--virtual-time-budget=5000", f"--window-size={width + 40},2400",
                                 probe.resolve().as_uri()]).stdout
        probe.unlink()
        found = re.search(r"<pre id=\"xformer-check\">(.*?)</pre>", dom, re.S)
        if not found:
            checks.append((False, f"{name}: the page did not finish loading in Chromium"))
            continue
        r = json.loads(html.unescape(found.group(1)))
        ok = r["broken"] == 0 and r["scroll_width"] <= r["width"] and r["too_wide"] == 0 and r["images"] > 0
        checks.append((ok, f"{name} ({r['width']} px): {r['images']} images, {r['broken']} not loaded, page "
                           f"{r['scroll_width']} px wide, {r['too_wide']} images wider than the page"))
    pdf = out / "report.pdf"
    _chromium(binary, [f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url])
    data = pdf.read_bytes() if pdf.exists() else b""
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", data))
    checks.append((data.startswith(b"%PDF") and pages > 0, f"report.pdf: {pages} pages, {len(data) // 1024} KiB"))
    if pdf_png and pages and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(out / "pdf")], check=False, timeout=120)
        checks.append((True, f"pdf-*.png: {len(list(out.glob('pdf-*.png')))} pages at 60 dpi"))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="report folder of xformer compare, or its report.html")
    parser.add_argument("--out", help="folder for the screenshots and the PDF (default: a new one under /tmp)")
    parser.add_argument("--pdf-png", action="store_true", help="also the PDF's pages as PNGs (needs pdftoppm)")
    args = parser.parse_args(argv)
    html_path = Path(args.report)
    html_path = html_path / "report.html" if html_path.is_dir() else html_path
    if not html_path.is_file():
        print(f"no report.html at {args.report}: pass the folder `xformer compare --out` wrote")
        return 2
    binary = find_chromium()
    if binary is None:
        print("no Chromium on PATH: install it (`apt-get install chromium`) or set CHROMIUM to its binary")
        return 2
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="report_html_"))
    out.mkdir(parents=True, exist_ok=True)
    checks = static_checks(html_path.read_text(encoding="utf-8")) + browser_checks(binary, html_path, out, args.pdf_png)
    for ok, line in checks:
        print(("ok   " if ok else "FAIL ") + line)
    print(f"screenshots and PDF in {out}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
