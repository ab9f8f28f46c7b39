"""Which novel a story is in: the card's list of novels, and picking one from a prompt.

    from model.books import Books
    books = Books(card.books)
    books.pick("郭靖对黄蓉说")        # "射雕英雄传": the names in the prompt say so
    books.resolve("auto", prompt)    # (id, name): "auto" picks, a name is looked up, None is no novel

The card lists every novel the model was trained on with the names that novel makes
frequent and each name's *share* (how much of its use, per character of text, is in
that novel; see `train.names`). A prompt's score for a novel is the sum of the shares
of its names found in the prompt: 郭靖 alone leans to 射雕英雄传 (78 %), 郭靖 with 杨过
goes to 神雕侠侣. Too little evidence picks nothing, and the story starts as a model
without novels would: a novel is picked only when the prompt holds one of its own
names (share ≥ PICK_SHARE), so words every novel uses, or a name two novels share
evenly (苗人凤 53 % / 47 %), never pick one, however many the prompt holds; a text of
more than LONG_TEXT characters needs two of them (2,000 characters of 古龙 often hold
one 金庸 name by chance: 青青, 大头鬼).
"""

from __future__ import annotations

AUTO = "auto"
NONE = ("", "none", "无")  # ways to say "no novel"
MIN_EVIDENCE = 0.5  # a novel is picked only when its names in the prompt add up to this much share
PICK_SHARE = 0.6  # ... and one of them has at least this share: mostly that novel's
LONG_TEXT = 200  # characters: a longer text must hold two such names (one is often a chance likeness: 青青)


class Books:
    def __init__(self, books: list[dict]):
        self.entries = sorted(books, key=lambda b: b["id"])
        self.names = [b["name"] for b in self.entries]
        self._id = {b["name"]: b["id"] for b in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self._id

    def id_of(self, name: str | None) -> int:
        """The novel's id (1..K), or 0 for None / "no novel"."""
        return 0 if name is None else self._id[name]

    def scores(self, prompt: str) -> dict[str, float]:
        """Each novel's evidence in the prompt: the summed shares of its names found there."""
        return {b["name"]: sum(share for name, (_, share) in b.get("names", {}).items() if name in prompt)
                for b in self.entries}

    def pick(self, prompt: str) -> str | None:
        """The novel the prompt's names point to, or None when they point nowhere clearly."""
        scores = self.scores(prompt)
        if not scores:
            return None
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, score = ranked[0]
        if score < MIN_EVIDENCE or (len(ranked) > 1 and ranked[1][1] == score):
            return None
        names = next(b for b in self.entries if b["name"] == best).get("names", {})
        own = [name for name, (_, share) in names.items() if share >= PICK_SHARE and name in prompt]
        if len(own) < (2 if len(prompt) > LONG_TEXT else 1):
            return None
        return best

    def resolve(self, book: str | None, prompt: str = "") -> str | None:
        """"auto" → pick(prompt); a novel's name → itself; None or "none" → None. Raises ValueError
        (listing the novels) for a name the model does not know."""
        if book is None or book.strip() in NONE:
            return None
        book = book.strip()
        if book == AUTO:
            return self.pick(prompt)
        if book not in self._id:
            known = "、".join(self.names) if self.names else "（这个模型不分小说）"
            raise ValueError(f"unknown novel {book!r}; this model knows: {known}")
        return book
