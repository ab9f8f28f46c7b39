"""The vocabulary: min count, [UNK], round trips."""

from train.vocab import UNK, Vocabulary


def test_min_count_and_unk(tmp_path):
    v = Vocabulary.build(["aaab", "bc"], min_count=2)
    assert v.chars == [UNK, "a", "b"]
    assert list(v.encode("abcz")) == [1, 2, 0, 0]
    v.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").chars == v.chars


def test_decode_round_trip():
    v = Vocabulary.build(["乔峰乔峰阿朱阿朱"], min_count=1)
    assert v.decode(v.encode("阿朱乔峰")) == "阿朱乔峰"
