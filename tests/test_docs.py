"""The documents a newcomer reads agree with the code: the endpoint table, and every decisions.md reference."""

from __future__ import annotations

from tools import check_docs, endpoints


def test_the_compatibility_doc_lists_every_endpoint_as_served() -> None:
    doc = endpoints.DOC.read_text()
    served = endpoints.table(endpoints.current_spec())
    assert endpoints.with_table(doc, served) == doc, "run: .venv/bin/python tools/endpoints.py --write"


def test_every_decisions_reference_names_a_section() -> None:
    assert check_docs.problems() == []
    assert {"3", "4.2", "6.1", "8"} <= check_docs.sections()
