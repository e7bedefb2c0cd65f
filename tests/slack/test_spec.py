"""The shared conversation spec (tests/spec/scenarios.py) through the real Slack app over HTTP."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.slack.harness import SlackHttpHarness
from tests.slack.spec_driver import SlackSpecDriver
from tests.spec.scenarios import SCENARIOS, make_spec_service, run_scenario, spec_settings, spec_slack_settings


@pytest_asyncio.fixture
async def slack_driver(tmp_path, built_index_dir, engine_holder, fake_slack):
    settings = spec_settings(tmp_path, index_dir=built_index_dir)
    service = make_spec_service(settings, engine_holder)
    harness = await SlackHttpHarness(service, spec_slack_settings(fake_slack.api_url), fake_slack).start()
    try:
        yield SlackSpecDriver(harness)
    finally:
        await harness.stop()
        service.feedback.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
async def test_slack_spec(slack_driver, scenario):
    await run_scenario(slack_driver, scenario)
