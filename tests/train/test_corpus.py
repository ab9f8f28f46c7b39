"""Reading novels: encodings, cleaning, splitting, and clear errors."""

import pytest

from tests.conftest import SHARED_CORPUS, make_story
from train.corpus import (
    CorpusError,
    clean,
    decode,
    drop_repeats,
    find_text_files,
    read_corpus,
    read_novel,
    split_tail,
)

STORY = make_story(11, paragraphs=6)
TRADITIONAL = "　　喬峰說道：「這個人是誰？」段譽點頭，來到大理國。他們為了這件事，後來又說了很多話。\n" * 20


@pytest.mark.parametrize("raw,encoding", [
    (STORY.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + STORY.encode("utf-8"), "utf-8-sig"),
    (STORY.encode("gb18030"), "gb18030"),
    (STORY.encode("gbk"), "gb18030"),
    (TRADITIONAL.encode("big5"), "big5"),
])
def test_detects_encoding(raw, encoding):
    text, found, dropped = decode(raw)
    assert dropped == 0
    assert found == encoding
    assert text.lstrip("\ufeff") in (STORY, TRADITIONAL)


def test_clean_normalises_line_endings_and_drops_site_lines():
    raw = ("本书来自www.wmtxt.com免费txt小说下载站\r\n　　第一行。\r\r\n"
           "　　第二行。----〖新语丝电子文库(www.xys.org)〗\r\n"
           "更多更新免费电子书请关注www.wmtxt.com\r\n一九七八&#183;十\r")
    text, dropped = clean(raw)
    assert dropped == 2
    assert text == "　　第一行。\n　　第二行。\n一九七八·十\n"


def test_clean_keeps_full_width_indent_and_blank_lines():
    text, dropped = clean("第一章\n\n　　他笑了。\n")
    assert (text, dropped) == ("第一章\n\n　　他笑了。\n", 0)


def test_read_novel_reports_encoding_and_drops(tiny_corpus):
    novel = read_novel(tiny_corpus / "two.txt")
    assert novel.encoding == "gb18030"
    assert novel.lines_dropped == 2
    assert "\r" not in novel.text and "www" not in novel.text
    assert novel.text.startswith("　　")
    assert len(novel.sha256) == 64


def test_read_corpus_prints_one_line_per_file(tiny_corpus):
    lines = []
    novels = read_corpus([tiny_corpus], report=lines.append)
    assert [n.path.name for n in novels] == ["one.txt", "three.txt", "two.txt"]
    assert len(lines) == 3 and all("chars kept" in line and "lines dropped" in line for line in lines)


def test_split_holds_out_the_tail():
    head, tail = split_tail("x" * 1000, 0.05)
    assert (len(head), len(tail)) == (950, 50)


@pytest.mark.parametrize("content,message", [
    (b"", "empty"),
    (b"\x00\x01\x02binary\x00", "binary"),
    (b"\xff\xfe\xfa\xfb" * 100 + b"\x80", "not UTF-8, GB18030 or Big5"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        read_novel(p)
    assert message in str(e.value) and str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        find_text_files([tmp_path / "nope.txt"])
    with pytest.raises(CorpusError, match="no .txt, .txt.xz, .txt.gz or .zip files"):
        find_text_files([tmp_path])


@pytest.mark.skipif(not (SHARED_CORPUS / "raw").exists(), reason="../shared/corpus not present")
def test_raw_gb18030_download_equals_clean_utf8_copy():
    raw = read_novel(next((SHARED_CORPUS / "raw").glob("*.txt")))
    clean_copy = read_novel(SHARED_CORPUS / "jinyong" / "天龙八部.txt")
    assert raw.encoding == "gb18030"
    assert raw.text == clean_copy.text


def test_a_few_undecodable_bytes_are_dropped_and_counted_not_the_novel(tmp_path):
    good = STORY.encode("gb18030")
    cut = good.index("。".encode("gb18030"))
    slipped = good[:cut] + b"\xff\xff" + good[cut:]  # two bytes no encoding reads
    text, enc, dropped = decode(slipped)
    assert (text, enc, dropped) == (STORY, "gb18030", 2)
    (tmp_path / "slip.txt").write_bytes(slipped)
    lines = []
    novel = read_corpus([tmp_path / "slip.txt"], report=lines.append)[0]
    assert novel.bytes_dropped == 2 and "2 undecodable bytes dropped" in lines[0]
    with pytest.raises(CorpusError, match="not UTF-8, GB18030 or Big5"):  # many: another encoding, not a slip
        decode(b"\xff".join(good[i:i + 40] for i in range(0, len(good), 40)))


def test_a_long_paragraph_copied_twice_keeps_one_copy():
    long = "　　" + "乔峰站在雁门关外，望着远处的群山，心中想起了许多往事，不由得长长叹了一口气。"
    text = "\n".join([long, "　　“是。”", "-" * 40, "　　阿朱点头。", long, "　　“是。”", "-" * 40]) + "\n"
    kept, dropped = drop_repeats(text)
    assert dropped == 1
    assert kept == "\n".join([long, "　　“是。”", "-" * 40, "　　阿朱点头。", "　　“是。”", "-" * 40]) + "\n"


def test_the_reader_reports_repeated_paragraphs_per_file(tmp_path):
    paragraph = "　　" + "段誉" * 20 + "。"
    (tmp_path / "twice.txt").write_text(paragraph + "\n" + STORY + paragraph + "\n", encoding="utf-8")
    lines = []
    novel = read_corpus([tmp_path], report=lines.append)[0]
    assert novel.repeats_dropped == 1 and novel.text.count(paragraph) == 1
    assert "1 repeated paragraphs dropped" in lines[0]
