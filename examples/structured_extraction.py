"""Typed data out of free text with ``with_structured_output``.

Kimi has JSON mode but no schema mode: ``ChatKimi`` puts the schema in a system
instruction, asks for JSON, and validates the reply into your Pydantic model.

Run it::

    python examples/structured_extraction.py --offline
    ACEDATACLOUD_API_TOKEN=... python examples/structured_extraction.py
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from _offline import offline_if, token_missing  # --offline plumbing: see _offline.py
from langchain_core.language_models import LanguageModelInput
from pydantic import BaseModel, Field

from langchain_kimi import ChatKimi, KimiError
from langchain_kimi.testing import Reply

NOTES: list[LanguageModelInput] = [
    "Met Ann Lee (ann@example.com) from Acme on Tuesday; she wants a demo in March.",
    "Call from Bob Stone, Globex, no email given. Interested in pricing for 40 seats.",
]


class Contact(BaseModel):
    """A sales lead found in a note."""

    name: str = Field(description="The person's full name")
    company: str
    email: str | None = Field(default=None, description="Email address, if given")
    interest: str = Field(description="What they want, in a few words")


OFFLINE_LEADS = {
    "Ann Lee": {
        "name": "Ann Lee",
        "company": "Acme",
        "email": "ann@example.com",
        "interest": "a demo in March",
    },
    "Bob Stone": {
        "name": "Bob Stone",
        "company": "Globex",
        "email": None,
        "interest": "pricing for 40 seats",
    },
}


def offline_answer(body: dict[str, Any]) -> Reply:
    """Stand-in for Kimi: the lead of the note it is sent (batch calls run concurrently)."""
    note = body["messages"][-1]["content"]
    lead = next(lead for name, lead in OFFLINE_LEADS.items() if name in note)
    return Reply(content=json.dumps(lead), reasoning="Pick out the fields.")


def main() -> int:
    parser = argparse.ArgumentParser(description="Extract contacts from notes.")
    parser.add_argument("--offline", action="store_true", help="use the bundled simulator")
    args = parser.parse_args()

    with offline_if(args.offline, responder=offline_answer):
        if token_missing():
            return 2
        try:
            with ChatKimi(model="kimi-k2.5", max_tokens=16384) as model:
                extract = model.with_structured_output(Contact)
                # batch: the notes are sent concurrently; results come back in order.
                contacts = extract.batch(NOTES, config={"max_concurrency": 4})
                for contact in contacts:
                    assert isinstance(contact, Contact)
                    print(contact.model_dump_json())
        except KimiError as err:
            print(f"Kimi error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
