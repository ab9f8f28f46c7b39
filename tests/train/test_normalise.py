"""Normalisation: each rule on a small synthetic text, compressed files, and the raw shared copy."""

import gzip
import lzma
import random
import zipfile

import pytest

from tests.conftest import SHARED_CORPUS, make_story
from train.corpus import CorpusError, find_text_files, read_corpus, read_novel
from train.normalise import Normalisation, normalise, rejoin_wrapped, simplify, wrap_width

OFF = dict(rejoin=False, quotes="keep", simplify=False, drop_marks=False)


def wrapped(paragraphs: list[str], width: int = 20) -> str:
    """Hard-wrap paragraphs as downloads do: every line indented, cut at `width` characters."""
    lines = []
    for p in paragraphs:
        lines.extend("　　" + p[i:i + width] for i in range(0, len(p), width))
    return "\n".join(lines) + "\n"


PARAGRAPHS = [make_story(seed, paragraphs=1).strip("　\n") for seed in range(40)]


def prose(seed: int, paragraphs: int) -> str:
    """Unwrapped prose whose paragraph lengths vary as a novel's do (a few characters to a few hundred)."""
    rng = random.Random(seed)
    filler = "他心中一动却不说话只是向前走了几步抬头望去"
    out = []
    for _ in range(paragraphs):
        sentences = ["".join(rng.choice(filler) for _ in range(rng.randint(3, 30))) + "。"
                     for _ in range(rng.randint(1, 8))]
        out.append("　　" + "".join(sentences))
    return "\n".join(out) + "\n"


def test_hard_wrapped_paragraphs_are_rejoined_and_real_breaks_stay():
    text = wrapped(PARAGRAPHS)
    assert wrap_width(text.split("\n")) == 20
    out, joined, width = rejoin_wrapped(text)
    assert width == 20 and joined > 0
    # A full line that ends a sentence keeps its break (it may end a paragraph): paragraphs come back
    # whole or split at a sentence end, never mid-sentence.
    kept = [line.strip("　") for line in out.strip("\n").split("\n")]
    assert "".join(kept) == "".join(PARAGRAPHS)
    assert all(line.endswith("。”") for line in kept)
    assert sum(p in kept for p in PARAGRAPHS) >= 0.9 * len(PARAGRAPHS)
    assert all(line.startswith("　　") for line in out.strip("\n").split("\n"))


def test_unwrapped_prose_is_left_alone():
    text = prose(5, paragraphs=200)
    assert wrap_width(text.split("\n")) == 0
    assert rejoin_wrapped(text) == (text, 0, 0)


def test_a_file_wrapped_in_part_is_rejoined_only_there():
    unwrapped = prose(9, paragraphs=60)
    text = unwrapped + wrapped(PARAGRAPHS * 2)
    out, joined, _ = rejoin_wrapped(text)
    assert out.startswith(unwrapped)  # the unwrapped half keeps every paragraph break
    assert joined > 0


def test_quotes_become_one_style_either_way():
    text = "　　他道：「你说『好』吗？」\n"
    curly, changes = normalise(text, Normalisation(**{**OFF, "quotes": "curly"}))
    assert curly == "　　他道：“你说‘好’吗？”\n" and changes.quotes_converted == 4
    corner, _ = normalise(curly, Normalisation(**{**OFF, "quotes": "corner"}))
    assert corner == text
    with pytest.raises(ValueError, match="quote style"):
        normalise(text, Normalisation(quotes="fancy"))


def test_traditional_and_variant_forms_become_simplified():
    out, changed = simplify("他沈吟半晌，說道：「這是甚麽？」接著看著那部著名的著作，後來於是乾淨了。")
    assert out == "他沉吟半晌，说道：「这是甚么？」接着看着那部著名的著作，后来于是干净了。"
    assert changed == 11


def test_missing_glyph_marks_are_dropped_and_counted():
    out, changes = normalise("郭靖□道：“〓好\ufffd。”\n", Normalisation(**{**OFF, "drop_marks": True}))
    assert out == "郭靖道：“好。”\n" and changes.marks_dropped == 3


def test_every_rule_can_be_switched_off():
    text = "　　他沈吟道：「□」\n"
    assert normalise(text, Normalisation(**OFF))[0] == text


@pytest.mark.parametrize("suffix", [".txt", ".txt.xz", ".txt.gz", ".zip"])
def test_compressed_novels_read_like_plain_ones(tmp_path, suffix):
    raw = ("本书来自www.example.com\r\n" + wrapped(PARAGRAPHS).replace("\n", "\r\n")).encode("gb18030")
    path = tmp_path / f"书名{suffix}"
    if suffix == ".txt":
        path.write_bytes(raw)
    elif suffix == ".txt.xz":
        path.write_bytes(lzma.compress(raw))
    elif suffix == ".txt.gz":
        path.write_bytes(gzip.compress(raw))
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("书名.txt", raw)
            z.writestr("readme.md", b"not a novel")
    assert find_text_files([tmp_path]) == [path]
    novel = read_novel(path)
    assert novel.name == "书名" and novel.encoding == "gb18030" and novel.lines_dropped == 1
    assert novel.changes.lines_rejoined > 0
    assert "".join(line.strip("　") for line in novel.text.split("\n")) == "".join(PARAGRAPHS)


def test_a_zip_of_several_novels_gives_one_each(tmp_path):
    path = tmp_path / "novels.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("甲.txt", make_story(1).encode())
        z.writestr("乙.txt", make_story(2).encode())
    lines = []
    novels = read_corpus([path], report=lines.append)
    assert [n.name for n in novels] == ["乙", "甲"] or [n.name for n in novels] == ["甲", "乙"]
    assert {n.file for n in novels} == {"novels.zip:甲.txt", "novels.zip:乙.txt"}
    assert len(lines) == 2 and all("re-joined" in line and "marks dropped" in line for line in lines)


def test_damaged_compressed_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.txt.xz"
    path.write_bytes(b"not xz at all")
    with pytest.raises(CorpusError, match="damaged") as e:
        read_novel(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(not (SHARED_CORPUS / "raw").exists(), reason="../shared/corpus not present")
def test_raw_download_normalises_like_the_clean_copy_and_the_hard_wrapped_novel_reads_as_a_book():
    raw = read_novel(next((SHARED_CORPUS / "raw").glob("*.txt")))
    assert raw.text == read_novel(SHARED_CORPUS / "jinyong" / "天龙八部.txt").text
    assert "「" not in raw.text and "□" not in raw.text and "麽" not in raw.text
    wrapped_novel = read_novel(SHARED_CORPUS / "jinyong" / "射雕英雄传.txt.xz")
    assert wrapped_novel.changes.wrap_width > 0 and wrapped_novel.changes.lines_rejoined > 5000
    lines = [line.strip("　") for line in wrapped_novel.text.split("\n") if line.strip()]
    full = sum(wrapped_novel.changes.wrap_width - 3 <= len(line) <= wrapped_novel.changes.wrap_width for line in lines)
    assert full / len(lines) < 0.05  # was over half of the lines
    for mark in "「」『』□":
        assert mark not in wrapped_novel.text


def test_space_indents_and_paragraphs_run_together_become_book_paragraphs():
    text = "第一章 刀\n    冷风如刀。\xa0\xa0\xa0\xa0万里飞雪。    雪将住。\n"
    out, changes = normalise(text, Normalisation(**{**OFF, "rejoin": True}))
    assert out == "第一章 刀\n　　冷风如刀。\n　　万里飞雪。\n　　雪将住。\n"
    assert changes.indents_fixed == 3


def test_ocr_slips_become_what_the_book_printed_and_are_counted():
    out, changes = normalise("他叹了囗气，开囗道：“好。”\n")
    assert out == "他叹了口气，开口道：“好。”\n" and changes.slips_fixed == 2
    assert "2 OCR slips fixed" in changes.summary() and changes.as_dict()["slips_fixed"] == 2
    kept, none = normalise("他叹了囗气。\n", Normalisation(fix_slips=False))
    assert kept == "他叹了囗气。\n" and none.slips_fixed == 0
