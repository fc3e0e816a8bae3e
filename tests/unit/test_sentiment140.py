import pytest

from sentiment.sentiment140 import ReadStats, iter_rows, parse_date, read_labelled

pytestmark = pytest.mark.unit

SIX = (
    '"0","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","alice","sad day"\n'
    '"4","2","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","bob","happy ""quoted"" day"\n'
    '"4","3","not a date","NO_QUERY","carol","bad date"\n'
    '"9","4","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","dan","bad polarity"\n'
    '"0","5","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","erin","multi\nline"\n'
    '"2","6","Mon Apr 06 22:19:49 PDT 2009","NO_QUERY","fay","neutral one"\n'
    "just one column\n"
)


def test_six_column_format(tmp_path):
    f = tmp_path / "six.csv"
    f.write_text(SIX, encoding="utf-8")
    stats = ReadStats()
    rows = list(iter_rows(f, stats))
    assert [r.polarity for r in rows] == [0, 4, 0, 2]
    assert rows[1].text == 'happy "quoted" day'
    assert rows[0].tweet.created_at == "2009-04-07T05:19:45Z" and rows[0].tweet.user == "alice"
    assert rows[2].text == "multi\nline"
    assert stats.malformed == 3
    assert any("not a date" in e for e in stats.examples)
    assert any(e.startswith(f"{f}:4:") and "'9'" in e for e in stats.examples)
    assert any(e.startswith(f"{f}:8:") for e in stats.examples)  # physical line, after the two-line row


def test_text_only_format(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text('polarity,text\n0,meh\n4,"yay, great"\nx,bad\n', encoding="utf-8")
    texts, pols = read_labelled(f)
    assert texts == ["meh", "yay, great"]
    assert pols == [0, 4]


def test_latin1_fallback(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes('"4","1","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u","caf\xe9 time"\n'.encode("latin-1"))
    stats = ReadStats()
    rows = list(iter_rows(f, stats))
    assert stats.encoding == "latin-1"
    assert rows[0].text == "caf\u00e9 time"


def test_unknown_format_is_an_error(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="six columns"):
        list(iter_rows(f))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such Sentiment140 file"):
        list(iter_rows("/nonexistent/file.csv"))


def test_parse_date_converts_to_utc():
    assert parse_date("Tue Jun 16 08:40:49 PDT 2009") == "2009-06-16T15:40:49Z"
    with pytest.raises(ValueError, match="time zone"):
        parse_date("Tue Jun 16 08:40:49 XYZ 2009")
