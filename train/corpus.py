"""Reading novels: find the files, decompress and decode them, clean and normalise them, split them.

    python -m train.corpus FILE_OR_DIR...     # prints what each file gives, writes nothing

Novels come as .txt, or compressed as .txt.xz, .txt.gz, or .zip archives of .txt
files. Most Chinese novel dumps are GB18030 with CRLF and a few lines of advertising
from the site they came from; some are Big5 or UTF-8 with a BOM. Cleaning drops the
download-site lines; normalisation (`train.normalise`) then re-joins hard-wrapped
paragraphs, brings quotes to one style, converts traditional and variant forms to
simplified and drops missing-glyph marks. The full-width indent "　　" of paragraphs
is kept: it is part of how the books look.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import hashlib
import io
import lzma
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from model.repeats import HANZI
from train.normalise import QUOTE_STYLES, Changes, Normalisation, normalise

# What a novel file may be called: plain text, or text compressed by xz or gzip, or a zip of .txt files.
TEXT_SUFFIXES = (".txt", ".txt.xz", ".txt.gz", ".zip")

# Common characters in each script, to tell GB18030 text from Big5 text: both
# decode the other's bytes without error far too often, but into rare characters.
_COMMON_SIMPLIFIED = set("的一是了不在人有我他这个们中来上大为和国地到以说时要就出也得里后自之子道你她")
_COMMON_TRADITIONAL = set("的一是了不在人有我他這個們中來上大為和國地到以說時要就出也得裏後自之子道你她")

# A line is a download-site line if it holds a web address or a site's stock phrase.
_SITE_LINE = re.compile(
    r"https?://|www\.|\.(com|net|org|cn)\b|本书来自|本書來自|更多更新免费电子书|免费txt|"
    r"txt小说下载|電子書|电子书下载|小说下载站|请关注.*网",
    re.IGNORECASE,
)
_NUMERIC_ENTITY = re.compile(r"&#(\d{2,7});")
# A site's credit tacked onto the end of a story line: "……。----〖新语丝电子文库(www.xys.org)〗".
_INLINE_CREDIT = re.compile(r"-*〖[^〗]*(?:https?://|www\.|电子文库|電子文庫)[^〗]*〗")


class CorpusError(Exception):
    """A file that cannot be used as a corpus; the message names the file."""


@dataclass(frozen=True)
class CleanText:
    """One novel after cleaning."""

    path: Path
    text: str  # cleaned and normalised, LF line endings
    encoding: str  # what the bytes were decoded as
    lines_dropped: int  # download-site lines removed
    sha256: str  # of the file's bytes as they are on disk (a zip member's own bytes)
    member: str = ""  # the .txt inside a .zip this novel came from ("" for other files)
    changes: Changes = field(default_factory=Changes)  # what normalisation did
    bytes_dropped: int = 0  # undecodable bytes left out (decode)
    repeats_dropped: int = 0  # paragraphs the file held twice, the second copy dropped (drop_repeats)

    @property
    def name(self) -> str:
        """The novel's name: its file name without .txt and compression suffixes ("天龙八部")."""
        return book_name(self.member or self.path.name)

    @property
    def file(self) -> str:
        """How the corpus card names the file: "天龙八部.txt.xz", or "novels.zip:天龙八部.txt"."""
        return f"{self.path.name}:{self.member}" if self.member else self.path.name

    def split(self, holdout: float) -> tuple[str, str]:
        """(training part, held-out tail): the last `holdout` fraction is validation."""
        return split_tail(self.text, holdout)


def split_tail(text: str, holdout: float) -> tuple[str, str]:
    """Split text into (head, tail) with the tail holding `holdout` of the characters."""
    cut = len(text) - int(round(len(text) * holdout))
    return text[:cut], text[cut:]


def book_name(file_name: str) -> str:
    """"天龙八部.txt.xz" → "天龙八部"."""
    name = file_name.rsplit("/", 1)[-1]
    for suffix in (".xz", ".gz", ".zip", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def is_text_file(path: Path) -> bool:
    return path.name.lower().endswith(TEXT_SUFFIXES)


def find_text_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders to the novel files inside them (sorted); keep files as given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if is_text_file(q) and q.is_file()))
        elif p.exists():
            found.append(p)
        else:
            raise CorpusError(f"{p}: no such file or folder")
    if not found:
        raise CorpusError(f"no .txt, .txt.xz, .txt.gz or .zip files in {', '.join(map(str, paths))}")
    return found


def file_texts(path: Path) -> list[tuple[str, bytes, str]]:
    """The raw text(s) a file holds, decompressed: [(zip member or "", bytes, sha256)]. The
    digest is of the file as it is on disk, or of the member's own bytes inside a zip."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    lower = path.name.lower()
    try:
        if lower.endswith(".xz"):
            return [("", lzma.decompress(data), digest)]
        if lower.endswith(".gz"):
            return [("", gzip.decompress(data), digest)]
        if lower.endswith(".zip"):
            with io.BytesIO(data) as raw, zipfile.ZipFile(raw) as z:
                members = sorted(n for n in z.namelist() if n.lower().endswith(".txt") and not n.endswith("/"))
                if not members:
                    raise CorpusError(f"{path}: a zip with no .txt file inside")
                texts = [(m, z.read(m)) for m in members]
            return [(m, b, hashlib.sha256(b).hexdigest()) for m, b in texts]
    except (lzma.LZMAError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise CorpusError(f"{path}: damaged or not really {path.suffix} ({e})") from None
    return [("", data, digest)]


MAX_DROPPED_SHARE = 0.001  # undecodable bytes a novel may lose (a slip of the file, not another encoding) ...
MAX_DROPPED_FEW = 16  # ... and this many more in any file, however short


def decode(data: bytes, name: str = "<bytes>") -> tuple[str, str, int]:
    """(text, encoding, bytes dropped): UTF-8 (with or without its mark), else GB18030 or Big5, whichever
    reads as its script; a file no encoding reads whole keeps its text in the one that drops the fewest
    bytes, if that is at most MAX_DROPPED_SHARE of them (and MAX_DROPPED_FEW). Raises CorpusError when impossible."""
    if not data:
        raise CorpusError(f"{name}: file is empty")
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{name}: looks binary (NUL bytes), not a text file")
    if data.startswith(b"\xef\xbb\xbf"):
        return _strict(data[3:], "utf-8", name), "utf-8-sig", 0
    try:
        return data.decode("utf-8"), "utf-8", 0
    except UnicodeDecodeError:
        pass
    candidates = []
    for enc in ("gb18030", "big5"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        candidates.append((_script_score(text, enc), enc, text))
    if candidates:
        _, enc, text = max(candidates)
        return text, enc, 0
    lenient = [(*_dropping(data, enc), enc) for enc in ("utf-8", "gb18030", "big5")]  # (text, dropped, enc)
    text, dropped, enc = min(lenient, key=lambda c: (c[1], -_script_score(c[0], c[2])))
    if dropped > MAX_DROPPED_SHARE * len(data) + MAX_DROPPED_FEW:
        raise CorpusError(f"{name}: not UTF-8, GB18030 or Big5 text")
    return text, enc, dropped


def _dropping(data: bytes, enc: str) -> tuple[str, int]:
    """data decoded as enc with every undecodable byte left out: (text, bytes left out)."""
    dropped = 0

    def drop(error: UnicodeDecodeError):
        nonlocal dropped
        dropped += error.end - error.start
        return "", error.end

    codecs.register_error("train.corpus.drop", drop)  # registered per call: it counts into this call's total
    return data.decode(enc, errors="train.corpus.drop"), dropped


REPEAT_MIN = 30  # hanzi: a paragraph this long that the file already holds, word for word, is a copy slip
_HANZI = re.compile(f"[{HANZI}]")


def drop_repeats(text: str) -> tuple[str, int]:
    """`text` without paragraphs (lines) of REPEAT_MIN hanzi or more that appeared before in it;
    (text, paragraphs dropped). Shorter lines ("“是。”") and separators (-----) repeat in any novel."""
    seen, kept, dropped = set(), [], 0
    for line in text.split("\n"):
        body = line.strip(" \t　")
        if len(body) >= REPEAT_MIN and len(_HANZI.findall(body)) >= REPEAT_MIN:
            if body in seen:
                dropped += 1
                continue
            seen.add(body)
        kept.append(line)
    return "\n".join(kept), dropped


def _strict(data: bytes, enc: str, name: str) -> str:
    try:
        return data.decode(enc)
    except UnicodeDecodeError as e:
        raise CorpusError(f"{name}: starts with a UTF-8 mark but is not UTF-8 ({e.reason} at byte {e.start})") from None


def _script_score(text: str, enc: str) -> float:
    """Share of characters that are common words of the script this encoding is for."""
    common = _COMMON_SIMPLIFIED if enc == "gb18030" else _COMMON_TRADITIONAL
    hits = sum(1 for ch in text if ch in common)
    return hits / max(1, len(text))


def clean(text: str) -> tuple[str, int]:
    """Normalise line endings, expand numeric entities, drop site lines; (text, lines dropped)."""
    text = re.sub(r"\r+\n", "\n", text).replace("\r", "\n")
    text = _NUMERIC_ENTITY.sub(_entity_char, text)
    kept, dropped = [], 0
    for line in text.split("\n"):
        line = _INLINE_CREDIT.sub("", line)
        if _SITE_LINE.search(line):
            dropped += 1
        else:
            kept.append(line.rstrip(" \t"))
    return "\n".join(kept).strip("\n") + "\n", dropped


def _entity_char(m: re.Match) -> str:
    code = int(m.group(1))
    return chr(code) if 0 < code < 0x110000 else m.group(0)


def read_novels(path: str | Path, options: Normalisation | None = None) -> list[CleanText]:
    """Read, decompress, decode, clean and normalise one file (a zip gives one novel per .txt inside)."""
    path = Path(path)
    novels = []
    for member, data, digest in file_texts(path):
        name = f"{path}:{member}" if member else str(path)
        text, enc, bad_bytes = decode(data, name)
        text, dropped = clean(text)
        text, changes = normalise(text, options)
        text, repeats = drop_repeats(text)
        text = text.strip("\n") + "\n"
        if not text.strip():
            raise CorpusError(f"{name}: no text left after cleaning")
        novels.append(CleanText(path, text, enc, dropped, digest, member, changes, bad_bytes, repeats))
    return novels


def read_novel(path: str | Path, options: Normalisation | None = None) -> CleanText:
    """Read one novel file (see read_novels); a zip must hold exactly one .txt."""
    novels = read_novels(path, options)
    if len(novels) != 1:
        raise CorpusError(f"{path}: holds {len(novels)} novels; read it with read_corpus")
    return novels[0]


def read_corpus(paths: list[str | Path], report=print, options: Normalisation | None = None) -> list[CleanText]:
    """Read every novel under `paths`, printing one line per novel: what cleaning and normalisation did."""
    novels = []
    for p in find_text_files(paths):
        for novel in read_novels(p, options):
            report(f"{p}{':' + novel.member if novel.member else ''}: {novel.encoding}, {len(novel.text):,} chars "
                   f"kept, {novel.lines_dropped} lines dropped"
                   + (f", {novel.bytes_dropped} undecodable bytes dropped" if novel.bytes_dropped else "")
                   + (f", {novel.repeats_dropped} repeated paragraphs dropped" if novel.repeats_dropped else "")
                   + f"; {novel.changes.summary()}")
            novels.append(novel)
    return novels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.corpus", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help=".txt, .txt.xz, .txt.gz or .zip files, or folders of them")
    ap.add_argument("--quotes", choices=QUOTE_STYLES, default="curly", help="quotation style to bring every novel to")
    ap.add_argument("--raw", action="store_true", help="clean only: no re-joining, quotes, simplification or marks")
    args = ap.parse_args(argv)
    options = (Normalisation(rejoin=False, quotes="keep", simplify=False, drop_marks=False) if args.raw
               else Normalisation(quotes=args.quotes))
    try:
        novels = read_corpus(args.paths, options=options)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(novels)} files, {sum(len(n.text) for n in novels):,} chars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
