"""Generate envs/data/search_corpus.json: fictional fact documents + 2-hop questions.

Every entity (countries, cities, universities, people, companies, products,
books) is invented from syllables, so answers cannot be memorised and each
one is verifiable from the documents. Each question needs two documents
(``gold_docs``): e.g. "In which city was the founder of X born?" needs X's
document (who founded it) and the founder's (where they were born).

Deterministic: the same seed writes the same file. Run from the repo root:

    python scripts/make_search_corpus.py            # writes envs/data/search_corpus.json
    python scripts/make_search_corpus.py --check    # fails if the file is stale
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 20240611
OUT = Path(__file__).resolve().parent.parent / "envs" / "data" / "search_corpus.json"

ONSETS = "b br c d dr f g gr h k kl l m n p pr r s st t tr v z th sh".split()
VOWELS = "a e i o u ai ea io ou y".split()
CODAS = "n r l s th m nd rn x k sk".split()
FIELDS = [
    "marine biologist", "architect", "economist", "violinist", "chemist", "novelist",
    "civil engineer", "historian", "botanist", "astronomer", "painter", "mathematician",
]  # fmt: skip
INDUSTRIES = [
    "logistics", "biotechnology", "textile", "software", "shipbuilding", "renewable energy",
    "food processing", "robotics", "publishing", "mining", "telecommunications", "furniture",
]  # fmt: skip
PRODUCT_KINDS = [
    "handheld scanner", "electric kettle", "drone", "water filter", "e-reader", "tractor",
    "solar lantern", "3D printer", "sewing machine", "bicycle", "microscope", "radio",
]  # fmt: skip
COMPANY_SUFFIXES = ["Systems", "Works", "Industries", "Labs", "Group", "Holdings", "Partners"]
BOOK_ADJ = ["Silent", "Copper", "Hidden", "Last", "Northern", "Glass", "Burning", "Quiet"]
BOOK_NOUN = ["Orchard", "Harbor", "Lantern", "Meridian", "Archive", "Garden", "Tide", "Ledger"]
RIVERS = ["Ormen", "Sallow", "Vey", "Dunmere", "Kest", "Ilva", "Brannock", "Tolle"]


class Names:
    """Unique invented names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        """A new capitalised word of that many syllables (plus a coda)."""
        while True:
            n = self.rng.randint(*syllables)
            parts = [self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(n)]
            w = ("".join(parts) + self.rng.choice(CODAS)).capitalize()
            if w not in self.used and 4 <= len(w) <= 11:
                self.used.add(w)
                return w


def an(noun: str) -> str:
    """``a noun`` or ``an noun``."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def build(seed: int = SEED) -> dict:
    """The corpus: ``{"docs": [...], "questions": [...]}``, deterministic in ``seed``."""
    rng = random.Random(seed)
    names = Names(rng)
    countries = [{"name": names.word((2, 3))} for _ in range(10)]
    cities = [
        {
            "name": names.word(),
            "country": rng.choice(countries)["name"],
            "population": rng.randrange(20, 2000) * 1000,
            "river": rng.choice(RIVERS),
        }
        for _ in range(36)
    ]
    universities = [
        {
            "name": f"University of {names.word()}",
            "city": rng.choice(cities)["name"],
            "founded": rng.randint(1650, 1990),
        }
        for _ in range(12)
    ]
    people = []
    for _ in range(60):
        people.append(
            {
                "name": f"{names.word((1, 2))} {names.word()}",
                "born": rng.randint(1921, 1995),
                "city": rng.choice(cities)["name"],
                "university": rng.choice(universities)["name"],
                "field": rng.choice(FIELDS),
            }
        )
    companies = [
        {
            "name": f"{names.word()} {rng.choice(COMPANY_SUFFIXES)}",
            "founder": rng.choice(people)["name"],
            "city": rng.choice(cities)["name"],
            "founded": rng.randint(1950, 2020),
            "industry": rng.choice(INDUSTRIES),
        }
        for _ in range(36)
    ]
    products = [
        {
            "name": f"{names.word((1, 2))} {rng.choice('XZQKV')}{rng.randint(1, 9)}",
            "maker": rng.choice(companies)["name"],
            "kind": rng.choice(PRODUCT_KINDS),
            "launched": rng.randint(1990, 2023),
        }
        for _ in range(24)
    ]
    titles = [f"The {a} {n}" for a in BOOK_ADJ for n in BOOK_NOUN]
    rng.shuffle(titles)
    books = [
        {"name": titles[i], "author": rng.choice(people)["name"], "year": rng.randint(1950, 2023)}
        for i in range(20)
    ]
    docs = _documents(rng, countries, cities, universities, people, companies, products, books)
    ids = list(range(len(docs)))
    rng.shuffle(ids)
    for doc, i in zip(docs, ids, strict=True):
        doc["id"] = f"d{i:03d}"
    docs.sort(key=lambda d: d["id"])
    by_title = {d["title"]: d["id"] for d in docs}
    questions = _questions(rng, by_title, cities, people, companies, products, books)
    return {
        "generator": "scripts/make_search_corpus.py",
        "seed": seed,
        "docs": [{"id": d["id"], "title": d["title"], "text": d["text"]} for d in docs],
        "questions": questions,
    }


def _documents(rng, countries, cities, universities, people, companies, products, books):
    docs = []
    in_country = {
        c["name"]: [x["name"] for x in cities if x["country"] == c["name"]] for c in countries
    }  # noqa: E501
    for c in countries:
        listed = ", ".join(in_country[c["name"]][:4]) or "no large cities"
        docs.append(
            {"title": c["name"], "text": f"{c['name']} is a country. Its cities include {listed}."}
        )
    for c in cities:
        docs.append(
            {
                "title": c["name"],
                "text": f"{c['name']} is a city in {c['country']} with a population of "
                f"{c['population']:,}. It lies on the {c['river']} river.",
            }
        )
    for u in universities:
        docs.append(
            {
                "title": u["name"],
                "text": f"The {u['name']} is a university located in {u['city']}. "
                f"It was founded in {u['founded']}.",
            }
        )
    for p in people:
        last = p["name"].split()[-1]
        peer = rng.choice(people)["name"]
        extra = f" {last} often collaborated with {peer}." if peer != p["name"] else ""
        docs.append(
            {
                "title": p["name"],
                "text": f"{p['name']} (born {p['born']}) is {an(p['field'])}. {last} was born in "
                f"{p['city']} and studied at the {p['university']}.{extra}",
            }
        )
    for c in companies:
        docs.append(
            {
                "title": c["name"],
                "text": f"{c['name']} is {an(c['industry'])} company founded in {c['founded']} by "
                f"{c['founder']}. Its headquarters are in {c['city']}.",
            }
        )
    for p in products:
        docs.append(
            {
                "title": p["name"],
                "text": f"The {p['name']} is {an(p['kind'])} made by {p['maker']}. "
                f"It was launched in {p['launched']}.",
            }
        )
    for b in books:
        docs.append(
            {"title": b["name"], "text": f"{b['name']} is a {b['year']} book by {b['author']}."}
        )
    return docs


def _questions(rng, by_title, cities, people, companies, products, books):
    city = {c["name"]: c for c in cities}
    person = {p["name"]: p for p in people}
    company = {c["name"]: c for c in companies}
    founded_by: dict[str, list[str]] = {}
    for c in companies:
        founded_by.setdefault(c["founder"], []).append(c["name"])
    qs = []

    def add(template, question, answer, first, second):
        qs.append(
            {
                "template": template,
                "question": question,
                "answer": answer,
                "gold_docs": [by_title[first], by_title[second]],
            }
        )

    for c in companies:
        f = person[c["founder"]]
        add("founder_birthplace", f"In which city was the founder of {c['name']} born?",
            f["city"], c["name"], f["name"])  # fmt: skip
        add("hq_country", f"In which country is the headquarters city of {c['name']}?",
            city[c["city"]]["country"], c["name"], c["city"])  # fmt: skip
    for p in products:
        m = company[p["maker"]]
        add("maker_founder", f"Who founded the company that makes the {p['name']}?",
            m["founder"], p["name"], m["name"])  # fmt: skip
        add("maker_hq", f"In which city is the maker of the {p['name']} headquartered?",
            m["city"], p["name"], m["name"])  # fmt: skip
    for b in books:
        a = person[b["author"]]
        add("author_university", f"Which university did the author of {b['name']} attend?",
            a["university"], b["name"], a["name"])  # fmt: skip
        add("author_birth_year", f"In what year was the author of {b['name']} born?",
            str(a["born"]), b["name"], a["name"])  # fmt: skip
    for p in people:
        add("birth_country", f"In which country was {p['name']} born?",
            city[p["city"]]["country"], p["name"], p["city"])  # fmt: skip
        if len(founded_by.get(p["name"], [])) == 1:
            c = company[founded_by[p["name"]][0]]
            add("founded_company_year",
                f"In what year was the company founded by {p['name']} established?",
                str(c["founded"]), p["name"], c["name"])  # fmt: skip
    rng.shuffle(qs)
    for i, q in enumerate(qs):
        q["id"] = f"q{i:03d}"
        q["split"] = "test" if i % 5 == 0 else "train"
    return qs


def main() -> int:
    """Write (or ``--check``) the corpus file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the file is out of date")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    text = json.dumps(build(), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        sys.stderr.write("up to date\n" if same else f"{args.out} is stale; regenerate it\n")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
