from __future__ import annotations

from datetime import UTC

from eval import Dataset, Item, behavior_text, load_ml100k


def test_counts(ml100k: Dataset) -> None:
    assert len(ml100k.users) == 943
    assert len(ml100k.sequences) == 943
    assert len(ml100k.items) == 1682
    assert len(ml100k.interactions) == 100_000
    assert sum(len(s) for s in ml100k.sequences.values()) == 100_000
    assert ml100k.item_ids[:2] == ["1", "2"]


def test_items_and_users_parsed(ml100k: Dataset) -> None:
    toy = ml100k.items["1"]
    assert (toy.title, toy.year, toy.genres) == ("Toy Story", 1995, ("Animation", "Children's", "Comedy"))
    assert ml100k.items["267"].title == "unknown" and ml100k.items["267"].year is None
    assert ml100k.users["1"].zip_code == "85711"
    first = ml100k.interactions[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == ("196", "242", 3.0, 881250949)
    assert first.time.tzinfo is UTC


def test_sequences_are_stable_sorted_by_raw_timestamp(ml100k: Dataset) -> None:
    file_pos = {}
    for pos, e in enumerate(ml100k.interactions):
        file_pos[(e.user_id, e.item_id)] = pos
    ties = 0
    for seq in ml100k.sequences.values():
        for a, b in zip(seq, seq[1:], strict=False):
            assert a.timestamp <= b.timestamp
            if a.timestamp == b.timestamp:
                ties += 1
                assert file_pos[(a.user_id, a.item_id)] < file_pos[(b.user_id, b.item_id)]
    assert ties > 1000  # ML-100k has many same-second ratings; the check above is not vacuous


def test_grouplens_format_matches_recbole(tmp_path, ml100k: Dataset) -> None:
    # Write a tiny GroupLens-format folder from the RecBole data and read it back.
    genres_order = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                    "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    items = [ml100k.items[i] for i in ("1", "2", "3")]
    with (tmp_path / "u.item").open("w", encoding="latin-1") as f:
        for it in items:
            flags = "|".join("1" if g in it.genres else "0" for g in genres_order)
            f.write(f"{it.item_id}|{it.title} ({it.year})|01-Jan-{it.year}||http://x|{flags}\n")
    events = [e for e in ml100k.interactions if e.item_id in {"1", "2", "3"}][:50]
    (tmp_path / "u.data").write_text("".join(f"{e.user_id}\t{e.item_id}\t{int(e.rating)}\t{e.timestamp}\n" for e in events))
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n")
    loaded = load_ml100k(tmp_path)
    assert loaded.meta["format"] == "grouplens"
    for it in items:
        got = loaded.items[it.item_id]
        assert (got.title, got.year, got.genres) == (it.title, it.year, it.genres)
    assert [(e.user_id, e.item_id, e.timestamp) for e in loaded.interactions] == [
        (e.user_id, e.item_id, e.timestamp) for e in events
    ]
    assert loaded.users["1"].zip_code == "85711"


def test_behavior_text_names_movie_year_genres_rating() -> None:
    item = Item("1", "Toy Story", 1995, ("Animation", "Comedy"), "")
    assert behavior_text(item, 4.0) == 'Rated "Toy Story" (1995; Animation, Comedy) 4/5.'
    assert behavior_text(Item("9", "X", None, (), ""), None) == 'Watched "X" (year unknown; no genre).'


def test_behavior_rows_use_ingest_schema(ml100k: Dataset) -> None:
    rows = list(ml100k.behavior_rows("1"))
    assert len(rows) == len(ml100k.sequences["1"])
    assert rows[0]["place"] == "zip code 85711" and rows[0]["timestamp"].tzinfo is UTC
    assert "/5." in rows[0]["text"]
