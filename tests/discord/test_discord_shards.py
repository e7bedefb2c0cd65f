"""Discord sharding: N processes split the gateway (DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS), and buttons
and admin commands work whichever shard, in whichever process, receives them.

Two shard clients run side by side against FakeDiscord (which routes a guild's events to shard
(guild_id >> 22) % shard_count and DMs to shard 0, as Discord does), each with a service of its own
over one database and one Redis: two processes in all but the process boundary.
"""

from __future__ import annotations

import contextlib

import pytest

from bot.adapters.discord import DiscordSettings
from bot.adapters.discord.client import DiscordAdapter, ShardedQabotDiscordBot, make_bot
from bot.config import ConfigError
from bot.conversation.factory import open_feedback_store
from bot.conversation.service import ConversationService
from bot.state.shared import SharedState
from tests.discord.fake_discord import MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord
from tests.discord.harness import custom_ids, message_text, running_bot

QUESTION = "what is machine learning?"


@pytest.fixture
def shared_settings(core_settings, redis_url):
    return core_settings.replace(secret_key="shards-share-this-secret", redis_url=redis_url)


@contextlib.contextmanager
def services(settings, engine_holder, n: int):
    """`n` services, as `n` processes would build them: one database file, one Redis."""
    made = []
    try:
        for _ in range(n):
            made.append(
                ConversationService(
                    engine_holder,
                    settings=settings,
                    feedback=open_feedback_store(settings),
                    shared=SharedState.from_settings(settings),
                )
            )
        yield made
    finally:
        for service in made:
            service.feedback.close()
            service.shared.close()


def shard(settings: DiscordSettings, shard_id: int, count: int = 2) -> DiscordSettings:
    return settings.model_copy(update={"shard_count": str(count), "shard_ids": (str(shard_id),)})


async def test_two_shard_processes_split_the_gateway_and_each_answers_its_own_guilds(
    fake_discord: FakeDiscord, discord_settings, shared_settings, engine_holder
):
    alice = fake_discord.add_user("alice")
    home = fake_discord.shard_of(fake_discord.guild_id, 2)  # the shard Discord sends this guild's events to
    with services(shared_settings, engine_holder, 2) as (s0, s1):
        async with (
            running_bot(fake_discord, service=s0, settings=shard(discord_settings, 0)) as bot0,
            running_bot(fake_discord, service=s1, settings=shard(discord_settings, 1)) as bot1,
        ):
            bots = {0: bot0, 1: bot1}
            assert sorted(tuple(i["shard"]) for i in fake_discord.identifies) == [(0, 2), (1, 2)]
            assert isinstance(bot0, ShardedQabotDiscordBot) and bot0.shard_ids == [0]
            syncs = [c for c in fake_discord.calls if c.method == "PUT" and c.path.endswith("/commands")]
            assert len(syncs) == 1  # only the process running shard 0 registers the commands
            assert bots[home].get_guild(int(fake_discord.guild_id)) is not None
            assert bots[1 - home].get_guild(int(fake_discord.guild_id)) is None

            mark = fake_discord.mark()
            asked = await fake_discord.user_message(alice, QUESTION)
            await bots[home].finished(asked["id"])
            assert "learn from data" in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
            assert str(asked["id"]) not in bots[1 - home]._done  # the other shard never saw it

            mark = fake_discord.mark()
            dm = await fake_discord.user_message(alice, QUESTION, dm=True)
            await bot0.finished(dm["id"])  # direct messages arrive on shard 0
            assert fake_discord.sent_messages(mark)


async def test_buttons_and_admin_commands_work_on_whichever_shard_receives_them(
    fake_discord: FakeDiscord, discord_settings, shared_settings, engine_holder
):
    gina = fake_discord.add_user("gina")
    home = fake_discord.shard_of(fake_discord.guild_id, 2)
    with services(shared_settings, engine_holder, 3) as (before, s0, s1):
        # answered before the bot was split into shards (one process, one connection)
        async with running_bot(fake_discord, service=before, settings=discord_settings) as bot:
            mark = fake_discord.mark()
            asked = await fake_discord.user_message(gina, QUESTION)
            await bot.finished(asked["id"])
            answer = fake_discord.sent_messages(mark)[-1]
            up = next(b for b in custom_ids(answer.body) if ":up:" in b)

        # now two shard processes; the guild's events reach one of them, which never saw that answer
        async with (
            running_bot(fake_discord, service=s0, settings=shard(discord_settings, 0)) as bot0,
            running_bot(fake_discord, service=s1, settings=shard(discord_settings, 1)) as bot1,
        ):
            receiver = (bot0, bot1)[home]
            mark = fake_discord.mark()
            click = await fake_discord.click_button(gina, answer.response, up)
            await receiver.finished(click["id"])
            [ack] = fake_discord.sent_messages(mark)
            assert ack.ephemeral and "Thanks for the feedback" in message_text(ack.body)
            assert [v["vote"] for v in (s0, s1)[home].feedback.votes()] == [1]

            mark = fake_discord.mark()
            status = await fake_discord.slash_command(
                gina,
                "qabot",
                [{"name": "status", "type": 1, "options": []}],
                permissions=MEMBER_PERMISSIONS | MANAGE_GUILD,
            )
            await receiver.finished(status["id"])
            [reply] = fake_discord.sent_messages(mark)
            text = message_text(reply.body)
            assert "Index version" in text and "votes: 1 👍" in text  # the vote stored through the other shard


def test_shard_settings_are_checked_before_connecting(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("QABOT_DISCORD_SHARD_COUNT", "2")  # the name works as well
    monkeypatch.setenv("DISCORD_SHARD_IDS", "2")
    settings = DiscordSettings.load()
    with pytest.raises(ConfigError, match=r"DISCORD_SHARD_IDS must be shard numbers from 0 to 1, got 2"):
        settings.check()
    monkeypatch.setenv("DISCORD_SHARD_IDS", "1")
    settings = DiscordSettings.load()
    settings.check()
    bot = make_bot(DiscordAdapter(object(), settings))  # type: ignore[arg-type]
    assert isinstance(bot, ShardedQabotDiscordBot) and bot.shard_count == 2 and bot.shard_ids == [1]
    assert not bot.syncs_commands
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "auto")
    monkeypatch.delenv("QABOT_DISCORD_SHARD_COUNT")
    monkeypatch.delenv("DISCORD_SHARD_IDS")
    auto = make_bot(DiscordAdapter(object(), DiscordSettings.load()))  # type: ignore[arg-type]
    assert isinstance(auto, ShardedQabotDiscordBot) and auto.shard_count is None and auto.syncs_commands
