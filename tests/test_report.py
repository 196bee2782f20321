"""The HTML report: self-contained, and rendered by a real browser with every figure loading."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from global_workspace.experiments.figures import experiment_figures
from global_workspace.experiments.report import Report, format_number, png_bytes

CHROMIUM = "/usr/bin/chromium"

_CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-broken", String(broken));
  document.body.setAttribute("data-errors", String(window.__errors.length));
});
</script>"""


def render_in_chromium(report: Path, tmp: Path) -> tuple[dict[str, int], list[str]]:
    """Open a copy of `report` with a checking script in headless Chromium.

    Returns the counts the script wrote into the DOM (images, broken images, page errors) and the
    console lines Chromium logged (the report itself has no script, so any line is a problem).
    """
    page = tmp / "checked.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("<head>", "<head>" + _CHECK, 1), encoding="utf-8"
    )
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body, f"no <body> in Chromium's DOM dump: {proc.stdout[:500]}"
    attrs = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return {k: int(v) for k, v in attrs.items()}, console


def assert_renders(report: Path, tmp: Path, min_images: int) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} is not installed, so the report cannot be rendered here; "
            "`apt-get install chromium` (done by .ci/run as root) enables this test"
        )
    counts, console = render_in_chromium(report, tmp)
    assert counts.get("images", 0) >= min_images, counts
    assert counts["broken"] == 0, counts
    assert counts["errors"] == 0, counts
    assert console == [], console


def _rows() -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    for preset, scale in (("tr", 1.0), ("full", 0.3)):
        for n in (10, 100, 1000):
            for seed in (0, 1):
                rows.append(
                    {
                        "preset": preset,
                        "paired": n,
                        "seed": seed,
                        "translation/a_to_b/latent_mse": scale * n**-0.5 * (1 + 0.1 * seed),
                        "translation/a_to_b/shape_accuracy": 1 - scale * n**-0.3,
                        "probe/a/shape_accuracy": 0.5 + 0.1 * seed,
                    }
                )
    return rows


def test_png_encoder_writes_a_valid_png() -> None:
    image = np.zeros((4, 5, 3), dtype=np.uint8)
    image[1, 2] = (255, 0, 0)
    data = png_bytes(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    import io

    import matplotlib.image as mpimg

    back = mpimg.imread(io.BytesIO(data), format="png")
    assert back.shape[:2] == (4, 5)
    assert np.allclose(back[..., :3] * 255, image, atol=0.5)


def test_number_format() -> None:
    assert format_number(3) == "3"
    assert format_number(0.123456) == "0.123"
    assert format_number(float("nan")) == "n/a"
    assert format_number(None) == "n/a"
    assert format_number(123456.0) == "1.23e+05"


def test_report_is_self_contained_and_renders(tmp_path: Path) -> None:
    figures = experiment_figures(_rows(), tmp_path, presets=["tr", "full"], baselines={})
    assert {f.name for f in figures} >= {"translation", "coherence", "downstream"}
    for f in figures:
        assert f.png.stat().st_size > 1000 and f.svg.read_text().lstrip().startswith("<?xml")
    report = Report("A test report <with> escaping")
    report.heading("Curves")
    for f in figures:
        report.figure(f.svg, f.caption)
    report.figure(figures[0].png, "the PNG too")
    report.table(["preset", "loss"], [["tr", 0.5], ["full", float("nan")]], caption="a table")
    picture = np.zeros((32, 32, 3), dtype=np.uint8)
    picture[8:24, 8:24] = (30, 200, 90)
    report.pictures(["truth", "caption", "N=10"], [[picture, "a green square", picture]])
    out = report.write(tmp_path / "report.html")
    text = out.read_text()
    assert "&lt;with&gt;" in text
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert text.count("<img") == len(figures) + 1 + 2
    assert_renders(out, tmp_path, min_images=len(figures) + 3)


def test_chromium_check_catches_a_broken_image(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed; the rendering check cannot be exercised")
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head></head><body><img src="nothing-here.png"></body></html>')
    counts, _ = render_in_chromium(page, tmp_path)
    assert counts["broken"] == 1


def test_chromium_is_found_when_installed() -> None:
    if shutil.which("chromium") and not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is on PATH but not at {CHROMIUM}; update CHROMIUM in this test")


def test_a_paper_scale_pair_axis_has_plain_labels_that_do_not_run_together() -> None:
    from matplotlib.figure import Figure

    from global_workspace.experiments.figures import draw_metric

    ns = [250, 1000, 4000, 16000, 500000]
    rows = [{"preset": "tr", "paired": n, "seed": 0, "translation/sum/latent_mse": 1.0 / n} for n in ns]
    fig = Figure()
    ax = fig.add_subplot()
    assert draw_metric(ax, rows, "translation/sum/latent_mse", ["tr"])
    lo, hi = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert labels == ["1k", "10k", "100k"]  # one per decade over 3.3 decades, none in mathtext or e-notation
    short = [{**r, "paired": r["paired"] // 100} for r in rows[:3]]  # 2-40 pairs: 1-2-5 steps
    ax = fig.add_subplot()
    draw_metric(ax, short, "translation/sum/latent_mse", ["tr"])
    lo, hi = ax.get_xlim()
    assert [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi][:3] == [
        "2",
        "5",
        "10",
    ]
