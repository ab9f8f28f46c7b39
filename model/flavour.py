"""金庸味: how Jin Yong-like the model finds a text, 0-100, against the novels' own lines.

    ruler = Flavour.from_card(card.flavour)        # None where the card has no ruler
    nats, chars = rate_texts(model, ["乔峰突然拔出刀来。"])
    ruler.score(nats[0], chars[0])                  # e.g. 64: reads more like 金庸 than 64 % of his lines

The ruler is measured once per model (`python -m train.flavour`): sentences from the held-out
tails of the novels, each scored alone from the start state with no novel, their nats/char
kept as 101 percentiles per length band (a short line costs more per character: its first
characters have nothing before them). A text is scored the same way; its score is the share
of the novels' lines in its band that cost the model more nats/char than it does, in percent.
A sentence from the novels scores about 50 on average; a line the model finds foreign, near 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BANDS = (10, 20, 40, 80)  # upper lengths (characters) of the length bands; longer texts fall in the last band
PERCENTILES = 101  # 0, 1, ..., 100


def band_of(chars: int) -> int:
    """The length band of a text of `chars` characters (an index into Flavour.percentiles)."""
    return next((i for i, top in enumerate(BANDS) if chars <= top), len(BANDS))


@dataclass(frozen=True)
class Flavour:
    percentiles: list[list[float]]  # per band (len(BANDS) + 1): nats/char at percentiles 0..100, ascending
    lines: list[int]  # the novels' lines measured per band
    measure: str = ""  # how it was measured (the card keeps it)

    @classmethod
    def from_card(cls, data: dict | None) -> Flavour | None:
        """The ruler in a card's "flavour" object; None when there is none or it is malformed."""
        if not isinstance(data, dict):
            return None
        p, lines = data.get("percentiles"), data.get("lines")
        if (not isinstance(p, list) or len(p) != len(BANDS) + 1 or not isinstance(lines, list)
                or any(not isinstance(row, list) or len(row) != PERCENTILES for row in p)):
            return None
        return cls([[float(v) for v in row] for row in p], [int(n) for n in lines], str(data.get("measure", "")))

    @classmethod
    def measured(cls, nats_per_char: np.ndarray, chars: np.ndarray, measure: str = "") -> Flavour:
        """The ruler from the novels' lines: nats/char [N] and lengths [N]; a band without lines (a tiny
        corpus) takes the nearest band's percentiles (its count says 0)."""
        bands = np.array([band_of(int(c)) for c in chars])
        values = [np.asarray(nats_per_char, np.float64)[bands == b] for b in range(len(BANDS) + 1)]
        filled = [b for b, v in enumerate(values) if len(v)]
        if not filled:
            raise ValueError("no lines to measure the ruler on")
        rows = []
        for b in range(len(BANDS) + 1):
            v = values[min(filled, key=lambda f: (abs(f - b), f))]
            rows.append([round(float(x), 4) for x in np.percentile(v, np.arange(PERCENTILES))])
        return cls(rows, [int(len(v)) for v in values], measure)

    @staticmethod
    def band_name(band: int) -> str:
        low = 1 if band == 0 else BANDS[band - 1] + 1
        return f"{low}-{BANDS[band]} chars" if band < len(BANDS) else f"over {BANDS[-1]} chars"

    def score(self, nats_per_char: float, chars: int) -> int:
        """0-100: the share of the novels' lines of this length that cost more nats/char, in percent."""
        row = self.percentiles[band_of(chars)]
        below = np.interp(nats_per_char, row, np.arange(PERCENTILES))  # percent of lines that cost less
        return int(round(100 - float(below)))

    def to_json(self) -> dict:
        return {"bands": list(BANDS), "percentiles": self.percentiles, "lines": self.lines, "measure": self.measure}


def rate_texts(model, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(nats/char [B], characters [B]) of each text scored alone from the start state with no novel,
    as the ruler's lines were (texts as the model reads them: normalised as the corpus was)."""
    nll, chars, _ = model.score(list(texts), model.initial_state(len(texts), book=None))
    chars = np.asarray(chars)
    return np.asarray(nll, np.float64) / np.maximum(chars, 1), chars
