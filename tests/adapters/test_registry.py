"""A fourth platform is a package plus one line in the registry: proved with a minimal adapter run by `qabot run`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import bot.cli as cli
from bot.adapters import registry
from bot.conversation.models import ADMIN_COMMANDS
from tests.adapters.collecting import CollectingAdapter

GOLD = "algorithms that enable computers to learn from data"


@pytest.fixture
def collecting(monkeypatch, tmp_path, built_index_dir):
    """The collecting adapter registered (one line), and an environment like a fresh install's."""
    monkeypatch.setitem(registry.ADAPTERS, "collecting", "tests.adapters.collecting:CollectingAdapter")
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setattr(cli, "_settings_cache", None)
    monkeypatch.setenv("QABOT_INDEX_DIR", str(built_index_dir))
    monkeypatch.setenv("QABOT_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    CollectingAdapter.OUTBOX.clear()
    CollectingAdapter.SEEN.clear()
    yield CollectingAdapter
    CollectingAdapter.OUTBOX.clear()
    CollectingAdapter.SEEN.clear()


def test_qabot_run_starts_a_registered_adapter_end_to_end(collecting, monkeypatch):
    monkeypatch.setenv("COLLECT_TOKEN", "anything")
    monkeypatch.setenv("COLLECT_QUESTIONS", "what is machine learning?")
    result = CliRunner().invoke(cli.app, ["run", "collecting"])
    assert result.exit_code == 0, result.output
    # in: its own mention syntax never reached the service
    assert collecting.SEEN == ["what is machine learning?"]
    # out: the answer quotes the knowledge, within this platform's limits, its buttons written out as text
    texts = [text for _, text in collecting.OUTBOX]
    assert texts and all(len(t) <= 300 for t in texts)
    assert GOLD in " ".join(" ".join(texts).split())
    assert "Buttons: 👍 Helpful, 👎 Not helpful" in texts[-1]
    assert {to for to, _ in collecting.OUTBOX} == {"19:channel"}


def test_a_missing_secret_of_the_new_adapter_is_named_with_where_to_get_it(collecting):
    result = CliRunner().invoke(cli.app, ["run", "collecting"])
    assert result.exit_code == cli.EXIT_USAGE
    assert "COLLECT_TOKEN is not set: any value: the collecting platform takes every token." in result.output
    assert collecting.OUTBOX == [] and "Traceback" not in result.output


def test_the_registry_lists_every_front_end_and_loads_it_lazily():
    assert list(registry.ADAPTERS) == ["terminal", "slack", "discord"]
    for name in registry.ADAPTERS:
        cls = registry.adapter_class(name)
        assert cls.name == name and cls.settings_class is not None
    with pytest.raises(registry.UnknownAdapterError, match="use one of terminal, slack, discord"):
        registry.adapter_class("teams")


def test_admin_commands_are_one_list_everywhere():
    from bot.adapters.terminal import HELP_TEXT

    assert all(f"/{name}" in HELP_TEXT for name in ADMIN_COMMANDS)
