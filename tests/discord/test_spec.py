"""The shared conversation spec (tests/spec/scenarios.py) run against Discord over the real protocol."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.discord.harness import running_bot
from tests.discord.spec_driver import DiscordDriver
from tests.spec.scenarios import (
    SCENARIOS,
    SPEC_HANDOFF_CHANNEL,
    make_spec_service,
    run_scenario,
    spec_discord_settings,
    spec_settings,
)


@pytest_asyncio.fixture
async def discord_driver(fake_discord, tmp_path, built_index_dir, engine_holder):
    # the spec's follow-up without a mention needs the (opt-in) Message Content intent on Discord
    service = make_spec_service(spec_settings(tmp_path, index_dir=built_index_dir), engine_holder)
    # the hand-off channel exists before the bot starts, so DISCORD_HANDOFF_ROLES can name it
    handoff_channel, handoff_role = fake_discord.add_channel(SPEC_HANDOFF_CHANNEL), fake_discord.snowflake()
    settings = spec_discord_settings().model_copy(
        update={"message_content_intent": True, "handoff_roles": {handoff_channel: handoff_role}}
    )
    try:
        async with running_bot(fake_discord, service=service, settings=settings) as bot:
            yield DiscordDriver(
                fake_discord,
                bot,
                service,
                channels={SPEC_HANDOFF_CHANNEL: handoff_channel},
                handoff_group=handoff_role,
            )
    finally:
        service.feedback.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_spec_discord(discord_driver: DiscordDriver, scenario) -> None:
    await run_scenario(discord_driver, scenario)
