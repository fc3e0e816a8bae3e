import pandas as pd
import pytest
from PIL import Image

from dashboard.demo import Demo, write_demo_output
from dashboard.report import build_figure, main, summary, write_report

pytestmark = pytest.mark.integration

DEMO = Demo(minutes=40, spike=("python", 35))


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    trends = write_demo_output(root, DEMO)
    return root, trends


def test_command_writes_a_png_and_a_page(output, tmp_path):
    root, _ = output
    assert main(["--output-root", str(root), "--out", str(tmp_path / "r.png"), "--html", str(tmp_path / "r.html")]) == 0
    with Image.open(tmp_path / "r.png") as image:
        assert image.format == "PNG" and image.size == (1200, 900)
    page = (tmp_path / "r.html").read_text()
    assert "data:image/png;base64," in page
    assert "2026-11-28 09:35:00" in page and "python" in page  # the alert's row


def test_every_window_of_every_keyword_is_drawn_and_the_alert_marked(output):
    root, trends = output
    from dashboard.data import OutputReader

    reader = OutputReader(root)
    fig = build_figure(reader.trends(), reader.alerts())
    counts, score, negative = fig.axes
    assert [(line.get_label(), len(line.get_xdata())) for line in counts.get_lines()] == [
        ("python", 40),
        ("rust", 40),
        ("weather", 40),
    ]
    (crosses,) = negative.collections
    assert crosses.get_label() == "alert"
    assert crosses.get_offsets().shape == (1, 2)
    assert crosses.get_offsets()[0][1] == pytest.approx(
        trends.set_index(["keyword", "window_start"]).loc[
            ("python", DEMO.start + pd.Timedelta(minutes=35)), "negative_share"
        ]
    )
    assert "1 alert(s)" in fig.get_suptitle()


def test_summary_per_keyword(output):
    _, trends = output
    table = summary(trends)
    assert table.loc["python", "windows"] == 40 and table.loc["python", "tweets"] == 40 * 40
    shares = table[["negative_share", "neutral_share", "positive_share"]].sum(axis=1)
    assert shares.tolist() == pytest.approx([1, 1, 1])


def test_keywords_filter_and_an_empty_output_is_an_error_that_says_so(output, tmp_path, caplog):
    root, _ = output
    write_report(root, tmp_path / "rust.png", keywords=["rust"])
    assert (tmp_path / "rust.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no trends for nothing"):
        write_report(root, tmp_path / "x.png", keywords=["nothing"])
    assert main(["--output-root", str(tmp_path / "empty"), "--out", str(tmp_path / "e.png")]) == 1
    assert "no trends in" in caplog.text and not (tmp_path / "e.png").exists()
