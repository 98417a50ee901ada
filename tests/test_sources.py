"""Loaders on the real public data in ../shared/data, and the promised errors on malformed files."""
import json, os
from pathlib import Path

import pytest

from conftest import ROOT
from creativity_llm.sources import SourceError, detect_lang, load_documents, load_sources
from creativity_llm.taxonomy import SUBDOMAIN_BY_KEY

SHARED = ROOT.parent / "shared" / "data"
USPTO = SHARED / "patents_uspto" / "uspto_sample_1000_cpc_stratified.jsonl"
NLP_JOURNAL = SHARED / "ja_academic_abstracts" / "nlp_journal_abstracts_vol16plus_ccby.jsonl"
# CI always has ../shared beside the clone: there a missing folder is a failure, not a skip
needs_shared = pytest.mark.skipif(not SHARED.is_dir() and not os.environ.get("CI"), reason="../shared/data is not beside the repository")


@needs_shared
def test_uspto_patents():
    res = load_documents(USPTO, "uspto")
    docs = res.docs
    assert len(docs) == 1000 and not res.skipped
    assert len({d.id for d in docs}) == 1000
    assert all(d.lang == "en" and d.text and d.title == "" and d.license.startswith("public domain") for d in docs)
    domains = {d.domain for d in docs}
    assert domains <= set(SUBDOMAIN_BY_KEY) and len(domains) == 15, domains
    first = json.loads(USPTO.read_text().splitlines()[0])
    assert docs[0].id == first["patent_id"] and docs[0].text == first["abstract"].strip()


@needs_shared
def test_japanese_journal_abstracts():
    with pytest.raises(SourceError, match=r"nlp_journal_abstracts_vol16plus_ccby.jsonl:\d+: field 'text' is not in its declared language 'ja'"):
        load_documents(NLP_JOURNAL, "nlp_journal")
    res = load_documents(NLP_JOURNAL, "nlp_journal", on_error="skip")
    ja = res.docs
    # 4 abstract_ja fields are mojibake (ISO-2022-JP without escapes) or LaTeX: skipped and listed, not dropped silently
    assert len(ja) == 190 and len(res.skipped) == 4 and all("declared language 'ja'" in str(b) for b in res.skipped)
    assert all(d.lang == "ja" and d.title and d.license == "CC BY 4.0" for d in ja)
    en = load_documents(NLP_JOURNAL, "nlp_journal_en", on_error="skip")
    assert len(en.docs) + len(en.skipped) == 194 and len(en.docs) >= 180
    both = load_sources(f"samples,nlp_journal:{NLP_JOURNAL}", on_error="skip")
    assert both.docs[-1].id == ja[-1].id and len(both.skipped) == 4


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


GOOD = b'{"id": "a", "title": "t", "text": "An abstract.", "lang": "en", "domain": "energy", "source": "me", "license": "CC0-1.0"}\n'


@pytest.mark.parametrize("line, message", [
    (b'{"id": "b", "title": "t", "text": "x"\n', "bad.jsonl:2: invalid JSON"),
    (b'{"id": "b", "title": "t", "lang": "en", "domain": "", "source": "me", "license": "x"}\n', "bad.jsonl:2: field 'text' is missing"),
    (b'{"id": "b", "title": "t", "text": "caf\xe9", "lang": "en", "domain": "", "source": "me", "license": "x"}\n', "bad.jsonl:2: not valid UTF-8"),
    (b'{"id": "b", "title": "t", "text": 42, "lang": "en", "domain": "", "source": "me", "license": "x"}\n', "bad.jsonl:2: field 'text' must be text"),
    (b'{"id": "a", "title": "t", "text": "again", "lang": "en", "domain": "", "source": "me", "license": "x"}\n', "bad.jsonl:2: field 'id': 'a' repeats the id at"),
    (b'["not", "an", "object"]\n', "bad.jsonl:2: a JSON object is expected"),
])
def test_malformed_rows_name_file_line_field(tmp_path, line, message):
    path = _write(tmp_path, "bad.jsonl", GOOD + line)
    with pytest.raises(SourceError, match=message.replace("(", r"\(")):
        load_documents(path)
    if b"\xe9" in line: return  # a file that is not UTF-8 is not read at all, even when skipping
    res = load_documents(path, on_error="skip")
    assert [d.id for d in res.docs] == ["a"] and len(res.skipped) == 1 and message.split(": ", 1)[1][:12] in str(res.skipped[0])


def test_skipped_rows_are_reported_by_the_stage_config(tmp_path):
    path = _write(tmp_path, "mixed.jsonl", GOOD + b"{oops\n")
    res = load_sources(f"records:{path}", on_error="skip")
    assert len(res.docs) == 1 and str(res.skipped[0]).endswith("mixed.jsonl:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)")


def test_csv_and_parquet(tmp_path):
    import pyarrow as pa, pyarrow.parquet as pq
    rows = [{"id": "p1", "title": "t", "text": "本文です。", "lang": "ja", "domain": "energy", "source": "me", "license": "CC0-1.0"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    assert load_documents(tmp_path / "d.parquet").docs[0].text == "本文です。"
    (tmp_path / "d.csv").write_text("id,title,text,lang,domain,source,license\nc1,t,Text.,en,energy,me,CC0-1.0\nc2,t,,en,energy,me,CC0-1.0\n")
    with pytest.raises(SourceError, match=r"d.csv:3: field 'text' is empty"):
        load_documents(tmp_path / "d.csv")


def test_sample_cards_match_the_data():
    from creativity_llm.synthesis import sample_corpus_cards
    for name, text in sample_corpus_cards().items():
        assert (ROOT / "data_cards" / name).read_text() == text, f"data_cards/{name} is stale: run `make cards`"
