"""Discord flows through the real discord.py client: no raw user or channel id and no question text in the logs."""

from __future__ import annotations

from tests.discord.fake_discord import MEMBER_PERMISSIONS, FakeDiscord
from tests.discord.harness import custom_ids, running_bot
from tests.log_capture import service_logs

QUESTION = "what is machine learning, asks the zanzibar-owl"
DM_QUESTION = "what is a GAN used for by the zanzibar-owl"
ASK = "how big is the ai market for the zanzibar-owl"


async def test_no_raw_ids_or_question_texts_reach_the_logs(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    asker = fake_discord.add_user("asker")
    voter = fake_discord.add_user("voter")
    no_threads = fake_discord.add_channel("announcements")
    fake_discord.forbid_threads_in.add(no_threads)
    with service_logs("DEBUG") as logs:
        async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
            mark = fake_discord.mark()
            asked = await fake_discord.user_message(asker, QUESTION)
            await bot.finished(asked["id"])
            answer = fake_discord.sent_messages(mark)[-1]
            up = next(c for c in custom_ids(answer.body) if ":up:" in c)
            # where threads are refused (logged), a DM, /ask, a vote, a non-admin's admin command (logged)
            refused = await fake_discord.user_message(asker, QUESTION, channel_id=no_threads)
            await bot.finished(refused["id"])
            dm = await fake_discord.user_message(asker, DM_QUESTION, dm=True)
            await bot.finished(dm["id"])
            ask = await fake_discord.slash_command(asker, "ask", [{"name": "question", "type": 3, "value": ASK}])
            await bot.finished(ask["id"])
            click = await fake_discord.click_button(voter, answer.response, up)
            await bot.finished(click["id"])
            admin = await fake_discord.slash_command(
                voter, "qabot", [{"name": "reindex", "type": 1, "options": []}], permissions=MEMBER_PERMISSIONS
            )
            await bot.finished(admin["id"])
    assert discord_service.feedback.feedback_count() == 1
    assert any("refused admin command" in line for line in logs.lines)
    assert any("cannot open a thread in channel c-" in line for line in logs.lines)
    raw_ids = [asker.id, voter.id, fake_discord.general, no_threads, fake_discord.dm_channel(asker), asked["id"]]
    leaks = logs.leaks([*raw_ids, "zanzibar"])
    assert not leaks, "\n".join(f"{s!r} in: {line}" for s, line in leaks)
