""" "Teach qabot" on Discord, through discord.py against the loopback fake: the message context-menu command
(registered with the slash commands; the fake refuses a message command with a description or options, as
Discord does), its interaction (type 2, data.type 3, the target message under data.resolved), the
candidates as an ephemeral follow-up with buttons, the button clicks, and `/qabot taught` with `undo`."""

from __future__ import annotations

from tests.discord.fake_discord import MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord
from tests.discord.harness import custom_ids, message_text, running_bot

QUESTION = "wat even is ML?? like in plain terms"
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD


async def _offer(fake_discord: FakeDiscord, bot, user, *, permissions=ADMIN_PERMISSIONS, text=QUESTION):
    asker = fake_discord.add_user("asker")
    question = await fake_discord.user_message(asker, text, mention_bot=True)
    await bot.finished(question["id"])  # the bot answered it; now an admin teaches it
    mark = fake_discord.mark()
    interaction = await fake_discord.message_command(user, "Teach qabot", question, permissions=permissions)
    await bot.finished(interaction["id"])
    return fake_discord.sent_messages(mark)


async def test_the_context_menu_command_is_registered_for_admins(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings):
        sync = [c for c in fake_discord.calls if c.method == "PUT" and c.path.endswith("/commands")]
        assert sync and sync[-1].status in (None, 200)
        (teach,) = [c for c in sync[-1].body if c["name"] == "Teach qabot"]
        assert teach["type"] == 3 and not teach.get("description") and not teach.get("options")
        assert int(teach["default_member_permissions"]) == MANAGE_GUILD
        registered = {c["name"]: c for c in fake_discord.commands}
        qabot = {o["name"]: o for o in registered["qabot"]["options"]}
        assert [o["name"] for o in qabot["taught"]["options"]] == ["undo"]
        assert [o["name"] for o in qabot["report"]["options"]] == ["since"]


async def test_an_admin_teaches_from_the_context_menu(fake_discord: FakeDiscord, discord_service, discord_settings):
    ada = fake_discord.add_user("ada")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        sent = await _offer(fake_discord, bot, ada)
        assert sent and all(c.ephemeral for c in sent)
        text = "\n".join(message_text(c.body) for c in sent)
        assert "Which passage answers this question?" in text and "What is Machine Learning?" in text
        ids = [i for c in sent for i in custom_ids(c.body)]
        picks = [i for i in ids if i.startswith("qabot:teach:") and not i.endswith(":none")]
        assert len(picks) == 5 and sum(i.endswith(":none") for i in ids) == 1
        assert all(len(i) <= 100 for i in ids)

        offer_message = next(c for c in sent if custom_ids(c.body))
        mark = fake_discord.mark()
        click = await fake_discord.click_button(ada, offer_message.response, picks[1], permissions=ADMIN_PERMISSIONS)
        await bot.finished(click["id"])
        done = "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
        assert "Taught (#" in done

        (pair,) = discord_service.feedback.taught_pairs()
        assert pair.platform == "discord" and pair.question == QUESTION and not pair.not_covered
        assert str(ada.id) not in pair.user_hash

        mark = fake_discord.mark()
        listed = await fake_discord.slash_command(
            ada, "qabot", [{"name": "taught", "type": 1, "options": []}], permissions=ADMIN_PERMISSIONS
        )
        await bot.finished(listed["id"])
        assert f"#{pair.pair_id}" in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))

        mark = fake_discord.mark()
        undo = await fake_discord.slash_command(
            ada,
            "qabot",
            [{"name": "taught", "type": 1, "options": [{"name": "undo", "type": 4, "value": pair.pair_id}]}],
            permissions=ADMIN_PERMISSIONS,
        )
        await bot.finished(undo["id"])
        assert "Undone" in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
        assert discord_service.feedback.taught_pairs() == []


async def test_not_covered_and_non_admins(fake_discord: FakeDiscord, discord_service, discord_settings):
    ada, bo = fake_discord.add_user("ada"), fake_discord.add_user("bo")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        refused = await _offer(fake_discord, bot, bo, permissions=MEMBER_PERMISSIONS)
        assert "only admins can teach" in "\n".join(message_text(c.body) for c in refused)
        assert not [i for c in refused for i in custom_ids(c.body)]

        sent = await _offer(fake_discord, bot, ada, text="what's the weather in Paris tomorrow?")
        offer_message = next(c for c in sent if custom_ids(c.body))
        none = next(i for i in custom_ids(offer_message.body) if i.endswith(":none"))
        # someone without the rights clicks it: refused, nothing stored
        mark = fake_discord.mark()
        click = await fake_discord.click_button(bo, offer_message.response, none, permissions=MEMBER_PERMISSIONS)
        await bot.finished(click["id"])
        assert "only admins" in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
        assert discord_service.feedback.taught_pairs() == []

        mark = fake_discord.mark()
        click = await fake_discord.click_button(ada, offer_message.response, none, permissions=ADMIN_PERMISSIONS)
        await bot.finished(click["id"])
        assert "Marked as not covered" in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
        (pair,) = discord_service.feedback.taught_pairs()
        assert pair.not_covered


async def test_report_since_option(fake_discord: FakeDiscord, discord_service, discord_settings):
    ada = fake_discord.add_user("ada")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        for since, expected in (("7d", " since "), ("soonish", "--since must be a duration")):
            mark = fake_discord.mark()
            done = await fake_discord.slash_command(
                ada,
                "qabot",
                [{"name": "report", "type": 1, "options": [{"name": "since", "type": 3, "value": since}]}],
                permissions=ADMIN_PERMISSIONS,
            )
            await bot.finished(done["id"])
            assert expected in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))


def test_the_fake_refuses_malformed_commands_as_discord_does():
    from tests.discord.fake_discord import _command_problem

    assert _command_problem({"name": "Teach qabot", "type": 3}) is None
    assert _command_problem({"name": "Teach qabot", "type": 3, "description": "Teach"}) is not None
    assert _command_problem({"name": "Teach qabot", "type": 3, "options": [{"name": "x"}]}) is not None
    assert _command_problem({"name": "x" * 33, "type": 3}) is not None
    assert _command_problem({"name": "qabot", "type": 1, "description": "admin"}) is None
    assert _command_problem({"name": "Teach qabot", "type": 1, "description": "d"}) is not None  # chat input
    assert _command_problem({"name": "qabot", "type": 1, "description": ""}) is not None
