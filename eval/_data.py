"""The in-memory data model (items, users, interactions) and the MovieLens-100k loader."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval._errors import DataFormatError

__all__ = [
    "Dataset",
    "Interaction",
    "Item",
    "User",
    "behavior_text",
    "load_ml100k",
    "ml100k_default_path",
    "to_datetime",
]

# GroupLens u.item lists 19 genre flags in this order (u.genre).
_GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
_YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)\s*$")


def to_datetime(seconds: int) -> datetime:
    """Convert epoch seconds to a tz-aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True, slots=True)
class Item:
    """One catalogue item.

    Attributes:
        item_id: Stable string id.
        title: Human-readable title without the year.
        year: Release year, or None when unknown.
        genres: Categories of the item (MovieLens genres, or synthetic categories).
        text: A one-line description used by text-based predictors.
    """

    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class User:
    """One user and the side information the dataset provides (zip code may serve as a coarse place)."""

    user_id: str
    age: int | None = None
    gender: str | None = None
    occupation: str | None = None
    zip_code: str | None = None


@dataclass(frozen=True, slots=True)
class Interaction:
    """One user-item event. ``timestamp`` is epoch seconds (UTC); ``time`` gives the datetime.

    ``lat``/``lon``/``place`` say where it happened, when the dataset knows (the synthetic habits do;
    MovieLens does not).
    """

    user_id: str
    item_id: str
    rating: float
    timestamp: int
    lat: float | None = None
    lon: float | None = None
    place: str | None = None

    @property
    def time(self) -> datetime:
        """The event time as a tz-aware UTC datetime."""
        return to_datetime(self.timestamp)


@dataclass(slots=True)
class Dataset:
    """Items, users and interactions, with each user's events in chronological order.

    Per-user sequences are sorted by the raw integer timestamp with a *stable* sort, so events in the same
    second keep their file order (RecBole's float32 timestamps reorder a few of them; we do not).

    Attributes:
        name: Dataset name, written with results.
        items: Items by id, in catalogue order (the order of ``item_ids``).
        users: Users by id.
        interactions: All interactions in file order.
        sequences: Per-user interactions, chronological (stable by timestamp).
        meta: Free-form provenance (source path, format).
    """

    name: str
    items: dict[str, Item]
    users: dict[str, User]
    interactions: list[Interaction]
    sequences: dict[str, list[Interaction]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sequences:
            self.sequences = _build_sequences(self.interactions)

    @property
    def item_ids(self) -> list[str]:
        """Catalogue item ids in a fixed order (the column order of every score matrix)."""
        return list(self.items)

    @property
    def user_ids(self) -> list[str]:
        """User ids that have at least one interaction, in first-appearance order."""
        return list(self.sequences)

    def sequence(self, user_id: str) -> list[Interaction]:
        """Return one user's interactions, chronological."""
        return self.sequences[user_id]

    def behavior_rows(self, user_id: str | None = None) -> Iterable[dict[str, Any]]:
        """Yield interactions as behavior rows in the ``tide ingest`` schema (see ``load_behaviors_file``).

        Args:
            user_id: Only this user's rows; all users (chronological per user) when None.

        Yields:
            Dicts with user_id, item_id, action, text, timestamp (UTC datetime), lat, lon, place, weight,
            attributes.
        """
        users = [user_id] if user_id is not None else list(self.sequences)
        for uid in users:
            user = self.users.get(uid)
            for event in self.sequences[uid]:
                item = self.items[event.item_id]
                yield {
                    "user_id": uid,
                    "item_id": event.item_id,
                    "action": "rated",
                    "text": behavior_text(item, event.rating),
                    "timestamp": event.time,
                    "lat": event.lat,
                    "lon": event.lon,
                    "place": event.place or (f"zip code {user.zip_code}"
                                             if user is not None and user.zip_code else None),
                    "weight": float(event.rating),
                    "attributes": {"rating": event.rating, "genres": list(item.genres), "year": item.year},
                }


def _build_sequences(interactions: list[Interaction]) -> dict[str, list[Interaction]]:
    grouped: dict[str, list[Interaction]] = {}
    for event in interactions:
        grouped.setdefault(event.user_id, []).append(event)
    # list.sort is stable: equal timestamps keep file order.
    for events in grouped.values():
        events.sort(key=lambda e: e.timestamp)
    return grouped


def behavior_text(item: Item, rating: float | None = None) -> str:
    """Describe one rating as a behavior: the movie, its year, its genres and the rating.

    Args:
        item: The rated item.
        rating: The rating on a 1-5 scale, or None for an unrated interaction.

    Returns:
        E.g. ``Rated "Toy Story" (1995; Animation, Children's, Comedy) 4/5.``
    """
    year = str(item.year) if item.year is not None else "year unknown"
    genres = ", ".join(item.genres) if item.genres else "no genre"
    if rating is None:
        return f'Watched "{item.title}" ({year}; {genres}).'
    shown = int(rating) if float(rating).is_integer() else rating
    return f'Rated "{item.title}" ({year}; {genres}) {shown}/5.'


def _item_text(title: str, year: int | None, genres: tuple[str, ...]) -> str:
    year_s = str(year) if year is not None else "year unknown"
    return f"{title} ({year_s}) - {', '.join(genres) if genres else 'no genre'}"


def _parse_year(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) == 4 else None


def ml100k_default_path() -> Path:
    """Locate MovieLens-100k inside the installed ``recbole`` wheel without importing recbole.

    Raises:
        DataFormatError: If recbole (1.2.1) is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("recbole")  # finds the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise DataFormatError("recbole is not installed; `pip install --no-deps recbole==1.2.1`")
    path = Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.inter").exists():
        raise DataFormatError("ml-100k files not found in the recbole wheel", path=str(path))
    return path


def load_ml100k(path: str | Path | None = None) -> Dataset:
    """Load MovieLens-100k.

    Args:
        path: A folder with RecBole atomic files (``ml-100k.inter/.item/.user``) or the original GroupLens
            files (``u.data/u.item/u.user``). Defaults to the copy shipped in the ``recbole==1.2.1`` wheel.

    Returns:
        The dataset: 943 users, 1,682 items, 100,000 ratings.

    Raises:
        DataFormatError: If the folder holds neither format.
    """
    folder = Path(path) if path is not None else ml100k_default_path()
    if (folder / "ml-100k.inter").exists():
        return _load_recbole(folder)
    if (folder / "u.data").exists():
        return _load_grouplens(folder)
    raise DataFormatError("no ml-100k.inter or u.data in folder", path=str(folder))


def _read_atomic(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        raise DataFormatError("empty file", path=str(path))
    return rows[1:]


def _load_recbole(folder: Path) -> Dataset:
    items: dict[str, Item] = {}
    for line, row in enumerate(_read_atomic(folder / "ml-100k.item"), start=2):
        if len(row) != 4:
            raise DataFormatError(f"expected 4 columns, got {len(row)}", path=str(folder), line=line)
        item_id, title, year_s, genres_s = row
        title = "unknown" if title == "unkonwn" else title  # typo in the RecBole conversion
        genres = tuple(genres_s.split()) if genres_s else ()
        year = _parse_year(year_s)
        items[item_id] = Item(item_id, title, year, genres, _item_text(title, year, genres))
    users: dict[str, User] = {}
    user_file = folder / "ml-100k.user"
    if user_file.exists():
        for row in _read_atomic(user_file):
            uid, age, gender, occupation, zip_code = row
            users[uid] = User(uid, int(age) if age.isdigit() else None, gender, occupation, zip_code)
    interactions = []
    for line, row in enumerate(_read_atomic(folder / "ml-100k.inter"), start=2):
        if len(row) != 4:
            raise DataFormatError(f"expected 4 columns, got {len(row)}", path=str(folder), line=line)
        uid, iid, rating, ts = row
        interactions.append(Interaction(uid, iid, float(rating), int(float(ts))))
    return Dataset("ml-100k", items, users, interactions, meta={"source": str(folder), "format": "recbole"})


def _load_grouplens(folder: Path) -> Dataset:
    items: dict[str, Item] = {}
    with (folder / "u.item").open(encoding="latin-1") as f:
        for line, raw in enumerate(f, start=1):
            parts = raw.rstrip("\n").split("|")
            if len(parts) != 5 + len(_GROUPLENS_GENRES):
                raise DataFormatError(f"expected 24 fields, got {len(parts)}", path=str(folder), line=line)
            item_id, full_title, release = parts[0], parts[1], parts[2]
            match = _YEAR_IN_TITLE.search(full_title)
            title = full_title[: match.start()] if match else full_title.strip()
            year = _parse_year(release[-4:]) if release else (int(match.group(1)) if match else None)
            genres = tuple(g for g, flag in zip(_GROUPLENS_GENRES, parts[5:], strict=True) if flag == "1")
            items[item_id] = Item(item_id, title, year, genres, _item_text(title, year, genres))
    users: dict[str, User] = {}
    user_file = folder / "u.user"
    if user_file.exists():
        with user_file.open(encoding="latin-1") as f:
            for raw in f:
                uid, age, gender, occupation, zip_code = raw.rstrip("\n").split("|")
                users[uid] = User(uid, int(age) if age.isdigit() else None, gender, occupation, zip_code)
    interactions = []
    with (folder / "u.data").open(encoding="latin-1") as f:
        for line, raw in enumerate(f, start=1):
            parts = raw.split()
            if len(parts) != 4:
                raise DataFormatError(f"expected 4 fields, got {len(parts)}", path=str(folder), line=line)
            uid, iid, rating, ts = parts
            interactions.append(Interaction(uid, iid, float(rating), int(ts)))
    return Dataset("ml-100k", items, users, interactions, meta={"source": str(folder), "format": "grouplens"})
